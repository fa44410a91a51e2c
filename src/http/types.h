// The request/response types handlers see, and the helpers that build
// responses. Only http/ maps absl::Status codes to HTTP statuses.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

#include "absl/status/status.h"
#include "boost/beast/core/tcp_stream.hpp"
#include "boost/beast/http/message.hpp"
#include "boost/beast/http/string_body.hpp"
#include "model/labels.h"

namespace espy::http {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;
using Status = boost::beast::http::status;

// The body of a streamed response (see Reply::Stream), written piece by
// piece from one thread. Destroying the writer ends the body.
class BodyWriter {
 public:
  virtual ~BodyWriter() = default;
  // Appends `piece` to the body. May block while earlier pieces wait to be
  // sent. False once the client is gone: stop producing.
  virtual bool Write(std::string piece) = 0;
  // Ends the body; later Writes return false. Idempotent.
  virtual void Finish() = 0;
};

// Answers one request, exactly once, from any thread: either with a whole
// response (operator()) or with a header and a body streamed after it
// (Stream). Copyable; the copies answer the same request.
class Reply {
 public:
  using SendFn = std::function<void(Response)>;
  using StreamFn = std::function<std::unique_ptr<BodyWriter>(Response header)>;

  // Without `stream`, Stream collects the body and sends it whole.
  template <typename F, typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, Reply> &&
                                                    std::is_invocable_v<F&, Response>>>
  Reply(F send, StreamFn stream = nullptr)  // NOLINT: lambdas convert
      : send_(std::move(send)), stream_(std::move(stream)) {}

  void operator()(Response res) const { send_(std::move(res)); }

  // Sends `header` (its body is ignored) and returns the writer of the body,
  // which goes out as it is written: in chunks (Transfer-Encoding: chunked),
  // or to an HTTP/1.0 client until the connection closes.
  std::unique_ptr<BodyWriter> Stream(Response header) const;

 private:
  SendFn send_;
  StreamFn stream_;
};

// `req` stays valid until `reply` has been called, or until the body of
// its Stream has ended.
using Handler = std::function<void(const Request& req, Reply reply)>;

// Takes over a connection whose request asked for a WebSocket upgrade: the
// handler owns the stream from here on (it must accept or refuse the
// upgrade). Runs on the connection's strand.
using WebSocketHandler = std::function<void(boost::beast::tcp_stream stream, Request req)>;

Response MakeResponse(Status status, std::string body,
                      std::string_view content_type = "application/json");
// {"error": message} (plus "item" and "field" for ingest::BadInput errors).
Response ErrorResponse(Status status, std::string_view message);
// The HTTP status for an error status: InvalidArgument 400, NotFound 404,
// ResourceExhausted 429, FailedPrecondition 422, Unavailable 503, else 500.
Status HttpStatusFor(const absl::Status& status);
Response ErrorResponse(const absl::Status& status);

// Appends `s` as a JSON string literal (with quotes) to *out.
void AppendJsonString(std::string_view s, std::string* out);
// Appends `v` as a JSON number; NaN and the infinities, which JSON lacks, as
// the strings "NaN", "+Inf" and "-Inf".
void AppendJsonValue(double v, std::string* out);
// Appends ,"name":"value" for each label but __name__: the label fields of
// a metric object as POST /v1/metrics takes it.
void AppendLabelFields(const model::Labels& labels, std::string* out);

}  // namespace espy::http
