// ScratchDir: the worker's node-local directory for temporary files.
//
// Nothing an export publishes goes here (staged files live under the output directory, so a
// commit is a rename). It is where the libraries a worker loads put their own files: TMPDIR for
// anything that asks for a temporary file, and CUDA's kernel cache (CUDA_CACHE_PATH, unless set),
// so a worker runs with a read-only root file system and a small writable volume. Open also
// takes an exclusive lock, `mxport-<job>-worker-<index>.lock`, that lives as long as the
// ScratchDir: a second daemon started with the same job and index on the same node (a duplicated
// pod, a stale process) fails at once instead of racing the first. The kernel drops the lock
// when the process dies, even by SIGKILL.
//
// Errors name the directory: InvalidArgument for an empty path, FailedPrecondition when it
// cannot be created or written or the lock is held. Not thread-safe (one per process).
#ifndef MXPORT_WORKER_SCRATCH_DIR_H_
#define MXPORT_WORKER_SCRATCH_DIR_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace mxport::worker {

class ScratchDir {
 public:
  static absl::StatusOr<std::unique_ptr<ScratchDir>> Open(const std::string& path,
                                                          const std::string& job_id,
                                                          int64_t index);
  ~ScratchDir();  // releases the lock and removes its file
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }
  // Sets TMPDIR to the directory and CUDA_CACHE_PATH to <dir>/cuda-cache when it is unset.
  // Call before any thread or library reads the environment.
  void ExportEnvironment() const;

 private:
  ScratchDir(std::string path, std::string lock_path, int fd)
      : path_(std::move(path)), lock_path_(std::move(lock_path)), fd_(fd) {}
  std::string path_, lock_path_;
  int fd_ = -1;
};

// The default directory: $TMPDIR when set, else /tmp.
std::string DefaultScratchDir();

}  // namespace mxport::worker

#endif  // MXPORT_WORKER_SCRATCH_DIR_H_
