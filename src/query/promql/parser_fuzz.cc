// libFuzzer target for the PromQL parser: any input either fails with
// InvalidArgument or parses to a tree whose printed form parses again to the
// same text (except "+Inf ^ x", which Prometheus's printer also leaves
// ambiguous). Build with clang: -fsanitize=fuzzer,address.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "query/promql/parser.h"
#include "query/promql/printer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace promql = espy::query::promql;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto expr = promql::ParseExpr(input);
  if (!expr.ok()) {
    if (expr.status().code() != absl::StatusCode::kInvalidArgument) std::abort();
    return 0;
  }
  std::string printed = promql::ToString(**expr);
  if (printed.find("Inf ^") != std::string::npos) return 0;
  auto again = promql::ParseExpr(printed);
  if (!again.ok() || promql::ToString(**again) != printed) std::abort();
  (void)promql::ParseMetricSelector(input);
  return 0;
}
