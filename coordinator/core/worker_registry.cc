#include "coordinator/core/worker_registry.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace mxport::coordinator {
namespace {

struct StateName {
  WorkerState state;
  absl::string_view name;
};
constexpr StateName kStateNames[] = {{WorkerState::kHealthy, "HEALTHY"},
                                     {WorkerState::kStuck, "STUCK"},
                                     {WorkerState::kLost, "LOST"},
                                     {WorkerState::kDone, "DONE"}};

}  // namespace

absl::string_view WorkerStateName(WorkerState state) {
  for (const StateName& s : kStateNames) {
    if (s.state == state) return s.name;
  }
  return "UNKNOWN";
}

WorkerInfo WorkerRegistry::Register(const std::string& job_id, int64_t index,
                                    const std::string& address, const std::string& host,
                                    int64_t gpu) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = options_.clock->Now();
  WorkerInfo& w = workers_[{job_id, index}];
  w.job_id = job_id;
  w.index = index;
  w.address = address;
  w.host = host;
  w.gpu = gpu;
  w.state = WorkerState::kHealthy;
  w.session = ++sessions_;
  w.registered_at = now;
  w.last_heartbeat = now;
  w.last_progress = now;
  w.activity = "registered";
  return w;
}

absl::Status WorkerRegistry::Heartbeat(const std::string& job_id, int64_t index,
                                       uint64_t bytes_done, uint64_t bytes_total,
                                       const std::string& activity) {
  absl::MutexLock lock(&mu_);
  auto it = workers_.find({job_id, index});
  if (it == workers_.end()) {
    return absl::NotFoundError(absl::StrCat("worker ", index, " of job '", job_id,
                                            "' is not registered"));
  }
  WorkerInfo& w = it->second;
  if (w.state == WorkerState::kLost) {
    return absl::FailedPreconditionError(absl::StrCat(
        "worker ", index, " of job '", job_id, "' was declared lost; register again"));
  }
  const absl::Time now = options_.clock->Now();
  w.last_heartbeat = now;
  if (bytes_done != w.bytes_done || bytes_total != w.bytes_total) w.last_progress = now;
  ThroughputMeter& meter = meters_[{job_id, index}];
  meter.Observe(now, bytes_done);
  w.bytes_per_second = meter.bytes_per_second();
  w.bytes_done = bytes_done;
  w.bytes_total = bytes_total;
  w.activity = activity;
  if (w.state == WorkerState::kStuck && w.last_progress == now) w.state = WorkerState::kHealthy;
  return absl::OkStatus();
}

absl::Status WorkerRegistry::MarkDone(const std::string& job_id, int64_t index) {
  absl::MutexLock lock(&mu_);
  auto it = workers_.find({job_id, index});
  if (it == workers_.end()) {
    return absl::NotFoundError(absl::StrCat("worker ", index, " of job '", job_id,
                                            "' is not registered"));
  }
  it->second.state = WorkerState::kDone;
  return absl::OkStatus();
}

void WorkerRegistry::SetCoordinates(const std::string& job_id, int64_t index,
                                    std::vector<std::string> coordinates) {
  absl::MutexLock lock(&mu_);
  auto it = workers_.find({job_id, index});
  if (it != workers_.end()) it->second.coordinates = std::move(coordinates);
}

std::vector<WorkerChange> WorkerRegistry::Sweep() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = options_.clock->Now();
  std::vector<WorkerChange> changes;
  for (auto& [key, w] : workers_) {
    if (w.state == WorkerState::kLost || w.state == WorkerState::kDone) continue;
    WorkerState next = w.state;
    if (now - w.last_heartbeat > options_.heartbeat_ttl) {
      next = WorkerState::kLost;
    } else if (w.bytes_done < w.bytes_total && now - w.last_progress > options_.stall_after) {
      next = WorkerState::kStuck;
    } else {
      next = WorkerState::kHealthy;
    }
    if (next != w.state) {
      const WorkerState from = w.state;
      w.state = next;
      changes.push_back({w, from, next});
    }
  }
  return changes;
}

std::vector<WorkerInfo> WorkerRegistry::Workers(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  std::vector<WorkerInfo> out;
  for (auto it = workers_.lower_bound({job_id, INT64_MIN});
       it != workers_.end() && it->first.first == job_id; ++it) {
    out.push_back(it->second);
  }
  return out;
}

void WorkerRegistry::RemoveJob(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  std::erase_if(workers_, [&](const auto& e) { return e.first.first == job_id; });
  std::erase_if(meters_, [&](const auto& e) { return e.first.first == job_id; });
}

void ThroughputMeter::Observe(absl::Time now, uint64_t bytes_done) {
  if (!started_) {
    started_ = true;
    last_time_ = now;
    last_bytes_ = bytes_done;
    return;
  }
  const double dt = absl::ToDoubleSeconds(now - last_time_);
  if (dt <= 0) return;
  const double instant =
      bytes_done >= last_bytes_ ? static_cast<double>(bytes_done - last_bytes_) / dt : 0;
  const double alpha = 1 - std::exp2(-dt / absl::ToDoubleSeconds(half_life_));
  rate_ = rate_ == 0 ? instant : rate_ + alpha * (instant - rate_);
  last_time_ = now;
  last_bytes_ = bytes_done;
}

absl::Duration ThroughputMeter::Eta(uint64_t bytes_total) const {
  if (rate_ <= 0) return absl::InfiniteDuration();
  const uint64_t left = bytes_total > last_bytes_ ? bytes_total - last_bytes_ : 0;
  return absl::Seconds(static_cast<double>(left) / rate_);
}

}  // namespace mxport::coordinator
