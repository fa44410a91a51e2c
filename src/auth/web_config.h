// The web config file Prometheus, Alertmanager and the exporters share
// (the exporter-toolkit format, `--web-config-file`): TLS settings, extra
// response headers and basic-auth users. Parsed and validated as
// `promtool check web-config` does, so one file serves both.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace espy::auth {

// tls_server_config. Paths are resolved against the file's directory.
struct TlsServerConfig {
  std::string cert_file;
  std::string key_file;
  std::string client_auth_type;  // "" is NoClientCert
  std::string client_ca_file;
  std::vector<std::string> cipher_suites;  // Go's names, TLS 1.2 only
  std::vector<std::string> curve_preferences;
  std::string min_version = "TLS12";
  std::string max_version = "TLS13";
  bool prefer_server_cipher_suites = true;

  // The toolkit serves TLS when any of these four is set; the version and
  // cipher settings alone do not turn it on.
  bool enabled() const {
    return !cert_file.empty() || !key_file.empty() || !client_auth_type.empty() ||
           !client_ca_file.empty();
  }
};

struct WebConfig {
  TlsServerConfig tls;
  bool http2 = true;  // Espy speaks HTTP/1.1 only; kept for the file's sake
  // http_server_config.headers: added to every response, in file order.
  std::vector<std::pair<std::string, std::string>> headers;
  // basic_auth_users: user -> bcrypt hash, in file order. Empty: no auth.
  std::vector<std::pair<std::string, std::string>> users;
};

// Parses `text`, the contents of the file `name` (for messages) in
// directory `dir` (for relative paths). Refuses what promtool refuses:
// unknown or repeated keys, wrong types, hashes that are not bcrypt,
// headers other than the five security headers (with their allowed values),
// and TLS settings that do not load (missing cert or key, unreadable files,
// unknown versions, ciphers, curves or client auth types).
absl::StatusOr<WebConfig> ParseWebConfig(std::string_view text, std::string_view name,
                                         std::string_view dir);

// Reads and parses the file at `path`.
absl::StatusOr<WebConfig> LoadWebConfig(const std::string& path);

}  // namespace espy::auth
