#include "http/types.h"

#include <random>
#include <string>

#include "fmt/format.h"
#include "gtest/gtest.h"

namespace espy::http {
namespace {

// The escaping rules, one byte at a time.
std::string Reference(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"') {
      out += "\\\"";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20) {
      out += fmt::format("\\u{:04x}", c);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out + "\"";
}

std::string Escaped(std::string_view s) {
  std::string out;
  AppendJsonString(s, &out);
  return out;
}

TEST(AppendJsonStringTest, EscapesQuotesBackslashesAndControlBytes) {
  EXPECT_EQ("\"\"", Escaped(""));
  EXPECT_EQ("\"host-0001.example\"", Escaped("host-0001.example"));
  EXPECT_EQ("\"a\\\"b\\\\c\\nd\\re\\tf\\u0001\\u001f\"", Escaped("a\"b\\c\nd\re\tf\x01\x1f"));
  // At every position of a long clean run, where bytes are checked 8 at a time.
  for (size_t at = 0; at < 20; ++at) {
    for (char bad : {'"', '\\', '\n', '\x00', '\x1f'}) {
      std::string s(20, 'x');
      s[at] = bad;
      EXPECT_EQ(Reference(s), Escaped(s)) << "at " << at << " byte " << int{bad};
    }
  }
  // UTF-8 and bytes just above the escaped ones pass through.
  EXPECT_EQ("\"caf\xc3\xa9 \x7f !#[]\"", Escaped("caf\xc3\xa9 \x7f !#[]"));
}

TEST(AppendJsonStringTest, MatchesTheRulesOnRandomBytes) {
  std::mt19937 rng(7);
  // Mostly printable, some of every byte value.
  std::uniform_int_distribution<int> len(0, 40), byte(0, 255), printable(0x20, 0x7e), pick(0, 9);
  for (int i = 0; i < 20'000; ++i) {
    std::string s(static_cast<size_t>(len(rng)), ' ');
    for (char& c : s) c = static_cast<char>(pick(rng) == 0 ? byte(rng) : printable(rng));
    ASSERT_EQ(Reference(s), Escaped(s)) << i;
  }
}

}  // namespace
}  // namespace espy::http
