#include "encoding/coding.h"

#include <cmath>
#include <limits>

#include "encoding/crc32c.h"
#include "gtest/gtest.h"

namespace espy::encoding {
namespace {

TEST(CodingTest, VarintRoundTripsEdgeValues) {
  const uint64_t values[] = {0, 1, 127, 128, 300, 1ull << 35, std::numeric_limits<uint64_t>::max()};
  std::string buf;
  for (uint64_t v : values) PutVarint64(&buf, v);
  std::string_view in = buf;
  for (uint64_t v : values) {
    uint64_t got;
    ASSERT_TRUE(GetVarint64(&in, &got));
    EXPECT_EQ(v, got);
  }
  EXPECT_TRUE(in.empty());
}

TEST(CodingTest, TruncatedVarintFails) {
  std::string buf;
  PutVarint64(&buf, 1ull << 40);
  std::string_view in(buf.data(), buf.size() - 1);
  uint64_t v;
  EXPECT_FALSE(GetVarint64(&in, &v));
}

TEST(CodingTest, SignedAndDoubleRoundTrip) {
  std::string buf;
  PutVarsint64(&buf, -1);
  PutVarsint64(&buf, std::numeric_limits<int64_t>::min());
  PutDouble(&buf, -0.5);
  PutDouble(&buf, std::numeric_limits<double>::quiet_NaN());
  std::string_view in = buf;
  int64_t s;
  double d;
  ASSERT_TRUE(GetVarsint64(&in, &s));
  EXPECT_EQ(-1, s);
  ASSERT_TRUE(GetVarsint64(&in, &s));
  EXPECT_EQ(std::numeric_limits<int64_t>::min(), s);
  ASSERT_TRUE(GetDouble(&in, &d));
  EXPECT_EQ(-0.5, d);
  ASSERT_TRUE(GetDouble(&in, &d));
  EXPECT_TRUE(std::isnan(d));
}

TEST(CodingTest, LengthPrefixedRejectsOverlongLength) {
  std::string buf;
  PutVarint64(&buf, 10);
  buf += "abc";
  std::string_view in = buf, out;
  EXPECT_FALSE(GetLengthPrefixed(&in, &out));
}

// Known answers from RFC 3720 appendix B.4.
TEST(Crc32cTest, StandardVectors) {
  EXPECT_EQ(0x8a9136aau, crc32c::Value(std::string(32, '\0')));
  EXPECT_EQ(0x62a8ab43u, crc32c::Value(std::string(32, '\xff')));
  EXPECT_EQ(0xe3069283u, crc32c::Value("123456789"));
}

TEST(Crc32cTest, ExtendEqualsWhole) {
  std::string s = "hello, write-ahead log";
  uint32_t part = crc32c::Extend(0, s.data(), 5);
  EXPECT_EQ(crc32c::Value(s), crc32c::Extend(part, s.data() + 5, s.size() - 5));
}

}  // namespace
}  // namespace espy::encoding
