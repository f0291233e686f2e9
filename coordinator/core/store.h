// Store: the coordinator's durable state: jobs, events, fencing tokens and commits. Every
// mutation is durable when the call returns OK, so a coordinator killed at any point and
// restarted on the same store resumes every job (SQLite in WAL mode by default; an in-memory
// store for tests). Thread-safe.
//
// Fencing tokens come from one counter that only grows: NextToken persists the new value
// before returning it, so a restarted coordinator never issues a token it issued before.
// Errors: NotFound for an unknown job, Internal/Unavailable for storage failures.
#ifndef MXPORT_COORDINATOR_CORE_STORE_H_
#define MXPORT_COORDINATOR_CORE_STORE_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/core/types.h"

namespace mxport::coordinator {

class Store {
 public:
  virtual ~Store() = default;

  // Inserts or replaces the job with spec.job_id.
  virtual absl::Status PutJob(const JobRecord& job) = 0;
  virtual absl::StatusOr<std::optional<JobRecord>> GetJob(const std::string& job_id) = 0;
  // All jobs, oldest first.
  virtual absl::StatusOr<std::vector<JobRecord>> ListJobs() = 0;

  // Appends an event, assigning the job's next sequence number (from 1); returns it.
  virtual absl::StatusOr<Event> AppendEvent(Event event) = 0;
  // Events of `job_id` with seq > after_seq, in order, at most `limit`.
  virtual absl::StatusOr<std::vector<Event>> Events(const std::string& job_id, int64_t after_seq,
                                                    int64_t limit) = 0;

  // A fencing token larger than every token this store has returned, persisted first.
  virtual absl::StatusOr<int64_t> NextToken() = 0;

  virtual absl::Status PutCommit(const CommitRecord& commit) = 0;
  virtual absl::StatusOr<std::optional<CommitRecord>> GetCommit(const std::string& job_id,
                                                                const std::string& path) = 0;
  virtual absl::StatusOr<std::vector<CommitRecord>> Commits(const std::string& job_id) = 0;
};

std::unique_ptr<Store> NewMemoryStore();

// Opens (creating if needed) an SQLite database at `path` in WAL mode with synchronous=FULL.
absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path);

}  // namespace mxport::coordinator

#endif  // MXPORT_COORDINATOR_CORE_STORE_H_
