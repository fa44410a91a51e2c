// `espy check rules FILE...`: what `promtool check rules` of Prometheus 2.42
// prints and returns, so scripts and CI jobs written for promtool work
// unchanged:
//   Checking rules.yml
//     SUCCESS: 2 rules found
// on stdout, or "  FAILED:" and one error per line on stderr; a blank line
// after each file. Exit 0 when every file is valid, 1 when one is not; lint
// findings (duplicate rules) are reported but exit 0, or 3 with lint_fatal.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "rules/rule_file.h"

namespace espy::rules {

struct CheckOptions {
  // promtool's --lint: "duplicate-rules" (its default) or "all" report
  // rules with the same name and labels; "none" reports nothing.
  std::string lint = "duplicate-rules";
  // promtool's --lint-fatal: lint findings exit 3.
  bool lint_fatal = false;
};

// promtool's exit codes.
inline constexpr int kCheckSuccess = 0;
inline constexpr int kCheckFailure = 1;
inline constexpr int kCheckLintFailure = 3;

// The lint finding for rules that share a name and labels (recording two
// series with one identity), or "" when there are none.
std::string DuplicateRulesMessage(const RuleFile& file);

// Checks each file, writing to `out` and `err` as promtool does; returns
// the exit code. Single-threaded.
int CheckRules(const std::vector<std::string>& files, const CheckOptions& options, FILE* out,
               FILE* err);

}  // namespace espy::rules
