// MemEnv: an Env in memory that remembers what a power cut would keep, for
// crash tests (after LevelDB's memenv and fault_injection_test). For every
// file it keeps the bytes as of its last Sync/DataSync; for every directory,
// its entries as of its last SyncDir. DropUnsyncedData() is the power cut:
// each file goes back to its synced bytes (a file never synced is empty),
// each directory to its synced entries (creates, renames and removals not
// made durable by a SyncDir are undone; an inode no durable entry names is
// gone). CrashAtSyncPoint(n) cuts the power at the n-th sync point (a Sync,
// DataSync or SyncDir, counted from the call): that sync does not happen,
// and every later write, sync, create, rename or removal fails, as a dead
// machine's would, until DropUnsyncedData() turns the power back on.
//
// Paths: '/'-separated; relative ones start at the root. Mappings and
// readers see the file as it was when opened. Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "fs/env.h"

namespace espy::fs {

class MemEnv final : public Env {
 public:
  MemEnv();
  ~MemEnv() override;

  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path,
                                                                OpenMode mode) override;
  absl::StatusOr<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) override;
  absl::StatusOr<std::unique_ptr<MappedRegion>> MapFile(const std::string& path,
                                                        bool sequential) override;
  absl::StatusOr<FileInfo> Stat(const std::string& path) override;
  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) override;
  absl::Status CreateDir(const std::string& dir) override;
  absl::Status RemoveFile(const std::string& path) override;
  absl::Status RemoveTree(const std::string& dir) override;
  absl::Status Rename(const std::string& from, const std::string& to) override;
  absl::Status SyncDir(const std::string& dir) override;
  absl::StatusOr<std::unique_ptr<FileLock>> LockFile(const std::string& path) override;

  // Arms the power cut at sync point `n` (1: the next sync); 0 disarms.
  void CrashAtSyncPoint(uint64_t n);
  // Sync points passed (or cut at) since construction.
  uint64_t sync_points() const;
  // Whether the power is off (a cut happened, no DropUnsyncedData since).
  bool crashed() const;
  // The power cut and restart: drops everything not synced (see above),
  // disarms and turns the power back on. Files still open keep writing to
  // inodes no longer reachable, so close them first.
  void DropUnsyncedData();

  struct Inode;  // a file or a directory (mem_env.cc)

 private:
  friend class MemWritableFile;
  friend class MemFileLock;

  // The sync-point check: an error if the power is off or goes off now.
  absl::Status SyncPoint(const std::string& what, const std::string& path)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::shared_ptr<Inode>> Lookup(const std::string& path) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The parent directory of `path` and the last component's name.
  absl::StatusOr<std::pair<std::shared_ptr<Inode>, std::string>> LookupParent(
      const std::string& path) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // An error if the power is off.
  absl::Status PowerOn(const std::string& what, const std::string& path) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::shared_ptr<Inode> root_ ABSL_GUARDED_BY(mu_);
  uint64_t sync_points_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t crash_at_ ABSL_GUARDED_BY(mu_) = 0;
  bool crashed_ ABSL_GUARDED_BY(mu_) = false;
  std::set<std::string> locks_ ABSL_GUARDED_BY(mu_);  // normalized paths held
};

}  // namespace espy::fs
