// Parses every expression of Prometheus's own PromQL test scripts
// (../shared/promql-testdata/*.test, read in place): each `eval` and
// `eval_ordered` expression must parse; `eval_fail` ones are only counted.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "query/promql/parser.h"

namespace espy::query::promql {
namespace {

std::filesystem::path TestdataDir() {
  if (const char* env = std::getenv("ESPY_PROMQL_TESTDATA"); env != nullptr && *env != '\0') {
    return env;
  }
  return ESPY_PROMQL_TESTDATA_DIR;
}

struct EvalLine {
  std::string file;
  int line;
  std::string expr;
  bool must_fail;
};

// The expression after "eval[_ordered|_fail] instant at <time> ".
std::vector<EvalLine> ReadEvalLines(const std::filesystem::path& dir) {
  std::vector<EvalLine> out;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".test") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& path : files) {
    std::ifstream in(path);
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
      ++n;
      bool must_fail = false;
      std::string_view rest = line;
      if (rest.starts_with("eval instant at ")) {
        rest.remove_prefix(std::string_view("eval instant at ").size());
      } else if (rest.starts_with("eval_ordered instant at ")) {
        rest.remove_prefix(std::string_view("eval_ordered instant at ").size());
      } else if (rest.starts_with("eval_fail instant at ")) {
        rest.remove_prefix(std::string_view("eval_fail instant at ").size());
        must_fail = true;
      } else {
        continue;
      }
      size_t space = rest.find(' ');  // after the evaluation time
      if (space == std::string_view::npos) continue;
      out.push_back({path.filename().string(), n, std::string(rest.substr(space + 1)), must_fail});
    }
  }
  return out;
}

TEST(PrometheusTestdataTest, EveryEvalExpressionParses) {
  std::filesystem::path dir = TestdataDir();
  if (!std::filesystem::is_directory(dir)) {
    GTEST_SKIP() << "no PromQL test scripts at " << dir;
  }
  std::vector<EvalLine> lines = ReadEvalLines(dir);
  ASSERT_FALSE(lines.empty()) << "no eval lines in " << dir;
  int parsed = 0;
  int expected_ok = 0;
  int fail_lines = 0;
  int fail_lines_rejected = 0;
  for (const EvalLine& l : lines) {
    auto e = ParseExpr(l.expr);
    if (l.must_fail) {
      ++fail_lines;
      if (!e.ok()) ++fail_lines_rejected;
      continue;
    }
    ++expected_ok;
    if (e.ok()) {
      ++parsed;
    } else {
      ADD_FAILURE() << l.file << ":" << l.line << ": " << l.expr << "\n  " << e.status();
    }
  }
  std::cout << "[ promql   ] " << parsed << " of " << expected_ok << " eval expressions parse; "
            << fail_lines_rejected << " of " << fail_lines
            << " eval_fail expressions are rejected by the parser (the rest fail at evaluation)"
            << std::endl;
  RecordProperty("parsed", parsed);
  RecordProperty("expected", expected_ok);
}

}  // namespace
}  // namespace espy::query::promql
