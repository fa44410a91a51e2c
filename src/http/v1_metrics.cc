// POST /v1/metrics (JSON, array or NDJSON in; 202 once durable) and
// GET /v1/metrics (a page of samples as the same JSON objects, keyset paged).
#include <algorithm>
#include <cmath>

#include "boost/url/parse.hpp"
#include "boost/url/url.hpp"
#include "fmt/format.h"
#include "http/api.h"
#include "http/v1_metrics_params.h"
#include "ingest/json_parser.h"
#include "model/timestamp.h"
#include "query/engine/step_aggregator.h"
#include "query/promql/parser.h"
#include "query/sample_pager.h"

namespace espy::http {

namespace bhttp = boost::beast::http;

namespace {

// The media type without parameters, lower-cased: "application/json".
std::string MediaType(const Request& req) {
  std::string_view ct(req[bhttp::field::content_type].data(),
                      req[bhttp::field::content_type].size());
  ct = ct.substr(0, ct.find(';'));
  while (!ct.empty() && ct.back() == ' ') ct.remove_suffix(1);
  std::string out(ct);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool LooksLikeJson(std::string_view body) {
  size_t i = body.find_first_not_of(" \t\r\n");
  return i != std::string_view::npos && (body[i] == '{' || body[i] == '[');
}

void HandlePost(const ApiOptions& opts, const Request& req, Reply reply) {
  std::string media = MediaType(req);
  ingest::JsonFormat format;
  if (media.empty() || media == "application/json" || media == "text/json" ||
      (media == "application/x-www-form-urlencoded" && LooksLikeJson(req.body()))) {
    // curl -d sends the form type; a body that is plainly JSON is taken as
    // JSON rather than refused.
    format = ingest::JsonFormat::kJson;
  } else if (media == "application/x-ndjson" || media == "application/jsonl" ||
             media == "application/json-seq") {
    format = ingest::JsonFormat::kNdjson;
  } else {
    reply(ErrorResponse(Status::unsupported_media_type,
                        fmt::format("Content-Type \"{}\" is not accepted; send application/json "
                                    "(one object or an array) or application/x-ndjson",
                                    media)));
    return;
  }
  absl::StatusOr<ingest::Batch> batch =
      ingest::ParseJsonMetrics(req.body(), format, opts.clock->NowMillis(), opts.limits);
  if (!batch.ok()) {
    opts.metrics->AddRejected("json", 1);
    reply(ErrorResponse(batch.status()));
    return;
  }
  size_t n = batch->samples.size();
  if (n == 0) {
    reply(MakeResponse(Status::accepted, "{\"accepted\":0}"));
    return;
  }
  opts.db->Commit(std::move(*batch), [n, reply, metrics = opts.metrics](absl::Status s) {
    if (!s.ok()) {
      reply(ErrorResponse(s));
      return;
    }
    metrics->AddSamples("json", n);
    reply(MakeResponse(Status::accepted, fmt::format("{{\"accepted\":{}}}", n)));
  });
}

// The parts of the metric objects of a response that are the same for
// every point of a series, `{"name":"cpu","value":` and `,"host":"a"}`,
// made once per series, all in one buffer. Thread-compatible.
class SeriesJson {
 public:
  // Adds the parts of a series; returns its index for AppendPoint.
  uint32_t Add(const model::Labels& labels) {
    Parts p;
    p.begin = text_.size();
    text_ += "{\"name\":";
    AppendJsonString(labels.MetricName(), &text_);
    text_ += ",\"value\":";
    p.head_end = text_.size();
    AppendLabelFields(labels, &text_);
    text_.push_back('}');
    p.end = text_.size();
    parts_.push_back(p);
    return static_cast<uint32_t>(parts_.size() - 1);
  }

  // One sample as the object it was written as: name, value, ts, labels.
  void AppendPoint(uint32_t series, const model::Sample& sample, std::string* out) const {
    const Parts& p = parts_[series];
    out->append(text_, p.begin, p.head_end - p.begin);
    AppendJsonValue(sample.value, out);
    out->append(",\"ts\":\"");
    model::AppendTimestamp(sample.ts, out);
    out->push_back('"');
    out->append(text_, p.head_end, p.end - p.head_end);
  }

 private:
  struct Parts {
    size_t begin, head_end, end;
  };
  std::string text_;
  std::vector<Parts> parts_;
};

// GET /v1/metrics with step (a duration: 30s, 5m, 1h) and agg (avg, min, max,
// sum, count, last, rate; default avg): one point per series per step bucket
// [sts + k*step, sts + (k+1)*step), stamped with the bucket start, in
// (ts, series) order. sts is required; ets defaults to now. No cursor: more
// than `limit` points is an error asking for a larger step.
void HandleStepGet(const ApiOptions& opts, const query::PageRequest& page, const std::string& step,
                   const std::string& agg, Reply reply) {
  query::engine::StepRequest r;
  absl::StatusOr<int64_t> step_ms = query::promql::ParseDuration(step);
  if (!step_ms.ok() || *step_ms <= 0) {
    reply(ErrorResponse(absl::InvalidArgumentError(fmt::format(
        "parameter \"step\": want a positive duration such as 30s, 5m or 1h, got \"{}\"", step))));
    return;
  }
  auto parsed_agg = query::engine::ParseStepAgg(agg.empty() ? "avg" : agg);
  if (!parsed_agg.ok()) {
    reply(ErrorResponse(parsed_agg.status()));
    return;
  }
  if (page.mint == INT64_MIN) {
    reply(ErrorResponse(absl::InvalidArgumentError(
        "parameter \"sts\": required with \"step\" (the first bucket starts there)")));
    return;
  }
  if (page.after) {
    reply(ErrorResponse(absl::InvalidArgumentError(
        "parameter \"cursor\": not supported with \"step\"; use a larger step instead")));
    return;
  }
  r.matchers = page.matchers;
  r.mint = page.mint;
  r.maxt = page.maxt == INT64_MAX ? opts.clock->NowMillis() : page.maxt;
  r.step_ms = *step_ms;
  r.agg = *parsed_agg;
  r.max_points = page.limit;
  absl::StatusOr<std::unique_ptr<storage::Querier>> querier =
      static_cast<const storage::Queryable&>(*opts.db).Querier(INT64_MIN, INT64_MAX);
  if (!querier.ok()) {
    reply(ErrorResponse(querier.status()));
    return;
  }
  absl::StatusOr<query::engine::Matrix> m = query::engine::AggregateSteps(**querier, r);
  if (!m.ok()) {
    reply(ErrorResponse(m.status()));
    return;
  }
  struct Out {
    int64_t t;
    size_t series;
    double v;
  };
  std::vector<Out> points;
  SeriesJson json;
  for (size_t i = 0; i < m->size(); ++i) {
    json.Add((*m)[i].metric);  // index i
    for (const query::engine::Point& p : (*m)[i].points) points.push_back({p.t, i, p.v});
  }
  std::stable_sort(points.begin(), points.end(),
                   [](const Out& a, const Out& b) { return a.t < b.t; });
  std::string body = "[";
  for (size_t i = 0; i < points.size(); ++i) {
    if (i > 0) body.push_back(',');
    json.AppendPoint(static_cast<uint32_t>(points[i].series),
                     model::Sample{points[i].t, points[i].v}, &body);
  }
  body.push_back(']');
  reply(MakeResponse(Status::ok, std::move(body)));
}

void HandleGet(const ApiOptions& opts, const Request& req, Reply reply) {
  auto url = boost::urls::parse_origin_form(
      boost::core::string_view(req.target().data(), req.target().size()));
  if (!url) {
    reply(ErrorResponse(Status::bad_request, "malformed request target"));
    return;
  }
  absl::StatusOr<V1MetricsParams> params = ParseV1MetricsParams(
      url->params(), opts.clock->NowMillis(), opts.default_page_limit, opts.max_page_limit);
  if (!params.ok()) {
    reply(ErrorResponse(params.status()));
    return;
  }
  if (!params->label_filters.empty()) {
    // Label names are few (values are many): one list per request, over
    // all time, so a filter is refused only when no series has the label.
    absl::StatusOr<std::unique_ptr<storage::Querier>> all =
        static_cast<const storage::Queryable&>(*opts.db).Querier(INT64_MIN, INT64_MAX);
    absl::StatusOr<std::vector<std::string>> names =
        all.ok() ? (*all)->LabelNames({}) : absl::StatusOr<std::vector<std::string>>(all.status());
    if (!names.ok()) {
      reply(ErrorResponse(names.status()));
      return;
    }
    absl::Status known = CheckLabelFilters(params->label_filters, [&names](std::string_view name) {
      return std::binary_search(names->begin(), names->end(), name);
    });
    if (!known.ok()) {
      reply(ErrorResponse(known));
      return;
    }
  }
  const query::PageRequest& request = params->page;
  const std::string& step = params->step;
  const std::string& agg = params->agg;
  if (!step.empty() || !agg.empty()) {
    HandleStepGet(opts, request, step, agg, std::move(reply));
    return;
  }
  absl::StatusOr<std::unique_ptr<storage::Querier>> querier =
      static_cast<const storage::Queryable&>(*opts.db).Querier(request.mint, request.maxt);
  if (!querier.ok()) {
    reply(ErrorResponse(querier.status()));
    return;
  }
  // The page's labels live as long as the querier.
  absl::StatusOr<query::Page> read = query::ReadPage(**querier, request);
  if (!read.ok()) {
    reply(ErrorResponse(read.status()));
    return;
  }
  const query::Page& page = *read;
  std::string body;
  body.reserve(page.points.size() * 96 + 2);
  body.push_back('[');
  SeriesJson json;
  absl::flat_hash_map<model::SeriesRef, uint32_t> index;  // ref -> json's index
  index.reserve(page.points.size());
  for (size_t i = 0; i < page.points.size(); ++i) {
    const query::PagePoint& p = page.points[i];
    auto [it, added] = index.try_emplace(p.ref, 0);
    if (added) it->second = json.Add(*p.labels);
    if (i > 0) body.push_back(',');
    json.AppendPoint(it->second, p.sample, &body);
  }
  body.push_back(']');
  Response res = MakeResponse(Status::ok, std::move(body));
  if (page.next) {
    boost::urls::url next(*url);
    next.params().set("cursor", query::EncodeCursor(*page.next));
    res.set(bhttp::field::link, fmt::format("<{}>; rel=\"next\"", std::string(next.buffer())));
  }
  reply(std::move(res));
}

}  // namespace

void RegisterV1Metrics(Router& router, const ApiOptions& options) {
  router.Add("/v1/metrics", {bhttp::verb::get, bhttp::verb::post},
             [options](const Request& req, Reply reply) {
               if (req.method() == bhttp::verb::post) {
                 HandlePost(options, req, std::move(reply));
               } else {
                 HandleGet(options, req, std::move(reply));
               }
             });
}

void RegisterStatus(Router& router, const ApiOptions& options) {
  const Handler healthy = [](const Request&, Reply reply) {
    reply(MakeResponse(Status::ok, "{\"status\":\"ok\"}"));
  };
  const Handler ready = [options](const Request&, Reply reply) {
    if (options.ready != nullptr && !options.ready->load()) {
      reply(ErrorResponse(Status::service_unavailable, "shutting down"));
      return;
    }
    reply(MakeResponse(Status::ok, "{\"status\":\"ready\"}"));
  };
  // Kubernetes' customary paths, and Prometheus' (which tooling written for
  // Prometheus probes), with the same meaning.
  router.Add("/healthz", {bhttp::verb::get, bhttp::verb::head}, healthy);
  router.Add("/-/healthy", {bhttp::verb::get, bhttp::verb::head}, healthy);
  router.Add("/readyz", {bhttp::verb::get, bhttp::verb::head}, ready);
  router.Add("/-/ready", {bhttp::verb::get, bhttp::verb::head}, ready);
  router.Add("/metrics", {bhttp::verb::get}, [options](const Request&, Reply reply) {
    reply(MakeResponse(Status::ok, options.metrics->Render(),
                       "text/plain; version=0.0.4; charset=utf-8"));
  });
}

}  // namespace espy::http
