#pragma once

#include <string>

namespace invsync::bench {

/// `invsync-bench report`: reads the result files of a suite run and writes the section between
/// `<!-- suite:begin -->` and `<!-- suite:end -->` of the benchmarks document (appending the
/// markers if missing; the rest of the file is kept) and SVG plots made with gnuplot.
int Report(int argc, char** argv);

/// Replaces what lies between the suite markers in `document` with `section` (markers kept), or
/// appends the markers and the section if there are none.
[[nodiscard]] std::string ReplaceSection(const std::string& document, const std::string& section);

}  // namespace invsync::bench
