// Runner for PromQL test scripts in Prometheus 2.42's .test format
// (promql/test.go): `load <interval>` with series in expanding notation
// (0+10x1000, 1-1x3, _, _x3, stale), `clear`, `eval instant at <time>`,
// `eval_fail instant at`, `eval_ordered instant at`, expected results as
// `{labels} value` or a bare scalar. Like Prometheus's runner, every instant
// evaluation is checked again as a range query one minute either side.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "query/engine/engine.h"

namespace espy::query::engine {

struct ScriptOptions {
  // Cases to skip, keyed "<file>:<line of the eval>" -> reason.
  absl::flat_hash_map<std::string, std::string> skip;
  EngineOptions engine;
};

struct ScriptResult {
  int cases = 0;   // eval commands run
  int passed = 0;  // of them, those that gave the expected answer
  int skipped = 0;
  // "<file>:<line>: <what differed>" per failed case or malformed line.
  std::vector<std::string> failures;
};

// Runs one script. `file` names it in messages and skip keys. Thread-compatible.
ScriptResult RunScript(std::string_view text, std::string_view file, const ScriptOptions& options);

}  // namespace espy::query::engine
