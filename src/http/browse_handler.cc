#include "http/browse_handler.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <set>

#include "absl/container/flat_hash_map.h"
#include "boost/url/parse.hpp"
#include "fmt/format.h"
#include "query/promql/parser.h"

namespace espy::http {

namespace bhttp = boost::beast::http;

namespace {

using Params = absl::flat_hash_map<std::string, std::string>;

absl::StatusOr<Params> ParseParams(const Request& req) {
  auto url = boost::urls::parse_origin_form(
      boost::core::string_view(req.target().data(), req.target().size()));
  if (!url) return absl::InvalidArgumentError("malformed request target");
  Params params;
  for (const auto& p : url->params()) {
    params[std::string(p.key)] = p.has_value ? std::string(p.value) : "";
  }
  return params;
}

absl::StatusOr<size_t> Limit(const Params& params, size_t max) {
  auto it = params.find("limit");
  if (it == params.end()) return max;
  size_t limit = 0;
  const std::string& v = it->second;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), limit);
  if (ec != std::errc() || ptr != v.data() + v.size() || limit == 0) {
    return absl::InvalidArgumentError(
        fmt::format("parameter \"limit\": want a positive integer, got \"{}\"", v));
  }
  return std::min(limit, max);
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string JsonList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendJsonString(items[i], &out);
  }
  out.push_back(']');
  return out;
}

// The matchers of name= and match= (either or both).
absl::StatusOr<std::vector<model::Matcher>> Selector(const Params& params, bool required) {
  std::vector<model::Matcher> matchers;
  if (auto it = params.find("name"); it != params.end() && !it->second.empty()) {
    auto m = model::Matcher::Make(model::MatchType::kEqual, std::string(model::kMetricNameLabel),
                                  it->second);
    matchers.push_back(*std::move(m));
  }
  if (auto it = params.find("match"); it != params.end() && !it->second.empty()) {
    auto ms = query::promql::ParseMetricSelector(it->second);
    if (!ms.ok()) {
      return absl::InvalidArgumentError(
          fmt::format("parameter \"match\": {}", std::string(ms.status().message())));
    }
    for (model::Matcher& m : *ms) matchers.push_back(std::move(m));
  }
  if (required && matchers.empty()) {
    return absl::InvalidArgumentError("give parameter \"name\" or \"match\"");
  }
  return matchers;
}

uint64_t DirBytes(const std::string& dir) {
  std::error_code ec;
  uint64_t total = 0;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) {
      uint64_t n = it->file_size(size_ec);
      if (!size_ec) total += n;
    }
  }
  return total;
}

// Wraps a handler body that may fail into a Handler.
template <typename F>
Handler Json(F f) {
  return [f](const Request& req, Reply reply) {
    auto params = ParseParams(req);
    if (!params.ok()) return reply(ErrorResponse(params.status()));
    absl::StatusOr<std::string> body = f(*params);
    if (!body.ok()) return reply(ErrorResponse(body.status()));
    Response res = MakeResponse(Status::ok, *std::move(body));
    res.set(bhttp::field::cache_control, "no-store");
    reply(std::move(res));
  };
}

// The store's series over all time.
absl::StatusOr<std::unique_ptr<storage::Querier>> AllTime(const storage::Queryable* store) {
  return store->Querier(std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max());
}

}  // namespace

void RegisterBrowse(Router& router, const BrowseOptions& options) {
  const storage::Queryable* store = options.db;
  const size_t max = options.max_results;

  router.Add("/v1/names", {bhttp::verb::get},
             Json([store, max](const Params& params) -> absl::StatusOr<std::string> {
               auto limit = Limit(params, max);
               if (!limit.ok()) return limit.status();
               std::string q;
               if (auto it = params.find("q"); it != params.end()) q = Lower(it->second);
               auto querier = AllTime(store);
               if (!querier.ok()) return querier.status();
               auto all = (*querier)->LabelValues(model::kMetricNameLabel, {});
               if (!all.ok()) return all.status();
               std::vector<std::string> names;
               for (std::string& n : *all) {
                 if (names.size() >= *limit) break;
                 if (q.empty() || Lower(n).find(q) != std::string::npos) {
                   names.push_back(std::move(n));
                 }
               }
               // Names that start with the query first: what autocomplete wants.
               std::stable_partition(names.begin(), names.end(), [&q](const std::string& n) {
                 return Lower(n).starts_with(q);
               });
               return JsonList(names);
             }));

  router.Add("/v1/labels", {bhttp::verb::get},
             Json([store, max](const Params& params) -> absl::StatusOr<std::string> {
               auto matchers = Selector(params, false);
               if (!matchers.ok()) return matchers.status();
               auto querier = AllTime(store);
               if (!querier.ok()) return querier.status();
               auto found = matchers->empty() ? (*querier)->LabelNames({})
                                              : (*querier)->LabelNames(std::span(&*matchers, 1));
               if (!found.ok()) return found.status();
               std::vector<std::string> names = *std::move(found);
               std::erase(names, std::string(model::kMetricNameLabel));
               if (names.size() > max) names.resize(max);
               return JsonList(names);
             }));

  router.Add("/v1/label_values", {bhttp::verb::get},
             Json([store, max](const Params& params) -> absl::StatusOr<std::string> {
               auto it = params.find("label");
               if (it == params.end() || it->second.empty()) {
                 return absl::InvalidArgumentError("parameter \"label\": required");
               }
               const std::string& label = it->second;
               auto matchers = Selector(params, false);
               if (!matchers.ok()) return matchers.status();
               auto querier = AllTime(store);
               if (!querier.ok()) return querier.status();
               auto found = matchers->empty()
                                ? (*querier)->LabelValues(label, {})
                                : (*querier)->LabelValues(label, std::span(&*matchers, 1));
               if (!found.ok()) return found.status();
               std::vector<std::string> values = *std::move(found);
               if (values.size() > max) values.resize(max);
               return JsonList(values);
             }));

  router.Add("/v1/series", {bhttp::verb::get},
             Json([store, max](const Params& params) -> absl::StatusOr<std::string> {
               auto limit = Limit(params, max);
               if (!limit.ok()) return limit.status();
               auto matchers = Selector(params, true);
               if (!matchers.ok()) return matchers.status();
               auto querier = AllTime(store);
               if (!querier.ok()) return querier.status();
               // In the store's order (by id): the first `limit` found.
               auto set =
                   (*querier)->Select(*matchers, {.mint = std::numeric_limits<int64_t>::min(),
                                                  .maxt = std::numeric_limits<int64_t>::max(),
                                                  .resolution = 0,
                                                  .sorted = false});
               if (!set.ok()) return set.status();
               std::string out = "[";
               size_t n = 0;
               while ((*set)->Next()) {
                 if (n == *limit) break;
                 const model::Labels& labels = (*set)->labels();
                 if (n++ > 0) out.push_back(',');
                 out += "{\"name\":";
                 AppendJsonString(labels.MetricName(), &out);
                 AppendLabelFields(labels, &out);
                 out.push_back('}');
               }
               out.push_back(']');
               return out;
             }));

  router.Add("/v1/overview", {bhttp::verb::get},
             Json([options](const Params&) -> absl::StatusOr<std::string> {
               storage::DbStats s = options.db->stats();
               std::string out = fmt::format(
                   "{{\"series\":{},\"samples_in_head\":{},\"samples_committed\":{},"
                   "\"batches_committed\":{},\"wal_bytes\":{},\"disk_bytes\":{}",
                   s.series, s.samples_in_head, s.samples_committed, s.batches_committed,
                   s.wal_bytes, options.data_dir.empty() ? 0 : DirBytes(options.data_dir));
               if (options.hub != nullptr) {
                 stream::HubStats h = options.hub->stats();
                 fmt::format_to(std::back_inserter(out),
                                ",\"stream\":{{\"connections\":{},\"connections_total\":{},"
                                "\"rejected_connections_total\":{},\"slow_disconnects_total\":{},"
                                "\"dropped_points_total\":{},\"queued_points_total\":{}}}",
                                h.connections, h.connections_total, h.rejected_connections_total,
                                h.slow_disconnects_total, h.dropped_points_total,
                                h.queued_points_total);
               }
               out.push_back('}');
               return out;
             }));
}

}  // namespace espy::http
