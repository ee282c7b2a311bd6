// TOML text → the configuration loader and validator (`config::LoadText`, the same path as a
// file given with --config). Every input either loads or is refused with `ConfigError`; a text
// that loads loads again to the same settings.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/error.hpp"
#include "config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace invsync;
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const config::Settings settings = config::LoadText(text, "fuzz.toml", {}, {});
    if (config::LoadText(text, "fuzz.toml", {}, {}) != settings) {
      std::abort();
    }
    // Every numeric setting is range-checked: pools and batches are never empty.
    if (settings.redis_pool_size < 1 || settings.database_pool_size < 1 ||
        settings.persister_batch_size < 1 || settings.syncer_batch_size < 1 ||
        settings.server_body_limit < 1) {
      std::abort();
    }
  } catch (const ConfigError&) {
    // Refused with a message naming the setting: the expected outcome for most inputs.
  }
  return 0;
}
