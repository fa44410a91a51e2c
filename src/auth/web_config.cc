#include "auth/web_config.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <fstream>
#include <memory>
#include <set>
#include <sstream>

#include "absl/container/flat_hash_set.h"
#include "auth/bcrypt.h"
#include "base/status_macros.h"
#include "fmt/format.h"
#include "yaml-cpp/yaml.h"

namespace espy::auth {
namespace {

// The names the exporter-toolkit takes: Go's tls.CipherSuites() (TLS 1.2
// suites without known weaknesses, and the TLS 1.3 ones, which Go ignores).
const std::set<std::string, std::less<>>& CipherNames() {
  static const auto* names = new std::set<std::string, std::less<>>{
      "TLS_RSA_WITH_AES_128_CBC_SHA",
      "TLS_RSA_WITH_AES_256_CBC_SHA",
      "TLS_RSA_WITH_AES_128_GCM_SHA256",
      "TLS_RSA_WITH_AES_256_GCM_SHA384",
      "TLS_AES_128_GCM_SHA256",
      "TLS_AES_256_GCM_SHA384",
      "TLS_CHACHA20_POLY1305_SHA256",
      "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
      "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
      "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
      "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
      "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
      "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
      "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
      "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
      "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
      "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
  };
  return *names;
}

bool OneOf(std::string_view value, std::initializer_list<std::string_view> allowed) {
  for (std::string_view a : allowed) {
    if (value == a) return true;
  }
  return false;
}

// Parses one file; every error names the file and line.
class Parser {
 public:
  Parser(std::string_view name, std::string_view dir) : name_(name), dir_(dir) {}

  absl::StatusOr<WebConfig> Parse(std::string_view text) {
    YAML::Node root;
    try {
      root = YAML::Load(std::string(text));
    } catch (const YAML::Exception& e) {
      return Error(e.mark, fmt::format("not valid YAML: {}", e.msg));
    }
    WebConfig c;
    if (root.IsNull()) return c;
    if (!root.IsMap()) return Error(root.Mark(), "want a mapping at the top level");
    absl::Status s = ForEachKey(root, "the file", [&](const std::string& key, const YAML::Node& v) {
      if (key == "tls_server_config") return ParseTls(v, &c.tls);
      if (key == "http_server_config") return ParseHttp(v, &c);
      if (key == "basic_auth_users") return ParseUsers(v, &c.users);
      return Error(v.Mark(), fmt::format("unknown key \"{}\" (want tls_server_config, "
                                         "http_server_config or basic_auth_users)",
                                         key));
    });
    if (!s.ok()) return s;
    if (s = CheckTls(c.tls); !s.ok()) return s;
    return c;
  }

 private:
  absl::Status Error(const YAML::Mark& mark, std::string_view what) const {
    if (mark.is_null()) return absl::InvalidArgumentError(fmt::format("{}: {}", name_, what));
    return absl::InvalidArgumentError(fmt::format("{}:{}: {}", name_, mark.line + 1, what));
  }

  // Calls fn(key, value) for each entry of a mapping (null is empty);
  // refuses a key given twice, as Go's strict YAML does.
  template <typename Fn>
  absl::Status ForEachKey(const YAML::Node& map, std::string_view what, Fn fn) {
    if (map.IsNull()) return absl::OkStatus();
    if (!map.IsMap()) return Error(map.Mark(), fmt::format("{}: want a mapping", what));
    absl::flat_hash_set<std::string> seen;
    for (const auto& kv : map) {
      if (!kv.first.IsScalar()) return Error(kv.first.Mark(), "want a plain key");
      std::string key = kv.first.Scalar();
      if (!seen.insert(key).second) {
        return Error(kv.first.Mark(), fmt::format("key \"{}\" given twice in {}", key, what));
      }
      if (absl::Status s = fn(key, kv.second); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::Status String(const YAML::Node& v, std::string_view key, std::string* out) {
    if (v.IsNull()) {
      out->clear();
      return absl::OkStatus();
    }
    if (!v.IsScalar()) return Error(v.Mark(), fmt::format("{}: want a string", key));
    *out = v.Scalar();
    return absl::OkStatus();
  }

  absl::Status Bool(const YAML::Node& v, std::string_view key, bool* out) {
    if (v.IsNull()) {
      *out = false;
      return absl::OkStatus();
    }
    bool b = false;
    if (!v.IsScalar() || !YAML::convert<bool>::decode(v, b)) {
      return Error(v.Mark(), fmt::format("{}: want true or false", key));
    }
    *out = b;
    return absl::OkStatus();
  }

  absl::Status Strings(const YAML::Node& v, std::string_view key, std::vector<std::string>* out) {
    out->clear();
    if (v.IsNull()) return absl::OkStatus();
    if (!v.IsSequence()) return Error(v.Mark(), fmt::format("{}: want a list", key));
    for (const YAML::Node& item : v) {
      if (!item.IsScalar()) return Error(item.Mark(), fmt::format("{}: want strings", key));
      out->push_back(item.Scalar());
    }
    return absl::OkStatus();
  }

  absl::Status ParseTls(const YAML::Node& node, TlsServerConfig* t) {
    return ForEachKey(node, "tls_server_config", [&](const std::string& key, const YAML::Node& v) {
      if (key == "cert_file") return String(v, key, &t->cert_file);
      if (key == "key_file") return String(v, key, &t->key_file);
      if (key == "client_auth_type") return String(v, key, &t->client_auth_type);
      if (key == "client_ca_file") return String(v, key, &t->client_ca_file);
      if (key == "prefer_server_cipher_suites") {
        return Bool(v, key, &t->prefer_server_cipher_suites);
      }
      if (key == "min_version" || key == "max_version") {
        std::string* out = key == "min_version" ? &t->min_version : &t->max_version;
        ESPY_RETURN_IF_ERROR(String(v, key, out));
        if (!OneOf(*out, {"TLS10", "TLS11", "TLS12", "TLS13"})) {
          return Error(v.Mark(), fmt::format("{}: unknown TLS version \"{}\" (want TLS10, TLS11, "
                                             "TLS12 or TLS13)",
                                             key, *out));
        }
        return absl::OkStatus();
      }
      if (key == "cipher_suites") {
        ESPY_RETURN_IF_ERROR(Strings(v, key, &t->cipher_suites));
        for (const std::string& c : t->cipher_suites) {
          if (!CipherNames().contains(c)) {
            return Error(v.Mark(), fmt::format("cipher_suites: unknown cipher \"{}\"", c));
          }
        }
        return absl::OkStatus();
      }
      if (key == "curve_preferences") {
        ESPY_RETURN_IF_ERROR(Strings(v, key, &t->curve_preferences));
        for (const std::string& c : t->curve_preferences) {
          if (!OneOf(c, {"CurveP256", "CurveP384", "CurveP521", "X25519"})) {
            return Error(v.Mark(), fmt::format("curve_preferences: unknown curve \"{}\" (want "
                                               "CurveP256, CurveP384, CurveP521 or X25519)",
                                               c));
          }
        }
        return absl::OkStatus();
      }
      return Error(v.Mark(), fmt::format("unknown key \"{}\" in tls_server_config", key));
    });
  }

  absl::Status ParseHttp(const YAML::Node& node, WebConfig* c) {
    return ForEachKey(node, "http_server_config", [&](const std::string& key, const YAML::Node& v) {
      if (key == "http2") return Bool(v, key, &c->http2);
      if (key == "headers") {
        return ForEachKey(v, "headers", [&](const std::string& name, const YAML::Node& value) {
          std::string text;
          ESPY_RETURN_IF_ERROR(String(value, name, &text));
          ESPY_RETURN_IF_ERROR(CheckHeader(value.Mark(), name, text));
          c->headers.emplace_back(name, std::move(text));
          return absl::OkStatus();
        });
      }
      return Error(v.Mark(), fmt::format("unknown key \"{}\" in http_server_config", key));
    });
  }

  // The toolkit lets a file set only these security headers (spelled
  // exactly so), some with a fixed set of values.
  absl::Status CheckHeader(const YAML::Mark& mark, const std::string& name,
                           const std::string& value) {
    if (name == "X-Content-Type-Options") {
      if (value != "nosniff") {
        return Error(mark, fmt::format("header {}: want \"nosniff\", got \"{}\"", name, value));
      }
      return absl::OkStatus();
    }
    if (name == "X-Frame-Options") {
      if (value != "deny" && value != "sameorigin") {
        return Error(mark, fmt::format("header {}: want \"deny\" or \"sameorigin\", got \"{}\"",
                                       name, value));
      }
      return absl::OkStatus();
    }
    if (OneOf(name, {"Strict-Transport-Security", "X-XSS-Protection", "Content-Security-Policy"})) {
      return absl::OkStatus();
    }
    return Error(mark, fmt::format("header \"{}\" cannot be set (allowed: "
                                   "Strict-Transport-Security, X-Content-Type-Options, "
                                   "X-Frame-Options, X-XSS-Protection, Content-Security-Policy)",
                                   name));
  }

  absl::Status ParseUsers(const YAML::Node& node,
                          std::vector<std::pair<std::string, std::string>>* users) {
    return ForEachKey(node, "basic_auth_users", [&](const std::string& user, const YAML::Node& v) {
      std::string hash;
      ESPY_RETURN_IF_ERROR(String(v, user, &hash));
      if (absl::Status s = CheckBcryptHash(hash); !s.ok()) {
        return Error(v.Mark(), fmt::format("basic_auth_users: user \"{}\": {}", user,
                                           std::string(s.message())));
      }
      users->emplace_back(user, std::move(hash));
      return absl::OkStatus();
    });
  }

  std::string Resolve(const std::string& path) const {
    if (path.empty() || path[0] == '/' || dir_.empty()) return path;
    return fmt::format("{}/{}", dir_, path);
  }

  absl::Status TlsError(std::string_view what) const {
    return absl::InvalidArgumentError(fmt::format("{}: tls_server_config: {}", name_, what));
  }

  static std::string OpenSslError() {
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0) return "unknown error";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    return buf;
  }

  // What the toolkit checks before serving TLS: a certificate and a key
  // that load and match, a readable client CA file, a known client auth
  // type, and no CA without a client auth type that uses it.
  absl::Status CheckTls(TlsServerConfig& t) {
    if (!t.enabled()) return absl::OkStatus();
    if (t.cert_file.empty()) return TlsError("missing cert_file");
    if (t.key_file.empty()) return TlsError("missing key_file");
    t.cert_file = Resolve(t.cert_file);
    t.key_file = Resolve(t.key_file);
    std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_server_method()),
                                                          &SSL_CTX_free);
    if (!ctx) return TlsError("cannot create a TLS context: " + OpenSslError());
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), t.cert_file.c_str()) != 1) {
      return TlsError(fmt::format("cert_file {}: {}", t.cert_file, OpenSslError()));
    }
    if (SSL_CTX_use_PrivateKey_file(ctx.get(), t.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      // OpenSSL checks here that the key is the certificate's.
      return TlsError(fmt::format("key_file {} cannot be loaded as the key of cert_file {}: {}",
                                  t.key_file, t.cert_file, OpenSslError()));
    }
    if (SSL_CTX_check_private_key(ctx.get()) != 1) {
      return TlsError(fmt::format("key_file {} does not match cert_file {}: {}", t.key_file,
                                  t.cert_file, OpenSslError()));
    }
    if (!t.client_ca_file.empty()) {
      t.client_ca_file = Resolve(t.client_ca_file);
      std::ifstream in(t.client_ca_file);
      if (!in) return TlsError(fmt::format("client_ca_file {}: cannot read", t.client_ca_file));
    }
    bool no_client_cert = t.client_auth_type.empty() || t.client_auth_type == "NoClientCert";
    if (!no_client_cert && !OneOf(t.client_auth_type,
                                  {"RequestClientCert", "RequireAnyClientCert", "RequireClientCert",
                                   "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"})) {
      return TlsError(fmt::format(
          "unknown client_auth_type \"{}\" (want NoClientCert, RequestClientCert, "
          "RequireAnyClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert)",
          t.client_auth_type));
    }
    if (!t.client_ca_file.empty() && no_client_cert) {
      return TlsError("client_ca_file is set but client_auth_type does not use it");
    }
    return absl::OkStatus();
  }

  std::string name_;
  std::string dir_;
};

}  // namespace

absl::StatusOr<WebConfig> ParseWebConfig(std::string_view text, std::string_view name,
                                         std::string_view dir) {
  return Parser(name, dir).Parse(text);
}

absl::StatusOr<WebConfig> LoadWebConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(fmt::format("{}: cannot read the web config file", path));
  std::stringstream text;
  text << in.rdbuf();
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
  return ParseWebConfig(text.str(), path, dir);
}

}  // namespace espy::auth
