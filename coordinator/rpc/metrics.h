// Metrics: the coordinator's Prometheus exposition (text format 0.0.4), rendered by hand.
//
// Both servers record every request's latency into one Metrics (ObserveRpc, a histogram per
// method with fixed buckets); Render() adds gauges and counters taken from the jobs at the
// moment of the scrape:
//   mxport_jobs{phase}                        jobs per phase (every phase, zeros included)
//   mxport_job_bytes_done{job} / _total{job}  progress of the current generation
//   mxport_job_bytes_per_second{job}          throughput (EWMA)
//   mxport_workers{job,state}                 workers per state
//   mxport_worker_heartbeat_age_seconds{job,worker}
//   mxport_job_generation{job}, mxport_job_restarts_total{job}
//   mxport_lease_token{job,resource}          the fencing token of each live lease
//   mxport_commits_total{job}                 files committed
//   mxport_rpc_latency_seconds{method}        histogram (gRPC and REST)
// Thread-safe.
#ifndef MXPORT_COORDINATOR_RPC_METRICS_H_
#define MXPORT_COORDINATOR_RPC_METRICS_H_

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/core/coordinator.h"

namespace mxport::coordinator::rpc {

class Metrics {
 public:
  // Upper bounds of the latency buckets, in seconds (+Inf is implied).
  static constexpr std::array<double, 14> kLatencyBuckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

  void ObserveRpc(absl::string_view method, double seconds);

  // The whole exposition: job metrics from `jobs` (as of `now`) and the RPC histograms.
  std::string Render(const std::vector<JobView>& jobs, absl::Time now) const;

 private:
  struct Histogram {
    std::array<uint64_t, kLatencyBuckets.size()> buckets{};  // non-cumulative counts
    uint64_t count = 0;
    double sum = 0;
  };
  mutable absl::Mutex mu_;
  std::map<std::string, Histogram, std::less<>> rpcs_ ABSL_GUARDED_BY(mu_);
};

// Records the time from construction to destruction under `method` (steady clock).
class RpcTimer {
 public:
  RpcTimer(Metrics* metrics, absl::string_view method)
      : metrics_(metrics), method_(method), start_(std::chrono::steady_clock::now()) {}
  ~RpcTimer() {
    if (metrics_ == nullptr) return;
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start_;
    metrics_->ObserveRpc(method_, elapsed.count());
  }
  RpcTimer(const RpcTimer&) = delete;
  RpcTimer& operator=(const RpcTimer&) = delete;

 private:
  Metrics* metrics_;
  absl::string_view method_;  // a literal in every caller
  std::chrono::steady_clock::time_point start_;
};

// A Prometheus label value with '\', '"' and newlines escaped.
std::string EscapeLabelValue(absl::string_view value);

}  // namespace mxport::coordinator::rpc

#endif  // MXPORT_COORDINATOR_RPC_METRICS_H_
