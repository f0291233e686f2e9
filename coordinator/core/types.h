// The coordinator's records: job specs, jobs, events, commits, and their JSON forms (the form
// stored in the database and compared for idempotent submits). Plain values; no gRPC types
// (the rpc layer converts to and from protobuf). Thread-compatible.
#ifndef MXPORT_COORDINATOR_CORE_TYPES_H_
#define MXPORT_COORDINATOR_CORE_TYPES_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/json/json.h"

namespace mxport::coordinator {

enum class JobPhase {
  kPending,       // accepted, waiting for workers
  kScanning,      // workers report manifests
  kPlanned,       // plan validated, assignments sent
  kTransferring,  // pieces move, shards are written and committed
  kFinalizing,    // the lease holder writes sidecars, then the index
  kSucceeded,
  kFailed,
  kCancelled,
};

// "PENDING", "SCANNING", ...; and back (InvalidArgument for an unknown name).
absl::string_view JobPhaseName(JobPhase phase);
absl::StatusOr<JobPhase> JobPhaseFromName(absl::string_view name);
bool IsTerminal(JobPhase phase);

struct JobSpec {
  std::string job_id;  // client-chosen; submits are idempotent on it
  // Source.
  std::string source_path;
  std::string source_format = "torch";
  std::optional<int64_t> iteration;
  // Model.
  std::string architecture;
  std::string hf_config_dir;
  std::vector<std::vector<int64_t>> expert_map;
  // Output.
  std::string output_path;
  uint64_t max_shard_size = uint64_t{5} << 30;
  std::string output_dtype;  // empty: the checkpoint's
  std::string quantization = "none";
  // Execution.
  int64_t workers_expected = 1;
  std::string transport = "auto";  // auto | nccl | tcp
  std::map<std::string, std::string> labels;

  friend bool operator==(const JobSpec&, const JobSpec&) = default;
};

OrderedJson JobSpecToJson(const JobSpec& spec);
// InvalidArgument naming the field on a wrong type or value.
absl::StatusOr<JobSpec> JobSpecFromJson(const Json& json, absl::string_view context);
// Checks the fields a job cannot run without; InvalidArgument naming the field.
absl::Status ValidateJobSpec(const JobSpec& spec);

struct JobRecord {
  JobSpec spec;
  JobPhase phase = JobPhase::kPending;
  int64_t generation = 0;
  int64_t restarts = 0;
  absl::Time created_at;
  absl::Time updated_at;
  std::string message;  // why it failed or was cancelled
  uint64_t bytes_total = 0;
  uint64_t bytes_done = 0;
  int64_t files_total = 0;
  int64_t files_committed = 0;

  friend bool operator==(const JobRecord&, const JobRecord&) = default;
};

OrderedJson JobRecordToJson(const JobRecord& job);
absl::StatusOr<JobRecord> JobRecordFromJson(const Json& json, absl::string_view context);

// The time form used in JSON and in the store: RFC 3339 in UTC with every fractional digit
// needed ("2024-05-01T12:00:00.123456789Z"), so that every absl::Time round-trips exactly
// (the infinite times as "infinite-future"/"infinite-past"). Parsing accepts any RFC 3339
// offset; InvalidArgument prefixed by `context` otherwise.
std::string FormatTimeRfc3339(absl::Time time);
absl::StatusOr<absl::Time> ParseTimeRfc3339(absl::string_view text, absl::string_view context);

struct Event {
  int64_t seq = 0;  // per job, from 1, assigned by the store
  std::string job_id;
  int64_t generation = 0;
  absl::Time time;
  std::string type;  // "submitted", "phase", "lease_granted", "commit", "worker_lost", ...
  std::string message;

  friend bool operator==(const Event&, const Event&) = default;
};

struct CommitRecord {
  std::string job_id;
  std::string path;  // relative to the job's output directory
  uint64_t size = 0;
  std::string content_hash;  // "xxh3-128:<hex>" (common/fs/content_hash.h)
  int64_t token = 0;
  int64_t generation = 0;
  absl::Time time;

  friend bool operator==(const CommitRecord&, const CommitRecord&) = default;
};

}  // namespace mxport::coordinator

#endif  // MXPORT_COORDINATOR_CORE_TYPES_H_
