// PromQL lexer: turns query text into tokens the way Prometheus 2.42's
// promql/parser/lex.go does, including its context rules (keywords are plain
// identifiers inside braces; a duration must follow '['; parentheses and
// brackets must balance) and its error texts.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "query/promql/ast.h"

namespace espy::query::promql {

enum class TokenType : uint8_t {
  kEof,
  kError,  // text is the lexer's error message
  kComment,
  kIdentifier,
  kMetricIdentifier,  // an identifier containing ':'
  kLeftParen,
  kRightParen,
  kLeftBrace,
  kRightBrace,
  kLeftBracket,
  kRightBracket,
  kComma,
  kAssign,  // '=' (label matcher equality)
  kColon,
  kString,
  kNumber,
  kDuration,
  // Operators.
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMod,
  kPow,
  kEqlc,  // ==
  kNeq,   // !=
  kLss,
  kGtr,
  kLte,
  kGte,
  kEqlRegex,  // =~
  kNeqRegex,  // !~
  kAt,
  kLand,
  kLor,
  kLunless,
  kAtan2,
  // An aggregator (sum, topk, ...); which one is in Token::aggregate.
  kAggregator,
  // Keywords.
  kBool,
  kBy,
  kGroupLeft,
  kGroupRight,
  kIgnoring,
  kOffset,
  kOn,
  kWithout,
  // @ modifier preprocessors.
  kStart,
  kEnd,
};

bool IsOperatorToken(TokenType t);
bool IsAggregatorToken(TokenType t);
bool IsKeywordToken(TokenType t);

struct Token {
  TokenType type = TokenType::kEof;
  int32_t pos = 0;                            // byte offset of the token's first character
  std::string_view text;                      // the token as written (for kError: the message)
  AggregateOp aggregate = AggregateOp::kSum;  // for kAggregator

  int32_t end() const { return pos + static_cast<int32_t>(text.size()); }
};

// How Prometheus names a token in "unexpected ..." errors: `<op:+>`, `<by>`,
// `<aggr:sum>`, `identifier "foo"`, `number "1"`, `"("`, `end of input`.
std::string DescribeToken(const Token& token);

// Single-threaded; "input" must outlive the lexer and its tokens.
class Lexer {
 public:
  explicit Lexer(std::string_view input) : input_(input) {}
  Lexer(const Lexer&) = delete;
  Lexer& operator=(const Lexer&) = delete;

  // The next token. After kEof or kError every call returns kEof.
  Token Next();

 private:
  // kDuration: right after '[', where only a duration may follow.
  enum class State { kStatements, kDuration, kDone };

  Token Emit(TokenType type);
  Token Error(std::string message);
  Token Error(int32_t pos, std::string message);
  // Decodes the rune at pos_ without consuming it; width 0 at end of input.
  char32_t Peek(int* width) const;
  char32_t PeekRune() const;
  char32_t NextRune();
  void Backup() { pos_ -= last_width_; }
  bool Accept(std::string_view valid);
  void AcceptRun(std::string_view valid);

  Token LexStatements();
  Token LexInsideBraces();
  Token LexDuration();
  Token LexNumberOrDuration();
  Token LexKeywordOrIdentifier();
  Token LexIdentifier();
  Token LexString(char32_t quote);
  Token LexRawString();
  Token LexComment();
  bool ScanNumber();
  bool AcceptRemainingDuration();
  // Validates one escape sequence; the backslash has been consumed. Returns
  // an error message or "".
  std::string LexEscape(char32_t quote);

  std::string_view input_;
  int32_t pos_ = 0;
  int32_t start_ = 0;
  int last_width_ = 0;
  State state_ = State::kStatements;
  int paren_depth_ = 0;
  bool brace_open_ = false;
  bool bracket_open_ = false;
  bool got_colon_ = false;
  std::string error_;
};

// Decodes the text of a kString token (with its quotes) the way Go's
// strconv.Unquote does: escapes in '…' and "…", none in `…`.
absl::StatusOr<std::string> UnquoteString(std::string_view quoted);

// Go's %q for a string (strconv.Quote): how Prometheus prints string
// literals and label values: "a\"b\n".
std::string QuoteString(std::string_view s);

// Whether `s` is well-formed UTF-8 (Go's utf8.ValidString).
bool IsValidUtf8(std::string_view s);

// Go's %q for a rune, as Prometheus prints characters in errors: 'a', '\n'.
std::string QuoteRune(char32_t r);

}  // namespace espy::query::promql
