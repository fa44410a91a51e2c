// The evaluator: Prometheus 2.42's engine.go evaluation model. Every node is
// evaluated over all steps of the query at once and yields a Matrix (scalars
// are a one-series matrix with a point at every step). Operators and
// functions without range arguments run step by step over the vectors of
// their arguments (RangeEval); range-vector functions run series by series.
#include "query/engine/engine.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "fmt/format.h"
#include "model/names.h"
#include "query/engine/functions.h"
#include "query/promql/parser.h"
#include "query/promql/printer.h"

namespace espy::query::engine {

using internal::EvalError;
using internal::ThrowExec;
using model::Labels;
using promql::Expr;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// State shared by an evaluator and the sub-evaluators of its subqueries.
struct QueryContext {
  const Queryable* queryable;
  const EngineOptions* options;
  int64_t query_start;  // what @ start() / @ end() mean
  int64_t query_end;
  std::chrono::steady_clock::time_point deadline;
  int64_t samples = 0;  // raw samples loaded so far
  uint32_t ticks = 0;
};

// A series' raw samples for a selector.
struct RawSeries {
  Labels metric;
  std::vector<model::Sample> samples;
};

class Evaluator {
 public:
  Evaluator(QueryContext* ctx, int64_t start, int64_t end, int64_t interval)
      : ctx_(ctx), start_(start), end_(end), interval_(interval) {}

  Matrix Eval(const Expr& e);

 private:
  size_t NumSteps() const { return static_cast<size_t>((end_ - start_) / interval_) + 1; }
  void CheckDeadline() {
    if ((++ctx_->ticks & 0xff) == 0 && std::chrono::steady_clock::now() > ctx_->deadline) {
      throw EvalError{absl::DeadlineExceededError("query timed out in expression evaluation")};
    }
  }
  void AddSamples(size_t n) {
    ctx_->samples += static_cast<int64_t>(n);
    if (ctx_->samples > ctx_->options->max_samples) {
      throw EvalError{absl::ResourceExhaustedError(
          "query processing would load too many samples into memory in query execution")};
    }
  }
  // The time a selector with this @/offset reads at, for step time ts.
  int64_t RefTime(int64_t ts, const std::optional<int64_t>& at, promql::AtPreprocessor pre,
                  int64_t offset) const {
    int64_t base = ts;
    if (at) {
      base = *at;
    } else if (pre == promql::AtPreprocessor::kStart) {
      base = ctx_->query_start;
    } else if (pre == promql::AtPreprocessor::kEnd) {
      base = ctx_->query_end;
    }
    return base - offset;
  }
  int64_t RefTime(int64_t ts, const promql::VectorSelector& vs) const {
    return RefTime(ts, vs.timestamp_ms, vs.at, vs.original_offset_ms);
  }
  int64_t RefTime(int64_t ts, const promql::SubqueryExpr& sq) const {
    return RefTime(ts, sq.timestamp_ms, sq.at, sq.original_offset_ms);
  }

  SelectHints Hints(int64_t mint, int64_t maxt, int64_t range_ms, std::string_view func,
                    int64_t resolution) const;
  // The bucket width a Select with these arguments reads (0: raw samples).
  int64_t Resolution(int64_t mint, int64_t maxt, int64_t range_ms, std::string_view func) const {
    return ctx_->queryable->Resolution(Hints(mint, maxt, range_ms, func, -1));
  }
  // Hands each selected series with samples to `each`, one at a time (the
  // samples' buffer is reused), so that a query over many series never
  // holds their raw samples and what it makes of them at once.
  void Select(const promql::VectorSelector& vs, int64_t mint, int64_t maxt, int64_t range_ms,
              std::string_view func, int64_t resolution,
              absl::FunctionRef<void(RawSeries& series)> each);
  Matrix EvalVectorSelector(const promql::VectorSelector& vs, bool timestamps);
  // The raw points of a range selector or subquery covering every step's
  // window, with the window's reference time function.
  struct RangeInput {
    Matrix series;
    int64_t range_ms = 0;
    std::function<int64_t(int64_t)> ref;
  };
  // `resolution` as for Select; ignored for subqueries.
  RangeInput LoadRange(const Expr& e, std::string_view func, int64_t resolution = -1);
  // As LoadRange, but hands each series to `each` instead of keeping them
  // all (a range selector's as it is read); the result has no series.
  RangeInput ForEachInRange(const Expr& e, std::string_view func, int64_t resolution,
                            absl::FunctionRef<void(const RangeInput& in, Series& s)> each);
  // The bucket width a range selector argument reads under `func` (0: raw
  // samples, or not a selector).
  int64_t RangeResolution(const Expr& e, std::string_view func) const;
  Matrix EvalRangeArgTopLevel(const Expr& e);
  Matrix EvalRangeCall(const promql::Call& call, size_t matrix_arg);

  using StepFn = std::function<Vector(std::vector<Vector>& args, int64_t ts)>;
  // Evaluates `exprs` (null or string ones give empty vectors), then calls
  // fn at each step with the vectors at that step and collects the output.
  Matrix RangeEval(const std::vector<const Expr*>& exprs, const StepFn& fn);

  Matrix EvalBinary(const promql::BinaryExpr& b);
  Matrix EvalAggregate(const promql::AggregateExpr& a);
  std::optional<Matrix> AggregateSeriesWise(const promql::AggregateExpr& a,
                                            const std::vector<std::string>& grouping);
  Matrix EvalCall(const promql::Call& c);

  QueryContext* ctx_;
  int64_t start_;
  int64_t end_;
  int64_t interval_;
};

SelectHints Evaluator::Hints(int64_t mint, int64_t maxt, int64_t range_ms, std::string_view func,
                             int64_t resolution) const {
  SelectHints hints;
  hints.mint = mint;
  hints.maxt = maxt;
  hints.step_ms = start_ == end_ ? 0 : interval_;
  hints.range_ms = range_ms;
  hints.func = std::string(func);
  hints.resolution = resolution;
  return hints;
}

void Evaluator::Select(const promql::VectorSelector& vs, int64_t mint, int64_t maxt,
                       int64_t range_ms, std::string_view func, int64_t resolution,
                       absl::FunctionRef<void(RawSeries& series)> each) {
  const SelectHints hints = Hints(mint, maxt, range_ms, func, resolution);
  absl::StatusOr<std::unique_ptr<SeriesSet>> set = ctx_->queryable->Select(vs.matchers, hints);
  if (!set.ok()) throw EvalError{set.status()};
  RawSeries s;
  while ((*set)->Next()) {
    CheckDeadline();
    s.metric = (*set)->labels();
    s.samples.clear();
    size_t budget =
        static_cast<size_t>(std::max<int64_t>(0, ctx_->options->max_samples - ctx_->samples) + 1);
    absl::StatusOr<size_t> n = (*set)->ReadSamples(budget, &s.samples);
    if (!n.ok()) throw EvalError{n.status()};
    AddSamples(*n);
    if (!s.samples.empty()) each(s);
  }
}

Matrix Evaluator::EvalVectorSelector(const promql::VectorSelector& vs, bool timestamps) {
  int64_t lookback = ctx_->options->lookback_delta_ms;
  const std::string_view func = timestamps ? "timestamp" : "";
  // Downsampled buckets are a resolution apart: look back that much further.
  const int64_t res = Resolution(RefTime(start_, vs) - lookback, RefTime(end_, vs), 0, func);
  lookback += res;
  Matrix out;
  Select(vs, RefTime(start_, vs) - lookback, RefTime(end_, vs), 0, func, res, [&](RawSeries& r) {
    Series s{timestamps ? internal::DropMetricName(r.metric) : std::move(r.metric), {}};
    size_t i = 0;  // first sample after the reference time
    const auto& smp = r.samples;
    for (int64_t ts = start_; ts <= end_; ts += interval_) {
      CheckDeadline();
      int64_t ref = RefTime(ts, vs);
      while (i < smp.size() && smp[i].ts <= ref) ++i;
      if (i == 0) continue;
      const model::Sample& last = smp[i - 1];
      if (last.ts < ref - lookback || IsStaleNaN(last.value)) continue;
      s.points.push_back(Point{ts, timestamps ? static_cast<double>(last.ts) / 1000 : last.value});
    }
    if (!s.points.empty()) out.push_back(std::move(s));
  });
  return out;
}

int64_t Evaluator::RangeResolution(const Expr& e, std::string_view func) const {
  const auto* ms = e.As<promql::MatrixSelector>();
  if (ms == nullptr) return 0;
  const promql::VectorSelector& vs = *ms->selector;
  return Resolution(RefTime(start_, vs) - ms->range_ms, RefTime(end_, vs), ms->range_ms, func);
}

Evaluator::RangeInput Evaluator::LoadRange(const Expr& e, std::string_view func,
                                           int64_t resolution) {
  Matrix series;
  RangeInput in = ForEachInRange(
      e, func, resolution, [&](const RangeInput&, Series& s) { series.push_back(std::move(s)); });
  in.series = std::move(series);
  return in;
}

Evaluator::RangeInput Evaluator::ForEachInRange(
    const Expr& e, std::string_view func, int64_t resolution,
    absl::FunctionRef<void(const RangeInput& in, Series& s)> each) {
  RangeInput in;
  if (const auto* ms = e.As<promql::MatrixSelector>()) {
    const promql::VectorSelector& vs = *ms->selector;
    in.range_ms = ms->range_ms;
    in.ref = [this, &vs](int64_t ts) { return RefTime(ts, vs); };
    Select(vs, RefTime(start_, vs) - ms->range_ms, RefTime(end_, vs), ms->range_ms, func,
           resolution, [&](RawSeries& r) {
             Series s{std::move(r.metric), {}};
             s.points.reserve(r.samples.size());
             for (const model::Sample& x : r.samples) {
               if (!IsStaleNaN(x.value)) s.points.push_back(Point{x.ts, x.value});
             }
             each(in, s);
           });
    return in;
  }
  const auto* sq = e.As<promql::SubqueryExpr>();
  if (sq == nullptr) ThrowExec("expected a range vector");
  in.range_ms = sq->range_ms;
  in.ref = [this, sq](int64_t ts) { return RefTime(ts, *sq); };
  int64_t interval = sq->step_ms > 0 ? sq->step_ms : ctx_->options->default_subquery_step_ms;
  int64_t first = RefTime(start_, *sq) - sq->range_ms;
  int64_t start = interval * (first / interval);
  if (start < first) start += interval;
  Evaluator sub(ctx_, start, RefTime(end_, *sq), interval);
  if (start > RefTime(end_, *sq)) return in;
  Matrix series = sub.Eval(*sq->expr);
  for (Series& s : series) each(in, s);
  return in;
}

// A range vector as the query's result (instant queries only).
Matrix Evaluator::EvalRangeArgTopLevel(const Expr& e) {
  if (start_ != end_) {
    ThrowExec(
        "invalid expression type \"range vector\" for range query, must be Scalar or "
        "instant Vector");
  }
  RangeInput in = LoadRange(e, "");
  int64_t ref = in.ref(start_);
  Matrix out;
  for (Series& s : in.series) {
    std::erase_if(s.points, [&](const Point& p) { return p.t < ref - in.range_ms || p.t > ref; });
    if (!s.points.empty()) out.push_back(std::move(s));
  }
  return out;
}

Matrix Evaluator::RangeEval(const std::vector<const Expr*>& exprs, const StepFn& fn) {
  std::vector<Matrix> mats(exprs.size());
  for (size_t i = 0; i < exprs.size(); ++i) {
    if (exprs[i] != nullptr && exprs[i]->Type() != promql::ValueType::kString) {
      mats[i] = Eval(*exprs[i]);
    }
  }
  std::vector<std::vector<size_t>> cursors(exprs.size());
  for (size_t i = 0; i < mats.size(); ++i) cursors[i].assign(mats[i].size(), 0);
  std::vector<Vector> args(exprs.size());
  Matrix out;
  absl::flat_hash_map<Labels, size_t> index;
  const bool instant = start_ == end_;
  for (int64_t ts = start_; ts <= end_; ts += interval_) {
    CheckDeadline();
    for (size_t i = 0; i < mats.size(); ++i) {
      args[i].clear();
      for (size_t j = 0; j < mats[i].size(); ++j) {
        const std::vector<Point>& pts = mats[i][j].points;
        size_t& c = cursors[i][j];
        while (c < pts.size() && pts[c].t < ts) ++c;
        if (c < pts.size() && pts[c].t == ts) {
          args[i].push_back(Sample{mats[i][j].metric, ts, pts[c].v});
        }
      }
    }
    Vector result = fn(args, ts);
    if (internal::ContainsSameLabelset(result)) {
      ThrowExec("vector cannot contain metrics with the same labelset");
    }
    if (instant) {
      for (Sample& s : result) out.push_back(Series{std::move(s.metric), {Point{ts, s.v}}});
      return out;
    }
    for (Sample& s : result) {
      auto [it, inserted] = index.try_emplace(s.metric, out.size());
      if (inserted) out.push_back(Series{std::move(s.metric), {}});
      out[it->second].points.push_back(Point{ts, s.v});
    }
  }
  AddSamples(0);
  return out;
}

Matrix Evaluator::Eval(const Expr& e) {
  CheckDeadline();
  switch (e.kind) {
    case promql::NodeKind::kNumberLiteral: {
      double v = e.As<promql::NumberLiteral>()->value;
      Series s;
      s.points.reserve(NumSteps());
      for (int64_t ts = start_; ts <= end_; ts += interval_) s.points.push_back(Point{ts, v});
      return Matrix{std::move(s)};
    }
    case promql::NodeKind::kStringLiteral:
      ThrowExec("a string is not allowed here");
    case promql::NodeKind::kParen:
      return Eval(*e.As<promql::ParenExpr>()->expr);
    case promql::NodeKind::kUnary: {
      const auto* u = e.As<promql::UnaryExpr>();
      Matrix m = Eval(*u->expr);
      if (u->op == promql::UnaryOp::kMinus) {
        for (Series& s : m) {
          s.metric = internal::DropMetricName(s.metric);
          for (Point& p : s.points) p.v = -p.v;
        }
        if (internal::ContainsSameLabelset(m)) {
          ThrowExec("vector cannot contain metrics with the same labelset");
        }
      }
      return m;
    }
    case promql::NodeKind::kVectorSelector:
      return EvalVectorSelector(*e.As<promql::VectorSelector>(), false);
    case promql::NodeKind::kMatrixSelector:
    case promql::NodeKind::kSubquery:
      return EvalRangeArgTopLevel(e);
    case promql::NodeKind::kBinary:
      return EvalBinary(*e.As<promql::BinaryExpr>());
    case promql::NodeKind::kAggregate:
      return EvalAggregate(*e.As<promql::AggregateExpr>());
    case promql::NodeKind::kCall:
      return EvalCall(*e.As<promql::Call>());
  }
  ThrowExec("unknown expression");
}

// ---- binary operators ----

// The metric name, or one dropped but kept until the end of the query.
bool IsName(std::string_view label) {
  return label == model::kMetricNameLabel || label == internal::kDroppedNameLabel;
}

// A series' labels as an error message shows them: a dropped name is gone.
Labels Shown(const Labels& l) {
  return internal::DropLabels(l, {std::string(internal::kDroppedNameLabel)});
}

// The key two series match on: the on(...) labels, or all but the
// ignoring(...) labels and the metric name.
std::string Signature(const Labels& l, const promql::VectorMatching& m) {
  std::string key;
  for (const model::Label& x : l.items()) {
    bool listed = std::find(m.matching_labels.begin(), m.matching_labels.end(), x.name) !=
                  m.matching_labels.end();
    bool keep = m.on ? listed : (!listed && !IsName(x.name));
    if (!keep) continue;
    key += x.name;
    key.push_back('\xff');
    key += x.value;
    key.push_back('\xff');
  }
  return key;
}

bool ShouldDropMetricName(promql::BinaryOp op) {
  switch (op) {
    case promql::BinaryOp::kAdd:
    case promql::BinaryOp::kSub:
    case promql::BinaryOp::kMul:
    case promql::BinaryOp::kDiv:
    case promql::BinaryOp::kPow:
    case promql::BinaryOp::kMod:
      return true;  // not atan2: Prometheus 2.42 keeps the name there
    default:
      return false;
  }
}

// Prometheus's vectorElemBinop: the value and whether to keep the element.
std::pair<double, bool> ElemBinop(promql::BinaryOp op, double l, double r) {
  switch (op) {
    case promql::BinaryOp::kAdd:
      return {l + r, true};
    case promql::BinaryOp::kSub:
      return {l - r, true};
    case promql::BinaryOp::kMul:
      return {l * r, true};
    case promql::BinaryOp::kDiv:
      return {l / r, true};
    case promql::BinaryOp::kPow:
      return {std::pow(l, r), true};
    case promql::BinaryOp::kMod:
      return {std::fmod(l, r), true};
    case promql::BinaryOp::kAtan2:
      return {std::atan2(l, r), true};
    case promql::BinaryOp::kEql:
      return {l, l == r};
    case promql::BinaryOp::kNeq:
      return {l, l != r};
    case promql::BinaryOp::kGtr:
      return {l, l > r};
    case promql::BinaryOp::kLss:
      return {l, l < r};
    case promql::BinaryOp::kGte:
      return {l, l >= r};
    case promql::BinaryOp::kLte:
      return {l, l <= r};
    default:
      ThrowExec(fmt::format("operator \"{}\" not allowed here", promql::BinaryOpName(op)));
  }
}

double ScalarBinop(promql::BinaryOp op, double l, double r) {
  auto [v, keep] = ElemBinop(op, l, r);
  if (promql::IsComparisonOp(op)) return keep ? 1 : 0;
  return v;
}

Labels ResultMetric(const Labels& lhs, const Labels& rhs, promql::BinaryOp op,
                    const promql::VectorMatching& m) {
  std::vector<model::Label> out;
  for (const model::Label& x : lhs.items()) {
    if (m.card == promql::VectorMatchCardinality::kOneToOne) {
      bool listed = std::find(m.matching_labels.begin(), m.matching_labels.end(), x.name) !=
                    m.matching_labels.end();
      if (m.on != listed) continue;
    }
    out.push_back(x);
  }
  Labels result(std::move(out));
  if (ShouldDropMetricName(op)) result = internal::DropMetricName(result);
  for (const std::string& name : m.include)
    result = internal::SetLabel(result, name, rhs.Get(name));
  return result;
}

Vector VectorBinop(promql::BinaryOp op, Vector& lhs, Vector& rhs, const promql::VectorMatching& m,
                   bool return_bool) {
  const bool one_to_many = m.card == promql::VectorMatchCardinality::kOneToMany;
  Vector* l = &lhs;
  Vector* r = &rhs;
  if (one_to_many) std::swap(l, r);
  absl::flat_hash_map<std::string, const Sample*> right;
  for (const Sample& rs : *r) {
    std::string sig = Signature(rs.metric, m);
    auto [it, inserted] = right.try_emplace(sig, &rs);
    if (!inserted) {
      std::vector<model::Label> matched;
      for (const model::Label& x : rs.metric.items()) {
        bool listed = std::find(m.matching_labels.begin(), m.matching_labels.end(), x.name) !=
                      m.matching_labels.end();
        if (m.on ? listed : (!listed && !IsName(x.name))) matched.push_back(x);
      }
      ThrowExec(fmt::format(
          "found duplicate series for the match group {} on the {} hand-side of the operation: "
          "[{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
          model::ToPromqlSelector(Labels(std::move(matched))), one_to_many ? "left" : "right",
          model::ToPromqlSelector(Shown(rs.metric)),
          model::ToPromqlSelector(Shown(it->second->metric))));
    }
  }
  absl::flat_hash_map<std::string, absl::flat_hash_set<Labels>> matched;
  Vector out;
  for (const Sample& ls : *l) {
    std::string sig = Signature(ls.metric, m);
    auto it = right.find(sig);
    if (it == right.end()) continue;
    const Sample& rs = *it->second;
    double vl = ls.v, vr = rs.v;
    if (one_to_many) std::swap(vl, vr);
    auto [value, keep] = ElemBinop(op, vl, vr);
    if (return_bool) {
      value = keep ? 1 : 0;
    } else if (!keep) {
      continue;
    }
    Labels metric = ResultMetric(ls.metric, rs.metric, op, m);
    if (return_bool) metric = internal::DropMetricName(metric);
    auto [mit, first] = matched.try_emplace(sig);
    if (m.card == promql::VectorMatchCardinality::kOneToOne) {
      if (!first) {
        ThrowExec(
            "multiple matches for labels: many-to-one matching must be explicit "
            "(group_left/group_right)");
      }
    } else if (!mit->second.insert(metric).second) {
      ThrowExec("multiple matches for labels: grouping labels must ensure unique matches");
    }
    out.push_back(Sample{std::move(metric), ls.t, value});
  }
  return out;
}

Vector VectorScalarBinop(promql::BinaryOp op, Vector& lhs, double rhs, bool swap,
                         bool return_bool) {
  Vector out;
  for (Sample& s : lhs) {
    double lv = s.v, rv = rhs;
    if (swap) std::swap(lv, rv);
    auto [value, keep] = ElemBinop(op, lv, rv);
    if (promql::IsComparisonOp(op) && swap) value = rv;
    if (return_bool) {
      value = keep ? 1 : 0;
      keep = true;
    }
    if (!keep) continue;
    s.v = value;
    if (ShouldDropMetricName(op) || return_bool) s.metric = internal::DropMetricName(s.metric);
    out.push_back(std::move(s));
  }
  return out;
}

Matrix Evaluator::EvalBinary(const promql::BinaryExpr& b) {
  promql::ValueType lt = b.lhs->Type(), rt = b.rhs->Type();
  const promql::BinaryOp op = b.op;
  if (lt == promql::ValueType::kScalar && rt == promql::ValueType::kScalar) {
    return RangeEval({b.lhs.get(), b.rhs.get()}, [op](std::vector<Vector>& v, int64_t ts) {
      return Vector{Sample{Labels(), ts, ScalarBinop(op, v[0][0].v, v[1][0].v)}};
    });
  }
  if (lt == promql::ValueType::kVector && rt == promql::ValueType::kVector) {
    promql::VectorMatching m = b.matching.value_or(promql::VectorMatching{});
    if (op == promql::BinaryOp::kAnd || op == promql::BinaryOp::kOr ||
        op == promql::BinaryOp::kUnless) {
      return RangeEval({b.lhs.get(), b.rhs.get()}, [op, m](std::vector<Vector>& v, int64_t) {
        Vector out;
        absl::flat_hash_set<std::string> sigs;
        if (op == promql::BinaryOp::kOr) {
          for (Sample& s : v[0]) {
            sigs.insert(Signature(s.metric, m));
            out.push_back(std::move(s));
          }
          for (Sample& s : v[1]) {
            if (!sigs.contains(Signature(s.metric, m))) out.push_back(std::move(s));
          }
          return out;
        }
        for (const Sample& s : v[1]) sigs.insert(Signature(s.metric, m));
        for (Sample& s : v[0]) {
          if (sigs.contains(Signature(s.metric, m)) == (op == promql::BinaryOp::kAnd)) {
            out.push_back(std::move(s));
          }
        }
        return out;
      });
    }
    bool rb = b.return_bool;
    return RangeEval({b.lhs.get(), b.rhs.get()}, [op, m, rb](std::vector<Vector>& v, int64_t) {
      return VectorBinop(op, v[0], v[1], m, rb);
    });
  }
  bool rb = b.return_bool;
  if (lt == promql::ValueType::kVector) {
    return RangeEval({b.lhs.get(), b.rhs.get()}, [op, rb](std::vector<Vector>& v, int64_t) {
      return VectorScalarBinop(op, v[0], v[1][0].v, false, rb);
    });
  }
  return RangeEval({b.lhs.get(), b.rhs.get()}, [op, rb](std::vector<Vector>& v, int64_t) {
    return VectorScalarBinop(op, v[1], v[0][0].v, true, rb);
  });
}

// ---- aggregation ----

std::string GroupingKey(const Labels& l, const std::vector<std::string>& grouping, bool without) {
  std::string key;
  for (const model::Label& x : l.items()) {
    bool listed = std::find(grouping.begin(), grouping.end(), x.name) != grouping.end();
    if (without ? (listed || IsName(x.name)) : !listed) continue;
    key += x.name;
    key.push_back('\xff');
    key += x.value;
    key.push_back('\xff');
  }
  return key;
}

// topk/bottomk keep their candidates in a binary heap run exactly as Go's
// container/heap runs Prometheus 2.42's (same sift steps, same Less), so
// that among equal values and NaNs the same series are kept: another heap
// algorithm keeps another of the tied series, and in a range query a series
// then gains or loses a point at that step. `top`: topk's heap (smallest
// on top), else bottomk's (largest on top); NaN is "less" than anything, so
// it sits on top and is evicted first.
bool GoHeapLess(const Sample& a, const Sample& b, bool top) {
  if (std::isnan(a.v)) return true;
  return top ? a.v < b.v : a.v > b.v;
}

void GoHeapUp(std::vector<Sample>& h, size_t j, bool top) {
  while (j > 0) {
    size_t parent = (j - 1) / 2;
    if (!GoHeapLess(h[j], h[parent], top)) break;
    std::swap(h[parent], h[j]);
    j = parent;
  }
}

void GoHeapDown(std::vector<Sample>& h, size_t i, size_t n, bool top) {
  while (true) {
    size_t j = 2 * i + 1;
    if (j >= n) break;
    if (j + 1 < n && GoHeapLess(h[j + 1], h[j], top)) ++j;
    if (!GoHeapLess(h[j], h[i], top)) break;
    std::swap(h[i], h[j]);
    i = j;
  }
}

void GoHeapPush(std::vector<Sample>& h, const Sample& s, bool top) {
  h.push_back(s);
  GoHeapUp(h, h.size() - 1, top);
}

void GoHeapPop(std::vector<Sample>& h, bool top) {
  size_t n = h.size() - 1;
  std::swap(h[0], h[n]);
  GoHeapDown(h, 0, n, top);
  h.pop_back();
}

Vector Aggregate(promql::AggregateOp op, std::vector<std::string> grouping, bool without,
                 double param, const std::string& value_label, Vector& vec) {
  struct Group {
    Labels labels;
    double value = 0;
    double mean = 0;
    int64_t count = 0;
    std::vector<Sample> heap;  // topk/bottomk/quantile
  };
  int64_t k = 0;
  if (op == promql::AggregateOp::kTopk || op == promql::AggregateOp::kBottomk) {
    if (!(param >= -9.2233720368547758e18 && param <= 9.2233720368547758e18)) {
      ThrowExec(fmt::format("Scalar value {} overflows int64", promql::FormatNumber(param)));
    }
    // Go's int64(param) truncates toward zero (topk(2.9, x) keeps 2); 2^63
    // itself passes the check above and converts to MinInt64 on amd64, so
    // Prometheus returns nothing for it (and C++ may not convert it).
    if (param >= 9.2233720368547758e18) return {};
    k = static_cast<int64_t>(param);
    if (k < 1) return {};
  }
  if (op == promql::AggregateOp::kCountValues) {
    if (!internal::IsValidLabelName(value_label)) {
      ThrowExec(fmt::format("invalid label name \"{}\"", value_label));
    }
    if (!without) grouping.push_back(value_label);
  }
  // topk keeps the k largest (NaN counts as smallest); bottomk the k smallest.
  auto less = [](double a, double b) { return std::isnan(a) ? !std::isnan(b) : a < b; };
  auto greater = [](double a, double b) { return std::isnan(a) ? !std::isnan(b) : a > b; };

  absl::flat_hash_map<std::string, size_t> index;
  std::vector<Group> groups;
  for (Sample& s : vec) {
    if (op == promql::AggregateOp::kCountValues) {
      s.metric = internal::SetLabel(s.metric, value_label, promql::FormatNumber(s.v));
    }
    std::string key = GroupingKey(s.metric, grouping, without);
    auto [it, inserted] = index.try_emplace(std::move(key), groups.size());
    if (inserted) {
      Group g;
      if (without) {
        std::vector<std::string> drop = grouping;
        drop.push_back(std::string(model::kMetricNameLabel));
        drop.push_back(std::string(internal::kDroppedNameLabel));
        g.labels = internal::DropLabels(s.metric, drop);
      } else if (!grouping.empty()) {
        g.labels = internal::KeepLabels(s.metric, grouping);
      }
      g.value = s.v;
      g.mean = s.v;
      g.count = 1;
      switch (op) {
        case promql::AggregateOp::kStddev:
        case promql::AggregateOp::kStdvar:
          g.value = 0;
          break;
        case promql::AggregateOp::kTopk:
        case promql::AggregateOp::kBottomk:
        case promql::AggregateOp::kQuantile:
          g.heap.push_back(s);
          break;
        case promql::AggregateOp::kGroup:
          g.value = 1;
          break;
        default:
          break;
      }
      groups.push_back(std::move(g));
      continue;
    }
    Group& g = groups[it->second];
    switch (op) {
      case promql::AggregateOp::kSum:
        g.value += s.v;
        break;
      case promql::AggregateOp::kAvg:
        g.count++;
        if (std::isinf(g.mean)) {
          if (std::isinf(s.v) && (g.mean > 0) == (s.v > 0)) break;
          if (!std::isinf(s.v) && !std::isnan(s.v)) break;
        }
        g.mean += s.v / static_cast<double>(g.count) - g.mean / static_cast<double>(g.count);
        break;
      case promql::AggregateOp::kGroup:
        break;
      case promql::AggregateOp::kMax:
        if (g.value < s.v || std::isnan(g.value)) g.value = s.v;
        break;
      case promql::AggregateOp::kMin:
        if (g.value > s.v || std::isnan(g.value)) g.value = s.v;
        break;
      case promql::AggregateOp::kCount:
      case promql::AggregateOp::kCountValues:
        g.count++;
        break;
      case promql::AggregateOp::kStddev:
      case promql::AggregateOp::kStdvar: {
        g.count++;
        double delta = s.v - g.mean;
        g.mean += delta / static_cast<double>(g.count);
        g.value += delta * (s.v - g.mean);
        break;
      }
      case promql::AggregateOp::kTopk:
      case promql::AggregateOp::kBottomk: {
        // Prometheus 2.42: a sample enters when the heap has room, when it
        // beats the heap's top, or when the top is NaN (even for a NaN: the
        // later NaN series replaces the earlier one).
        const bool top = op == promql::AggregateOp::kTopk;
        const double head = g.heap[0].v;
        if (static_cast<int64_t>(g.heap.size()) < k || (top ? head < s.v : head > s.v) ||
            std::isnan(head)) {
          if (static_cast<int64_t>(g.heap.size()) == k) GoHeapPop(g.heap, top);
          GoHeapPush(g.heap, s, top);
        }
        break;
      }
      case promql::AggregateOp::kQuantile:
        g.heap.push_back(s);
        break;
    }
  }
  Vector out;
  for (Group& g : groups) {
    double v = g.value;
    switch (op) {
      case promql::AggregateOp::kAvg:
        v = g.mean;
        break;
      case promql::AggregateOp::kCount:
      case promql::AggregateOp::kCountValues:
        v = static_cast<double>(g.count);
        break;
      case promql::AggregateOp::kStdvar:
        v = g.value / static_cast<double>(g.count);
        break;
      case promql::AggregateOp::kStddev:
        v = std::sqrt(g.value / static_cast<double>(g.count));
        break;
      case promql::AggregateOp::kTopk:
      case promql::AggregateOp::kBottomk: {
        // Prometheus sorts the heap with sort.Sort(sort.Reverse(heap)); Go
        // sorts up to 12 elements by insertion, which this repeats so that
        // ties (NaNs included) come out in the same order. Longer heaps are
        // sorted stably: the order of ties there is not matched.
        const bool top = op == promql::AggregateOp::kTopk;
        std::vector<Sample>& h = g.heap;
        if (h.size() <= 12) {
          for (size_t i = 1; i < h.size(); ++i) {
            for (size_t j = i; j > 0 && GoHeapLess(h[j - 1], h[j], top); --j) {
              std::swap(h[j], h[j - 1]);
            }
          }
        } else {
          std::stable_sort(h.begin(), h.end(), [&](const Sample& a, const Sample& b) {
            return top ? less(b.v, a.v) : greater(b.v, a.v);
          });
        }
        for (Sample& s : h) out.push_back(std::move(s));
        continue;
      }
      case promql::AggregateOp::kQuantile: {
        std::vector<double> values;
        for (const Sample& s : g.heap) values.push_back(s.v);
        v = internal::Quantile(param, std::move(values));
        break;
      }
      default:
        break;
    }
    out.push_back(Sample{std::move(g.labels), 0, v});
  }
  return out;
}

// Aggregations without a parameter, evaluated series by series: each input
// series finds its group once (not once per step), and every step's value
// is folded in exactly as Aggregate() folds a step's vector, in the same
// order, so results are identical. Output series come in the order
// RangeEval would produce them.
std::optional<Matrix> Evaluator::AggregateSeriesWise(const promql::AggregateExpr& a,
                                                     const std::vector<std::string>& grouping) {
  using Op = promql::AggregateOp;
  switch (a.op) {
    case Op::kSum:
    case Op::kAvg:
    case Op::kMin:
    case Op::kMax:
    case Op::kCount:
    case Op::kGroup:
    case Op::kStddev:
    case Op::kStdvar:
      break;
    default:
      return std::nullopt;
  }
  Matrix in = Eval(*a.expr);
  const size_t steps = start_ == end_ ? 1 : NumSteps();
  absl::flat_hash_map<std::string, size_t> index;
  std::vector<size_t> group_of(in.size());
  std::vector<Labels> labels;
  for (size_t j = 0; j < in.size(); ++j) {
    auto [it, inserted] =
        index.try_emplace(GroupingKey(in[j].metric, grouping, a.without), labels.size());
    if (inserted) {
      if (a.without) {
        std::vector<std::string> drop = grouping;
        drop.push_back(std::string(model::kMetricNameLabel));
        drop.push_back(std::string(internal::kDroppedNameLabel));
        labels.push_back(internal::DropLabels(in[j].metric, drop));
      } else {
        labels.push_back(grouping.empty() ? Labels()
                                          : internal::KeepLabels(in[j].metric, grouping));
      }
    }
    group_of[j] = it->second;
  }
  // Bounded like the output it replaces: one cell per group and step.
  if (labels.size() * steps > (size_t{1} << 24)) return std::nullopt;
  struct Cell {
    double value = 0;
    double mean = 0;
    int64_t count = 0;  // 0: the group has no sample at this step
  };
  std::vector<Cell> cells(labels.size() * steps);
  // Where RangeEval would first create each group: (step, input series).
  std::vector<std::pair<size_t, size_t>> first(labels.size(), {SIZE_MAX, SIZE_MAX});
  for (size_t j = 0; j < in.size(); ++j) {
    CheckDeadline();
    const size_t g = group_of[j];
    for (const Point& p : in[j].points) {
      if (p.t < start_ || p.t > end_) continue;
      size_t step = 0;
      if (start_ != end_) {
        if ((p.t - start_) % interval_ != 0) continue;
        step = static_cast<size_t>((p.t - start_) / interval_);
      }
      Cell& c = cells[g * steps + step];
      const double v = p.v;
      if (c.count == 0) {
        c.count = 1;
        c.value = a.op == Op::kStddev || a.op == Op::kStdvar ? 0 : a.op == Op::kGroup ? 1 : v;
        c.mean = v;
        first[g] = std::min(first[g], std::make_pair(step, j));
        continue;
      }
      switch (a.op) {
        case Op::kSum:
          c.value += v;
          break;
        case Op::kAvg:
          c.count++;
          if (std::isinf(c.mean)) {
            if (std::isinf(v) && (c.mean > 0) == (v > 0)) break;
            if (!std::isinf(v) && !std::isnan(v)) break;
          }
          c.mean += v / static_cast<double>(c.count) - c.mean / static_cast<double>(c.count);
          break;
        case Op::kMax:
          if (c.value < v || std::isnan(c.value)) c.value = v;
          break;
        case Op::kMin:
          if (c.value > v || std::isnan(c.value)) c.value = v;
          break;
        case Op::kCount:
          c.count++;
          break;
        case Op::kStddev:
        case Op::kStdvar: {
          c.count++;
          double delta = v - c.mean;
          c.mean += delta / static_cast<double>(c.count);
          c.value += delta * (v - c.mean);
          break;
        }
        default:
          break;
      }
    }
  }
  std::vector<size_t> order;
  for (size_t g = 0; g < labels.size(); ++g) {
    if (first[g].first != SIZE_MAX) order.push_back(g);
  }
  std::sort(order.begin(), order.end(), [&](size_t x, size_t y) { return first[x] < first[y]; });
  Matrix out;
  out.reserve(order.size());
  for (size_t g : order) {
    Series series{std::move(labels[g]), {}};
    for (size_t step = 0; step < steps; ++step) {
      const Cell& c = cells[g * steps + step];
      if (c.count == 0) continue;
      double v = c.value;
      switch (a.op) {
        case Op::kAvg:
          v = c.mean;
          break;
        case Op::kCount:
          v = static_cast<double>(c.count);
          break;
        case Op::kStdvar:
          v = c.value / static_cast<double>(c.count);
          break;
        case Op::kStddev:
          v = std::sqrt(c.value / static_cast<double>(c.count));
          break;
        default:
          break;
      }
      series.points.push_back(Point{start_ + static_cast<int64_t>(step) * interval_, v});
    }
    out.push_back(std::move(series));
  }
  AddSamples(0);
  return out;
}

Matrix Evaluator::EvalAggregate(const promql::AggregateExpr& a) {
  std::vector<std::string> grouping = a.grouping;
  std::sort(grouping.begin(), grouping.end());
  if (auto m = AggregateSeriesWise(a, grouping)) return std::move(*m);
  const Expr* param = a.param ? internal::Unparen(a.param.get()) : nullptr;
  std::string value_label;
  if (param != nullptr) {
    if (const auto* s = param->As<promql::StringLiteral>()) value_label = s->value;
  }
  promql::AggregateOp op = a.op;
  bool without = a.without;
  return RangeEval({a.param.get(), a.expr.get()},
                   [&, op, without](std::vector<Vector>& v, int64_t ts) {
                     double p = v[0].empty() ? 0 : v[0][0].v;
                     Vector out = Aggregate(op, grouping, without, p, value_label, v[1]);
                     for (Sample& s : out) s.t = ts;
                     return out;
                   });
}

// ---- function calls ----

Matrix Evaluator::EvalCall(const promql::Call& c) {
  std::string_view name = c.func->name;
  if (name == "timestamp") {
    if (const auto* vs = internal::Unparen(c.args[0].get())->As<promql::VectorSelector>()) {
      return EvalVectorSelector(*vs, true);
    }
  }
  for (size_t i = 0; i < c.args.size(); ++i) {
    const Expr* a = internal::Unparen(c.args[i].get());
    if (a->kind == promql::NodeKind::kMatrixSelector || a->kind == promql::NodeKind::kSubquery) {
      return EvalRangeCall(c, i);
    }
  }
  std::vector<const Expr*> exprs;
  for (const auto& a : c.args) exprs.push_back(a.get());
  internal::InstantFnState state;
  return RangeEval(exprs, [&](std::vector<Vector>& v, int64_t ts) {
    return internal::EvalInstantFunction(c, v, ts, &state);
  });
}

// The mean of the raw samples behind downsampled buckets: the sum of the
// buckets' sums over the sum of their counts (found by timestamp).
std::optional<double> WeightedAverage(std::span<const Point> sums,
                                      const std::vector<Point>& counts) {
  double sum = 0, n = 0;
  auto it = std::lower_bound(counts.begin(), counts.end(), sums.front().t,
                             [](const Point& p, int64_t t) { return p.t < t; });
  for (const Point& p : sums) {
    while (it != counts.end() && it->t < p.t) ++it;
    if (it == counts.end() || it->t != p.t || it->v == 0) continue;
    sum += p.v;
    n += it->v;
  }
  if (n == 0) return std::nullopt;
  return sum / n;
}

Matrix Evaluator::EvalRangeCall(const promql::Call& c, size_t mi) {
  std::string_view name = c.func->name;
  std::vector<Matrix> others(c.args.size());
  for (size_t i = 0; i < c.args.size(); ++i) {
    if (i != mi && c.args[i]->Type() != promql::ValueType::kString) others[i] = Eval(*c.args[i]);
  }
  const Expr& arg = *internal::Unparen(c.args[mi].get());
  // Over downsampled buckets, a count is the sum of the buckets' counts and
  // an average their sums' sum over it.
  std::string_view fn = name;
  int64_t load_resolution = -1;  // the queryable's choice
  const int64_t res =
      name == "count_over_time" || name == "avg_over_time" ? RangeResolution(arg, name) : 0;
  if (res > 0 && name == "count_over_time") {
    load_resolution = res;
    fn = "sum_over_time";
  }
  Matrix out;
  internal::RangeFnArgs args;
  args.scalars.assign(c.args.size(), 0);
  const bool keep_name = name == "last_over_time";
  // One output series from one input series (and, for an average over
  // downsampled buckets, the buckets' counts).
  auto apply = [&](const RangeInput& in, Series& s, const std::vector<Point>* weights) {
    Series o{keep_name ? s.metric : internal::DropMetricName(s.metric), {}};
    const std::vector<Point>& pts = s.points;
    args.range_ms = in.range_ms;
    size_t lo = 0, hi = 0, step = 0;
    for (int64_t ts = start_; ts <= end_; ts += interval_, ++step) {
      CheckDeadline();
      int64_t ref = in.ref(ts);
      int64_t mint = ref - in.range_ms;
      while (hi < pts.size() && pts[hi].t <= ref) ++hi;
      while (lo < hi && pts[lo].t < mint) ++lo;
      if (lo >= hi) continue;
      for (size_t i = 0; i < others.size(); ++i) {
        if (!others[i].empty() && step < others[i][0].points.size()) {
          args.scalars[i] = others[i][0].points[step].v;
        }
      }
      args.ts = ts;
      args.range_start = mint;
      args.range_end = ref;
      std::optional<double> v;
      if (weights != nullptr) {
        v = WeightedAverage(std::span<const Point>(pts.data() + lo, hi - lo), *weights);
      } else if (res > 0 && name == "avg_over_time") {
        v = std::nullopt;  // sums without counts: nothing to average
      } else {
        v = internal::EvalRangeFunction(fn, std::span<const Point>(pts.data() + lo, hi - lo), args);
      }
      if (v) o.points.push_back(Point{ts, *v});
    }
    if (!o.points.empty()) out.push_back(std::move(o));
  };
  if (res > 0 && name == "avg_over_time") {
    RangeInput in = LoadRange(arg, "sum_over_time", res);
    RangeInput counts = LoadRange(arg, "count_over_time", res);
    absl::flat_hash_map<Labels, const std::vector<Point>*> count_of;
    for (const Series& s : counts.series) count_of.emplace(s.metric, &s.points);
    for (Series& s : in.series) {
      auto it = count_of.find(s.metric);
      apply(in, s, it == count_of.end() ? nullptr : it->second);
    }
  } else {
    // Series by series: the input's points go as soon as its output is made.
    ForEachInRange(arg, name, load_resolution,
                   [&](const RangeInput& in, Series& s) { apply(in, s, nullptr); });
  }
  if (name == "absent_over_time") {
    absl::flat_hash_set<int64_t> found;
    for (const Series& s : out) {
      for (const Point& p : s.points) found.insert(p.t);
    }
    Series absent{internal::LabelsForAbsent(c.args[0].get()), {}};
    for (int64_t ts = start_; ts <= end_; ts += interval_) {
      if (!found.contains(ts)) absent.points.push_back(Point{ts, 1});
    }
    if (absent.points.empty()) return {};
    return Matrix{std::move(absent)};
  }
  if (internal::ContainsSameLabelset(out)) {
    ThrowExec("vector cannot contain metrics with the same labelset");
  }
  return out;
}

}  // namespace

bool IsExecutionError(const absl::Status& s) {
  return s.code() == absl::StatusCode::kFailedPrecondition ||
         s.code() == absl::StatusCode::kResourceExhausted;
}

absl::StatusOr<QueryResult> Engine::InstantQuery(const Queryable& q, std::string_view query,
                                                 int64_t time_ms) const {
  absl::StatusOr<promql::ExprPtr> expr = promql::ParseExpr(query);
  if (!expr.ok()) return expr.status();
  return Exec(q, **expr, time_ms, time_ms, 0);
}

absl::StatusOr<QueryResult> Engine::RangeQuery(const Queryable& q, std::string_view query,
                                               int64_t start_ms, int64_t end_ms,
                                               int64_t step_ms) const {
  absl::StatusOr<promql::ExprPtr> expr = promql::ParseExpr(query);
  if (!expr.ok()) return expr.status();
  return Exec(q, **expr, start_ms, end_ms, step_ms);
}

absl::StatusOr<QueryResult> Engine::Exec(const Queryable& q, const promql::Expr& expr,
                                         int64_t start_ms, int64_t end_ms, int64_t step_ms) const {
  const bool instant = start_ms == end_ms && step_ms == 0;
  promql::ValueType type = expr.Type();
  if (!instant) {
    if (step_ms <= 0) {
      return absl::InvalidArgumentError(
          "zero or negative query resolution step widths are not accepted. Try a positive "
          "integer");
    }
    if (end_ms < start_ms)
      return absl::InvalidArgumentError("end timestamp must not be before start time");
    if ((end_ms - start_ms) / step_ms > options_.max_points_per_series) {
      return absl::InvalidArgumentError(fmt::format(
          "exceeded maximum resolution of {} points per timeseries. Try decreasing the query "
          "resolution (?step=XX)",
          options_.max_points_per_series));
    }
    if (type != promql::ValueType::kScalar && type != promql::ValueType::kVector) {
      return absl::InvalidArgumentError(fmt::format(
          "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
          promql::DocumentedTypeName(type)));
    }
  }
  QueryResult result;
  result.type = type;
  result.time = start_ms;
  if (type == promql::ValueType::kString) {
    result.str = internal::Unparen(&expr)->As<promql::StringLiteral>()->value;
    return result;
  }
  QueryContext ctx{&q, &options_, start_ms, end_ms,
                   std::chrono::steady_clock::now() + options_.timeout};
  Evaluator ev(&ctx, start_ms, end_ms, instant ? 1 : step_ms);
  Matrix m;
  try {
    m = ev.Eval(expr);
    internal::FinishDroppedNames(&m);
  } catch (EvalError& e) {
    return std::move(e.status);
  }
  if (std::chrono::steady_clock::now() > ctx.deadline) {
    return absl::DeadlineExceededError("query timed out in expression evaluation");
  }
  if (!instant) {
    std::sort(m.begin(), m.end(),
              [](const Series& a, const Series& b) { return a.metric < b.metric; });
    result.type = promql::ValueType::kMatrix;
    result.matrix = std::move(m);
    return result;
  }
  switch (type) {
    case promql::ValueType::kScalar:
      result.scalar = m.empty() || m[0].points.empty() ? kNaN : m[0].points[0].v;
      break;
    case promql::ValueType::kVector:
      for (Series& s : m)
        result.vector.push_back(Sample{std::move(s.metric), start_ms, s.points[0].v});
      break;
    default:
      result.matrix = std::move(m);
      break;
  }
  return result;
}

}  // namespace espy::query::engine
