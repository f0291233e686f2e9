// Coordinator: the core the gRPC and REST layers call, with no network in it. It owns the job
// state machine, the worker registry, the leases and the committer over one Store, and answers
// the public job API and the worker API with plain types.
//
// Paths in job specs are confined: source, output and HF config directories must lie under one
// of the configured roots (after normalising '.' and '..'), else InvalidArgument. Every worker
// call carries (job, generation): an old generation is ABORTED. Tick() applies heartbeat and
// stall rules (against the injected Clock): a LOST worker starts a new generation of its job,
// revoking the job's leases, so every worker aborts and the new generation re-plans only the
// files not yet committed. Thread-safe.
#ifndef MXPORT_COORDINATOR_CORE_COORDINATOR_H_
#define MXPORT_COORDINATOR_CORE_COORDINATOR_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/clock.h"
#include "common/fs/file_system.h"
#include "coordinator/core/committer.h"
#include "coordinator/core/job_manager.h"
#include "coordinator/core/lease_manager.h"
#include "coordinator/core/store.h"
#include "coordinator/core/worker_registry.h"

namespace mxport::coordinator {

// A job with everything a status page shows.
struct JobView {
  JobRecord job;
  std::vector<WorkerInfo> workers;
  std::vector<Lease> leases;
  std::vector<CommitRecord> committed;
  double bytes_per_second = 0;
  double eta_seconds = -1;
};

class Coordinator {
 public:
  struct Options {
    Store* store = nullptr;
    fs::FileSystem* fs = nullptr;
    Clock* clock = RealClock();
    // Job paths must lie under one of these (absolute, normalised). Empty: any path.
    std::vector<std::string> allowed_roots;
    absl::Duration heartbeat_ttl = absl::Seconds(15);
    absl::Duration stall_after = absl::Minutes(2);
    absl::Duration lease_duration = absl::Seconds(60);
    bool verify_commit_hash = true;
    // Heartbeat progress is kept in memory and written to the store at most this often.
    absl::Duration progress_persist_interval = absl::Seconds(5);
  };

  static absl::StatusOr<std::unique_ptr<Coordinator>> Create(Options options);

  // --- public job API ---
  absl::StatusOr<JobView> SubmitJob(const JobSpec& spec);
  absl::StatusOr<JobView> GetJob(const std::string& job_id);
  std::vector<JobView> ListJobs(const std::map<std::string, std::string>& label_selector = {});
  absl::StatusOr<JobView> CancelJob(const std::string& job_id, const std::string& reason);
  absl::StatusOr<std::vector<Event>> Events(const std::string& job_id, int64_t after_seq);
  absl::StatusOr<std::vector<Event>> WaitForEvents(const std::string& job_id, int64_t after_seq,
                                                   absl::Time deadline);

  // --- worker API ---
  struct Registration {
    int64_t generation = 0;
    int64_t session = 0;
    int64_t workers_expected = 0;
  };
  absl::StatusOr<Registration> RegisterWorker(const std::string& job_id, int64_t index,
                                              const std::string& address,
                                              const std::string& host, int64_t gpu);
  absl::Status Heartbeat(const std::string& job_id, int64_t generation, int64_t index,
                         uint64_t bytes_done, uint64_t bytes_total,
                         const std::string& activity);
  absl::StatusOr<Lease> AcquireLease(const std::string& job_id, int64_t generation,
                                     int64_t index, const std::string& resource);
  absl::StatusOr<Lease> RenewLease(const std::string& job_id, int64_t generation,
                                   const std::string& resource, int64_t token);
  absl::StatusOr<CommitResult> CommitFile(const std::string& job_id, int64_t generation,
                                          const CommitRequest& request);
  absl::Status PublishNcclId(const std::string& job_id, int64_t generation,
                             const std::string& unique_id);
  // Unavailable until rank 0 of the generation has published it.
  absl::StatusOr<std::string> GetNcclId(const std::string& job_id, int64_t generation);
  // Moves a job forward (the orchestration of the worker issue drives this).
  absl::StatusOr<JobRecord> Advance(const std::string& job_id, int64_t generation, JobPhase to,
                                    const std::string& message = "");

  // Applies heartbeat TTL and stall rules; returns the changes it acted on.
  std::vector<WorkerChange> Tick();

  JobManager& jobs() { return *jobs_; }
  LeaseManager& leases() { return *leases_; }
  WorkerRegistry& workers() { return *workers_; }

  // "job/<id>/<resource>": the lease name of a job's resource.
  static std::string LeaseResource(const std::string& job_id, const std::string& resource);

 private:
  explicit Coordinator(Options options) : options_(std::move(options)) {}
  absl::Status CheckPaths(const JobSpec& spec) const;
  absl::StatusOr<JobRecord> CurrentGeneration(const std::string& job_id, int64_t generation);
  absl::StatusOr<JobView> View(const JobRecord& job);

  const Options options_;
  std::unique_ptr<JobManager> jobs_;
  std::unique_ptr<LeaseManager> leases_;
  std::unique_ptr<WorkerRegistry> workers_;
  std::unique_ptr<Committer> committer_;
  absl::Mutex mu_;
  std::map<std::pair<std::string, int64_t>, std::string> nccl_ids_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, ThroughputMeter> meters_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::pair<uint64_t, uint64_t>> live_progress_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Time> persisted_at_ ABSL_GUARDED_BY(mu_);
};

// Normalises an absolute path ("/a/./b/../c" -> "/a/c"); InvalidArgument when relative.
absl::StatusOr<std::string> NormalizeAbsolutePath(absl::string_view path);

}  // namespace mxport::coordinator

#endif  // MXPORT_COORDINATOR_CORE_COORDINATOR_H_
