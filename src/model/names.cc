#include "model/names.h"

namespace espy::model {

namespace {

bool IsNameChar(char c, bool first, bool colon) {
  return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (!first && c >= '0' && c <= '9') || (colon && c == ':');
}

bool IsLegacyName(std::string_view name, bool colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (!IsNameChar(name[i], i == 0, colon)) return false;
  }
  return true;
}

}  // namespace

void AppendQuoted(std::string_view s, std::string* out) {
  *out += '"';
  for (char c : s) {
    if (c == '\n') {
      *out += "\\n";
      continue;
    }
    if (c == '"' || c == '\\') *out += '\\';
    *out += c;
  }
  *out += '"';
}

bool IsLegacyLabelName(std::string_view name) { return IsLegacyName(name, false); }
bool IsLegacyMetricName(std::string_view name) { return IsLegacyName(name, true); }

std::string ToPromqlSelector(const Labels& labels) {
  std::string_view metric = labels.MetricName();
  // A metric name PromQL cannot write bare goes first inside the braces.
  bool quoted_metric = !metric.empty() && !IsLegacyMetricName(metric);
  std::string out;
  if (!quoted_metric) out += metric;
  out += '{';
  bool first = true;
  if (quoted_metric) {
    AppendQuoted(metric, &out);
    first = false;
  }
  for (const Label& l : labels.items()) {
    if (l.name == kMetricNameLabel) continue;
    if (!first) out += ',';
    first = false;
    out += FormatLabelName(l.name);
    out += '=';
    AppendQuoted(l.value, &out);
  }
  out += '}';
  return out;
}

std::string FormatLabelName(std::string_view name) {
  if (IsLegacyLabelName(name)) return std::string(name);
  std::string out;
  AppendQuoted(name, &out);
  return out;
}

}  // namespace espy::model
