// WorkPool: a fixed set of threads running submitted tasks in order, with a
// bounded queue: a task beyond the queue limit is refused at once rather
// than queued without end. The PromQL endpoints run queries on one, so a
// slow query holds a query thread, never one of the threads that serve
// HTTP (and ingestion).
//
//   base::WorkPool pool({.threads = 2, .max_waiting = 100, .name = "espy-query"});
//   if (!pool.TrySubmit([] { ... })) reply(503);
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace espy::base {

struct WorkPoolOptions {
  int threads = 1;  // at least 1
  // Tasks waiting for a thread beyond this many are refused.
  size_t max_waiting = 100;
  std::string name = "espy-work";  // the threads' name (base::SetThreadName)
};

// Thread-safe.
class WorkPool {
 public:
  explicit WorkPool(WorkPoolOptions options);
  ~WorkPool() { Shutdown(); }
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;

  // Queues `task`; false (and `task` dropped) when max_waiting tasks are
  // already waiting or the pool is shutting down.
  bool TrySubmit(std::function<void()> task);
  // Refuses new tasks, drops (destroys unrun) the waiting ones, and waits
  // for the running ones. Idempotent.
  void Shutdown();

  struct Stats {
    uint64_t running = 0;
    uint64_t waiting = 0;
    uint64_t done = 0;     // since start
    uint64_t refused = 0;  // since start
  };
  Stats stats() const;
  int threads() const { return static_cast<int>(workers_.size()); }

 private:
  void Work();

  const WorkPoolOptions options_;
  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t running_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t done_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t refused_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::jthread> workers_;
};

}  // namespace espy::base
