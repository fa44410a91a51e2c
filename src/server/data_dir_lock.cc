#include "server/data_dir_lock.h"

#include "base/fmt_absl.h"
#include "fmt/format.h"

namespace espy::server {

absl::StatusOr<std::unique_ptr<DataDirLock>> DataDirLock::Acquire(const std::string& dir,
                                                                  fs::Env* env) {
  if (absl::Status s = fs::CreateDirs(env, dir); !s.ok()) {
    return absl::FailedPreconditionError(
        fmt::format("data dir {}: cannot create: {}", dir, s.message()));
  }
  std::string path = dir + "/LOCK";
  absl::StatusOr<std::unique_ptr<fs::FileLock>> lock = env->LockFile(path);
  if (absl::IsFailedPrecondition(lock.status())) {
    return absl::FailedPreconditionError(
        fmt::format("data dir {} is in use by another espy process (lock {} is held)", dir, path));
  }
  if (!lock.ok()) {
    return absl::FailedPreconditionError(
        fmt::format("data dir {}: cannot lock: {}", dir, lock.status().message()));
  }
  return std::unique_ptr<DataDirLock>(new DataDirLock(*std::move(lock)));
}

DataDirLock::~DataDirLock() = default;

}  // namespace espy::server
