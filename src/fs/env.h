// Env: every file-system call storage makes goes through here, so that tests
// can swap the disk for memory and simulate a power cut (fault_env.h). A
// POSIX Env (Env::Default()) serves the real server. Paths are plain strings,
// '/'-separated. Errors name the call and the path:
// "fdatasync /data/wal/00000003: Input/output error". A missing file or
// directory is NotFound, an existing one where none may be AlreadyExists,
// a file where a directory is wanted (or back) FailedPrecondition, an
// operation the file system lacks Unimplemented, any other failure Internal.
//
//   fs::Env* env = fs::Env::Default();
//   ESPY_ASSIGN_OR_RETURN(auto f, env->NewWritableFile(path, fs::OpenMode::kTruncate));
//   ESPY_RETURN_IF_ERROR(f->Append(data));
//   ESPY_RETURN_IF_ERROR(f->DataSync());
//   ESPY_RETURN_IF_ERROR(env->SyncDir(dir));  // the new entry survives power loss
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace espy::fs {

enum class OpenMode {
  kCreateNew,  // create; AlreadyExists if the file exists
  kTruncate,   // create, or open and cut to 0 bytes
  kAppend,     // create, or open keeping the data; writes start at its end
};

// A file being written. Writes go to the write position, which starts at 0
// (kCreateNew, kTruncate) or at the end (kAppend) and moves past each
// Append; Allocate and Truncate change the size, not the position.
// Nothing is durable until Sync or DataSync returns OK. Thread-compatible.
// Destroying it closes the file (without syncing).
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Writes all of `data` at the write position.
  virtual absl::Status Append(std::string_view data) = 0;
  // Reserves [offset, offset + len) (fallocate mode 0): the file grows to
  // at least offset + len, reading zeros where nothing was written.
  // Unimplemented where the file system cannot.
  virtual absl::Status Allocate(uint64_t offset, uint64_t len) = 0;
  // Sets the file size (ftruncate).
  virtual absl::Status Truncate(uint64_t size) = 0;
  // fsync: data and metadata durable.
  virtual absl::Status Sync() = 0;
  // fdatasync: data, and the size if it changed, durable.
  virtual absl::Status DataSync() = 0;
  // Closes the file; later calls fail. Reports what close(2) reports.
  virtual absl::Status Close() = 0;
  virtual const std::string& path() const = 0;
};

// A file read at any offset. Thread-safe.
class RandomAccessFile {
 public:
  virtual ~RandomAccessFile() = default;
  // Reads up to n bytes at `offset` into scratch and returns a view of what
  // was read (shorter only at the end of the file).
  virtual absl::StatusOr<std::string_view> Read(uint64_t offset, size_t n, char* scratch) const = 0;
  virtual absl::StatusOr<uint64_t> Size() const = 0;
};

// A read-only mapping of a whole file as it was when mapped; unmapped on
// destruction. Its bytes stay valid for its lifetime even if the file is
// removed or renamed. Thread-safe.
class MappedRegion {
 public:
  virtual ~MappedRegion() = default;
  virtual const char* data() const = 0;  // null when size() is 0
  virtual size_t size() const = 0;
  std::string_view view() const { return {data(), size()}; }
};

// Held while a lock file is locked; destroying it unlocks.
class FileLock {
 public:
  virtual ~FileLock() = default;
};

struct FileInfo {
  bool is_dir = false;
  uint64_t size = 0;  // files only
};

// Thread-safe.
class Env {
 public:
  virtual ~Env() = default;
  // The POSIX Env; never destroyed.
  static Env* Default();

  virtual absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path,
                                                                        OpenMode mode) = 0;
  virtual absl::StatusOr<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) = 0;
  // Maps a regular file read-only (FailedPrecondition for a directory).
  // `sequential` hints that it will be read once, front to back (readahead).
  virtual absl::StatusOr<std::unique_ptr<MappedRegion>> MapFile(const std::string& path,
                                                                bool sequential = false) = 0;

  // NotFound if nothing is at `path`.
  virtual absl::StatusOr<FileInfo> Stat(const std::string& path) = 0;
  // The names in a directory (not "." or ".."), in no order.
  virtual absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  // Makes one directory; OK if it exists as a directory already. Its parent
  // must exist. Durable once the parent is synced (SyncDir).
  virtual absl::Status CreateDir(const std::string& dir) = 0;
  // Removes a file (not a directory).
  virtual absl::Status RemoveFile(const std::string& path) = 0;
  // Removes a directory and everything under it; OK if it is missing.
  virtual absl::Status RemoveTree(const std::string& dir) = 0;
  // rename(2): a file, or a directory onto a missing or empty one; an
  // existing target file is replaced atomically. Durable once the parent
  // directories are synced.
  virtual absl::Status Rename(const std::string& from, const std::string& to) = 0;
  // fsync of a directory: the creations, renames and removals of its
  // entries made so far survive power loss.
  virtual absl::Status SyncDir(const std::string& dir) = 0;
  // Creates `path` if needed and takes an exclusive lock on it, released
  // when the FileLock is destroyed (or the process dies). FailedPrecondition
  // when someone else holds it.
  virtual absl::StatusOr<std::unique_ptr<FileLock>> LockFile(const std::string& path) = 0;
};

// ---- Helpers over any Env (env.cc) ----

// The whole file.
absl::StatusOr<std::string> ReadFile(Env* env, const std::string& path);
// Writes `data` to `path` (replacing it) and fdatasyncs it. The directory
// entry is not synced: the caller syncs the directory (or renames into place
// and syncs) when the name must survive power loss.
absl::Status WriteFileSynced(Env* env, const std::string& path, std::string_view data);
// Creates `dir` and its missing parents, syncing the parent of each one
// made, so that the whole path survives power loss.
absl::Status CreateDirs(Env* env, const std::string& dir);
// Whether something is at `path` (false also when it cannot be told).
bool Exists(Env* env, const std::string& path);
// "a/b" -> "a"; "b" -> "."; "/b" -> "/".
std::string Dirname(const std::string& path);

}  // namespace espy::fs
