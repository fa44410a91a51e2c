// PromQL function bodies, following Prometheus 2.42's promql/functions.go
// and quantile.go line by line where numerics matter (extrapolated rates,
// linear regression, Holt-Winters, bucket quantiles).
#include "query/engine/functions.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "fmt/format.h"
#include "re2/re2.h"

namespace espy::query::engine::internal {

using model::Label;
using model::Labels;

void ThrowExec(std::string message) {
  throw EvalError{absl::FailedPreconditionError(std::move(message))};
}

Labels DropMetricName(const Labels& l) {
  const std::string_view name = l.Get(model::kMetricNameLabel);
  if (name.empty()) return l;
  std::vector<Label> out;
  out.reserve(l.size());
  for (const Label& x : l.items()) {
    if (x.name != model::kMetricNameLabel && x.name != kDroppedNameLabel) out.push_back(x);
  }
  out.push_back(Label{std::string(kDroppedNameLabel), std::string(name)});
  return Labels(std::move(out));
}

void FinishDroppedNames(Matrix* m) {
  bool dropped = false;
  for (Series& s : *m) {
    if (s.metric.Get(kDroppedNameLabel).empty()) continue;
    dropped = true;
    s.metric = DropLabels(s.metric, {std::string(kDroppedNameLabel)});
  }
  if (!dropped || !ContainsSameLabelset(*m)) return;
  // Series whose names were all that told them apart become one series if
  // they never share a time (a range query where one ends and the other
  // begins), as they would in Prometheus's per-step evaluation.
  absl::flat_hash_map<Labels, size_t> index;
  Matrix out;
  for (Series& s : *m) {
    auto [it, inserted] = index.try_emplace(s.metric, out.size());
    if (inserted) {
      out.push_back(std::move(s));
      continue;
    }
    std::vector<Point>& into = out[it->second].points;
    const size_t middle = into.size();
    into.insert(into.end(), s.points.begin(), s.points.end());
    std::inplace_merge(into.begin(), into.begin() + static_cast<ptrdiff_t>(middle), into.end(),
                       [](const Point& a, const Point& b) { return a.t < b.t; });
  }
  for (const Series& s : out) {
    auto same_time = [](const Point& a, const Point& b) { return a.t == b.t; };
    if (std::adjacent_find(s.points.begin(), s.points.end(), same_time) != s.points.end()) {
      ThrowExec("vector cannot contain metrics with the same labelset");
    }
  }
  *m = std::move(out);
}

Labels KeepLabels(const Labels& l, const std::vector<std::string>& names) {
  std::vector<Label> out;
  for (const Label& x : l.items()) {
    if (std::find(names.begin(), names.end(), x.name) != names.end()) out.push_back(x);
  }
  return Labels(std::move(out));
}

Labels DropLabels(const Labels& l, const std::vector<std::string>& names) {
  std::vector<Label> out;
  for (const Label& x : l.items()) {
    if (std::find(names.begin(), names.end(), x.name) == names.end()) out.push_back(x);
  }
  return Labels(std::move(out));
}

Labels SetLabel(const Labels& l, std::string_view name, std::string_view value) {
  std::vector<Label> out;
  out.reserve(l.size() + 1);
  for (const Label& x : l.items()) {
    if (x.name != name) out.push_back(x);
  }
  if (!value.empty()) out.push_back(Label{std::string(name), std::string(value)});
  return Labels(std::move(out));
}

bool IsValidLabelName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

namespace {

struct LabelsPtrHash {
  size_t operator()(const Labels* l) const { return absl::HashOf(*l); }
};
struct LabelsPtrEq {
  bool operator()(const Labels* a, const Labels* b) const { return *a == *b; }
};

}  // namespace

bool ContainsSameLabelset(const Vector& v) {
  if (v.size() < 2) return false;
  absl::flat_hash_set<const Labels*, LabelsPtrHash, LabelsPtrEq> seen;
  for (const Sample& s : v) {
    if (!seen.insert(&s.metric).second) return true;
  }
  return false;
}

bool ContainsSameLabelset(const Matrix& m) {
  if (m.size() < 2) return false;
  absl::flat_hash_set<const Labels*, LabelsPtrHash, LabelsPtrEq> seen;
  for (const Series& s : m) {
    if (!seen.insert(&s.metric).second) return true;
  }
  return false;
}

double GoMax(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<double>::quiet_NaN();
  return std::max(a, b);
}
double GoMin(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<double>::quiet_NaN();
  return std::min(a, b);
}

double Quantile(double q, std::vector<double> values) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  if (q < 0) return -std::numeric_limits<double>::infinity();
  if (q > 1) return std::numeric_limits<double>::infinity();
  std::sort(values.begin(), values.end(), [](double a, double b) {
    if (std::isnan(a)) return !std::isnan(b);
    return a < b;
  });
  double n = static_cast<double>(values.size());
  double rank = q * (n - 1);
  double lower = std::max(0.0, std::floor(rank));
  double upper = std::min(n - 1, lower + 1);
  double weight = rank - std::floor(rank);
  return values[static_cast<size_t>(lower)] * (1 - weight) +
         values[static_cast<size_t>(upper)] * weight;
}

const promql::Expr* Unparen(const promql::Expr* e) {
  while (const auto* p = e->As<promql::ParenExpr>()) e = p->expr.get();
  return e;
}

Labels LabelsForAbsent(const promql::Expr* arg) {
  arg = Unparen(arg);
  const promql::VectorSelector* vs = arg->As<promql::VectorSelector>();
  if (const auto* ms = arg->As<promql::MatrixSelector>()) vs = ms->selector.get();
  if (vs == nullptr) return Labels();
  Labels m;
  std::vector<std::string> empty;
  for (const model::Matcher& ma : vs->matchers) {
    if (ma.name() == model::kMetricNameLabel) continue;
    if (ma.type() == model::MatchType::kEqual && m.Get(ma.name()).empty() &&
        std::none_of(m.items().begin(), m.items().end(),
                     [&](const Label& l) { return l.name == ma.name(); })) {
      m = SetLabel(m, ma.name(), ma.value());
    } else {
      empty.push_back(ma.name());
    }
  }
  return DropLabels(m, empty);
}

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Prometheus's extrapolatedRate: delta (false, false), increase (true,
// false), rate (true, true).
std::optional<double> ExtrapolatedRate(std::span<const Point> p, const RangeFnArgs& a,
                                       bool is_counter, bool is_rate) {
  if (p.size() < 2) return std::nullopt;
  double result = p.back().v - p.front().v;
  if (is_counter) {
    double last = 0;
    for (const Point& s : p) {
      if (s.v < last) result += last;
      last = s.v;
    }
  }
  double duration_to_start = static_cast<double>(p.front().t - a.range_start) / 1000;
  double duration_to_end = static_cast<double>(a.range_end - p.back().t) / 1000;
  double sampled_interval = static_cast<double>(p.back().t - p.front().t) / 1000;
  double average_between = sampled_interval / static_cast<double>(p.size() - 1);
  if (is_counter && result > 0 && p.front().v >= 0) {
    double duration_to_zero = sampled_interval * (p.front().v / result);
    if (duration_to_zero < duration_to_start) duration_to_start = duration_to_zero;
  }
  double threshold = average_between * 1.1;
  double extrapolate_to = sampled_interval;
  extrapolate_to += duration_to_start < threshold ? duration_to_start : average_between / 2;
  extrapolate_to += duration_to_end < threshold ? duration_to_end : average_between / 2;
  double factor = extrapolate_to / sampled_interval;
  if (is_rate) factor /= static_cast<double>(a.range_ms) / 1000;
  return result * factor;
}

std::optional<double> InstantValue(std::span<const Point> p, bool is_rate) {
  if (p.size() < 2) return std::nullopt;
  const Point& last = p[p.size() - 1];
  const Point& prev = p[p.size() - 2];
  double result = (is_rate && last.v < prev.v) ? last.v : last.v - prev.v;
  int64_t interval = last.t - prev.t;
  if (interval == 0) return std::nullopt;
  if (is_rate) result /= static_cast<double>(interval) / 1000;
  return result;
}

void KahanInc(double inc, double& sum, double& c) {
  double t = sum + inc;
  if (std::abs(sum) >= std::abs(inc)) {
    c += (sum - t) + inc;
  } else {
    c += (inc - t) + sum;
  }
  sum = t;
}

// Least-squares slope and intercept of the points against time in seconds
// since `intercept_time`.
std::pair<double, double> LinearRegression(std::span<const Point> p, int64_t intercept_time) {
  double n = 0, sum_x = 0, c_x = 0, sum_y = 0, c_y = 0, sum_xy = 0, c_xy = 0, sum_x2 = 0, c_x2 = 0;
  double init_y = p[0].v;
  bool const_y = true;
  for (size_t i = 0; i < p.size(); ++i) {
    if (const_y && i > 0 && p[i].v != init_y) const_y = false;
    n += 1;
    double x = static_cast<double>(p[i].t - intercept_time) / 1e3;
    KahanInc(x, sum_x, c_x);
    KahanInc(p[i].v, sum_y, c_y);
    KahanInc(x * p[i].v, sum_xy, c_xy);
    KahanInc(x * x, sum_x2, c_x2);
  }
  if (const_y) {
    if (std::isinf(init_y)) return {kNaN, kNaN};
    return {0, init_y};
  }
  sum_x += c_x;
  sum_y += c_y;
  sum_xy += c_xy;
  sum_x2 += c_x2;
  double cov_xy = sum_xy - sum_x * sum_y / n;
  double var_x = sum_x2 - sum_x * sum_x / n;
  double slope = cov_xy / var_x;
  double intercept = sum_y / n - slope * sum_x / n;
  return {slope, intercept};
}

double HoltWinters(std::span<const Point> p, double sf, double tf) {
  auto trend = [](size_t i, double tf, double s0, double s1, double b) {
    if (i == 0) return b;
    return tf * (s1 - s0) + (1 - tf) * b;
  };
  double s0 = 0, s1 = p[0].v, b = p[1].v - p[0].v;
  for (size_t i = 1; i < p.size(); ++i) {
    double x = sf * p[i].v;
    b = trend(i - 1, tf, s0, s1, b);
    double y = (1 - sf) * (s1 + b);
    s0 = s1;
    s1 = x + y;
  }
  return s1;
}

// Go's fmt %f: six decimals.
std::string GoF(double v) { return fmt::format("{:.6f}", v); }

}  // namespace

std::optional<double> EvalRangeFunction(std::string_view name, std::span<const Point> p,
                                        const RangeFnArgs& a) {
  if (p.empty()) return std::nullopt;
  if (name == "rate") return ExtrapolatedRate(p, a, true, true);
  if (name == "increase") return ExtrapolatedRate(p, a, true, false);
  if (name == "delta") return ExtrapolatedRate(p, a, false, false);
  if (name == "irate") return InstantValue(p, true);
  if (name == "idelta") return InstantValue(p, false);
  if (name == "avg_over_time") {
    double mean = 0, count = 0;
    for (const Point& x : p) {
      count++;
      if (std::isinf(mean)) {
        if (std::isinf(x.v) && (mean > 0) == (x.v > 0)) continue;
        if (!std::isinf(x.v) && !std::isnan(x.v)) continue;
      }
      mean += x.v / count - mean / count;
    }
    return mean;
  }
  if (name == "sum_over_time") {
    double sum = 0;
    for (const Point& x : p) sum += x.v;
    return sum;
  }
  if (name == "count_over_time") return static_cast<double>(p.size());
  if (name == "max_over_time") {
    double m = p[0].v;
    for (const Point& x : p) {
      if (x.v > m || std::isnan(m)) m = x.v;
    }
    return m;
  }
  if (name == "min_over_time") {
    double m = p[0].v;
    for (const Point& x : p) {
      if (x.v < m || std::isnan(m)) m = x.v;
    }
    return m;
  }
  if (name == "last_over_time") return p.back().v;
  if (name == "present_over_time" || name == "absent_over_time") return 1.0;
  if (name == "stddev_over_time" || name == "stdvar_over_time") {
    double count = 0, mean = 0, c_mean = 0, aux = 0, c_aux = 0;
    for (const Point& x : p) {
      count++;
      double delta = x.v - (mean + c_mean);
      KahanInc(delta / count, mean, c_mean);
      KahanInc(delta * (x.v - (mean + c_mean)), aux, c_aux);
    }
    double var = (aux + c_aux) / count;
    return name == "stddev_over_time" ? std::sqrt(var) : var;
  }
  if (name == "quantile_over_time") {
    std::vector<double> values;
    values.reserve(p.size());
    for (const Point& x : p) values.push_back(x.v);
    return Quantile(a.scalars[0], std::move(values));
  }
  if (name == "changes") {
    int changes = 0;
    double prev = p[0].v;
    for (size_t i = 1; i < p.size(); ++i) {
      double cur = p[i].v;
      if (cur != prev && !(std::isnan(cur) && std::isnan(prev))) changes++;
      prev = cur;
    }
    return changes;
  }
  if (name == "resets") {
    int resets = 0;
    double prev = p[0].v;
    for (size_t i = 1; i < p.size(); ++i) {
      if (p[i].v < prev) resets++;
      prev = p[i].v;
    }
    return resets;
  }
  if (name == "deriv") {
    if (p.size() < 2) return std::nullopt;
    return LinearRegression(p, p[0].t).first;
  }
  if (name == "predict_linear") {
    if (p.size() < 2) return std::nullopt;
    auto [slope, intercept] = LinearRegression(p, a.ts);
    return slope * a.scalars[1] + intercept;
  }
  if (name == "holt_winters") {
    double sf = a.scalars[1], tf = a.scalars[2];
    if (sf <= 0 || sf >= 1) {
      ThrowExec(fmt::format("invalid smoothing factor. Expected: 0 < sf < 1, got: {}", GoF(sf)));
    }
    if (tf <= 0 || tf >= 1) {
      ThrowExec(fmt::format("invalid trend factor. Expected: 0 < tf < 1, got: {}", GoF(tf)));
    }
    if (p.size() < 2) return std::nullopt;
    return HoltWinters(p, sf, tf);
  }
  ThrowExec(fmt::format("function \"{}\" does not take a range vector", name));
}

// ---- instant-vector functions ----

struct InstantFnState::Regex {
  std::unique_ptr<re2::RE2> re;
};
InstantFnState::~InstantFnState() = default;

namespace {

const std::string& StringArg(const promql::Call& call, size_t i) {
  const auto* s = Unparen(call.args[i].get())->As<promql::StringLiteral>();
  if (s == nullptr)
    ThrowExec(fmt::format("argument {} of {}() must be a string", i + 1, call.func->name));
  return s->value;
}

// Go's regexp.Expand: $1, ${1}, $name, ${name}, $$.
std::string ExpandTemplate(const re2::RE2& re, std::string_view tmpl,
                           const std::vector<re2::StringPiece>& groups) {
  std::string out;
  const auto& named = re.NamedCapturingGroups();
  auto is_name_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  while (!tmpl.empty()) {
    size_t d = tmpl.find('$');
    if (d == std::string_view::npos) break;
    out.append(tmpl.substr(0, d));
    tmpl.remove_prefix(d + 1);
    if (!tmpl.empty() && tmpl[0] == '$') {
      out.push_back('$');
      tmpl.remove_prefix(1);
      continue;
    }
    std::string_view str = tmpl;
    bool brace = false;
    if (!str.empty() && str[0] == '{') {
      brace = true;
      str.remove_prefix(1);
    }
    size_t i = 0;
    while (i < str.size() && is_name_char(str[i])) ++i;
    if (i == 0 || (brace && (i >= str.size() || str[i] != '}'))) {
      out.push_back('$');  // malformed: the $ is literal text
      continue;
    }
    std::string_view name = str.substr(0, i);
    size_t consumed = (brace ? 1 : 0) + i + (brace ? 1 : 0);
    tmpl.remove_prefix(consumed);
    int num = 0;
    for (char c : name) {
      if (c < '0' || c > '9' || num >= 100000000) {
        num = -1;
        break;
      }
      num = num * 10 + (c - '0');
    }
    if (name[0] == '0' && name.size() > 1) num = -1;
    if (num < 0) {
      auto it = named.find(std::string(name));
      if (it != named.end()) num = it->second;
    }
    if (num >= 0 && static_cast<size_t>(num) < groups.size() && groups[num].data() != nullptr) {
      out.append(groups[num].data(), groups[num].size());
    }
  }
  out.append(tmpl);
  return out;
}

Vector LabelReplace(const promql::Call& call, Vector& in, InstantFnState* state) {
  const std::string& dst = StringArg(call, 1);
  const std::string& repl = StringArg(call, 2);
  const std::string& src = StringArg(call, 3);
  const std::string& regex = StringArg(call, 4);
  if (state->regex == nullptr) {
    auto r = std::make_shared<InstantFnState::Regex>();
    re2::RE2::Options opts;
    opts.set_log_errors(false);
    r->re = std::make_unique<re2::RE2>("^(?:" + regex + ")$", opts);
    if (!r->re->ok()) {
      ThrowExec(fmt::format("invalid regular expression in label_replace(): {}", regex));
    }
    if (!IsValidLabelName(dst)) {
      ThrowExec(fmt::format("invalid destination label name in label_replace(): {}", dst));
    }
    state->regex = std::move(r);
  }
  const re2::RE2& re = *state->regex->re;
  std::vector<re2::StringPiece> groups(re.NumberOfCapturingGroups() + 1);
  Vector out;
  out.reserve(in.size());
  for (Sample& s : in) {
    std::string_view v = s.metric.Get(src);
    re2::StringPiece text(v.data(), v.size());
    if (re.Match(text, 0, text.size(), re2::RE2::UNANCHORED, groups.data(),
                 static_cast<int>(groups.size()))) {
      std::string res = ExpandTemplate(re, repl, groups);
      s.metric = SetLabel(s.metric, dst, res);
    }
    out.push_back(std::move(s));
  }
  return out;
}

Vector LabelJoin(const promql::Call& call, Vector& in) {
  const std::string& dst = StringArg(call, 1);
  const std::string& sep = StringArg(call, 2);
  std::vector<std::string> srcs;
  for (size_t i = 3; i < call.args.size(); ++i) {
    const std::string& src = StringArg(call, i);
    if (!IsValidLabelName(src)) {
      ThrowExec(fmt::format("invalid source label name in label_join(): {}", src));
    }
    srcs.push_back(src);
  }
  if (!IsValidLabelName(dst)) {
    ThrowExec(fmt::format("invalid destination label name in label_join(): {}", dst));
  }
  Vector out;
  out.reserve(in.size());
  for (Sample& s : in) {
    std::string joined;
    for (size_t i = 0; i < srcs.size(); ++i) {
      if (i > 0) joined += sep;
      joined += s.metric.Get(srcs[i]);
    }
    s.metric = SetLabel(s.metric, dst, joined);
    out.push_back(std::move(s));
  }
  return out;
}

struct Bucket {
  double upper;
  double count;
};

double BucketQuantile(double q, std::vector<Bucket> b) {
  if (std::isnan(q)) return kNaN;
  if (q < 0) return -std::numeric_limits<double>::infinity();
  if (q > 1) return std::numeric_limits<double>::infinity();
  std::sort(b.begin(), b.end(), [](const Bucket& x, const Bucket& y) { return x.upper < y.upper; });
  if (!(std::isinf(b.back().upper) && b.back().upper > 0)) return kNaN;
  // Coalesce buckets with the same bound.
  size_t n = 0;
  for (size_t i = 1; i < b.size(); ++i) {
    if (b[i].upper == b[n].upper) {
      b[n].count += b[i].count;
    } else {
      b[++n] = b[i];
    }
  }
  b.resize(n + 1);
  double max = -std::numeric_limits<double>::infinity();
  for (Bucket& x : b) {
    if (x.count > max) {
      max = x.count;
    } else if (x.count < max) {
      x.count = max;
    }
  }
  if (b.size() < 2) return kNaN;
  double observations = b.back().count;
  if (observations == 0) return kNaN;
  double rank = q * observations;
  size_t i = 0;
  while (i < b.size() - 1 && !(b[i].count >= rank)) ++i;
  if (i == b.size() - 1) return b[b.size() - 2].upper;
  if (i == 0 && b[0].upper <= 0) return b[0].upper;
  double start = 0, end = b[i].upper, count = b[i].count;
  if (i > 0) {
    start = b[i - 1].upper;
    count -= b[i - 1].count;
    rank -= b[i - 1].count;
  }
  return start + (end - start) * (rank / count);
}

Vector HistogramQuantile(double q, const Vector& in) {
  struct Group {
    Labels metric;
    std::vector<Bucket> buckets;
  };
  std::vector<Group> groups;
  absl::flat_hash_map<Labels, size_t> index;
  for (const Sample& s : in) {
    std::string le(s.metric.Get("le"));
    double upper;
    char* end = nullptr;
    if (le.empty()) continue;
    upper = std::strtod(le.c_str(), &end);
    if (end != le.c_str() + le.size()) continue;
    Labels key = DropLabels(s.metric, {"le"});
    auto [it, inserted] = index.try_emplace(key, groups.size());
    if (inserted) groups.push_back(Group{DropMetricName(key), {}});
    groups[it->second].buckets.push_back(Bucket{upper, s.v});
  }
  Vector out;
  for (Group& g : groups) {
    out.push_back(Sample{std::move(g.metric), 0, BucketQuantile(q, std::move(g.buckets))});
  }
  return out;
}

// time.Unix(int64(v), 0).UTC() as a civil time; nullopt when v is not finite.
std::optional<absl::CivilSecond> CivilOf(double v) {
  if (!std::isfinite(v) || std::abs(v) > 1e15) return std::nullopt;
  return absl::ToCivilSecond(absl::FromUnixSeconds(static_cast<int64_t>(v)), absl::UTCTimeZone());
}

double DateField(std::string_view name, const absl::CivilSecond& c) {
  if (name == "year") return static_cast<double>(c.year());
  if (name == "month") return c.month();
  if (name == "day_of_month") return c.day();
  if (name == "hour") return c.hour();
  if (name == "minute") return c.minute();
  if (name == "day_of_year") return absl::GetYearDay(absl::CivilDay(c));
  if (name == "day_of_week") {
    switch (absl::GetWeekday(absl::CivilDay(c))) {
      case absl::Weekday::sunday:
        return 0;
      case absl::Weekday::monday:
        return 1;
      case absl::Weekday::tuesday:
        return 2;
      case absl::Weekday::wednesday:
        return 3;
      case absl::Weekday::thursday:
        return 4;
      case absl::Weekday::friday:
        return 5;
      case absl::Weekday::saturday:
        return 6;
    }
  }
  // days_in_month
  absl::CivilMonth m(c);
  return static_cast<double>(absl::CivilDay(m + 1) - absl::CivilDay(m));
}

using MathFn = double (*)(double);

MathFn LookupMath(std::string_view name) {
  static const absl::flat_hash_map<std::string_view, MathFn>* const kFns =
      new absl::flat_hash_map<std::string_view, MathFn>{
          {"abs", [](double v) { return std::abs(v); }},
          {"ceil", [](double v) { return std::ceil(v); }},
          {"floor", [](double v) { return std::floor(v); }},
          {"exp", [](double v) { return std::exp(v); }},
          {"sqrt", [](double v) { return std::sqrt(v); }},
          {"ln", [](double v) { return std::log(v); }},
          {"log2", [](double v) { return std::log2(v); }},
          {"log10", [](double v) { return std::log10(v); }},
          {"sin", [](double v) { return std::sin(v); }},
          {"cos", [](double v) { return std::cos(v); }},
          {"tan", [](double v) { return std::tan(v); }},
          {"asin", [](double v) { return std::asin(v); }},
          {"acos", [](double v) { return std::acos(v); }},
          {"atan", [](double v) { return std::atan(v); }},
          {"sinh", [](double v) { return std::sinh(v); }},
          {"cosh", [](double v) { return std::cosh(v); }},
          {"tanh", [](double v) { return std::tanh(v); }},
          {"asinh", [](double v) { return std::asinh(v); }},
          {"acosh", [](double v) { return std::acosh(v); }},
          {"atanh", [](double v) { return std::atanh(v); }},
          {"deg", [](double v) { return v * 180 / std::numbers::pi; }},
          {"rad", [](double v) { return v * std::numbers::pi / 180; }},
          {"sgn",
           [](double v) {
             if (v < 0) return -1.0;
             if (v > 0) return 1.0;
             return v;
           }},
      };
  auto it = kFns->find(name);
  return it == kFns->end() ? nullptr : it->second;
}

Vector MapValues(Vector& in, auto f) {
  for (Sample& s : in) {
    s.metric = DropMetricName(s.metric);
    s.v = f(s.v);
  }
  return std::move(in);
}

void SortVector(Vector& v, bool desc) {
  std::stable_sort(v.begin(), v.end(), [desc](const Sample& a, const Sample& b) {
    if (std::isnan(a.v)) return false;  // NaN last
    if (std::isnan(b.v)) return true;
    return desc ? a.v > b.v : a.v < b.v;
  });
}

}  // namespace

Vector EvalInstantFunction(const promql::Call& call, std::vector<Vector>& args, int64_t ts,
                           InstantFnState* state) {
  std::string_view name = call.func->name;
  auto scalar = [&](size_t i) { return args[i].empty() ? kNaN : args[i][0].v; };
  if (MathFn f = LookupMath(name)) return MapValues(args[0], f);
  if (name == "time") return Vector{Sample{Labels(), ts, static_cast<double>(ts) / 1000}};
  if (name == "pi") return Vector{Sample{Labels(), ts, std::numbers::pi}};
  if (name == "vector") return Vector{Sample{Labels(), ts, scalar(0)}};
  if (name == "scalar") {
    return Vector{Sample{Labels(), ts, args[0].size() == 1 ? args[0][0].v : kNaN}};
  }
  if (name == "timestamp") {
    return MapValues(args[0], [&](double) { return static_cast<double>(ts) / 1000; });
  }
  if (name == "round") {
    double to_nearest = args.size() >= 2 ? scalar(1) : 1;
    double inv = 1.0 / to_nearest;
    return MapValues(args[0], [inv](double v) { return std::floor(v * inv + 0.5) / inv; });
  }
  if (name == "clamp") {
    double min = scalar(1), max = scalar(2);
    if (max < min) return {};
    return MapValues(args[0], [=](double v) { return GoMax(min, GoMin(max, v)); });
  }
  if (name == "clamp_max") {
    double max = scalar(1);
    return MapValues(args[0], [=](double v) { return GoMin(max, v); });
  }
  if (name == "clamp_min") {
    double min = scalar(1);
    return MapValues(args[0], [=](double v) { return GoMax(min, v); });
  }
  if (name == "absent") {
    if (!args[0].empty()) return {};
    return Vector{Sample{LabelsForAbsent(call.args[0].get()), ts, 1}};
  }
  if (name == "sort" || name == "sort_desc") {
    SortVector(args[0], name == "sort_desc");
    return std::move(args[0]);
  }
  if (name == "label_replace") return LabelReplace(call, args[0], state);
  if (name == "label_join") return LabelJoin(call, args[0]);
  if (name == "histogram_quantile") return HistogramQuantile(scalar(0), args[1]);
  if (name == "histogram_count" || name == "histogram_sum" || name == "histogram_fraction") {
    return {};  // only native histograms have these; Espy stores floats
  }
  if (name == "year" || name == "month" || name == "day_of_month" || name == "day_of_week" ||
      name == "day_of_year" || name == "hour" || name == "minute" || name == "days_in_month") {
    if (args.empty()) {
      return Vector{
          Sample{Labels(), ts, DateField(name, *CivilOf(static_cast<double>(ts / 1000)))}};
    }
    return MapValues(args[0], [&](double v) {
      std::optional<absl::CivilSecond> c = CivilOf(v);
      return c ? DateField(name, *c) : kNaN;
    });
  }
  ThrowExec(fmt::format("function \"{}\" is not supported", name));
}

}  // namespace espy::query::engine::internal
