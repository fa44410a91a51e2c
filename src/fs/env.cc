// Helpers written once over any Env (see env.h).
#include "fs/env.h"

#include "base/status_macros.h"
#include "fmt/format.h"

namespace espy::fs {

absl::StatusOr<std::string> ReadFile(Env* env, const std::string& path) {
  ESPY_ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> file, env->NewRandomAccessFile(path));
  ESPY_ASSIGN_OR_RETURN(uint64_t size, file->Size());
  std::string out(size, '\0');
  ESPY_ASSIGN_OR_RETURN(std::string_view got, file->Read(0, out.size(), out.data()));
  out.resize(got.size());
  return out;
}

absl::Status WriteFileSynced(Env* env, const std::string& path, std::string_view data) {
  ESPY_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file,
                        env->NewWritableFile(path, OpenMode::kTruncate));
  ESPY_RETURN_IF_ERROR(file->Append(data));
  ESPY_RETURN_IF_ERROR(file->DataSync());
  return file->Close();
}

std::string Dirname(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

absl::Status CreateDirs(Env* env, const std::string& dir) {
  absl::StatusOr<FileInfo> info = env->Stat(dir);
  if (info.ok()) {
    if (info->is_dir) return absl::OkStatus();
    return absl::FailedPreconditionError(fmt::format("create directory {}: Not a directory", dir));
  }
  if (!absl::IsNotFound(info.status())) return info.status();
  const std::string parent = Dirname(dir);
  if (parent != dir) ESPY_RETURN_IF_ERROR(CreateDirs(env, parent));
  ESPY_RETURN_IF_ERROR(env->CreateDir(dir));
  return env->SyncDir(parent);
}

bool Exists(Env* env, const std::string& path) { return env->Stat(path).ok(); }

}  // namespace espy::fs
