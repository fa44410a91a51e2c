#include "storage/index/postings.h"

#include "gtest/gtest.h"

namespace espy::storage::index {
namespace {

model::Matcher M(model::MatchType t, std::string name, std::string value) {
  return *model::Matcher::Make(t, std::move(name), std::move(value));
}

class MemPostingsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Add(1, {{"__name__", "cpu"}, {"host", "web-1"}, {"region", "eu"}});
    Add(2, {{"__name__", "cpu"}, {"host", "web-2"}, {"region", "us"}});
    Add(3, {{"__name__", "cpu"}, {"host", "db-1"}});
    Add(4, {{"__name__", "mem"}, {"host", "web-1"}, {"region", "eu"}});
  }
  void Add(model::SeriesRef ref, std::vector<model::Label> labels) {
    postings_.Add(ref, model::Labels(std::move(labels)));
  }
  Postings Select(std::vector<model::Matcher> ms) { return postings_.Select(ms); }
  MemPostings postings_;
};

using model::MatchType;

TEST_F(MemPostingsTest, EqualityIntersects) {
  EXPECT_EQ(Postings({1}), Select({M(MatchType::kEqual, "__name__", "cpu"),
                                   M(MatchType::kEqual, "region", "eu")}));
  EXPECT_EQ(Postings({}), Select({M(MatchType::kEqual, "host", "nope")}));
}

TEST_F(MemPostingsTest, NotEqualKeepsSeriesWithoutTheLabel) {
  EXPECT_EQ(Postings({2, 3}), Select({M(MatchType::kEqual, "__name__", "cpu"),
                                      M(MatchType::kNotEqual, "region", "eu")}));
}

TEST_F(MemPostingsTest, RegexUsesValueDictionary) {
  EXPECT_EQ(Postings({1, 2, 4}), Select({M(MatchType::kRegexMatch, "host", "web-.*")}));
  EXPECT_EQ(Postings({3}), Select({M(MatchType::kEqual, "__name__", "cpu"),
                                   M(MatchType::kRegexNoMatch, "host", "web-.*")}));
}

TEST_F(MemPostingsTest, MatchEmptyRegexSelectsMissingLabel) {
  // region=~"" matches series without a region label.
  EXPECT_EQ(Postings({3}), Select({M(MatchType::kRegexMatch, "region", "")}));
}

TEST_F(MemPostingsTest, NoMatchersIsEverything) { EXPECT_EQ(Postings({1, 2, 3, 4}), Select({})); }

TEST_F(MemPostingsTest, NamesAndValuesSorted) {
  EXPECT_EQ(std::vector<std::string>({"__name__", "host", "region"}), postings_.LabelNames());
  EXPECT_EQ(std::vector<std::string>({"db-1", "web-1", "web-2"}), postings_.LabelValues("host"));
}

TEST(PostingsTest, SetOperations) {
  Postings a = {1, 3, 5, 7}, b = {3, 4, 5};
  EXPECT_EQ(Postings({3, 5}), Intersect(a, b));
  EXPECT_EQ(Postings({1, 3, 4, 5, 7}), Merge({&a, &b}));
  EXPECT_EQ(Postings({1, 7}), Without(a, b));
  Postings big;
  for (uint64_t i = 0; i < 1000; ++i) big.push_back(i * 2);
  EXPECT_EQ(Postings({4, 500}), Intersect(Postings({3, 4, 500, 5001}), big));
}

}  // namespace
}  // namespace espy::storage::index
