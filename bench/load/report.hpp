#pragma once

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace invsync::bench {

/// `invsync-bench report`: reads the result files of a suite run and writes the section between
/// `<!-- suite:begin -->` and `<!-- suite:end -->` of the benchmarks document (appending the
/// markers if missing; the rest of the file is kept) and SVG plots made with gnuplot.
int Report(int argc, char** argv);

/// The result files (`*.json`) of a suite run, by file stem ("flash-sale-db-only", "machine").
/// Repetitions of one run, stems `NAME.rep1`, `NAME.rep2`, ..., stand as one result under NAME:
/// the first repetition whose audit is not clean (a violation is never hidden behind a median),
/// else the one of median throughput (the lower middle for an even count), carrying all of them,
/// in order, under "repetitions".
[[nodiscard]] std::map<std::string, nlohmann::json> LoadResults(const std::filesystem::path& dir);

/// Replaces what lies between the suite markers in `document` with `section` (markers kept), or
/// appends the markers and the section if there are none.
[[nodiscard]] std::string ReplaceSection(const std::string& document, const std::string& section);

}  // namespace invsync::bench
