// The .test script runner: parse commands line by line, load into a
// MemoryQueryable, evaluate with the Engine, compare as Prometheus's
// test.go does (relative error 1e-6, NaN equals NaN).
#include "query/engine/script.h"

#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "base/fmt_absl.h"
#include "fmt/format.h"
#include "model/names.h"
#include "query/engine/memory_queryable.h"
#include "query/promql/parser.h"
#include "query/promql/printer.h"

namespace espy::query::engine {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::optional<double> ParseNumber(std::string_view s) {
  std::string t(s);
  std::string lower = absl::AsciiStrToLower(t);
  if (lower == "inf" || lower == "+inf") return std::numeric_limits<double>::infinity();
  if (lower == "-inf") return -std::numeric_limits<double>::infinity();
  if (lower == "nan") return std::numeric_limits<double>::quiet_NaN();
  if (t.empty()) return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(t.c_str(), &end);
  if (end != t.c_str() + t.size()) return std::nullopt;
  return v;
}

// One value of a series description; nullopt value for "_".
struct SeqValue {
  std::optional<double> value;
};

// Expands "0+10x3" -> 0 10 20 30, "1x2" -> 1 1 1, "_x2" -> _ _, "stale".
absl::StatusOr<std::vector<SeqValue>> ParseValues(std::string_view text) {
  std::vector<SeqValue> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    if (i >= text.size()) break;
    size_t j = i;
    while (j < text.size() && text[j] != ' ' && text[j] != '\t') ++j;
    std::string_view tok = text.substr(i, j - i);
    i = j;
    if (tok == "_") {
      out.push_back({});
      continue;
    }
    if (tok == "stale") {
      out.push_back({StaleNaN()});
      continue;
    }
    size_t x = tok.rfind('x');
    if (x != std::string_view::npos && x > 0 && x + 1 < tok.size() &&
        tok.substr(x + 1).find_first_not_of("0123456789") == std::string_view::npos) {
      int64_t n = std::strtoll(std::string(tok.substr(x + 1)).c_str(), nullptr, 10);
      std::string_view base = tok.substr(0, x);
      if (base == "_") {
        for (int64_t k = 0; k < n; ++k) out.push_back({});
        continue;
      }
      size_t op = std::string_view::npos;
      for (size_t k = 1; k < base.size(); ++k) {
        if ((base[k] == '+' || base[k] == '-') && base[k - 1] != 'e' && base[k - 1] != 'E') op = k;
      }
      std::optional<double> start, delta = 0.0;
      if (op == std::string_view::npos) {
        start = ParseNumber(base);
      } else {
        start = ParseNumber(base.substr(0, op));
        delta = ParseNumber(base.substr(op + 1));
        if (delta && base[op] == '-') *delta = -*delta;
      }
      if (!start || !delta) {
        return absl::InvalidArgumentError(fmt::format("bad series value \"{}\"", tok));
      }
      double v = *start;
      for (int64_t k = 0; k <= n; ++k) {
        out.push_back({v});
        v += *delta;
      }
      continue;
    }
    std::optional<double> v = ParseNumber(tok);
    if (!v) return absl::InvalidArgumentError(fmt::format("bad series value \"{}\"", tok));
    out.push_back({v});
  }
  return out;
}

// "metric{a="b"} 1 2 3" -> labels and the value text.
absl::StatusOr<std::pair<model::Labels, std::string_view>> ParseSeriesLine(std::string_view line) {
  size_t end = 0;
  size_t brace = line.find('{');
  size_t space = line.find_first_of(" \t");
  if (brace != std::string_view::npos && (space == std::string_view::npos || brace < space)) {
    bool quoted = false;
    for (end = brace; end < line.size(); ++end) {
      char c = line[end];
      if (quoted) {
        if (c == '\\') {
          ++end;
        } else if (c == '"') {
          quoted = false;
        }
      } else if (c == '"') {
        quoted = true;
      } else if (c == '}') {
        ++end;
        break;
      }
    }
  } else {
    end = space == std::string_view::npos ? line.size() : space;
  }
  std::string_view metric = line.substr(0, end);
  absl::StatusOr<std::vector<model::Matcher>> ms = promql::ParseMetricSelector(metric);
  if (!ms.ok()) return ms.status();
  std::vector<model::Label> labels;
  for (const model::Matcher& m : *ms) {
    if (m.type() != model::MatchType::kEqual) {
      return absl::InvalidArgumentError(fmt::format("series \"{}\": only = matchers", metric));
    }
    labels.push_back(model::Label{m.name(), m.value()});
  }
  return std::make_pair(model::Labels(std::move(labels)), line.substr(end));
}

bool AlmostEqual(double a, double b) {
  constexpr double kEpsilon = 0.000001;
  constexpr double kMinNormal = 2.2250738585072014e-308;
  if (std::isnan(a) && std::isnan(b)) return true;
  if (a == b) return true;
  double diff = std::abs(a - b);
  if (a == 0 || b == 0 || diff < kMinNormal) return diff < kEpsilon * kMinNormal;
  return diff / (std::abs(a) + std::abs(b)) < kEpsilon;
}

struct Expected {
  bool scalar = false;
  double scalar_value = 0;
  absl::flat_hash_map<model::Labels, std::pair<double, int>> series;  // value, position
};

std::string FormatVector(const Vector& v) {
  std::string out;
  for (const Sample& s : v) {
    out += fmt::format("\n    {} {}", model::ToPromqlSelector(s.metric), promql::FormatNumber(s.v));
  }
  return out;
}

// Empty when the vector matches.
std::string CompareVector(const Vector& got, const Expected& exp, bool ordered) {
  absl::flat_hash_set<model::Labels> seen;
  for (size_t pos = 0; pos < got.size(); ++pos) {
    const Sample& s = got[pos];
    auto it = exp.series.find(s.metric);
    if (it == exp.series.end()) {
      return fmt::format("unexpected metric {} in result; got:{}",
                         model::ToPromqlSelector(s.metric), FormatVector(got));
    }
    if (ordered && it->second.second != static_cast<int>(pos) + 1) {
      return fmt::format("expected metric {} at position {} but was at {}",
                         model::ToPromqlSelector(s.metric), it->second.second, pos + 1);
    }
    if (!AlmostEqual(it->second.first, s.v)) {
      return fmt::format("expected {} for {} but got {}", promql::FormatNumber(it->second.first),
                         model::ToPromqlSelector(s.metric), promql::FormatNumber(s.v));
    }
    seen.insert(s.metric);
  }
  for (const auto& [labels, v] : exp.series) {
    if (!seen.contains(labels)) {
      return fmt::format("expected metric {} with {} not found; got:{}",
                         model::ToPromqlSelector(labels), promql::FormatNumber(v.first),
                         FormatVector(got));
    }
  }
  return "";
}

std::string Compare(const QueryResult& r, const Expected& exp, bool ordered) {
  switch (r.type) {
    case promql::ValueType::kScalar:
      if (!exp.scalar)
        return fmt::format("got scalar {}, want a vector", promql::FormatNumber(r.scalar));
      if (!AlmostEqual(exp.scalar_value, r.scalar)) {
        return fmt::format("expected scalar {} but got {}", promql::FormatNumber(exp.scalar_value),
                           promql::FormatNumber(r.scalar));
      }
      return "";
    case promql::ValueType::kVector:
      if (exp.scalar) return "got a vector, want a scalar";
      return CompareVector(r.vector, exp, ordered);
    default:
      return "received range result on instant evaluation";
  }
}

// The instant result at `t` taken out of a range query one minute either side.
std::string CheckRange(const Engine& engine, const Queryable& q, const std::string& expr, int64_t t,
                       const Expected& exp, bool scalar) {
  absl::StatusOr<QueryResult> r = engine.RangeQuery(q, expr, t - 60000, t + 60000, 60000);
  if (!r.ok()) return fmt::format("range query failed: {}", r.status().message());
  Vector vec;
  for (const Series& s : r->matrix) {
    for (const Point& p : s.points) {
      if (p.t == t) {
        vec.push_back(Sample{s.metric, t, p.v});
        break;
      }
    }
  }
  if (scalar) {
    if (vec.empty()) return "range query: no scalar at the evaluation time";
    QueryResult sr;
    sr.type = promql::ValueType::kScalar;
    sr.scalar = vec[0].v;
    std::string d = Compare(sr, exp, false);
    return d.empty() ? "" : "range query: " + d;
  }
  std::string d = CompareVector(vec, exp, false);
  return d.empty() ? "" : "range query: " + d;
}

absl::StatusOr<int64_t> ParseTime(std::string_view s) {
  absl::StatusOr<int64_t> d = promql::ParseDuration(s);
  if (d.ok()) return d;
  std::optional<double> secs = ParseNumber(s);
  if (secs) return static_cast<int64_t>(std::llround(*secs * 1000));
  return d.status();
}

}  // namespace

ScriptResult RunScript(std::string_view text, std::string_view file, const ScriptOptions& options) {
  ScriptResult result;
  Engine engine(options.engine);
  MemoryQueryable store;
  std::vector<std::string_view> lines;
  for (size_t start = 0; start <= text.size();) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) nl = text.size();
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  auto fail = [&](size_t line, const std::string& msg) {
    result.failures.push_back(fmt::format("{}:{}: {}", file, line + 1, msg));
  };
  // The indented lines after a command, up to a blank line or the next command.
  auto body = [&](size_t& i) {
    std::vector<std::pair<size_t, std::string_view>> out;
    while (i + 1 < lines.size()) {
      std::string_view l = lines[i + 1];
      std::string_view t = Trim(l);
      if (t.empty() || (l[0] != ' ' && l[0] != '\t')) break;
      ++i;
      if (t[0] == '#') continue;
      out.emplace_back(i, t);
    }
    return out;
  };
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view line = Trim(lines[i]);
    if (line.empty() || line[0] == '#') continue;
    if (line == "clear") {
      store.Clear();
      continue;
    }
    if (line.starts_with("load ")) {
      absl::StatusOr<int64_t> interval = promql::ParseDuration(Trim(line.substr(5)));
      if (!interval.ok()) {
        fail(i, fmt::format("bad load interval: {}", interval.status().message()));
        continue;
      }
      for (auto [n, def] : body(i)) {
        auto series = ParseSeriesLine(def);
        if (!series.ok()) {
          fail(n, std::string(series.status().message()));
          continue;
        }
        auto values = ParseValues(series->second);
        if (!values.ok()) {
          fail(n, std::string(values.status().message()));
          continue;
        }
        int64_t t = 0;
        for (const SeqValue& v : *values) {
          if (v.value) store.Add(series->first, t, *v.value);
          t += *interval;
        }
      }
      continue;
    }
    bool must_fail = false, ordered = false;
    std::string_view rest;
    if (line.starts_with("eval instant at ")) {
      rest = line.substr(16);
    } else if (line.starts_with("eval_fail instant at ")) {
      rest = line.substr(21);
      must_fail = true;
    } else if (line.starts_with("eval_ordered instant at ")) {
      rest = line.substr(24);
      ordered = true;
    } else {
      fail(i, fmt::format("unknown command \"{}\"", line));
      continue;
    }
    size_t eval_line = i;
    size_t sp = rest.find(' ');
    std::string expr(sp == std::string_view::npos ? "" : Trim(rest.substr(sp + 1)));
    absl::StatusOr<int64_t> at = ParseTime(rest.substr(0, sp));
    Expected exp;
    bool bad = false;
    int pos = 0;
    for (auto [n, def] : body(i)) {
      if (std::optional<double> v = ParseNumber(def)) {
        exp.scalar = true;
        exp.scalar_value = *v;
        continue;
      }
      auto series = ParseSeriesLine(def);
      if (!series.ok()) {
        fail(n, std::string(series.status().message()));
        bad = true;
        continue;
      }
      auto values = ParseValues(series->second);
      if (!values.ok() || values->size() != 1 || !(*values)[0].value) {
        fail(n, "want exactly one value per expected series");
        bad = true;
        continue;
      }
      exp.series[series->first] = {*(*values)[0].value, ++pos};
    }
    ++result.cases;
    std::string key = fmt::format("{}:{}", file, eval_line + 1);
    if (options.skip.contains(key)) {
      ++result.skipped;
      continue;
    }
    if (!at.ok() || bad) {
      if (!at.ok()) fail(eval_line, fmt::format("bad time: {}", at.status().message()));
      continue;
    }
    absl::StatusOr<QueryResult> r = engine.InstantQuery(store, expr, *at);
    if (must_fail) {
      if (r.ok()) {
        fail(eval_line, fmt::format("expected error evaluating query \"{}\" but got none", expr));
      } else {
        ++result.passed;
      }
      continue;
    }
    if (!r.ok()) {
      fail(eval_line, fmt::format("error evaluating query \"{}\": {}", expr, r.status().message()));
      continue;
    }
    std::string diff = Compare(*r, exp, ordered);
    if (diff.empty() && !ordered) {
      diff = CheckRange(engine, store, expr, *at, exp, r->type == promql::ValueType::kScalar);
    }
    if (!diff.empty()) {
      fail(eval_line, fmt::format("{}: {}", expr, diff));
      continue;
    }
    ++result.passed;
  }
  return result;
}

}  // namespace espy::query::engine
