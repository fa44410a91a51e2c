// Config: the server's settings, merged flag > ESPY_* environment variable >
// YAML config file > default, then validated. A bad setting names itself and
// what it expects.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/log.h"
#include "spdlog/common.h"
#include "storage/tier/rollup.h"
#include "storage/wal/wal.h"
#include "yaml-cpp/yaml.h"

namespace espy::config {

// Validated settings for `espy serve`.
struct ServeConfig {
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 5000;  // 0: any free port (logged at start)
  std::string data_dir = "./espy-data";
  // batch: group commit, one fdatasync shared by concurrent writers (safe,
  // fast); always: fdatasync per batch (safe, slower); never: the OS decides
  // (fastest; a power loss may drop acknowledged writes).
  storage::wal::FsyncPolicy fsync = storage::wal::FsyncPolicy::kBatch;
  // Data older than this is dropped (enforced once blocks exist on disk), and
  // samples already older are refused at write time; 0 keeps data forever,
  // as a default must: dropping what a user just wrote is their choice.
  std::chrono::milliseconds retention{0};
  // Downsampling tiers, e.g. "5m:30d,1h:1y"; empty: raw samples until the
  // retention.
  std::vector<storage::tier::TierSpec> downsampling;
  std::string graphite_listen;  // empty: Graphite listener off
  std::string graphite_host;    // graphite_listen split, when set
  uint16_t graphite_port = 0;
  spdlog::level::level_enum log_level = spdlog::level::info;
  base::LogFormat log_format = base::LogFormat::kLogfmt;
  bool access_log = false;
  int threads = 0;                        // HTTP threads; 0 = one per core
  uint64_t max_body_bytes = 64ull << 20;  // larger request bodies get 413
  std::chrono::milliseconds idle_timeout{120'000};
  std::chrono::milliseconds io_timeout{30'000};
  // Series limits; 0: none. A batch that would pass one is refused (429).
  uint64_t max_series = 0;
  uint64_t max_new_series_per_minute = 0;
  // PromQL limits, as Prometheus's --query.* flags.
  std::chrono::milliseconds query_timeout{120'000};
  uint64_t query_max_samples = 50'000'000;
  int query_max_concurrency = 0;                     // query threads; 0 = one per core
  uint64_t query_cache_bytes = 64ull << 20;          // range-query result cache; 0 = off
  uint64_t ingest_series_cache_bytes = 64ull << 20;  // ingest::SeriesCache; 0 = off
  std::chrono::milliseconds query_lookback_delta{300'000};
  // Live stream limits.
  uint64_t stream_max_connections = 1'000;
  uint64_t stream_queue_points = 10'000;
  // Serve /api/v1/admin/tsdb/* (deleting series). Off by default, as
  // Prometheus: Espy has no auth, so anyone reaching the listener could delete.
  bool enable_admin_api = false;
  // The exporter-toolkit web config file (auth/web_config.h); "" for none.
  // Read by the server at start and on reload.
  std::string web_config_file;

  bool operator==(const ServeConfig&) const = default;
};

// One setting as the user can give it. Names are the long flag without
// dashes ("data-dir"); the environment variable is ESPY_DATA_DIR (EnvName);
// the YAML key is data-dir (or data_dir).
struct Setting {
  std::string name;
  std::string type;  // as --help shows it: DURATION, BYTES, INT, BOOL, HOST:PORT, a|b|c, ...
  std::string help;
  std::string default_value;
};
const std::vector<Setting>& ServeSettings();

// A top-level key of the config file that holds a section of its own rather
// than a setting.
struct Section {
  std::string name;
  bool read;  // false: accepted, so one file can carry it, but nothing reads it yet
  std::string help;
};
const std::vector<Section>& ConfigSections();

// The environment variable of a setting: "data-dir" -> "ESPY_DATA_DIR".
std::string EnvName(const std::string& setting);

// docs/configuration.md: every setting's flag, environment variable, config
// file key, type and default, and the file's sections, as Markdown.
std::string ReferenceMarkdown();

// The end of `espy serve --help`: what the config file holds, its sections,
// and where the full reference is.
std::string ConfigFileHelp();

// Raw values as strings, keyed by setting name, from whichever source won.
struct RawSettings {
  std::vector<std::pair<std::string, std::string>> values;  // name -> value
  std::string config_file;                                  // "" if none
};

// Fills in settings missing from `raw` from the YAML file named by
// raw.config_file (errors name the file, line and key), then validates all.
absl::StatusOr<ServeConfig> Resolve(const RawSettings& raw);

// Parses the YAML file at `path`; errors name the file (and the line of a
// syntax error).
absl::StatusOr<YAML::Node> LoadYamlFile(const std::string& path);

// Downsampling tiers as --downsampling takes them: comma-separated
// RESOLUTION:AGE pairs, both durations, each tier coarser and older than
// the one before ("5m:30d,1h:1y"); "" for none.
absl::StatusOr<std::vector<storage::tier::TierSpec>> ParseTiers(const std::string& text);

// Durations as Prometheus writes them: 90d, 1h30m, 2w, 1y, 500ms.
absl::StatusOr<std::chrono::milliseconds> ParseDuration(const std::string& text);

}  // namespace espy::config
