// WorkerRegistry: the workers of each job, their coordinates and their health.
//
// A worker is identified by (job, index): its index comes from its stable identity (the
// Kubernetes completion index, or a flag), never from join order, so a restarted pod takes its
// old place. Health has two separate signals: heartbeats (LOST when none for heartbeat_ttl)
// and progress (STUCK when heartbeats are fine but its bytes have not moved for stall_after
// while it has work left). Sweep() applies both against the injected Clock and returns the
// state changes, for the caller to act on (new generation) and record. Thread-safe; no I/O.
#ifndef MXPORT_COORDINATOR_CORE_WORKER_REGISTRY_H_
#define MXPORT_COORDINATOR_CORE_WORKER_REGISTRY_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/base/clock.h"
#include "common/export/assignment.h"

namespace mxport::coordinator {

using exporter::AssignShards;
using exporter::ShardAssignment;

enum class WorkerState { kHealthy, kStuck, kLost, kDone };
absl::string_view WorkerStateName(WorkerState state);

struct WorkerInfo {
  std::string job_id;
  int64_t index = 0;
  std::string address;  // where peers reach its data plane
  std::string host;
  int64_t gpu = -1;     // -1: CPU worker
  WorkerState state = WorkerState::kHealthy;
  int64_t session = 0;  // bumps on every (re)registration
  absl::Time registered_at;
  absl::Time last_heartbeat;
  absl::Time last_progress;  // when bytes_done last changed
  uint64_t bytes_done = 0;
  uint64_t bytes_total = 0;
  std::string activity;  // "scanning", "writing model-00002-of-00004.safetensors", ...
  std::vector<std::string> coordinates;  // of the rank files it reads: "tp1 pp0 ep3"
  double bytes_per_second = 0;
};

struct WorkerChange {
  WorkerInfo worker;
  WorkerState from;
  WorkerState to;
};

// Throughput as an exponentially weighted average of bytes per second, and the ETA it implies.
class ThroughputMeter {
 public:
  explicit ThroughputMeter(absl::Duration half_life = absl::Seconds(10))
      : half_life_(half_life) {}
  void Observe(absl::Time now, uint64_t bytes_done);
  double bytes_per_second() const { return rate_; }
  // Remaining time, or InfiniteDuration before any progress.
  absl::Duration Eta(uint64_t bytes_total) const;

 private:
  absl::Duration half_life_;
  bool started_ = false;
  absl::Time last_time_;
  uint64_t last_bytes_ = 0;
  double rate_ = 0;
};

class WorkerRegistry {
 public:
  struct Options {
    Clock* clock = RealClock();
    absl::Duration heartbeat_ttl = absl::Seconds(15);
    absl::Duration stall_after = absl::Minutes(2);
  };
  explicit WorkerRegistry(Options options) : options_(std::move(options)) {}

  // (Re)registers worker `index` of `job_id`; a re-registration resets its health.
  WorkerInfo Register(const std::string& job_id, int64_t index, const std::string& address,
                      const std::string& host, int64_t gpu);
  // NotFound for an unknown worker; FailedPrecondition for a LOST one (it must re-register).
  absl::Status Heartbeat(const std::string& job_id, int64_t index, uint64_t bytes_done,
                         uint64_t bytes_total, const std::string& activity);
  absl::Status MarkDone(const std::string& job_id, int64_t index);
  // Records the coordinates of the rank files the worker was assigned.
  void SetCoordinates(const std::string& job_id, int64_t index,
                      std::vector<std::string> coordinates);
  std::vector<WorkerChange> Sweep();
  std::vector<WorkerInfo> Workers(const std::string& job_id);
  void RemoveJob(const std::string& job_id);

 private:
  const Options options_;
  absl::Mutex mu_;
  std::map<std::pair<std::string, int64_t>, WorkerInfo> workers_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, int64_t>, ThroughputMeter> meters_ ABSL_GUARDED_BY(mu_);
  int64_t sessions_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace mxport::coordinator

#endif  // MXPORT_COORDINATOR_CORE_WORKER_REGISTRY_H_
