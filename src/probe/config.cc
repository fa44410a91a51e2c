#include "probe/config.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <set>

#include "base/status_macros.h"
#include "boost/url/parse.hpp"
#include "config/config.h"
#include "fmt/format.h"
#include "yaml-cpp/yaml.h"

namespace espy::probe {

bool ProbeSpec::StatusValid(int code) const {
  if (valid_status_codes.empty()) return code >= 200 && code < 300;
  return std::find(valid_status_codes.begin(), valid_status_codes.end(), code) !=
         valid_status_codes.end();
}

namespace {

using Getenv = std::function<const char*(const char*)>;

bool ValidName(std::string_view s, bool metric) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (metric && c == ':') || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// Reads one section item, turning every problem into an error that says
// where it is: "config file F line L: probes[2] "homepage": timeout: ...".
class ItemReader {
 public:
  ItemReader(const std::string& file, std::string item, const YAML::Node& node)
      : file_(file), item_(std::move(item)), node_(node) {}

  void SetName(const std::string& name) { item_ += fmt::format(" \"{}\"", name); }

  absl::Status Error(const YAML::Node& at, std::string_view field, std::string_view what) const {
    int line = (at.IsDefined() ? at.Mark().line : node_.Mark().line) + 1;
    return absl::InvalidArgumentError(fmt::format("config file {} line {}: {}{}{}: {}", file_, line,
                                                  item_, field.empty() ? "" : ": ", field, what));
  }

  // Every key must be one of `known`: a typo is an error, not a silent default.
  absl::Status CheckKeys(const std::vector<std::string_view>& known) const {
    for (const auto& kv : node_) {
      std::string key = kv.first.as<std::string>();
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        std::string list;
        for (std::string_view k : known) list += fmt::format("{}{}", list.empty() ? "" : ", ", k);
        return Error(kv.first, key, fmt::format("unknown field (want one of {})", list));
      }
    }
    return absl::OkStatus();
  }

  bool Has(const char* key) const { return node_[key].IsDefined() && !node_[key].IsNull(); }
  YAML::Node Get(const char* key) const { return node_[key]; }

  absl::StatusOr<std::string> String(const char* key, bool required) const {
    YAML::Node n = node_[key];
    if (!n.IsDefined() || n.IsNull()) {
      if (required) return Error(node_, key, "required");
      return std::string();
    }
    if (!n.IsScalar()) return Error(n, key, "want a string");
    return n.as<std::string>();
  }

  absl::StatusOr<bool> Bool(const char* key, bool def) const {
    YAML::Node n = node_[key];
    if (!n.IsDefined() || n.IsNull()) return def;
    bool b = false;
    if (!n.IsScalar() || !YAML::convert<bool>::decode(n, b)) {
      return Error(n, key, fmt::format("want true or false, got \"{}\"", Scalar(n)));
    }
    return b;
  }

  absl::StatusOr<std::chrono::milliseconds> Duration(const char* key,
                                                     std::chrono::milliseconds def) const {
    YAML::Node n = node_[key];
    if (!n.IsDefined() || n.IsNull()) return def;
    if (!n.IsScalar()) return Error(n, key, "want a duration like 30s");
    auto d = config::ParseDuration(n.as<std::string>());
    if (!d.ok()) return Error(n, key, std::string(d.status().message()));
    if (d->count() <= 0) return Error(n, key, "want a positive duration");
    return *d;
  }

  // A mapping of string to string (headers, labels).
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> Map(const char* key) const {
    std::vector<std::pair<std::string, std::string>> out;
    YAML::Node n = node_[key];
    if (!n.IsDefined() || n.IsNull()) return out;
    if (!n.IsMap()) return Error(n, key, "want a mapping of name: value");
    for (const auto& kv : n) {
      if (!kv.second.IsScalar()) {
        return Error(kv.second, fmt::format("{}.{}", key, kv.first.as<std::string>()),
                     "want a single value");
      }
      out.emplace_back(kv.first.as<std::string>(), kv.second.as<std::string>());
    }
    return out;
  }

  absl::StatusOr<std::vector<std::string>> StringList(const char* key) const {
    std::vector<std::string> out;
    YAML::Node n = node_[key];
    if (!n.IsDefined() || n.IsNull()) return out;
    if (n.IsScalar()) {
      out.push_back(n.as<std::string>());
      return out;
    }
    if (!n.IsSequence()) return Error(n, key, "want a list");
    for (const auto& e : n) {
      if (!e.IsScalar()) return Error(e, key, "want a list of strings");
      out.push_back(e.as<std::string>());
    }
    return out;
  }

  absl::StatusOr<std::vector<model::Label>> Labels(const char* key) const {
    auto map = Map(key);
    if (!map.ok()) return map.status();
    std::vector<model::Label> labels;
    for (auto& [name, value] : *map) {
      if (!ValidName(name, false) || name.rfind("__", 0) == 0) {
        return Error(node_[key], fmt::format("{}.{}", key, name),
                     "want a label name of letters, digits and _ (not starting with __)");
      }
      if (name == "probe" || name == "instance" || name == "collector" || name == "phase" ||
          name == "reason") {
        return Error(node_[key], fmt::format("{}.{}", key, name),
                     "this label is set by Espy itself");
      }
      labels.push_back({std::move(name), std::move(value)});
    }
    return labels;
  }

  static std::string Scalar(const YAML::Node& n) { return n.IsScalar() ? n.as<std::string>() : ""; }

  const YAML::Node& node() const { return node_; }

 private:
  const std::string& file_;
  std::string item_;
  YAML::Node node_;
};

// Replaces ${VAR} with the variable's value; an unset one is an error.
absl::StatusOr<std::string> Substitute(const std::string& in, const Getenv& getenv) {
  std::string out;
  size_t i = 0;
  while (i < in.size()) {
    size_t open = in.find("${", i);
    if (open == std::string::npos) break;
    size_t close = in.find('}', open + 2);
    if (close == std::string::npos) {
      return absl::InvalidArgumentError("unclosed ${ (want ${VARIABLE})");
    }
    std::string var = in.substr(open + 2, close - open - 2);
    if (!ValidName(var, false)) {
      return absl::InvalidArgumentError(fmt::format("bad variable name \"{}\" in ${{}}", var));
    }
    const char* value = getenv(var.c_str());
    if (value == nullptr) {
      return absl::InvalidArgumentError(fmt::format("environment variable {} is not set", var));
    }
    out.append(in, i, open - i);
    out += value;
    i = close + 1;
  }
  out.append(in, i, std::string::npos);
  return out;
}

absl::Status CheckUrl(const ItemReader& r, const char* key, const std::string& url) {
  auto parsed = boost::urls::parse_absolute_uri(url);
  if (!parsed || (parsed->scheme() != "http" && parsed->scheme() != "https") ||
      parsed->host().empty()) {
    return r.Error(r.Get(key), key,
                   fmt::format("want an http:// or https:// URL with a host, got \"{}\"", url));
  }
  return absl::OkStatus();
}

absl::Status CheckTimes(const ItemReader& r, std::chrono::milliseconds interval,
                        std::chrono::milliseconds timeout) {
  if (interval < std::chrono::seconds(1)) {
    return r.Error(r.Get("interval"), "interval", "want at least 1s");
  }
  if (timeout > interval) {
    return r.Error(r.Get("timeout"), "timeout",
                   "want at most the interval (a check must end before the next starts)");
  }
  return absl::OkStatus();
}

// The `method` field, upper-cased; GET when absent.
absl::StatusOr<std::string> Method(const ItemReader& r) {
  ESPY_ASSIGN_OR_RETURN(std::string method, r.String("method", false));
  if (method.empty()) return std::string("GET");
  std::transform(method.begin(), method.end(), method.begin(), ::toupper);
  if (!ValidName(method, false)) {
    return r.Error(r.Get("method"), "method", "want an HTTP method such as GET or POST");
  }
  return method;
}

absl::StatusOr<std::vector<std::shared_ptr<const RE2>>> Regexes(const ItemReader& r,
                                                                const char* key) {
  auto list = r.StringList(key);
  if (!list.ok()) return list.status();
  std::vector<std::shared_ptr<const RE2>> out;
  for (const std::string& pattern : *list) {
    auto re = std::make_shared<RE2>(pattern, RE2::Quiet);
    if (!re->ok()) {
      return r.Error(r.Get(key), key,
                     fmt::format("bad regular expression \"{}\": {}", pattern, re->error()));
    }
    out.push_back(std::move(re));
  }
  return out;
}

absl::StatusOr<std::shared_ptr<const ProbeSpec>> ParseProbe(const ItemReader& in) {
  ItemReader r = in;
  auto p = std::make_shared<ProbeSpec>();
  ESPY_RETURN_IF_ERROR(
      r.CheckKeys({"name", "url", "tcp", "method", "headers", "body", "interval", "timeout",
                   "valid_status_codes", "body_must_match", "body_must_not_match",
                   "follow_redirects", "tls_verify", "tls", "send", "expect", "labels"}));
  ESPY_ASSIGN_OR_RETURN(p->name, r.String("name", true));
  r.SetName(p->name);
  if (p->name.empty()) return r.Error(r.Get("name"), "name", "want a non-empty name");
  bool http = r.Has("url"), tcp = r.Has("tcp");
  if (http == tcp) {
    return r.Error(r.node(), "", "want exactly one of url (HTTP/HTTPS) or tcp (host:port)");
  }
  ESPY_ASSIGN_OR_RETURN(p->interval, r.Duration("interval", std::chrono::seconds(30)));
  ESPY_ASSIGN_OR_RETURN(p->timeout,
                        r.Duration("timeout", std::min<std::chrono::milliseconds>(
                                                  std::chrono::seconds(10), p->interval)));
  ESPY_RETURN_IF_ERROR(CheckTimes(r, p->interval, p->timeout));
  ESPY_ASSIGN_OR_RETURN(p->labels, r.Labels("labels"));
  ESPY_ASSIGN_OR_RETURN(p->tls_verify, r.Bool("tls_verify", true));
  if (http) {
    for (const char* tcp_only : {"tls", "send", "expect"}) {
      if (r.Has(tcp_only)) return r.Error(r.Get(tcp_only), tcp_only, "only for tcp probes");
    }
    p->kind = ProbeSpec::Kind::kHttp;
    ESPY_ASSIGN_OR_RETURN(p->target, r.String("url", true));
    ESPY_RETURN_IF_ERROR(CheckUrl(r, "url", p->target));
    ESPY_ASSIGN_OR_RETURN(p->method, Method(r));
    ESPY_ASSIGN_OR_RETURN(p->headers, r.Map("headers"));
    ESPY_ASSIGN_OR_RETURN(p->body, r.String("body", false));
    YAML::Node codes = r.Get("valid_status_codes");
    if (codes.IsDefined() && !codes.IsNull()) {
      if (!codes.IsSequence() || codes.size() == 0) {
        return r.Error(codes, "valid_status_codes", "want a list of status codes like [200, 301]");
      }
      for (const auto& c : codes) {
        int code = 0;
        if (!c.IsScalar() || !YAML::convert<int>::decode(c, code) || code < 100 || code > 599) {
          return r.Error(c, "valid_status_codes",
                         fmt::format("want HTTP status codes from 100 to 599, got \"{}\"",
                                     ItemReader::Scalar(c)));
        }
        p->valid_status_codes.push_back(code);
      }
    }
    ESPY_ASSIGN_OR_RETURN(p->body_must_match, Regexes(r, "body_must_match"));
    ESPY_ASSIGN_OR_RETURN(p->body_must_not_match, Regexes(r, "body_must_not_match"));
    ESPY_ASSIGN_OR_RETURN(p->follow_redirects, r.Bool("follow_redirects", true));
  } else {
    for (const char* http_only : {"method", "headers", "body", "valid_status_codes",
                                  "body_must_match", "body_must_not_match", "follow_redirects"}) {
      if (r.Has(http_only)) return r.Error(r.Get(http_only), http_only, "only for url probes");
    }
    p->kind = ProbeSpec::Kind::kTcp;
    ESPY_ASSIGN_OR_RETURN(p->target, r.String("tcp", true));
    size_t colon = p->target.rfind(':');
    unsigned port = 0;
    if (colon == std::string::npos || colon == 0 ||
        std::from_chars(p->target.data() + colon + 1, p->target.data() + p->target.size(), port)
                .ptr != p->target.data() + p->target.size() ||
        colon + 1 == p->target.size() || port == 0 || port > 65535) {
      return r.Error(r.Get("tcp"), "tcp",
                     fmt::format("want host:port such as db.internal:5432, got \"{}\"", p->target));
    }
    ESPY_ASSIGN_OR_RETURN(p->tls, r.Bool("tls", false));
    ESPY_ASSIGN_OR_RETURN(p->send, r.String("send", false));
    ESPY_ASSIGN_OR_RETURN(std::string expect, r.String("expect", false));
    if (!expect.empty()) {
      auto re = std::make_shared<RE2>(expect, RE2::Quiet);
      if (!re->ok()) {
        return r.Error(r.Get("expect"), "expect",
                       fmt::format("bad regular expression \"{}\": {}", expect, re->error()));
      }
      p->expect = std::move(re);
    }
  }
  return p;
}

absl::StatusOr<Extraction::LabelSource> ParseLabelSource(const ItemReader& r,
                                                         const std::string& field,
                                                         const std::string& name,
                                                         const std::string& value,
                                                         const JsonPath& path) {
  Extraction::LabelSource src;
  src.name = name;
  if (!ValidName(name, false) || name.rfind("__", 0) == 0) {
    return r.Error(r.Get("metrics"), field,
                   "want a label name of letters, digits and _ (not starting with __)");
  }
  if (name == "collector") return r.Error(r.Get("metrics"), field, "set by Espy itself");
  if (value.size() >= 2 && value[0] == '$' && std::isdigit(static_cast<unsigned char>(value[1]))) {
    int n = 0;
    auto [ptr, ec] = std::from_chars(value.data() + 1, value.data() + value.size(), n);
    if (ec != std::errc() || ptr != value.data() + value.size() || n < 1 || n > path.wildcards()) {
      return r.Error(r.Get("metrics"), field,
                     fmt::format("\"{}\" wants a wildcard number from 1 to {} (the path \"{}\" has "
                                 "{} wildcards)",
                                 value, path.wildcards(), path.text(), path.wildcards()));
    }
    src.kind = Extraction::LabelSource::Kind::kCapture;
    src.capture = n;
  } else if (!value.empty() && value[0] == '.') {
    auto field_path = JsonPath::Parse(value, true);
    if (!field_path.ok())
      return r.Error(r.Get("metrics"), field, std::string(field_path.status().message()));
    src.kind = Extraction::LabelSource::Kind::kField;
    src.field = std::move(*field_path);
  } else {
    src.literal = value;
  }
  return src;
}

absl::StatusOr<std::shared_ptr<const CollectorSpec>> ParseCollector(const ItemReader& in,
                                                                    const std::string& file,
                                                                    const std::string& item,
                                                                    const Getenv& getenv) {
  ItemReader r = in;
  auto c = std::make_shared<CollectorSpec>();
  ESPY_RETURN_IF_ERROR(r.CheckKeys({"name", "url", "method", "headers", "body", "interval",
                                    "timeout", "tls_verify", "labels", "metrics"}));
  ESPY_ASSIGN_OR_RETURN(c->name, r.String("name", true));
  r.SetName(c->name);
  if (c->name.empty()) return r.Error(r.Get("name"), "name", "want a non-empty name");
  ESPY_ASSIGN_OR_RETURN(c->url_template, r.String("url", true));
  auto url = Substitute(c->url_template, getenv);
  if (!url.ok()) return r.Error(r.Get("url"), "url", std::string(url.status().message()));
  c->url = std::move(*url);
  ESPY_RETURN_IF_ERROR(CheckUrl(r, "url", c->url));
  ESPY_ASSIGN_OR_RETURN(c->method, Method(r));
  ESPY_ASSIGN_OR_RETURN(Headers headers, r.Map("headers"));
  for (auto& [name, value] : headers) {
    auto v = Substitute(value, getenv);
    if (!v.ok())
      return r.Error(r.Get("headers"), "headers." + name, std::string(v.status().message()));
    c->headers.emplace_back(name, std::move(*v));
  }
  ESPY_ASSIGN_OR_RETURN(std::string body, r.String("body", false));
  auto b = Substitute(body, getenv);
  if (!b.ok()) return r.Error(r.Get("body"), "body", std::string(b.status().message()));
  c->body = std::move(*b);
  ESPY_ASSIGN_OR_RETURN(c->interval, r.Duration("interval", std::chrono::seconds(60)));
  ESPY_ASSIGN_OR_RETURN(c->timeout,
                        r.Duration("timeout", std::min<std::chrono::milliseconds>(
                                                  std::chrono::seconds(10), c->interval)));
  ESPY_RETURN_IF_ERROR(CheckTimes(r, c->interval, c->timeout));
  ESPY_ASSIGN_OR_RETURN(c->tls_verify, r.Bool("tls_verify", true));
  ESPY_ASSIGN_OR_RETURN(c->labels, r.Labels("labels"));
  YAML::Node metrics = r.Get("metrics");
  if (!metrics.IsDefined() || !metrics.IsSequence() || metrics.size() == 0) {
    return r.Error(metrics, "metrics",
                   "want a list of extractions, each with name and path (e.g. "
                   "{name: btc_usd, path: $.bitcoin.usd})");
  }
  for (size_t i = 0; i < metrics.size(); ++i) {
    const YAML::Node& m = metrics[i];
    std::string where = fmt::format("metrics[{}]", i);
    if (!m.IsMap()) return r.Error(m, where, "want a mapping with name and path");
    ItemReader mr(file, fmt::format("collectors[{}] \"{}\" {}", item, c->name, where), m);
    ESPY_RETURN_IF_ERROR(mr.CheckKeys({"name", "path", "value", "labels"}));
    Extraction e;
    ESPY_ASSIGN_OR_RETURN(e.metric, mr.String("name", true));
    if (!ValidName(e.metric, true)) {
      return mr.Error(
          mr.Get("name"), "name",
          fmt::format("want a metric name of letters, digits, _ and :, got \"{}\"", e.metric));
    }
    ESPY_ASSIGN_OR_RETURN(std::string path, mr.String("path", true));
    auto parsed = JsonPath::Parse(path, false);
    if (!parsed.ok())
      return mr.Error(mr.Get("path"), "path", std::string(parsed.status().message()));
    e.path = std::move(*parsed);
    ESPY_ASSIGN_OR_RETURN(std::string value, mr.String("value", false));
    if (!value.empty()) {
      auto v = JsonPath::Parse(value, true);
      if (!v.ok()) return mr.Error(mr.Get("value"), "value", std::string(v.status().message()));
      e.value = std::move(*v);
    }
    ESPY_ASSIGN_OR_RETURN(auto labels, mr.Map("labels"));
    for (auto& [name, source] : labels) {
      ESPY_ASSIGN_OR_RETURN(auto src, ParseLabelSource(mr, "labels." + name, name, source, e.path));
      e.labels.push_back(std::move(src));
    }
    c->metrics.push_back(std::move(e));
  }
  return c;
}

}  // namespace

absl::StatusOr<MonitoringConfig> ParseMonitoring(const YAML::Node& root, const std::string& path,
                                                 const Getenv& getenv_in) {
  Getenv getenv = getenv_in ? getenv_in : [](const char* n) { return std::getenv(n); };
  MonitoringConfig out;
  if (!root.IsDefined() || root.IsNull() || !root.IsMap()) return out;
  auto section = [&](const char* key, auto parse) -> absl::Status {
    YAML::Node list = root[key];
    if (!list.IsDefined() || list.IsNull()) return absl::OkStatus();
    if (!list.IsSequence()) {
      return absl::InvalidArgumentError(fmt::format(
          "config file {} line {}: {}: want a list of items", path, list.Mark().line + 1, key));
    }
    std::set<std::string> names;
    for (size_t i = 0; i < list.size(); ++i) {
      const YAML::Node& node = list[i];
      std::string item = fmt::format("{}[{}]", key, i);
      if (!node.IsMap()) {
        return absl::InvalidArgumentError(fmt::format("config file {} line {}: {}: want a mapping",
                                                      path, node.Mark().line + 1, item));
      }
      ItemReader r(path, item, node);
      ESPY_ASSIGN_OR_RETURN(std::string name, parse(r, i));
      if (!names.insert(name).second) {
        return absl::InvalidArgumentError(
            fmt::format("config file {} line {}: {}: name \"{}\" is already used by another item",
                        path, node["name"].Mark().line + 1, item, name));
      }
    }
    return absl::OkStatus();
  };
  ESPY_RETURN_IF_ERROR(
      section("probes", [&](const ItemReader& r, size_t) -> absl::StatusOr<std::string> {
        ESPY_ASSIGN_OR_RETURN(auto p, ParseProbe(r));
        out.probes.push_back(p);
        return p->name;
      }));
  ESPY_RETURN_IF_ERROR(
      section("collectors", [&](const ItemReader& r, size_t i) -> absl::StatusOr<std::string> {
        ESPY_ASSIGN_OR_RETURN(auto c, ParseCollector(r, path, std::to_string(i), getenv));
        out.collectors.push_back(c);
        return c->name;
      }));
  return out;
}

absl::StatusOr<MonitoringConfig> LoadMonitoring(const std::string& path, const Getenv& getenv) {
  ESPY_ASSIGN_OR_RETURN(YAML::Node root, config::LoadYamlFile(path));
  return ParseMonitoring(root, path, getenv);
}

absl::StatusOr<std::shared_ptr<const ProbeSpec>> ProbeForTarget(const std::string& target) {
  YAML::Node node;
  node["name"] = target;
  if (target.rfind("http://", 0) == 0 || target.rfind("https://", 0) == 0) {
    node["url"] = target;
  } else {
    node["tcp"] = target;
  }
  static const std::string kFile = "(command line)";
  ItemReader r(kFile, "target", node);
  auto p = ParseProbe(r);
  if (!p.ok()) {
    return absl::InvalidArgumentError(
        fmt::format("target \"{}\": want an http(s):// URL or host:port", target));
  }
  return p;
}

}  // namespace espy::probe
