// JobManager: the jobs of a coordinator and their state machine, over a durable Store.
//
// Phases: PENDING -> SCANNING -> PLANNED -> TRANSFERRING -> FINALIZING -> SUCCEEDED, or FAILED /
// CANCELLED from any non-terminal phase; a new generation (a worker lost, say) sends a running
// job back to PENDING with generation + 1 and restarts + 1. Allowed transitions are one table.
// Every change is written to the store before it is visible and appends a numbered event, so
// a restarted coordinator (Create on the same store) resumes every job.
//
// Codes: Submit of a known job id with the same spec returns the job (idempotent); with a
// different spec ALREADY_EXISTS; a bad spec INVALID_ARGUMENT naming the field. Unknown job:
// NOT_FOUND. A transition not in the table, or on a terminal job: FAILED_PRECONDITION. A call
// carrying an old generation: ABORTED. Thread-safe.
#ifndef MXPORT_COORDINATOR_CORE_JOB_MANAGER_H_
#define MXPORT_COORDINATOR_CORE_JOB_MANAGER_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/base/clock.h"
#include "coordinator/core/store.h"

namespace mxport::coordinator {

class JobManager {
 public:
  struct Options {
    Store* store = nullptr;
    Clock* clock = RealClock();
  };

  // Loads every job from the store.
  static absl::StatusOr<std::unique_ptr<JobManager>> Create(Options options);

  absl::StatusOr<JobRecord> Submit(const JobSpec& spec);
  absl::StatusOr<JobRecord> Get(const std::string& job_id);
  std::vector<JobRecord> List();
  absl::StatusOr<JobRecord> Cancel(const std::string& job_id, const std::string& reason);

  // Moves the job to `to` if the table allows it and `generation` is current.
  absl::StatusOr<JobRecord> Transition(const std::string& job_id, int64_t generation,
                                       JobPhase to, const std::string& message = "");
  // Starts generation + 1 (from any non-terminal phase) and returns to PENDING.
  absl::StatusOr<JobRecord> NewGeneration(const std::string& job_id, const std::string& reason);
  // Progress totals of the current generation; events are not appended for these.
  absl::StatusOr<JobRecord> UpdateProgress(const std::string& job_id, int64_t generation,
                                           uint64_t bytes_done, uint64_t bytes_total,
                                           int64_t files_committed, int64_t files_total);
  // Appends an event of any type for the job (lease grants, commits, worker states...).
  absl::StatusOr<Event> Record(const std::string& job_id, const std::string& type,
                               const std::string& message);
  absl::StatusOr<std::vector<Event>> Events(const std::string& job_id, int64_t after_seq,
                                            int64_t limit = 1000);
  // Blocks until the job has an event after `after_seq` or `deadline` passes (for watch
  // streams); returns the events (possibly none).
  absl::StatusOr<std::vector<Event>> WaitForEvents(const std::string& job_id, int64_t after_seq,
                                                   absl::Time deadline);

  // True when `from -> to` is in the transition table.
  static bool Allowed(JobPhase from, JobPhase to);

 private:
  explicit JobManager(Options options) : options_(std::move(options)) {}
  absl::StatusOr<JobRecord*> Find(const std::string& job_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes `job` (with updated_at) to the store, then to memory, then appends the event.
  absl::StatusOr<JobRecord> Save(JobRecord job, const std::string& event_type,
                                 const std::string& event_message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  absl::Mutex mu_;
  std::map<std::string, JobRecord> jobs_ ABSL_GUARDED_BY(mu_);
  int64_t event_counter_ ABSL_GUARDED_BY(mu_) = 0;  // bumps on every event, for waiters
};

}  // namespace mxport::coordinator

#endif  // MXPORT_COORDINATOR_CORE_JOB_MANAGER_H_
