#include "base/work_pool.h"

#include <set>
#include <thread>

#include "gtest/gtest.h"

namespace espy::base {
namespace {

TEST(WorkPoolTest, RunsEveryTaskOnItsThreads) {
  absl::Mutex mu;
  int sum = 0, n = 0;
  std::set<std::thread::id> ids;
  WorkPool pool({.threads = 2, .max_waiting = 1000, .name = "test-pool"});
  EXPECT_EQ(2, pool.threads());
  for (int i = 1; i <= 100; ++i) {
    ASSERT_TRUE(pool.TrySubmit([&, i] {
      absl::MutexLock lock(&mu);
      sum += i;
      ++n;
      ids.insert(std::this_thread::get_id());
    }));
  }
  absl::MutexLock lock(&mu);
  auto all = [&n] { return n == 100; };
  mu.Await(absl::Condition(&all));
  EXPECT_EQ(5050, sum);
  EXPECT_FALSE(ids.contains(std::this_thread::get_id()));
}

TEST(WorkPoolTest, ShutdownDropsWaitingTasksAndWaitsForRunningOnes) {
  absl::Mutex mu;
  bool started = false, release = false, finished = false, dropped_ran = false;
  WorkPool pool({.threads = 1, .max_waiting = 10, .name = "test-pool"});
  ASSERT_TRUE(pool.TrySubmit([&] {
    absl::MutexLock lock(&mu);
    started = true;
    mu.Await(absl::Condition(&release));
    finished = true;
  }));
  ASSERT_TRUE(pool.TrySubmit([&] { dropped_ran = true; }));
  {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(&started));
  }
  // Shutdown waits for the running task; the waiting one is dropped first.
  std::thread stopper([&pool] { pool.Shutdown(); });
  while (pool.stats().waiting != 0) std::this_thread::yield();
  {
    absl::MutexLock lock(&mu);
    release = true;
  }
  stopper.join();
  EXPECT_TRUE(finished);
  EXPECT_FALSE(dropped_ran);
  EXPECT_FALSE(pool.TrySubmit([] {}));
}

TEST(WorkPoolTest, RefusesBeyondTheWaitingLimitAndCountsIt) {
  absl::Mutex mu;
  bool release = false, started = false;
  WorkPool pool({.threads = 1, .max_waiting = 2, .name = "test-pool"});
  // Holds the one thread until released.
  ASSERT_TRUE(pool.TrySubmit([&] {
    absl::MutexLock lock(&mu);
    started = true;
    mu.Await(absl::Condition(&release));
  }));
  {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(&started));
  }
  int ran = 0;
  auto count = [&] {
    absl::MutexLock lock(&mu);
    ++ran;
  };
  EXPECT_TRUE(pool.TrySubmit(count));
  EXPECT_TRUE(pool.TrySubmit(count));
  EXPECT_FALSE(pool.TrySubmit(count));
  WorkPool::Stats s = pool.stats();
  EXPECT_EQ(1u, s.running);
  EXPECT_EQ(2u, s.waiting);
  EXPECT_EQ(1u, s.refused);
  absl::MutexLock lock(&mu);
  release = true;
  auto both_ran = [&ran] { return ran == 2; };
  mu.Await(absl::Condition(&both_ran));
}

}  // namespace
}  // namespace espy::base
