// MemEnv (see mem_env.h): an inode tree in memory. Each inode holds its live
// state and its durable state side by side; syncs copy live to durable, and
// DropUnsyncedData copies durable back to live.
#include "fs/mem_env.h"

#include <map>
#include <unordered_set>
#include <vector>

#include "absl/strings/str_split.h"
#include "fmt/format.h"

namespace espy::fs {

struct MemEnv::Inode {
  explicit Inode(bool dir) : is_dir(dir) {}
  const bool is_dir;
  // Files: the bytes now, and as of the last Sync/DataSync.
  std::string data;
  std::string synced;
  // Directories: the entries now, and as of the last SyncDir.
  std::map<std::string, std::shared_ptr<Inode>> entries;
  std::map<std::string, std::shared_ptr<Inode>> synced_entries;
};

namespace {

std::vector<std::string> Components(const std::string& path) {
  std::vector<std::string> parts;
  for (absl::string_view p : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (p != ".") parts.emplace_back(p);
  }
  return parts;
}

std::string Normalize(const std::string& path) {
  std::string out;
  for (const std::string& p : Components(path)) out += "/" + p;
  return out.empty() ? "/" : out;
}

absl::Status NotFound(std::string_view what, const std::string& path) {
  return absl::NotFoundError(fmt::format("{} {}: No such file or directory", what, path));
}

class MemRegion final : public MappedRegion {
 public:
  explicit MemRegion(std::string bytes) : bytes_(std::move(bytes)) {}
  const char* data() const override { return bytes_.empty() ? nullptr : bytes_.data(); }
  size_t size() const override { return bytes_.size(); }

 private:
  const std::string bytes_;
};

class MemRandomAccessFile final : public RandomAccessFile {
 public:
  explicit MemRandomAccessFile(std::string bytes) : bytes_(std::move(bytes)) {}
  absl::StatusOr<std::string_view> Read(uint64_t offset, size_t n, char* scratch) const override {
    if (offset >= bytes_.size()) return std::string_view(scratch, 0);
    size_t len = std::min<uint64_t>(n, bytes_.size() - offset);
    std::copy_n(bytes_.data() + offset, len, scratch);
    return std::string_view(scratch, len);
  }
  absl::StatusOr<uint64_t> Size() const override { return bytes_.size(); }

 private:
  const std::string bytes_;
};

}  // namespace

class MemWritableFile final : public WritableFile {
 public:
  MemWritableFile(MemEnv* env, std::string path, std::shared_ptr<MemEnv::Inode> inode, uint64_t pos)
      : env_(env), path_(std::move(path)), inode_(std::move(inode)), pos_(pos) {}

  absl::Status Append(std::string_view data) override {
    absl::MutexLock lock(&env_->mu_);
    if (absl::Status s = Usable("write"); !s.ok()) return s;
    std::string& d = inode_->data;
    if (d.size() < pos_ + data.size()) d.resize(pos_ + data.size(), '\0');
    d.replace(pos_, data.size(), data);
    pos_ += data.size();
    return absl::OkStatus();
  }

  absl::Status Allocate(uint64_t offset, uint64_t len) override {
    absl::MutexLock lock(&env_->mu_);
    if (absl::Status s = Usable("fallocate"); !s.ok()) return s;
    if (inode_->data.size() < offset + len) inode_->data.resize(offset + len, '\0');
    return absl::OkStatus();
  }

  absl::Status Truncate(uint64_t size) override {
    absl::MutexLock lock(&env_->mu_);
    if (absl::Status s = Usable("ftruncate"); !s.ok()) return s;
    inode_->data.resize(size, '\0');
    return absl::OkStatus();
  }

  absl::Status Sync() override { return DoSync("fsync"); }
  absl::Status DataSync() override { return DoSync("fdatasync"); }

  absl::Status Close() override {
    if (closed_) return absl::FailedPreconditionError(fmt::format("{}: file is closed", path_));
    closed_ = true;
    return absl::OkStatus();
  }

  const std::string& path() const override { return path_; }

 private:
  absl::Status Usable(std::string_view what) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(env_->mu_) {
    if (closed_) return absl::FailedPreconditionError(fmt::format("{}: file is closed", path_));
    return env_->PowerOn(std::string(what), path_);
  }

  absl::Status DoSync(const std::string& what) {
    absl::MutexLock lock(&env_->mu_);
    if (absl::Status s = Usable(what); !s.ok()) return s;
    if (absl::Status s = env_->SyncPoint(what, path_); !s.ok()) return s;
    inode_->synced = inode_->data;
    return absl::OkStatus();
  }

  MemEnv* const env_;
  const std::string path_;
  const std::shared_ptr<MemEnv::Inode> inode_;
  uint64_t pos_;
  bool closed_ = false;
};

class MemFileLock final : public FileLock {
 public:
  MemFileLock(MemEnv* env, std::string path) : env_(env), path_(std::move(path)) {}
  ~MemFileLock() override {
    absl::MutexLock lock(&env_->mu_);
    env_->locks_.erase(path_);
  }

 private:
  MemEnv* const env_;
  const std::string path_;
};

MemEnv::MemEnv() : root_(std::make_shared<Inode>(/*dir=*/true)) {}
MemEnv::~MemEnv() = default;

absl::Status MemEnv::PowerOn(const std::string& what, const std::string& path) const {
  if (!crashed_) return absl::OkStatus();
  return absl::InternalError(
      fmt::format("{} {}: power cut at sync point {}", what, path, crash_at_));
}

absl::Status MemEnv::SyncPoint(const std::string& what, const std::string& path) {
  if (absl::Status s = PowerOn(what, path); !s.ok()) return s;
  ++sync_points_;
  if (crash_at_ != 0 && sync_points_ == crash_at_) {
    crashed_ = true;
    return PowerOn(what, path);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<MemEnv::Inode>> MemEnv::Lookup(const std::string& path) const {
  std::shared_ptr<Inode> node = root_;
  for (const std::string& part : Components(path)) {
    if (!node->is_dir)
      return absl::FailedPreconditionError(fmt::format("{}: a component is not a directory", path));
    auto it = node->entries.find(part);
    if (it == node->entries.end()) return NotFound("stat", path);
    node = it->second;
  }
  return node;
}

absl::StatusOr<std::pair<std::shared_ptr<MemEnv::Inode>, std::string>> MemEnv::LookupParent(
    const std::string& path) const {
  std::vector<std::string> parts = Components(path);
  if (parts.empty()) return absl::InvalidArgumentError(fmt::format("{}: is the root", path));
  std::string name = parts.back();
  parts.pop_back();
  std::shared_ptr<Inode> node = root_;
  for (const std::string& part : parts) {
    auto it = node->entries.find(part);
    if (it == node->entries.end()) return NotFound("open", path);
    node = it->second;
    if (!node->is_dir) {
      return absl::FailedPreconditionError(fmt::format("{}: a component is not a directory", path));
    }
  }
  return std::make_pair(node, name);
}

absl::StatusOr<std::unique_ptr<WritableFile>> MemEnv::NewWritableFile(const std::string& path,
                                                                      OpenMode mode) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = PowerOn("create", path); !s.ok()) return s;
  auto parent = LookupParent(path);
  if (!parent.ok()) return parent.status();
  auto& [dir, name] = *parent;
  std::shared_ptr<Inode>& slot = dir->entries[name];
  if (slot == nullptr) {
    slot = std::make_shared<Inode>(/*dir=*/false);
  } else if (slot->is_dir) {
    return absl::FailedPreconditionError(fmt::format("create {}: is a directory", path));
  } else if (mode == OpenMode::kCreateNew) {
    return absl::AlreadyExistsError(fmt::format("create {}: File exists", path));
  } else if (mode == OpenMode::kTruncate) {
    slot->data.clear();
  }
  uint64_t pos = mode == OpenMode::kAppend ? slot->data.size() : 0;
  return std::make_unique<MemWritableFile>(this, path, slot, pos);
}

absl::StatusOr<std::unique_ptr<RandomAccessFile>> MemEnv::NewRandomAccessFile(
    const std::string& path) {
  absl::MutexLock lock(&mu_);
  auto node = Lookup(path);
  if (!node.ok()) return node.status();
  if ((*node)->is_dir)
    return absl::FailedPreconditionError(fmt::format("open {}: is a directory", path));
  return std::make_unique<MemRandomAccessFile>((*node)->data);
}

absl::StatusOr<std::unique_ptr<MappedRegion>> MemEnv::MapFile(const std::string& path,
                                                              bool /*sequential*/) {
  absl::MutexLock lock(&mu_);
  auto node = Lookup(path);
  if (!node.ok()) return node.status();
  if ((*node)->is_dir) {
    return absl::FailedPreconditionError(fmt::format("mmap {}: not a regular file", path));
  }
  return std::make_unique<MemRegion>((*node)->data);
}

absl::StatusOr<FileInfo> MemEnv::Stat(const std::string& path) {
  absl::MutexLock lock(&mu_);
  auto node = Lookup(path);
  if (!node.ok()) return node.status();
  FileInfo info;
  info.is_dir = (*node)->is_dir;
  info.size = info.is_dir ? 0 : (*node)->data.size();
  return info;
}

absl::StatusOr<std::vector<std::string>> MemEnv::ListDir(const std::string& dir) {
  absl::MutexLock lock(&mu_);
  auto node = Lookup(dir);
  if (!node.ok()) return node.status();
  if (!(*node)->is_dir) {
    return absl::FailedPreconditionError(fmt::format("list {}: not a directory", dir));
  }
  std::vector<std::string> names;
  for (const auto& [name, child] : (*node)->entries) names.push_back(name);
  return names;
}

absl::Status MemEnv::CreateDir(const std::string& dir) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = PowerOn("create directory", dir); !s.ok()) return s;
  if (Components(dir).empty()) return absl::OkStatus();  // the root
  auto parent = LookupParent(dir);
  if (!parent.ok()) return parent.status();
  auto& [node, name] = *parent;
  std::shared_ptr<Inode>& slot = node->entries[name];
  if (slot == nullptr) {
    slot = std::make_shared<Inode>(/*dir=*/true);
  } else if (!slot->is_dir) {
    return absl::InternalError(fmt::format("create directory {}: Not a directory", dir));
  }
  return absl::OkStatus();
}

absl::Status MemEnv::RemoveFile(const std::string& path) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = PowerOn("remove", path); !s.ok()) return s;
  auto parent = LookupParent(path);
  if (!parent.ok()) return parent.status();
  auto& [dir, name] = *parent;
  auto it = dir->entries.find(name);
  if (it == dir->entries.end()) return NotFound("remove", path);
  if (it->second->is_dir) {
    return absl::FailedPreconditionError(fmt::format("remove {}: is a directory", path));
  }
  dir->entries.erase(it);
  return absl::OkStatus();
}

absl::Status MemEnv::RemoveTree(const std::string& path) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = PowerOn("remove", path); !s.ok()) return s;
  auto parent = LookupParent(path);
  if (!parent.ok()) return absl::IsNotFound(parent.status()) ? absl::OkStatus() : parent.status();
  auto& [dir, name] = *parent;
  // The subtree's inodes keep their durable entries: if the removal is not
  // synced, a power cut brings back what was durable inside it.
  dir->entries.erase(name);
  return absl::OkStatus();
}

absl::Status MemEnv::Rename(const std::string& from, const std::string& to) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = PowerOn("rename", from); !s.ok()) return s;
  const std::string nfrom = Normalize(from), nto = Normalize(to);
  if (nto.size() > nfrom.size() && nto.compare(0, nfrom.size() + 1, nfrom + "/") == 0) {
    return absl::InvalidArgumentError(fmt::format("rename {} to {}: into itself", from, to));
  }
  auto src = LookupParent(from);
  if (!src.ok()) return src.status();
  auto dst = LookupParent(to);
  if (!dst.ok()) return dst.status();
  auto& [src_dir, src_name] = *src;
  auto& [dst_dir, dst_name] = *dst;
  auto it = src_dir->entries.find(src_name);
  if (it == src_dir->entries.end()) return NotFound("rename", from);
  std::shared_ptr<Inode> node = it->second;
  auto target = dst_dir->entries.find(dst_name);
  if (target != dst_dir->entries.end()) {
    if (target->second == node) return absl::OkStatus();
    if (target->second->is_dir != node->is_dir) {
      return absl::FailedPreconditionError(
          fmt::format("rename {} to {}: file onto directory or back", from, to));
    }
    if (node->is_dir && !target->second->entries.empty()) {
      return absl::FailedPreconditionError(
          fmt::format("rename {} to {}: Directory not empty", from, to));
    }
  }
  src_dir->entries.erase(it);
  dst_dir->entries[dst_name] = std::move(node);
  return absl::OkStatus();
}

absl::Status MemEnv::SyncDir(const std::string& dir) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = PowerOn("fsync directory", dir); !s.ok()) return s;
  auto node = Lookup(dir);
  if (!node.ok()) return node.status();
  if (!(*node)->is_dir) {
    return absl::FailedPreconditionError(fmt::format("fsync directory {}: not a directory", dir));
  }
  if (absl::Status s = SyncPoint("fsync directory", dir); !s.ok()) return s;
  (*node)->synced_entries = (*node)->entries;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<FileLock>> MemEnv::LockFile(const std::string& path) {
  {
    absl::MutexLock lock(&mu_);
    if (locks_.contains(Normalize(path))) {
      return absl::FailedPreconditionError(fmt::format("lock {}: held by another process", path));
    }
  }
  absl::StatusOr<std::unique_ptr<WritableFile>> file = NewWritableFile(path, OpenMode::kAppend);
  if (!file.ok()) return file.status();
  absl::MutexLock lock(&mu_);
  if (!locks_.insert(Normalize(path)).second) {
    return absl::FailedPreconditionError(fmt::format("lock {}: held by another process", path));
  }
  return std::make_unique<MemFileLock>(this, Normalize(path));
}

void MemEnv::CrashAtSyncPoint(uint64_t n) {
  absl::MutexLock lock(&mu_);
  crash_at_ = n;
}

uint64_t MemEnv::sync_points() const {
  absl::MutexLock lock(&mu_);
  return sync_points_;
}

bool MemEnv::crashed() const {
  absl::MutexLock lock(&mu_);
  return crashed_;
}

void MemEnv::DropUnsyncedData() {
  absl::MutexLock lock(&mu_);
  std::unordered_set<const Inode*> seen;
  std::vector<Inode*> todo = {root_.get()};
  while (!todo.empty()) {
    Inode* node = todo.back();
    todo.pop_back();
    if (!seen.insert(node).second) continue;
    if (node->is_dir) {
      node->entries = node->synced_entries;
      for (const auto& [name, child] : node->entries) todo.push_back(child.get());
    } else {
      node->data = node->synced;
    }
  }
  crashed_ = false;
  crash_at_ = 0;
}

}  // namespace espy::fs
