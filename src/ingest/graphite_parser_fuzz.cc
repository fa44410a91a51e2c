// libFuzzer target for the Graphite parser and line splitter: the input is
// parsed whole and again fed through GraphiteLineSplitter in reads whose sizes
// come from the first byte; both must give the same samples and errors. The
// whole input must also mean the same parsed with a SeriesCache.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "ingest/bad_input.h"
#include "ingest/graphite_parser.h"
#include "ingest/series_cache_fuzz.h"

namespace {

constexpr int64_t kNow = 1'700'000'000'000;

struct Totals {
  size_t samples = 0;
  size_t errors = 0;
  std::vector<int64_t> error_lines;
};

void Add(const espy::ingest::GraphiteParseResult& r, Totals* t) {
  for (const espy::model::BatchSample& s : r.batch.samples) {
    if (s.series >= r.batch.series.size()) std::abort();
  }
  t->samples += r.batch.samples.size();
  t->errors += r.error_count;
  for (const espy::ingest::GraphiteLineError& e : r.errors) {
    if (!espy::ingest::GetBadInput(e.status)) std::abort();
    t->error_lines.push_back(e.line);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using espy::ingest::GraphiteLineSplitter;
  if (size == 0) return 0;
  const size_t read_size = data[0] % 16 + 1;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  // A limit above the input size: the splitter never discards, so the two
  // ways must agree exactly.
  const size_t max_line = input.size() + 1;
  espy::ingest::Limits limits;

  Totals whole;
  Add(espy::ingest::ParseGraphiteLines(input, 0, kNow, limits, max_line), &whole);

  Totals split;
  GraphiteLineSplitter splitter(max_line);
  std::vector<espy::ingest::GraphiteLineError> splitter_errors;
  for (size_t pos = 0; pos < input.size(); pos += read_size) {
    GraphiteLineSplitter::Block block =
        splitter.Feed(input.substr(pos, read_size), &splitter_errors);
    Add(espy::ingest::ParseGraphiteLines(block.text, block.first_line, kNow, limits, max_line),
        &split);
  }
  GraphiteLineSplitter::Block last = splitter.Finish();
  Add(espy::ingest::ParseGraphiteLines(last.text, last.first_line, kNow, limits, max_line), &split);
  if (!splitter_errors.empty()) std::abort();
  if (whole.samples != split.samples || whole.errors != split.errors) std::abort();
  const size_t kept = std::min(whole.error_lines.size(), split.error_lines.size());
  for (size_t i = 0; i < kept && i < espy::ingest::kMaxGraphiteErrorsKept; ++i) {
    if (whole.error_lines[i] != split.error_lines[i]) std::abort();
  }

  espy::ingest::CheckSameWithSeriesCache(
      espy::ingest::SeriesCache::Protocol::kGraphite, [&](espy::ingest::SeriesLookup* lookup) {
        espy::ingest::GraphiteParseResult r =
            espy::ingest::ParseGraphiteLines(input, 0, kNow, limits, max_line, lookup);
        if (r.error_count != whole.errors) std::abort();
        return absl::StatusOr<espy::ingest::Batch>(std::move(r.batch));
      });

  // A small limit exercises the discard path; it must not crash.
  GraphiteLineSplitter small(8);
  for (size_t pos = 0; pos < input.size(); pos += read_size) {
    GraphiteLineSplitter::Block block = small.Feed(input.substr(pos, read_size), &splitter_errors);
    espy::ingest::ParseGraphiteLines(block.text, block.first_line, kNow, limits, 8);
  }
  return 0;
}
