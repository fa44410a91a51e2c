// WorkPool: threads taking tasks from one mutex-guarded queue (see work_pool.h).
#include "base/work_pool.h"

#include <algorithm>

#include "base/threads.h"

namespace espy::base {

WorkPool::WorkPool(WorkPoolOptions options) : options_(options) {
  const int n = std::max(1, options_.threads);
  workers_.reserve(n);
  for (int i = 0; i < n; ++i) {
    workers_.emplace_back([this] {
      SetThreadName(options_.name);
      Work();
    });
  }
}

void WorkPool::Shutdown() {
  std::deque<std::function<void()>> dropped;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    dropped.swap(queue_);
  }
  dropped.clear();   // outside the lock: a task's captures may do anything
  workers_.clear();  // joins
}

bool WorkPool::TrySubmit(std::function<void()> task) {
  absl::MutexLock lock(&mu_);
  if (stopping_ || queue_.size() >= options_.max_waiting) {
    ++refused_;
    return false;
  }
  queue_.push_back(std::move(task));
  return true;
}

void WorkPool::Work() {
  while (true) {
    std::function<void()> task;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]()
                       ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_ || !queue_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // stopping, nothing left
      task = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
    }
    task();
    absl::MutexLock lock(&mu_);
    --running_;
    ++done_;
  }
}

WorkPool::Stats WorkPool::stats() const {
  absl::MutexLock lock(&mu_);
  return {running_, queue_.size(), done_, refused_};
}

}  // namespace espy::base
