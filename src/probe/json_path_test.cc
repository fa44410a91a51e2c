#include "probe/json_path.h"

#include "boost/json/parse.hpp"
#include "boost/json/serialize.hpp"
#include "gtest/gtest.h"

namespace espy::probe {
namespace {

using Matches = std::vector<std::pair<std::string, std::vector<std::string>>>;

Matches SelectAll(std::string_view path, std::string_view json) {
  auto p = JsonPath::Parse(path, path[0] != '$');
  EXPECT_TRUE(p.ok()) << p.status();
  Matches out;
  boost::json::value doc = boost::json::parse(json);
  p->Select(doc, [&](const boost::json::value& v, const std::vector<std::string>& captures) {
    out.emplace_back(boost::json::serialize(v), captures);
  });
  return out;
}

TEST(JsonPathTest, KeysAndIndexesReachOneValue) {
  EXPECT_EQ(SelectAll("$.data.price", R"({"data":{"price":12.5}})"), (Matches{{"1.25E1", {}}}));
  EXPECT_EQ(SelectAll("$.quotes[1].v", R"({"quotes":[{"v":1},{"v":2}]})"), (Matches{{"2", {}}}));
  EXPECT_EQ(SelectAll(R"($["a.b"]['c'])", R"({"a.b":{"c":3}})"), (Matches{{"3", {}}}));
}

TEST(JsonPathTest, WildcardsCaptureKeysAndIndexes) {
  EXPECT_EQ(SelectAll("$.*.usd", R"({"bitcoin":{"usd":1},"ethereum":{"usd":2}})"),
            (Matches{{"1", {"bitcoin"}}, {"2", {"ethereum"}}}));
  EXPECT_EQ(SelectAll("$.q[*]", R"({"q":[5,6]})"), (Matches{{"5", {"0"}}, {"6", {"1"}}}));
  EXPECT_EQ(SelectAll("$.*.*", R"({"btc":{"usd":1,"eur":2}})"),
            (Matches{{"1", {"btc", "usd"}}, {"2", {"btc", "eur"}}}));
}

TEST(JsonPathTest, MissingPartsMatchNothing) {
  EXPECT_TRUE(SelectAll("$.a.b", R"({"a":1})").empty());
  EXPECT_TRUE(SelectAll("$.a[3]", R"({"a":[1]})").empty());
  EXPECT_TRUE(SelectAll("$.a[*]", R"({"a":5})").empty());
}

TEST(JsonPathTest, RelativePathsStartAtTheMatch) {
  EXPECT_EQ(SelectAll(".price", R"({"price":3})"), (Matches{{"3", {}}}));
  EXPECT_EQ(SelectAll(".", R"(7)"), (Matches{{"7", {}}}));
}

TEST(JsonPathTest, BadPathsSayWhereAndWhat) {
  auto p = JsonPath::Parse("data.price", false);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().message(),
            "bad JSON path \"data.price\" at character 1: a path starts with $ (want e.g. "
            "$.data[*].price or $.prices.*)");
  EXPECT_FALSE(JsonPath::Parse("$.a[", false).ok());
  EXPECT_FALSE(JsonPath::Parse("$.a[x]", false).ok());
  EXPECT_FALSE(JsonPath::Parse("$.a.", false).ok());
  EXPECT_FALSE(JsonPath::Parse("$a", false).ok());
  EXPECT_FALSE(JsonPath::Parse("$.price", true).ok());
}

TEST(JsonNumberTest, NumbersNumericStringsAndBooleans) {
  EXPECT_EQ(*JsonNumber(boost::json::parse("3")), 3);
  EXPECT_EQ(*JsonNumber(boost::json::parse("-2.5")), -2.5);
  EXPECT_EQ(*JsonNumber(boost::json::parse(R"("64000.5")")), 64000.5);
  EXPECT_EQ(*JsonNumber(boost::json::parse("true")), 1);
  EXPECT_EQ(JsonNumber(boost::json::parse(R"("n/a")")).status().message(),
            "want a number, got the string \"n/a\"");
  EXPECT_EQ(JsonNumber(boost::json::parse("null")).status().message(), "want a number, got null");
  EXPECT_FALSE(JsonNumber(boost::json::parse("{}")).ok());
}

}  // namespace
}  // namespace espy::probe
