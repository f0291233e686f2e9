// JobDriver: moves jobs through their phases as workers report, and tells each worker what to
// do next through a per-worker queue of orders (the Session stream delivers them).
//
//   all expected workers registered  -> SCANNING: each gets an Assign order (its source files
//                                        from AssignShards, its rank, every peer's address)
//   every source file's manifest in   -> PLANNED -> TRANSFERRING: each gets the Plan (the
//                                        validated ExportPlan's wire form, the files already
//                                        committed, and whether it is the sidecar writer)
//   every output file committed       -> FINALIZING: the sidecar writer gets Finalize
//   the index committed               -> SUCCEEDED: everyone gets Finish
// A plan that fails validation fails the job with the plan's message. A new generation (a lost
// worker, see Coordinator::Tick) sends Abort to every worker; when all have registered again
// the job restarts with the same plan and skips the committed files. The sidecar writer is the
// reader of the last pipeline stage's (tp 0, ep 0) file, replica 0. Thread-safe; time only
// through the Coordinator's clock.
#ifndef MXPORT_COORDINATOR_CORE_JOB_DRIVER_H_
#define MXPORT_COORDINATOR_CORE_JOB_DRIVER_H_

#include <deque>
#include <set>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/export/orders.h"
#include "common/export/plan.h"
#include "common/megatron/source.h"
#include "coordinator/core/coordinator.h"

namespace mxport::coordinator {

using exporter::Order;
using exporter::ShardOrder;

class JobDriver {
 public:
  explicit JobDriver(Coordinator* coordinator, fs::FileSystem* fs)
      : coordinator_(coordinator), fs_(fs) {}

  // After Coordinator::RegisterWorker succeeded.
  absl::Status OnRegistered(const std::string& job_id, int64_t index);
  // A worker scanned one of its source files.
  absl::Status OnManifest(const std::string& job_id, int64_t generation,
                          const megatron::RankManifest& manifest);
  // After Coordinator::CommitFile succeeded.
  absl::Status OnCommitted(const std::string& job_id, int64_t generation);
  // A worker failed in a way no retry fixes (the job fails with its message).
  absl::Status OnWorkerFailed(const std::string& job_id, int64_t generation, int64_t index,
                              const std::string& message);
  // After Coordinator::Tick: abort the workers of jobs that moved to a new generation.
  void OnTick();

  // Orders queued for a worker, oldest first; waits until `deadline` for one.
  std::vector<Order> TakeOrders(const std::string& job_id, int64_t index, absl::Time deadline);
  // Puts back, in front and in order, orders taken but not delivered (a session broke).
  void ReturnOrders(const std::string& job_id, int64_t index, std::vector<Order> orders);

 private:
  struct JobState {
    int64_t generation = -1;  // the generation the state below belongs to
    bool started = false;
    megatron::LegacyCheckpoint checkpoint;
    megatron::ModelConfig config;
    std::map<std::string, megatron::RankManifest> manifests;  // by path
    std::optional<exporter::ExportPlan> plan;
    int64_t sidecar_writer = 0;
    bool finalizing = false;
    std::set<int64_t> registered;  // in this generation
    std::string architecture;
    int64_t hf_vocab_size = 0;
  };
  absl::Status Start(const std::string& job_id, JobState& state, const JobView& view)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status SendPlan(const std::string& job_id, JobState& state)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Push(const std::string& job_id, int64_t index, Order order)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status FailJob(const std::string& job_id, int64_t generation, const absl::Status& why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Coordinator* coordinator_;
  fs::FileSystem* fs_;
  absl::Mutex mu_;
  std::map<std::string, JobState> jobs_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, int64_t>, std::deque<Order>> orders_ ABSL_GUARDED_BY(mu_);
};

// The output path of the index: committed last, it ends the job.
inline constexpr char kIndexFile[] = "model.safetensors.index.json";

}  // namespace mxport::coordinator

#endif  // MXPORT_COORDINATOR_CORE_JOB_DRIVER_H_
