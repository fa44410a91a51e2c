// Small JSON endpoints the dashboard browses with: metric names, label names
// and values (autocomplete), series lists (pickers), and an overview of the
// server's state.
//   GET /v1/names?q=&limit=            ["cpu", "mem"]   (q: case-insensitive substring)
//   GET /v1/labels?name=               ["host", "region"]  (of that metric's series)
//   GET /v1/label_values?label=&name=  ["a", "b"]
//   GET /v1/series?name=&match=&limit= [{"name": "cpu", "host": "a"}, ...]
//   GET /v1/overview                   {"series": N, "samples_committed": N, ...}
#pragma once

#include <string>

#include "http/router.h"
#include "storage/db.h"
#include "stream/hub.h"

namespace espy::http {

struct BrowseOptions {
  const storage::Db* db = nullptr;   // must outlive the router
  const stream::Hub* hub = nullptr;  // optional; must outlive the router
  std::string data_dir;              // its size is reported as disk use
  size_t max_results = 10'000;       // names, values, series per answer
};

void RegisterBrowse(Router& router, const BrowseOptions& options);

}  // namespace espy::http
