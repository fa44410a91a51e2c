// Prometheus HTTP API handlers. Parameters come from the query string and,
// for POST, from an application/x-www-form-urlencoded body (as Go's
// ParseForm). Errors use Prometheus's envelope:
//   {"status":"error","errorType":"bad_data","error":"invalid parameter \"time\": ..."}
// with 400 for bad_data, 422 for execution, 503 for timeout, 500 internal.
#include "http/prom_api.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <variant>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "base/fmt_absl.h"
#include "boost/url/decode_view.hpp"
#include "boost/url/parse.hpp"
#include "boost/url/pct_string_view.hpp"
#include "fmt/format.h"
#include "model/timestamp.h"
#include "query/engine/engine.h"
#include "query/promql/parser.h"
#include "query/promql/printer.h"

namespace espy::http {

namespace bhttp = boost::beast::http;
using query::engine::QueryResult;

namespace {

constexpr int64_t kMinTime = std::numeric_limits<int64_t>::min() / 2;
constexpr int64_t kMaxTime = std::numeric_limits<int64_t>::max() / 2;

enum class ErrorType { kBadData, kExecution, kTimeout, kUnavailable, kInternal };

struct ApiError {
  ErrorType type;
  std::string message;
};

Response ErrorReply(const ApiError& e) {
  std::string_view name;
  Status code;
  switch (e.type) {
    case ErrorType::kBadData:
      name = "bad_data";
      code = Status::bad_request;
      break;
    case ErrorType::kExecution:
      name = "execution";
      code = Status::unprocessable_entity;
      break;
    case ErrorType::kTimeout:
      name = "timeout";
      code = Status::service_unavailable;
      break;
    case ErrorType::kUnavailable:
      name = "unavailable";
      code = Status::service_unavailable;
      break;
    default:
      name = "internal";
      code = Status::internal_server_error;
      break;
  }
  std::string body = "{\"status\":\"error\",\"errorType\":\"";
  body += name;
  body += "\",\"error\":";
  AppendJsonString(e.message, &body);
  body += "}";
  return MakeResponse(code, std::move(body));
}

// The envelope is put around `data` in place: a query result can be
// hundreds of megabytes, not to be copied again.
Response Success(std::string data) {
  constexpr std::string_view kPrefix = "{\"status\":\"success\",\"data\":";
  data.reserve(data.size() + kPrefix.size() + 1);
  data.insert(0, kPrefix);
  data.push_back('}');
  return MakeResponse(Status::ok, std::move(data));
}

ApiError InvalidParam(std::string_view param, absl::string_view message) {
  return ApiError{ErrorType::kBadData, fmt::format("invalid parameter \"{}\": {}", param, message)};
}

ApiError FromStatus(const absl::Status& s) {
  std::string msg(s.message());
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
      return ApiError{ErrorType::kBadData, msg};
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kCancelled:
      return ApiError{ErrorType::kTimeout, msg};
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kResourceExhausted:
      return ApiError{ErrorType::kExecution, msg};
    case absl::StatusCode::kUnavailable:
      return ApiError{ErrorType::kUnavailable, msg};
    default:
      return ApiError{ErrorType::kInternal, msg};
  }
}

// The request's parameters: body (POST form) first, then the query string.
class Params {
 public:
  static std::optional<Params> From(const Request& req, ApiError* err) {
    Params p;
    std::string_view target(req.target().data(), req.target().size());
    size_t q = target.find('?');
    if (q != std::string_view::npos) {
      if (!p.Add(target.substr(q + 1), err)) return std::nullopt;
    }
    if (req.method() == bhttp::verb::post) {
      std::string_view ct(req[bhttp::field::content_type].data(),
                          req[bhttp::field::content_type].size());
      if (ct.starts_with("application/x-www-form-urlencoded") && !p.AddFirst(req.body(), err)) {
        return std::nullopt;
      }
    }
    return p;
  }
  // The first value of `key`, or "".
  std::string Get(std::string_view key) const {
    for (const auto& [k, v] : items_) {
      if (k == key) return v;
    }
    return "";
  }
  bool Has(std::string_view key) const {
    return std::any_of(items_.begin(), items_.end(),
                       [&](const auto& kv) { return kv.first == key; });
  }
  std::vector<std::string> All(std::string_view key) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : items_) {
      if (k == key) out.push_back(v);
    }
    return out;
  }

 private:
  // Splits on '&' and '=' and percent-decodes with '+' as space, as Go's
  // url.ParseQuery: clients send "match[]" with raw brackets, which RFC 3986
  // (and so boost::urls::parse_query) rejects.
  bool Parse(std::string_view s, std::vector<std::pair<std::string, std::string>>* out,
             ApiError* err) {
    while (!s.empty()) {
      size_t amp = s.find('&');
      std::string_view part = s.substr(0, amp);
      s = amp == std::string_view::npos ? std::string_view() : s.substr(amp + 1);
      if (part.empty()) continue;
      size_t eq = part.find('=');
      std::optional<std::string> key = Decode(part.substr(0, eq));
      std::optional<std::string> value =
          Decode(eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1));
      if (!key || !value) {
        *err =
            ApiError{ErrorType::kBadData,
                     fmt::format("error parsing form values: invalid URL escape in \"{}\"", part)};
        return false;
      }
      out->emplace_back(*std::move(key), *std::move(value));
    }
    return true;
  }
  static std::optional<std::string> Decode(std::string_view s) {
    if (s.find_first_of("%+") == std::string_view::npos) return std::string(s);
    std::string plus(s);
    std::replace(plus.begin(), plus.end(), '+', ' ');
    auto pct =
        boost::urls::make_pct_string_view(boost::core::string_view(plus.data(), plus.size()));
    if (!pct) return std::nullopt;
    return pct->decode();
  }
  bool Add(std::string_view s, ApiError* err) { return Parse(s, &items_, err); }
  bool AddFirst(std::string_view s, ApiError* err) {
    std::vector<std::pair<std::string, std::string>> body;
    if (!Parse(s, &body, err)) return false;
    body.insert(body.end(), items_.begin(), items_.end());
    items_ = std::move(body);
    return true;
  }
  std::vector<std::pair<std::string, std::string>> items_;
};

std::optional<double> ParseFloat(const std::string& s) {
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return std::nullopt;
  return v;
}

// Prometheus's parseTime: unix seconds (fractions rounded to milliseconds)
// or RFC 3339.
absl::StatusOr<int64_t> ParseTime(const std::string& s) {
  if (std::optional<double> f = ParseFloat(s); f && std::isfinite(*f)) {
    double secs = std::trunc(*f);
    double frac = std::round((*f - secs) * 1000) / 1000;
    if (std::abs(secs) > 9.2e15) {
      return absl::InvalidArgumentError(fmt::format("cannot parse \"{}\" to a valid timestamp", s));
    }
    return static_cast<int64_t>(secs) * 1000 + static_cast<int64_t>(std::llround(frac * 1000));
  }
  if (s == "-292273086-05-16T16:47:06Z") return kMinTime;
  if (s == "292277025-08-18T07:12:54.999999999Z") return kMaxTime;
  if (s.size() >= 11 && s.find('T') != std::string::npos) {
    absl::StatusOr<int64_t> t = model::ParseTimestamp(s);
    if (t.ok()) return t;
  }
  return absl::InvalidArgumentError(fmt::format("cannot parse \"{}\" to a valid timestamp", s));
}

// Prometheus's parseDuration: float seconds or a duration string like 1h30m.
absl::StatusOr<int64_t> ParseDurationParam(const std::string& s) {
  if (std::optional<double> f = ParseFloat(s); f) {
    double ms = *f * 1000;
    if (!(ms < 9.2e18 && ms > -9.2e18)) {
      return absl::InvalidArgumentError(
          fmt::format("cannot parse \"{}\" to a valid duration. It overflows int64", s));
    }
    return static_cast<int64_t>(ms);
  }
  absl::StatusOr<int64_t> d = query::promql::ParseDuration(s);
  if (d.ok()) return d;
  return absl::InvalidArgumentError(fmt::format("cannot parse \"{}\" to a valid duration", s));
}

// Time parameter `name`, or `fallback` when absent.
std::optional<int64_t> TimeParam(const Params& p, std::string_view name, int64_t fallback,
                                 ApiError* err) {
  if (!p.Has(name) || p.Get(name).empty()) return fallback;
  absl::StatusOr<int64_t> t = ParseTime(p.Get(name));
  if (!t.ok()) {
    *err = InvalidParam(name, t.status().message());
    return std::nullopt;
  }
  return *t;
}

void AppendLabels(const model::Labels& l, std::string* out) {
  out->push_back('{');
  bool first = true;
  for (const model::Label& x : l.items()) {
    if (!first) out->push_back(',');
    first = false;
    AppendJsonString(x.name, out);
    out->push_back(':');
    AppendJsonString(x.value, out);
  }
  out->push_back('}');
}

void AppendPoint(int64_t t, double v, std::string* out) {
  out->push_back('[');
  AppendPromTimestamp(t, out);
  out->append(",\"");
  query::promql::AppendNumber(v, out);
  out->append("\"]");
}

std::string RenderResult(const QueryResult& r) {
  std::string out;
  // About 30 bytes a point ("[1700000000.123,\"12.345\"],"): one allocation
  // instead of a doubling series of copies for a large result.
  size_t points = r.vector.size() + 1;
  for (const auto& s : r.matrix) points += s.points.size() + 4;
  out.reserve(points * 32 + 64);
  out = "{\"resultType\":\"";
  switch (r.type) {
    case query::promql::ValueType::kScalar:
      out += "scalar\",\"result\":";
      AppendPoint(r.time, r.scalar, &out);
      break;
    case query::promql::ValueType::kString:
      out += "string\",\"result\":[";
      AppendPromTimestamp(r.time, &out);
      out.push_back(',');
      AppendJsonString(r.str, &out);
      out.push_back(']');
      break;
    case query::promql::ValueType::kVector:
      out += "vector\",\"result\":[";
      for (size_t i = 0; i < r.vector.size(); ++i) {
        if (i > 0) out.push_back(',');
        out += "{\"metric\":";
        AppendLabels(r.vector[i].metric, &out);
        out += ",\"value\":";
        AppendPoint(r.vector[i].t, r.vector[i].v, &out);
        out.push_back('}');
      }
      out.push_back(']');
      break;
    default:
      out += "matrix\",\"result\":[";
      for (size_t i = 0; i < r.matrix.size(); ++i) {
        if (i > 0) out.push_back(',');
        out += "{\"metric\":";
        AppendLabels(r.matrix[i].metric, &out);
        out += ",\"values\":[";
        const auto& pts = r.matrix[i].points;
        for (size_t j = 0; j < pts.size(); ++j) {
          if (j > 0) out.push_back(',');
          AppendPoint(pts[j].t, pts[j].v, &out);
        }
        out += "]}";
      }
      out.push_back(']');
      break;
  }
  out.push_back('}');
  return out;
}

struct Shared {
  ApiOptions api;
  PromApiOptions options;
};

// A Querier over [mint, maxt].
std::variant<std::unique_ptr<storage::Querier>, ApiError> OpenQuerier(const Shared& s, int64_t mint,
                                                                      int64_t maxt) {
  const storage::Queryable& store = *s.api.db;
  absl::StatusOr<std::unique_ptr<storage::Querier>> q = store.Querier(mint, maxt);
  if (!q.ok()) return FromStatus(q.status());
  return *std::move(q);
}

// The engine for one request: the server's options with the request's
// timeout when it gives a shorter one.
std::optional<query::engine::Engine> EngineFor(const Shared& s, const Params& p, ApiError* err) {
  query::engine::EngineOptions eo = s.options.engine;
  if (p.Has("timeout") && !p.Get("timeout").empty()) {
    absl::StatusOr<int64_t> d = ParseDurationParam(p.Get("timeout"));
    if (!d.ok()) {
      *err = InvalidParam("timeout", d.status().message());
      return std::nullopt;
    }
    eo.timeout = std::min(eo.timeout, std::chrono::milliseconds(std::max<int64_t>(*d, 0)));
  }
  return query::engine::Engine(eo);
}

std::variant<std::string, ApiError> Query(const Shared& s, const Params& p) {
  ApiError err;
  std::optional<int64_t> t = TimeParam(p, "time", s.api.clock->NowMillis(), &err);
  if (!t) return err;
  std::optional<query::engine::Engine> engine = EngineFor(s, p, &err);
  if (!engine) return err;
  absl::StatusOr<query::promql::ExprPtr> expr = query::promql::ParseExpr(p.Get("query"));
  if (!expr.ok()) return InvalidParam("query", expr.status().message());
  auto q = OpenQuerier(s, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max());
  if (auto* e = std::get_if<ApiError>(&q)) return *e;
  absl::StatusOr<QueryResult> r = engine->Exec(*std::get<0>(q), **expr, *t, *t, 0);
  if (!r.ok()) return FromStatus(r.status());
  return RenderResult(*r);
}

std::variant<std::string, ApiError> QueryRange(const Shared& s, const Params& p) {
  ApiError err;
  absl::StatusOr<int64_t> start = ParseTime(p.Get("start"));
  if (!start.ok()) return InvalidParam("start", start.status().message());
  absl::StatusOr<int64_t> end = ParseTime(p.Get("end"));
  if (!end.ok()) return InvalidParam("end", end.status().message());
  if (*end < *start) return InvalidParam("end", "end timestamp must not be before start time");
  absl::StatusOr<int64_t> step = ParseDurationParam(p.Get("step"));
  if (!step.ok()) return InvalidParam("step", step.status().message());
  if (*step <= 0) {
    return InvalidParam("step",
                        "zero or negative query resolution step widths are not accepted. Try a "
                        "positive integer");
  }
  if ((*end - *start) / *step > s.options.engine.max_points_per_series) {
    return ApiError{ErrorType::kBadData,
                    fmt::format("exceeded maximum resolution of {} points per timeseries. Try "
                                "decreasing the query resolution (?step=XX)",
                                s.options.engine.max_points_per_series == 11000
                                    ? std::string("11,000")
                                    : std::to_string(s.options.engine.max_points_per_series))};
  }
  std::optional<query::engine::Engine> engine = EngineFor(s, p, &err);
  if (!engine) return err;
  absl::StatusOr<query::promql::ExprPtr> expr = query::promql::ParseExpr(p.Get("query"));
  if (!expr.ok()) return InvalidParam("query", expr.status().message());
  query::promql::ValueType type = (*expr)->Type();
  if (type != query::promql::ValueType::kScalar && type != query::promql::ValueType::kVector) {
    return ApiError{ErrorType::kBadData,
                    fmt::format("invalid expression type \"{}\" for range query, must be Scalar "
                                "or instant Vector",
                                query::promql::DocumentedTypeName(type))};
  }
  // nocache=1 (as VictoriaMetrics takes it) computes every step afresh.
  const bool nocache = p.Get("nocache") == "1" || p.Get("nocache") == "true";
  auto q = OpenQuerier(s, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max());
  if (auto* e = std::get_if<ApiError>(&q)) return *e;
  const storage::Querier& querier = *std::get<0>(q);
  absl::StatusOr<QueryResult> r =
      s.options.cache != nullptr && !nocache
          ? s.options.cache->RangeQuery(*engine, querier, **expr, p.Get("query"), *start, *end,
                                        *step, s.api.clock->NowMillis())
          : engine->Exec(querier, **expr, *start, *end, *step);
  if (!r.ok()) return FromStatus(r.status());
  return RenderResult(*r);
}

// match[] selectors, each with at least one matcher that rejects "".
std::variant<std::vector<std::vector<model::Matcher>>, ApiError> MatcherSets(const Params& p) {
  std::vector<std::vector<model::Matcher>> sets;
  for (const std::string& m : p.All("match[]")) {
    absl::StatusOr<std::vector<model::Matcher>> ms = query::promql::ParseMetricSelector(m);
    if (!ms.ok()) return InvalidParam("match[]", ms.status().message());
    if (std::all_of(ms->begin(), ms->end(),
                    [](const model::Matcher& x) { return x.MatchesEmpty(); })) {
      return InvalidParam("match[]",
                          "1:1: parse error: vector selector must contain at least one non-empty "
                          "matcher");
    }
    sets.push_back(*std::move(ms));
  }
  return sets;
}

std::optional<size_t> LimitParam(const Params& p, ApiError* err) {
  if (!p.Has("limit") || p.Get("limit").empty()) return 0;
  std::string v = p.Get("limit");
  char* end = nullptr;
  long long n = std::strtoll(v.c_str(), &end, 10);
  if (end != v.c_str() + v.size() || n < 0) {
    *err = InvalidParam("limit", "limit must be a non-negative integer");
    return std::nullopt;
  }
  return static_cast<size_t>(n);
}

void AppendStringArray(const std::vector<std::string>& v, size_t limit, std::string* out) {
  out->push_back('[');
  size_t n = limit > 0 ? std::min(limit, v.size()) : v.size();
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out->push_back(',');
    AppendJsonString(v[i], out);
  }
  out->push_back(']');
}

// The series selection of series, labels, export and delete: match[]
// (required by all but labels), [start, end] (default: all time; kMinTime
// and kMaxTime stand for "no bound" and become the int64 extremes), and for
// series and labels a limit (0: none).
struct Selection {
  std::vector<std::vector<model::Matcher>> sets;
  int64_t mint = 0;
  int64_t maxt = 0;
  size_t limit = 0;
};
struct SelectionRules {
  bool match_required = true;
  bool ordered = true;  // end before start is an error
  bool limit = false;   // takes a limit parameter
};
std::variant<Selection, ApiError> ParseSelection(const Params& p, SelectionRules rules) {
  ApiError err;
  if (rules.match_required && !p.Has("match[]")) {
    return ApiError{ErrorType::kBadData, "no match[] parameter provided"};
  }
  std::optional<int64_t> start = TimeParam(p, "start", kMinTime, &err);
  if (!start) return err;
  std::optional<int64_t> end = TimeParam(p, "end", kMaxTime, &err);
  if (!end) return err;
  if (rules.ordered && *end < *start) {
    return InvalidParam("end", "end timestamp must not be before start time");
  }
  Selection x;
  if (rules.limit) {
    std::optional<size_t> limit = LimitParam(p, &err);
    if (!limit) return err;
    x.limit = *limit;
  }
  auto sets = MatcherSets(p);
  if (auto* e = std::get_if<ApiError>(&sets)) return *e;
  x.sets = std::move(std::get<0>(sets));
  x.mint = *start <= kMinTime ? std::numeric_limits<int64_t>::min() : *start;
  x.maxt = *end >= kMaxTime ? std::numeric_limits<int64_t>::max() : *end;
  return x;
}

std::variant<std::string, ApiError> SeriesHandler(const Shared& s, const Params& p) {
  auto sel = ParseSelection(p, {.ordered = false, .limit = true});
  if (auto* e = std::get_if<ApiError>(&sel)) return *e;
  const Selection& x = std::get<Selection>(sel);
  auto q = OpenQuerier(s, x.mint, x.maxt);
  if (auto* e = std::get_if<ApiError>(&q)) return *e;
  absl::StatusOr<std::vector<storage::SeriesEntry>> series = std::get<0>(q)->Series(x.sets);
  if (!series.ok()) return FromStatus(series.status());
  if (x.limit > 0 && series->size() > x.limit) series->resize(x.limit);
  std::string out = "[";
  for (size_t i = 0; i < series->size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendLabels(*(*series)[i].labels, &out);
  }
  out.push_back(']');
  return out;
}

// Export's body goes out in pieces of about this size.
constexpr size_t kExportPieceBytes = 1 << 20;

// GET/POST /api/v1/export, as VictoriaMetrics serves it: every raw sample
// of the series matching any match[] in [start, end], one JSON object per
// series and line: {"metric":{...},"values":[...],"timestamps":[...]}
// (milliseconds). Staleness markers are left out; NaN and infinities are
// written as the strings "NaN", "+Inf" and "-Inf". The body is streamed
// as it is made, series by series, so its size is not limited.
void Export(const Shared& s, const Params& p, const Reply& reply) {
  auto sel = ParseSelection(p, {});
  if (auto* e = std::get_if<ApiError>(&sel)) return reply(ErrorReply(*e));
  const Selection& x = std::get<Selection>(sel);
  auto q = OpenQuerier(s, x.mint, x.maxt);
  if (auto* e = std::get_if<ApiError>(&q)) return reply(ErrorReply(*e));
  // Series without samples in range are skipped as they are read.
  absl::StatusOr<std::unique_ptr<storage::SeriesSet>> set = std::get<0>(q)->SelectAny(
      x.sets, storage::SelectHints{.mint = x.mint, .maxt = x.maxt, .resolution = 0});
  if (!set.ok()) return reply(ErrorReply(FromStatus(set.status())));
  std::unique_ptr<BodyWriter> body =
      reply.Stream(MakeResponse(Status::ok, "", "application/stream+json"));
  std::string out;
  std::vector<model::Sample> samples;
  while ((*set)->Next()) {
    samples.clear();
    absl::StatusOr<size_t> n = (*set)->ReadSamples(std::numeric_limits<size_t>::max(), &samples);
    // The status line is out: a failed read can only end the body early.
    if (!n.ok()) return;
    std::erase_if(samples, [](const model::Sample& v) { return model::IsStaleNaN(v.value); });
    if (samples.empty()) continue;
    if (out.capacity() < kExportPieceBytes) out.reserve(kExportPieceBytes + (64 << 10));
    out += "{\"metric\":";
    AppendLabels((*set)->labels(), &out);
    out += ",\"values\":[";
    for (size_t i = 0; i < samples.size(); ++i) {
      if (i > 0) out.push_back(',');
      const double v = samples[i].value;
      if (std::isfinite(v)) {
        query::promql::AppendNumber(v, &out);
      } else {
        out.push_back('"');
        query::promql::AppendNumber(v, &out);
        out.push_back('"');
      }
    }
    out += "],\"timestamps\":[";
    char buf[24];
    for (size_t i = 0; i < samples.size(); ++i) {
      if (i > 0) out.push_back(',');
      out.append(buf, std::to_chars(buf, buf + sizeof(buf), samples[i].ts).ptr);
    }
    out += "]}\n";
    if (out.size() >= kExportPieceBytes && !body->Write(std::exchange(out, {}))) return;
  }
  body->Write(std::move(out));
  body->Finish();
}

std::variant<std::string, ApiError> LabelsHandler(const Shared& s, const Params& p,
                                                  const std::string* value_of) {
  auto sel = ParseSelection(p, {.match_required = false, .ordered = false, .limit = true});
  if (auto* e = std::get_if<ApiError>(&sel)) return *e;
  const Selection& x = std::get<Selection>(sel);
  auto q = OpenQuerier(s, x.mint, x.maxt);
  if (auto* e = std::get_if<ApiError>(&q)) return *e;
  const storage::Querier& querier = *std::get<0>(q);
  absl::StatusOr<std::vector<std::string>> result =
      value_of ? querier.LabelValues(*value_of, x.sets) : querier.LabelNames(x.sets);
  if (!result.ok()) return FromStatus(result.status());
  std::string out;
  AppendStringArray(*result, x.limit, &out);
  return out;
}

std::variant<std::string, ApiError> TsdbStatus(const Shared& s) {
  auto q = OpenQuerier(s, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max());
  if (auto* e = std::get_if<ApiError>(&q)) return *e;
  const storage::Querier& querier = *std::get<0>(q);
  const storage::DbStats stats = s.api.db->stats();
  struct Stat {
    std::string name;
    uint64_t value;
  };
  std::vector<Stat> by_metric, values_by_name, memory_by_name, by_pair;
  uint64_t label_pairs = 0;
  absl::StatusOr<std::vector<std::string>> names = querier.LabelNames({});
  if (!names.ok()) return FromStatus(names.status());
  for (const std::string& name : *names) {
    absl::StatusOr<std::vector<std::string>> values = querier.LabelValues(name, {});
    if (!values.ok()) return FromStatus(values.status());
    values_by_name.push_back({name, values->size()});
    uint64_t bytes = 0;
    for (const std::string& v : *values) {
      auto m = model::Matcher::Make(model::MatchType::kEqual, name, v);
      if (!m.ok()) return FromStatus(m.status());
      absl::StatusOr<std::unique_ptr<storage::SeriesSet>> set =
          querier.Select({*m}, storage::SelectHints{.resolution = 0, .sorted = false});
      if (!set.ok()) return FromStatus(set.status());
      uint64_t n = 0;
      while ((*set)->Next()) ++n;
      bytes += n * v.size();
      ++label_pairs;
      if (name == model::kMetricNameLabel) by_metric.push_back({v, n});
      by_pair.push_back({name + "=" + v, n});
    }
    memory_by_name.push_back({name, bytes});
  }
  auto top = [](std::vector<Stat>& v, std::string* out) {
    std::stable_sort(v.begin(), v.end(),
                     [](const Stat& a, const Stat& b) { return a.value > b.value; });
    out->push_back('[');
    for (size_t i = 0; i < v.size() && i < 10; ++i) {
      if (i > 0) out->push_back(',');
      out->append("{\"name\":");
      AppendJsonString(v[i].name, out);
      out->append(fmt::format(",\"value\":{}}}", v[i].value));
    }
    out->push_back(']');
  };
  // Chunks in memory and in blocks, as Prometheus counts its head's (which
  // holds what Espy's head and blocks hold between them).
  std::string out = fmt::format(
      "{{\"headStats\":{{\"numSeries\":{},\"numLabelPairs\":{},\"chunkCount\":{},"
      "\"numSamples\":{}}}",
      stats.series, label_pairs, stats.head_chunks + stats.block_chunks, stats.samples_in_head);
  out += ",\"seriesCountByMetricName\":";
  top(by_metric, &out);
  out += ",\"labelValueCountByLabelName\":";
  top(values_by_name, &out);
  out += ",\"memoryInBytesByLabelName\":";
  top(memory_by_name, &out);
  out += ",\"seriesCountByLabelValuePair\":";
  top(by_pair, &out);
  out += "}";
  return out;
}

// POST /api/v1/admin/tsdb/delete_series: every match[] selector, over
// [start, end] (default: all time). Durable before the 204.
std::optional<ApiError> DeleteSeries(const Shared& s, const Params& p) {
  auto sel = ParseSelection(p, {});
  if (auto* e = std::get_if<ApiError>(&sel)) return *e;
  const Selection& x = std::get<Selection>(sel);
  for (const std::vector<model::Matcher>& set : x.sets) {
    absl::Status st = s.api.db->Delete(set, x.mint, x.maxt);
    // Even a failed delete may have hidden some samples already.
    if (s.options.cache != nullptr) s.options.cache->Invalidate(x.mint);
    if (!st.ok()) return FromStatus(st);
  }
  return std::nullopt;
}

// The admin routes answer 204 with no body on success, and 503
// "admin APIs disabled" unless enabled, as Prometheus without
// --web.enable-admin-api.
Handler WrapAdmin(std::shared_ptr<const Shared> shared,
                  std::function<std::optional<ApiError>(const Shared&, const Params&)> fn) {
  return [shared, fn](const Request& req, Reply reply) {
    if (!shared->options.enable_admin_api) {
      reply(ErrorReply(ApiError{ErrorType::kUnavailable, "admin APIs disabled"}));
      return;
    }
    ApiError err;
    std::optional<Params> p = Params::From(req, &err);
    if (!p) {
      reply(ErrorReply(err));
      return;
    }
    if (std::optional<ApiError> e = fn(*shared, *p); e) {
      reply(ErrorReply(*e));
      return;
    }
    reply(MakeResponse(Status::no_content, ""));
  };
}

using ApiFn = std::function<std::variant<std::string, ApiError>(const Shared&, const Params&,
                                                                const Request&)>;

// Runs fn with the request's parameters (on the query pool when asked and
// there is one; 503 when it is full); fn answers through the Reply.
using ReplyFn = std::function<void(const Shared&, const Params&, const Request&, const Reply&)>;
Handler WithParams(std::shared_ptr<const Shared> shared, ReplyFn fn, bool on_query_pool) {
  return [shared, fn, on_query_pool](const Request& req, Reply reply) {
    ApiError err;
    std::optional<Params> p = Params::From(req, &err);
    if (!p) {
      reply(ErrorReply(err));
      return;
    }
    // `req` stays valid until `reply` is called.
    auto run = [shared, fn, p = std::move(*p), &req, reply]() { fn(*shared, p, req, reply); };
    base::WorkPool* pool = on_query_pool ? shared->options.query_pool : nullptr;
    if (pool == nullptr) {
      run();
    } else if (!pool->TrySubmit(run)) {
      reply(ErrorReply(ApiError{
          ErrorType::kUnavailable,
          fmt::format("too many queries waiting ({} running); retry later", pool->threads())}));
    }
  };
}

// A handler whose string is the `data` of the success envelope.
Handler Wrap(std::shared_ptr<const Shared> shared, ApiFn fn, bool on_query_pool = false) {
  return WithParams(
      std::move(shared),
      [fn](const Shared& s, const Params& p, const Request& req, const Reply& reply) {
        std::variant<std::string, ApiError> r = fn(s, p, req);
        if (auto* e = std::get_if<ApiError>(&r)) {
          reply(ErrorReply(*e));
        } else {
          reply(Success(std::move(std::get<std::string>(r))));
        }
      },
      on_query_pool);
}

// A handler that needs only the parameters, run on the query pool.
Handler WrapQuery(std::shared_ptr<const Shared> shared,
                  std::variant<std::string, ApiError> (*fn)(const Shared&, const Params&)) {
  return Wrap(
      std::move(shared),
      [fn](const Shared& s, const Params& p, const Request&) { return fn(s, p); },
      /*on_query_pool=*/true);
}

}  // namespace

void AppendPromTimestamp(int64_t ms, std::string* out) {
  if (ms < 0) {
    out->push_back('-');
    ms = -ms;
  }
  char buf[32];
  char* end = std::to_chars(buf, buf + sizeof(buf), ms / 1000).ptr;
  if (const int64_t frac = ms % 1000; frac != 0) {
    *end++ = '.';
    *end++ = static_cast<char>('0' + frac / 100);
    *end++ = static_cast<char>('0' + frac / 10 % 10);
    *end++ = static_cast<char>('0' + frac % 10);
  }
  out->append(buf, end);
}

void RegisterPromApi(Router& router, const ApiOptions& api, const PromApiOptions& options) {
  auto shared = std::make_shared<Shared>();
  shared->api = api;
  shared->options = options;
  std::shared_ptr<const Shared> s = shared;
  const std::vector<bhttp::verb> get_post = {bhttp::verb::get, bhttp::verb::post};

  router.Add("/api/v1/query", get_post, WrapQuery(s, &Query));
  router.Add("/api/v1/query_range", get_post, WrapQuery(s, &QueryRange));
  router.Add("/api/v1/export", get_post,
             WithParams(
                 s,
                 [](const Shared& s, const Params& p, const Request&, const Reply& reply) {
                   Export(s, p, reply);
                 },
                 /*on_query_pool=*/true));
  router.Add("/api/v1/series", get_post,
             Wrap(s, [](const Shared& s, const Params& p, const Request&) {
               return SeriesHandler(s, p);
             }));
  router.Add("/api/v1/labels", get_post,
             Wrap(s, [](const Shared& s, const Params& p, const Request&) {
               return LabelsHandler(s, p, nullptr);
             }));
  router.AddPrefix(
      "/api/v1/label/", {bhttp::verb::get},
      Wrap(
          s,
          [](const Shared& s, const Params& p,
             const Request& req) -> std::variant<std::string, ApiError> {
            std::string_view target(req.target().data(), req.target().size());
            target = target.substr(0, target.find('?'));
            target.remove_prefix(std::string_view("/api/v1/label/").size());
            constexpr std::string_view kSuffix = "/values";
            if (!target.ends_with(kSuffix)) {
              return ApiError{ErrorType::kBadData, "want /api/v1/label/<name>/values"};
            }
            std::string name(target.substr(0, target.size() - kSuffix.size()));
            boost::urls::decode_view decoded(boost::core::string_view(name.data(), name.size()));
            name = std::string(decoded.begin(), decoded.end());
            bool valid = !name.empty();
            for (size_t i = 0; i < name.size(); ++i) {
              char c = name[i];
              valid = valid && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                                (i > 0 && c >= '0' && c <= '9'));
            }
            if (!valid) {
              return ApiError{ErrorType::kBadData, fmt::format("invalid label name: \"{}\"", name)};
            }
            return LabelsHandler(s, p, &name);
          }));
  // Espy stores no exemplars; Grafana asks anyway when exemplars are enabled.
  router.Add("/api/v1/query_exemplars", get_post,
             Wrap(s, [](const Shared&, const Params&, const Request&) {
               return std::variant<std::string, ApiError>(std::string("[]"));
             }));
  router.Add("/api/v1/metadata", {bhttp::verb::get},
             Wrap(s, [](const Shared&, const Params&, const Request&) {
               return std::variant<std::string, ApiError>(std::string("{}"));
             }));
  router.Add("/api/v1/status/buildinfo", {bhttp::verb::get},
             Wrap(s, [](const Shared& s, const Params&, const Request&) {
               std::string out = "{\"version\":";
               AppendJsonString(s.options.prometheus_version, &out);
               out += ",\"revision\":";
               AppendJsonString("espy-" + s.options.espy_version, &out);
               out +=
                   ",\"branch\":\"espy\",\"buildUser\":\"espy\",\"buildDate\":\"\","
                   "\"goVersion\":\"none\"}";
               return std::variant<std::string, ApiError>(std::move(out));
             }));
  router.Add("/api/v1/status/tsdb", {bhttp::verb::get},
             Wrap(s, [](const Shared& s, const Params&, const Request&) { return TsdbStatus(s); }));
  const std::vector<bhttp::verb> post_put = {bhttp::verb::post, bhttp::verb::put};
  router.Add("/api/v1/admin/tsdb/delete_series", post_put,
             WrapAdmin(s, [](const Shared& s, const Params& p) { return DeleteSeries(s, p); }));
  router.Add("/api/v1/admin/tsdb/clean_tombstones", post_put,
             WrapAdmin(s, [](const Shared& s, const Params&) -> std::optional<ApiError> {
               if (absl::Status st = s.api.db->CleanTombstones(); !st.ok()) return FromStatus(st);
               return std::nullopt;
             }));
  router.Add("/api/v1/format_query", get_post,
             Wrap(s,
                  [](const Shared&, const Params& p,
                     const Request&) -> std::variant<std::string, ApiError> {
                    absl::StatusOr<query::promql::ExprPtr> e =
                        query::promql::ParseExpr(p.Get("query"));
                    if (!e.ok()) return InvalidParam("query", e.status().message());
                    std::string out;
                    AppendJsonString(query::promql::ToString(**e), &out);
                    return out;
                  }));
}

}  // namespace espy::http
