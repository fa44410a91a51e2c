#include "query/promql/lexer.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace espy::query::promql {
namespace {

using ::testing::ElementsAre;

// "type:text" for every token up to and including EOF or the error.
std::vector<std::string> Lex(std::string_view input) {
  Lexer lexer(input);
  std::vector<std::string> out;
  while (true) {
    Token t = lexer.Next();
    if (t.type == TokenType::kEof) break;
    if (t.type == TokenType::kError) {
      out.push_back("error:" + std::string(t.text));
      break;
    }
    out.push_back(DescribeToken(t));
  }
  return out;
}

TEST(LexerTest, Numbers) {
  EXPECT_THAT(
      Lex("1 1.5 .5 5. 1e10 1E-3 0x1F 0755 Inf nan -Inf"),
      ElementsAre(R"(number "1")", R"(number "1.5")", R"(number ".5")", R"(number "5.")",
                  R"(number "1e10")", R"(number "1E-3")", R"(number "0x1F")", R"(number "0755")",
                  R"(number "Inf")", R"(number "nan")", "<op:->", R"(number "Inf")"));
}

TEST(LexerTest, Durations) {
  EXPECT_THAT(
      Lex("5m 1h30m 1y 2w 3d 100ms 1y2w3d4h5m6s7ms"),
      ElementsAre(R"(duration "5m")", R"(duration "1h30m")", R"(duration "1y")", R"(duration "2w")",
                  R"(duration "3d")", R"(duration "100ms")", R"(duration "1y2w3d4h5m"...)"));
}

TEST(LexerTest, RangeAndSubqueryBrackets) {
  EXPECT_THAT(Lex("foo[ 5m ]"),
              ElementsAre(R"(identifier "foo")", R"("[")", R"(duration "5m")", R"("]")"));
  EXPECT_THAT(Lex("foo[5m:1m]"), ElementsAre(R"(identifier "foo")", R"("[")", R"(duration "5m")",
                                             R"(":")", R"(duration "1m")", R"("]")"));
  EXPECT_THAT(Lex("foo[5m:]"),
              ElementsAre(R"(identifier "foo")", R"("[")", R"(duration "5m")", R"(":")", R"("]")"));
}

TEST(LexerTest, Strings) {
  EXPECT_THAT(Lex(R"("a" 'b' `c\d`)"),
              ElementsAre(R"(string "\"a\"")", R"(string "'b'")", R"(string "`c\\d`")"));
}

TEST(LexerTest, IdentifiersKeywordsAndOperators) {
  EXPECT_THAT(
      Lex("sum by (job) (rate(a:b[5m])) and on(x) group_left bool offset"),
      ElementsAre("<aggr:sum>", "<by>", R"("(")", R"(identifier "job")", "\")\"", R"("(")",
                  R"(identifier "rate")", R"("(")", R"(metric identifier "a:b")", R"("[")",
                  R"(duration "5m")", R"("]")", "\")\"", "\")\"", "<op:and>", "<on>", R"("(")",
                  R"(identifier "x")", "\")\"", "<group_left>", "<bool>", "<offset>"));
  EXPECT_THAT(Lex("+ - * / % ^ == != < > <= >= @ atan2 or unless"),
              ElementsAre("<op:+>", "<op:->", "<op:*>", "<op:/>", "<op:%>", "<op:^>", "<op:==>",
                          "<op:!=>", "<op:<>", "<op:>>", "<op:<=>", "<op:>=>", "<op:@>",
                          "<op:atan2>", "<op:or>", "<op:unless>"));
}

TEST(LexerTest, KeywordsAreCaseInsensitiveAndPlainInsideBraces) {
  EXPECT_THAT(Lex("SUM"), ElementsAre("<aggr:sum>"));
  EXPECT_THAT(Lex(R"({by="a", offset!~"b", x=~"c", y!="d"})"),
              ElementsAre(R"("{")", R"(identifier "by")", R"("=")", R"(string "\"a\"")", R"(",")",
                          R"(identifier "offset")", "<op:!~>", R"(string "\"b\"")", R"(",")",
                          R"(identifier "x")", "<op:=~>", R"(string "\"c\"")", R"(",")",
                          R"(identifier "y")", "<op:!=>", R"(string "\"d\"")", R"("}")"));
}

TEST(LexerTest, QuotedNamesAreStringsInsideBracesAndGroupings) {
  EXPECT_THAT(Lex(R"({"cpu usage%", "my-label"=~'x'})"),
              ElementsAre(R"("{")", R"(string "\"cpu usage"...)", R"(",")",
                          R"(string "\"my-label\"")", "<op:=~>", R"(string "'x'")", R"("}")"));
  EXPECT_THAT(Lex(R"(sum by ("my-label", job) (x))"),
              ElementsAre("<aggr:sum>", "<by>", R"("(")", R"(string "\"my-label\"")", R"(",")",
                          R"(identifier "job")", "\")\"", R"("(")", R"(identifier "x")", "\")\""));
}

TEST(LexerTest, CommentsAreTokens) {
  EXPECT_THAT(
      Lex("foo # a comment\n+ 1"),
      ElementsAre(R"(identifier "foo")", R"(comment "# a comment")", "<op:+>", R"(number "1")"));
}

TEST(LexerTest, Errors) {
  EXPECT_THAT(Lex("."), ElementsAre("error:unexpected character: '.'"));
  EXPECT_THAT(Lex("0deadbeef"), ElementsAre(R"(error:bad number or duration syntax: "0de")"));
  EXPECT_THAT(Lex("1 =~ 1"),
              ElementsAre(R"(number "1")", "error:unexpected character after '=': '~'"));
  EXPECT_THAT(Lex("1 !~ 1"),
              ElementsAre(R"(number "1")", "error:unexpected character after '!': '~'"));
  EXPECT_THAT(Lex("(1"), ElementsAre(R"("(")", R"(number "1")", "error:unclosed left parenthesis"));
  EXPECT_THAT(Lex("1)"), ElementsAre(R"(number "1")", "error:unexpected right parenthesis ')'"));
  EXPECT_THAT(Lex("foo[5m"), ElementsAre(R"(identifier "foo")", R"("[")", R"(duration "5m")",
                                         "error:unclosed left bracket"));
  EXPECT_THAT(Lex("foo]"),
              ElementsAre(R"(identifier "foo")", "error:unexpected right bracket ']'"));
  EXPECT_THAT(Lex("foo[5]"), ElementsAre(R"(identifier "foo")", R"("[")",
                                         "error:missing unit character in duration"));
  EXPECT_THAT(Lex("foo[5m1]"),
              ElementsAre(R"(identifier "foo")", R"("[")", R"(error:bad duration syntax: "5m1")"));
  EXPECT_THAT(Lex("{"), ElementsAre(R"("{")", "error:unexpected end of input inside braces"));
  EXPECT_THAT(Lex("{a{"),
              ElementsAre(R"("{")", R"(identifier "a")", "error:unexpected left brace '{'"));
  EXPECT_THAT(Lex("{1}"), ElementsAre(R"("{")", "error:unexpected character inside braces: '1'"));
  EXPECT_THAT(Lex("\"abc"), ElementsAre("error:unterminated quoted string"));
  EXPECT_THAT(Lex("\"a\nb\""), ElementsAre("error:unterminated quoted string"));
  EXPECT_THAT(Lex("`abc"), ElementsAre("error:unterminated raw string"));
  EXPECT_THAT(Lex(R"("\z")"), ElementsAre("error:unknown escape sequence U+007A 'z'"));
  EXPECT_THAT(Lex(R"("\xZZ")"),
              ElementsAre("error:illegal character U+005A 'Z' in escape sequence"));
  EXPECT_THAT(Lex(R"("\uD800")"),
              ElementsAre("error:escape sequence is an invalid Unicode code point"));
  EXPECT_THAT(Lex("\"\xff\""), ElementsAre("error:invalid UTF-8 rune"));
  EXPECT_THAT(Lex("foo[5m:1m:]"),
              ElementsAre(R"(identifier "foo")", R"("[")", R"(duration "5m")", R"(":")",
                          R"(duration "1m")", "error:unexpected colon ':'"));
}

TEST(LexerTest, ErrorPositionIsTheOffendingToken) {
  Lexer lexer("foo + \"abc");
  lexer.Next();
  lexer.Next();
  Token t = lexer.Next();
  EXPECT_EQ(TokenType::kError, t.type);
  EXPECT_EQ(6, t.pos);
  EXPECT_EQ(TokenType::kEof, lexer.Next().type);
}

TEST(UnquoteTest, GoEscapes) {
  EXPECT_EQ("a\nb\t\\\"", *UnquoteString(R"("a\nb\t\\\"")"));
  EXPECT_EQ("A", *UnquoteString(R"("\x41")"));
  EXPECT_EQ("A", *UnquoteString(R"("\101")"));
  EXPECT_EQ("\xc3\xa9", *UnquoteString(R"("\u00e9")"));
  EXPECT_EQ("\xf0\x9f\x98\x80", *UnquoteString(R"("\U0001F600")"));
  EXPECT_EQ("it's", *UnquoteString(R"('it\'s')"));
  EXPECT_EQ("say \"hi\"", *UnquoteString(R"('say "hi"')"));
  EXPECT_EQ("raw\\n", *UnquoteString("`raw\\n`"));
  EXPECT_EQ("\a\b\f\r\v", *UnquoteString(R"("\a\b\f\r\v")"));
  EXPECT_FALSE(UnquoteString(R"("\'")").ok());
  EXPECT_FALSE(UnquoteString(R"("\q")").ok());
  EXPECT_FALSE(UnquoteString(R"("abc)").ok());
}

TEST(QuoteTest, GoQuoting) {
  EXPECT_EQ(R"("a\"b\\c\n\t\x01")", QuoteString("a\"b\\c\n\t\x01"));
  EXPECT_EQ("\"\xc3\xa9\"", QuoteString("\xc3\xa9"));
  EXPECT_EQ(R"("\xff")", QuoteString("\xff"));
  EXPECT_EQ("'x'", QuoteRune('x'));
  EXPECT_EQ(R"('\n')", QuoteRune('\n'));
}

}  // namespace
}  // namespace espy::query::promql
