#include "dashboard/dashboard.h"

#include <utility>

#include "base/check.h"
#include "dashboard/assets.h"

namespace espy::dashboard {

namespace bhttp = boost::beast::http;

namespace {

const Asset* Find(std::string_view path) {
  for (const Asset& a : EmbeddedAssets()) {
    if (a.path == path) return &a;
  }
  return nullptr;
}

// Whether an If-None-Match header lists `etag` (or is "*").
bool Matches(std::string_view header, std::string_view etag) {
  if (header == "*") return true;
  return header.find(etag) != std::string_view::npos;
}

void Serve(const Asset& asset, const http::Request& req, http::Reply reply) {
  auto inm = req[bhttp::field::if_none_match];
  http::Response res;
  if (Matches(std::string_view(inm.data(), inm.size()), asset.etag)) {
    res = http::Response{bhttp::status::not_modified, 11};
  } else {
    res = http::MakeResponse(http::Status::ok, std::string(asset.bytes), asset.content_type);
    if (req.method() == bhttp::verb::head) {
      res.body().clear();
      res.content_length(asset.bytes.size());
    }
  }
  res.set(bhttp::field::etag, std::string(asset.etag));
  res.set(bhttp::field::cache_control,
          asset.immutable ? "public, max-age=31536000, immutable" : "no-cache");
  res.set("X-Content-Type-Options", "nosniff");
  if (!asset.immutable) {
    // The page talks only to its own origin.
    res.set("Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "connect-src 'self' ws: wss:; frame-ancestors 'none'");
  }
  reply(std::move(res));
}

}  // namespace

void RegisterDashboard(http::Router& router) {
  const std::vector<bhttp::verb> methods = {bhttp::verb::get, bhttp::verb::head};
  for (auto [url, page] : {std::pair<const char*, const char*>{"/", "/"},
                           {"/status", "/status"},
                           {"/status/", "/status"}}) {
    const Asset* asset = Find(page);
    ESPY_CHECK(asset != nullptr) << "the embedded bundle has no page " << page;
    router.Add(url, methods, [asset](const http::Request& req, http::Reply reply) {
      Serve(*asset, req, std::move(reply));
    });
  }
  auto assets = [](const http::Request& req, http::Reply reply) {
    std::string_view target(req.target().data(), req.target().size());
    const Asset* asset = Find(target.substr(0, target.find('?')));
    if (asset == nullptr || !asset->immutable) {
      reply(http::ErrorResponse(http::Status::not_found,
                                "no such dashboard asset (the page may be older than the "
                                "server: reload it)"));
      return;
    }
    Serve(*asset, req, std::move(reply));
  };
  router.AddPrefix("/assets/", methods, assets);
  router.AddPrefix("/status/assets/", methods, assets);
}

}  // namespace espy::dashboard
