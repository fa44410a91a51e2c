#include "query/promql/printer.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <vector>

#include "fmt/format.h"
#include "model/labels.h"
#include "model/names.h"
#include "query/promql/lexer.h"

namespace espy::query::promql {
namespace {

constexpr int64_t kMsPerSecond = 1000;
constexpr int64_t kMsPerMinute = 60 * kMsPerSecond;
constexpr int64_t kMsPerHour = 60 * kMsPerMinute;
constexpr int64_t kMsPerDay = 24 * kMsPerHour;
constexpr int64_t kMsPerWeek = 7 * kMsPerDay;
constexpr int64_t kMsPerYear = 365 * kMsPerDay;

// A label name bare, or quoted (Go's %q) when PromQL cannot write it bare,
// as Prometheus 3 prints it: "my-label".
std::string LabelName(const std::string& name) {
  return model::IsLegacyLabelName(name) ? name : QuoteString(name);
}

// Label names in by/without/on/ignoring/group_x lists.
std::string JoinLabels(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ", ";
    out += LabelName(names[i]);
  }
  return out;
}

std::string Join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += sep;
    out += parts[i];
  }
  return out;
}

// " @ 123.000" / " @ start()" / "".
std::string AtSuffix(const std::optional<int64_t>& timestamp_ms, AtPreprocessor at) {
  if (timestamp_ms) return fmt::format(" @ {:.3f}", static_cast<double>(*timestamp_ms) / 1000.0);
  if (at == AtPreprocessor::kStart) return " @ start()";
  if (at == AtPreprocessor::kEnd) return " @ end()";
  return "";
}

std::string OffsetSuffix(int64_t offset_ms) {
  if (offset_ms == 0) return "";
  return " offset " + FormatDuration(offset_ms);
}

std::string SelectorBody(const VectorSelector& vs) {
  std::vector<std::string> labels;
  for (const model::Matcher& m : vs.matchers) {
    // The name matcher added for `name{...}` prints as the name.
    if (m.name() == model::kMetricNameLabel && m.type() == model::MatchType::kEqual &&
        m.value() == vs.name) {
      continue;
    }
    static constexpr const char* kOps[] = {"=", "!=", "=~", "!~"};
    labels.push_back(LabelName(m.name()) + kOps[static_cast<int>(m.type())] +
                     QuoteString(m.value()));
  }
  if (labels.empty()) return vs.name;
  std::sort(labels.begin(), labels.end());
  return vs.name + "{" + Join(labels, ",") + "}";
}

void Print(const Expr& e, std::string* out) {
  switch (e.kind) {
    case NodeKind::kNumberLiteral:
      *out += FormatNumber(e.As<NumberLiteral>()->value);
      return;
    case NodeKind::kStringLiteral:
      *out += QuoteString(e.As<StringLiteral>()->value);
      return;
    case NodeKind::kVectorSelector: {
      const auto& vs = *e.As<VectorSelector>();
      *out += SelectorBody(vs);
      *out += AtSuffix(vs.timestamp_ms, vs.at);
      *out += OffsetSuffix(vs.original_offset_ms);
      return;
    }
    case NodeKind::kMatrixSelector: {
      const auto& ms = *e.As<MatrixSelector>();
      const VectorSelector& vs = *ms.selector;
      *out += SelectorBody(vs);
      *out += "[" + FormatDuration(ms.range_ms) + "]";
      *out += AtSuffix(vs.timestamp_ms, vs.at);
      *out += OffsetSuffix(vs.original_offset_ms);
      return;
    }
    case NodeKind::kSubquery: {
      const auto& sq = *e.As<SubqueryExpr>();
      Print(*sq.expr, out);
      *out += "[" + FormatDuration(sq.range_ms) + ":";
      if (sq.step_ms != 0) *out += FormatDuration(sq.step_ms);
      *out += "]";
      *out += AtSuffix(sq.timestamp_ms, sq.at);
      *out += OffsetSuffix(sq.original_offset_ms);
      return;
    }
    case NodeKind::kParen:
      *out += "(";
      Print(*e.As<ParenExpr>()->expr, out);
      *out += ")";
      return;
    case NodeKind::kUnary: {
      const auto& u = *e.As<UnaryExpr>();
      *out += u.op == UnaryOp::kMinus ? "-" : "+";
      Print(*u.expr, out);
      return;
    }
    case NodeKind::kBinary: {
      const auto& b = *e.As<BinaryExpr>();
      Print(*b.lhs, out);
      *out += " ";
      *out += BinaryOpName(b.op);
      if (b.return_bool) *out += " bool";
      if (b.matching && (!b.matching->matching_labels.empty() || b.matching->on)) {
        const VectorMatching& vm = *b.matching;
        *out += vm.on ? " on (" : " ignoring (";
        *out += JoinLabels(vm.matching_labels) + ")";
        if (vm.card == VectorMatchCardinality::kManyToOne ||
            vm.card == VectorMatchCardinality::kOneToMany) {
          *out +=
              vm.card == VectorMatchCardinality::kManyToOne ? " group_left (" : " group_right (";
          *out += JoinLabels(vm.include) + ")";
        }
      }
      *out += " ";
      Print(*b.rhs, out);
      return;
    }
    case NodeKind::kAggregate: {
      const auto& a = *e.As<AggregateExpr>();
      *out += AggregateOpName(a.op);
      if (a.without) {
        *out += " without (" + JoinLabels(a.grouping) + ") ";
      } else if (!a.grouping.empty()) {
        *out += " by (" + JoinLabels(a.grouping) + ") ";
      }
      *out += "(";
      if (a.param) {
        Print(*a.param, out);
        *out += ", ";
      }
      Print(*a.expr, out);
      *out += ")";
      return;
    }
    case NodeKind::kCall: {
      const auto& c = *e.As<Call>();
      *out += c.func->name;
      *out += "(";
      for (size_t i = 0; i < c.args.size(); ++i) {
        if (i > 0) *out += ", ";
        Print(*c.args[i], out);
      }
      *out += ")";
      return;
    }
  }
}

}  // namespace

std::string ToString(const Expr& expr) {
  std::string out;
  Print(expr, &out);
  return out;
}

std::string FormatDuration(int64_t ms) {
  if (ms == 0) return "0s";
  if (ms < 0) return "-" + FormatDuration(-ms);
  std::string out;
  auto unit = [&](std::string_view name, int64_t mult, bool exact) {
    if (exact && ms % mult != 0) return;
    if (int64_t v = ms / mult; v > 0) {
      out += fmt::format("{}{}", v, name);
      ms -= v * mult;
    }
  };
  // Years and weeks only when exact: 90d reads better than 12w6d.
  unit("y", kMsPerYear, true);
  unit("w", kMsPerWeek, true);
  unit("d", kMsPerDay, false);
  unit("h", kMsPerHour, false);
  unit("m", kMsPerMinute, false);
  unit("s", kMsPerSecond, false);
  unit("ms", 1, false);
  return out;
}

std::string FormatNumber(double v) {
  std::string out;
  AppendNumber(v, &out);
  return out;
}

namespace {

// The common case fast: a value with at most 6 decimals (counters, gauges
// with a few decimals). If m / 10^k == v for the smallest such k, "m with k
// decimals" is the shortest string that reads back as v (the division
// rounds once, as parsing does), so it is what the general path prints; and
// below 1e15 when scaled, m is the one integer that close to v * 10^k, so
// scaling once by the largest 10^k (k <= 6) that stays below 1e15 and
// dropping trailing zeros finds it. False when the value is not such a
// number.
bool AppendShortDecimal(double v, std::string* out) {
  static constexpr double kPow10[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6};
  if (!(std::fabs(v) < 1e15) || v == 0) return false;
  const double av = std::fabs(v);
  int k = 6;
  while (k > 0 && av * kPow10[k] >= 1e15) --k;
  // Round to nearest by adding and removing 2^52 (exact below 2^52): much
  // cheaper than std::nearbyint, which saves and restores the FP state.
  constexpr double kTwo52 = 4503599627370496.0;
  const double m = (av * kPow10[k] + kTwo52) - kTwo52;
  if (m / kPow10[k] != av) return false;
  uint64_t im = static_cast<uint64_t>(m);
  if (v < 0) out->push_back('-');
  int decimals = k;
  while (decimals > 0 && im % 10 == 0) {
    im /= 10;
    --decimals;
  }
  char buf[24];
  char* end = std::to_chars(buf, buf + sizeof(buf), im).ptr;
  const int n = static_cast<int>(end - buf);
  if (decimals == 0) {
    out->append(buf, end);
  } else if (n > decimals) {
    out->append(buf, n - decimals);
    out->push_back('.');
    out->append(buf + n - decimals, decimals);
  } else {
    out->append("0.");
    out->append(static_cast<size_t>(decimals - n), '0');
    out->append(buf, n);
  }
  return true;
}

}  // namespace

void AppendNumber(double v, std::string* out) {
  if (AppendShortDecimal(v, out)) return;
  if (std::isnan(v)) {
    out->append("NaN");
    return;
  }
  if (std::isinf(v)) {
    out->append(v > 0 ? "+Inf" : "-Inf");
    return;
  }
  // Shortest round-trip digits first (d.ddde±x), then laid out without an
  // exponent, padding with zeros as Go does (1e75 prints as 1 and 75 zeros,
  // not as the double's exact decimal expansion). No allocation: this runs
  // once per value of every query result.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  std::string_view sci(buf, res.ptr - buf);
  if (sci.front() == '-') {
    out->push_back('-');
    sci.remove_prefix(1);
  }
  const size_t e = sci.find('e');
  char digits[32];
  size_t n = 0;
  for (char c : sci.substr(0, e)) {
    if (c != '.') digits[n++] = c;
  }
  int exp = 0;
  std::string_view exp_text = sci.substr(e + 1);
  if (exp_text.front() == '+') exp_text.remove_prefix(1);
  std::from_chars(exp_text.data(), exp_text.data() + exp_text.size(), exp);
  const int point = exp + 1;  // digits before the decimal point
  const std::string_view d(digits, n);
  if (point <= 0) {
    out->append("0.");
    out->append(static_cast<size_t>(-point), '0');
    out->append(d);
  } else if (point >= static_cast<int>(n)) {
    out->append(d);
    out->append(static_cast<size_t>(point) - n, '0');
  } else {
    out->append(d.substr(0, point));
    out->push_back('.');
    out->append(d.substr(point));
  }
}

}  // namespace espy::query::promql
