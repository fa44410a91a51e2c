// Crash points for the crash tests: CrashPoint("name") kills the process
// with SIGKILL (as `kill -9` would) when the environment variable
// ESPY_CRASH_AT equals "name". Costs one getenv per call when unset, and is
// called only on rare paths (block write, compaction, WAL truncation).
#pragma once

#include <csignal>
#include <cstdlib>
#include <string_view>

namespace espy::storage {

inline void CrashPoint(std::string_view name) {
  const char* at = std::getenv("ESPY_CRASH_AT");
  if (at != nullptr && name == at) std::raise(SIGKILL);
}

}  // namespace espy::storage
