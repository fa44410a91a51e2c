// PromQL's rules for writing names: which metric and label names PromQL can
// write bare (legacy identifiers) and how the others are quoted, as
// Prometheus 3 reads them: {"cpu usage%", "my-label"="x"}. A JSON write may
// carry any name; these decide how such a name is printed back. Stateless
// functions, thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "model/labels.h"

namespace espy::model {

// [a-zA-Z_][a-zA-Z0-9_]*
bool IsLegacyLabelName(std::string_view name);
// [a-zA-Z_:][a-zA-Z0-9_:]*
bool IsLegacyMetricName(std::string_view name);
// `name` bare when legacy, else quoted: "my-label".
std::string FormatLabelName(std::string_view name);
// A series as the PromQL selector that selects it, what PromQL-facing text
// (query errors) prints: cpu{host="a"}, or {"cpu usage%",host="a","my-label"="x"}
// when a name is not legacy. Labels::ToString() is the same for legacy names.
std::string ToPromqlSelector(const Labels& labels);
// Appends "s" with '"', '\\' and newlines escaped (what the PromQL lexer
// reads back).
void AppendQuoted(std::string_view s, std::string* out);

}  // namespace espy::model
