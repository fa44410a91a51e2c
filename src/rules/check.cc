// promtool's `check rules` report over rule_file.h's parse, and its
// duplicate-rules lint.
#include "rules/check.h"

#include <sys/stat.h>

#include <algorithm>

#include "fmt/format.h"

namespace espy::rules {
namespace {

struct RuleIdentity {
  std::string metric;
  std::vector<std::pair<std::string, std::string>> labels;  // sorted by name

  // Prometheus orders by metric name, then labels pair by pair (a prefix
  // first).
  bool operator<(const RuleIdentity& o) const {
    if (metric != o.metric) return metric < o.metric;
    return labels < o.labels;
  }
  bool operator==(const RuleIdentity& o) const { return metric == o.metric && labels == o.labels; }
};

}  // namespace

std::string DuplicateRulesMessage(const RuleFile& file) {
  std::vector<RuleIdentity> rules;
  for (const RuleGroup& g : file.groups) {
    for (const Rule& r : g.rules) {
      rules.push_back({r.name(), {r.labels.begin(), r.labels.end()}});
    }
  }
  std::sort(rules.begin(), rules.end());
  std::vector<RuleIdentity> duplicates;
  for (size_t i = 1; i < rules.size(); ++i) {
    // Each duplicated identity is reported once, however many rules share it.
    if (rules[i] == rules[i - 1] && (duplicates.empty() || !(duplicates.back() == rules[i]))) {
      duplicates.push_back(rules[i]);
    }
  }
  if (duplicates.empty()) return "";
  std::string msg = fmt::format("lint error {} duplicate rule(s) found.\n", duplicates.size());
  for (const RuleIdentity& d : duplicates) {
    msg += fmt::format("Metric: {}\nLabel(s):\n", d.metric);
    for (const auto& [k, v] : d.labels) msg += fmt::format("\t{}: {}\n", k, v);
  }
  return msg + "Might cause inconsistency while recording expressions";
}

int CheckRules(const std::vector<std::string>& files, const CheckOptions& options, FILE* out,
               FILE* err) {
  // Like promtool, refuse the command line before checking anything when a
  // path is missing or not a file.
  for (const std::string& f : files) {
    struct stat st {};
    if (stat(f.c_str(), &st) != 0) {
      std::fprintf(err, "espy check rules: error: path '%s' does not exist\n", f.c_str());
      return kCheckFailure;
    }
    if (S_ISDIR(st.st_mode)) {
      std::fprintf(err, "espy check rules: error: '%s' is a directory\n", f.c_str());
      return kCheckFailure;
    }
  }
  bool lint_duplicates = options.lint == "all" || options.lint == "duplicate-rules";
  bool failed = false, lint_failed = false;
  for (const std::string& f : files) {
    std::fprintf(out, "Checking %s\n", f.c_str());
    RuleFileParse parse = LoadRuleFile(f);
    std::vector<std::string> errors = parse.errors;
    bool lint_only = false;
    if (errors.empty() && lint_duplicates) {
      if (std::string dup = DuplicateRulesMessage(parse.file); !dup.empty()) {
        errors.push_back(dup);
        lint_only = true;
      }
    }
    if (errors.empty()) {
      std::fprintf(out, "  SUCCESS: %zu rules found\n", parse.file.RuleCount());
    } else {
      // stdout and stderr interleave as promtool's do on a terminal.
      std::fflush(out);
      std::fprintf(err, "  FAILED:\n");
      for (const std::string& e : errors) std::fprintf(err, "%s\n", e.c_str());
      std::fflush(err);
      (lint_only ? lint_failed : failed) = true;
    }
    std::fprintf(out, "\n");
  }
  if (failed) return kCheckFailure;
  if (lint_failed && options.lint_fatal) return kCheckLintFailure;
  return kCheckSuccess;
}

}  // namespace espy::rules
