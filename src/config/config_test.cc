#include "config/config.h"

#include <fstream>

#include "gtest/gtest.h"

namespace espy::config {
namespace {

std::string WriteFile(const std::string& name, const std::string& text) {
  std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(ConfigTest, DefaultsWhenNothingGiven) {
  auto c = Resolve({});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ("127.0.0.1", c->listen_host);
  EXPECT_EQ(5000, c->listen_port);
  EXPECT_EQ("./espy-data", c->data_dir);
  EXPECT_EQ(storage::wal::FsyncPolicy::kBatch, c->fsync);
  EXPECT_EQ(std::chrono::milliseconds(0), c->retention);  // keep forever
}

TEST(ConfigTest, RetentionIsOffByDefaultAndZeroTurnsItOff) {
  for (const char* off : {"0", "0d"}) {
    RawSettings raw;
    raw.values = {{"retention", "30d"}, {"retention", off}};
    auto c = Resolve(raw);
    ASSERT_TRUE(c.ok()) << off << ": " << c.status();
    EXPECT_EQ(std::chrono::milliseconds(0), c->retention) << off;
  }
  RawSettings raw;
  raw.values = {{"retention", "30d"}};
  auto c = Resolve(raw);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(std::chrono::hours(24 * 30), c->retention);
}

TEST(ConfigTest, LimitsFromFlagsAndFile) {
  std::string path = WriteFile("limits.yaml", "max-series: 1000\nquery_timeout: 30s\n");
  RawSettings raw;
  raw.config_file = path;
  raw.values = {{"max-new-series-per-minute", "50"}, {"query-max-samples", "1000000"},
                {"query-lookback-delta", "1m"},      {"stream-max-connections", "10"},
                {"stream-queue-points", "500"},      {"ingest-series-cache-size", "1MiB"}};
  auto c = Resolve(raw);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(1000u, c->max_series);
  EXPECT_EQ(50u, c->max_new_series_per_minute);
  EXPECT_EQ(std::chrono::seconds(30), c->query_timeout);
  EXPECT_EQ(1'000'000u, c->query_max_samples);
  EXPECT_EQ(std::chrono::minutes(1), c->query_lookback_delta);
  EXPECT_EQ(10u, c->stream_max_connections);
  EXPECT_EQ(500u, c->stream_queue_points);
  EXPECT_EQ(1u << 20, c->ingest_series_cache_bytes);
  EXPECT_EQ(64u << 20, Resolve({})->ingest_series_cache_bytes);
  auto bad = Resolve({.values = {{"max-series", "-1"}}, .config_file = ""});
  EXPECT_EQ(bad.status().message(),
            "--max-series: want a whole number from 0 to 9223372036854775807, got \"-1\"");
  bad = Resolve({.values = {{"stream-max-connections", "0"}}, .config_file = ""});
  EXPECT_EQ(bad.status().message(),
            "--stream-max-connections: want a whole number from 1 to 100000000, got \"0\"");
  bad = Resolve({.values = {{"query-timeout", "0s"}}, .config_file = ""});
  EXPECT_EQ(bad.status().message(), "--query-timeout: want a positive duration");
}

TEST(ConfigTest, FlagOrEnvBeatsFile) {
  std::string path =
      WriteFile("a.yaml", "listen: 127.0.0.1:6000\ndata_dir: /tmp/x\nfsync: never\n");
  RawSettings raw;
  raw.config_file = path;
  raw.values = {{"fsync", "always"}};
  auto c = Resolve(raw);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(6000, c->listen_port);
  EXPECT_EQ("/tmp/x", c->data_dir);
  EXPECT_EQ(storage::wal::FsyncPolicy::kAlways, c->fsync);
}

TEST(ConfigTest, BadValuesNameTheSettingAndWhatItWants) {
  struct Case {
    std::string name, value, want;
  } cases[] = {
      {"retention", "30m", "--retention: want >= 1h"},
      {"retention", "soon", "--retention: want a duration"},
      {"listen", "5000", "--listen: want host:port"},
      {"listen", "127.0.0.1:70000", "--listen: want host:port"},
      {"fsync", "sometimes", "--fsync: want batch, always or never"},
      {"max-body-size", "lots", "--max-body-size: want a size"},
      {"ingest-series-cache-size", "big", "--ingest-series-cache-size: want a size"},
      {"threads", "-1", "--threads: want a number"},
      {"query-max-concurrency", "-1",
       "--query-max-concurrency: want a whole number from 0 to 1024"},
      {"downsampling", "5m", "--downsampling: tier 1 \"5m\": want RESOLUTION:AGE"},
      {"downsampling", "5m:soon", "--downsampling: tier 1 \"5m:soon\": age: want a duration"},
      {"downsampling", "5m:30d,1m:1y",
       "--downsampling: tier 2 \"1m:1y\": want a coarser resolution and a greater age"},
      {"downsampling", "5m:30d,", "--downsampling: tier 2 \"\": want RESOLUTION:AGE"},
  };
  for (const Case& tc : cases) {
    RawSettings raw;
    raw.values = {{tc.name, tc.value}};
    auto c = Resolve(raw);
    ASSERT_FALSE(c.ok()) << tc.name << "=" << tc.value;
    EXPECT_NE(std::string::npos, std::string(c.status().message()).find(tc.want))
        << c.status().message();
  }
}

TEST(ConfigTest, FileErrorsNameFileAndLine) {
  std::string path = WriteFile("b.yaml", "listen: 127.0.0.1:6000\nlisen: 1\n");
  auto c = Resolve({{}, path});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(std::string::npos, std::string(c.status().message()).find("line 2"));
  EXPECT_NE(std::string::npos, std::string(c.status().message()).find("lisen"));

  auto missing = Resolve({{}, ::testing::TempDir() + "/nope.yaml"});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(std::string::npos, std::string(missing.status().message()).find("--config"));

  std::string broken = WriteFile("c.yaml", "listen: [\n");
  EXPECT_FALSE(Resolve({{}, broken}).ok());
}

TEST(ConfigTest, Durations) {
  EXPECT_EQ(std::chrono::milliseconds(5'400'000), *ParseDuration("1h30m"));
  EXPECT_EQ(std::chrono::milliseconds(500), *ParseDuration("500ms"));
  EXPECT_EQ(std::chrono::hours(24 * 14), *ParseDuration("2w"));
  EXPECT_FALSE(ParseDuration("").ok());
  EXPECT_FALSE(ParseDuration("5").ok());
  EXPECT_FALSE(ParseDuration("5x").ok());
}

TEST(ConfigTest, DownsamplingTiersParse) {
  auto tiers = ParseTiers("5m:30d,1h:1y");
  ASSERT_TRUE(tiers.ok()) << tiers.status();
  ASSERT_EQ(2u, tiers->size());
  EXPECT_EQ((storage::tier::TierSpec{300'000, 30LL * 86'400'000}), (*tiers)[0]);
  EXPECT_EQ((storage::tier::TierSpec{3'600'000, 365LL * 86'400'000}), (*tiers)[1]);
  EXPECT_TRUE(ParseTiers("")->empty());
  RawSettings raw;
  raw.values = {{"downsampling", "5m:30d,1h:1y"}, {"retention", "2y"}};
  auto c = Resolve(raw);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(*tiers, c->downsampling);
}

TEST(ConfigTest, DownsamplingAgesAreCheckedAgainstARetentionOnlyWhenOneIsSet) {
  RawSettings raw;
  raw.values = {{"downsampling", "5m:30d,1h:10y"}};  // no retention: tiers keep data forever
  auto c = Resolve(raw);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(2u, c->downsampling.size());
  raw.values.push_back({"retention", "1y"});
  c = Resolve(raw);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(std::string::npos,
            c.status().message().find(
                "--downsampling: a tier's age (315360000000ms) must be below --retention"))
      << c.status();
}

}  // namespace
}  // namespace espy::config
