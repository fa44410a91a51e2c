// DataDirLock: one server per data directory. Holds an exclusive flock(2) on
// <dir>/LOCK for its lifetime; the kernel drops it when the process dies, so
// a crash never leaves a stale lock behind.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace espy::server {

// Thread-compatible.
class DataDirLock {
 public:
  // Creates `dir` if needed and locks it. FailedPrecondition naming the
  // directory when another process holds the lock.
  static absl::StatusOr<std::unique_ptr<DataDirLock>> Acquire(const std::string& dir);
  ~DataDirLock();
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;

 private:
  explicit DataDirLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace espy::server
