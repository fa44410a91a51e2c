// PromQL abstract syntax tree (Prometheus 2.42's promql/parser/ast.go) and the
// function table (functions.go). Nodes are plain data owned through
// std::unique_ptr; the parser builds and type-checks them, the printer turns
// them back into canonical text, the engine walks them.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/matcher.h"

namespace espy::query::promql {

enum class ValueType { kNone, kScalar, kVector, kMatrix, kString };

// Prometheus's internal names: "none", "scalar", "vector", "matrix", "string".
std::string_view ValueTypeName(ValueType t);
// The names users see in errors: "scalar", "instant vector", "range vector", "string".
std::string_view DocumentedTypeName(ValueType t);

// Byte offsets into the query text, end exclusive.
struct PositionRange {
  int32_t start = 0;
  int32_t end = 0;
};

enum class BinaryOp {
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMod,
  kPow,
  kAtan2,
  kEql,  // ==
  kNeq,
  kGtr,
  kLss,
  kGte,
  kLte,
  kAnd,
  kOr,
  kUnless,
};
std::string_view BinaryOpName(BinaryOp op);  // "+", "==", "and", "atan2"...
bool IsComparisonOp(BinaryOp op);
bool IsSetOp(BinaryOp op);

enum class AggregateOp {
  kSum,
  kAvg,
  kCount,
  kMin,
  kMax,
  kGroup,
  kStddev,
  kStdvar,
  kTopk,
  kBottomk,
  kCountValues,
  kQuantile,
};
// The number of aggregators; they are numbered from 0 (the lexer walks them).
inline constexpr int kNumAggregateOps = static_cast<int>(AggregateOp::kQuantile) + 1;
std::string_view AggregateOpName(AggregateOp op);  // "sum", "count_values"...
// topk, bottomk, quantile and count_values take a parameter before the vector.
bool AggregateOpHasParam(AggregateOp op);

enum class UnaryOp { kPlus, kMinus };

// "@ start()" / "@ end()" on a selector or subquery.
enum class AtPreprocessor { kNone, kStart, kEnd };

// A PromQL function's signature, as Prometheus declares it. variadic == 0:
// exactly arg_types.size() arguments. variadic == n > 0: between
// arg_types.size()-1 and arg_types.size()-1+n arguments. variadic == -1: at
// least arg_types.size()-1, no upper limit. Arguments past arg_types take the
// last type.
struct Function {
  std::string_view name;
  std::vector<ValueType> arg_types;
  int variadic = 0;
  ValueType return_type = ValueType::kVector;
};

// The function of that name, or nullptr. Thread-safe (the table is static).
const Function* LookupFunction(std::string_view name);
// Every function, sorted by name.
const std::vector<Function>& AllFunctions();

enum class NodeKind {
  kNumberLiteral,
  kStringLiteral,
  kVectorSelector,
  kMatrixSelector,
  kSubquery,
  kParen,
  kUnary,
  kBinary,
  kAggregate,
  kCall,
};

// Base of every node. Thread-compatible: immutable once parsed, so concurrent
// readers are fine.
struct Expr {
  explicit Expr(NodeKind k) : kind(k) {}
  virtual ~Expr() = default;
  Expr(const Expr&) = delete;
  Expr& operator=(const Expr&) = delete;

  // The type the expression evaluates to.
  virtual ValueType Type() const = 0;

  // Downcasts; As<T>() returns nullptr when the node is not a T.
  template <typename T>
  const T* As() const {
    return kind == T::kKind ? static_cast<const T*>(this) : nullptr;
  }
  template <typename T>
  T* As() {
    return kind == T::kKind ? static_cast<T*>(this) : nullptr;
  }

  const NodeKind kind;
  PositionRange pos;
};

using ExprPtr = std::unique_ptr<Expr>;

struct NumberLiteral : Expr {
  static constexpr NodeKind kKind = NodeKind::kNumberLiteral;
  NumberLiteral() : Expr(kKind) {}
  ValueType Type() const override { return ValueType::kScalar; }

  double value = 0;
};

struct StringLiteral : Expr {
  static constexpr NodeKind kKind = NodeKind::kStringLiteral;
  StringLiteral() : Expr(kKind) {}
  ValueType Type() const override { return ValueType::kString; }

  std::string value;  // unquoted
};

// foo{a="b"} offset 5m @ 1600000000
struct VectorSelector : Expr {
  static constexpr NodeKind kKind = NodeKind::kVectorSelector;
  VectorSelector() : Expr(kKind) {}
  ValueType Type() const override { return ValueType::kVector; }

  std::string name;  // empty when the name is only given as {__name__="..."}
  // Every matcher, including __name__="<name>" (last) when `name` is set.
  std::vector<model::Matcher> matchers;
  int64_t original_offset_ms = 0;       // as written; negative for "offset -5m"
  std::optional<int64_t> timestamp_ms;  // @ <timestamp>, milliseconds
  AtPreprocessor at = AtPreprocessor::kNone;
};

// foo[5m]; offset and @ live on the inner selector.
struct MatrixSelector : Expr {
  static constexpr NodeKind kKind = NodeKind::kMatrixSelector;
  MatrixSelector() : Expr(kKind) {}
  ValueType Type() const override { return ValueType::kMatrix; }

  std::unique_ptr<VectorSelector> selector;
  int64_t range_ms = 0;
};

// <expr>[range:step] offset ... @ ...
struct SubqueryExpr : Expr {
  static constexpr NodeKind kKind = NodeKind::kSubquery;
  SubqueryExpr() : Expr(kKind) {}
  ValueType Type() const override { return ValueType::kMatrix; }

  ExprPtr expr;
  int64_t range_ms = 0;
  int64_t step_ms = 0;  // 0: the engine's default evaluation interval
  int64_t original_offset_ms = 0;
  std::optional<int64_t> timestamp_ms;
  AtPreprocessor at = AtPreprocessor::kNone;
};

struct ParenExpr : Expr {
  static constexpr NodeKind kKind = NodeKind::kParen;
  ParenExpr() : Expr(kKind) {}
  ValueType Type() const override { return expr->Type(); }

  ExprPtr expr;
};

// -<expr> / +<expr>. A signed number literal is folded into NumberLiteral.
struct UnaryExpr : Expr {
  static constexpr NodeKind kKind = NodeKind::kUnary;
  UnaryExpr() : Expr(kKind) {}
  ValueType Type() const override { return expr->Type(); }

  UnaryOp op = UnaryOp::kMinus;
  ExprPtr expr;
};

enum class VectorMatchCardinality { kOneToOne, kManyToOne, kOneToMany, kManyToMany };

// How the series of two instant vectors pair up in a binary operation.
struct VectorMatching {
  VectorMatchCardinality card = VectorMatchCardinality::kOneToOne;
  // on(...) labels when `on`, else ignoring(...) labels.
  std::vector<std::string> matching_labels;
  bool on = false;
  // group_left(...)/group_right(...) labels copied from the "one" side.
  std::vector<std::string> include;
};

struct BinaryExpr : Expr {
  static constexpr NodeKind kKind = NodeKind::kBinary;
  BinaryExpr() : Expr(kKind) {}
  ValueType Type() const override {
    return lhs->Type() == ValueType::kScalar && rhs->Type() == ValueType::kScalar
               ? ValueType::kScalar
               : ValueType::kVector;
  }

  BinaryOp op = BinaryOp::kAdd;
  ExprPtr lhs;
  ExprPtr rhs;
  bool return_bool = false;
  // Set only when both sides are instant vectors (as Prometheus, after type
  // checking); set operators always get kManyToMany.
  std::optional<VectorMatching> matching;
};

// sum by (job) (x), topk(5, x), count_values("v", x)
struct AggregateExpr : Expr {
  static constexpr NodeKind kKind = NodeKind::kAggregate;
  AggregateExpr() : Expr(kKind) {}
  ValueType Type() const override { return ValueType::kVector; }

  AggregateOp op = AggregateOp::kSum;
  ExprPtr expr;
  ExprPtr param;  // null unless AggregateOpHasParam(op)
  std::vector<std::string> grouping;
  bool without = false;
};

struct Call : Expr {
  static constexpr NodeKind kKind = NodeKind::kCall;
  Call() : Expr(kKind) {}
  ValueType Type() const override { return func->return_type; }

  const Function* func = nullptr;  // points into the static function table
  std::vector<ExprPtr> args;
};

}  // namespace espy::query::promql
