// For the parser fuzzers: parsing with a SeriesCache must mean the same as
// parsing without one.
#pragma once

#include <bit>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "ingest/series_cache.h"
#include "model/sample_batch.h"

namespace espy::ingest {

// Parses three times with `parse(SeriesLookup*)` (returning a StatusOr of a
// batch): without a cache, then twice with one, learning in between from a
// stand-in for the head that holds every series of the first parse. Aborts
// unless all three fail with the same error, or all send every sample to
// the same series with the same timestamp and value.
template <typename ParseFn>
void CheckSameWithSeriesCache(SeriesCache::Protocol protocol, ParseFn parse) {
  absl::flat_hash_map<model::Labels, model::SeriesRef> head;
  auto resolve = [&head](const model::SampleBatch& batch) {
    std::vector<model::SeriesRef> out;
    for (const model::BatchSample& s : batch.samples) {
      if (s.series >= batch.series.size()) std::abort();
      model::SeriesRef ref = batch.RefOf(s.series);
      if (ref == 0) ref = head.try_emplace(batch.series[s.series], head.size() + 1).first->second;
      out.push_back(ref);
    }
    return out;
  };
  absl::StatusOr<model::SampleBatch> plain = parse(nullptr);
  std::vector<model::SeriesRef> want;
  if (plain.ok()) want = resolve(*plain);

  SeriesCache cache(1 << 20);
  for (int round = 0; round < 2; ++round) {
    SeriesLookup lookup(&cache, protocol);
    absl::StatusOr<model::SampleBatch> batch = parse(&lookup);
    if (batch.ok() != plain.ok()) std::abort();
    if (!batch.ok()) {
      if (batch.status() != plain.status()) std::abort();
      return;
    }
    lookup.Learn(&*batch, [&head](const model::Labels& l) {
      auto it = head.find(l);
      return it == head.end() ? model::SeriesRef{0} : it->second;
    });
    if (resolve(*batch) != want) std::abort();
    if (batch->samples.size() != plain->samples.size()) std::abort();
    for (size_t i = 0; i < batch->samples.size(); ++i) {
      const model::BatchSample& a = batch->samples[i];
      const model::BatchSample& b = plain->samples[i];
      if (a.ts != b.ts || std::bit_cast<uint64_t>(a.value) != std::bit_cast<uint64_t>(b.value)) {
        std::abort();
      }
    }
  }
}

}  // namespace espy::ingest
