// POST /api/v1/write (remote write), POST /write and /api/v2/write (Influx
// line protocol), GET /ping. See ingest_handlers.h.
#include "http/ingest_handlers.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <optional>

#include "boost/url/parse.hpp"
#include "boost/url/url_view.hpp"
#include "fmt/format.h"
#include "ingest/bad_input.h"
#include "ingest/influx_parser.h"
#include "ingest/remote_write_parser.h"

namespace espy::http {

namespace bhttp = boost::beast::http;

namespace {

constexpr std::string_view kRemoteWrite = "remote_write";
constexpr std::string_view kInflux = "influx";
// Longest excerpt of an offending line quoted back in an Influx error.
constexpr size_t kMaxQuotedLineBytes = 200;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view HeaderValue(const Request& req, bhttp::field f) {
  auto v = req[f];
  return std::string_view(v.data(), v.size());
}

// A header's value without parameters, trimmed and lower-cased.
std::string MediaType(std::string_view value) {
  value = value.substr(0, value.find(';'));
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  return Lower(value);
}

Response NoContent() {
  Response res{Status::no_content, 11};
  res.prepare_payload();
  return res;
}

// Appends `s` with every byte that is not part of valid UTF-8 written as
// \xNN, so it can go into a JSON string.
void AppendPrintable(std::string_view s, std::string* out) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80           ? 1
                 : (c >> 5) == 0x6  ? 2
                 : (c >> 4) == 0xe  ? 3
                 : (c >> 3) == 0x1e ? 4
                                    : 0;
    bool ok = len > 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) {
      ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
    }
    if (!ok) {
      fmt::format_to(std::back_inserter(*out), "\\x{:02x}", c);
      ++i;
      continue;
    }
    out->append(s.substr(i, len));
    i += len;
  }
}

// The 0-based physical line `index` of `body` (LF separated, CR stripped).
std::string_view NthLine(std::string_view body, int64_t index) {
  size_t start = 0;
  for (int64_t i = 0; i < index; ++i) {
    size_t nl = body.find('\n', start);
    if (nl == std::string_view::npos) return {};
    start = nl + 1;
  }
  std::string_view line = body.substr(start, body.find('\n', start) - start);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

enum class InfluxApi { kV1, kV2 };

// An error body in InfluxDB's shape: {"error": "..."} for 1.x, plus "code"
// and "message" as 2.x has them; "line" (1-based), "field" and "problem" say
// the same in parts for programs.
Response InfluxError(InfluxApi api, Status status, const absl::Status& error,
                     std::string_view body) {
  std::string message;
  std::optional<ingest::BadInput> bad = ingest::GetBadInput(error);
  if (bad && bad->item >= 0) {
    std::string_view line = NthLine(body, bad->item);
    bool cut = line.size() > kMaxQuotedLineBytes;
    std::string quoted;
    AppendPrintable(line.substr(0, kMaxQuotedLineBytes), &quoted);
    message =
        fmt::format("unable to parse line {} '{}{}': ", bad->item + 1, quoted, cut ? "..." : "");
    if (!bad->field.empty()) message += fmt::format("field \"{}\": ", bad->field);
    message += bad->problem;
  } else {
    message = std::string(error.message());
  }
  std::string out = "{";
  if (api == InfluxApi::kV2) {
    out += status == Status::bad_request || status == Status::unsupported_media_type
               ? "\"code\":\"invalid\""
           : status == Status::payload_too_large   ? "\"code\":\"request too large\""
           : status == Status::service_unavailable ? "\"code\":\"unavailable\""
                                                   : "\"code\":\"internal error\"";
    out += ",\"message\":";
    AppendJsonString(message, &out);
    out += ",";
  }
  out += "\"error\":";
  AppendJsonString(message, &out);
  if (bad) {
    if (bad->item >= 0) out += fmt::format(",\"line\":{}", bad->item + 1);
    if (!bad->field.empty()) {
      out += ",\"field\":";
      AppendJsonString(bad->field, &out);
    }
    out += ",\"problem\":";
    AppendJsonString(bad->problem, &out);
  }
  out += "}";
  return MakeResponse(status, std::move(out));
}

// Caches the spellings of the batch's series that the head knows already.
void LearnSeries(const ApiOptions& api, ingest::SeriesLookup& lookup, ingest::Batch* batch) {
  lookup.Learn(batch, [&api](const model::Labels& l) { return api.db->Lookup(l); });
}

// Commits through the same path as POST /v1/metrics and answers 204 once
// the batch is durable; `on_error` renders a failed commit.
void CommitAndAck(const ApiOptions& api, std::string_view protocol, ingest::Batch batch,
                  Reply reply, std::function<Response(const absl::Status&)> on_error) {
  size_t n = batch.samples.size();
  if (n == 0) {
    reply(NoContent());
    return;
  }
  api.db->Commit(std::move(batch),
                 [n, protocol, reply = std::move(reply), on_error = std::move(on_error),
                  metrics = api.metrics](absl::Status s) {
                   if (!s.ok()) {
                     reply(on_error(s));
                     return;
                   }
                   metrics->AddSamples(protocol, n);
                   reply(NoContent());
                 });
}

void HandleRemoteWrite(const ApiOptions& api, const IngestHandlerOptions& options,
                       const Request& req, Reply reply) {
  auto reject = [&](Status status, std::string message) {
    api.metrics->AddRejected(kRemoteWrite, 1);
    reply(ErrorResponse(status, message));
  };
  // Prometheus sends both headers; an empty one is taken as the default, as
  // Prometheus' own receiver does. Remote write 2.0 bodies (another proto
  // message) are refused with 415 so senders can fall back to 1.0.
  std::string encoding = Lower(HeaderValue(req, bhttp::field::content_encoding));
  if (!encoding.empty() && encoding != "snappy") {
    return reject(Status::unsupported_media_type,
                  fmt::format("Content-Encoding \"{}\" is not accepted; remote write bodies are "
                              "snappy-compressed (Content-Encoding: snappy)",
                              encoding));
  }
  std::string_view content_type = HeaderValue(req, bhttp::field::content_type);
  std::string media = MediaType(content_type);
  std::string lowered = Lower(content_type);
  if ((!media.empty() && media != "application/x-protobuf") ||
      (lowered.find("proto=") != std::string::npos &&
       lowered.find("proto=prometheus.writerequest") == std::string::npos)) {
    return reject(Status::unsupported_media_type,
                  fmt::format("Content-Type \"{}\" is not accepted; send remote write 1.0 "
                              "(application/x-protobuf, prometheus.WriteRequest)",
                              content_type));
  }
  ingest::SeriesLookup lookup(api.series_cache, ingest::SeriesCache::Protocol::kRemoteWrite);
  absl::StatusOr<ingest::Batch> batch = ingest::ParseRemoteWrite(
      req.body(), options.max_decoded_bytes, api.clock->NowMillis(), api.limits, &lookup);
  if (!batch.ok()) {
    api.metrics->AddRejected(kRemoteWrite, 1);
    reply(ErrorResponse(batch.status()));
    return;
  }
  LearnSeries(api, lookup, &*batch);
  CommitAndAck(api, kRemoteWrite, *std::move(batch), std::move(reply),
               [](const absl::Status& s) { return ErrorResponse(s); });
}

// The query parameters the Influx endpoints read; the others (u, p,
// consistency, ...) are ignored as InfluxDB ignores what it does not use.
struct InfluxParams {
  std::string precision;
};

absl::StatusOr<InfluxParams> ParseInfluxParams(InfluxApi api, const Request& req) {
  auto url = boost::urls::parse_origin_form(
      boost::core::string_view(req.target().data(), req.target().size()));
  if (!url) return absl::InvalidArgumentError("malformed request target");
  InfluxParams out;
  for (const auto& param : url->params()) {
    if (param.key == "precision") out.precision = param.has_value ? std::string(param.value) : "";
  }
  // db/rp (1.x) and bucket/org (2.x) name where InfluxDB would store the
  // points; Espy has one store, so they are accepted and not required.
  if (api == InfluxApi::kV2 && !out.precision.empty() && out.precision != "ns" &&
      out.precision != "us" && out.precision != "ms" && out.precision != "s") {
    return ingest::MakeBadInput(-1, "precision",
                                fmt::format("want ns, us, ms or s, got \"{}\"", out.precision));
  }
  return out;
}

void HandleInflux(InfluxApi api_version, const ApiOptions& api, const IngestHandlerOptions& options,
                  const Request& req, Reply reply) {
  auto reject = [&](Status status, const absl::Status& error, std::string_view body) {
    api.metrics->AddRejected(kInflux, 1);
    reply(InfluxError(api_version, status, error, body));
  };
  absl::StatusOr<InfluxParams> params = ParseInfluxParams(api_version, req);
  if (!params.ok()) return reject(Status::bad_request, params.status(), "");
  absl::StatusOr<ingest::InfluxPrecision> precision =
      ingest::ParseInfluxPrecision(params->precision);
  if (!precision.ok()) return reject(Status::bad_request, precision.status(), "");

  std::string_view body = req.body();
  std::string inflated;
  std::string encoding = Lower(HeaderValue(req, bhttp::field::content_encoding));
  if (encoding == "gzip" || encoding == "x-gzip") {
    absl::StatusOr<std::string> out = Gunzip(body, options.max_decoded_bytes);
    if (!out.ok()) {
      return reject(out.status().code() == absl::StatusCode::kResourceExhausted
                        ? Status::payload_too_large
                        : Status::bad_request,
                    out.status(), "");
    }
    inflated = *std::move(out);
    body = inflated;
  } else if (!encoding.empty() && encoding != "identity") {
    return reject(
        Status::unsupported_media_type,
        absl::InvalidArgumentError(fmt::format(
            "Content-Encoding \"{}\" is not accepted; send gzip or no encoding", encoding)),
        "");
  } else if (body.size() > options.max_decoded_bytes) {
    return reject(Status::payload_too_large,
                  absl::InvalidArgumentError(fmt::format("body of {} bytes is over the limit of {}",
                                                         body.size(), options.max_decoded_bytes)),
                  "");
  }
  ingest::SeriesLookup lookup(api.series_cache, ingest::SeriesCache::Protocol::kInflux);
  absl::StatusOr<ingest::Batch> batch =
      ingest::ParseInfluxLines(body, *precision, api.clock->NowMillis(), api.limits, &lookup);
  if (!batch.ok()) return reject(Status::bad_request, batch.status(), body);
  LearnSeries(api, lookup, &*batch);
  CommitAndAck(api, kInflux, *std::move(batch), std::move(reply),
               [api_version](const absl::Status& s) {
                 return InfluxError(api_version, HttpStatusFor(s), s, "");
               });
}

}  // namespace

absl::StatusOr<std::string> Gunzip(std::string_view body, size_t max_bytes) {
  z_stream zs{};
  // 15 + 32: the largest window, and detect gzip or zlib from the header.
  if (inflateInit2(&zs, 15 + 32) != Z_OK) return absl::InternalError("gzip: inflateInit2 failed");
  std::string out;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(body.data()));
  zs.avail_in = static_cast<uInt>(body.size());
  absl::Status status;
  char buf[64 << 10];
  while (true) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    int rc = inflate(&zs, Z_NO_FLUSH);
    size_t produced = sizeof(buf) - zs.avail_out;
    if (out.size() + produced > max_bytes) {
      status = absl::ResourceExhaustedError(
          fmt::format("gzip body inflates to more than {} bytes", max_bytes));
      break;
    }
    out.append(buf, produced);
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0) break;
      // Another gzip member follows.
      if (inflateReset(&zs) != Z_OK) {
        status = absl::InternalError("gzip: inflateReset failed");
        break;
      }
      continue;
    }
    if (rc == Z_BUF_ERROR && zs.avail_in == 0 && produced == 0) {
      status = absl::InvalidArgumentError(
          fmt::format("gzip body ends early after {} bytes: truncated stream", body.size()));
      break;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      status =
          absl::InvalidArgumentError(fmt::format("gzip body is corrupt at byte {}: {}", zs.total_in,
                                                 zs.msg != nullptr ? zs.msg : "inflate failed"));
      break;
    }
  }
  inflateEnd(&zs);
  if (!status.ok()) return status;
  return out;
}

void RegisterIngestHandlers(Router& router, const ApiOptions& api,
                            const IngestHandlerOptions& options) {
  router.Add("/api/v1/write", {bhttp::verb::post}, [api, options](const Request& req, Reply reply) {
    HandleRemoteWrite(api, options, req, std::move(reply));
  });
  router.Add("/write", {bhttp::verb::post}, [api, options](const Request& req, Reply reply) {
    HandleInflux(InfluxApi::kV1, api, options, req, std::move(reply));
  });
  router.Add("/api/v2/write", {bhttp::verb::post}, [api, options](const Request& req, Reply reply) {
    HandleInflux(InfluxApi::kV2, api, options, req, std::move(reply));
  });
  router.Add("/ping", {bhttp::verb::get, bhttp::verb::head},
             [](const Request&, Reply reply) { reply(NoContent()); });
}

}  // namespace espy::http
