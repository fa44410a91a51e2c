#include "http/types.h"

#include <cmath>
#include <cstdint>
#include <utility>

#include "base/swar.h"
#include "fmt/format.h"
#include "ingest/bad_input.h"

namespace espy::http {

Response MakeResponse(Status status, std::string body, std::string_view content_type) {
  Response res{status, 11};
  res.set(boost::beast::http::field::content_type,
          boost::beast::string_view(content_type.data(), content_type.size()));
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

namespace {

// Stream without a connection to stream to (tests): the pieces are
// collected and sent as one response when the body ends.
class CollectingWriter : public BodyWriter {
 public:
  CollectingWriter(Response header, Reply::SendFn send)
      : res_(std::move(header)), send_(std::move(send)) {
    res_.body().clear();
  }
  ~CollectingWriter() override { Finish(); }
  bool Write(std::string piece) override {
    if (!send_) return false;
    res_.body() += piece;
    return true;
  }
  void Finish() override {
    if (!send_) return;
    res_.prepare_payload();
    std::exchange(send_, nullptr)(std::move(res_));
  }

 private:
  Response res_;
  Reply::SendFn send_;
};

}  // namespace

std::unique_ptr<BodyWriter> Reply::Stream(Response header) const {
  if (stream_) return stream_(std::move(header));
  return std::make_unique<CollectingWriter>(std::move(header), send_);
}

Response ErrorResponse(Status status, std::string_view message) {
  std::string body = "{\"error\":";
  AppendJsonString(message, &body);
  body += "}";
  return MakeResponse(status, std::move(body));
}

Status HttpStatusFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return Status::bad_request;
    case absl::StatusCode::kNotFound:
      return Status::not_found;
    case absl::StatusCode::kResourceExhausted:
      return Status::too_many_requests;
    case absl::StatusCode::kFailedPrecondition:
      return Status::unprocessable_entity;
    case absl::StatusCode::kUnavailable:
      return Status::service_unavailable;
    case absl::StatusCode::kDeadlineExceeded:
      return Status::service_unavailable;
    default:
      return Status::internal_server_error;
  }
}

Response ErrorResponse(const absl::Status& status) {
  std::string body = "{\"error\":";
  AppendJsonString(std::string_view(status.message().data(), status.message().size()), &body);
  if (std::optional<ingest::BadInput> bad = ingest::GetBadInput(status)) {
    if (bad->item >= 0) body += fmt::format(",\"item\":{}", bad->item);
    if (!bad->field.empty()) {
      body += ",\"field\":";
      AppendJsonString(bad->field, &body);
    }
    body += ",\"problem\":";
    AppendJsonString(bad->problem, &body);
  }
  body += "}";
  return MakeResponse(HttpStatusFor(status), std::move(body));
}

namespace {

// True when one of the 8 bytes of `w` must be escaped in a JSON string: a
// control byte (< 0x20), '"' or '\\'.
bool NeedsEscape(uint64_t w) {
  return (base::BytesBelow(w, 0x20) | base::BytesEqual(w, '"') | base::BytesEqual(w, '\\')) != 0;
}

}  // namespace

void AppendJsonString(std::string_view s, std::string* out) {
  out->push_back('"');
  size_t run = 0;  // start of the current run of bytes needing no escape
  size_t i = 0;
  while (i < s.size()) {
    // Label values rarely need escapes: skip 8 clean bytes at a time.
    if (s.size() - i >= 8) {
      if (!NeedsEscape(base::LoadWord(s.data() + i))) {
        i += 8;
        continue;
      }
    }
    unsigned char c = static_cast<unsigned char>(s[i++]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s.data() + run, i - 1 - run);
    run = i;
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        fmt::format_to(std::back_inserter(*out), "\\u{:04x}", c);
    }
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

void AppendJsonValue(double v, std::string* out) {
  if (std::isfinite(v)) {
    char buf[32];
    out->append(buf, fmt::format_to(buf, "{}", v));
  } else if (std::isnan(v)) {
    out->append("\"NaN\"");
  } else {
    out->append(v > 0 ? "\"+Inf\"" : "\"-Inf\"");
  }
}

void AppendLabelFields(const model::Labels& labels, std::string* out) {
  for (const model::Label& l : labels.items()) {
    if (l.name == model::kMetricNameLabel) continue;
    out->push_back(',');
    AppendJsonString(l.name, out);
    out->push_back(':');
    AppendJsonString(l.value, out);
  }
}

}  // namespace espy::http
