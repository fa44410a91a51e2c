#include "http/stream_handler.h"

#include <cmath>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/status_macros.h"
#include "boost/asio/post.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http/write.hpp"
#include "boost/beast/websocket.hpp"
#include "boost/json.hpp"
#include "boost/url/parse.hpp"
#include "fmt/format.h"
#include "model/timestamp.h"
#include "query/promql/parser.h"

namespace espy::http {

namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
namespace net = boost::asio;
namespace json = boost::json;

namespace {

struct SubscriptionRequest {
  std::string id;  // the id's JSON text, as the client wrote it
  std::vector<model::Matcher> matchers;
  std::optional<int64_t> since;
};

absl::Status AddLabelFilter(std::string name, std::string value, std::vector<model::Matcher>* out) {
  if (name.empty()) return absl::InvalidArgumentError("empty label name in filter");
  if (value.empty()) {
    return absl::InvalidArgumentError(fmt::format("label filter \"{}\" needs a value", name));
  }
  auto m = model::Matcher::Make(model::MatchType::kEqual, std::move(name), std::move(value));
  if (!m.ok()) return m.status();
  out->push_back(*std::move(m));
  return absl::OkStatus();
}

absl::Status AddSelector(std::string_view match, std::vector<model::Matcher>* out) {
  auto matchers = query::promql::ParseMetricSelector(match);
  if (!matchers.ok()) {
    return absl::InvalidArgumentError(
        fmt::format("\"match\": {}", std::string(matchers.status().message())));
  }
  for (model::Matcher& m : *matchers) out->push_back(std::move(m));
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ParseSince(std::string_view text) {
  auto t = model::ParseTimestamp(text);
  if (!t.ok()) {
    return absl::InvalidArgumentError(
        fmt::format("\"since\": {}", std::string(t.status().message())));
  }
  return t;
}

std::string JsonString(std::string_view s) {
  std::string out;
  AppendJsonString(s, &out);
  return out;
}

// The subscription a URL asks for, if any: name=, match=, id=, since=, and
// any other parameter as a label filter.
absl::StatusOr<std::optional<SubscriptionRequest>> ParseUrlSubscription(const Request& req) {
  auto url = boost::urls::parse_origin_form(
      boost::core::string_view(req.target().data(), req.target().size()));
  if (!url) return absl::InvalidArgumentError("malformed request target");
  SubscriptionRequest sub;
  sub.id = JsonString("url");
  bool selected = false;
  for (const auto& param : url->params()) {
    std::string key = param.key, value = param.has_value ? std::string(param.value) : "";
    if (key == "id") {
      sub.id = JsonString(value);
    } else if (key == "since") {
      ESPY_ASSIGN_OR_RETURN(int64_t since, ParseSince(value));
      sub.since = since;
    } else if (key == "match") {
      ESPY_RETURN_IF_ERROR(AddSelector(value, &sub.matchers));
      selected = true;
    } else {
      ESPY_RETURN_IF_ERROR(AddLabelFilter(
          key == "name" ? std::string(model::kMetricNameLabel) : key, value, &sub.matchers));
      selected = true;
    }
  }
  if (!selected) {
    if (sub.since) return absl::InvalidArgumentError("\"since\" given without a subscription");
    return std::nullopt;
  }
  return sub;
}

// {"name": ..., "labels": {...}, "match": ..., "since": ...}
absl::StatusOr<SubscriptionRequest> ParseJsonSubscription(const json::value& v, std::string id) {
  const json::object* obj = v.if_object();
  if (obj == nullptr) {
    return absl::InvalidArgumentError(
        "\"subscribe\": want an object with \"name\", \"labels\", \"match\" or \"since\"");
  }
  SubscriptionRequest sub;
  sub.id = std::move(id);
  for (const auto& [key, value] : *obj) {
    if (key == "name") {
      if (!value.is_string()) return absl::InvalidArgumentError("\"name\": want a string");
      ESPY_RETURN_IF_ERROR(AddLabelFilter(std::string(model::kMetricNameLabel),
                                          std::string(value.get_string()), &sub.matchers));
    } else if (key == "labels") {
      if (!value.is_object()) {
        return absl::InvalidArgumentError("\"labels\": want an object of label: value strings");
      }
      for (const auto& [name, lv] : value.get_object()) {
        if (!lv.is_string()) {
          return absl::InvalidArgumentError(
              fmt::format("\"labels\".\"{}\": want a string", std::string(name)));
        }
        ESPY_RETURN_IF_ERROR(
            AddLabelFilter(std::string(name), std::string(lv.get_string()), &sub.matchers));
      }
    } else if (key == "match") {
      if (!value.is_string()) return absl::InvalidArgumentError("\"match\": want a string");
      ESPY_RETURN_IF_ERROR(AddSelector(std::string(value.get_string()), &sub.matchers));
    } else if (key == "since") {
      if (value.is_string()) {
        ESPY_ASSIGN_OR_RETURN(int64_t since, ParseSince(std::string(value.get_string())));
        sub.since = since;
      } else if (value.is_number()) {
        auto ms = model::EpochSecondsToMillis(value.to_number<double>());
        if (!ms.ok()) {
          return absl::InvalidArgumentError(
              fmt::format("\"since\": {}", std::string(ms.status().message())));
        }
        sub.since = *ms;
      } else if (!value.is_null()) {
        return absl::InvalidArgumentError("\"since\": want a timestamp string or epoch seconds");
      }
    } else {
      return absl::InvalidArgumentError(
          fmt::format("\"subscribe\": unknown field \"{}\" (want name, labels, match, since)",
                      std::string(key)));
    }
  }
  if (sub.matchers.empty()) {
    return absl::InvalidArgumentError(
        "\"subscribe\": give at least one of \"name\", \"labels\" or \"match\"");
  }
  return sub;
}

// Points as a JSON array of the objects POST /v1/metrics takes.
std::string RenderPoints(const std::vector<stream::Point>& points) {
  std::string out;
  out.reserve(points.size() * 80 + 2);
  out.push_back('[');
  for (size_t i = 0; i < points.size(); ++i) {
    const stream::Point& p = points[i];
    if (i > 0) out.push_back(',');
    out.append("{\"name\":");
    AppendJsonString(p.labels->MetricName(), &out);
    out.append(",\"value\":");
    AppendJsonValue(p.value, &out);
    out.append(",\"ts\":\"");
    model::AppendTimestamp(p.ts, &out);
    out.push_back('"');
    AppendLabelFields(*p.labels, &out);
    out.push_back('}');
  }
  out.push_back(']');
  return out;
}

}  // namespace

struct StreamHandler::Registry {
  absl::Mutex mu;
  bool closing ABSL_GUARDED_BY(mu) = false;
  absl::flat_hash_map<Session*, std::weak_ptr<Session>> sessions ABSL_GUARDED_BY(mu);
};

// One client. Runs on its connection's strand; every member is touched only
// there (the hub's wake callback posts to it).
class StreamHandler::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(beast::tcp_stream stream, Request req, const StreamOptions& options,
          std::shared_ptr<Registry> registry)
      : ws_(std::move(stream)),
        req_(std::move(req)),
        options_(options),
        registry_(std::move(registry)) {}

  ~Session() {
    conn_.reset();  // unsubscribes before the registry forgets us
    absl::MutexLock lock(&registry_->mu);
    registry_->sessions.erase(this);
  }

  void Run() {
    {
      absl::MutexLock lock(&registry_->mu);
      if (registry_->closing) return Refuse(Status::service_unavailable, "server shutting down");
      registry_->sessions.emplace(this, weak_from_this());
    }
    auto initial = ParseUrlSubscription(req_);
    if (!initial.ok()) return Refuse(Status::bad_request, std::string(initial.status().message()));
    auto conn = options_.hub->Connect([weak = weak_from_this(), ex = ws_.get_executor()] {
      net::post(ex, [weak] {
        if (auto self = weak.lock()) self->MaybeWrite();
      });
    });
    if (!conn.ok())
      return Refuse(Status::service_unavailable, std::string(conn.status().message()));
    conn_ = std::move(*conn);

    ws_.set_option(websocket::stream_base::timeout{options_.handshake_timeout,
                                                   options_.idle_timeout,
                                                   /*keep_alive_pings=*/true});
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(beast::http::field::server, "espy"); }));
    ws_.read_message_max(options_.max_message_bytes);
    ws_.auto_fragment(false);  // one frame per message: fewer headers, simpler clients
    ws_.async_accept(req_,
                     [self = shared_from_this(), initial = std::move(*initial)](
                         beast::error_code ec) mutable { self->OnAccept(ec, std::move(initial)); });
  }

  // Server shutdown, from any thread.
  void PostGoingAway() {
    net::post(ws_.get_executor(), [self = shared_from_this()] {
      self->RequestClose(websocket::close_code::going_away, "server shutting down");
    });
  }

  // Closes with `code` once the write in flight (if any) is done.
  void RequestClose(websocket::close_code code, std::string reason) {
    if (close_requested_ || !accepted_) return;
    close_requested_ = true;
    close_reason_ = websocket::close_reason(code, reason);
    outbox_.clear();
    if (!writing_) DoClose();
  }

 private:
  void Refuse(Status status, std::string_view message) {
    auto res = std::make_shared<Response>(ErrorResponse(status, message));
    res->set(beast::http::field::server, "espy");
    res->keep_alive(false);
    beast::get_lowest_layer(ws_).expires_after(options_.handshake_timeout);
    beast::http::async_write(ws_.next_layer(), *res,
                             [self = shared_from_this(), res](beast::error_code, size_t) {
                               beast::error_code ignored;
                               beast::get_lowest_layer(self->ws_).socket().shutdown(
                                   net::ip::tcp::socket::shutdown_send, ignored);
                             });
  }

  void OnAccept(beast::error_code ec, std::optional<SubscriptionRequest> initial) {
    if (ec) return;  // handshake failed or timed out: the session ends
    accepted_ = true;
    req_ = {};
    {
      absl::MutexLock lock(&registry_->mu);
      if (registry_->closing) {
        RequestClose(websocket::close_code::going_away, "server shutting down");
        return;
      }
    }
    if (initial) Subscribe(std::move(*initial));
    Read();
    MaybeWrite();
  }

  void Subscribe(SubscriptionRequest sub) {
    std::string id = sub.id;
    auto result = conn_->Subscribe(sub.id, std::move(sub.matchers), sub.since);
    if (!result.ok()) return SendError(std::string(result.status().message()), id);
    outbox_.push_back(fmt::format("{{\"subscribed\":{},\"backfilled\":{},\"truncated\":{}}}", id,
                                  result->backfilled, result->truncated));
  }

  void SendError(std::string_view message, std::string_view id_json) {
    std::string msg = "{\"error\":";
    AppendJsonString(message, &msg);
    if (!id_json.empty()) {
      msg += ",\"id\":";
      msg += id_json;
    }
    msg += "}";
    outbox_.push_back(std::move(msg));
  }

  void Read() {
    ws_.async_read(buffer_,
                   [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec) return;  // closed (by either side), timed out, or too big: Beast has answered
    if (!ws_.got_text()) {
      RequestClose(websocket::close_code::unknown_data, "binary messages are not accepted");
      return;
    }
    std::string text = beast::buffers_to_string(buffer_.data());
    buffer_.consume(buffer_.size());
    HandleMessage(text);
    if (close_requested_) return;
    Read();
    MaybeWrite();
  }

  void HandleMessage(const std::string& text) {
    json::error_code jec;
    json::value msg = json::parse(text, jec);
    if (jec || !msg.is_object()) {
      RequestClose(websocket::close_code::policy_error,
                   "want a JSON object: {\"subscribe\": {...}, \"id\": ...} or "
                   "{\"unsubscribe\": id}");
      return;
    }
    const json::object& obj = msg.get_object();
    if (const json::value* sub = obj.if_contains("subscribe")) {
      std::string id;
      if (const json::value* v = obj.if_contains("id")) {
        if (!v->is_string() && !v->is_number()) {
          return SendError("\"id\": want a string or a number", "");
        }
        id = json::serialize(*v);
      } else {
        id = std::to_string(++auto_id_);
      }
      auto request = ParseJsonSubscription(*sub, id);
      if (!request.ok()) return SendError(std::string(request.status().message()), id);
      Subscribe(*std::move(request));
    } else if (const json::value* unsub = obj.if_contains("unsubscribe")) {
      std::string id = json::serialize(*unsub);
      absl::Status s = conn_->Unsubscribe(id);
      if (!s.ok()) return SendError(std::string(s.message()), id);
      outbox_.push_back(fmt::format("{{\"unsubscribed\":{}}}", id));
    } else {
      SendError("unknown request: want \"subscribe\" or \"unsubscribe\"", "");
    }
  }

  void MaybeWrite() {
    if (writing_ || close_requested_ || !accepted_) return;
    if (outbox_.empty()) {
      stream::Delivery d = conn_->Drain(options_.max_points_per_message);
      if (d.kicked) {
        RequestClose(websocket::close_code::try_again_later,
                     "client too slow: its queue stayed full");
        return;
      }
      if (d.dropped > 0) outbox_.push_back(fmt::format("{{\"dropped\":{}}}", d.dropped));
      if (!d.points.empty()) outbox_.push_back(RenderPoints(d.points));
      if (outbox_.empty()) return;
    }
    writing_ = true;
    current_ = std::move(outbox_.front());
    outbox_.pop_front();
    ws_.text(true);
    ws_.async_write(
        net::buffer(current_),
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnWrite(ec); });
  }

  void OnWrite(beast::error_code ec) {
    writing_ = false;
    current_.clear();
    if (ec) return;
    if (close_requested_) return DoClose();
    MaybeWrite();
  }

  void DoClose() {
    ws_.async_close(close_reason_, [self = shared_from_this()](beast::error_code) {});
  }

  websocket::stream<beast::tcp_stream> ws_;
  Request req_;  // until the handshake is answered
  const StreamOptions& options_;
  std::shared_ptr<Registry> registry_;
  std::unique_ptr<stream::Connection> conn_;
  beast::flat_buffer buffer_;
  std::deque<std::string> outbox_;  // control messages, sent before points
  std::string current_;             // the message being written
  bool accepted_ = false;
  bool writing_ = false;
  bool close_requested_ = false;
  websocket::close_reason close_reason_;
  uint64_t auto_id_ = 0;
};

StreamHandler::StreamHandler(StreamOptions options)
    : options_(std::move(options)), registry_(std::make_shared<Registry>()) {}

StreamHandler::~StreamHandler() = default;

void StreamHandler::Register(Router& router) {
  router.AddWebSocket("/v1/stream", [this](beast::tcp_stream stream, Request req) {
    std::make_shared<Session>(std::move(stream), std::move(req), options_, registry_)->Run();
  });
  // A plain GET (no upgrade) gets an explanation instead of a bare 404.
  router.Add("/v1/stream", {beast::http::verb::get}, [](const Request&, Reply reply) {
    reply(ErrorResponse(Status::upgrade_required,
                        "/v1/stream is a WebSocket endpoint: connect with a WebSocket client"));
  });
}

size_t StreamHandler::CloseAll(std::chrono::milliseconds grace) {
  // Sessions are posted to outside the lock: dropping the last reference
  // here would run a session's destructor, which takes the lock.
  std::vector<std::shared_ptr<Session>> open;
  {
    absl::MutexLock lock(&registry_->mu);
    registry_->closing = true;
    for (auto& [ptr, weak] : registry_->sessions) {
      if (auto session = weak.lock()) open.push_back(std::move(session));
    }
  }
  for (auto& session : open) session->PostGoingAway();
  open.clear();
  absl::MutexLock lock(&registry_->mu);
  registry_->mu.AwaitWithTimeout(
      absl::Condition(
          +[](Registry* r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(r->mu) { return r->sessions.empty(); },
          registry_.get()),
      absl::Milliseconds(static_cast<int64_t>(grace.count())));
  return registry_->sessions.size();
}

size_t StreamHandler::open_sessions() const {
  absl::MutexLock lock(&registry_->mu);
  return registry_->sessions.size();
}

}  // namespace espy::http
