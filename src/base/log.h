// Logging: spdlog loggers handed to components through their Options, never
// looked up in spdlog's global registry. Every line is a message plus
// key-value fields, written as logfmt
//   ts=2026-01-02T03:04:05.678Z level=info component=storage msg="wal replayed" segments=3
// or as one JSON object per line (--log-format json) with the same keys.
//
// Call sites log through Info/Warn/Error/Debug below, which quote and escape
// every value; the line formatter (MakeLineFormatter) adds ts, level and
// component and renders the line in the chosen format. A message logged
// straight through spdlog (logger->info("...")) still comes out as a valid
// line: text that is not a well-formed "msg=... key=value" body becomes the
// msg value as a whole.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "base/fmt_absl.h"
#include "spdlog/formatter.h"
#include "spdlog/spdlog.h"

namespace espy::base {

using Logger = std::shared_ptr<spdlog::logger>;

enum class LogFormat { kLogfmt, kJson };

// A logger writing to stderr with the given component name, at `level`
// ("debug", "info", "warn", "error"), in `format`. Thread-safe, as spdlog's
// loggers are; lines from concurrent threads never interleave.
Logger MakeLogger(const std::string& name, spdlog::level::level_enum level = spdlog::level::info,
                  LogFormat format = LogFormat::kLogfmt);

// A logger that drops everything (tests, benchmarks).
Logger NullLogger();

// The formatter MakeLogger's sinks use, for sinks of one's own (tests).
std::unique_ptr<spdlog::formatter> MakeLineFormatter(LogFormat format);

// Parses a level or format name; an error names what is expected.
absl::StatusOr<spdlog::level::level_enum> ParseLogLevel(const std::string& name);
absl::StatusOr<LogFormat> ParseLogFormat(const std::string& name);

// The level names lines carry, the same the --log-level flag takes: "debug",
// "info", "warn", "error" (trace counts as debug, critical as error).
std::string_view LevelName(spdlog::level::level_enum level);

// Appends ` key=value` to *out, quoting the value if it is empty or holds a
// space, '=', '"' or a control character, and then escaping '"', '\' and
// control characters (\n, \t, \r, \u00XX) inside the quotes.
void AppendLogfmtField(std::string_view key, std::string_view value, std::string* out);

// Parses a logfmt body "k1=v1 k2="v 2" ..." as AppendLogfmtField writes it
// (separated by single spaces); false if `text` is not exactly that.
bool ParseLogfmt(std::string_view text, std::vector<std::pair<std::string, std::string>>* fields);

namespace log_internal {

template <typename T>
std::string FieldText(const T& value) {
  if constexpr (std::is_convertible_v<const T&, std::string_view>) {
    return std::string(std::string_view(value));
  } else {
    return fmt::format("{}", value);
  }
}

template <typename... Fields>
std::string Body(std::string_view msg, const Fields&... fields) {
  static_assert(sizeof...(fields) % 2 == 0, "fields are key, value pairs");
  std::string body;
  AppendLogfmtField("msg", msg, &body);
  std::vector<std::string> texts = {FieldText(fields)...};
  for (size_t i = 0; i + 1 < texts.size(); i += 2) AppendLogfmtField(texts[i], texts[i + 1], &body);
  return body.substr(1);  // the leading space
}

}  // namespace log_internal

// Logs `msg` with key-value fields: Info(log, "wal replayed", "segments", 3,
// "dir", dir). Keys are plain words (no spaces, '=' or quotes); values are
// anything fmt formats, quoted and escaped as needed.
template <typename... Fields>
void Log(const Logger& logger, spdlog::level::level_enum level, std::string_view msg,
         const Fields&... fields) {
  if (!logger->should_log(level)) return;
  logger->log(level, std::string_view(log_internal::Body(msg, fields...)));
}
template <typename... Fields>
void Debug(const Logger& logger, std::string_view msg, const Fields&... fields) {
  Log(logger, spdlog::level::debug, msg, fields...);
}
template <typename... Fields>
void Info(const Logger& logger, std::string_view msg, const Fields&... fields) {
  Log(logger, spdlog::level::info, msg, fields...);
}
template <typename... Fields>
void Warn(const Logger& logger, std::string_view msg, const Fields&... fields) {
  Log(logger, spdlog::level::warn, msg, fields...);
}
template <typename... Fields>
void Error(const Logger& logger, std::string_view msg, const Fields&... fields) {
  Log(logger, spdlog::level::err, msg, fields...);
}

}  // namespace espy::base
