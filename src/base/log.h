// Logging: spdlog loggers handed to components through their Options, never
// looked up in spdlog's global registry. Lines are "key=value" structured text.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "base/fmt_absl.h"
#include "spdlog/spdlog.h"

namespace espy::base {

using Logger = std::shared_ptr<spdlog::logger>;

// A logger writing to stderr with the given component name, at `level`
// ("debug", "info", "warn", "error").
Logger MakeLogger(const std::string& name, spdlog::level::level_enum level = spdlog::level::info);

// A logger that drops everything (tests, benchmarks).
Logger NullLogger();

// Parses a level name; an error names what is expected.
absl::StatusOr<spdlog::level::level_enum> ParseLogLevel(const std::string& name);

}  // namespace espy::base
