// A Go text/template subset for alert labels and annotations, as Prometheus
// 2.42 expands them: text and {{ actions }} with trim markers and comments,
// pipelines, variables ($labels, $value, $externalLabels, $externalURL and
// ones the template declares), fields (.Labels.job), literals, parenthesised
// pipelines, if/else if/else, range (with $i, $x :=), with, break, continue,
// and the functions Prometheus' templates offer (humanize*, printf, title,
// toUpper, match, reReplaceAll, label, value, first, ...).
//
// Parse errors read like Go's: `template: __alert_X:1: unexpected EOF`,
// `template: __alert_X:1: function "foo" not defined`, so `espy check rules`
// reports what promtool reports. Known functions that need a query engine
// (query, sortByLabel, graphLink, tableLink) parse, and fail on execution with
// a clear error. {{define}}, {{template}} and {{block}} are refused at parse.
//
// A Template is immutable after Parse; Execute is const and thread-safe.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace espy::rules {

// A value a template computes with: Go's float64, int, string, bool, nil,
// map[string]string (labels), and a query result sample or vector.
struct TemplateValue {
  enum class Kind { kNil, kBool, kInt, kFloat, kString, kMap, kSample, kVector };
  Kind kind = Kind::kNil;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;
  // kMap: the map; kSample: the sample's labels (value in f).
  std::map<std::string, std::string> map;
  std::vector<TemplateValue> vec;  // kVector: kSample elements

  static TemplateValue Nil() { return {}; }
  static TemplateValue Bool(bool v);
  static TemplateValue Int(int64_t v);
  static TemplateValue Float(double v);
  static TemplateValue String(std::string v);
  static TemplateValue Map(std::map<std::string, std::string> v);
  static TemplateValue Sample(std::map<std::string, std::string> labels, double v);
  static TemplateValue Vector(std::vector<TemplateValue> samples);
};

// What an alert's templates see (Prometheus' AlertTemplateData).
struct AlertTemplateData {
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> external_labels;
  std::string external_url;
  double value = 0;
};

struct TemplateNode;

class Template {
 public:
  // Parses `text` as Prometheus parses an alert template: with $labels,
  // $externalLabels, $externalURL and $value declared. `name` goes into
  // errors (Prometheus uses "__alert_" + the alert name).
  static absl::StatusOr<Template> Parse(std::string_view name, std::string_view text);

  // Expands the template for one alert. Errors read like Go's:
  // `template: __alert_X:1:3: executing "__alert_X" at <humanize>: ...`
  // (shorter: position and function only).
  absl::StatusOr<std::string> Execute(const AlertTemplateData& data) const;

  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;
  ~Template();

 private:
  Template();
  std::string name_;
  std::unique_ptr<TemplateNode> root_;
};

// Go's %v of a float64 (strconv 'g', shortest digits, exponent form when
// the exponent is below -4 or from 6 on): 1, 0.5, 1e+06, 1.234567e+06, NaN, +Inf.
std::string FormatGoFloat(double v);

}  // namespace espy::rules
