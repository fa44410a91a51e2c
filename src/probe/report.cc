#include "probe/report.h"

#include <algorithm>
#include <cmath>

#include "boost/json/serialize.hpp"
#include "boost/json/value.hpp"
#include "fmt/format.h"

namespace espy::probe {

std::string FormatTable(const std::vector<std::shared_ptr<const ProbeSpec>>& probes,
                        const std::vector<ProbeResult>& results, double now_seconds) {
  struct Row {
    std::string cells[6];
  };
  std::vector<Row> rows;
  rows.push_back({{"TARGET", "RESULT", "STATUS", "TIME", "CERT", "ERROR"}});
  for (size_t i = 0; i < probes.size(); ++i) {
    const ProbeSpec& p = *probes[i];
    const ProbeResult& r = results[i];
    Row row;
    row.cells[0] = p.name == p.target ? p.target : fmt::format("{} ({})", p.name, p.target);
    row.cells[1] = r.success ? "up" : "DOWN";
    row.cells[2] = r.http_status > 0 ? std::to_string(r.http_status) : "-";
    row.cells[3] = fmt::format("{:.0f} ms", r.duration_seconds * 1000);
    row.cells[4] =
        r.cert_expiry_seconds > 0
            ? fmt::format("{:.0f} days", std::floor((r.cert_expiry_seconds - now_seconds) / 86400))
            : "-";
    row.cells[5] = r.success ? "" : fmt::format("{}: {}", r.reason, r.message);
    rows.push_back(std::move(row));
  }
  size_t width[6] = {};
  for (const Row& row : rows) {
    for (int c = 0; c < 6; ++c) width[c] = std::max(width[c], row.cells[c].size());
  }
  std::string out;
  for (const Row& row : rows) {
    std::string line;
    for (int c = 0; c < 6; ++c) {
      line += c == 5 ? row.cells[c] : fmt::format("{:<{}}  ", row.cells[c], width[c]);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string FormatJson(const std::vector<std::shared_ptr<const ProbeSpec>>& probes,
                       const std::vector<ProbeResult>& results) {
  boost::json::array out;
  for (size_t i = 0; i < probes.size(); ++i) {
    const ProbeSpec& p = *probes[i];
    const ProbeResult& r = results[i];
    boost::json::object o;
    o["name"] = p.name;
    o["kind"] = p.kind == ProbeSpec::Kind::kHttp ? "http" : "tcp";
    o["target"] = p.target;
    o["success"] = r.success;
    o["duration_seconds"] = r.duration_seconds;
    o["phases"] = {{"resolve", r.resolve},
                   {"connect", r.connect},
                   {"tls", r.tls},
                   {"processing", r.processing},
                   {"transfer", r.transfer}};
    if (r.http_status > 0) o["http_status"] = r.http_status;
    if (r.cert_expiry_seconds > 0) o["cert_expiry"] = r.cert_expiry_seconds;
    if (!r.success) {
      o["reason"] = r.reason;
      o["error"] = r.message;
    }
    out.push_back(std::move(o));
  }
  return boost::json::serialize(out) + "\n";
}

}  // namespace espy::probe
