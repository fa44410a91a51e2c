#include "query/promql/parser.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <deque>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include "base/status_macros.h"
#include "fmt/format.h"
#include "model/labels.h"
#include "model/names.h"
#include "query/promql/lexer.h"
#include "query/promql/printer.h"

namespace espy::query::promql {
namespace {

// Binary operator precedence, lowest first, as Prometheus's grammar declares it.
constexpr int kPrecOr = 1;
constexpr int kPrecAndUnless = 2;
constexpr int kPrecComparison = 3;
constexpr int kPrecAdditive = 4;
constexpr int kPrecMultiplicative = 5;  // also unary + and -
constexpr int kPrecPow = 6;             // right-associative

// Bound on the depth of the tree, so that every recursive walk of it
// (parsing, type checking, printing, evaluation, destruction) stays far from
// the end of a thread's stack whatever the input. A link of an operator chain
// (a or b or c ...) adds one level; a nested parse (parentheses, arguments,
// unary operators, subqueries) costs kRecursionCost, as the parser recurses
// through several stack frames for it. So about 250 levels of parentheses or
// 1000 chained operators are accepted.
constexpr int32_t kMaxNesting = 1024;
constexpr int32_t kRecursionCost = 4;

// 0 when the token is not a binary operator.
int Precedence(TokenType t) {
  switch (t) {
    case TokenType::kLor:
      return kPrecOr;
    case TokenType::kLand:
    case TokenType::kLunless:
      return kPrecAndUnless;
    case TokenType::kEqlc:
    case TokenType::kNeq:
    case TokenType::kLte:
    case TokenType::kLss:
    case TokenType::kGte:
    case TokenType::kGtr:
      return kPrecComparison;
    case TokenType::kAdd:
    case TokenType::kSub:
      return kPrecAdditive;
    case TokenType::kMul:
    case TokenType::kDiv:
    case TokenType::kMod:
    case TokenType::kAtan2:
      return kPrecMultiplicative;
    case TokenType::kPow:
      return kPrecPow;
    default:
      return 0;
  }
}

BinaryOp ToBinaryOp(TokenType t) {
  switch (t) {
    case TokenType::kAdd:
      return BinaryOp::kAdd;
    case TokenType::kSub:
      return BinaryOp::kSub;
    case TokenType::kMul:
      return BinaryOp::kMul;
    case TokenType::kDiv:
      return BinaryOp::kDiv;
    case TokenType::kMod:
      return BinaryOp::kMod;
    case TokenType::kPow:
      return BinaryOp::kPow;
    case TokenType::kAtan2:
      return BinaryOp::kAtan2;
    case TokenType::kEqlc:
      return BinaryOp::kEql;
    case TokenType::kNeq:
      return BinaryOp::kNeq;
    case TokenType::kGtr:
      return BinaryOp::kGtr;
    case TokenType::kLss:
      return BinaryOp::kLss;
    case TokenType::kGte:
      return BinaryOp::kGte;
    case TokenType::kLte:
      return BinaryOp::kLte;
    case TokenType::kLand:
      return BinaryOp::kAnd;
    case TokenType::kLor:
      return BinaryOp::kOr;
    default:
      return BinaryOp::kUnless;
  }
}

// Tokens the grammar accepts as a metric name (Prometheus's metric_identifier).
bool IsMetricIdentifier(TokenType t) {
  switch (t) {
    case TokenType::kIdentifier:
    case TokenType::kMetricIdentifier:
    case TokenType::kBy:
    case TokenType::kWithout:
    case TokenType::kOffset:
    case TokenType::kLand:
    case TokenType::kLor:
    case TokenType::kLunless:
    case TokenType::kAtan2:
    case TokenType::kStart:
    case TokenType::kEnd:
      return true;
    default:
      return IsAggregatorToken(t);
  }
}

// Tokens the grammar accepts where a label name may stand (maybe_label).
bool IsMaybeLabel(TokenType t) { return IsMetricIdentifier(t) || IsKeywordToken(t); }

// Go's %f: six decimals, and +Inf / -Inf / NaN.
std::string GoFloatF(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{:.6f}", v);
}

absl::Status DurationError(std::string_view text) {
  return absl::InvalidArgumentError(
      fmt::format("not a valid duration string: {}", QuoteString(text)));
}

class Parser {
 public:
  explicit Parser(std::string_view input) : input_(input), lexer_(input) {}

  absl::StatusOr<ExprPtr> ParseTop() {
    if (Peek().type == TokenType::kEof) return ErrorAt(0, "no expression found in input");
    ESPY_ASSIGN_OR_RETURN(ExprPtr expr, ParseBinary(kPrecOr));
    if (Peek().type != TokenType::kEof) return Unexpected(Peek(), "", "");
    ESPY_RETURN_IF_ERROR(Check(*expr).status());
    return expr;
  }

  absl::StatusOr<std::unique_ptr<VectorSelector>> ParseSelectorOnly() {
    const Token& t = Peek();
    if (!IsMetricIdentifier(t.type) && t.type != TokenType::kLeftBrace) {
      if (t.type == TokenType::kEof) return ErrorAt(0, "no expression found in input");
      return Unexpected(t, "", "");
    }
    ESPY_ASSIGN_OR_RETURN(auto vs, ParseVectorSelector());
    if (Peek().type != TokenType::kEof) return Unexpected(Peek(), "", "");
    return vs;
  }

 private:
  // --- Tokens ---------------------------------------------------------------

  // The n-th token ahead, skipping comments.
  const Token& Peek(size_t n = 0) {
    while (ahead_.size() <= n) {
      Token t = lexer_.Next();
      if (t.type == TokenType::kComment) continue;
      ahead_.push_back(t);
    }
    return ahead_[n];
  }
  Token Consume() {
    Peek();
    Token t = ahead_.front();
    ahead_.pop_front();
    return t;
  }

  // --- Errors ---------------------------------------------------------------

  absl::Status ErrorAt(int32_t pos, std::string_view message) const {
    int line = 1;
    int32_t last_break = -1;
    for (int32_t i = 0; i < pos && i < static_cast<int32_t>(input_.size()); ++i) {
      if (input_[i] == '\n') {
        ++line;
        last_break = i;
      }
    }
    return absl::InvalidArgumentError(
        fmt::format("{}:{}: parse error: {}", line, pos - last_break, message));
  }

  // "unexpected <token>[ in <context>][, expected <expected>]"; a lexer error
  // token reports the lexer's own message instead.
  absl::Status Unexpected(const Token& t, std::string_view context, std::string_view expected) {
    if (t.type == TokenType::kError) return ErrorAt(t.pos, t.text);
    if (context.empty() && aggregation_depth_ > 0) context = "aggregation";
    std::string msg = "unexpected " + DescribeToken(t);
    if (!context.empty()) msg += fmt::format(" in {}", context);
    if (!expected.empty()) msg += fmt::format(", expected {}", expected);
    return ErrorAt(t.pos, msg);
  }

  // --- Expressions ----------------------------------------------------------

  absl::StatusOr<ExprPtr> ParseBinary(int min_prec) {
    int32_t entry_nesting = nesting_;
    ESPY_RETURN_IF_ERROR(Nest(Peek().pos, kRecursionCost));
    ESPY_ASSIGN_OR_RETURN(ExprPtr lhs, ParseUnary());
    while (true) {
      int prec = Precedence(Peek().type);
      if (prec == 0 || prec < min_prec) break;
      Token op = Consume();
      ESPY_RETURN_IF_ERROR(Nest(op.pos, 1));  // each link deepens the tree
      auto bin = std::make_unique<BinaryExpr>();
      bin->op = ToBinaryOp(op.type);
      ESPY_RETURN_IF_ERROR(ParseBinaryModifiers(bin.get()));
      ESPY_ASSIGN_OR_RETURN(bin->rhs, ParseBinary(prec == kPrecPow ? prec : prec + 1));
      bin->lhs = std::move(lhs);
      bin->pos = {bin->lhs->pos.start, bin->rhs->pos.end};
      lhs = std::move(bin);
    }
    nesting_ = entry_nesting;
    return lhs;
  }

  // Counts `cost` more levels of tree depth (see kMaxNesting).
  absl::Status Nest(int32_t pos, int32_t cost) {
    nesting_ += cost;
    if (nesting_ > kMaxNesting) return ErrorAt(pos, "expression nested too deeply");
    return absl::OkStatus();
  }

  // [bool] [on|ignoring (labels) [group_left|group_right [(labels)]]]
  absl::Status ParseBinaryModifiers(BinaryExpr* bin) {
    VectorMatching vm;
    if (Peek().type == TokenType::kBool) {
      Consume();
      bin->return_bool = true;
    }
    TokenType t = Peek().type;
    if (t == TokenType::kOn || t == TokenType::kIgnoring) {
      Consume();
      vm.on = t == TokenType::kOn;
      ESPY_ASSIGN_OR_RETURN(vm.matching_labels, ParseGroupingLabels());
      t = Peek().type;
      if (t == TokenType::kGroupLeft || t == TokenType::kGroupRight) {
        Consume();
        vm.card = t == TokenType::kGroupLeft ? VectorMatchCardinality::kManyToOne
                                             : VectorMatchCardinality::kOneToMany;
        if (Peek().type == TokenType::kLeftParen) {
          ESPY_ASSIGN_OR_RETURN(vm.include, ParseGroupingLabels());
        }
      }
    }
    bin->matching = std::move(vm);
    return absl::OkStatus();
  }

  absl::StatusOr<ExprPtr> ParseUnary() {
    TokenType t = Peek().type;
    if (t != TokenType::kAdd && t != TokenType::kSub) return ParsePostfix();
    Token op = Consume();
    // Unary operators bind like '*': only '^' binds tighter (-2^2 == -4).
    ESPY_ASSIGN_OR_RETURN(ExprPtr operand, ParseBinary(kPrecPow));
    if (auto* num = operand->As<NumberLiteral>()) {
      if (t == TokenType::kSub) num->value = -num->value;
      num->pos.start = op.pos;
      return operand;
    }
    auto u = std::make_unique<UnaryExpr>();
    u->op = t == TokenType::kSub ? UnaryOp::kMinus : UnaryOp::kPlus;
    u->pos = {op.pos, operand->pos.end};
    u->expr = std::move(operand);
    return u;
  }

  // A primary expression followed by any number of [range], [range:step],
  // offset and @ modifiers, which bind tighter than any operator.
  absl::StatusOr<ExprPtr> ParsePostfix() {
    int32_t entry_nesting = nesting_;
    ESPY_ASSIGN_OR_RETURN(ExprPtr expr, ParsePrimary());
    while (true) {
      switch (Peek().type) {
        case TokenType::kLeftBracket: {
          ESPY_RETURN_IF_ERROR(Nest(Peek().pos, 1));
          ESPY_ASSIGN_OR_RETURN(expr, ParseRangeOrSubquery(std::move(expr)));
          break;
        }
        case TokenType::kOffset:
          ESPY_RETURN_IF_ERROR(ParseOffset(expr.get()));
          break;
        case TokenType::kAt:
          ESPY_RETURN_IF_ERROR(ParseAt(expr.get()));
          break;
        default:
          nesting_ = entry_nesting;
          return expr;
      }
    }
  }

  absl::StatusOr<ExprPtr> ParsePrimary() {
    const Token& t = Peek();
    switch (t.type) {
      case TokenType::kNumber: {
        Token tok = Consume();
        auto num = std::make_unique<NumberLiteral>();
        ESPY_ASSIGN_OR_RETURN(num->value, ParseNumber(tok));
        num->pos = {tok.pos, tok.end()};
        return num;
      }
      case TokenType::kString: {
        Token tok = Consume();
        auto str = std::make_unique<StringLiteral>();
        ESPY_ASSIGN_OR_RETURN(str->value, Unquote(tok));
        str->pos = {tok.pos, tok.end()};
        return str;
      }
      case TokenType::kLeftParen: {
        Token open = Consume();
        auto paren = std::make_unique<ParenExpr>();
        ESPY_ASSIGN_OR_RETURN(paren->expr, ParseBinary(kPrecOr));
        if (Peek().type != TokenType::kRightParen) return Unexpected(Peek(), "", "");
        Token close = Consume();
        paren->pos = {open.pos, close.end()};
        return paren;
      }
      case TokenType::kLeftBrace:
        return ParseVectorSelector();
      case TokenType::kIdentifier:
        if (Peek(1).type == TokenType::kLeftParen) return ParseCall();
        return ParseVectorSelector();
      default:
        break;
    }
    if (IsAggregatorToken(t.type)) {
      TokenType next = Peek(1).type;
      if (next == TokenType::kLeftParen || next == TokenType::kBy || next == TokenType::kWithout) {
        return ParseAggregation();
      }
    }
    if (IsMetricIdentifier(t.type)) return ParseVectorSelector();
    return Unexpected(t, "", "");
  }

  // metric_name | metric_name{matchers} | {matchers}
  absl::StatusOr<std::unique_ptr<VectorSelector>> ParseVectorSelector() {
    auto vs = std::make_unique<VectorSelector>();
    int32_t start = Peek().pos;
    int32_t end = Peek().end();
    if (Peek().type != TokenType::kLeftBrace) vs->name = std::string(Consume().text);
    if (Peek().type == TokenType::kLeftBrace) {
      ESPY_ASSIGN_OR_RETURN(end, ParseLabelMatchers(&vs->matchers));
    }
    if (!vs->name.empty()) {
      ESPY_ASSIGN_OR_RETURN(auto m,
                            model::Matcher::Make(model::MatchType::kEqual,
                                                 std::string(model::kMetricNameLabel), vs->name));
      vs->matchers.push_back(std::move(m));
    }
    vs->pos = {start, end};
    return vs;
  }

  // {name op "value", ...}; returns the end of the closing brace. As in
  // Prometheus 3, a label name may be a quoted string ({"my-label"="x"}),
  // and a quoted string alone is the metric name ({"cpu usage%"}), so
  // that names PromQL cannot write bare can still be selected.
  absl::StatusOr<int32_t> ParseLabelMatchers(std::vector<model::Matcher>* out) {
    Consume();  // {
    constexpr std::string_view kCtx = "label matching";
    if (Peek().type == TokenType::kRightBrace) return Consume().end();
    while (true) {
      bool quoted = Peek().type == TokenType::kString;
      if (Peek().type != TokenType::kIdentifier && !quoted) {
        return Unexpected(Peek(), kCtx, "identifier or \"}\"");
      }
      Token name = Consume();
      std::string label(name.text);
      if (quoted) {
        ESPY_ASSIGN_OR_RETURN(label, Unquote(name));
      }
      std::optional<model::MatchType> type;
      switch (Peek().type) {
        case TokenType::kAssign:
          type = model::MatchType::kEqual;
          break;
        case TokenType::kNeq:
          type = model::MatchType::kNotEqual;
          break;
        case TokenType::kEqlRegex:
          type = model::MatchType::kRegexMatch;
          break;
        case TokenType::kNeqRegex:
          type = model::MatchType::kRegexNoMatch;
          break;
        default:
          if (!quoted) return Unexpected(Peek(), kCtx, "label matching operator");
          break;
      }
      std::string value;
      if (type) {
        Consume();
        if (Peek().type != TokenType::kString) return Unexpected(Peek(), kCtx, "string");
        ESPY_ASSIGN_OR_RETURN(value, Unquote(Consume()));
        if (quoted) ESPY_RETURN_IF_ERROR(CheckQuotedLabelName(name, label, "label name"));
      } else {
        // {"name"}: the metric name, however it is spelt.
        value = std::move(label);
        label = std::string(model::kMetricNameLabel);
        type = model::MatchType::kEqual;
      }
      auto m = model::Matcher::Make(*type, std::move(label), std::move(value));
      if (!m.ok()) return ErrorAt(name.pos, std::string(m.status().message()));
      out->push_back(*std::move(m));

      if (Peek().type == TokenType::kComma) {
        Consume();
        if (Peek().type == TokenType::kRightBrace) return Consume().end();
        continue;
      }
      if (Peek().type == TokenType::kRightBrace) return Consume().end();
      return Unexpected(Peek(), kCtx, "\",\" or \"}\"");
    }
  }

  // A quoted label name must be something a series can carry: not empty,
  // valid UTF-8 (Prometheus 3's rule for names under UTF-8 validation).
  absl::Status CheckQuotedLabelName(const Token& t, std::string_view name, std::string_view what) {
    if (name.empty() || !IsValidUtf8(name)) {
      return ErrorAt(t.pos, fmt::format("invalid {}: {}", what, QuoteString(name)));
    }
    return absl::OkStatus();
  }

  // (label, label, ...) after by, without, on, ignoring, group_left/right.
  // A label may be quoted, as in Prometheus 3: by ("my-label").
  absl::StatusOr<std::vector<std::string>> ParseGroupingLabels() {
    constexpr std::string_view kCtx = "grouping opts";
    if (Peek().type != TokenType::kLeftParen) return Unexpected(Peek(), kCtx, "\"(\"");
    Consume();
    std::vector<std::string> labels;
    if (Peek().type == TokenType::kRightParen) {
      last_closing_ = Consume().end();
      return labels;
    }
    while (true) {
      const Token& t = Peek();
      if (t.type == TokenType::kString) {
        Token str = Consume();
        ESPY_ASSIGN_OR_RETURN(std::string name, Unquote(str));
        ESPY_RETURN_IF_ERROR(CheckQuotedLabelName(str, name, "label name for grouping"));
        labels.push_back(std::move(name));
      } else {
        if (!IsMaybeLabel(t.type) || !model::IsLegacyLabelName(t.text))
          return Unexpected(t, kCtx, "label");
        labels.emplace_back(Consume().text);
      }
      if (Peek().type == TokenType::kComma) {
        Consume();
        if (Peek().type == TokenType::kRightParen) break;
        continue;
      }
      if (Peek().type == TokenType::kRightParen) break;
      return Unexpected(Peek(), kCtx, "\",\" or \")\"");
    }
    last_closing_ = Consume().end();
    return labels;
  }

  // ( [expr {, expr}] ); returns the arguments, sets last_closing_.
  absl::StatusOr<std::vector<ExprPtr>> ParseCallBody() {
    std::vector<ExprPtr> args;
    if (Peek().type != TokenType::kLeftParen) return Unexpected(Peek(), "", "");
    Consume();
    if (Peek().type == TokenType::kRightParen) {
      last_closing_ = Consume().end();
      return args;
    }
    while (true) {
      ESPY_ASSIGN_OR_RETURN(ExprPtr arg, ParseBinary(kPrecOr));
      args.push_back(std::move(arg));
      if (Peek().type == TokenType::kComma) {
        Token comma = Consume();
        if (Peek().type == TokenType::kRightParen) {
          return ErrorAt(comma.pos, "trailing commas not allowed in function call args");
        }
        continue;
      }
      if (Peek().type == TokenType::kRightParen) break;
      return Unexpected(Peek(), "", "");
    }
    last_closing_ = Consume().end();
    return args;
  }

  absl::StatusOr<ExprPtr> ParseCall() {
    Token name = Consume();
    auto call = std::make_unique<Call>();
    ESPY_ASSIGN_OR_RETURN(call->args, ParseCallBody());
    call->func = LookupFunction(name.text);
    if (call->func == nullptr) {
      return ErrorAt(name.pos,
                     fmt::format("unknown function with name {}", QuoteString(name.text)));
    }
    call->pos = {name.pos, last_closing_};
    return call;
  }

  // op [by|without (labels)] (args) [by|without (labels)]
  absl::StatusOr<ExprPtr> ParseAggregation() {
    Token op = Consume();
    auto agg = std::make_unique<AggregateExpr>();
    agg->op = op.aggregate;
    ++aggregation_depth_;
    bool have_modifier = false;
    auto parse_modifier = [&]() -> absl::Status {
      agg->without = Consume().type == TokenType::kWithout;
      have_modifier = true;
      ESPY_ASSIGN_OR_RETURN(agg->grouping, ParseGroupingLabels());
      return absl::OkStatus();
    };
    TokenType t = Peek().type;
    if (t == TokenType::kBy || t == TokenType::kWithout) ESPY_RETURN_IF_ERROR(parse_modifier());
    ESPY_ASSIGN_OR_RETURN(std::vector<ExprPtr> args, ParseCallBody());
    t = Peek().type;
    if (!have_modifier && (t == TokenType::kBy || t == TokenType::kWithout)) {
      ESPY_RETURN_IF_ERROR(parse_modifier());
    }
    --aggregation_depth_;
    agg->pos = {op.pos, last_closing_};

    if (args.empty()) return ErrorAt(op.pos, "no arguments for aggregate expression provided");
    size_t want = AggregateOpHasParam(agg->op) ? 2 : 1;
    if (args.size() != want) {
      return ErrorAt(op.pos, fmt::format("wrong number of arguments for aggregate expression "
                                         "provided, expected {}, got {}",
                                         want, args.size()));
    }
    if (want == 2) agg->param = std::move(args[0]);
    agg->expr = std::move(args[want - 1]);
    return agg;
  }

  // [range] or [range:step] after `expr`.
  absl::StatusOr<ExprPtr> ParseRangeOrSubquery(ExprPtr expr) {
    Token open = Consume();  // [
    if (Peek().type != TokenType::kDuration)
      return Unexpected(Peek(), "subquery selector", "duration");
    ESPY_ASSIGN_OR_RETURN(int64_t range, ParsePositiveDuration(Consume()));
    if (Peek().type == TokenType::kRightBracket) {
      Token close = Consume();
      auto* vs = expr->As<VectorSelector>();
      std::string_view problem;
      if (vs == nullptr) {
        problem = "ranges only allowed for vector selectors";
      } else if (vs->original_offset_ms != 0) {
        problem = "no offset modifiers allowed before range";
      } else if (vs->timestamp_ms || vs->at != AtPreprocessor::kNone) {
        problem = "no @ modifiers allowed before range";
      }
      if (!problem.empty()) return ErrorAt(open.pos, problem);
      auto ms = std::make_unique<MatrixSelector>();
      ms->pos = {vs->pos.start, close.end()};
      ms->range_ms = range;
      ms->selector.reset(static_cast<VectorSelector*>(expr.release()));
      return ms;
    }
    if (Peek().type != TokenType::kColon) {
      return Unexpected(Peek(), "subquery or range", "\":\" or \"]\"");
    }
    Consume();
    int64_t step = 0;
    if (Peek().type == TokenType::kDuration) {
      ESPY_ASSIGN_OR_RETURN(step, ParsePositiveDuration(Consume()));
      if (Peek().type != TokenType::kRightBracket) {
        return Unexpected(Peek(), "subquery selector", "\"]\"");
      }
    } else if (Peek().type != TokenType::kRightBracket) {
      return Unexpected(Peek(), "subquery selector", "duration or \"]\"");
    }
    Token close = Consume();
    auto sq = std::make_unique<SubqueryExpr>();
    sq->pos = {expr->pos.start, close.end()};
    sq->range_ms = range;
    sq->step_ms = step;
    sq->expr = std::move(expr);
    return sq;
  }

  // The modifiable parts of a selector or subquery, or an error naming what
  // the modifier must follow.
  struct Modifiable {
    int64_t* offset_ms;
    std::optional<int64_t>* timestamp_ms;
    AtPreprocessor* at;
    int32_t* end;
  };
  static std::optional<Modifiable> ModifiableOf(Expr* e) {
    if (auto* vs = e->As<VectorSelector>()) {
      return Modifiable{&vs->original_offset_ms, &vs->timestamp_ms, &vs->at, &vs->pos.end};
    }
    if (auto* ms = e->As<MatrixSelector>()) {
      VectorSelector* vs = ms->selector.get();
      return Modifiable{&vs->original_offset_ms, &vs->timestamp_ms, &vs->at, &ms->pos.end};
    }
    if (auto* sq = e->As<SubqueryExpr>()) {
      return Modifiable{&sq->original_offset_ms, &sq->timestamp_ms, &sq->at, &sq->pos.end};
    }
    return std::nullopt;
  }

  // offset [-]duration
  absl::Status ParseOffset(Expr* e) {
    Consume();
    constexpr std::string_view kCtx = "offset";
    bool negative = false;
    if (Peek().type == TokenType::kSub) {
      Consume();
      negative = true;
    }
    if (Peek().type != TokenType::kDuration) return Unexpected(Peek(), kCtx, "duration");
    Token dur = Consume();
    ESPY_ASSIGN_OR_RETURN(int64_t offset, ParsePositiveDuration(dur));
    std::optional<Modifiable> m = ModifiableOf(e);
    if (!m) {
      return ErrorAt(e->pos.start,
                     "offset modifier must be preceded by an instant vector selector or range "
                     "vector selector or a subquery");
    }
    if (*m->offset_ms != 0) return ErrorAt(e->pos.start, "offset may not be set multiple times");
    *m->offset_ms = negative ? -offset : offset;
    *m->end = dur.end();
    return absl::OkStatus();
  }

  // @ <number> | @ start() | @ end()
  absl::Status ParseAt(Expr* e) {
    Consume();
    constexpr std::string_view kCtx = "@";
    constexpr std::string_view kWant = "timestamp";
    std::optional<double> ts;
    AtPreprocessor pre = AtPreprocessor::kNone;
    int32_t end = 0;
    TokenType t = Peek().type;
    if (t == TokenType::kNumber ||
        ((t == TokenType::kAdd || t == TokenType::kSub) && Peek(1).type == TokenType::kNumber)) {
      bool negative = false;
      if (t != TokenType::kNumber) negative = Consume().type == TokenType::kSub;
      Token num = Consume();
      ESPY_ASSIGN_OR_RETURN(double v, ParseNumber(num));
      ts = negative ? -v : v;
      end = num.end();
    } else if (t == TokenType::kStart || t == TokenType::kEnd) {
      Consume();
      if (Peek().type != TokenType::kLeftParen) return Unexpected(Peek(), kCtx, kWant);
      Consume();
      if (Peek().type != TokenType::kRightParen) return Unexpected(Peek(), kCtx, kWant);
      end = Consume().end();
      pre = t == TokenType::kStart ? AtPreprocessor::kStart : AtPreprocessor::kEnd;
    } else {
      return Unexpected(Peek(), kCtx, kWant);
    }

    int64_t ts_ms = 0;
    if (ts) {
      // Whole milliseconds must fit in int64 (Prometheus checks seconds; we
      // also refuse what would overflow when scaled).
      constexpr double kLimit = 9.2233720368547758e18;
      double scaled = std::round(*ts * 1000);
      if (!std::isfinite(*ts) || *ts >= kLimit || *ts <= -kLimit || scaled >= kLimit ||
          scaled <= -kLimit) {
        return ErrorAt(e->pos.start, "timestamp out of bounds for @ modifier: " + GoFloatF(*ts));
      }
      ts_ms = static_cast<int64_t>(scaled);
    }
    std::optional<Modifiable> m = ModifiableOf(e);
    if (!m) {
      return ErrorAt(e->pos.start,
                     "@ modifier must be preceded by an instant vector selector or range vector "
                     "selector or a subquery");
    }
    if (*m->timestamp_ms || *m->at != AtPreprocessor::kNone) {
      return ErrorAt(e->pos.start, "@ <timestamp> may not be set multiple times");
    }
    if (ts) {
      *m->timestamp_ms = ts_ms;
    } else {
      *m->at = pre;
    }
    *m->end = end;
    return absl::OkStatus();
  }

  // --- Literals -------------------------------------------------------------

  absl::StatusOr<double> ParseNumber(const Token& t) {
    std::string_view s = t.text;
    auto equals_ci = [](std::string_view a, std::string_view b) {
      if (a.size() != b.size()) return false;
      for (size_t i = 0; i < a.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(a[i])) != b[i]) return false;
      }
      return true;
    };
    if (equals_ci(s, "inf")) return std::numeric_limits<double>::infinity();
    if (equals_ci(s, "nan")) return std::numeric_limits<double>::quiet_NaN();
    // As Go's strconv.ParseInt(s, 0, 64): 0x hex, leading-0 octal, decimal.
    {
      int base = 10;
      std::string_view digits = s;
      if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        digits = s.substr(2);
      } else if (s.size() > 1 && s[0] == '0') {
        base = 8;
        digits = s.substr(1);
      }
      int64_t v = 0;
      auto res = std::from_chars(digits.data(), digits.data() + digits.size(), v, base);
      if (res.ec == std::errc() && res.ptr == digits.data() + digits.size()) {
        return static_cast<double>(v);
      }
    }
    double v = 0;
    auto res = std::from_chars(s.data(), s.data() + s.size(), v);
    if (res.ptr == s.data() + s.size()) {
      if (res.ec == std::errc()) return v;
      if (res.ec == std::errc::result_out_of_range) {
        // Underflow reads as 0 or a denormal, as in Go; overflow is an error.
        double d = std::strtod(std::string(s).c_str(), nullptr);
        if (std::isfinite(d)) return d;
        return ErrorAt(t.pos, fmt::format("error parsing number: strconv.ParseFloat: parsing "
                                          "{}: value out of range",
                                          QuoteString(s)));
      }
    }
    return ErrorAt(t.pos, fmt::format("error parsing number: strconv.ParseFloat: parsing {}: "
                                      "invalid syntax",
                                      QuoteString(s)));
  }

  absl::StatusOr<std::string> Unquote(const Token& t) {
    auto s = UnquoteString(t.text);
    if (!s.ok()) {
      return ErrorAt(t.pos, fmt::format("error unquoting string {}: {}", QuoteString(t.text),
                                        std::string(s.status().message())));
    }
    return s;
  }

  // Durations in ranges, steps and offsets must be > 0.
  absl::StatusOr<int64_t> ParsePositiveDuration(const Token& t) {
    auto d = ParseDuration(t.text);
    if (!d.ok()) return ErrorAt(t.pos, std::string(d.status().message()));
    if (*d == 0) return ErrorAt(t.pos, "duration must be greater than 0");
    return *d;
  }

  // --- Type checking (Prometheus's checkAST) --------------------------------

  absl::Status ExpectType(Expr& e, ValueType want, std::string_view context) {
    ESPY_ASSIGN_OR_RETURN(ValueType got, Check(e));
    if (got != want) {
      return ErrorAt(e.pos.start,
                     fmt::format("expected type {} in {}, got {}", DocumentedTypeName(want),
                                 context, DocumentedTypeName(got)));
    }
    return absl::OkStatus();
  }

  // Where a binary expression's operator starts (for its errors).
  int32_t OperatorPos(const BinaryExpr& b) const {
    int32_t p = b.lhs->pos.end;
    while (p < static_cast<int32_t>(input_.size()) &&
           (input_[p] == ' ' || input_[p] == '\t' || input_[p] == '\n' || input_[p] == '\r')) {
      ++p;
    }
    return p;
  }

  absl::StatusOr<ValueType> Check(Expr& node) {
    ValueType type = node.Type();
    switch (node.kind) {
      case NodeKind::kNumberLiteral:
      case NodeKind::kStringLiteral:
        break;
      case NodeKind::kAggregate: {
        auto& a = *node.As<AggregateExpr>();
        ESPY_RETURN_IF_ERROR(ExpectType(*a.expr, ValueType::kVector, "aggregation expression"));
        if (a.op == AggregateOp::kTopk || a.op == AggregateOp::kBottomk ||
            a.op == AggregateOp::kQuantile) {
          ESPY_RETURN_IF_ERROR(ExpectType(*a.param, ValueType::kScalar, "aggregation parameter"));
        }
        if (a.op == AggregateOp::kCountValues) {
          ESPY_RETURN_IF_ERROR(ExpectType(*a.param, ValueType::kString, "aggregation parameter"));
        }
        break;
      }
      case NodeKind::kBinary: {
        auto& b = *node.As<BinaryExpr>();
        ESPY_ASSIGN_OR_RETURN(ValueType lt, Check(*b.lhs));
        ESPY_ASSIGN_OR_RETURN(ValueType rt, Check(*b.rhs));
        if (b.return_bool && !IsComparisonOp(b.op)) {
          return ErrorAt(OperatorPos(b), "bool modifier can only be used on comparison operators");
        }
        if (IsComparisonOp(b.op) && !b.return_bool && lt == ValueType::kScalar &&
            rt == ValueType::kScalar) {
          return ErrorAt(OperatorPos(b), "comparisons between scalars must use BOOL modifier");
        }
        if (b.matching) {
          VectorMatching& vm = *b.matching;
          if (IsSetOp(b.op) && vm.card == VectorMatchCardinality::kOneToOne) {
            vm.card = VectorMatchCardinality::kManyToMany;
          }
          if (vm.on) {
            for (const std::string& l1 : vm.matching_labels) {
              for (const std::string& l2 : vm.include) {
                if (l1 == l2) {
                  return ErrorAt(
                      OperatorPos(b),
                      fmt::format("label {} must not occur in ON and GROUP clause at once",
                                  QuoteString(l1)));
                }
              }
            }
          }
        }
        if (lt != ValueType::kScalar && lt != ValueType::kVector) {
          return ErrorAt(b.lhs->pos.start,
                         "binary expression must contain only scalar and instant vector types");
        }
        if (rt != ValueType::kScalar && rt != ValueType::kVector) {
          return ErrorAt(b.rhs->pos.start,
                         "binary expression must contain only scalar and instant vector types");
        }
        if ((lt != ValueType::kVector || rt != ValueType::kVector) && b.matching) {
          if (!b.matching->matching_labels.empty()) {
            return ErrorAt(b.pos.start, "vector matching only allowed between instant vectors");
          }
          b.matching.reset();
        } else if (IsSetOp(b.op) && b.matching) {
          if (b.matching->card == VectorMatchCardinality::kOneToMany ||
              b.matching->card == VectorMatchCardinality::kManyToOne) {
            return ErrorAt(b.pos.start, fmt::format("no grouping allowed for \"{}\" operation",
                                                    BinaryOpName(b.op)));
          }
          if (b.matching->card != VectorMatchCardinality::kManyToMany) {
            return ErrorAt(b.pos.start, "set operations must always be many-to-many");
          }
        }
        if ((lt == ValueType::kScalar || rt == ValueType::kScalar) && IsSetOp(b.op)) {
          return ErrorAt(b.pos.start,
                         fmt::format("set operator \"{}\" not allowed in binary scalar expression",
                                     BinaryOpName(b.op)));
        }
        break;
      }
      case NodeKind::kCall: {
        auto& c = *node.As<Call>();
        const Function& f = *c.func;
        int nargs = static_cast<int>(f.arg_types.size());
        int got = static_cast<int>(c.args.size());
        if (f.variadic == 0) {
          if (nargs != got) {
            return ErrorAt(c.pos.start, fmt::format("expected {} argument(s) in call to {}, got {}",
                                                    nargs, QuoteString(f.name), got));
          }
        } else {
          int min = nargs - 1;
          if (min > got) {
            return ErrorAt(c.pos.start,
                           fmt::format("expected at least {} argument(s) in call to {}, got {}",
                                       min, QuoteString(f.name), got));
          }
          if (int max = min + f.variadic; f.variadic > 0 && max < got) {
            return ErrorAt(c.pos.start,
                           fmt::format("expected at most {} argument(s) in call to {}, got {}", max,
                                       QuoteString(f.name), got));
          }
        }
        for (int i = 0; i < got; ++i) {
          int k = i;
          if (k >= nargs) {
            if (f.variadic == 0) break;
            k = nargs - 1;
          }
          ESPY_ASSIGN_OR_RETURN(ValueType t, Check(*c.args[i]));
          if (t != f.arg_types[k]) {
            return ErrorAt(c.args[i]->pos.start,
                           fmt::format("expected type {} in call to function {}, got {}",
                                       DocumentedTypeName(f.arg_types[k]), QuoteString(f.name),
                                       DocumentedTypeName(t)));
          }
        }
        break;
      }
      case NodeKind::kParen:
        ESPY_RETURN_IF_ERROR(Check(*node.As<ParenExpr>()->expr).status());
        break;
      case NodeKind::kUnary: {
        ESPY_ASSIGN_OR_RETURN(ValueType t, Check(*node.As<UnaryExpr>()->expr));
        if (t != ValueType::kScalar && t != ValueType::kVector) {
          return ErrorAt(node.pos.start,
                         fmt::format("unary expression only allowed on expressions of type "
                                     "scalar or instant vector, got \"{}\"",
                                     DocumentedTypeName(t)));
        }
        break;
      }
      case NodeKind::kSubquery: {
        ESPY_ASSIGN_OR_RETURN(ValueType t, Check(*node.As<SubqueryExpr>()->expr));
        if (t != ValueType::kVector) {
          return ErrorAt(node.pos.start,
                         fmt::format("subquery is only allowed on instant vector, got {} in {} "
                                     "instead",
                                     ValueTypeName(t), QuoteString(ToString(node))));
        }
        break;
      }
      case NodeKind::kMatrixSelector:
        ESPY_RETURN_IF_ERROR(Check(*node.As<MatrixSelector>()->selector).status());
        break;
      case NodeKind::kVectorSelector: {
        auto& vs = *node.As<VectorSelector>();
        if (!vs.name.empty()) {
          // The last matcher is the one for the name outside the braces.
          for (size_t i = 0; i + 1 < vs.matchers.size(); ++i) {
            if (vs.matchers[i].name() == model::kMetricNameLabel) {
              return ErrorAt(
                  vs.pos.start,
                  fmt::format("metric name must not be set twice: {} or {}", QuoteString(vs.name),
                              QuoteString(vs.matchers[i].value())));
            }
          }
          break;
        }
        bool not_empty = false;
        for (const model::Matcher& m : vs.matchers) not_empty |= !m.MatchesEmpty();
        if (!not_empty) {
          return ErrorAt(vs.pos.start,
                         "vector selector must contain at least one non-empty matcher");
        }
        break;
      }
    }
    return type;
  }

  std::string_view input_;
  Lexer lexer_;
  std::deque<Token> ahead_;
  int32_t last_closing_ = 0;   // end of the last ')' closing a call body or label list
  int aggregation_depth_ = 0;  // > 0 while inside an aggregation's modifiers and body
  int32_t nesting_ = 0;        // bound on the depth of the tree being built
};

}  // namespace

absl::StatusOr<ExprPtr> ParseExpr(std::string_view input) {
  Parser p(input);
  return p.ParseTop();
}

absl::StatusOr<std::vector<model::Matcher>> ParseMetricSelector(std::string_view input) {
  Parser p(input);
  ESPY_ASSIGN_OR_RETURN(auto vs, p.ParseSelectorOnly());
  return std::move(vs->matchers);
}

absl::StatusOr<int64_t> ParseDuration(std::string_view text) {
  if (text == "0") return 0;
  if (text.empty()) return absl::InvalidArgumentError("empty duration string");
  struct Unit {
    std::string_view name;
    int64_t ms;
  };
  static constexpr Unit kUnits[] = {
      {"y", 365LL * 24 * 3600 * 1000},
      {"w", 7LL * 24 * 3600 * 1000},
      {"d", 24LL * 3600 * 1000},
      {"h", 3600LL * 1000},
      {"m", 60LL * 1000},
      {"s", 1000},
      {"ms", 1},
  };
  constexpr int kNumUnits = sizeof(kUnits) / sizeof(kUnits[0]);
  int next_unit = 0;  // units must appear in kUnits order, each at most once
  int64_t total = 0;
  bool overflow = false;
  size_t i = 0;
  while (i < text.size()) {
    size_t digits_start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    if (i == digits_start || i == text.size()) return DurationError(text);
    std::string_view digits = text.substr(digits_start, i - digits_start);
    int unit = -1;
    for (int u = next_unit; u < kNumUnits; ++u) {
      if (text.substr(i).starts_with(kUnits[u].name)) {
        // "m" must not steal the "m" of "ms".
        if (kUnits[u].name == "m" && text.substr(i).starts_with("ms")) continue;
        unit = u;
        break;
      }
    }
    if (unit < 0) return DurationError(text);
    i += kUnits[unit].name.size();
    next_unit = unit + 1;
    int64_t n = 0;
    auto res = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (res.ec != std::errc() || n > std::numeric_limits<int64_t>::max() / kUnits[unit].ms) {
      overflow = true;
      continue;
    }
    int64_t add = n * kUnits[unit].ms;
    if (total > std::numeric_limits<int64_t>::max() - add) {
      overflow = true;
      continue;
    }
    total += add;
  }
  // Prometheus keeps durations as nanoseconds in an int64.
  constexpr int64_t kMaxMs = std::numeric_limits<int64_t>::max() / 1000000;
  if (overflow || total > kMaxMs) return absl::InvalidArgumentError("duration out of range");
  return total;
}

}  // namespace espy::query::promql
