#include "config/config.h"

#include <cctype>
#include <charconv>
#include <fstream>

#include "fmt/format.h"
#include "yaml-cpp/yaml.h"

namespace espy::config {

const std::vector<Setting>& ServeSettings() {
  static const std::vector<Setting> kSettings = {
      {"listen", "HOST:PORT", "HTTP listen address host:port (port 0 picks a free one)",
       "127.0.0.1:5000"},
      {"data-dir", "PATH", "directory for the WAL and data files", "./espy-data"},
      {"fsync", "batch|always|never",
       "when to fdatasync the WAL: batch (group commit), always, never", "batch"},
      {"retention", "DURATION",
       "how long to keep data, e.g. 90d, 2w, 1y (at least 1h); samples already older are "
       "refused when written; 0 = keep forever",
       "0"},
      {"downsampling", "TIERS",
       "tiers RESOLUTION:AGE,...: after AGE keep RESOLUTION buckets (min, max, sum, count, "
       "last), e.g. 5m:30d,1h:1y; empty: off",
       ""},
      {"graphite-listen", "HOST:PORT", "Graphite plaintext listen address host:port; empty: off",
       ""},
      {"log-level", "debug|info|warn|error", "least severe log lines written", "info"},
      {"log-format", "logfmt|json",
       "log lines as logfmt (ts=... level=... msg=...) or as one JSON object each", "logfmt"},
      {"access-log", "BOOL", "log one line per HTTP request: true or false", "false"},
      {"threads", "INT", "HTTP (and Graphite) I/O threads; 0 = one per core", "0"},
      {"max-body-size", "BYTES", "largest request body accepted, e.g. 64MiB, 512KiB, 1000000",
       "64MiB"},
      {"idle-timeout", "DURATION", "close keep-alive connections idle this long", "2m"},
      {"io-timeout", "DURATION", "longest time to read one request or write one response", "30s"},
      {"max-series", "INT", "most series stored at once; 0 = no limit", "0"},
      {"max-new-series-per-minute", "INT", "most series created per minute; 0 = no limit", "0"},
      {"query-timeout", "DURATION", "longest a PromQL query may run", "2m"},
      {"query-max-samples", "INT", "most samples a PromQL query may hold in memory", "50000000"},
      {"query-max-concurrency", "INT", "PromQL queries run at once (more wait); 0 = one per core",
       "0"},
      {"query-cache-size", "BYTES",
       "memory for cached range-query steps (a dashboard's sliding window), e.g. 64MiB; 0 = off",
       "64MiB"},
      {"query-lookback-delta", "DURATION", "how far back an instant selector looks for a sample",
       "5m"},
      {"ingest-series-cache-size", "BYTES",
       "memory for the series of remote write, Influx and Graphite as spelled on the wire, "
       "e.g. 64MiB; 0 = off",
       "64MiB"},
      {"stream-max-connections", "INT", "most live-stream WebSocket clients", "1000"},
      {"stream-queue-points", "INT", "points queued per live-stream client before dropping",
       "10000"},
      {"enable-admin-api", "BOOL", "serve /api/v1/admin/tsdb/* (delete series): true or false",
       "false"},
      {"web-config-file", "PATH",
       "Prometheus web config file (basic_auth_users, http_server_config); empty: no auth", ""},
  };
  return kSettings;
}

const std::vector<Section>& ConfigSections() {
  static const std::vector<Section> kSections = {
      {"probes", true,
       "website (HTTP/HTTPS) and TCP port checks run on a schedule; see README.md, \"Website "
       "probes and JSON collectors\""},
      {"collectors", true,
       "JSON APIs polled on a schedule, their fields turned into series; see README.md, "
       "\"Website probes and JSON collectors\""},
      {"alerts", false, "reserved for alerting; accepted and not read yet"},
      {"rules", false, "reserved for recording and alerting rules; accepted and not read yet"},
  };
  return kSections;
}

std::string EnvName(const std::string& setting) {
  std::string env = "ESPY_";
  for (char c : setting) env += c == '-' ? '_' : static_cast<char>(std::toupper(c));
  return env;
}

absl::StatusOr<std::vector<storage::tier::TierSpec>> ParseTiers(const std::string& text) {
  std::vector<storage::tier::TierSpec> tiers;
  if (text.empty()) return tiers;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    const std::string item = text.substr(start, comma - start);
    const std::string where = fmt::format("tier {} \"{}\"", tiers.size() + 1, item);
    const size_t colon = item.find(':');
    if (colon == std::string::npos) {
      return absl::InvalidArgumentError(fmt::format("{}: want RESOLUTION:AGE, e.g. 5m:30d", where));
    }
    auto res = ParseDuration(item.substr(0, colon));
    if (!res.ok()) {
      return absl::InvalidArgumentError(
          fmt::format("{}: resolution: {}", where, std::string(res.status().message())));
    }
    auto age = ParseDuration(item.substr(colon + 1));
    if (!age.ok()) {
      return absl::InvalidArgumentError(
          fmt::format("{}: age: {}", where, std::string(age.status().message())));
    }
    if (res->count() < 1000 || age->count() <= 0) {
      return absl::InvalidArgumentError(
          fmt::format("{}: want a resolution of at least 1s and an age above 0", where));
    }
    if (!tiers.empty() &&
        (res->count() <= tiers.back().resolution_ms || age->count() <= tiers.back().after_ms)) {
      return absl::InvalidArgumentError(fmt::format(
          "{}: want a coarser resolution and a greater age than the tier before", where));
    }
    tiers.push_back({res->count(), age->count()});
    start = comma + 1;
  }
  return tiers;
}

absl::StatusOr<std::chrono::milliseconds> ParseDuration(const std::string& text) {
  auto bad = [&] {
    return absl::InvalidArgumentError(
        fmt::format("want a duration like 90d, 1h30m, 2w, 1y or 500ms, got \"{}\"", text));
  };
  if (text.empty()) return bad();
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    int64_t n = 0;
    auto [ptr, ec] = std::from_chars(text.data() + i, text.data() + text.size(), n);
    if (ec != std::errc() || n < 0) return bad();
    i = ptr - text.data();
    size_t unit_end = i;
    while (unit_end < text.size() && std::isalpha(static_cast<unsigned char>(text[unit_end]))) {
      ++unit_end;
    }
    std::string unit = text.substr(i, unit_end - i);
    i = unit_end;
    int64_t ms;
    if (unit == "ms")
      ms = 1;
    else if (unit == "s")
      ms = 1000;
    else if (unit == "m")
      ms = 60'000;
    else if (unit == "h")
      ms = 3'600'000;
    else if (unit == "d")
      ms = 86'400'000;
    else if (unit == "w")
      ms = 7 * 86'400'000ll;
    else if (unit == "y")
      ms = 365 * 86'400'000ll;
    else
      return bad();
    if (n > INT64_MAX / ms / 2) return bad();
    total += n * ms;
  }
  return std::chrono::milliseconds(total);
}

namespace {

absl::StatusOr<uint64_t> ParseBytes(const std::string& text) {
  uint64_t n = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  std::string unit(ptr, text.data() + text.size());
  uint64_t mult = 0;
  if (unit.empty() || unit == "B")
    mult = 1;
  else if (unit == "KiB" || unit == "KB" || unit == "k")
    mult = 1ull << 10;
  else if (unit == "MiB" || unit == "MB" || unit == "M")
    mult = 1ull << 20;
  else if (unit == "GiB" || unit == "GB" || unit == "G")
    mult = 1ull << 30;
  if (ec != std::errc() || ptr == text.data() || mult == 0 || n > (UINT64_MAX >> 31)) {
    return absl::InvalidArgumentError(
        fmt::format("want a size like 64MiB, 512KiB or 1000000, got \"{}\"", text));
  }
  return n * mult;
}

absl::Status SplitHostPort(const std::string& text, std::string* host, uint16_t* port) {
  size_t colon = text.rfind(':');
  auto bad = [&] {
    return absl::InvalidArgumentError(
        fmt::format("want host:port such as 127.0.0.1:5000, got \"{}\"", text));
  };
  if (colon == std::string::npos || colon == 0) return bad();
  *host = text.substr(0, colon);
  if (host->size() > 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  unsigned p = 0;
  const char* begin = text.data() + colon + 1;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(begin, end, p);
  if (ec != std::errc() || ptr != end || begin == end || p > 65535) return bad();
  if (*host == "localhost") *host = "127.0.0.1";
  *port = static_cast<uint16_t>(p);
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> ParseCount(const std::string& text, uint64_t min, uint64_t max) {
  uint64_t n = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty() || n < min || n > max) {
    return absl::InvalidArgumentError(
        fmt::format("want a whole number from {} to {}, got \"{}\"", min, max, text));
  }
  return n;
}

bool KnownSetting(const std::string& name) {
  for (const Setting& s : ServeSettings()) {
    if (s.name == name) return true;
  }
  return false;
}

// Sections other parts of the server read from the same file; accepted
// here so one file serves every part of the server.
bool KnownSection(const std::string& name) {
  for (const Section& s : ConfigSections()) {
    if (s.name == name) return true;
  }
  return false;
}

absl::Status Apply(const std::string& name, const std::string& value, ServeConfig* c) {
  auto wrap = [&](const absl::Status& s) {
    return absl::InvalidArgumentError(fmt::format("--{}: {}", name, std::string(s.message())));
  };
  if (name == "listen") {
    if (absl::Status s = SplitHostPort(value, &c->listen_host, &c->listen_port); !s.ok()) {
      return wrap(s);
    }
  } else if (name == "web-config-file") {
    c->web_config_file = value;
  } else if (name == "data-dir") {
    if (value.empty()) return wrap(absl::InvalidArgumentError("want a directory path, got \"\""));
    c->data_dir = value;
  } else if (name == "fsync") {
    if (value == "batch")
      c->fsync = storage::wal::FsyncPolicy::kBatch;
    else if (value == "always")
      c->fsync = storage::wal::FsyncPolicy::kAlways;
    else if (value == "never")
      c->fsync = storage::wal::FsyncPolicy::kNever;
    else
      return wrap(absl::InvalidArgumentError(
          fmt::format("want batch, always or never, got \"{}\"", value)));
  } else if (name == "retention") {
    if (value == "0") {
      c->retention = std::chrono::milliseconds(0);
      return absl::OkStatus();
    }
    auto d = ParseDuration(value);
    if (!d.ok()) return wrap(d.status());
    if (d->count() != 0 && *d < std::chrono::hours(1)) {
      return wrap(absl::InvalidArgumentError(
          fmt::format("want >= 1h, or 0 to keep data forever, got \"{}\"", value)));
    }
    c->retention = *d;
  } else if (name == "downsampling") {
    auto tiers = ParseTiers(value);
    if (!tiers.ok()) return wrap(tiers.status());
    c->downsampling = *std::move(tiers);
  } else if (name == "graphite-listen") {
    if (!value.empty()) {
      if (absl::Status s = SplitHostPort(value, &c->graphite_host, &c->graphite_port); !s.ok()) {
        return wrap(s);
      }
    }
    c->graphite_listen = value;
  } else if (name == "log-level") {
    if (value == "debug")
      c->log_level = spdlog::level::debug;
    else if (value == "info")
      c->log_level = spdlog::level::info;
    else if (value == "warn")
      c->log_level = spdlog::level::warn;
    else if (value == "error")
      c->log_level = spdlog::level::err;
    else
      return wrap(absl::InvalidArgumentError(
          fmt::format("want debug, info, warn or error, got \"{}\"", value)));
  } else if (name == "log-format") {
    auto format = base::ParseLogFormat(value);
    if (!format.ok()) return wrap(format.status());
    c->log_format = *format;
  } else if (name == "access-log" || name == "enable-admin-api") {
    bool& flag = name == "access-log" ? c->access_log : c->enable_admin_api;
    if (value == "true" || value == "1")
      flag = true;
    else if (value == "false" || value == "0")
      flag = false;
    else
      return wrap(absl::InvalidArgumentError(fmt::format("want true or false, got \"{}\"", value)));
  } else if (name == "threads") {
    int n = -1;
    auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc() || ptr != value.data() + value.size() || n < 0 || n > 1024) {
      return wrap(absl::InvalidArgumentError(
          fmt::format("want a number of threads from 0 to 1024, got \"{}\"", value)));
    }
    c->threads = n;
  } else if (name == "max-body-size") {
    auto b = ParseBytes(value);
    if (!b.ok()) return wrap(b.status());
    if (*b < 1024) return wrap(absl::InvalidArgumentError("want at least 1KiB"));
    c->max_body_bytes = *b;
  } else if (name == "query-cache-size" || name == "ingest-series-cache-size") {
    auto b = ParseBytes(value);
    if (!b.ok()) return wrap(b.status());
    (name == "query-cache-size" ? c->query_cache_bytes : c->ingest_series_cache_bytes) = *b;
  } else if (name == "idle-timeout" || name == "io-timeout") {
    auto d = ParseDuration(value);
    if (!d.ok()) return wrap(d.status());
    if (d->count() <= 0) return wrap(absl::InvalidArgumentError("want a positive duration"));
    (name == "idle-timeout" ? c->idle_timeout : c->io_timeout) = *d;
  } else if (name == "max-series" || name == "max-new-series-per-minute") {
    auto n = ParseCount(value, 0, UINT64_MAX >> 1);
    if (!n.ok()) return wrap(n.status());
    (name == "max-series" ? c->max_series : c->max_new_series_per_minute) = *n;
  } else if (name == "query-timeout" || name == "query-lookback-delta") {
    auto d = ParseDuration(value);
    if (!d.ok()) return wrap(d.status());
    if (d->count() <= 0) return wrap(absl::InvalidArgumentError("want a positive duration"));
    (name == "query-timeout" ? c->query_timeout : c->query_lookback_delta) = *d;
  } else if (name == "query-max-samples") {
    auto n = ParseCount(value, 1, UINT64_MAX >> 2);
    if (!n.ok()) return wrap(n.status());
    c->query_max_samples = *n;
  } else if (name == "query-max-concurrency") {
    auto n = ParseCount(value, 0, 1024);
    if (!n.ok()) return wrap(n.status());
    c->query_max_concurrency = static_cast<int>(*n);
  } else if (name == "stream-max-connections" || name == "stream-queue-points") {
    auto n = ParseCount(value, 1, 100'000'000);
    if (!n.ok()) return wrap(n.status());
    (name == "stream-max-connections" ? c->stream_max_connections : c->stream_queue_points) = *n;
  } else {
    return absl::InvalidArgumentError(fmt::format("unknown setting \"{}\"", name));
  }
  return absl::OkStatus();
}

// Settings from the YAML file, as strings, for the names not given already.
absl::Status ReadYaml(const std::string& path,
                      std::vector<std::pair<std::string, std::string>>* out) {
  absl::StatusOr<YAML::Node> loaded = LoadYamlFile(path);
  if (!loaded.ok()) return loaded.status();
  const YAML::Node& root = *loaded;
  if (root.IsNull()) return absl::OkStatus();
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(
        fmt::format("config file {}: want a mapping of setting: value at the top level", path));
  }
  for (const auto& kv : root) {
    std::string key = kv.first.as<std::string>();
    std::string name = key;
    for (char& c : name) {
      if (c == '_') c = '-';
    }
    int line = kv.first.Mark().line + 1;
    if (KnownSection(name)) continue;
    if (!KnownSetting(name)) {
      return absl::InvalidArgumentError(
          fmt::format("config file {} line {}: unknown setting \"{}\"", path, line, key));
    }
    if (!kv.second.IsScalar()) {
      return absl::InvalidArgumentError(fmt::format(
          "config file {} line {}: setting \"{}\" wants a single value", path, line, key));
    }
    out->emplace_back(name, kv.second.as<std::string>());
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<YAML::Node> LoadYamlFile(const std::string& path) {
  try {
    return YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return absl::InvalidArgumentError(fmt::format("--config: cannot read file \"{}\"", path));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        fmt::format("config file {} line {}: {}", path, e.mark.line + 1, e.msg));
  }
}

absl::StatusOr<ServeConfig> Resolve(const RawSettings& raw) {
  std::vector<std::pair<std::string, std::string>> values;
  if (!raw.config_file.empty()) {
    std::vector<std::pair<std::string, std::string>> from_file;
    if (absl::Status s = ReadYaml(raw.config_file, &from_file); !s.ok()) return s;
    for (auto& [name, value] : from_file) {
      bool overridden = false;
      for (const auto& [n, v] : raw.values) overridden |= (n == name);
      if (!overridden) values.emplace_back(name, value);
    }
  }
  values.insert(values.end(), raw.values.begin(), raw.values.end());
  ServeConfig config;
  for (const auto& [name, value] : values) {
    if (absl::Status s = Apply(name, value, &config); !s.ok()) return s;
  }
  // Without a retention (0) every tier keeps its data forever.
  for (const storage::tier::TierSpec& t : config.downsampling) {
    if (config.retention.count() > 0 && t.after_ms >= config.retention.count()) {
      return absl::InvalidArgumentError(fmt::format(
          "--downsampling: a tier's age ({}ms) must be below --retention ({}ms), or it would "
          "never hold data",
          t.after_ms, config.retention.count()));
    }
  }
  return config;
}

}  // namespace espy::config
