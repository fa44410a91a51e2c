#include "http/router.h"

#include <algorithm>

#include "fmt/format.h"

namespace espy::http {

namespace bhttp = boost::beast::http;

void Router::Add(std::string path, std::vector<bhttp::verb> methods, Handler handler) {
  routes_.push_back({std::move(path), false, std::move(methods), std::move(handler)});
}

void Router::AddPrefix(std::string prefix, std::vector<bhttp::verb> methods, Handler handler) {
  routes_.push_back({std::move(prefix), true, std::move(methods), std::move(handler)});
}

void Router::AddWebSocket(std::string path, WebSocketHandler handler) {
  websockets_.emplace_back(std::move(path), std::move(handler));
}

const WebSocketHandler* Router::FindWebSocket(const Request& req) const {
  std::string_view target(req.target().data(), req.target().size());
  std::string_view path = target.substr(0, target.find('?'));
  for (const auto& [p, handler] : websockets_) {
    if (p == path) return &handler;
  }
  return nullptr;
}

const Router::Route* Router::Find(std::string_view path) const {
  const Route* match = nullptr;
  for (const Route& r : routes_) {
    // Exact routes win over prefixes; among prefixes the longest wins.
    if (!r.prefix && r.path == path) return &r;
    if (r.prefix && path.starts_with(r.path) &&
        (match == nullptr || r.path.size() > match->path.size())) {
      match = &r;
    }
  }
  return match;
}

std::string Router::RouteOf(std::string_view target) const {
  const Route* match = Find(target.substr(0, target.find('?')));
  return match == nullptr ? std::string() : match->path;
}

void Router::Dispatch(const Request& req, Reply reply, std::string* route) const {
  std::string_view target(req.target().data(), req.target().size());
  std::string_view path = target.substr(0, target.find('?'));
  const Route* match = Find(path);
  if (match == nullptr) {
    route->clear();
    reply(ErrorResponse(Status::not_found, fmt::format("no such endpoint: {}", path)));
    return;
  }
  *route = match->path;
  if (std::find(match->methods.begin(), match->methods.end(), req.method()) ==
      match->methods.end()) {
    std::string allow;
    for (bhttp::verb v : match->methods) {
      if (!allow.empty()) allow += ", ";
      allow += std::string(bhttp::to_string(v));
    }
    Response res = ErrorResponse(Status::method_not_allowed,
                                 fmt::format("method {} not allowed on {}; allowed: {}",
                                             std::string(req.method_string()), path, allow));
    res.set(bhttp::field::allow, allow);
    reply(std::move(res));
    return;
  }
  match->handler(req, std::move(reply));
}

}  // namespace espy::http
