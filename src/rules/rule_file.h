// Prometheus rule files: `groups` of alerting and recording rules, parsed
// from YAML and validated as Prometheus 2.42's rulefmt does, so a file
// `promtool check rules` accepts is accepted here and a file it refuses is
// refused with the same errors:
//   rules.yml: 6:15: group "g1", rule 1, "X": could not parse expression: 1:17: parse error: ...
//   rules.yml: yaml: unmarshal errors:
//     line 3: field foo not found in type rulefmt.RuleGroup
// Positions are line:column, both from 1. Where Prometheus gives none (a
// bad duration, a bad label name) Espy adds the value's position after the
// file name.
//
// Stateless functions; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace espy::rules {

struct Rule {
  std::string record;  // exactly one of record and alert is set
  std::string alert;
  std::string expr;
  int64_t for_ms = 0;
  int64_t keep_firing_for_ms = 0;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  int line = 0;  // where the rule's mapping starts, from 1
  int column = 0;

  // The rule's name: the alert's or the recorded metric's.
  const std::string& name() const { return alert.empty() ? record : alert; }
};

struct RuleGroup {
  std::string name;
  int64_t interval_ms = 0;  // 0: the global evaluation interval
  int64_t limit = 0;        // 0: no limit on alerts or series per evaluation
  std::vector<Rule> rules;
};

struct RuleFile {
  std::vector<RuleGroup> groups;
  size_t RuleCount() const;
};

// A parse: the groups, or the errors (each prefixed with the file name, in
// promtool's order). Groups are only meaningful when errors is empty.
struct RuleFileParse {
  RuleFile file;
  std::vector<std::string> errors;
};

// Parses and validates `content`, the text of `filename`.
RuleFileParse ParseRuleFile(std::string_view filename, std::string_view content);

// Reads `path` and parses it; an unreadable file is one error.
RuleFileParse LoadRuleFile(const std::string& path);

// Go's %q for the strings error messages quote.
std::string GoQuote(std::string_view s);

}  // namespace espy::rules
