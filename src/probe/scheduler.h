// Scheduler: runs every configured probe and collector on its interval, all
// on one thread through libcurl's multi interface, so thousands of targets
// need no thread each and a slow or dead target delays nothing else. Results
// go to a sink (the database) as samples; series that stop being reported
// get Prometheus staleness markers.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "base/log.h"
#include "model/sample_batch.h"
#include "probe/config.h"
#include "probe/result.h"
#include "probe/status.h"

namespace espy::probe {

struct SchedulerOptions {
  // Receives each check's samples. Called on the scheduler thread; must not
  // block for long (Db::Commit queues).
  std::function<void(model::SampleBatch)> sink;
  base::Logger logger;
  // Checks running at once; more due checks wait for a free slot (each holds
  // a socket).
  size_t max_in_flight = 2000;
  std::string user_agent = "Espy-Probe";
};

class Loop;

// Thread-safe.
class Scheduler {
 public:
  explicit Scheduler(SchedulerOptions options);
  ~Scheduler();  // Stop()
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  void Start();
  // Abandons checks in flight; their results are not stored.
  void Stop();

  // Replaces the configuration (at start and on reload). Checks kept by name
  // keep their place in the schedule; new ones start within one interval,
  // spread by a hash of their name; removed ones end (their series are
  // marked stale).
  void Apply(MonitoringConfig config);

  std::vector<TargetStatus> Snapshot() const;
  // Counters in the Prometheus text format, for /metrics.
  std::string RenderMetrics() const;

  // Runs each probe once, now, concurrently, and returns the results in the
  // order given (for `espy probe --once`).
  static std::vector<ProbeResult> RunOnce(
      const std::vector<std::shared_ptr<const ProbeSpec>>& probes,
      const std::string& user_agent = "Espy-Probe");

 private:
  SchedulerOptions options_;
  std::unique_ptr<Loop> loop_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace espy::probe
