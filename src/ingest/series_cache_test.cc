#include "ingest/series_cache.h"

#include <snappy.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ingest/bad_input.h"
#include "ingest/graphite_parser.h"
#include "ingest/influx_parser.h"
#include "ingest/remote_write_parser.h"
#include "remote_write.pb.h"

namespace espy::ingest {
namespace {

using ::testing::HasSubstr;
using Protocol = SeriesCache::Protocol;

constexpr int64_t kNow = 1'700'000'000'000;

// Stands in for the head: labels -> ref, created on first use.
class FakeStorage {
 public:
  model::SeriesRef Lookup(const model::Labels& labels) const {
    auto it = refs_.find(labels);
    return it == refs_.end() ? 0 : it->second;
  }
  model::SeriesRef Create(const model::Labels& labels) {
    auto [it, added] = refs_.try_emplace(labels, refs_.size() + 1);
    return it->second;
  }
  // The ref each sample of `batch` goes to, creating series as a commit does.
  std::vector<model::SeriesRef> Commit(const model::SampleBatch& batch) {
    std::vector<model::SeriesRef> out;
    for (const model::BatchSample& s : batch.samples) {
      model::SeriesRef ref = batch.RefOf(s.series);
      out.push_back(ref != 0 ? ref : Create(batch.series[s.series]));
    }
    return out;
  }
  void Learn(SeriesLookup& lookup, model::SampleBatch* batch) const {
    lookup.Learn(batch, [this](const model::Labels& l) { return Lookup(l); });
  }
  // Parses with a lookup of `cache`, commits, then learns the spellings:
  // afterwards every series of the parse is cached.
  template <typename ParseFn>
  void Ingest(SeriesCache& cache, SeriesCache::Protocol protocol, ParseFn parse) {
    SeriesLookup lookup(&cache, protocol);
    absl::StatusOr<model::SampleBatch> b = parse(&lookup);
    ASSERT_TRUE(b.ok()) << b.status();
    Commit(*b);
    Learn(lookup, &*b);
  }

 private:
  absl::flat_hash_map<model::Labels, model::SeriesRef> refs_;
};

model::Labels Name(std::string name) {
  return model::Labels(std::vector<model::Label>{{"__name__", std::move(name)}});
}

std::vector<double> Values(const model::SampleBatch& batch) {
  std::vector<double> out;
  for (const model::BatchSample& s : batch.samples) out.push_back(s.value);
  return out;
}

size_t ByRef(const model::SampleBatch& batch) {
  size_t n = 0;
  for (size_t i = 0; i < batch.series.size(); ++i) {
    if (batch.RefOf(i) != 0) {
      EXPECT_TRUE(batch.series[i].empty()) << "a series given by ref carries no labels";
      ++n;
    }
  }
  return n;
}

TEST(SeriesCacheTest, FindsWhatWasInsertedPerProtocol) {
  SeriesCache cache(1 << 20);
  {
    SeriesLookup lookup(&cache, Protocol::kGraphite);
    lookup.StartKey().append("a.b");
    EXPECT_EQ(0u, lookup.Find());
  }
  cache.Insert(std::string(1, static_cast<char>(Protocol::kGraphite)) + "a.b", 7);
  {
    SeriesLookup graphite(&cache, Protocol::kGraphite);
    graphite.StartKey().append("a.b");
    EXPECT_EQ(7u, graphite.Find());
  }
  // The same bytes in another protocol are another series.
  SeriesLookup influx(&cache, Protocol::kInflux);
  influx.StartKey().append("a.b");
  EXPECT_EQ(0u, influx.Find());
}

TEST(SeriesCacheTest, CountsHitsAndMissesWhenALookupEnds) {
  SeriesCache cache(1 << 20);
  cache.Insert("gx", 1);
  {
    SeriesLookup lookup(&cache, Protocol::kGraphite);
    lookup.StartKey().append("x");
    lookup.Find();
    lookup.StartKey().append("y");
    lookup.Find();
    lookup.Find();
  }
  SeriesCacheStats s = cache.stats();
  EXPECT_EQ(1u, s.hits);
  EXPECT_EQ(2u, s.misses);
  EXPECT_EQ(1u, s.entries);
  EXPECT_GT(s.bytes, 0u);
}

TEST(SeriesCacheTest, StaysWithinItsBudgetAndNeverAnswersWrong) {
  constexpr size_t kMax = 16 * 1024;  // 1 KiB a shard: about 12 entries each
  SeriesCache cache(kMax);
  for (int i = 1; i <= 5000; ++i) cache.Insert("r" + std::to_string(i), i);
  SeriesCacheStats s = cache.stats();
  EXPECT_LE(s.bytes, kMax);
  EXPECT_LT(s.entries, 5000u);
  EXPECT_GT(s.entries, 0u);
  EXPECT_GT(s.resets, 0u);
  size_t found = 0;
  for (int i = 1; i <= 5000; ++i) {
    model::SeriesRef ref = cache.Find("r" + std::to_string(i));
    if (ref == 0) continue;
    EXPECT_EQ(static_cast<model::SeriesRef>(i), ref);
    ++found;
  }
  EXPECT_EQ(s.entries, found);
}

TEST(SeriesCacheTest, KeepsKeysOfAnyLengthAcrossItsKeyBlocks) {
  // Keys are copied into 64 KiB blocks: many short ones fill several
  // blocks, and keys longer than a block get their own.
  SeriesCache cache(256 << 20);
  auto key = [](int i) {
    return "i" + std::string(static_cast<size_t>(i % 7 == 0 ? 70'000 + i : i % 300), 'k') +
           std::to_string(i);
  };
  for (int i = 1; i <= 3000; ++i) cache.Insert(key(i), i);
  cache.Insert(key(5), 99);  // a known key: the ref changes, nothing is added
  EXPECT_EQ(3000u, cache.stats().entries);
  EXPECT_EQ(0u, cache.stats().resets);
  for (int i = 1; i <= 3000; ++i) {
    ASSERT_EQ(i == 5 ? 99u : static_cast<model::SeriesRef>(i), cache.Find(key(i))) << i;
  }
  EXPECT_EQ(0u, cache.Find(key(3001)));
}

TEST(SeriesCacheTest, ZeroBytesTurnsItOff) {
  SeriesCache cache(0);
  EXPECT_FALSE(cache.enabled());
  cache.Insert("gx", 1);
  EXPECT_EQ(0u, cache.Find("gx"));
  SeriesLookup lookup(&cache, Protocol::kGraphite);
  EXPECT_FALSE(lookup.enabled());
}

TEST(SeriesCacheTest, LearnCachesOnlySeriesStorageKnows) {
  SeriesCache cache(1 << 20);
  FakeStorage storage;
  storage.Create(Name("old"));
  SeriesLookup lookup(&cache, Protocol::kGraphite);
  model::SampleBatch batch;
  lookup.StartKey().append("old");
  lookup.Missed(batch.AddSeries(Name("old")));
  lookup.StartKey().append("new");
  lookup.Missed(batch.AddSeries(Name("new")));
  storage.Learn(lookup, &batch);
  EXPECT_EQ(1u, batch.RefOf(0));
  EXPECT_EQ(0u, batch.RefOf(1));
  EXPECT_EQ(1u, cache.Find("gold"));
  EXPECT_EQ(0u, cache.Find("gnew"));
}

// Parses `body` three times: without a cache, then with one twice (learning
// after each). All three must send every sample to the same series; the
// last must give every series by ref, and `series` spellings are cached.
template <typename ParseFn>
void ExpectSameSeriesWithCache(Protocol protocol, ParseFn parse, size_t series) {
  FakeStorage storage;
  model::SampleBatch plain = parse(nullptr);
  const std::vector<model::SeriesRef> want = storage.Commit(plain);
  ASSERT_EQ(0u, ByRef(plain));

  SeriesCache cache(1 << 20);
  for (int round = 0; round < 2; ++round) {
    SeriesLookup lookup(&cache, protocol);
    model::SampleBatch batch = parse(&lookup);
    // A series sent twice in a batch is found twice in the cache.
    EXPECT_EQ(round == 0 ? 0 : batch.series.size(), ByRef(batch)) << "round " << round;
    EXPECT_EQ(Values(plain), Values(batch));
    storage.Learn(lookup, &batch);
    EXPECT_EQ(want, storage.Commit(batch)) << "round " << round;
  }
  EXPECT_EQ(series, cache.stats().entries);
}

TEST(SeriesCacheParseTest, InfluxSeriesKeyAndFieldKey) {
  const std::string body =
      "cpu,host=a,dc=x user=1,system=2 1700000000000000000\n"
      "cpu,host=b value=3 1700000000000000000\n"
      "cpu,host=a,dc=x user=4 1700000010000000000\n"
      "m\\ 1,t\\,k=v\\=1 f\\ x=5i 1700000000000000000\n";
  ExpectSameSeriesWithCache(
      Protocol::kInflux,
      [&](SeriesLookup* lookup) {
        absl::StatusOr<Batch> b =
            ParseInfluxLines(body, InfluxPrecision::kNanoseconds, kNow, Limits{}, lookup);
        EXPECT_TRUE(b.ok()) << b.status();
        return b.ok() ? *std::move(b) : Batch{};
      },
      4);
}

TEST(SeriesCacheParseTest, InfluxMixesCachedAndNewFieldsAndStillChecksValues) {
  SeriesCache cache(1 << 20);
  FakeStorage storage;
  storage.Ingest(cache, Protocol::kInflux, [](SeriesLookup* lookup) {
    return ParseInfluxLines("cpu,host=a user=1 1700000000000000000\n",
                            InfluxPrecision::kNanoseconds, kNow, Limits{}, lookup);
  });
  std::optional<SeriesLookup> lookup(std::in_place, &cache, Protocol::kInflux);
  absl::StatusOr<Batch> b =
      ParseInfluxLines("cpu,host=a user=2,idle=3 1700000000000000000\n",
                       InfluxPrecision::kNanoseconds, kNow, Limits{}, &*lookup);
  lookup.reset();  // one lookup at a time per thread
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ(2u, b->series.size());
  EXPECT_EQ(1u, b->RefOf(0));
  EXPECT_EQ(0u, b->RefOf(1));
  EXPECT_EQ(model::Labels(std::vector<model::Label>{{"__name__", "cpu_idle"}, {"host", "a"}}),
            b->series[1]);

  // A cached series does not skip the checks of the line's values.
  SeriesLookup again(&cache, Protocol::kInflux);
  absl::StatusOr<Batch> bad =
      ParseInfluxLines("cpu,host=a user=\"x\" 1700000000000000000\n", InfluxPrecision::kNanoseconds,
                       kNow, Limits{}, &again);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ("user", GetBadInput(bad.status())->field);
}

TEST(SeriesCacheParseTest, InfluxTagOrderIsAnotherSpellingOfTheSameSeries) {
  SeriesCache cache(1 << 20);
  FakeStorage storage;
  for (const char* line :
       {"m,a=1,b=2 v=1 1700000000000000000\n", "m,b=2,a=1 v=2 1700000000000000000\n"}) {
    SeriesLookup lookup(&cache, Protocol::kInflux);
    absl::StatusOr<Batch> b =
        ParseInfluxLines(line, InfluxPrecision::kNanoseconds, kNow, Limits{}, &lookup);
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_EQ(0u, ByRef(*b)) << line;  // each spelling is new to the cache
    EXPECT_EQ(std::vector<model::SeriesRef>{1}, storage.Commit(*b)) << line;
    storage.Learn(lookup, &*b);
  }
  EXPECT_EQ(2u, cache.stats().entries);  // both spellings now lead to ref 1
}

prometheus::WriteRequest RemoteWriteRequest() {
  prometheus::WriteRequest request;
  for (int i = 0; i < 3; ++i) {
    prometheus::TimeSeries* ts = request.add_timeseries();
    for (auto [name, value] : {std::pair<std::string, std::string>{"__name__", "up"},
                               {"job", "j" + std::to_string(i)},
                               {"empty", ""}}) {
      prometheus::Label* label = ts->add_labels();
      label->set_name(name);
      label->set_value(value);
    }
    prometheus::Sample* sample = ts->add_samples();
    sample->set_timestamp(kNow - i);
    sample->set_value(i);
  }
  return request;
}

std::string Snappy(const prometheus::WriteRequest& request) {
  std::string out;
  const std::string raw = request.SerializeAsString();
  snappy::Compress(raw.data(), raw.size(), &out);
  return out;
}

TEST(SeriesCacheParseTest, RemoteWriteLabelMessages) {
  const std::string body = Snappy(RemoteWriteRequest());
  ExpectSameSeriesWithCache(
      Protocol::kRemoteWrite,
      [&](SeriesLookup* lookup) {
        absl::StatusOr<Batch> b = ParseRemoteWrite(body, 1 << 20, kNow, Limits{}, lookup);
        EXPECT_TRUE(b.ok()) << b.status();
        return b.ok() ? *std::move(b) : Batch{};
      },
      3);
}

TEST(SeriesCacheParseTest, RemoteWriteCachedLabelsStillCheckHistogramsAndTimestamps) {
  SeriesCache cache(1 << 20);
  FakeStorage storage;
  storage.Ingest(cache, Protocol::kRemoteWrite, [](SeriesLookup* lookup) {
    return ParseRemoteWrite(Snappy(RemoteWriteRequest()), 1 << 20, kNow, Limits{}, lookup);
  });
  prometheus::WriteRequest histogram = RemoteWriteRequest();
  histogram.mutable_timeseries(1)->add_histograms();
  std::optional<SeriesLookup> lookup(std::in_place, &cache, Protocol::kRemoteWrite);
  absl::StatusOr<Batch> b = ParseRemoteWrite(Snappy(histogram), 1 << 20, kNow, Limits{}, &*lookup);
  lookup.reset();  // one lookup at a time per thread
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(1, GetBadInput(b.status())->item);
  EXPECT_THAT(b.status().message(), HasSubstr("native histograms"));

  prometheus::WriteRequest future = RemoteWriteRequest();
  future.mutable_timeseries(2)->mutable_samples(0)->set_timestamp(kNow + 365LL * 86'400'000);
  SeriesLookup again(&cache, Protocol::kRemoteWrite);
  b = ParseRemoteWrite(Snappy(future), 1 << 20, kNow, Limits{}, &again);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(2, GetBadInput(b.status())->item);
  EXPECT_EQ("ts", GetBadInput(b.status())->field);
}

TEST(SeriesCacheParseTest, GraphitePathsWithTags) {
  const std::string body =
      "a.b.c 1 1700000000\n"
      "a.b.c;dc=x;host=h 2 1700000000\n"
      "a.b.c 3 1700000010\n"
      "d 4 -1\n";
  ExpectSameSeriesWithCache(
      Protocol::kGraphite,
      [&](SeriesLookup* lookup) {
        GraphiteParseResult r =
            ParseGraphiteLines(body, 0, kNow, Limits{}, kDefaultGraphiteMaxLineBytes, lookup);
        EXPECT_EQ(0u, r.error_count);
        return std::move(r.batch);
      },
      3);
}

}  // namespace
}  // namespace espy::ingest
