#include "base/log.h"

#include "spdlog/pattern_formatter.h"
#include "spdlog/sinks/null_sink.h"
#include "spdlog/sinks/stdout_sinks.h"

namespace espy::base {

namespace {

spdlog::sink_ptr StderrSink() {
  static spdlog::sink_ptr sink = [] {
    auto s = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    // ISO-8601 UTC time, level, component, then the message's key=value pairs.
    s->set_formatter(std::make_unique<spdlog::pattern_formatter>(
        "ts=%Y-%m-%dT%H:%M:%S.%eZ level=%l component=%n %v", spdlog::pattern_time_type::utc));
    return s;
  }();
  return sink;
}

}  // namespace

Logger MakeLogger(const std::string& name, spdlog::level::level_enum level) {
  auto logger = std::make_shared<spdlog::logger>(name, StderrSink());
  logger->set_level(level);
  logger->flush_on(spdlog::level::info);
  return logger;
}

Logger NullLogger() {
  static Logger logger =
      std::make_shared<spdlog::logger>("null", std::make_shared<spdlog::sinks::null_sink_mt>());
  return logger;
}

absl::StatusOr<spdlog::level::level_enum> ParseLogLevel(const std::string& name) {
  if (name == "debug") return spdlog::level::debug;
  if (name == "info") return spdlog::level::info;
  if (name == "warn") return spdlog::level::warn;
  if (name == "error") return spdlog::level::err;
  return absl::InvalidArgumentError("want one of debug, info, warn, error; got \"" + name + "\"");
}

}  // namespace espy::base
