// Committer: the one place where output files are published. A writer stages a file under the
// job's output directory (`<out>/.staging/...`), fsyncs it, and asks to commit it with its
// lease token, size and content hash (common/fs/content_hash.h). The committer then:
//   1. treats a commit of a path already committed with the same size and hash as a no-op
//      (retries and failover are safe; nothing moves);
//   2. checks the token against the lease of the commit's resource: a stale token is Aborted
//      and nothing moves (a paused ex-holder can only litter staging);
//   3. checks the staged file's size (and hash, when verify_hash is set);
//   4. renames it into place, fsyncs the directory, and journals the commit in the store.
// Paths are confined: the final path must be relative without '..', and the staged file must
// lie under `<out>/.staging/`; anything else is InvalidArgument. Thread-safe.
#ifndef MXPORT_COORDINATOR_CORE_COMMITTER_H_
#define MXPORT_COORDINATOR_CORE_COMMITTER_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/base/clock.h"
#include "common/fs/file_system.h"
#include "coordinator/core/lease_manager.h"
#include "coordinator/core/store.h"

namespace mxport::coordinator {

struct CommitRequest {
  std::string job_id;
  int64_t generation = 0;
  std::string resource;     // the lease the writer holds
  int64_t token = 0;
  std::string staged_path;  // absolute or relative to the process; under <out>/.staging/
  std::string path;         // final path relative to <out>
  uint64_t size = 0;
  std::string content_hash;
};

struct CommitResult {
  CommitRecord record;
  bool already_committed = false;
};

class Committer {
 public:
  struct Options {
    fs::FileSystem* fs = nullptr;
    Store* store = nullptr;
    LeaseManager* leases = nullptr;
    Clock* clock = RealClock();
    bool verify_hash = true;
  };
  explicit Committer(Options options) : options_(std::move(options)) {}

  absl::StatusOr<CommitResult> Commit(const std::string& output_dir, const CommitRequest& request);

  // The staging directory of an output directory.
  static std::string StagingDir(const std::string& output_dir);

 private:
  const Options options_;
  absl::Mutex mu_;  // one commit at a time: check, rename and journal are one step
};

// InvalidArgument unless `path` is a non-empty relative path without '.', '..' or empty parts.
absl::Status CheckRelativePath(absl::string_view path);

}  // namespace mxport::coordinator

#endif  // MXPORT_COORDINATOR_CORE_COMMITTER_H_
