// The dashboard's files, embedded into the binary at build time
// (src/dashboard/embed.cmake generates assets.cc from the esbuild bundle of web/).
#pragma once

#include <span>
#include <string_view>

namespace espy::dashboard {

struct Asset {
  std::string_view path;  // "/", "/status", "/assets/app-<hash>.js", "/status/assets/..."
  std::string_view content_type;
  std::string_view bytes;
  std::string_view etag;  // quoted, for ETag / If-None-Match
  bool immutable;         // hashed URL: cache for a year
};

// Every embedded file. Thread-safe (static data).
std::span<const Asset> EmbeddedAssets();

}  // namespace espy::dashboard
