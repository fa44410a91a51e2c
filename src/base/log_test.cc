// Tests for the log line formats: every line is strict logfmt (checked by a
// parser written here, apart from the one the formatter uses) or one JSON
// object (checked by Boost.JSON), whatever the message and field values hold.
#include "base/log.h"

#include <map>
#include <regex>
#include <sstream>

#include "boost/json.hpp"
#include "gtest/gtest.h"
#include "spdlog/sinks/ostream_sink.h"

namespace espy::base {
namespace {

using Fields = std::map<std::string, std::string>;

// A strict logfmt line parser: key=value pairs separated by one space; keys
// are bare words; a value is bare (no space, '=', '"' or control byte) or a
// quoted string whose only escapes are \" \\ \n \r \t \u00XX. Anything else
// (a stray quote, an unescaped control byte, a repeated key) fails the test.
Fields StrictLogfmt(const std::string& line) {
  Fields out;
  size_t i = 0;
  auto fail = [&](const std::string& why) {
    ADD_FAILURE() << why << " at " << i << " in: " << line;
    return Fields{};
  };
  auto bare = [](char c) { return static_cast<unsigned char>(c) > ' ' && c != '=' && c != '"'; };
  while (i < line.size()) {
    if (i > 0 && line[i++] != ' ') return fail("want one space between fields");
    size_t k = i;
    while (i < line.size() && bare(line[i])) ++i;
    if (i == k || i >= line.size() || line[i] != '=') return fail("want key=");
    std::string key = line.substr(k, i - k);
    ++i;
    std::string value;
    if (i < line.size() && line[i] == '"') {
      ++i;
      for (;;) {
        if (i >= line.size()) return fail("unterminated quoted value");
        char c = line[i++];
        if (c == '"') break;
        if (static_cast<unsigned char>(c) < 0x20) return fail("raw control byte in value");
        if (c != '\\') {
          value += c;
          continue;
        }
        char e = i < line.size() ? line[i++] : '\0';
        if (e == '"' || e == '\\') {
          value += e;
        } else if (e == 'n') {
          value += '\n';
        } else if (e == 'r') {
          value += '\r';
        } else if (e == 't') {
          value += '\t';
        } else if (e == 'u' && line.compare(i, 2, "00") == 0) {
          value += static_cast<char>(std::stoi(line.substr(i + 2, 2), nullptr, 16));
          i += 4;
        } else {
          return fail("bad escape");
        }
      }
      if (i < line.size() && line[i] != ' ') return fail("text after a closing quote");
    } else {
      size_t v = i;
      while (i < line.size() && bare(line[i])) ++i;
      if (i == v) return fail("empty bare value");
      value = line.substr(v, i - v);
    }
    if (!out.emplace(key, value).second) return fail("repeated key " + key);
  }
  return out;
}

class LogTest : public ::testing::Test {
 protected:
  // A logger in `format` writing into this test's buffer.
  Logger Make(LogFormat format, spdlog::level::level_enum level = spdlog::level::info) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    sink->set_formatter(MakeLineFormatter(format));
    auto logger = std::make_shared<spdlog::logger>("storage", sink);
    logger->set_level(level);
    return logger;
  }

  // The lines written so far, without their newlines; each ended by one.
  std::vector<std::string> Lines() {
    std::vector<std::string> lines;
    std::string text = out_.str(), line;
    EXPECT_TRUE(text.empty() || text.back() == '\n');
    std::istringstream in(text);
    while (std::getline(in, line)) lines.push_back(line);
    return lines;
  }

  std::ostringstream out_;
};

// Values that a naive key=value printer gets wrong.
const std::vector<std::string> kAwkward = {
    "",
    "plain",
    "two words",
    "a=b",
    R"(probes[0] "x": url: want http://)",
    "back\\slash",
    "quote\" and \\\" escaped",
    "line\nbreak\ttab\rcr",
    std::string("nul\0byte\x01\x7f", 10),
    "caf\xc3\xa9 \xe2\x82\xac",
};

TEST_F(LogTest, EveryLogfmtLineParsesStrictlyAndKeepsTheValues) {
  Logger log = Make(LogFormat::kLogfmt);
  for (const std::string& v : kAwkward) Warn(log, v, "err", v, "n", 42);
  std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), kAwkward.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    SCOPED_TRACE(lines[i]);
    Fields f = StrictLogfmt(lines[i]);
    EXPECT_EQ(f["msg"], kAwkward[i]);
    EXPECT_EQ(f["err"], kAwkward[i]);
    EXPECT_EQ(f["n"], "42");
    EXPECT_EQ(f["level"], "warn");  // as --log-level spells it, not "warning"
    EXPECT_EQ(f["component"], "storage");
    EXPECT_EQ(f.size(), 6u);
  }
}

TEST_F(LogTest, LineStartsWithTimestampLevelComponentMessage) {
  Logger log = Make(LogFormat::kLogfmt);
  Info(log, "wal replayed", "segments", 3, "dir", "/data/wal");
  std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(std::regex_match(
      lines[0], std::regex(R"(ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=info )"
                           R"(component=storage msg="wal replayed" segments=3 dir=/data/wal)")))
      << lines[0];
}

TEST_F(LogTest, LevelsAreNamedAsTheFlagNamesThem) {
  Logger log = Make(LogFormat::kLogfmt, spdlog::level::debug);
  Debug(log, "d");
  Info(log, "i");
  Warn(log, "w");
  Error(log, "e");
  log->critical("c");
  std::vector<std::string> levels;
  for (const std::string& line : Lines()) levels.push_back(StrictLogfmt(line)["level"]);
  EXPECT_EQ(levels, (std::vector<std::string>{"debug", "info", "warn", "error", "error"}));
  for (const char* name : {"debug", "info", "warn", "error"}) {
    auto level = ParseLogLevel(name);
    ASSERT_TRUE(level.ok());
    EXPECT_EQ(LevelName(*level), name);
  }
}

TEST_F(LogTest, BelowTheLevelNothingIsFormatted) {
  Logger log = Make(LogFormat::kLogfmt, spdlog::level::warn);
  Info(log, "hidden", "k", 1);
  Warn(log, "shown");
  ASSERT_EQ(Lines().size(), 1u);
}

TEST_F(LogTest, TextLoggedStraightThroughSpdlogStillMakesValidLines) {
  Logger log = Make(LogFormat::kLogfmt);
  log->warn("wal close failed: {}", "disk \"full\"");
  log->info("msg=ok count=3");
  std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(StrictLogfmt(lines[0])["msg"], "wal close failed: disk \"full\"");
  Fields ok = StrictLogfmt(lines[1]);
  EXPECT_EQ(ok["msg"], "ok");
  EXPECT_EQ(ok["count"], "3");
}

TEST_F(LogTest, JsonLinesAreOneObjectEachWithTheSameFields) {
  Logger log = Make(LogFormat::kJson);
  for (const std::string& v : kAwkward) Error(log, v, "err", v, "n", 7);
  log->warn("raw text with \"quotes\"");
  std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), kAwkward.size() + 1);
  for (size_t i = 0; i < lines.size(); ++i) {
    SCOPED_TRACE(lines[i]);
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(lines[i], ec);
    ASSERT_FALSE(ec) << ec.message();
    ASSERT_TRUE(v.is_object());
    const boost::json::object& o = v.as_object();
    EXPECT_TRUE(std::regex_match(std::string(o.at("ts").as_string()),
                                 std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")));
    EXPECT_EQ(o.at("component").as_string(), "storage");
    if (i == kAwkward.size()) {
      EXPECT_EQ(o.at("level").as_string(), "warn");
      EXPECT_EQ(o.at("msg").as_string(), "raw text with \"quotes\"");
      EXPECT_EQ(o.size(), 4u);
      continue;
    }
    EXPECT_EQ(o.at("level").as_string(), "error");
    EXPECT_EQ(o.at("msg").as_string(), kAwkward[i]);
    EXPECT_EQ(o.at("err").as_string(), kAwkward[i]);
    EXPECT_EQ(o.at("n").as_string(), "7");
    EXPECT_EQ(o.size(), 6u);
  }
}

TEST_F(LogTest, JsonReplacesBytesThatAreNotUtf8) {
  Logger log = Make(LogFormat::kJson);
  Info(log, "bad \xff\xc3 bytes", "k", "\xe2\x82");
  std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(lines[0], ec);
  ASSERT_FALSE(ec) << lines[0];
  EXPECT_EQ(v.at("msg").as_string(), "bad \xef\xbf\xbd\xef\xbf\xbd bytes");
  EXPECT_EQ(v.at("k").as_string(), "\xef\xbf\xbd\xef\xbf\xbd");
}

TEST(LogFormatTest, ParsesTheFlagValues) {
  EXPECT_EQ(*ParseLogFormat("logfmt"), LogFormat::kLogfmt);
  EXPECT_EQ(*ParseLogFormat("json"), LogFormat::kJson);
  EXPECT_FALSE(ParseLogFormat("text").ok());
}

}  // namespace
}  // namespace espy::base
