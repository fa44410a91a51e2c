// DataDirLock: one server per data directory. Holds an exclusive lock on
// <dir>/LOCK (fs::Env::LockFile: flock(2) on POSIX) for its lifetime; the
// kernel drops it when the process dies, so a crash never leaves a stale
// lock behind.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "fs/env.h"

namespace espy::server {

// Thread-compatible.
class DataDirLock {
 public:
  // Creates `dir` if needed and locks it. FailedPrecondition naming the
  // directory when another process holds the lock.
  // "*env" must outlive the lock.
  static absl::StatusOr<std::unique_ptr<DataDirLock>> Acquire(const std::string& dir,
                                                              fs::Env* env = fs::Env::Default());
  ~DataDirLock();
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;

 private:
  explicit DataDirLock(std::unique_ptr<fs::FileLock> lock) : lock_(std::move(lock)) {}
  std::unique_ptr<fs::FileLock> lock_;
};

}  // namespace espy::server
