// Router: path (exact or prefix) -> handler, with the methods each route
// takes; answers 404 and 405 (with Allow) itself.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "http/types.h"

namespace espy::http {

// Thread-compatible: built before the server starts, then only read.
class Router {
 public:
  // Matches `path` exactly. The path also names the route in metrics and
  // access logs ("/v1/metrics"; see Dispatch).
  void Add(std::string path, std::vector<boost::beast::http::verb> methods, Handler handler);
  // Matches every path that starts with `prefix` (the longest prefix wins; an
  // exact route wins over any prefix). The route is named by `prefix`.
  void AddPrefix(std::string prefix, std::vector<boost::beast::http::verb> methods,
                 Handler handler);

  // Upgrade requests (WebSocket) to `path` go to `handler`.
  void AddWebSocket(std::string path, WebSocketHandler handler);
  // The WebSocket handler for the path of `req`, or null.
  const WebSocketHandler* FindWebSocket(const Request& req) const;

  // Runs the matching handler, or replies 404/405. Sets *route to the
  // matched route's name ("" when none), for metrics.
  void Dispatch(const Request& req, Reply reply, std::string* route) const;

  // The name of the route a request target ("/v1/metrics?x=1") would go
  // to, "" when none: for answers the server gives before a handler runs
  // (413), so they are counted under their route.
  std::string RouteOf(std::string_view target) const;

 private:
  struct Route {
    std::string path;
    bool prefix;
    std::vector<boost::beast::http::verb> methods;
    Handler handler;
  };
  // The route serving `path` (no query string), or null.
  const Route* Find(std::string_view path) const;
  std::vector<Route> routes_;
  std::vector<std::pair<std::string, WebSocketHandler>> websockets_;
};

}  // namespace espy::http
