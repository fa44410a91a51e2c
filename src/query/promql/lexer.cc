#include "query/promql/lexer.h"

#include <algorithm>
#include <cctype>
#include <utility>

#include "fmt/format.h"

namespace espy::query::promql {
namespace {

constexpr char32_t kEofRune = 0xFFFFFFFF;
constexpr char32_t kRuneError = 0xFFFD;
constexpr char32_t kMaxRune = 0x10FFFF;

// What a lexing step returns when it only skipped whitespace.
constexpr Token kSkip{TokenType::kComment, -1, {}};

bool IsSpace(char32_t r) { return r == ' ' || r == '\t' || r == '\n' || r == '\r'; }
bool IsDigit(char32_t r) { return r >= '0' && r <= '9'; }
bool IsAlpha(char32_t r) { return r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z'); }
bool IsAlphaNumeric(char32_t r) { return IsAlpha(r) || IsDigit(r); }
bool IsEndOfLine(char32_t r) { return r == '\r' || r == '\n'; }

// Decodes one UTF-8 rune; invalid input gives kRuneError with width 1.
char32_t DecodeRune(std::string_view s, int* width) {
  if (s.empty()) {
    *width = 0;
    return kEofRune;
  }
  auto b0 = static_cast<unsigned char>(s[0]);
  if (b0 < 0x80) {
    *width = 1;
    return b0;
  }
  int n = 0;
  char32_t r = 0;
  char32_t min = 0;
  if ((b0 & 0xE0) == 0xC0) {
    n = 2, r = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    n = 3, r = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    n = 4, r = b0 & 0x07, min = 0x10000;
  } else {
    *width = 1;
    return kRuneError;
  }
  if (static_cast<int>(s.size()) < n) {
    *width = 1;
    return kRuneError;
  }
  for (int i = 1; i < n; ++i) {
    auto b = static_cast<unsigned char>(s[i]);
    if ((b & 0xC0) != 0x80) {
      *width = 1;
      return kRuneError;
    }
    r = (r << 6) | (b & 0x3F);
  }
  if (r < min || r > kMaxRune || (r >= 0xD800 && r < 0xE000)) {
    *width = 1;
    return kRuneError;
  }
  *width = n;
  return r;
}

void AppendUtf8(char32_t r, std::string* out) {
  if (r < 0x80) {
    out->push_back(static_cast<char>(r));
  } else if (r < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (r >> 6)));
    out->push_back(static_cast<char>(0x80 | (r & 0x3F)));
  } else if (r < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (r >> 12)));
    out->push_back(static_cast<char>(0x80 | ((r >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (r & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (r >> 18)));
    out->push_back(static_cast<char>(0x80 | ((r >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((r >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (r & 0x3F)));
  }
}

int DigitVal(char32_t r) {
  if (r >= '0' && r <= '9') return static_cast<int>(r - '0');
  if (r >= 'a' && r <= 'f') return static_cast<int>(r - 'a' + 10);
  if (r >= 'A' && r <= 'F') return static_cast<int>(r - 'A' + 10);
  return 16;  // larger than any legal digit
}

// Go's %#U: U+007A 'z'.
std::string FormatRuneU(char32_t r) {
  if (r == kEofRune) return "U+FFFFFFFFFFFFFFFF";
  std::string out = fmt::format("U+{:04X}", static_cast<uint32_t>(r));
  if (r >= 0x20 && r != 0x7F && r != kRuneError) {
    out += " '";
    AppendUtf8(r, &out);
    out += "'";
  }
  return out;
}

struct Keyword {
  std::string_view word;
  TokenType type;
};

// Matched case-insensitively, as Prometheus does ("SUM", "Inf").
constexpr Keyword kKeywords[] = {
    {"and", TokenType::kLand},
    {"or", TokenType::kLor},
    {"unless", TokenType::kLunless},
    {"atan2", TokenType::kAtan2},
    {"offset", TokenType::kOffset},
    {"by", TokenType::kBy},
    {"without", TokenType::kWithout},
    {"on", TokenType::kOn},
    {"ignoring", TokenType::kIgnoring},
    {"group_left", TokenType::kGroupLeft},
    {"group_right", TokenType::kGroupRight},
    {"bool", TokenType::kBool},
    {"start", TokenType::kStart},
    {"end", TokenType::kEnd},
    {"inf", TokenType::kNumber},
    {"nan", TokenType::kNumber},
};

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != b[i]) return false;
  }
  return true;
}

// The canonical spelling of fixed tokens, as Prometheus's ItemTypeStr.
std::string_view FixedTokenText(TokenType t) {
  switch (t) {
    case TokenType::kLeftParen:
      return "(";
    case TokenType::kRightParen:
      return ")";
    case TokenType::kLeftBrace:
      return "{";
    case TokenType::kRightBrace:
      return "}";
    case TokenType::kLeftBracket:
      return "[";
    case TokenType::kRightBracket:
      return "]";
    case TokenType::kComma:
      return ",";
    case TokenType::kAssign:
      return "=";
    case TokenType::kColon:
      return ":";
    default:
      return "";
  }
}

}  // namespace

bool IsValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    int width = 0;
    if (DecodeRune(s.substr(i), &width) == kRuneError && width == 1) return false;
    i += width;
  }
  return true;
}

std::string QuoteString(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    int width = 0;
    char32_t r = DecodeRune(s.substr(i), &width);
    if (r == kRuneError && width == 1) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(s[i]));
    } else if (r == '"' || r == '\\') {
      out += '\\';
      out += static_cast<char>(r);
    } else if (r < 0x20 || r == 0x7F) {
      switch (r) {
        case '\a':
          out += "\\a";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\v':
          out += "\\v";
          break;
        default:
          out += fmt::format("\\x{:02x}", static_cast<uint32_t>(r));
      }
    } else {
      out.append(s.substr(i, width));
    }
    i += width;
  }
  return out + "\"";
}

bool IsOperatorToken(TokenType t) { return t >= TokenType::kAdd && t <= TokenType::kAtan2; }
bool IsAggregatorToken(TokenType t) { return t == TokenType::kAggregator; }
bool IsKeywordToken(TokenType t) { return t >= TokenType::kBool && t <= TokenType::kWithout; }

std::string QuoteRune(char32_t r) {
  switch (r) {
    case '\a':
      return "'\\a'";
    case '\b':
      return "'\\b'";
    case '\f':
      return "'\\f'";
    case '\n':
      return "'\\n'";
    case '\r':
      return "'\\r'";
    case '\t':
      return "'\\t'";
    case '\v':
      return "'\\v'";
    case '\\':
      return "'\\\\'";
    case '\'':
      return "'\\''";
    default:
      break;
  }
  if (r == kEofRune) return "'\\uffff'";
  if (r < 0x20 || r == 0x7F) return fmt::format("'\\x{:02x}'", static_cast<uint32_t>(r));
  std::string out = "'";
  AppendUtf8(r, &out);
  return out + "'";
}

std::string DescribeToken(const Token& token) {
  switch (token.type) {
    case TokenType::kEof:
      return "end of input";
    case TokenType::kError:
      return std::string(token.text);
    case TokenType::kComment:
      return "comment " + QuoteString(token.text);
    case TokenType::kIdentifier:
      return "identifier " + QuoteString(token.text);
    case TokenType::kMetricIdentifier:
      return "metric identifier " + QuoteString(token.text);
    case TokenType::kString:
    case TokenType::kNumber:
    case TokenType::kDuration: {
      std::string_view kind = token.type == TokenType::kString   ? "string "
                              : token.type == TokenType::kNumber ? "number "
                                                                 : "duration ";
      if (token.text.size() > 10) {
        // Go's %.10q: the first ten characters, quoted, then "...".
        std::string head(token.text.substr(0, 10));
        return std::string(kind) + QuoteString(head) + "...";
      }
      return std::string(kind) + QuoteString(token.text);
    }
    default:
      break;
  }
  std::string lower(token.text);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (IsKeywordToken(token.type)) return "<" + lower + ">";
  if (IsOperatorToken(token.type)) return "<op:" + lower + ">";
  if (IsAggregatorToken(token.type)) return "<aggr:" + lower + ">";
  std::string_view fixed = FixedTokenText(token.type);
  return QuoteString(fixed.empty() ? token.text : fixed);
}

char32_t Lexer::Peek(int* width) const {
  return DecodeRune(input_.substr(static_cast<size_t>(pos_)), width);
}

char32_t Lexer::PeekRune() const {
  int width = 0;
  return Peek(&width);
}

char32_t Lexer::NextRune() {
  char32_t r = Peek(&last_width_);
  pos_ += last_width_;
  return r;
}

bool Lexer::Accept(std::string_view valid) {
  char32_t r = NextRune();
  if (r < 0x80 && valid.find(static_cast<char>(r)) != std::string_view::npos) return true;
  Backup();
  return false;
}

void Lexer::AcceptRun(std::string_view valid) {
  while (Accept(valid)) {
  }
}

Token Lexer::Emit(TokenType type) {
  Token t{type, start_, input_.substr(start_, pos_ - start_)};
  start_ = pos_;
  return t;
}

Token Lexer::Error(std::string message) { return Error(start_, std::move(message)); }

Token Lexer::Error(int32_t pos, std::string message) {
  error_ = std::move(message);
  state_ = State::kDone;
  return Token{TokenType::kError, pos, error_};
}

Token Lexer::Next() {
  while (true) {
    switch (state_) {
      case State::kDone:
        return Token{TokenType::kEof, static_cast<int32_t>(input_.size()), {}};
      case State::kDuration:
        state_ = State::kStatements;
        return LexDuration();
      case State::kStatements: {
        Token t = brace_open_ ? LexInsideBraces() : LexStatements();
        // kSkip means "only skipped whitespace, go on".
        if (t.type == TokenType::kComment && t.text.empty() && t.pos < 0) continue;
        return t;
      }
    }
  }
}

Token Lexer::LexStatements() {
  if (input_.substr(pos_).starts_with('#')) return LexComment();
  int32_t r_pos = pos_;
  char32_t r = NextRune();
  if (r == kEofRune) {
    if (paren_depth_ != 0) return Error("unclosed left parenthesis");
    if (bracket_open_) return Error("unclosed left bracket");
    state_ = State::kDone;
    return Emit(TokenType::kEof);
  }
  if (IsSpace(r)) {
    while (IsSpace(PeekRune())) NextRune();
    start_ = pos_;
    return kSkip;
  }
  switch (r) {
    case ',':
      return Emit(TokenType::kComma);
    case '*':
      return Emit(TokenType::kMul);
    case '/':
      return Emit(TokenType::kDiv);
    case '%':
      return Emit(TokenType::kMod);
    case '+':
      return Emit(TokenType::kAdd);
    case '-':
      return Emit(TokenType::kSub);
    case '^':
      return Emit(TokenType::kPow);
    case '@':
      return Emit(TokenType::kAt);
    case '=': {
      char32_t t = PeekRune();
      if (t == '=') {
        NextRune();
        return Emit(TokenType::kEqlc);
      }
      if (t == '~') return Error("unexpected character after '=': " + QuoteRune(t));
      return Emit(TokenType::kAssign);
    }
    case '!': {
      char32_t t = NextRune();
      if (t != '=') return Error("unexpected character after '!': " + QuoteRune(t));
      return Emit(TokenType::kNeq);
    }
    case '<':
      if (PeekRune() == '=') {
        NextRune();
        return Emit(TokenType::kLte);
      }
      return Emit(TokenType::kLss);
    case '>':
      if (PeekRune() == '=') {
        NextRune();
        return Emit(TokenType::kGte);
      }
      return Emit(TokenType::kGtr);
    case '"':
    case '\'':
      return LexString(r);
    case '`':
      return LexRawString();
    case '(':
      ++paren_depth_;
      return Emit(TokenType::kLeftParen);
    case ')':
      if (--paren_depth_ < 0) return Error(r_pos, "unexpected right parenthesis ')'");
      return Emit(TokenType::kRightParen);
    case '{':
      brace_open_ = true;
      return Emit(TokenType::kLeftBrace);
    case '[': {
      if (bracket_open_) return Error(r_pos, "unexpected left bracket '['");
      got_colon_ = false;
      Token t = Emit(TokenType::kLeftBracket);
      while (IsSpace(PeekRune())) NextRune();
      start_ = pos_;
      bracket_open_ = true;
      state_ = State::kDuration;
      return t;
    }
    case ']':
      if (!bracket_open_) return Error(r_pos, "unexpected right bracket ']'");
      bracket_open_ = false;
      return Emit(TokenType::kRightBracket);
    default:
      break;
  }
  if (IsDigit(r) || (r == '.' && IsDigit(PeekRune()))) {
    Backup();
    return LexNumberOrDuration();
  }
  if (IsAlpha(r) || r == ':') {
    if (!bracket_open_) {
      Backup();
      return LexKeywordOrIdentifier();
    }
    if (r == ':') {
      if (got_colon_) return Error("unexpected colon ':'");
      got_colon_ = true;
      return Emit(TokenType::kColon);
    }
    return Error("unexpected character: " + QuoteRune(r) + ", expected ':'");
  }
  return Error("unexpected character: " + QuoteRune(r));
}

Token Lexer::LexInsideBraces() {
  if (input_.substr(pos_).starts_with('#')) return LexComment();
  int32_t r_pos = pos_;
  char32_t r = NextRune();
  if (r == kEofRune) return Error("unexpected end of input inside braces");
  if (IsSpace(r)) {
    while (IsSpace(PeekRune())) NextRune();
    start_ = pos_;
    return kSkip;
  }
  if (IsAlpha(r)) {
    Backup();
    return LexIdentifier();
  }
  switch (r) {
    case ',':
      return Emit(TokenType::kComma);
    case '"':
    case '\'':
      return LexString(r);
    case '`':
      return LexRawString();
    case '=':
      if (NextRune() == '~') return Emit(TokenType::kEqlRegex);
      Backup();
      return Emit(TokenType::kAssign);
    case '!': {
      char32_t nr = NextRune();
      if (nr == '~') return Emit(TokenType::kNeqRegex);
      if (nr == '=') return Emit(TokenType::kNeq);
      return Error("unexpected character after '!' inside braces: " + QuoteRune(nr));
    }
    case '{':
      return Error(r_pos, "unexpected left brace '{'");
    case '}':
      brace_open_ = false;
      return Emit(TokenType::kRightBrace);
    default:
      return Error("unexpected character inside braces: " + QuoteRune(r));
  }
}

Token Lexer::LexComment() {
  ++pos_;  // '#'
  while (true) {
    char32_t r = NextRune();
    if (r == kEofRune || IsEndOfLine(r)) break;
  }
  Backup();
  return Emit(TokenType::kComment);
}

// Right after '[' only a duration may follow.
Token Lexer::LexDuration() {
  if (ScanNumber()) return Error("missing unit character in duration");
  if (!AcceptRemainingDuration()) {
    return Error("bad duration syntax: " + QuoteString(input_.substr(start_, pos_ - start_)));
  }
  Backup();
  return Emit(TokenType::kDuration);
}

Token Lexer::LexNumberOrDuration() {
  if (ScanNumber()) return Emit(TokenType::kNumber);
  if (AcceptRemainingDuration()) {
    Backup();
    return Emit(TokenType::kDuration);
  }
  return Error("bad number or duration syntax: " +
               QuoteString(input_.substr(start_, pos_ - start_)));
}

bool Lexer::ScanNumber() {
  std::string_view digits = "0123456789";
  if (Accept("0") && Accept("xX")) digits = "0123456789abcdefABCDEF";
  AcceptRun(digits);
  if (Accept(".")) AcceptRun(digits);
  if (Accept("eE")) {
    Accept("+-");
    AcceptRun("0123456789");
  }
  return !IsAlphaNumeric(PeekRune());
}

bool Lexer::AcceptRemainingDuration() {
  if (!Accept("smhdwy")) return false;
  Accept("s");  // "ms"; bad units like "hs" fail in ParseDuration
  while (Accept("0123456789")) {
    AcceptRun("0123456789");
    if (!Accept("smhdw")) return false;
    Accept("s");
  }
  return !IsAlphaNumeric(NextRune());
}

Token Lexer::LexKeywordOrIdentifier() {
  while (true) {
    char32_t r = NextRune();
    if (!IsAlphaNumeric(r) && r != ':') break;
  }
  Backup();
  std::string_view word = input_.substr(start_, pos_ - start_);
  for (const Keyword& k : kKeywords) {
    if (EqualsIgnoreCase(word, k.word)) return Emit(k.type);
  }
  // Aggregators are named by the AST's enum, the one list of them.
  for (int i = 0; i < kNumAggregateOps; ++i) {
    auto op = static_cast<AggregateOp>(i);
    if (EqualsIgnoreCase(word, AggregateOpName(op))) {
      Token t = Emit(TokenType::kAggregator);
      t.aggregate = op;
      return t;
    }
  }
  return Emit(word.find(':') == std::string_view::npos ? TokenType::kIdentifier
                                                       : TokenType::kMetricIdentifier);
}

Token Lexer::LexIdentifier() {
  while (IsAlphaNumeric(NextRune())) {
  }
  Backup();
  return Emit(TokenType::kIdentifier);
}

Token Lexer::LexString(char32_t quote) {
  while (true) {
    char32_t r = NextRune();
    if (r == '\\') {
      std::string err = LexEscape(quote);
      if (!err.empty()) return Error(std::move(err));
      continue;
    }
    if (r == kRuneError && last_width_ == 1) return Error("invalid UTF-8 rune");
    if (r == kEofRune || r == '\n') return Error("unterminated quoted string");
    if (r == quote) break;
  }
  return Emit(TokenType::kString);
}

Token Lexer::LexRawString() {
  while (true) {
    char32_t r = NextRune();
    if (r == kRuneError && last_width_ == 1) return Error("invalid UTF-8 rune");
    if (r == kEofRune) return Error("unterminated raw string");
    if (r == '`') break;
  }
  return Emit(TokenType::kString);
}

std::string Lexer::LexEscape(char32_t quote) {
  int n = 0;
  uint32_t base = 0;
  uint32_t max = 0;
  char32_t ch = NextRune();
  switch (ch) {
    case 'a':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
    case 'v':
    case '\\':
      return "";
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
      n = 3, base = 8, max = 255;
      break;
    case 'x':
      ch = NextRune();
      n = 2, base = 16, max = 255;
      break;
    case 'u':
      ch = NextRune();
      n = 4, base = 16, max = kMaxRune;
      break;
    case 'U':
      ch = NextRune();
      n = 8, base = 16, max = kMaxRune;
      break;
    default:
      if (ch == quote) return "";
      if (ch == kEofRune) return "escape sequence not terminated";
      return "unknown escape sequence " + FormatRuneU(ch);
  }
  uint32_t x = 0;
  while (n > 0) {
    auto d = static_cast<uint32_t>(DigitVal(ch));
    if (d >= base) {
      if (ch == kEofRune) return "escape sequence not terminated";
      return "illegal character " + FormatRuneU(ch) + " in escape sequence";
    }
    x = x * base + d;
    if (--n > 0) ch = NextRune();
  }
  if (x > max || (x >= 0xD800 && x < 0xE000)) {
    return "escape sequence is an invalid Unicode code point";
  }
  return "";
}

absl::StatusOr<std::string> UnquoteString(std::string_view quoted) {
  if (quoted.size() < 2 || quoted.front() != quoted.back() ||
      (quoted.front() != '"' && quoted.front() != '\'' && quoted.front() != '`')) {
    return absl::InvalidArgumentError("invalid syntax");
  }
  char quote = quoted.front();
  std::string_view body = quoted.substr(1, quoted.size() - 2);
  if (quote == '`') {
    if (body.find('`') != std::string_view::npos) {
      return absl::InvalidArgumentError("invalid syntax");
    }
    return std::string(body);
  }
  std::string out;
  out.reserve(body.size());
  for (size_t i = 0; i < body.size();) {
    char c = body[i];
    if (c == quote || c == '\n') return absl::InvalidArgumentError("invalid syntax");
    if (c != '\\') {
      out.push_back(c);
      ++i;
      continue;
    }
    if (i + 1 >= body.size()) return absl::InvalidArgumentError("invalid syntax");
    char e = body[i + 1];
    i += 2;
    switch (e) {
      case 'a':
        out.push_back('\a');
        continue;
      case 'b':
        out.push_back('\b');
        continue;
      case 'f':
        out.push_back('\f');
        continue;
      case 'n':
        out.push_back('\n');
        continue;
      case 'r':
        out.push_back('\r');
        continue;
      case 't':
        out.push_back('\t');
        continue;
      case 'v':
        out.push_back('\v');
        continue;
      case '\\':
        out.push_back('\\');
        continue;
      case '\'':
      case '"':
        if (e != quote) return absl::InvalidArgumentError("invalid syntax");
        out.push_back(e);
        continue;
      default:
        break;
    }
    int n = 0;
    uint32_t base = 16;
    bool is_rune = false;
    if (e == 'x') {
      n = 2;
    } else if (e == 'u') {
      n = 4, is_rune = true;
    } else if (e == 'U') {
      n = 8, is_rune = true;
    } else if (e >= '0' && e <= '7') {
      n = 2, base = 8;  // the first digit is e itself
    } else {
      return absl::InvalidArgumentError("invalid syntax");
    }
    uint32_t x = base == 8 ? static_cast<uint32_t>(e - '0') : 0;
    for (int k = 0; k < n; ++k, ++i) {
      if (i >= body.size()) return absl::InvalidArgumentError("invalid syntax");
      auto d = static_cast<uint32_t>(DigitVal(static_cast<unsigned char>(body[i])));
      if (d >= base) return absl::InvalidArgumentError("invalid syntax");
      x = x * base + d;
    }
    if (is_rune) {
      if (x > kMaxRune || (x >= 0xD800 && x < 0xE000)) {
        return absl::InvalidArgumentError("invalid syntax");
      }
      AppendUtf8(x, &out);
    } else {
      if (x > 255) return absl::InvalidArgumentError("invalid syntax");
      out.push_back(static_cast<char>(x));
    }
  }
  return out;
}

}  // namespace espy::query::promql
