// WorkerAgent: what a worker does for one job, independent of how it talks to the coordinator.
//
// It registers, then follows the orders it receives: Assign (connect the data plane of the
// generation, scan its source files and report their manifests), Plan (run its part of the
// plan with PlanExecutor; every file it writes is staged under <out>/.staging/, leased and
// committed through the coordinator), Finalize (the sidecar writer: config.json, the other
// sidecars, then the index, each leased and committed), Abort (stop, abort the transport,
// register again for the next generation) and Finish (return). The coordinator side is an
// interface, implemented over gRPC by the daemon and in process by tests. Run() blocks; Stop()
// from another thread makes it return promptly (Cancelled).
#ifndef MXPORT_WORKER_CORE_WORKER_AGENT_H_
#define MXPORT_WORKER_CORE_WORKER_AGENT_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/fs/file_system.h"
#include "common/megatron/source.h"
#include "common/export/orders.h"
#include "worker/core/plan_executor.h"
#include "worker/transport/transport.h"

namespace mxport::worker {

class CoordinatorClient {
 public:
  virtual ~CoordinatorClient() = default;
  // Returns the job's current generation.
  virtual absl::StatusOr<int64_t> Register(const std::string& job_id, int64_t index,
                                           const std::string& data_address) = 0;
  // Orders for this worker, waiting until `deadline` for at least one.
  virtual absl::StatusOr<std::vector<exporter::Order>> NextOrders(
      const std::string& job_id, int64_t index, absl::Time deadline) = 0;
  virtual absl::Status ReportManifest(const std::string& job_id, int64_t generation,
                                      const megatron::RankManifest& manifest) = 0;
  virtual absl::Status Heartbeat(const std::string& job_id, int64_t generation, int64_t index,
                                 uint64_t bytes_done, uint64_t bytes_total,
                                 const std::string& activity) = 0;
  // Returns the lease token.
  virtual absl::StatusOr<int64_t> AcquireLease(const std::string& job_id, int64_t generation,
                                               int64_t index, const std::string& resource) = 0;
  virtual absl::Status Commit(const std::string& job_id, int64_t generation, int64_t index,
                              const std::string& resource, int64_t token,
                              const std::string& staged_path, const std::string& path,
                              uint64_t size, const std::string& content_hash) = 0;
  virtual absl::Status ReportFailure(const std::string& job_id, int64_t generation,
                                     int64_t index, const std::string& message) = 0;
  // NCCL bootstrap: rank 0 of a generation publishes its unique id, the others fetch it
  // (Unavailable until published). Clients of TCP-only deployments need not implement them.
  virtual absl::Status PublishNcclId(const std::string& job_id, int64_t generation,
                                     int64_t index, const std::string& unique_id) {
    return absl::UnimplementedError("this coordinator client cannot publish NCCL ids");
  }
  virtual absl::StatusOr<std::string> GetNcclId(const std::string& job_id, int64_t generation,
                                                int64_t index) {
    return absl::UnimplementedError("this coordinator client cannot fetch NCCL ids");
  }
};

// Makes the data-plane transport of a generation from its Assign order (generation, rank,
// world size, peers' addresses and the transport every rank uses).
using TransportFactory = std::function<absl::StatusOr<std::unique_ptr<transport::Transport>>(
    const exporter::Order& assignment)>;

class WorkerAgent {
 public:
  struct Options {
    std::string job_id;
    int64_t index = 0;
    std::string data_address;  // advertised to peers
    fs::FileSystem* fs = nullptr;
    CoordinatorClient* client = nullptr;
    TransportFactory make_transport;
    uint64_t chunk_bytes = uint64_t{4} << 20;  // see PlanExecutor::Options
    uint64_t in_flight_bytes = uint64_t{1} << 30;  // host bytes for the data plane
    bool self_transfer = false;  // see PlanExecutor::Options
    // Where this worker quantizes the chunks it writes (owned by the caller; nullptr: the CPU).
    quant::Backend* quant_backend = nullptr;
    uint64_t max_bytes_per_second = 0;  // read pacing; 0: unlimited
    absl::Duration poll = absl::Seconds(1);
    // How often the agent reports liveness and progress (well under the coordinator's TTL).
    absl::Duration heartbeat_interval = absl::Seconds(3);
    // Test hook: called before each file is committed; an error stops the worker as if it died.
    std::function<absl::Status(const std::string& file)> before_commit;
    // Called with a line for each generation this worker leaves (an abort order, or its data
    // plane failing under it); unset: silent.
    std::function<void(const std::string& line)> log;
  };
  explicit WorkerAgent(Options options) : options_(std::move(options)) {}

  absl::Status Run();
  void Stop();

 private:
  void Log(const std::string& line);
  absl::Status Assign(const exporter::Order& order);
  absl::Status Execute(const exporter::Order& order);
  absl::Status Finalize(const exporter::Order& order);
  absl::Status StageAndCommit(int64_t generation, const std::string& resource,
                              const std::string& output_dir, const std::string& staged,
                              const std::string& path, const StagedFile* known = nullptr);
  void AbortTransport();
  // Sends a heartbeat when the interval has passed since the last one (no disk I/O).
  void MaybeHeartbeat(uint64_t done, uint64_t total, const std::string& activity);

  Options options_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> generation_{0};
  absl::Mutex heartbeat_mu_;
  absl::Time last_heartbeat_ ABSL_GUARDED_BY(heartbeat_mu_) = absl::InfinitePast();
  absl::Mutex mu_;
  std::unique_ptr<transport::Transport> transport_ ABSL_GUARDED_BY(mu_);
  std::vector<exporter::Order> pending_ ABSL_GUARDED_BY(mu_);  // taken while executing
};

}  // namespace mxport::worker

#endif  // MXPORT_WORKER_CORE_WORKER_AGENT_H_
