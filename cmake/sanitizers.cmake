# Sanitizer build types, chosen with CMAKE_BUILD_TYPE (case does not matter):
#
#   ASan  AddressSanitizer (with LeakSanitizer) + UndefinedBehaviorSanitizer
#   TSan  ThreadSanitizer
#
# Both build with -O1 -g: fast enough for the integration suites, exact enough for stack traces.
# NDEBUG stays undefined so assertions run too. Any error aborts the process (no recovery), so a
# finding fails the test that caused it. The benchmark programs are off by default in these
# builds (INVSYNC_BUILD_BENCH); scripts/test-sanitizers sets the runtime options.

set(_invsync_sanitizer_common "-O1 -g -fno-omit-frame-pointer -fno-optimize-sibling-calls")

set(CMAKE_CXX_FLAGS_ASAN
    "${_invsync_sanitizer_common} -fsanitize=address,undefined -fno-sanitize-recover=all")
set(CMAKE_EXE_LINKER_FLAGS_ASAN "-fsanitize=address,undefined")
set(CMAKE_SHARED_LINKER_FLAGS_ASAN "${CMAKE_EXE_LINKER_FLAGS_ASAN}")

set(CMAKE_CXX_FLAGS_TSAN "${_invsync_sanitizer_common} -fsanitize=thread")
set(CMAKE_EXE_LINKER_FLAGS_TSAN "-fsanitize=thread")
set(CMAKE_SHARED_LINKER_FLAGS_TSAN "${CMAKE_EXE_LINKER_FLAGS_TSAN}")

string(TOUPPER "${CMAKE_BUILD_TYPE}" _invsync_build_type)
if(_invsync_build_type MATCHES "^(ASAN|TSAN)$")
  set(INVSYNC_SANITIZER_BUILD ON)
  # A cache entry before option() sets that option's default for this build dir.
  set(INVSYNC_BUILD_BENCH OFF CACHE BOOL "Build the benchmark programs")
else()
  set(INVSYNC_SANITIZER_BUILD OFF)
endif()
