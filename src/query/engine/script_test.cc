// Runs every PromQL .test script: ours (testdata/ beside this file) and, as
// conformance suite, Prometheus 2.42's own (../shared/promql-testdata, read in
// place; ESPY_PROMQL_TESTDATA overrides the folder). One test per file.
#include "query/engine/script.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace espy::query::engine {
namespace {

std::filesystem::path PrometheusDir() {
  if (const char* env = std::getenv("ESPY_PROMQL_TESTDATA"); env != nullptr && *env != '\0') {
    return env;
  }
  return ESPY_PROMQL_TESTDATA_DIR;
}

std::vector<std::string> TestFiles(const std::filesystem::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return out;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".test") out.push_back(entry.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Cases of Prometheus's scripts Espy does not run, "<file>:<line>" -> why.
ScriptOptions PrometheusSkips() {
  ScriptOptions o;
  return o;
}

void RunFile(const std::filesystem::path& path, const ScriptOptions& options) {
  std::ifstream in(path);
  ASSERT_TRUE(in) << "cannot read " << path;
  std::stringstream text;
  text << in.rdbuf();
  ScriptResult r = RunScript(text.str(), path.filename().string(), options);
  for (const std::string& f : r.failures) ADD_FAILURE() << f;
  std::cout << "[ script   ] " << path.filename().string() << ": " << r.passed << " of " << r.cases
            << " cases pass, " << r.skipped << " skipped" << std::endl;
  EXPECT_GT(r.cases, 0) << path << " has no eval commands";
}

class OurScriptTest : public testing::TestWithParam<std::string> {};
TEST_P(OurScriptTest, Passes) {
  RunFile(std::filesystem::path(ESPY_ENGINE_TESTDATA_DIR) / GetParam(), ScriptOptions());
}
INSTANTIATE_TEST_SUITE_P(Scripts, OurScriptTest,
                         testing::ValuesIn(TestFiles(ESPY_ENGINE_TESTDATA_DIR)),
                         [](const auto& info) {
                           std::string n = info.param.substr(0, info.param.size() - 5);
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

class PrometheusScriptTest : public testing::TestWithParam<std::string> {};
TEST_P(PrometheusScriptTest, Passes) { RunFile(PrometheusDir() / GetParam(), PrometheusSkips()); }
INSTANTIATE_TEST_SUITE_P(Conformance, PrometheusScriptTest,
                         testing::ValuesIn(TestFiles(PrometheusDir())), [](const auto& info) {
                           std::string n = info.param.substr(0, info.param.size() - 5);
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(PrometheusScriptTest);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(OurScriptTest);

}  // namespace
}  // namespace espy::query::engine
