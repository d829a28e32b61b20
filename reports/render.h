// Output formats of a report: Markdown (for READMEs and terminals), LaTeX (booktabs tabulars,
// escaped, ready to paste into a paper), CSV (one tidy row per table cell and metric) and HTML
// (one self-contained file: inline CSS, inline SVG plots, PNG figures as data: URIs, no network).
#pragma once

#include <string>
#include <vector>

#include "reports/report.h"

namespace ablate {

enum class Format { markdown, latex, csv, html };
// "md"/"markdown", "tex"/"latex", "csv", "html"; ConfigError otherwise.
Format parse_format(const std::string& name);
const char* file_extension(Format f);

std::string render(const Report& report, Format f);
// One table alone (as it appears inside render()).
std::string render_table(const Table& table, Format f);

std::string latex_escape(const std::string& text);
// One CSV record: the fields joined by commas, each quoted when it holds a separator, quote or
// line break (RFC 4180), ending in a newline. Also what `ablate export --format csv` writes.
std::string csv_row(const std::vector<std::string>& fields);
std::string html_escape(const std::string& text);
std::string base64_encode(const std::string& bytes);

}  // namespace ablate
