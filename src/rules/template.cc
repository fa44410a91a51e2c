// The Go-template subset of template.h: a lexer (Go's item kinds), a
// recursive-descent parser that checks functions and variables as Go's
// text/template/parse does, and a tree-walking executor.
#include "rules/template.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <functional>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "base/fmt_absl.h"
#include "base/status_macros.h"
#include "fmt/format.h"
#include "re2/re2.h"

namespace espy::rules {

TemplateValue TemplateValue::Bool(bool v) {
  TemplateValue t;
  t.kind = Kind::kBool;
  t.b = v;
  return t;
}
TemplateValue TemplateValue::Int(int64_t v) {
  TemplateValue t;
  t.kind = Kind::kInt;
  t.i = v;
  return t;
}
TemplateValue TemplateValue::Float(double v) {
  TemplateValue t;
  t.kind = Kind::kFloat;
  t.f = v;
  return t;
}
TemplateValue TemplateValue::String(std::string v) {
  TemplateValue t;
  t.kind = Kind::kString;
  t.s = std::move(v);
  return t;
}
TemplateValue TemplateValue::Map(std::map<std::string, std::string> v) {
  TemplateValue t;
  t.kind = Kind::kMap;
  t.map = std::move(v);
  return t;
}
TemplateValue TemplateValue::Sample(std::map<std::string, std::string> labels, double v) {
  TemplateValue t;
  t.kind = Kind::kSample;
  t.map = std::move(labels);
  t.f = v;
  return t;
}
TemplateValue TemplateValue::Vector(std::vector<TemplateValue> samples) {
  TemplateValue t;
  t.kind = Kind::kVector;
  t.vec = std::move(samples);
  return t;
}

namespace {

using Value = TemplateValue;
using Kind = TemplateValue::Kind;

// ---------------------------------------------------------------- lexer

enum class Tok {
  kText,
  kLeftDelim,
  kRightDelim,
  kSpace,
  kIdentifier,
  kField,
  kDot,
  kVariable,
  kString,
  kRawString,
  kChar,
  kNumber,
  kBool,
  kNil,
  kLeftParen,
  kRightParen,
  kPipe,
  kDeclare,
  kAssign,
  kComma,
  kPunct,  // other printable ASCII
  kKeyword,
  kEOF,
  kError,
};

struct Token {
  Tok type;
  std::string val;
  int line;
};

// Go's item.String(): how a token is named in "unexpected X in Y".
std::string Describe(const Token& t) {
  switch (t.type) {
    case Tok::kEOF:
      return "EOF";
    case Tok::kError:
      return t.val;
    case Tok::kKeyword:
    case Tok::kDot:
      return "<" + t.val + ">";
    default:
      break;
  }
  std::string quoted;
  std::string_view v = t.val;
  bool cut = v.size() > 10;
  if (cut) v = v.substr(0, 10);
  quoted += '"';
  for (char c : v) {
    if (c == '"' || c == '\\') quoted += '\\';
    if (c == '\n') {
      quoted += "\\n";
      continue;
    }
    quoted += c;
  }
  quoted += '"';
  return cut ? quoted + "..." : quoted;
}

// Go's %q of a short string.
std::string GoQuoted(std::string_view v) {
  std::string quoted = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') quoted += '\\';
    if (c == '\n') {
      quoted += "\\n";
      continue;
    }
    quoted += c;
  }
  return quoted + "\"";
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool IsAlnum(char c) { return c == '_' || absl::ascii_isalnum(static_cast<unsigned char>(c)); }

const char* const kKeywords[] = {"if",     "else",     "end",   "range", "with",
                                 "define", "template", "block", "break", "continue"};

class Lexer {
 public:
  explicit Lexer(std::string_view in) : in_(in) {}

  std::vector<Token> Run() {
    while (LexText()) {
    }
    return std::move(out_);
  }

 private:
  void Emit(Tok t, std::string val) { out_.push_back({t, std::move(val), line_}); }
  bool Fail(std::string msg) {
    out_.push_back({Tok::kError, std::move(msg), line_});
    return false;
  }
  void Advance(size_t n) {
    for (size_t i = 0; i < n && pos_ < in_.size(); ++i) {
      if (in_[pos_] == '\n') ++line_;
      ++pos_;
    }
  }
  bool At(std::string_view s) const { return in_.substr(pos_, s.size()) == s; }

  // Text up to the next "{{" (trimming before "{{- "); false at the end.
  bool LexText() {
    size_t open = in_.find("{{", pos_);
    if (open == std::string_view::npos) {
      if (pos_ < in_.size()) Emit(Tok::kText, std::string(in_.substr(pos_)));
      Advance(in_.size() - pos_);
      out_.push_back({Tok::kEOF, "", line_});
      return false;
    }
    bool trim = open + 3 < in_.size() + 1 && in_.substr(open + 2, 1) == "-" &&
                open + 3 < in_.size() && IsSpace(in_[open + 3]);
    size_t end = open;
    if (trim) {
      while (end > pos_ && IsSpace(in_[end - 1])) --end;
    }
    if (end > pos_) Emit(Tok::kText, std::string(in_.substr(pos_, end - pos_)));
    Advance(open - pos_);
    Advance(trim ? 4 : 2);
    // A comment: {{/* ... */}}, nothing else in the action.
    if (At("/*")) {
      size_t close = in_.find("*/", pos_ + 2);
      if (close == std::string_view::npos) return Fail("unclosed comment");
      Advance(close + 2 - pos_);
      if (At(" -}}")) {
        Advance(4);
        TrimAfter();
      } else if (At("}}")) {
        Advance(2);
      } else {
        return Fail("comment ends before closing delimiter");
      }
      return true;
    }
    Emit(Tok::kLeftDelim, "{{");
    return LexInsideAction();
  }

  void TrimAfter() {
    while (pos_ < in_.size() && IsSpace(in_[pos_])) Advance(1);
  }

  bool LexInsideAction() {
    int paren_depth = 0;
    while (true) {
      if (At(" -}}") || At("\t-}}") || At("\n-}}") || At("\r-}}")) {
        // A space before "-}}" belongs to the trim marker.
        if (paren_depth > 0) return Fail("unclosed left paren");
        Advance(4);
        Emit(Tok::kRightDelim, "}}");
        TrimAfter();
        return true;
      }
      if (At("}}")) {
        if (paren_depth > 0) return Fail("unclosed left paren");
        Advance(2);
        Emit(Tok::kRightDelim, "}}");
        return true;
      }
      if (pos_ >= in_.size()) return Fail("unclosed action");
      char c = in_[pos_];
      if (IsSpace(c)) {
        size_t start = pos_;
        while (pos_ < in_.size() && IsSpace(in_[pos_]) && !At(" -}}") && !At("\t-}}") &&
               !At("\n-}}") && !At("\r-}}"))
          Advance(1);
        if (pos_ == start) continue;  // the space is the trim marker's
        Emit(Tok::kSpace, " ");
      } else if (c == '=') {
        Advance(1);
        Emit(Tok::kAssign, "=");
      } else if (c == ':') {
        if (!At(":=")) return Fail("expected :=");
        Advance(2);
        Emit(Tok::kDeclare, ":=");
      } else if (c == '|') {
        Advance(1);
        Emit(Tok::kPipe, "|");
      } else if (c == '"') {
        if (!LexQuote('"', true, "unterminated quoted string", Tok::kString)) return false;
      } else if (c == '`') {
        if (!LexQuote('`', false, "unterminated raw quoted string", Tok::kRawString)) return false;
      } else if (c == '\'') {
        if (!LexQuote('\'', true, "unterminated character constant", Tok::kChar)) return false;
      } else if (c == '$') {
        size_t start = pos_;
        Advance(1);
        while (pos_ < in_.size() && IsAlnum(in_[pos_])) Advance(1);
        if (!AtTerminator()) return BadCharacter();
        Emit(Tok::kVariable, std::string(in_.substr(start, pos_ - start)));
      } else if (c == '.') {
        if (pos_ + 1 < in_.size() && absl::ascii_isdigit(in_[pos_ + 1])) {
          if (!LexNumber()) return false;
          continue;
        }
        size_t start = pos_;
        Advance(1);
        while (pos_ < in_.size() && IsAlnum(in_[pos_])) Advance(1);
        if (!AtTerminator()) return BadCharacter();
        if (pos_ - start == 1) {
          Emit(Tok::kDot, ".");
        } else {
          Emit(Tok::kField, std::string(in_.substr(start, pos_ - start)));
        }
      } else if (c == '+' || c == '-' || absl::ascii_isdigit(c)) {
        if (!LexNumber()) return false;
      } else if (IsAlnum(c)) {
        size_t start = pos_;
        while (pos_ < in_.size() && IsAlnum(in_[pos_])) Advance(1);
        if (!AtTerminator()) return BadCharacter();
        std::string word(in_.substr(start, pos_ - start));
        if (word == "true" || word == "false") {
          Emit(Tok::kBool, word);
        } else if (word == "nil") {
          Emit(Tok::kNil, word);
        } else if (std::find(std::begin(kKeywords), std::end(kKeywords), word) !=
                   std::end(kKeywords)) {
          Emit(Tok::kKeyword, word);
        } else {
          Emit(Tok::kIdentifier, word);
        }
      } else if (c == '(') {
        Advance(1);
        ++paren_depth;
        Emit(Tok::kLeftParen, "(");
      } else if (c == ')') {
        Advance(1);
        --paren_depth;  // a stray one is the parser's to report
        Emit(Tok::kRightParen, ")");
      } else if (c == ',') {
        Advance(1);
        Emit(Tok::kComma, ",");
      } else if (c > ' ' && c < 0x7f) {
        // Other printable ASCII is a token of its own (Go's itemChar), which
        // the parser then finds unexpected.
        Advance(1);
        Emit(Tok::kPunct, std::string(1, c));
      } else {
        return Fail(fmt::format("unrecognized character in action: U+{:04X}",
                                static_cast<unsigned char>(c)));
      }
    }
  }

  bool LexQuote(char q, bool escapes, const char* unterminated, Tok type) {
    size_t start = pos_;
    Advance(1);
    while (true) {
      if (pos_ >= in_.size() || (escapes && in_[pos_] == '\n')) return Fail(unterminated);
      char c = in_[pos_];
      if (escapes && c == '\\' && pos_ + 1 < in_.size()) {
        Advance(2);
        continue;
      }
      Advance(1);
      if (c == q) break;
    }
    Emit(type, std::string(in_.substr(start, pos_ - start)));
    return true;
  }

  // Go's scanNumber: what looks like a number is a token; whether it is one
  // is the parser's question ("illegal number syntax").
  bool LexNumber() {
    size_t start = pos_;
    auto accept = [&](std::string_view set) {
      if (pos_ < in_.size() && set.find(in_[pos_]) != std::string_view::npos) {
        Advance(1);
        return true;
      }
      return false;
    };
    auto run = [&](std::string_view set) {
      while (accept(set)) {
      }
    };
    std::string_view digits = "0123456789_";
    accept("+-");
    if (accept("0") && accept("xX")) {
      digits = "0123456789abcdefABCDEF_";
    }
    run(digits);
    if (accept(".")) run(digits);
    if (digits.size() == 11 && accept("eE")) {
      accept("+-");
      run("0123456789_");
    }
    accept("i");
    if (pos_ < in_.size() && IsAlnum(in_[pos_])) {
      Advance(1);
      return Fail(fmt::format("bad number syntax: \"{}\"", in_.substr(start, pos_ - start)));
    }
    Emit(Tok::kNumber, std::string(in_.substr(start, pos_ - start)));
    return true;
  }

  // Go's atTerminator: what may follow a word, a field or a variable.
  bool AtTerminator() const {
    if (pos_ >= in_.size()) return true;
    char c = in_[pos_];
    return IsSpace(c) || c == '.' || c == ',' || c == '|' || c == ':' || c == ')' || c == '(' ||
           c == '=' || At("}}");
  }
  bool BadCharacter() {
    char c = in_[pos_];
    if (c > ' ' && c < 0x7f) return Fail(fmt::format("bad character U+{:04X} '{}'", c, c));
    return Fail(fmt::format("bad character U+{:04X}", static_cast<unsigned char>(c)));
  }

 public:
  // Decimal, 0x hex, with optional sign, fraction and exponent.
  static bool ParseNumber(const std::string& text, double* out) {
    // Go reads "_" between digits (1_000, 0x_1F), never two in a row or at the end.
    if (text.find("__") != std::string::npos || (!text.empty() && text.back() == '_')) {
      return false;
    }
    std::string plain = text;
    plain.erase(std::remove(plain.begin(), plain.end(), '_'), plain.end());
    std::string_view v = plain;
    bool neg = false;
    if (!v.empty() && (v[0] == '+' || v[0] == '-')) {
      neg = v[0] == '-';
      v.remove_prefix(1);
    }
    if (v.size() > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
      uint64_t n;
      auto [p, ec] = std::from_chars(v.data() + 2, v.data() + v.size(), n, 16);
      if (ec != std::errc() || p != v.data() + v.size()) return false;
      *out = neg ? -static_cast<double>(n) : static_cast<double>(n);
      return true;
    }
    if (v.empty() || !(absl::ascii_isdigit(v[0]) || v[0] == '.')) return false;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), *out);
    if (ec != std::errc() || p != v.data() + v.size()) return false;
    if (neg) *out = -*out;
    return true;
  }

 private:
  std::string_view in_;
  size_t pos_ = 0;
  int line_ = 1;
  std::vector<Token> out_;
};

void AppendUtf8(uint32_t r, std::string* out) {
  if (r < 0x80) {
    *out += static_cast<char>(r);
  } else if (r < 0x800) {
    *out += static_cast<char>(0xc0 | (r >> 6));
    *out += static_cast<char>(0x80 | (r & 0x3f));
  } else if (r < 0x10000) {
    *out += static_cast<char>(0xe0 | (r >> 12));
    *out += static_cast<char>(0x80 | ((r >> 6) & 0x3f));
    *out += static_cast<char>(0x80 | (r & 0x3f));
  } else {
    *out += static_cast<char>(0xf0 | (r >> 18));
    *out += static_cast<char>(0x80 | ((r >> 12) & 0x3f));
    *out += static_cast<char>(0x80 | ((r >> 6) & 0x3f));
    *out += static_cast<char>(0x80 | (r & 0x3f));
  }
}

// Go's strconv.UnquoteChar: one character (or escape) of a literal quoted
// with `quote`, as a code point; advances *s. False: "invalid syntax".
bool UnquoteChar(std::string_view* s, char quote, uint32_t* rune) {
  if (s->empty() || (*s)[0] == quote) return false;
  auto c = static_cast<unsigned char>((*s)[0]);
  if (c != '\\') {
    // A UTF-8 sequence stands for its code point.
    int n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 1;
    if (static_cast<size_t>(n) > s->size()) n = 1;
    uint32_t r = n == 1 ? c : n == 2 ? (c & 0x1f) : n == 3 ? (c & 0x0f) : (c & 0x07);
    for (int i = 1; i < n; ++i) r = (r << 6) | (static_cast<unsigned char>((*s)[i]) & 0x3f);
    *rune = r;
    s->remove_prefix(n);
    return true;
  }
  if (s->size() < 2) return false;
  char e = (*s)[1];
  s->remove_prefix(2);
  auto hex = [&](int n) {
    if (s->size() < static_cast<size_t>(n)) return false;
    uint32_t v = 0;
    for (int i = 0; i < n; ++i) {
      char h = (*s)[i];
      if (!absl::ascii_isxdigit(static_cast<unsigned char>(h))) return false;
      v = v * 16 + (absl::ascii_isdigit(h) ? h - '0' : (absl::ascii_tolower(h) - 'a' + 10));
    }
    s->remove_prefix(n);
    *rune = v;
    return true;
  };
  switch (e) {
    case 'a':
      *rune = 7;
      return true;
    case 'b':
      *rune = 8;
      return true;
    case 'f':
      *rune = 12;
      return true;
    case 'n':
      *rune = 10;
      return true;
    case 'r':
      *rune = 13;
      return true;
    case 't':
      *rune = 9;
      return true;
    case 'v':
      *rune = 11;
      return true;
    case '\\':
      *rune = '\\';
      return true;
    case 'x':
      return hex(2);
    case 'u':
      return hex(4) && *rune <= 0x10ffff && (*rune < 0xd800 || *rune > 0xdfff);
    case 'U':
      return hex(8) && *rune <= 0x10ffff && (*rune < 0xd800 || *rune > 0xdfff);
    case '\'':
    case '"':
      if (e != quote) return false;
      *rune = static_cast<uint32_t>(e);
      return true;
    default:
      if (e >= '0' && e <= '7') {
        uint32_t v = e - '0';
        for (int i = 0; i < 2; ++i) {
          if (s->empty() || (*s)[0] < '0' || (*s)[0] > '7') return false;
          v = v * 8 + ((*s)[0] - '0');
          s->remove_prefix(1);
        }
        if (v > 255) return false;
        *rune = v;
        return true;
      }
      return false;
  }
}

// Go's strconv.Unquote of a "..." or `...` literal; nothing when invalid.
std::optional<std::string> Unquote(std::string_view lit) {
  if (lit.size() < 2) return std::nullopt;
  if (lit[0] == '`') return std::string(lit.substr(1, lit.size() - 2));
  std::string_view body = lit.substr(1, lit.size() - 2);
  std::string out;
  while (!body.empty()) {
    bool escaped_byte = body[0] == '\\' && body.size() > 1 &&
                        (body[1] == 'x' || (body[1] >= '0' && body[1] <= '7'));
    uint32_t r;
    if (!UnquoteChar(&body, '"', &r)) return std::nullopt;
    if (escaped_byte) {
      out += static_cast<char>(r);  // \xff and \377 are bytes, not code points
    } else {
      AppendUtf8(r, &out);
    }
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------- tree

struct Pipe;

// One operand of a command: .Field.chain, $var.chain, a function name, a
// literal, or a parenthesised pipeline with an optional field chain.
struct Arg {
  enum class Type { kField, kVariable, kFunction, kDot, kLiteral, kPipe };
  Type type = Type::kLiteral;
  std::string name;                 // variable or function name
  std::vector<std::string> fields;  // chained field names, without dots
  Value literal;
  std::shared_ptr<const Pipe> pipe;  // shared: Arg and Pipe are mutually recursive
};

struct Command {
  std::vector<Arg> args;
};

struct Pipe {
  int line = 1;
  bool assign = false;  // `$x = ...` rather than `$x := ...`
  std::vector<std::string> decl;
  std::vector<Command> cmds;
};

struct TemplateNode {
  enum class Type { kList, kText, kAction, kIf, kRange, kWith, kBreak, kContinue, kTemplate };
  Type type = Type::kList;
  int line = 1;
  std::string text;
  std::shared_ptr<const Pipe> pipe;
  std::vector<std::unique_ptr<TemplateNode>> list;  // kList's children
  std::unique_ptr<TemplateNode> body;               // if/range/with
  std::unique_ptr<TemplateNode> else_body;
  // The root only: templates named by {{define}} and {{block}}, which
  // {{template "name"}} (kTemplate, name in text) runs.
  std::map<std::string, std::unique_ptr<TemplateNode>> defines;
};

namespace {

// Functions Prometheus 2.42's templates define (Go's builtins and its own).
const absl::flat_hash_map<std::string_view, int>& KnownFunctions() {
  static const auto* names =
      new absl::flat_hash_map<std::string_view, int>{{"and", 0},
                                                     {"call", 0},
                                                     {"html", 0},
                                                     {"index", 0},
                                                     {"slice", 0},
                                                     {"js", 0},
                                                     {"len", 0},
                                                     {"not", 0},
                                                     {"or", 0},
                                                     {"print", 0},
                                                     {"printf", 0},
                                                     {"println", 0},
                                                     {"urlquery", 0},
                                                     {"eq", 0},
                                                     {"ge", 0},
                                                     {"gt", 0},
                                                     {"le", 0},
                                                     {"lt", 0},
                                                     {"ne", 0},
                                                     {"query", 0},
                                                     {"first", 0},
                                                     {"label", 0},
                                                     {"value", 0},
                                                     {"strvalue", 0},
                                                     {"args", 0},
                                                     {"reReplaceAll", 0},
                                                     {"safeHtml", 0},
                                                     {"match", 0},
                                                     {"title", 0},
                                                     {"toUpper", 0},
                                                     {"toLower", 0},
                                                     {"graphLink", 0},
                                                     {"tableLink", 0},
                                                     {"sortByLabel", 0},
                                                     {"humanize", 0},
                                                     {"humanize1024", 0},
                                                     {"humanizeDuration", 0},
                                                     {"humanizePercentage", 0},
                                                     {"humanizeTimestamp", 0},
                                                     {"toTime", 0},
                                                     {"pathPrefix", 0},
                                                     {"externalURL", 0},
                                                     {"parseDuration", 0}};
  return *names;
}

// Nesting of if/range/with and parentheses; far beyond any real template.
constexpr int kMaxDepth = 200;

class Parser {
 public:
  Parser(std::string name, std::vector<Token> tokens)
      : name_(std::move(name)), toks_(std::move(tokens)) {
    vars_ = {"$", "$labels", "$externalLabels", "$externalURL", "$value"};
  }

  absl::StatusOr<std::unique_ptr<TemplateNode>> Run() {
    auto root = std::make_unique<TemplateNode>();
    root_ = root.get();
    while (Peek().type != Tok::kEOF) {
      if (!err_.empty()) break;
      auto n = TextOrAction();
      if (!err_.empty()) break;
      if (n.end_or_else) {
        Error(fmt::format("unexpected {{{{{}}}}}", n.keyword));
        break;
      }
      if (n.node) root->list.push_back(std::move(n.node));
    }
    if (!err_.empty()) return absl::InvalidArgumentError(err_);
    return root;
  }

 private:
  struct Item {
    std::unique_ptr<TemplateNode> node;
    bool end_or_else = false;
    std::string keyword;           // "end" or "else"
    std::shared_ptr<Pipe> elseif;  // {{else if pipe}}
    bool else_with = false;
  };

  const Token& Peek() const { return toks_[std::min(pos_, toks_.size() - 1)]; }
  const Token& Next() {
    const Token& t = toks_[std::min(pos_, toks_.size() - 1)];
    last_line_ = t.line;
    if (pos_ < toks_.size()) ++pos_;
    return t;
  }
  void Backup() { --pos_; }
  const Token& NextNonSpace() {
    while (Peek().type == Tok::kSpace) Next();
    return Next();
  }
  const Token& PeekNonSpace() {
    while (Peek().type == Tok::kSpace) Next();
    return Peek();
  }

  void Error(std::string msg) {
    if (err_.empty()) err_ = fmt::format("template: {}:{}: {}", name_, last_line_, msg);
  }
  void Unexpected(const Token& t, std::string_view context) {
    if (t.type == Tok::kError) {
      Error(t.val);
    } else {
      Error(fmt::format("unexpected {} in {}", Describe(t), context));
    }
  }

  Item TextOrAction() {
    Item item;
    const Token& t = NextNonSpace();
    if (t.type == Tok::kText) {
      item.node = std::make_unique<TemplateNode>();
      item.node->type = TemplateNode::Type::kText;
      item.node->text = t.val;
      item.node->line = t.line;
      return item;
    }
    if (t.type == Tok::kLeftDelim) return Action();
    Unexpected(t, "input");
    return item;
  }

  Item Action() {
    Item item;
    const Token& t = NextNonSpace();
    int line = t.line;
    if (t.type == Tok::kKeyword) {
      const std::string& k = t.val;
      if (k == "end" || k == "else") {
        item.end_or_else = true;
        item.keyword = k;
        if (k == "end") {
          const Token& close = NextNonSpace();
          if (close.type != Tok::kRightDelim) Unexpected(close, "end");
          return item;
        }
        const Token& after = PeekNonSpace();
        if (after.type == Tok::kKeyword && (after.val == "if" || after.val == "with")) {
          // {{else if ...}}: the rest is parsed as a nested control.
          item.else_with = after.val == "with";
          if (item.else_with) {
            Error("unexpected <with> in else");
            return item;
          }
          Next();
          auto pipe = ParsePipe("if", Tok::kRightDelim, /*allow_decl=*/true);
          item.elseif = std::move(pipe);
          return item;
        }
        const Token& close = NextNonSpace();
        if (close.type != Tok::kRightDelim) Unexpected(close, "else");
        return item;
      }
      if (k == "if" || k == "range" || k == "with") {
        item.node = Control(k, line, nullptr);
        return item;
      }
      if (k == "break" || k == "continue") {
        if (range_depth_ == 0) {
          Error(fmt::format("{{{{{}}}}} outside {{{{range}}}}", k));
          return item;
        }
        const Token& close = NextNonSpace();
        if (close.type != Tok::kRightDelim) Unexpected(close, fmt::format("{{{{{}}}}}", k));
        item.node = std::make_unique<TemplateNode>();
        item.node->type = k == "break" ? TemplateNode::Type::kBreak : TemplateNode::Type::kContinue;
        return item;
      }
      if (k == "define" && list_depth_ == 0) {
        Definition(nullptr);
        return item;  // defines nothing in place
      }
      if (k == "template" || k == "block") {
        std::string context = k + " clause";
        std::string name = TemplateName(context);
        if (!err_.empty()) return item;
        item.node = std::make_unique<TemplateNode>();
        item.node->type = TemplateNode::Type::kTemplate;
        item.node->line = line;
        item.node->text = name;
        if (PeekNonSpace().type == Tok::kRightDelim && k == "template") {
          Next();
        } else {
          item.node->pipe = ParsePipe(context, Tok::kRightDelim, false);
        }
        if (k == "block" && err_.empty()) Definition(&name);
        return item;
      }
      Unexpected(t, "command");
      return item;
    }
    Backup();
    item.node = std::make_unique<TemplateNode>();
    item.node->type = TemplateNode::Type::kAction;
    item.node->line = line;
    item.node->pipe = ParsePipe("command", Tok::kRightDelim, true);
    return item;
  }

  // The string naming a template after define/template/block.
  std::string TemplateName(std::string_view context) {
    const Token& t = NextNonSpace();
    if (t.type != Tok::kString && t.type != Tok::kRawString) {
      Unexpected(t, context);
      return "";
    }
    std::optional<std::string> name = Unquote(t.val);
    if (!name) Error("invalid syntax");
    return name.value_or("");
  }

  // {{define "name"}} ... {{end}} at the top level, or a {{block}}'s body
  // (`block` its already read name). Like Go, the body is a template of its
  // own: only `$` is declared in it.
  void Definition(const std::string* block) {
    std::string name;
    if (block) {
      name = *block;
    } else {
      name = TemplateName("define clause");
      if (!err_.empty()) return;
      const Token& close = NextNonSpace();
      if (close.type != Tok::kRightDelim) {
        Unexpected(close, "define clause");
        return;
      }
    }
    std::vector<std::string> saved = std::move(vars_);
    vars_ = {"$"};
    int saved_depth = list_depth_;
    list_depth_ = 0;
    Item end;
    auto body = List(&end);
    list_depth_ = saved_depth;
    vars_ = std::move(saved);
    if (!err_.empty()) return;
    if (end.keyword != "end") {
      Error(fmt::format("unexpected {{{{else}}}} in {}", block ? "block clause" : "define clause"));
      return;
    }
    root_->defines[name] = std::move(body);
  }

  // if/range/with: pipeline, body, optional else (or else if), end.
  // `pre` is the pipeline already read by {{else if ...}}.
  std::unique_ptr<TemplateNode> Control(const std::string& kind, int line,
                                        std::shared_ptr<Pipe> pre) {
    size_t vars_before = vars_.size();
    auto node = std::make_unique<TemplateNode>();
    // Parsing and execution recurse per level: bound the depth so that no
    // file can exhaust the stack.
    DepthGuard guard(this);
    if (!err_.empty()) return node;
    node->type = kind == "if"      ? TemplateNode::Type::kIf
                 : kind == "range" ? TemplateNode::Type::kRange
                                   : TemplateNode::Type::kWith;
    node->line = line;
    node->pipe = pre ? std::move(pre) : ParsePipe(kind, Tok::kRightDelim, true);
    if (!err_.empty()) return node;
    if (kind == "range") ++range_depth_;
    Item end;
    node->body = List(&end);
    if (kind == "range") --range_depth_;
    if (!err_.empty()) return node;
    if (end.keyword == "else") {
      if (end.elseif) {
        // {{else if x}} ... {{end}} is {{else}}{{if x}} ... {{end}}{{end}}.
        auto wrap = std::make_unique<TemplateNode>();
        wrap->list.push_back(Control("if", line, std::move(end.elseif)));
        node->else_body = std::move(wrap);
      } else {
        Item end2;
        node->else_body = List(&end2);
        if (err_.empty() && end2.keyword != "end") Error("expected end; found {{else}}");
      }
    }
    vars_.resize(vars_before);
    return node;
  }

  // Nodes up to {{end}} or {{else}}, which land in *end.
  std::unique_ptr<TemplateNode> List(Item* end) {
    auto list = std::make_unique<TemplateNode>();
    ++list_depth_;
    while (err_.empty()) {
      if (PeekNonSpace().type == Tok::kEOF) {
        Next();
        Error("unexpected EOF");
        break;
      }
      Item n = TextOrAction();
      if (!err_.empty()) break;
      if (n.end_or_else) {
        *end = std::move(n);
        break;
      }
      if (n.node) list->list.push_back(std::move(n.node));
    }
    --list_depth_;
    return list;
  }

  struct DepthGuard {
    explicit DepthGuard(Parser* p) : p(p) {
      if (++p->depth_ > kMaxDepth) p->Error("nesting too deep");
    }
    ~DepthGuard() { --p->depth_; }
    Parser* p;
  };

  std::shared_ptr<Pipe> ParsePipe(std::string_view context, Tok end, bool allow_decl) {
    auto pipe = std::make_shared<Pipe>();
    pipe->line = Peek().line;
    // Declarations: $x := / $x = / $i, $x := (two only in range). As in Go,
    // a variable is declared for the parser by `=` too.
    while (allow_decl && err_.empty() && PeekNonSpace().type == Tok::kVariable) {
      size_t save = pos_;
      Token v = Next();
      const Token& after = PeekNonSpace();
      if (after.type == Tok::kDeclare || after.type == Tok::kAssign) {
        pipe->assign = after.type == Tok::kAssign;
        Next();
        pipe->decl.push_back(v.val);
        vars_.push_back(v.val);
        break;
      }
      if (after.type == Tok::kComma) {
        Next();
        pipe->decl.push_back(v.val);
        vars_.push_back(v.val);
        if (context == "range" && pipe->decl.size() < 2) {
          Tok following = PeekNonSpace().type;
          if (following == Tok::kVariable) continue;
          if (following != Tok::kRightDelim && following != Tok::kRightParen) {
            Error("range can only initialize variables");
          }
          break;
        }
        Error(fmt::format("too many declarations in {}", context));
        break;
      }
      pos_ = save;
      break;
    }
    while (err_.empty()) {
      const Token& t = NextNonSpace();
      if (t.type == end) {
        CheckPipe(*pipe, context);
        return pipe;
      }
      switch (t.type) {
        case Tok::kBool:
        case Tok::kChar:
        case Tok::kDot:
        case Tok::kField:
        case Tok::kIdentifier:
        case Tok::kNumber:
        case Tok::kNil:
        case Tok::kRawString:
        case Tok::kString:
        case Tok::kVariable:
        case Tok::kLeftParen:
          Backup();
          pipe->cmds.push_back(ParseCommand());
          break;
        default:
          Unexpected(t, context);
      }
    }
    return pipe;
  }

  void CheckPipe(const Pipe& pipe, std::string_view context) {
    if (pipe.cmds.empty()) {
      Error(fmt::format("missing value for {}", context));
      return;
    }
    for (size_t i = 1; i < pipe.cmds.size(); ++i) {
      const Arg& a = pipe.cmds[i].args[0];
      if (a.type == Arg::Type::kDot || a.type == Arg::Type::kLiteral) {
        Error(fmt::format("non executable command in pipeline stage {}", i + 1));
        return;
      }
    }
  }

  Command ParseCommand() {
    Command cmd;
    while (err_.empty()) {
      PeekNonSpace();
      if (auto a = Operand()) cmd.args.push_back(std::move(*a));
      if (!err_.empty()) break;
      const Token& t = Next();
      if (t.type == Tok::kSpace) continue;
      if (t.type == Tok::kRightDelim || t.type == Tok::kRightParen) {
        Backup();
      } else if (t.type != Tok::kPipe) {
        Unexpected(t, "operand");
      }
      break;
    }
    if (err_.empty() && cmd.args.empty()) Error("empty command");
    return cmd;
  }

  void CheckVariable(const std::string& name) {
    if (std::find(vars_.begin(), vars_.end(), name) == vars_.end()) {
      Error(fmt::format("undefined variable \"{}\"", name));
    }
  }

  // A term and the field chain after it; nothing when the next token
  // starts no operand.
  std::optional<Arg> Operand() {
    std::optional<Arg> term = Term();
    if (!term || !err_.empty()) return term;
    while (Peek().type == Tok::kField) {
      const Token& f = Next();
      if (term->type == Arg::Type::kLiteral || term->type == Arg::Type::kFunction) {
        Error(fmt::format("unexpected . after term {}", GoQuoted(term->name)));
        return term;
      }
      if (term->type == Arg::Type::kDot) {
        term->type = Arg::Type::kField;
      }
      term->fields.push_back(f.val.substr(1));
    }
    return term;
  }

  std::optional<Arg> Term() {
    const Token& t = NextNonSpace();
    Arg a;
    switch (t.type) {
      case Tok::kIdentifier:
        if (!KnownFunctions().contains(t.val)) {
          Error(fmt::format("function \"{}\" not defined", t.val));
        }
        a.type = Arg::Type::kFunction;
        a.name = t.val;
        return a;
      case Tok::kDot:
        a.type = Arg::Type::kDot;
        return a;
      case Tok::kNil:
        a.literal = Value::Nil();
        a.name = "nil";
        return a;
      case Tok::kVariable:
        CheckVariable(t.val);
        a.type = Arg::Type::kVariable;
        a.name = t.val;
        return a;
      case Tok::kField:
        a.type = Arg::Type::kField;
        a.fields.push_back(t.val.substr(1));
        return a;
      case Tok::kBool:
        a.literal = Value::Bool(t.val == "true");
        a.name = t.val;
        return a;
      case Tok::kChar: {
        std::string_view body = std::string_view(t.val).substr(1);
        uint32_t rune = 0;
        if (!UnquoteChar(&body, '\'', &rune)) {
          Error("invalid syntax");
        } else if (body != "'") {
          Error(fmt::format("malformed character constant: {}", t.val));
        }
        a.literal = Value::Int(rune);
        a.name = t.val;
        return a;
      }
      case Tok::kNumber: {
        double d = 0;
        if (!Lexer::ParseNumber(t.val, &d)) {
          Error(fmt::format("illegal number syntax: \"{}\"", t.val));
          return a;
        }
        bool integral = t.val.find_first_of(".eE") == std::string::npos ||
                        t.val.rfind("0x", 0) == 0 || t.val.rfind("0X", 0) == 0;
        a.literal = integral && std::abs(d) < 9.2e18 ? Value::Int(static_cast<int64_t>(d))
                                                     : Value::Float(d);
        a.name = t.val;
        return a;
      }
      case Tok::kString:
      case Tok::kRawString: {
        std::optional<std::string> text = Unquote(t.val);
        if (!text) Error("invalid syntax");
        a.literal = Value::String(text.value_or(""));
        a.name = t.val;
        return a;
      }
      case Tok::kLeftParen: {
        DepthGuard guard(this);
        if (!err_.empty()) return a;
        a.type = Arg::Type::kPipe;
        a.pipe = ParsePipe("parenthesized pipeline", Tok::kRightParen, true);
        return a;
      }
      default:
        Backup();
        return std::nullopt;
    }
  }

  std::string name_;
  std::vector<Token> toks_;
  size_t pos_ = 0;
  int last_line_ = 1;
  int range_depth_ = 0;
  int depth_ = 0;
  int list_depth_ = 0;  // 0: the top level, where {{define}} may appear
  TemplateNode* root_ = nullptr;
  std::vector<std::string> vars_;
  std::string err_;
};

// ---------------------------------------------------------------- values

std::string GoG(double v, int prec) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{:.{}g}", v, prec);
}

std::string FormatMap(const std::map<std::string, std::string>& m) {
  std::string out = "map[";
  bool first = true;
  for (const auto& [k, v] : m) {
    if (!first) out += ' ';
    first = false;
    absl::StrAppend(&out, k, ":", v);
  }
  return out + "]";
}

// Go's fmt %v.
std::string Print(const Value& v) {
  switch (v.kind) {
    case Kind::kNil:
      return "<no value>";
    case Kind::kBool:
      return v.b ? "true" : "false";
    case Kind::kInt:
      return std::to_string(v.i);
    case Kind::kFloat:
      return FormatGoFloat(v.f);
    case Kind::kString:
      return v.s;
    case Kind::kMap:
      return FormatMap(v.map);
    case Kind::kSample:
      return absl::StrCat("{", FormatMap(v.map), " ", FormatGoFloat(v.f), "}");
    case Kind::kVector: {
      std::string out = "[";
      for (size_t i = 0; i < v.vec.size(); ++i) {
        if (i > 0) out += ' ';
        out += Print(v.vec[i]);
      }
      return out + "]";
    }
  }
  return "";
}

// Go's template truth.
bool Truth(const Value& v) {
  switch (v.kind) {
    case Kind::kNil:
      return false;
    case Kind::kBool:
      return v.b;
    case Kind::kInt:
      return v.i != 0;
    case Kind::kFloat:
      return v.f != 0;
    case Kind::kString:
      return !v.s.empty();
    case Kind::kMap:
      return !v.map.empty();
    case Kind::kSample:
      return true;
    case Kind::kVector:
      return !v.vec.empty();
  }
  return false;
}

const char* TypeName(const Value& v) {
  switch (v.kind) {
    case Kind::kNil:
      return "nil";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float64";
    case Kind::kString:
      return "string";
    case Kind::kMap:
      return "map[string]string";
    case Kind::kSample:
      return "*template.sample";
    case Kind::kVector:
      return "template.queryResult";
  }
  return "?";
}

// Prometheus' convertToFloat: numbers, and strings that parse as floats.
absl::StatusOr<double> ToFloat(const Value& v) {
  switch (v.kind) {
    case Kind::kFloat:
      return v.f;
    case Kind::kInt:
      return static_cast<double>(v.i);
    case Kind::kString: {
      std::string_view s = v.s;
      if (s == "NaN") return std::nan("");
      if (s == "+Inf" || s == "Inf" || s == "inf" || s == "+inf") return HUGE_VAL;
      if (s == "-Inf" || s == "-inf") return -HUGE_VAL;
      double d;
      if (!s.empty() && s[0] == '+') s.remove_prefix(1);
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
      if (ec != std::errc() || p != s.data() + s.size() || s.empty()) {
        return absl::InvalidArgumentError(
            fmt::format("strconv.ParseFloat: parsing \"{}\": invalid syntax", v.s));
      }
      return d;
    }
    default:
      return absl::InvalidArgumentError(fmt::format("can't convert {} to float", TypeName(v)));
  }
}

std::string Humanize(double v) {
  if (v == 0 || std::isnan(v) || std::isinf(v)) return GoG(v, 4);
  static const char* kBig[] = {"k", "M", "G", "T", "P", "E", "Z", "Y"};
  static const char* kSmall[] = {"m", "u", "n", "p", "f", "a", "z", "y"};
  std::string prefix;
  if (std::abs(v) >= 1) {
    for (const char* p : kBig) {
      if (std::abs(v) < 1000) break;
      prefix = p;
      v /= 1000;
    }
  } else {
    for (const char* p : kSmall) {
      if (std::abs(v) >= 1) break;
      prefix = p;
      v *= 1000;
    }
  }
  return GoG(v, 4) + prefix;
}

std::string Humanize1024(double v) {
  if (std::abs(v) <= 1 || std::isnan(v) || std::isinf(v)) return GoG(v, 4);
  static const char* kPrefixes[] = {"ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"};
  std::string prefix;
  for (const char* p : kPrefixes) {
    if (std::abs(v) < 1024) break;
    prefix = p;
    v /= 1024;
  }
  return GoG(v, 4) + prefix;
}

std::string HumanizeDuration(double v) {
  if (std::isnan(v) || std::isinf(v)) return GoG(v, 4);
  if (v == 0) return GoG(v, 4) + "s";
  if (std::abs(v) >= 1) {
    std::string sign;
    if (v < 0) {
      sign = "-";
      v = -v;
    }
    // Clamped: a float beyond int64 would be undefined behaviour to convert.
    auto d = static_cast<int64_t>(std::min(v, 9.2e18));
    int64_t seconds = d % 60, minutes = (d / 60) % 60, hours = (d / 3600) % 24, days = d / 86400;
    if (days != 0) return fmt::format("{}{}d {}h {}m {}s", sign, days, hours, minutes, seconds);
    if (hours != 0) return fmt::format("{}{}h {}m {}s", sign, hours, minutes, seconds);
    if (minutes != 0) return fmt::format("{}{}m {}s", sign, minutes, seconds);
    return sign + GoG(v, 4) + "s";
  }
  static const char* kSmall[] = {"m", "u", "n", "p", "f", "a", "z", "y"};
  std::string prefix;
  for (const char* p : kSmall) {
    if (std::abs(v) >= 1) break;
    prefix = p;
    v *= 1000;
  }
  return GoG(v, 4) + prefix + "s";
}

// Go's time.Time.String() in UTC: 2006-01-02 15:04:05.999999999 +0000 UTC.
std::string HumanizeTimestamp(double v) {
  if (std::isnan(v) || std::isinf(v)) return GoG(v, 4);
  // Prometheus goes through model.Time: nanoseconds truncated to milliseconds.
  auto ms = static_cast<int64_t>(std::clamp(v * 1e9, -9.2e18, 9.2e18)) / 1000000;
  int64_t secs = ms / 1000;
  int64_t frac = (ms % 1000) * 1000000;
  if (frac < 0) {
    frac += 1000000000;
    --secs;
  }
  time_t t = static_cast<time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::string out = fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", tm.tm_year + 1900,
                                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  if (frac != 0) {
    std::string f = fmt::format("{:09}", frac);
    while (!f.empty() && f.back() == '0') f.pop_back();
    out += "." + f;
  }
  return out + " +0000 UTC";
}

// strings.Title: upper-cases the first letter of each word.
std::string Title(std::string s) {
  bool prev_sep = true;
  for (char& c : s) {
    auto u = static_cast<unsigned char>(c);
    if (prev_sep && absl::ascii_islower(u)) c = absl::ascii_toupper(u);
    prev_sep = !(absl::ascii_isalnum(u) || c == '_' || u >= 0x80);
  }
  return s;
}

// Go's regexp replacement template ($1, ${1}, $name, $$) in RE2's (\1, \\).
std::string GoReplacement(const re2::RE2& re, std::string_view repl) {
  std::string out;
  const auto& names = re.NamedCapturingGroups();
  for (size_t i = 0; i < repl.size(); ++i) {
    char c = repl[i];
    if (c == '\\') {
      out += "\\\\";
      continue;
    }
    if (c != '$' || i + 1 >= repl.size()) {
      out += c;
      continue;
    }
    if (repl[i + 1] == '$') {
      out += '$';
      ++i;
      continue;
    }
    std::string name;
    size_t j = i + 1;
    if (repl[j] == '{') {
      size_t close = repl.find('}', j);
      if (close == std::string_view::npos) {
        out += c;
        continue;
      }
      name = std::string(repl.substr(j + 1, close - j - 1));
      j = close + 1;
    } else {
      while (j < repl.size() && IsAlnum(repl[j])) name += repl[j++];
    }
    i = j - 1;
    int group = -1;
    if (!name.empty() && std::all_of(name.begin(), name.end(), absl::ascii_isdigit)) {
      group = std::stoi(name);
    } else if (auto it = names.find(name); it != names.end()) {
      group = it->second;
    }
    // Go expands an unknown group to nothing; RE2 has only \0-\9.
    if (group >= 0 && group <= 9 && group <= re.NumberOfCapturingGroups()) {
      out += '\\';
      out += static_cast<char>('0' + group);
    }
  }
  return out;
}

// Go's fmt.Sprintf for the verbs templates use: %v %s %d %f %e %g %q %x %t %%
// with flags, width and precision.
std::string Sprintf(std::string_view format, const std::vector<Value>& args) {
  std::string out;
  size_t argi = 0;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out += format[i];
      continue;
    }
    size_t start = i++;
    while (i < format.size() && std::string_view("+-# 0").find(format[i]) != std::string::npos) ++i;
    // Width and precision: at most three digits each, so that the spec
    // handed to snprintf is always well formed and bounded.
    auto digits = [&] {
      size_t n = 0;
      while (i < format.size() && absl::ascii_isdigit(format[i]) && n < 3) ++i, ++n;
    };
    digits();
    if (i < format.size() && format[i] == '.') {
      ++i;
      digits();
    }
    if (i >= format.size()) {
      out += "%!(NOVERB)";
      break;
    }
    char verb = format[i];
    if (verb == '%') {
      out += '%';
      continue;
    }
    std::string spec(format.substr(start, i - start));  // "%-8.2" without the verb
    if (argi >= args.size()) {
      out += fmt::format("%!{}(MISSING)", verb);
      continue;
    }
    const Value& a = args[argi++];
    auto bad = [&] { return fmt::format("%!{}({}={})", verb, TypeName(a), Print(a)); };
    char buf[512];
    switch (verb) {
      case 'v':
      case 's': {
        std::string s = Print(a);
        if (verb == 's' && a.kind != Kind::kString && a.kind != Kind::kMap &&
            a.kind != Kind::kVector && a.kind != Kind::kSample) {
          out += bad();
          break;
        }
        std::snprintf(buf, sizeof buf, (spec + "s").c_str(), s.c_str());
        out += buf;
        break;
      }
      case 'q':
        if (a.kind != Kind::kString) {
          out += bad();
          break;
        }
        out += '"';
        for (char c : a.s) {
          if (c == '"' || c == '\\') out += '\\';
          out += c;
        }
        out += '"';
        break;
      case 't':
        if (a.kind != Kind::kBool) {
          out += bad();
          break;
        }
        out += a.b ? "true" : "false";
        break;
      case 'd':
      case 'x':
      case 'X':
        if (a.kind == Kind::kInt) {
          std::snprintf(buf, sizeof buf, (spec + "ll" + verb).c_str(), static_cast<long long>(a.i));
          out += buf;
        } else if (a.kind == Kind::kString && verb != 'd') {
          for (unsigned char c : a.s)
            out += (verb == 'x' ? fmt::format("{:02x}", c) : fmt::format("{:02X}", c));
        } else {
          out += bad();
        }
        break;
      case 'f':
      case 'F':
      case 'e':
      case 'E':
      case 'g':
      case 'G': {
        double d;
        if (a.kind == Kind::kFloat) {
          d = a.f;
        } else {
          out += bad();
          break;
        }
        if (std::isnan(d) || std::isinf(d)) {
          out += GoG(d, 1);
          break;
        }
        if ((verb == 'g' || verb == 'G') && spec.find('.') == std::string::npos) {
          // Go's %g without a precision is the shortest representation.
          std::string g = FormatGoFloat(d);
          if (verb == 'G') g = absl::AsciiStrToUpper(g);
          std::snprintf(buf, sizeof buf, (spec + "s").c_str(), g.c_str());
        } else {
          std::snprintf(buf, sizeof buf, (spec + verb).c_str(), d);
        }
        out += buf;
        break;
      }
      default:
        out += bad();
    }
  }
  if (argi < args.size()) {
    out += "%!(EXTRA ";
    for (size_t j = argi; j < args.size(); ++j) {
      if (j > argi) out += ", ";
      absl::StrAppend(&out, TypeName(args[j]), "=", Print(args[j]));
    }
    out += ")";
  }
  return out;
}

absl::StatusOr<Value> Compare(std::string_view fn, const Value& a, const Value& b) {
  auto numeric = [](const Value& v) { return v.kind == Kind::kInt || v.kind == Kind::kFloat; };
  int c = 0;
  if (a.kind == Kind::kString && b.kind == Kind::kString) {
    c = a.s < b.s ? -1 : a.s > b.s ? 1 : 0;
  } else if (a.kind == Kind::kInt && b.kind == Kind::kInt) {
    c = a.i < b.i ? -1 : a.i > b.i ? 1 : 0;
  } else if (a.kind == Kind::kFloat && b.kind == Kind::kFloat) {
    if (fn == "eq" || fn == "ne") {
      bool eq = a.f == b.f;
      return Value::Bool(fn == "eq" ? eq : !eq);
    }
    c = a.f < b.f ? -1 : a.f > b.f ? 1 : 0;
  } else if (a.kind == Kind::kBool && b.kind == Kind::kBool && (fn == "eq" || fn == "ne")) {
    c = a.b == b.b ? 0 : 1;
  } else if (numeric(a) && numeric(b)) {
    return absl::InvalidArgumentError("incompatible types for comparison");
  } else {
    return absl::InvalidArgumentError("incompatible types for comparison");
  }
  if (fn == "eq") return Value::Bool(c == 0);
  if (fn == "ne") return Value::Bool(c != 0);
  if (fn == "lt") return Value::Bool(c < 0);
  if (fn == "le") return Value::Bool(c <= 0);
  if (fn == "gt") return Value::Bool(c > 0);
  return Value::Bool(c >= 0);
}

absl::StatusOr<Value> CallFunction(const std::string& fn, const std::vector<Value>& args) {
  auto want = [&](size_t n) -> absl::Status {
    if (args.size() != n) {
      return absl::InvalidArgumentError(
          fmt::format("wrong number of args for {}: want {} got {}", fn, n, args.size()));
    }
    return absl::OkStatus();
  };
  auto string_arg = [&](size_t i) -> absl::StatusOr<std::string> {
    if (args[i].kind != Kind::kString) {
      return absl::InvalidArgumentError(
          fmt::format("wrong type for value; expected string; got {}", TypeName(args[i])));
    }
    return args[i].s;
  };
  if (fn == "humanize" || fn == "humanize1024" || fn == "humanizeDuration" ||
      fn == "humanizePercentage" || fn == "humanizeTimestamp") {
    ESPY_RETURN_IF_ERROR(want(1));
    auto v = ToFloat(args[0]);
    if (!v.ok()) return v.status();
    if (fn == "humanize") return Value::String(Humanize(*v));
    if (fn == "humanize1024") return Value::String(Humanize1024(*v));
    if (fn == "humanizeDuration") return Value::String(HumanizeDuration(*v));
    if (fn == "humanizePercentage") return Value::String(GoG(*v * 100, 4) + "%");
    return Value::String(HumanizeTimestamp(*v));
  }
  if (fn == "printf") {
    if (args.empty()) return absl::InvalidArgumentError("wrong number of args for printf");
    ESPY_ASSIGN_OR_RETURN(std::string format, string_arg(0));
    return Value::String(Sprintf(format, std::vector<Value>(args.begin() + 1, args.end())));
  }
  if (fn == "print" || fn == "println") {
    std::string out;
    for (size_t i = 0; i < args.size(); ++i) {
      // Go's Sprint puts spaces between operands when neither is a string.
      if (i > 0 &&
          (fn == "println" || (args[i].kind != Kind::kString && args[i - 1].kind != Kind::kString)))
        out += ' ';
      out += Print(args[i]);
    }
    if (fn == "println") out += '\n';
    return Value::String(out);
  }
  if (fn == "title" || fn == "toUpper" || fn == "toLower" || fn == "safeHtml") {
    ESPY_RETURN_IF_ERROR(want(1));
    ESPY_ASSIGN_OR_RETURN(std::string s, string_arg(0));
    if (fn == "title") return Value::String(Title(s));
    if (fn == "toUpper") return Value::String(absl::AsciiStrToUpper(s));
    if (fn == "toLower") return Value::String(absl::AsciiStrToLower(s));
    return Value::String(s);
  }
  if (fn == "match" || fn == "reReplaceAll") {
    ESPY_RETURN_IF_ERROR(want(fn == "match" ? 2 : 3));
    ESPY_ASSIGN_OR_RETURN(std::string pattern, string_arg(0));
    re2::RE2 re(pattern, re2::RE2::Quiet);
    if (!re.ok()) {
      return absl::InvalidArgumentError(
          fmt::format("error parsing regexp: {}: `{}`", re.error(), pattern));
    }
    if (fn == "match") {
      ESPY_ASSIGN_OR_RETURN(std::string text, string_arg(1));
      return Value::Bool(re2::RE2::PartialMatch(text, re));
    }
    ESPY_ASSIGN_OR_RETURN(std::string repl, string_arg(1));
    ESPY_ASSIGN_OR_RETURN(std::string text, string_arg(2));
    re2::RE2::GlobalReplace(&text, re, GoReplacement(re, repl));
    return Value::String(text);
  }
  if (fn == "first") {
    ESPY_RETURN_IF_ERROR(want(1));
    if (args[0].kind != Kind::kVector) {
      return absl::InvalidArgumentError(
          fmt::format("first: want a query result, got {}", TypeName(args[0])));
    }
    if (args[0].vec.empty())
      return absl::InvalidArgumentError("first() called on vector with no elements");
    return args[0].vec[0];
  }
  if (fn == "label") {
    ESPY_RETURN_IF_ERROR(want(2));
    ESPY_ASSIGN_OR_RETURN(std::string name, string_arg(0));
    if (args[1].kind != Kind::kSample) {
      return absl::InvalidArgumentError(
          fmt::format("label: want a sample, got {}", TypeName(args[1])));
    }
    auto it = args[1].map.find(name);
    return Value::String(it == args[1].map.end() ? "" : it->second);
  }
  if (fn == "value" || fn == "strvalue") {
    ESPY_RETURN_IF_ERROR(want(1));
    if (args[0].kind != Kind::kSample) {
      return absl::InvalidArgumentError(
          fmt::format("{}: want a sample, got {}", fn, TypeName(args[0])));
    }
    if (fn == "value") return Value::Float(args[0].f);
    auto it = args[0].map.find("__value__");
    return Value::String(it == args[0].map.end() ? "" : it->second);
  }
  if (fn == "toTime") {
    ESPY_RETURN_IF_ERROR(want(1));
    ESPY_ASSIGN_OR_RETURN(double v, ToFloat(args[0]));
    return Value::String(HumanizeTimestamp(v));
  }
  if (fn == "eq" || fn == "ne" || fn == "lt" || fn == "le" || fn == "gt" || fn == "ge") {
    if (fn == "eq" && args.size() > 2) {
      for (size_t i = 1; i < args.size(); ++i) {
        ESPY_ASSIGN_OR_RETURN(Value r, Compare("eq", args[0], args[i]));
        if (r.b) return r;
      }
      return Value::Bool(false);
    }
    ESPY_RETURN_IF_ERROR(want(2));
    return Compare(fn, args[0], args[1]);
  }
  if (fn == "not") {
    ESPY_RETURN_IF_ERROR(want(1));
    return Value::Bool(!Truth(args[0]));
  }
  if (fn == "and" || fn == "or") {
    if (args.empty())
      return absl::InvalidArgumentError(fmt::format("wrong number of args for {}", fn));
    for (const Value& a : args) {
      if (Truth(a) != (fn == "and")) return a;
    }
    return args.back();
  }
  if (fn == "len") {
    ESPY_RETURN_IF_ERROR(want(1));
    const Value& a = args[0];
    if (a.kind == Kind::kString) return Value::Int(static_cast<int64_t>(a.s.size()));
    if (a.kind == Kind::kMap) return Value::Int(static_cast<int64_t>(a.map.size()));
    if (a.kind == Kind::kVector) return Value::Int(static_cast<int64_t>(a.vec.size()));
    return absl::InvalidArgumentError(fmt::format("len of type {}", TypeName(a)));
  }
  if (fn == "index") {
    ESPY_RETURN_IF_ERROR(want(2));
    if (args[0].kind == Kind::kMap && args[1].kind == Kind::kString) {
      auto it = args[0].map.find(args[1].s);
      return Value::String(it == args[0].map.end() ? "" : it->second);
    }
    if (args[0].kind == Kind::kVector && args[1].kind == Kind::kInt) {
      if (args[1].i < 0 || args[1].i >= static_cast<int64_t>(args[0].vec.size())) {
        return absl::InvalidArgumentError(fmt::format("index out of range: {}", args[1].i));
      }
      return args[0].vec[args[1].i];
    }
    return absl::InvalidArgumentError(
        fmt::format("can't index item of type {}", TypeName(args[0])));
  }
  if (fn == "args") {
    std::map<std::string, std::string> m;
    for (size_t i = 0; i < args.size(); ++i) m[fmt::format("arg{}", i)] = Print(args[i]);
    return Value::Map(std::move(m));
  }
  if (fn == "parseDuration") {
    ESPY_RETURN_IF_ERROR(want(1));
    ESPY_ASSIGN_OR_RETURN(std::string s, string_arg(0));
    return absl::InvalidArgumentError("parseDuration is not supported in Espy's templates");
  }
  // query, sortByLabel, graphLink, tableLink, pathPrefix, externalURL, html,
  // js, urlquery, call, slice: known to the parser, refused here.
  return absl::UnimplementedError(
      fmt::format("function \"{}\" is not supported in Espy's alert templates", fn));
}

// ---------------------------------------------------------------- executor

class Executor {
 public:
  Executor(const std::string& name, const AlertTemplateData& data) : name_(name), data_(data) {
    vars_ = {{"$", Root()},
             {"$labels", Value::Map(data.labels)},
             {"$externalLabels", Value::Map(data.external_labels)},
             {"$externalURL", Value::String(data.external_url)},
             {"$value", Value::Float(data.value)}};
  }

  absl::Status Run(const TemplateNode& root, std::string* out) {
    root_ = &root;
    Value dot = Root();
    Flow f = Walk(root, dot, out);
    return f == Flow::kError ? status_ : absl::OkStatus();
  }

 private:
  enum class Flow { kNormal, kBreak, kContinue, kError };

  // The root data: a map whose "fields" are the alert's, tagged by
  // is_root_ so field lookup can give each its own type.
  Value Root() {
    Value v = Value::Map({});
    v.s = kRootTag;
    return v;
  }
  static constexpr const char* kRootTag = "\x01root";

  Flow Fail(int line, std::string msg) {
    status_ = absl::InvalidArgumentError(
        fmt::format("template: {}:{}: executing \"{}\": {}", name_, line, name_, msg));
    return Flow::kError;
  }

  Flow Walk(const TemplateNode& n, const Value& dot, std::string* out) {
    // A budget of nodes and output: templates calling templates could
    // otherwise run for exponential time.
    if (++steps_ > kMaxSteps || out->size() > kMaxOutput) {
      return Fail(n.line, "template expansion too large");
    }
    switch (n.type) {
      case TemplateNode::Type::kList:
        for (const auto& c : n.list) {
          Flow f = Walk(*c, dot, out);
          if (f != Flow::kNormal) return f;
        }
        return Flow::kNormal;
      case TemplateNode::Type::kText:
        *out += n.text;
        return Flow::kNormal;
      case TemplateNode::Type::kAction: {
        auto v = EvalPipe(*n.pipe, dot);
        if (!v.ok()) return Fail(n.line, std::string(v.status().message()));
        if (n.pipe->decl.empty()) *out += Print(*v);
        return Flow::kNormal;
      }
      case TemplateNode::Type::kBreak:
        return Flow::kBreak;
      case TemplateNode::Type::kContinue:
        return Flow::kContinue;
      case TemplateNode::Type::kIf:
      case TemplateNode::Type::kWith: {
        size_t mark = vars_.size();
        auto v = EvalPipe(*n.pipe, dot);
        if (!v.ok()) return Fail(n.line, std::string(v.status().message()));
        Flow f = Flow::kNormal;
        if (Truth(*v)) {
          f = Walk(*n.body, n.type == TemplateNode::Type::kWith ? *v : dot, out);
        } else if (n.else_body) {
          f = Walk(*n.else_body, dot, out);
        }
        vars_.resize(mark);
        return f;
      }
      case TemplateNode::Type::kRange:
        return Range(n, dot, out);
      case TemplateNode::Type::kTemplate: {
        auto it = root_->defines.find(n.text);
        if (it == root_->defines.end()) {
          return Fail(n.line, fmt::format("template: no template \"{}\" associated with template "
                                          "\"{}\"",
                                          n.text, name_));
        }
        if (template_depth_ >= kMaxTemplateDepth) {
          return Fail(n.line,
                      fmt::format("exceeded maximum template depth ({})", kMaxTemplateDepth));
        }
        Value arg;
        if (n.pipe) {
          auto v = EvalPipe(*n.pipe, dot);
          if (!v.ok()) return Fail(n.line, std::string(v.status().message()));
          arg = *std::move(v);
        }
        // A called template sees only `$`, its argument.
        auto saved = std::move(vars_);
        vars_ = {{"$", arg}};
        ++template_depth_;
        Flow f = Walk(*it->second, arg, out);
        --template_depth_;
        vars_ = std::move(saved);
        return f == Flow::kError ? f : Flow::kNormal;
      }
    }
    return Flow::kNormal;
  }

  Flow Range(const TemplateNode& n, const Value& dot, std::string* out) {
    size_t mark = vars_.size();
    // The pipeline is evaluated without its declarations; they are set per element.
    Pipe plain = *n.pipe;
    plain.decl.clear();
    auto v = EvalPipe(plain, dot);
    if (!v.ok()) return Fail(n.line, std::string(v.status().message()));
    std::vector<std::pair<Value, Value>> items;
    if (v->kind == Kind::kMap && v->s != kRootTag) {
      for (const auto& [k, val] : v->map) items.emplace_back(Value::String(k), Value::String(val));
    } else if (v->kind == Kind::kVector) {
      for (size_t i = 0; i < v->vec.size(); ++i) {
        items.emplace_back(Value::Int(static_cast<int64_t>(i)), v->vec[i]);
      }
    } else if (v->kind != Kind::kNil) {
      return Fail(n.line, fmt::format("range can't iterate over {}", Print(*v)));
    }
    Flow result = Flow::kNormal;
    for (const auto& [key, elem] : items) {
      vars_.resize(mark);
      const auto& decl = n.pipe->decl;
      if (decl.size() == 1) SetVar(decl[0], elem, n.pipe->assign);
      if (decl.size() == 2) {
        SetVar(decl[0], key, n.pipe->assign);
        SetVar(decl[1], elem, n.pipe->assign);
      }
      Flow f = Walk(*n.body, elem, out);
      if (f == Flow::kError) return f;
      if (f == Flow::kBreak) break;
    }
    if (items.empty() && n.else_body) result = Walk(*n.else_body, dot, out);
    vars_.resize(mark);
    return result;
  }

  void SetVar(const std::string& name, const Value& v, bool assign) {
    if (assign) {
      for (auto it = vars_.rbegin(); it != vars_.rend(); ++it) {
        if (it->first == name) {
          it->second = v;
          return;
        }
      }
    }
    vars_.emplace_back(name, v);
  }

  absl::StatusOr<Value> EvalPipe(const Pipe& pipe, const Value& dot) {
    std::optional<Value> prev;
    for (const Command& cmd : pipe.cmds) {
      ESPY_ASSIGN_OR_RETURN(Value v, EvalCommand(cmd, dot, prev));
      prev = std::move(v);
    }
    Value result = prev.value_or(Value::Nil());
    for (const auto& d : pipe.decl) SetVar(d, result, pipe.assign);
    return result;
  }

  absl::StatusOr<Value> EvalCommand(const Command& cmd, const Value& dot,
                                    const std::optional<Value>& prev) {
    const Arg& first = cmd.args[0];
    if (first.type == Arg::Type::kFunction) {
      std::vector<Value> args;
      for (size_t i = 1; i < cmd.args.size(); ++i) {
        ESPY_ASSIGN_OR_RETURN(Value v, EvalArg(cmd.args[i], dot));
        args.push_back(std::move(v));
      }
      if (prev) args.push_back(*prev);
      auto r = CallFunction(first.name, args);
      if (!r.ok()) {
        return absl::Status(r.status().code(),
                            fmt::format("error calling {}: {}", first.name, r.status().message()));
      }
      return r;
    }
    if (cmd.args.size() > 1 || prev) {
      std::string what = first.type == Arg::Type::kLiteral ? first.name : "a non-function";
      return absl::InvalidArgumentError(
          fmt::format("can't give argument to non-function {}", what));
    }
    return EvalArg(first, dot);
  }

  absl::StatusOr<Value> EvalArg(const Arg& a, const Value& dot) {
    Value base;
    switch (a.type) {
      case Arg::Type::kLiteral:
        return a.literal;
      case Arg::Type::kDot:
        return dot;
      case Arg::Type::kField:
        base = dot;
        break;
      case Arg::Type::kVariable: {
        auto it = std::find_if(vars_.rbegin(), vars_.rend(),
                               [&](const auto& v) { return v.first == a.name; });
        if (it == vars_.rend()) {
          return absl::InvalidArgumentError(fmt::format("undefined variable: {}", a.name));
        }
        base = it->second;
        break;
      }
      case Arg::Type::kPipe: {
        ESPY_ASSIGN_OR_RETURN(base, EvalPipe(*a.pipe, dot));
        break;
      }
      case Arg::Type::kFunction: {
        auto r = CallFunction(a.name, {});
        if (!r.ok()) {
          return absl::Status(r.status().code(),
                              fmt::format("error calling {}: {}", a.name, r.status().message()));
        }
        base = *std::move(r);
        break;
      }
    }
    for (const std::string& f : a.fields) {
      ESPY_ASSIGN_OR_RETURN(base, Field(base, f));
    }
    return base;
  }

  absl::StatusOr<Value> Field(const Value& v, const std::string& f) {
    if (v.kind == Kind::kMap && v.s == kRootTag) {
      if (f == "Labels") return Value::Map(data_.labels);
      if (f == "ExternalLabels") return Value::Map(data_.external_labels);
      if (f == "ExternalURL") return Value::String(data_.external_url);
      if (f == "Value") return Value::Float(data_.value);
      return absl::InvalidArgumentError(fmt::format("can't evaluate field {} in type struct", f));
    }
    if (v.kind == Kind::kMap) {
      // missingkey=zero, as Prometheus sets it: a missing label is "".
      auto it = v.map.find(f);
      return Value::String(it == v.map.end() ? "" : it->second);
    }
    if (v.kind == Kind::kSample) {
      if (f == "Labels") return Value::Map(v.map);
      if (f == "Value") return Value::Float(v.f);
    }
    if (v.kind == Kind::kNil) {
      return absl::InvalidArgumentError(fmt::format("nil pointer evaluating interface {{}}.{}", f));
    }
    return absl::InvalidArgumentError(
        fmt::format("can't evaluate field {} in type {}", f, TypeName(v)));
  }

  // Templates calling templates: bounded so that recursion ends.
  static constexpr int kMaxTemplateDepth = 100;
  static constexpr int64_t kMaxSteps = 1'000'000;
  static constexpr size_t kMaxOutput = 1 << 20;
  int64_t steps_ = 0;

  const std::string& name_;
  const AlertTemplateData& data_;
  const TemplateNode* root_ = nullptr;
  int template_depth_ = 0;
  std::vector<std::pair<std::string, Value>> vars_;
  absl::Status status_;
};

}  // namespace

std::string FormatGoFloat(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == 0) return std::signbit(v) ? "-0" : "0";
  // Shortest round-trip digits, then Go's choice between %e and %f.
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string sci(buf, end);
  size_t e = sci.find('e');
  int exp = std::stoi(sci.substr(e + 1));
  std::string mant = sci.substr(0, e);
  bool neg = mant[0] == '-';
  if (neg) mant.erase(0, 1);
  std::string digits;
  for (char c : mant) {
    if (c != '.') digits += c;
  }
  std::string out = neg ? "-" : "";
  if (exp < -4 || exp >= 6) {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    out += fmt::format("e{}{:02}", exp < 0 ? '-' : '+', std::abs(exp));
    return out;
  }
  if (exp < 0) {
    out += "0." + std::string(-exp - 1, '0') + digits;
  } else if (static_cast<int>(digits.size()) <= exp + 1) {
    out += digits + std::string(exp + 1 - digits.size(), '0');
  } else {
    out += digits.substr(0, exp + 1) + "." + digits.substr(exp + 1);
  }
  return out;
}

Template::Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;
Template::~Template() = default;

absl::StatusOr<Template> Template::Parse(std::string_view name, std::string_view text) {
  Lexer lexer(text);
  Parser parser(std::string(name), lexer.Run());
  ESPY_ASSIGN_OR_RETURN(std::unique_ptr<TemplateNode> root, parser.Run());
  Template t;
  t.name_ = std::string(name);
  t.root_ = std::move(root);
  return t;
}

absl::StatusOr<std::string> Template::Execute(const AlertTemplateData& data) const {
  std::string out;
  Executor exec(name_, data);
  ESPY_RETURN_IF_ERROR(exec.Run(*root_, &out));
  return out;
}

}  // namespace espy::rules
