// Probe and collector configuration: the `probes:` and `collectors:`
// sections of the YAML config file, validated in full at load. Every error
// names the file, the line, the item and the field, and what it expects.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "model/labels.h"
#include "probe/json_path.h"
#include "re2/re2.h"

namespace YAML {
class Node;
}

namespace espy::probe {

using Headers = std::vector<std::pair<std::string, std::string>>;

// One website or port check. Immutable once loaded; shared by the scheduler
// and reloads.
struct ProbeSpec {
  enum class Kind { kHttp, kTcp };
  std::string name;  // unique among probes; the `probe` label
  Kind kind = Kind::kHttp;
  std::string target;  // the URL (http) or host:port (tcp); the `instance` label
  std::chrono::milliseconds interval{30'000};
  std::chrono::milliseconds timeout{10'000};
  std::vector<model::Label> labels;  // extra labels on every result series

  // HTTP
  std::string method = "GET";
  Headers headers;
  std::string body;
  std::vector<int> valid_status_codes;  // empty: any 2xx
  std::vector<std::shared_ptr<const RE2>> body_must_match;
  std::vector<std::shared_ptr<const RE2>> body_must_not_match;
  bool follow_redirects = true;
  bool tls_verify = true;

  // TCP
  bool tls = false;                   // TLS handshake after connecting
  std::string send;                   // written once connected
  std::shared_ptr<const RE2> expect;  // must match what the peer sends back

  bool StatusValid(int code) const;
};

// Turns one JSON path's matches into samples of one metric.
struct Extraction {
  std::string metric;
  JsonPath path;                  // absolute: "$.data[*]"
  std::optional<JsonPath> value;  // relative to each match: ".price"
  // Label values: a literal, the key or index matched by the Nth wildcard of
  // `path` ("$1"), or a field of the match (".symbol").
  struct LabelSource {
    enum class Kind { kLiteral, kCapture, kField };
    std::string name;
    Kind kind = Kind::kLiteral;
    std::string literal;
    int capture = 0;  // 1-based
    std::optional<JsonPath> field;
  };
  std::vector<LabelSource> labels;
};

// A JSON API polled on a schedule.
struct CollectorSpec {
  std::string name;          // unique; the `collector` label
  std::string url;           // with ${VAR} already substituted: never log it
  std::string url_template;  // as written, for logs
  std::string method = "GET";
  Headers headers;  // substituted: never log values
  std::string body;
  std::chrono::milliseconds interval{60'000};
  std::chrono::milliseconds timeout{10'000};
  bool tls_verify = true;
  std::vector<model::Label> labels;  // extra labels on every sample
  std::vector<Extraction> metrics;
};

struct MonitoringConfig {
  std::vector<std::shared_ptr<const ProbeSpec>> probes;
  std::vector<std::shared_ptr<const CollectorSpec>> collectors;
};

// Reads `probes:` and `collectors:` from the YAML file at `path` (other keys
// are the server's settings and are left to config::Resolve). `getenv`
// resolves ${VAR}; an unset variable is an error.
absl::StatusOr<MonitoringConfig> LoadMonitoring(
    const std::string& path, const std::function<const char*(const char*)>& getenv = nullptr);
absl::StatusOr<MonitoringConfig> ParseMonitoring(
    const YAML::Node& root, const std::string& path,
    const std::function<const char*(const char*)>& getenv = nullptr);

// A probe for `target` given on the command line: an http(s) URL, or
// host:port for TCP. Defaults otherwise.
absl::StatusOr<std::shared_ptr<const ProbeSpec>> ProbeForTarget(const std::string& target);

}  // namespace espy::probe
