#include "ingest/graphite_parser.h"

#include <string>
#include <vector>

#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ingest/bad_input.h"

namespace espy::ingest {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr int64_t kNow = 1'700'000'000'000;

std::vector<std::string> Render(const Batch& batch) {
  std::vector<std::string> out;
  for (const model::BatchSample& s : batch.samples) {
    out.push_back(fmt::format("{}@{}={}", batch.series[s.series].ToString(), s.ts, s.value));
  }
  return out;
}

// "line N field: problem" for each kept error.
std::vector<std::string> RenderErrors(const std::vector<GraphiteLineError>& errors) {
  std::vector<std::string> out;
  for (const GraphiteLineError& e : errors) {
    std::optional<BadInput> bad = GetBadInput(e.status);
    EXPECT_TRUE(bad.has_value()) << e.status;
    if (!bad) continue;
    EXPECT_EQ(bad->item, e.line);
    out.push_back(fmt::format("line {} {}: {}", e.line, bad->field, bad->problem));
  }
  return out;
}

GraphiteParseResult Parse(std::string_view chunk, const Limits& limits = Limits{},
                          size_t max_line_bytes = kDefaultGraphiteMaxLineBytes) {
  return ParseGraphiteLines(chunk, 0, kNow, limits, max_line_bytes);
}

TEST(GraphiteParserTest, PathValueTimestamp) {
  GraphiteParseResult r = Parse("servers.web1.cpu.load 0.42 1700000000\n");
  EXPECT_THAT(Render(r.batch), ElementsAre("servers.web1.cpu.load{}@1700000000000=0.42"));
  EXPECT_THAT(r.errors, IsEmpty());
  EXPECT_EQ(r.error_count, 0u);
}

TEST(GraphiteParserTest, TaggedSeriesBecomeLabels) {
  GraphiteParseResult r = Parse("cpu.load;host=web1;dc=eu 1 1700000000\n");
  ASSERT_THAT(r.errors, IsEmpty());
  EXPECT_THAT(Render(r.batch), ElementsAre("cpu.load{dc=\"eu\",host=\"web1\"}@1700000000000=1"));
}

TEST(GraphiteParserTest, MinusOneOrMissingTimestampMeansNow) {
  GraphiteParseResult r = Parse("a 1 -1\nb 2\n");
  ASSERT_THAT(r.errors, IsEmpty());
  EXPECT_THAT(Render(r.batch), ElementsAre("a{}@1700000000000=1", "b{}@1700000000000=2"));
}

TEST(GraphiteParserTest, FractionalSecondsTruncateTowardThePast) {
  GraphiteParseResult r =
      Parse("a 1 1700000000.5\na 1 1700000000.123999\na 1 -1.0001\na 1 -0.5\na 1 1.7e9\na 1 0\n");
  ASSERT_THAT(RenderErrors(r.errors), IsEmpty());
  EXPECT_THAT(Render(r.batch),
              ElementsAre("a{}@1700000000500=1", "a{}@1700000000123=1", "a{}@-1001=1", "a{}@-500=1",
                          "a{}@1700000000000=1", "a{}@0=1"));
}

TEST(GraphiteParserTest, ValuesInCarbonsSpellings) {
  GraphiteParseResult r = Parse("a -1.5 0\na +2 0\na 1e3 0\na 7 0\n");
  ASSERT_THAT(RenderErrors(r.errors), IsEmpty());
  EXPECT_THAT(Render(r.batch), ElementsAre("a{}@0=-1.5", "a{}@0=2", "a{}@0=1000", "a{}@0=7"));
}

TEST(GraphiteParserTest, TabsRunsOfSpacesCrlfAndBlankLines) {
  GraphiteParseResult r = Parse("  a\t1   0  \r\n\r\n\n\tb 2 0\r\n");
  ASSERT_THAT(RenderErrors(r.errors), IsEmpty());
  EXPECT_THAT(Render(r.batch), ElementsAre("a{}@0=1", "b{}@0=2"));
}

TEST(GraphiteParserTest, LastLineWithoutNewlineIsParsed) {
  EXPECT_THAT(Render(Parse("a 1 0\nb 2 0").batch), ElementsAre("a{}@0=1", "b{}@0=2"));
}

TEST(GraphiteParserTest, BadLinesAreSkippedAndReportedWithLineNumbers) {
  GraphiteParseResult r = Parse(
      "good 1 0\n"
      "onlypath\n"
      "bad.value x 0\n"
      "good 2 0\n"
      "bad.ts 1 yesterday\n"
      "a 1 0 extra\n"
      "good 3 0\n");
  EXPECT_THAT(Render(r.batch), ElementsAre("good{}@0=1", "good{}@0=2", "good{}@0=3"));
  EXPECT_EQ(r.batch.series.size(), 1u);
  EXPECT_EQ(r.error_count, 4u);
  EXPECT_THAT(RenderErrors(r.errors),
              ElementsAre("line 1 value: want \"path value [timestamp]\", got only \"onlypath\"",
                          "line 2 value: want a number, got \"x\"",
                          "line 4 timestamp: want epoch seconds (or -1 for now), got \"yesterday\"",
                          "line 5 : want \"path value [timestamp]\", got extra text \"extra\""));
}

TEST(GraphiteParserTest, FirstLineNumbersTheChunk) {
  GraphiteParseResult r = ParseGraphiteLines("ok 1 0\nbad\n", 41, kNow, Limits{});
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].line, 42);
}

TEST(GraphiteParserTest, TagErrors) {
  struct Case {
    std::string_view line;
    std::string_view expected;
  };
  for (const Case& c : std::vector<Case>{
           {";a=b 1 0", "line 0 path: empty metric path before the tags"},
           {"m;ab 1 0", "line 0 ab: tag has no '=': want ;name=value"},
           {"m;a=b; 1 0", "line 0 : tag has no '=': want ;name=value"},
           {"m;=b 1 0", "line 0 : empty tag name in \"=b\""},
           {"m;a= 1 0", "line 0 a: empty tag value"},
           {"m;a=~b 1 0", "line 0 a: tag values may not start with '~'"},
           {"m;a!=b 1 0", "line 0 a!: tag names may not contain '!' or '^'"},
           {"m;a^=b 1 0", "line 0 a^: tag names may not contain '!' or '^'"},
           {"m;__name__=b 1 0", "line 0 __name__: tag names starting with \"__\" are reserved"},
           {"m;a=1;a=2 1 0", "line 0 a: tag appears twice on the line"},
       }) {
    GraphiteParseResult r = Parse(c.line);
    EXPECT_THAT(r.batch.samples, IsEmpty()) << c.line;
    EXPECT_THAT(RenderErrors(r.errors), ElementsAre(std::string(c.expected))) << c.line;
  }
}

TEST(GraphiteParserTest, TagValuesMayHoldEqualsSigns) {
  GraphiteParseResult r = Parse("m;q=a=b 1 0");
  ASSERT_THAT(RenderErrors(r.errors), IsEmpty());
  EXPECT_EQ(r.batch.series[0].Get("q"), "a=b");
}

TEST(GraphiteParserTest, LimitsApplyPerLine) {
  Limits limits;
  limits.max_labels_per_series = 2;
  limits.max_future_millis = 1000;
  GraphiteParseResult r = Parse("m;a=1;b=2 1 0\nm 1 1800000000\nm 1 0\n", limits);
  EXPECT_THAT(Render(r.batch), ElementsAre("m{}@0=1"));
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_EQ(r.errors[0].line, 0);
  EXPECT_THAT(r.errors[0].status.message(), HasSubstr("at most 2"));
  EXPECT_EQ(r.errors[1].line, 1);
  EXPECT_EQ(GetBadInput(r.errors[1].status)->field, "ts");
}

TEST(GraphiteParserTest, TooLongLineIsAnError) {
  GraphiteParseResult r = Parse("abcdefghij 1 0\nab 1 0\n", Limits{}, 10);
  EXPECT_THAT(Render(r.batch), ElementsAre("ab{}@0=1"));
  EXPECT_THAT(RenderErrors(r.errors),
              ElementsAre("line 0 : line is 14 bytes, longer than the 10-byte limit; skipped"));
}

TEST(GraphiteParserTest, KeepsTheFirstHundredErrorsAndCountsAll) {
  std::string chunk;
  for (int i = 0; i < 150; ++i) chunk += "bad\n";
  chunk += "good 1 0\n";
  GraphiteParseResult r = Parse(chunk);
  EXPECT_EQ(r.error_count, 150u);
  EXPECT_EQ(r.errors.size(), kMaxGraphiteErrorsKept);
  EXPECT_EQ(r.batch.samples.size(), 1u);
}

// Feeds `reads` through a splitter and parses every block, as a listener does.
struct StreamResult {
  std::vector<std::string> samples;
  std::vector<std::string> errors;
};
StreamResult ParseStream(const std::vector<std::string>& reads, size_t max_line_bytes) {
  GraphiteLineSplitter splitter(max_line_bytes);
  StreamResult out;
  auto parse = [&](GraphiteLineSplitter::Block block) {
    GraphiteParseResult r =
        ParseGraphiteLines(block.text, block.first_line, kNow, Limits{}, max_line_bytes);
    for (std::string& s : Render(r.batch)) out.samples.push_back(std::move(s));
    for (std::string& e : RenderErrors(r.errors)) out.errors.push_back(std::move(e));
  };
  for (const std::string& read : reads) {
    std::vector<GraphiteLineError> errors;
    parse(splitter.Feed(read, &errors));
    for (std::string& e : RenderErrors(errors)) out.errors.push_back(std::move(e));
  }
  parse(splitter.Finish());
  return out;
}

TEST(GraphiteLineSplitterTest, KeepsPartialLinesAcrossReads) {
  StreamResult r = ParseStream({"a 1 ", "0\nb 2", " 0\nc", " 3 0\r", "\n"}, 1024);
  EXPECT_THAT(r.errors, IsEmpty());
  EXPECT_THAT(r.samples, ElementsAre("a{}@0=1", "b{}@0=2", "c{}@0=3"));
}

TEST(GraphiteLineSplitterTest, ByteByByteEqualsOneRead) {
  const std::string stream = "a;x=1 1 0\nbad line here\nb 2 1\n\nc 3 2\nbad\nd 4";
  std::vector<std::string> bytes;
  for (char c : stream) bytes.emplace_back(1, c);
  StreamResult whole = ParseStream({stream}, 1024);
  StreamResult split = ParseStream(bytes, 1024);
  EXPECT_THAT(whole.samples,
              ElementsAre("a{x=\"1\"}@0=1", "b{}@1000=2", "c{}@2000=3", "d{}@1700000000000=4"));
  EXPECT_THAT(whole.errors, ElementsAre(HasSubstr("line 1 "), HasSubstr("line 5 ")));
  EXPECT_EQ(split.samples, whole.samples);
  EXPECT_EQ(split.errors, whole.errors);
}

TEST(GraphiteLineSplitterTest, CountsLinesInLongReadsOfAnySize) {
  // Lines of up to 40 bytes (blank ones too, and UTF-8 with a byte 0x8a,
  // which differs from '\n' only in its high bit), and a bad line every 37
  // lines: each error must name its line.
  std::string stream;
  std::vector<std::string> want_errors;
  for (int i = 0; i < 600; ++i) {
    if (i % 37 == 5) {
      stream += "bad\n";
      want_errors.push_back(fmt::format("line {} ", i));  // numbered from 0
    } else if (i % 11 == 3) {
      stream += "\n";
    } else {
      stream += fmt::format("m\xc3\xa9\xc3\x8a.{} {} 0",
                            std::string(static_cast<size_t>(i % 23), 'x'), i);
      stream += "\n";
    }
  }
  for (size_t read_size : {size_t{1}, size_t{7}, size_t{8}, size_t{13}, size_t{64}, size_t{4096}}) {
    std::vector<std::string> reads;
    for (size_t at = 0; at < stream.size(); at += read_size)
      reads.push_back(stream.substr(at, read_size));
    StreamResult r = ParseStream(reads, 1024);
    ASSERT_EQ(r.errors.size(), want_errors.size()) << read_size;
    for (size_t e = 0; e < want_errors.size(); ++e) {
      EXPECT_THAT(r.errors[e], HasSubstr(want_errors[e])) << read_size;
    }
  }
  GraphiteLineSplitter splitter(1024);
  std::vector<GraphiteLineError> errors;
  splitter.Feed(stream, &errors);
  EXPECT_EQ(splitter.lines(), 600);
}

TEST(GraphiteLineSplitterTest, OverLongPartialLineIsReportedOnceAndDiscarded) {
  GraphiteLineSplitter splitter(8);
  std::vector<GraphiteLineError> errors;
  EXPECT_EQ(splitter.Feed("a 1 0\nxxxxxx", &errors).text, "a 1 0\n");
  EXPECT_THAT(errors, IsEmpty());
  EXPECT_EQ(splitter.Feed("xxxxxx", &errors).text, "");  // now 12 bytes: dropped
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].line, 1);
  EXPECT_THAT(errors[0].status.message(), HasSubstr("longer than the 8-byte limit"));
  EXPECT_EQ(splitter.Feed("yyyyyyyyyyyyyyyyyyyy", &errors).text, "");  // still discarding
  GraphiteLineSplitter::Block block = splitter.Feed("zz\nb 2 0\nc", &errors);
  EXPECT_EQ(block.text, "b 2 0\n");
  EXPECT_EQ(block.first_line, 2);
  EXPECT_EQ(errors.size(), 1u);
  block = splitter.Finish();
  EXPECT_EQ(block.text, "c");
  EXPECT_EQ(block.first_line, 3);
  EXPECT_EQ(splitter.lines(), 4);
}

TEST(GraphiteLineSplitterTest, LineCompletedPastTheLimitIsReportedByTheParser) {
  StreamResult r = ParseStream({"ok 1 0\nabcdef", "ghij 1 0\nok 2 0\n"}, 10);
  EXPECT_THAT(r.samples, ElementsAre("ok{}@0=1", "ok{}@0=2"));
  EXPECT_THAT(r.errors,
              ElementsAre("line 1 : line is 14 bytes, longer than the 10-byte limit; skipped"));
}

TEST(GraphiteLineSplitterTest, WholeLinesInOneReadViewTheInput) {
  GraphiteLineSplitter splitter;
  std::vector<GraphiteLineError> errors;
  const std::string read = "a 1 0\nb 2 0\n";
  GraphiteLineSplitter::Block block = splitter.Feed(read, &errors);
  EXPECT_EQ(block.text.data(), read.data());
  EXPECT_EQ(block.text.size(), read.size());
  EXPECT_EQ(splitter.Finish().text, "");
}

}  // namespace
}  // namespace espy::ingest
