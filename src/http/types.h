// The request/response types handlers see, and the helpers that build
// responses. Only http/ maps absl::Status codes to HTTP statuses.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "boost/beast/core/tcp_stream.hpp"
#include "boost/beast/http/message.hpp"
#include "boost/beast/http/string_body.hpp"

namespace espy::http {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;
using Status = boost::beast::http::status;

// Sends the response. Call exactly once, from any thread.
using Reply = std::function<void(Response)>;
// `req` stays valid until `reply` has been called.
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

}  // namespace espy::http
