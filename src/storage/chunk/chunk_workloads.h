// Synthetic series shared by chunk_test.cc and chunk_bench.cc: the value
// shapes the encoding is tuned for, at a regular 10 s scrape interval.
// Decimal values are made as a parser would make "12.345": the double nearest
// to m / 10^k, which is (double)m / 10^k.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "base/check.h"
#include "storage/chunk/chunk.h"

namespace espy::storage::chunk::testing {

enum class Workload {
  kIntegerCounter,    // += random integer in [0, 50]
  kCounter3Decimals,  // += random in [0, 10) with 3 decimals
  kGauge2Decimals,    // random walk, steps in [-1, 1] with 2 decimals
  kGauge4Decimals,    // random walk, steps in [-1, 1] with 4 decimals
  kFloatGauge,        // a noisy sine: full-precision doubles (XOR)
};

inline const char* WorkloadName(Workload w) {
  switch (w) {
    case Workload::kIntegerCounter:
      return "integer_counter";
    case Workload::kCounter3Decimals:
      return "counter_3_decimals";
    case Workload::kGauge2Decimals:
      return "gauge_2_decimals";
    case Workload::kGauge4Decimals:
      return "gauge_4_decimals";
    case Workload::kFloatGauge:
      return "float_gauge";
  }
  return "?";
}

constexpr int64_t kWorkloadStart = 1'700'000'000'000;  // ms
constexpr int64_t kWorkloadInterval = 10'000;          // 10 s

inline std::vector<Sample> MakeWorkload(Workload w, int n, uint32_t seed = 1) {
  std::mt19937_64 rng(seed);
  std::vector<Sample> out;
  out.reserve(n);
  int64_t m = 0;
  double x = 0;
  for (int i = 0; i < n; ++i) {
    const int64_t t = kWorkloadStart + int64_t{i} * kWorkloadInterval;
    double v = 0;
    switch (w) {
      case Workload::kIntegerCounter:
        m += static_cast<int64_t>(rng() % 51);
        v = static_cast<double>(m);
        break;
      case Workload::kCounter3Decimals:
        m += static_cast<int64_t>(rng() % 10'000);
        v = static_cast<double>(m) / 1e3;
        break;
      case Workload::kGauge2Decimals:
        if (i == 0) m = 5'000;
        m += static_cast<int64_t>(rng() % 201) - 100;
        v = static_cast<double>(m) / 1e2;
        break;
      case Workload::kGauge4Decimals:
        if (i == 0) m = 500'000;
        m += static_cast<int64_t>(rng() % 20'001) - 10'000;
        v = static_cast<double>(m) / 1e4;
        break;
      case Workload::kFloatGauge:
        x += 0.01;
        v = 50 + 10 * std::sin(x) + static_cast<double>(rng() % 1000) / 7919.0;
        break;
    }
    out.push_back({t, v});
  }
  return out;
}

// Encodes samples into consecutive chunks of at most chunk_size samples.
inline std::vector<std::string> EncodeChunks(const std::vector<Sample>& samples, int chunk_size) {
  std::vector<std::string> chunks;
  ChunkAppender app;
  for (const Sample& s : samples) {
    if (static_cast<int>(app.num_samples()) == chunk_size) {
      chunks.emplace_back(app.bytes());
      app = ChunkAppender();
    }
    absl::Status st = app.Append(s.t, s.v);
    ESPY_CHECK(st.ok()) << st.message();
  }
  if (app.num_samples() > 0) chunks.emplace_back(app.bytes());
  return chunks;
}

}  // namespace espy::storage::chunk::testing
