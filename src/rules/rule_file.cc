// Rule files: a strict YAML decode with Go yaml.v3's error texts (unknown
// and repeated keys, type mismatches), then rulefmt's semantic checks.
#include "rules/rule_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "base/fmt_absl.h"
#include "fmt/format.h"
#include "model/names.h"
#include "query/promql/parser.h"
#include "rules/template.h"
#include "yaml-cpp/yaml.h"

namespace espy::rules {

size_t RuleFile::RuleCount() const {
  size_t n = 0;
  for (const RuleGroup& g : groups) n += g.rules.size();
  return n;
}

std::string GoQuote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += fmt::format("\\x{:02x}", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

namespace {

// A position, from 1; {0, 0} for a node that is not in the file (Go's zero
// yaml.Node).
struct Pos {
  int line = 0;
  int column = 0;
};

Pos PosOf(const YAML::Node& n) {
  if (!n.IsDefined()) return {};
  YAML::Mark m = n.Mark();
  if (m.is_null()) return {};
  return {m.line + 1, m.column + 1};
}

bool IsPlain(const YAML::Node& n) { return n.Tag() == "?"; }

// yaml.v3's resolved tag of a scalar, for "cannot unmarshal !!str `x`".
std::string ShortTag(const YAML::Node& n) {
  if (n.IsNull()) return "!!null";
  if (n.IsSequence()) return "!!seq";
  if (n.IsMap()) return "!!map";
  if (!IsPlain(n)) return "!!str";
  const std::string& v = n.Scalar();
  if (v == "true" || v == "True" || v == "TRUE" || v == "false" || v == "False" || v == "FALSE")
    return "!!bool";
  double d;
  if (!v.empty()) {
    std::string_view s = v;
    if (s[0] == '+' || s[0] == '-') s.remove_prefix(1);
    bool digits = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
      return absl::ascii_isdigit(c) || c == '_';
    });
    if (digits) return "!!int";
    std::istringstream in{std::string(s)};
    if ((in >> d) && in.eof()) return "!!float";
    if (s == ".inf" || s == ".Inf" || s == ".INF" || v == ".nan" || v == ".NaN" || v == ".NAN")
      return "!!float";
  }
  return "!!str";
}

// The scalar as Go's yaml.v3 decodes it into a string ("" for null).
std::string ScalarText(const YAML::Node& n) {
  if (!n.IsDefined() || n.IsNull()) return "";
  return n.Scalar();
}

// The strict decode: yaml.v3's unmarshal errors, gathered in document order,
// or the first bad duration, which stops the decode as it does in Go.
class Decoder {
 public:
  std::vector<std::string> type_errors;
  std::optional<std::string> fatal;  // a duration error: reported alone

  void TypeError(const YAML::Node& n, std::string_view into) {
    std::string value;
    if (n.IsScalar()) {
      std::string v = n.Scalar();
      value = v.size() > 10 ? " `" + v.substr(0, 7) + "...`" : " `" + v + "`";
    }
    type_errors.push_back(fmt::format("line {}: cannot unmarshal {}{} into {}", PosOf(n).line,
                                      ShortTag(n), value, into));
  }

  // Repeated keys first (yaml.v3 checks a mapping before decoding it), then
  // unknown keys as the walk meets them. Returns the known keys' values.
  std::map<std::string, YAML::Node> Fields(const YAML::Node& map,
                                           std::initializer_list<std::string_view> known,
                                           std::string_view type) {
    std::map<std::string, YAML::Node> out;
    std::map<std::string, int> seen;
    for (auto it = map.begin(); it != map.end(); ++it) {
      std::string key = ScalarText(it->first);
      int line = PosOf(it->first).line;
      if (auto s = seen.find(key); s != seen.end()) {
        type_errors.push_back(fmt::format("line {}: mapping key {} already defined at line {}",
                                          line, GoQuote(key), s->second));
      } else {
        seen.emplace(key, line);
      }
    }
    for (auto it = map.begin(); it != map.end(); ++it) {
      std::string key = ScalarText(it->first);
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        type_errors.push_back(fmt::format("line {}: field {} not found in type {}",
                                          PosOf(it->first).line, key, type));
        continue;
      }
      out.emplace(key, it->second);
    }
    return out;
  }

  std::string String(const YAML::Node& n) {
    if (!n.IsDefined() || n.IsNull()) return "";
    if (!n.IsScalar()) {
      TypeError(n, "string");
      return "";
    }
    return n.Scalar();
  }

  std::map<std::string, std::string> StringMap(const YAML::Node& n) {
    std::map<std::string, std::string> out;
    if (!n.IsDefined() || n.IsNull()) return out;
    if (!n.IsMap()) {
      TypeError(n, "map[string]string");
      return out;
    }
    std::map<std::string, int> lines;
    for (auto it = n.begin(); it != n.end(); ++it) {
      std::string key = ScalarText(it->first);
      int line = PosOf(it->first).line;
      if (auto seen = lines.find(key); seen != lines.end()) {
        type_errors.push_back(fmt::format("line {}: mapping key {} already defined at line {}",
                                          line, GoQuote(key), seen->second));
        continue;
      }
      lines.emplace(key, line);
      out[key] = String(it->second);
    }
    return out;
  }

  int64_t Int(const YAML::Node& n) {
    if (!n.IsDefined() || n.IsNull()) return 0;
    if (ShortTag(n) != "!!int") {
      TypeError(n, "int");
      return 0;
    }
    std::string v = n.Scalar();
    v.erase(std::remove(v.begin(), v.end(), '_'), v.end());
    try {
      return std::stoll(v);
    } catch (const std::exception&) {
      TypeError(n, "int");
      return 0;
    }
  }

  // A Prometheus duration ("5m", "1h30m", "0"); Espy adds the position
  // Prometheus leaves out.
  int64_t Duration(const YAML::Node& n, std::string_view filename) {
    if (!n.IsDefined() || n.IsNull() || fatal) return 0;
    if (!n.IsScalar()) {
      TypeError(n, "string");
      return 0;
    }
    auto ms = query::promql::ParseDuration(n.Scalar());
    if (!ms.ok()) {
      Pos p = PosOf(n);
      fatal = fmt::format("{}: {}:{}: {}", filename, p.line, p.column, ms.status().message());
      return 0;
    }
    return *ms;
  }
};

// Where a rule's record, alert or expr value is; {0, 0} when absent.
// An empty value (`record:` then a new line) is where Go's yaml puts it:
// just after the key's colon, where yaml-cpp would give the next token.
Pos NodeAt(const YAML::Node& key, const YAML::Node& value) {
  Pos v = PosOf(value);
  Pos k = PosOf(key);
  if (value.IsNull() && (v.line != k.line || value.Scalar().empty())) {
    return {k.line, k.column + static_cast<int>(key.Scalar().size()) + 1};
  }
  return v;
}

// What validation needs of a rule beyond its values: where its parts are.
struct RuleNodes {
  Pos record, alert, expr;
};

std::string RuleError(std::string_view filename, const RuleGroup& g, size_t index, const Rule& r,
                      std::optional<Pos> node, std::optional<Pos> alt, std::string_view msg) {
  std::string pos;
  if (node) pos += fmt::format("{}:{}: ", node->line, node->column);
  if (alt) pos += fmt::format("{}:{}: ", alt->line, alt->column);
  return fmt::format("{}: {}group {}, rule {}, {}: {}", filename, pos, GoQuote(g.name), index + 1,
                     GoQuote(r.name()), msg);
}

bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t extra = c < 0x80           ? 0
                   : (c >> 5) == 0x6  ? 1
                   : (c >> 4) == 0xe  ? 2
                   : (c >> 3) == 0x1e ? 3
                                      : 9;
    if (extra == 9 || i + extra >= s.size() + (extra == 0 ? 1 : 0)) return false;
    for (size_t k = 1; k <= extra; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
    }
    i += extra + 1;
  }
  return true;
}

// rulefmt's per-rule checks, in its order.
void ValidateRule(std::string_view filename, const RuleGroup& g, size_t index, const Rule& r,
                  const RuleNodes& nodes, std::vector<std::string>* errors) {
  auto add = [&](std::optional<Pos> node, std::optional<Pos> alt, std::string_view msg) {
    errors->push_back(RuleError(filename, g, index, r, node, alt, msg));
  };
  Pos record_pos = nodes.record;
  if (!r.record.empty() && !r.alert.empty()) {
    add(record_pos, nodes.alert, "only one of 'record' and 'alert' must be set");
  }
  if (r.record.empty() && r.alert.empty()) {
    add(record_pos, std::nullopt, "one of 'record' or 'alert' must be set");
  }
  if (r.expr.empty()) {
    add(nodes.expr, std::nullopt, "field 'expr' must be set in rule");
  } else if (auto e = query::promql::ParseExpr(r.expr); !e.ok()) {
    add(nodes.expr, std::nullopt,
        fmt::format("could not parse expression: {}", e.status().message()));
  }
  if (!r.record.empty()) {
    if (!r.annotations.empty()) {
      add(record_pos, std::nullopt, "invalid field 'annotations' in recording rule");
    }
    if (r.for_ms != 0) add(record_pos, std::nullopt, "invalid field 'for' in recording rule");
    if (r.keep_firing_for_ms != 0) {
      add(record_pos, std::nullopt, "invalid field 'keep_firing_for' in recording rule");
    }
    if (!model::IsLegacyMetricName(r.record)) {
      add(record_pos, std::nullopt, fmt::format("invalid recording rule name: {}", r.record));
    }
  }
  for (const auto& [k, v] : r.labels) {
    if (!model::IsLegacyLabelName(k) || k == "__name__") {
      add(std::nullopt, std::nullopt, fmt::format("invalid label name: {}", k));
    }
    if (!ValidUtf8(v)) add(std::nullopt, std::nullopt, fmt::format("invalid label value: {}", v));
  }
  for (const auto& [k, v] : r.annotations) {
    if (!model::IsLegacyLabelName(k)) {
      add(std::nullopt, std::nullopt, fmt::format("invalid annotation name: {}", k));
    }
  }
  if (r.alert.empty()) return;
  // Alerting rules' label and annotation templates must parse.
  std::string name = "__alert_" + r.alert;
  for (const auto& [k, v] : r.labels) {
    if (auto t = Template::Parse(name, v); !t.ok()) {
      add(std::nullopt, std::nullopt,
          fmt::format("label {}: {}", GoQuote(k), t.status().message()));
    }
  }
  for (const auto& [k, v] : r.annotations) {
    if (auto t = Template::Parse(name, v); !t.ok()) {
      add(std::nullopt, std::nullopt,
          fmt::format("annotation {}: {}", GoQuote(k), t.status().message()));
    }
  }
}

}  // namespace

RuleFileParse ParseRuleFile(std::string_view filename, std::string_view content) {
  RuleFileParse out;
  YAML::Node doc;
  try {
    doc = YAML::Load(std::string(content));
  } catch (const YAML::Exception& e) {
    out.errors.push_back(fmt::format("{}: yaml: line {}, column {}: {}", filename, e.mark.line + 1,
                                     e.mark.column + 1, e.msg));
    return out;
  }
  if (doc.IsNull()) return out;  // an empty file has no groups

  Decoder d;
  std::vector<std::vector<RuleNodes>> nodes;
  std::vector<Pos> group_pos;
  std::string second_pass;
  if (!doc.IsMap()) {
    d.TypeError(doc, "rulefmt.RuleGroups");
    Decoder positions;
    positions.TypeError(doc, "rulefmt.ruleGroups");
    second_pass = positions.type_errors[0];
  } else {
    auto top = d.Fields(doc, {"groups"}, "rulefmt.RuleGroups");
    YAML::Node groups = top["groups"];
    if (groups.IsDefined() && !groups.IsNull() && !groups.IsSequence()) {
      d.TypeError(groups, "[]rulefmt.RuleGroup");
      Decoder positions;
      positions.TypeError(groups, "[]yaml.Node");
      second_pass = positions.type_errors[0];
    } else if (groups.IsDefined() && groups.IsSequence()) {
      for (const YAML::Node& gn : groups) {
        RuleGroup g;
        std::vector<RuleNodes> rule_nodes;
        group_pos.push_back(PosOf(gn));
        if (gn.IsNull()) {
          out.file.groups.push_back(std::move(g));
          nodes.push_back(std::move(rule_nodes));
          continue;
        }
        if (!gn.IsMap()) {
          d.TypeError(gn, "rulefmt.RuleGroup");
          out.file.groups.push_back(std::move(g));
          nodes.push_back(std::move(rule_nodes));
          continue;
        }
        d.Fields(gn, {"name", "interval", "limit", "rules"}, "rulefmt.RuleGroup");
        // Fields are decoded in the file's order, as Go walks the mapping.
        for (auto it = gn.begin(); it != gn.end(); ++it) {
          std::string key = ScalarText(it->first);
          const YAML::Node v = it->second;
          if (key == "name") {
            g.name = d.String(v);
          } else if (key == "interval") {
            g.interval_ms = d.Duration(v, filename);
          } else if (key == "limit") {
            g.limit = d.Int(v);
          } else if (key == "rules") {
            if (v.IsNull()) continue;
            if (!v.IsSequence()) {
              d.TypeError(v, "[]rulefmt.RuleNode");
              continue;
            }
            for (const YAML::Node& rn : v) {
              Rule r;
              RuleNodes rnodes;
              Pos rp = PosOf(rn);
              r.line = rp.line;
              r.column = rp.column;
              if (!rn.IsNull() && !rn.IsMap()) {
                d.TypeError(rn, "rulefmt.RuleNode");
              } else if (rn.IsMap()) {
                d.Fields(
                    rn,
                    {"record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations"},
                    "rulefmt.RuleNode");
                for (auto rit = rn.begin(); rit != rn.end(); ++rit) {
                  std::string rkey = ScalarText(rit->first);
                  const YAML::Node rv = rit->second;
                  // record, alert and expr are yaml.Nodes in rulefmt: any
                  // node decodes; only a scalar has a value.
                  auto node_value = [](const YAML::Node& n) {
                    return n.IsScalar() ? n.Scalar() : std::string();
                  };
                  if (rkey == "record") {
                    r.record = node_value(rv);
                    rnodes.record = NodeAt(rit->first, rv);
                  } else if (rkey == "alert") {
                    r.alert = node_value(rv);
                    rnodes.alert = NodeAt(rit->first, rv);
                  } else if (rkey == "expr") {
                    r.expr = node_value(rv);
                    rnodes.expr = NodeAt(rit->first, rv);
                  } else if (rkey == "for") {
                    r.for_ms = d.Duration(rv, filename);
                  } else if (rkey == "keep_firing_for") {
                    r.keep_firing_for_ms = d.Duration(rv, filename);
                  } else if (rkey == "labels") {
                    r.labels = d.StringMap(rv);
                  } else if (rkey == "annotations") {
                    r.annotations = d.StringMap(rv);
                  }
                }
              }
              g.rules.push_back(std::move(r));
              rule_nodes.push_back(std::move(rnodes));
            }
          }
        }
        out.file.groups.push_back(std::move(g));
        nodes.push_back(std::move(rule_nodes));
      }
    }
  }
  if (d.fatal) {
    out.errors.push_back(*d.fatal);
    return out;
  }
  if (!d.type_errors.empty()) {
    std::string msg = fmt::format("{}: yaml: unmarshal errors:", filename);
    for (const std::string& e : d.type_errors) msg += "\n  " + e;
    out.errors.push_back(std::move(msg));
    // Prometheus decodes the file twice (values, then positions); a file
    // whose top is the wrong shape fails both, and promtool says so twice.
    if (!second_pass.empty()) {
      out.errors.push_back(fmt::format("{}: yaml: unmarshal errors:\n  {}", filename, second_pass));
    }
    return out;
  }

  std::set<std::string> names;
  for (size_t j = 0; j < out.file.groups.size(); ++j) {
    const RuleGroup& g = out.file.groups[j];
    Pos p = group_pos[j];
    if (g.name.empty()) {
      out.errors.push_back(
          fmt::format("{}: {}:{}: Groupname must not be empty", filename, p.line, p.column));
    }
    if (!names.insert(g.name).second) {
      out.errors.push_back(fmt::format("{}: {}:{}: groupname: \"{}\" is repeated in the same file",
                                       filename, p.line, p.column, g.name));
    }
    for (size_t i = 0; i < g.rules.size(); ++i) {
      ValidateRule(filename, g, i, g.rules[i], nodes[j][i], &out.errors);
    }
  }
  return out;
}

RuleFileParse LoadRuleFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    RuleFileParse out;
    out.errors.push_back(fmt::format("{}: open {}: {}", path, path, std::strerror(errno)));
    return out;
  }
  std::stringstream buf;
  buf << in.rdbuf();
  return ParseRuleFile(path, buf.str());
}

}  // namespace espy::rules
