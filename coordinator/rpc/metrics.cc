#include "coordinator/rpc/metrics.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "coordinator/rpc/proto_convert.h"

namespace mxport::coordinator::rpc {
namespace {

constexpr JobPhase kPhases[] = {
    JobPhase::kPending,    JobPhase::kScanning,  JobPhase::kPlanned, JobPhase::kTransferring,
    JobPhase::kFinalizing, JobPhase::kSucceeded, JobPhase::kFailed,  JobPhase::kCancelled};
constexpr WorkerState kStates[] = {WorkerState::kHealthy, WorkerState::kStuck, WorkerState::kLost,
                                   WorkerState::kDone};

std::string Num(double v) { return absl::StrFormat("%.10g", v); }

void Header(std::string* out, absl::string_view name, absl::string_view type,
            absl::string_view help) {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
}

// One sample: name{labels} value.
void Sample(std::string* out, absl::string_view name, absl::string_view labels,
            absl::string_view value) {
  absl::StrAppend(out, name, labels.empty() ? "" : "{", labels, labels.empty() ? "" : "}", " ",
                  value, "\n");
}

std::string JobLabel(const JobView& v) {
  return absl::StrCat("job=\"", EscapeLabelValue(v.job.spec.job_id), "\"");
}

}  // namespace

std::string EscapeLabelValue(absl::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void Metrics::ObserveRpc(absl::string_view method, double seconds) {
  absl::MutexLock lock(&mu_);
  auto it = rpcs_.find(method);
  if (it == rpcs_.end()) it = rpcs_.emplace(std::string(method), Histogram{}).first;
  Histogram& h = it->second;
  const auto bucket = std::lower_bound(kLatencyBuckets.begin(), kLatencyBuckets.end(), seconds);
  if (bucket != kLatencyBuckets.end()) ++h.buckets[bucket - kLatencyBuckets.begin()];
  ++h.count;
  h.sum += seconds;
}

std::string Metrics::Render(const std::vector<JobView>& jobs, absl::Time now) const {
  std::string out;
  Header(&out, "mxport_jobs", "gauge", "Jobs known to the coordinator, by phase.");
  for (JobPhase phase : kPhases) {
    const auto n = std::count_if(jobs.begin(), jobs.end(),
                                 [&](const JobView& v) { return v.job.phase == phase; });
    Sample(&out, "mxport_jobs", absl::StrCat("phase=\"", JobPhaseName(phase), "\""),
           absl::StrCat(n));
  }
  Header(&out, "mxport_job_bytes_done", "gauge", "Bytes written by the current generation.");
  for (const JobView& v : jobs) {
    Sample(&out, "mxport_job_bytes_done", JobLabel(v), absl::StrCat(v.job.bytes_done));
  }
  Header(&out, "mxport_job_bytes_total", "gauge", "Bytes the job writes in all.");
  for (const JobView& v : jobs) {
    Sample(&out, "mxport_job_bytes_total", JobLabel(v), absl::StrCat(v.job.bytes_total));
  }
  Header(&out, "mxport_job_bytes_per_second", "gauge", "Throughput (moving average).");
  for (const JobView& v : jobs) {
    Sample(&out, "mxport_job_bytes_per_second", JobLabel(v), Num(v.bytes_per_second));
  }
  Header(&out, "mxport_workers", "gauge", "Registered workers, by state.");
  for (const JobView& v : jobs) {
    for (WorkerState state : kStates) {
      const auto n = std::count_if(v.workers.begin(), v.workers.end(),
                                   [&](const WorkerInfo& w) { return w.state == state; });
      Sample(&out, "mxport_workers",
             absl::StrCat(JobLabel(v), ",state=\"", WorkerStateName(state), "\""), absl::StrCat(n));
    }
  }
  Header(&out, "mxport_worker_heartbeat_age_seconds", "gauge",
         "Seconds since each worker's last heartbeat.");
  for (const JobView& v : jobs) {
    for (const WorkerInfo& w : v.workers) {
      const absl::Time last = std::max(w.last_heartbeat, w.registered_at);
      Sample(&out, "mxport_worker_heartbeat_age_seconds",
             absl::StrCat(JobLabel(v), ",worker=\"", w.index, "\""),
             Num(std::max(0.0, absl::ToDoubleSeconds(now - last))));
    }
  }
  Header(&out, "mxport_job_generation", "gauge", "Current generation of each job.");
  for (const JobView& v : jobs) {
    Sample(&out, "mxport_job_generation", JobLabel(v), absl::StrCat(v.job.generation));
  }
  Header(&out, "mxport_job_restarts_total", "counter", "Generations restarted after a fault.");
  for (const JobView& v : jobs) {
    Sample(&out, "mxport_job_restarts_total", JobLabel(v), absl::StrCat(v.job.restarts));
  }
  Header(&out, "mxport_lease_token", "gauge", "Fencing token of each live lease.");
  for (const JobView& v : jobs) {
    for (const Lease& lease : v.leases) {
      Sample(&out, "mxport_lease_token",
             absl::StrCat(JobLabel(v), ",resource=\"",
                          EscapeLabelValue(ShortLeaseResource(v.job.spec.job_id, lease.resource)),
                          "\""),
             absl::StrCat(lease.token));
    }
  }
  Header(&out, "mxport_commits_total", "counter", "Files committed (published) per job.");
  for (const JobView& v : jobs) {
    Sample(&out, "mxport_commits_total", JobLabel(v), absl::StrCat(v.committed.size()));
  }
  Header(&out, "mxport_rpc_latency_seconds", "histogram",
         "Latency of gRPC and REST requests, by method.");
  absl::MutexLock lock(&mu_);
  for (const auto& [method, h] : rpcs_) {
    const std::string m = absl::StrCat("method=\"", EscapeLabelValue(method), "\"");
    uint64_t cumulative = 0;
    for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
      cumulative += h.buckets[i];
      Sample(&out, "mxport_rpc_latency_seconds_bucket",
             absl::StrCat(m, ",le=\"", Num(kLatencyBuckets[i]), "\""), absl::StrCat(cumulative));
    }
    Sample(&out, "mxport_rpc_latency_seconds_bucket", absl::StrCat(m, ",le=\"+Inf\""),
           absl::StrCat(h.count));
    Sample(&out, "mxport_rpc_latency_seconds_sum", m, Num(h.sum));
    Sample(&out, "mxport_rpc_latency_seconds_count", m, absl::StrCat(h.count));
  }
  return out;
}

}  // namespace mxport::coordinator::rpc
