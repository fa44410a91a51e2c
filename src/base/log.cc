#include "base/log.h"

#include <time.h>

#include <chrono>

#include "spdlog/sinks/null_sink.h"
#include "spdlog/sinks/stdout_sinks.h"

namespace espy::base {

namespace {

bool NeedsQuotes(std::string_view value) {
  if (value.empty()) return true;
  for (char c : value) {
    if (static_cast<unsigned char>(c) <= ' ' || c == '=' || c == '"' || c == 0x7f) return true;
  }
  return false;
}

// Escapes `value` for inside a logfmt or JSON string: the two share the
// escapes for '"', '\' and control characters. `json` also replaces bytes
// that are not UTF-8 with U+FFFD, as JSON text must be UTF-8.
void AppendEscaped(std::string_view value, bool json, std::string* out) {
  size_t i = 0;
  while (i < value.size()) {
    const auto c = static_cast<unsigned char>(value[i]);
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          *out += fmt::format("\\u{:04x}", c);
        } else if (c < 0x80 || !json) {
          *out += static_cast<char>(c);
        } else {
          // A UTF-8 sequence: its length from the lead byte, continuation
          // bytes 10xxxxxx; overlong and surrogate forms are not checked (the
          // text is a log line, not data).
          size_t len = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
          bool ok = len > 0 && i + len <= value.size();
          for (size_t k = 1; ok && k < len; ++k) {
            ok = (static_cast<unsigned char>(value[i + k]) & 0xc0) == 0x80;
          }
          if (ok) {
            out->append(value.substr(i, len));
            i += len;
            continue;
          }
          *out += "\\ufffd";
        }
    }
    ++i;
  }
}

void AppendJsonString(std::string_view value, std::string* out) {
  *out += '"';
  AppendEscaped(value, /*json=*/true, out);
  *out += '"';
}

// Renders lines: ts, level, component, then the message's own fields.
class LineFormatter final : public spdlog::formatter {
 public:
  explicit LineFormatter(LogFormat format) : format_(format) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const std::string_view payload(msg.payload.data(), msg.payload.size());
    std::vector<std::pair<std::string, std::string>> fields;
    if (!ParseLogfmt(payload, &fields) || fields.empty() || fields[0].first != "msg") {
      fields = {{"msg", std::string(payload)}};
    }
    std::string line;
    const std::string ts = Timestamp(msg.time);
    const std::string_view component(msg.logger_name.data(), msg.logger_name.size());
    if (format_ == LogFormat::kJson) {
      line += "{\"ts\":";
      AppendJsonString(ts, &line);
      line += ",\"level\":";
      AppendJsonString(LevelName(msg.level), &line);
      line += ",\"component\":";
      AppendJsonString(component, &line);
      for (const auto& [key, value] : fields) {
        line += ',';
        AppendJsonString(key, &line);
        line += ':';
        AppendJsonString(value, &line);
      }
      line += "}\n";
    } else {
      line += "ts=" + ts;
      AppendLogfmtField("level", LevelName(msg.level), &line);
      AppendLogfmtField("component", component, &line);
      for (const auto& [key, value] : fields) AppendLogfmtField(key, value, &line);
      line += '\n';
    }
    dest.append(line.data(), line.data() + line.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<LineFormatter>(format_);
  }

 private:
  // ISO-8601 UTC with milliseconds: 2026-01-02T03:04:05.678Z.
  static std::string Timestamp(spdlog::log_clock::time_point t) {
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    const time_t secs = static_cast<time_t>(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900,
                       tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms % 1000);
  }

  const LogFormat format_;
};

spdlog::sink_ptr StderrSink(LogFormat format) {
  // One sink per format, shared by every logger in it: its mutex keeps
  // lines whole.
  auto make = [](LogFormat f) {
    auto s = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    s->set_formatter(MakeLineFormatter(f));
    return s;
  };
  static spdlog::sink_ptr logfmt = make(LogFormat::kLogfmt);
  static spdlog::sink_ptr json = make(LogFormat::kJson);
  return format == LogFormat::kJson ? json : logfmt;
}

}  // namespace

std::string_view LevelName(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    default:
      return "error";
  }
}

void AppendLogfmtField(std::string_view key, std::string_view value, std::string* out) {
  *out += ' ';
  out->append(key);
  *out += '=';
  if (!NeedsQuotes(value)) {
    out->append(value);
    return;
  }
  *out += '"';
  AppendEscaped(value, /*json=*/false, out);
  *out += '"';
}

bool ParseLogfmt(std::string_view text, std::vector<std::pair<std::string, std::string>>* fields) {
  fields->clear();
  size_t i = 0;
  while (i < text.size()) {
    if (i > 0) {
      if (text[i] != ' ') return false;
      ++i;
    }
    const size_t eq = text.find('=', i);
    if (eq == std::string_view::npos || eq == i) return false;
    std::string_view key = text.substr(i, eq - i);
    if (NeedsQuotes(key)) return false;
    i = eq + 1;
    std::string value;
    if (i < text.size() && text[i] == '"') {
      ++i;
      for (;;) {
        if (i >= text.size()) return false;  // unterminated
        const char c = text[i++];
        if (c == '"') break;
        if (static_cast<unsigned char>(c) < 0x20) return false;
        if (c != '\\') {
          value += c;
          continue;
        }
        if (i >= text.size()) return false;
        const char e = text[i++];
        if (e == '"' || e == '\\') {
          value += e;
        } else if (e == 'n') {
          value += '\n';
        } else if (e == 'r') {
          value += '\r';
        } else if (e == 't') {
          value += '\t';
        } else if (e == 'u' && i + 4 <= text.size() && text.substr(i, 2) == "00") {
          unsigned v = 0;
          for (char h : text.substr(i + 2, 2)) {
            v = v * 16 + (h >= '0' && h <= '9'   ? h - '0'
                          : h >= 'a' && h <= 'f' ? h - 'a' + 10
                                                 : 256);
          }
          if (v > 0xff) return false;
          value += static_cast<char>(v);
          i += 4;
        } else {
          return false;
        }
      }
      if (i < text.size() && text[i] != ' ') return false;
    } else {
      const size_t end = std::min(text.find(' ', i), text.size());
      value = std::string(text.substr(i, end - i));
      if (NeedsQuotes(value)) return false;
      i = end;
    }
    fields->emplace_back(std::string(key), std::move(value));
  }
  return true;
}

Logger MakeLogger(const std::string& name, spdlog::level::level_enum level, LogFormat format) {
  auto logger = std::make_shared<spdlog::logger>(name, StderrSink(format));
  logger->set_level(level);
  logger->flush_on(spdlog::level::info);
  return logger;
}

Logger NullLogger() {
  static Logger logger =
      std::make_shared<spdlog::logger>("null", std::make_shared<spdlog::sinks::null_sink_mt>());
  return logger;
}

std::unique_ptr<spdlog::formatter> MakeLineFormatter(LogFormat format) {
  return std::make_unique<LineFormatter>(format);
}

absl::StatusOr<spdlog::level::level_enum> ParseLogLevel(const std::string& name) {
  if (name == "debug") return spdlog::level::debug;
  if (name == "info") return spdlog::level::info;
  if (name == "warn") return spdlog::level::warn;
  if (name == "error") return spdlog::level::err;
  return absl::InvalidArgumentError("want one of debug, info, warn, error; got \"" + name + "\"");
}

absl::StatusOr<LogFormat> ParseLogFormat(const std::string& name) {
  if (name == "logfmt") return LogFormat::kLogfmt;
  if (name == "json") return LogFormat::kJson;
  return absl::InvalidArgumentError("want logfmt or json, got \"" + name + "\"");
}

}  // namespace espy::base
