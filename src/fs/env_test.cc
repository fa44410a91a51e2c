// The Env contract, run against the POSIX Env (in a temporary directory) and
// MemEnv; then MemEnv's power cuts: what survives DropUnsyncedData.
#include "fs/env.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "fs/mem_env.h"

namespace espy::fs {
namespace {

enum class Kind { kPosix, kMem };

class EnvContractTest : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    if (GetParam() == Kind::kPosix) {
      env_ = Env::Default();
      static int n = 0;
      root_ = ::testing::TempDir() + "/env_test_" + std::to_string(::getpid()) + "_" +
              std::to_string(n++);
      std::filesystem::remove_all(root_);
    } else {
      env_ = &mem_;
      root_ = "/data";
    }
    ASSERT_TRUE(CreateDirs(env_, root_).ok());
  }
  void TearDown() override {
    if (GetParam() == Kind::kPosix) std::filesystem::remove_all(root_);
  }
  std::string P(const std::string& name) const { return root_ + "/" + name; }
  std::string Read(const std::string& name) {
    absl::StatusOr<std::string> s = ReadFile(env_, P(name));
    return s.ok() ? *s : "error: " + s.status().ToString();
  }
  std::vector<std::string> List(const std::string& dir) {
    absl::StatusOr<std::vector<std::string>> names = env_->ListDir(dir);
    EXPECT_TRUE(names.ok()) << names.status();
    if (!names.ok()) return {};
    std::sort(names->begin(), names->end());
    return *names;
  }

  MemEnv mem_;
  Env* env_ = nullptr;
  std::string root_;
};

TEST_P(EnvContractTest, WriteThenRead) {
  auto f = env_->NewWritableFile(P("a"), OpenMode::kCreateNew);
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_TRUE((*f)->Append("hello ").ok());
  ASSERT_TRUE((*f)->Append("world").ok());
  ASSERT_TRUE((*f)->DataSync().ok());
  ASSERT_TRUE((*f)->Close().ok());
  EXPECT_EQ(Read("a"), "hello world");
  auto info = env_->Stat(P("a"));
  ASSERT_TRUE(info.ok());
  EXPECT_FALSE(info->is_dir);
  EXPECT_EQ(info->size, 11u);

  auto r = env_->NewRandomAccessFile(P("a"));
  ASSERT_TRUE(r.ok());
  char scratch[16];
  auto got = (*r)->Read(6, 16, scratch);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "world");  // short at the end of the file
  got = (*r)->Read(40, 4, scratch);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "");
}

TEST_P(EnvContractTest, OpenModes) {
  ASSERT_TRUE(WriteFileSynced(env_, P("a"), "abc").ok());
  EXPECT_TRUE(absl::IsAlreadyExists(env_->NewWritableFile(P("a"), OpenMode::kCreateNew).status()));
  {
    auto f = env_->NewWritableFile(P("a"), OpenMode::kAppend);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Append("def").ok());
  }
  EXPECT_EQ(Read("a"), "abcdef");
  {
    auto f = env_->NewWritableFile(P("a"), OpenMode::kTruncate);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Append("x").ok());
  }
  EXPECT_EQ(Read("a"), "x");
}

TEST_P(EnvContractTest, AllocateAndTruncateKeepThePosition) {
  auto f = env_->NewWritableFile(P("a"), OpenMode::kCreateNew);
  ASSERT_TRUE(f.ok());
  absl::Status s = (*f)->Allocate(0, 10);
  if (absl::IsUnimplemented(s)) GTEST_SKIP() << s;
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(env_->Stat(P("a"))->size, 10u);
  ASSERT_TRUE((*f)->Append("abc").ok());  // over the reserved zeros
  EXPECT_EQ(Read("a"), std::string("abc") + std::string(7, '\0'));
  ASSERT_TRUE((*f)->Truncate(3).ok());
  ASSERT_TRUE((*f)->Append("d").ok());
  EXPECT_EQ(Read("a"), "abcd");
}

TEST_P(EnvContractTest, MapFile) {
  ASSERT_TRUE(WriteFileSynced(env_, P("a"), "mapped bytes").ok());
  auto m = env_->MapFile(P("a"));
  ASSERT_TRUE(m.ok()) << m.status();
  // The mapping outlives the name.
  ASSERT_TRUE(env_->RemoveFile(P("a")).ok());
  EXPECT_EQ((*m)->view(), "mapped bytes");
  ASSERT_TRUE(WriteFileSynced(env_, P("empty"), "").ok());
  auto e = env_->MapFile(P("empty"));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ((*e)->size(), 0u);
  EXPECT_TRUE(absl::IsNotFound(env_->MapFile(P("missing")).status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(env_->MapFile(root_).status()));
}

TEST_P(EnvContractTest, DirectoriesRenameAndRemove) {
  ASSERT_TRUE(env_->CreateDir(P("d")).ok());
  ASSERT_TRUE(env_->CreateDir(P("d")).ok());  // exists already: fine
  ASSERT_TRUE(WriteFileSynced(env_, P("d/f"), "1").ok());
  ASSERT_TRUE(env_->CreateDir(P("d/sub")).ok());
  ASSERT_TRUE(WriteFileSynced(env_, P("d/sub/g"), "2").ok());
  EXPECT_EQ(List(P("d")), (std::vector<std::string>{"f", "sub"}));
  EXPECT_TRUE(env_->Stat(P("d"))->is_dir);
  EXPECT_FALSE(env_->CreateDir(P("d/f")).ok());  // a file is there
  EXPECT_FALSE(env_->CreateDir(P("nope/x")).ok());

  // A file replaces another atomically; a directory moves whole.
  ASSERT_TRUE(WriteFileSynced(env_, P("d/f.tmp"), "new").ok());
  ASSERT_TRUE(env_->Rename(P("d/f.tmp"), P("d/f")).ok());
  EXPECT_EQ(Read("d/f"), "new");
  ASSERT_TRUE(env_->Rename(P("d"), P("e")).ok());
  EXPECT_EQ(Read("e/sub/g"), "2");
  EXPECT_TRUE(absl::IsNotFound(env_->Stat(P("d")).status()));
  EXPECT_TRUE(absl::IsNotFound(env_->Rename(P("d"), P("x"))));
  ASSERT_TRUE(env_->SyncDir(root_).ok());

  EXPECT_FALSE(env_->RemoveFile(P("e")).ok());  // a directory
  ASSERT_TRUE(env_->RemoveFile(P("e/f")).ok());
  EXPECT_TRUE(absl::IsNotFound(env_->RemoveFile(P("e/f"))));
  ASSERT_TRUE(env_->RemoveTree(P("e")).ok());
  ASSERT_TRUE(env_->RemoveTree(P("e")).ok());  // missing: fine
  EXPECT_EQ(List(root_), std::vector<std::string>{});
  EXPECT_TRUE(absl::IsNotFound(env_->ListDir(P("e")).status()));
}

TEST_P(EnvContractTest, CreateDirsMakesParents) {
  ASSERT_TRUE(CreateDirs(env_, P("a/b/c")).ok());
  EXPECT_TRUE(env_->Stat(P("a/b/c"))->is_dir);
  ASSERT_TRUE(CreateDirs(env_, P("a/b/c")).ok());
  ASSERT_TRUE(WriteFileSynced(env_, P("a/file"), "x").ok());
  EXPECT_FALSE(CreateDirs(env_, P("a/file/d")).ok());
}

TEST_P(EnvContractTest, LockIsExclusive) {
  auto lock = env_->LockFile(P("LOCK"));
  ASSERT_TRUE(lock.ok()) << lock.status();
  if (GetParam() == Kind::kMem) {
    // flock(2) locks are per open file, so a second POSIX lock in the same
    // process would succeed; MemEnv models one process per lock holder.
    EXPECT_TRUE(absl::IsFailedPrecondition(env_->LockFile(P("LOCK")).status()));
  }
  lock->reset();
  EXPECT_TRUE(env_->LockFile(P("LOCK")).ok());
}

INSTANTIATE_TEST_SUITE_P(Envs, EnvContractTest, ::testing::Values(Kind::kPosix, Kind::kMem),
                         [](const auto& info) {
                           return info.param == Kind::kPosix ? "Posix" : "Mem";
                         });

// ---- MemEnv power cuts ----

class MemEnvPowerCutTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(CreateDirs(&env_, "/d").ok()); }
  std::string Read(const std::string& path) {
    absl::StatusOr<std::string> s = ReadFile(&env_, path);
    return s.ok() ? *s : "missing";
  }
  MemEnv env_;
};

TEST_F(MemEnvPowerCutTest, UnsyncedBytesAreLost) {
  auto f = env_.NewWritableFile("/d/a", OpenMode::kCreateNew);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(env_.SyncDir("/d").ok());
  ASSERT_TRUE((*f)->Append("synced").ok());
  ASSERT_TRUE((*f)->DataSync().ok());
  ASSERT_TRUE((*f)->Append(" lost").ok());
  EXPECT_EQ(Read("/d/a"), "synced lost");
  f->reset();
  env_.DropUnsyncedData();
  EXPECT_EQ(Read("/d/a"), "synced");
}

TEST_F(MemEnvPowerCutTest, EntriesNeedADirectorySync) {
  // A synced file, renamed without a directory sync: back under its old name.
  ASSERT_TRUE(WriteFileSynced(&env_, "/d/old", "y").ok());
  ASSERT_TRUE(env_.SyncDir("/d").ok());
  ASSERT_TRUE(env_.Rename("/d/old", "/d/renamed").ok());
  // Synced data under a name never synced: gone.
  ASSERT_TRUE(WriteFileSynced(&env_, "/d/new", "x").ok());
  env_.DropUnsyncedData();
  EXPECT_EQ(Read("/d/new"), "missing");
  EXPECT_EQ(Read("/d/old"), "y");
  EXPECT_EQ(Read("/d/renamed"), "missing");

  ASSERT_TRUE(WriteFileSynced(&env_, "/d/gone", "g").ok());
  ASSERT_TRUE(env_.SyncDir("/d").ok());
  ASSERT_TRUE(env_.RemoveFile("/d/gone").ok());
  env_.DropUnsyncedData();
  EXPECT_EQ(Read("/d/gone"), "g");
  ASSERT_TRUE(env_.RemoveFile("/d/gone").ok());
  ASSERT_TRUE(env_.SyncDir("/d").ok());
  env_.DropUnsyncedData();
  EXPECT_EQ(Read("/d/gone"), "missing");
}

TEST_F(MemEnvPowerCutTest, ADirectoryTreeNeedsEachLevelSynced) {
  ASSERT_TRUE(env_.CreateDir("/d/tmp").ok());
  ASSERT_TRUE(WriteFileSynced(&env_, "/d/tmp/f", "data").ok());
  ASSERT_TRUE(env_.SyncDir("/d/tmp").ok());
  ASSERT_TRUE(env_.Rename("/d/tmp", "/d/final").ok());
  env_.DropUnsyncedData();  // the rename was not synced, nor the create
  EXPECT_FALSE(Exists(&env_, "/d/tmp"));
  EXPECT_FALSE(Exists(&env_, "/d/final"));

  ASSERT_TRUE(env_.CreateDir("/d/tmp").ok());
  ASSERT_TRUE(WriteFileSynced(&env_, "/d/tmp/f", "data").ok());
  ASSERT_TRUE(env_.SyncDir("/d/tmp").ok());
  ASSERT_TRUE(env_.Rename("/d/tmp", "/d/final").ok());
  ASSERT_TRUE(env_.SyncDir("/d").ok());
  // Removing the tree without syncing /d brings it back whole.
  ASSERT_TRUE(env_.RemoveTree("/d/final").ok());
  env_.DropUnsyncedData();
  EXPECT_EQ(Read("/d/final/f"), "data");
}

TEST_F(MemEnvPowerCutTest, CrashAtSyncPointStopsEverything) {
  auto f = env_.NewWritableFile("/d/a", OpenMode::kCreateNew);
  ASSERT_TRUE(f.ok());
  const uint64_t before = env_.sync_points();
  env_.CrashAtSyncPoint(before + 2);
  ASSERT_TRUE(env_.SyncDir("/d").ok());  // sync point 1: happens
  ASSERT_TRUE((*f)->Append("one").ok());
  absl::Status cut = (*f)->DataSync();  // 2: the cut, the data not synced
  EXPECT_FALSE(cut.ok());
  EXPECT_NE(cut.message().find("power cut"), std::string::npos) << cut;
  EXPECT_TRUE(env_.crashed());
  EXPECT_EQ(env_.sync_points(), before + 2);
  EXPECT_FALSE((*f)->Append("two").ok());
  EXPECT_FALSE(env_.NewWritableFile("/d/b", OpenMode::kCreateNew).ok());
  EXPECT_FALSE(env_.Rename("/d/a", "/d/c").ok());
  EXPECT_FALSE(env_.RemoveFile("/d/a").ok());
  EXPECT_FALSE(env_.SyncDir("/d").ok());
  EXPECT_EQ(env_.sync_points(), before + 2);  // a dead machine counts no more
  f->reset();
  env_.DropUnsyncedData();
  EXPECT_FALSE(env_.crashed());
  EXPECT_EQ(Read("/d/a"), "");  // the name was synced, the bytes were not
  EXPECT_TRUE(WriteFileSynced(&env_, "/d/b", "after").ok());
}

}  // namespace
}  // namespace espy::fs
