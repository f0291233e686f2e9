#include "worker/scratch_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace mxport::worker {
namespace {

absl::Status Failed(const std::string& path, absl::string_view what, int err) {
  return absl::FailedPreconditionError(
      absl::StrCat("scratch dir ", path, ": ", what, ": ", std::strerror(err)));
}

// mkdir -p, mode 0700 for what it creates.
absl::Status MakeDirs(const std::string& path) {
  for (size_t at = 1; at <= path.size(); ++at) {
    if (at != path.size() && path[at] != '/') continue;
    const std::string prefix = path.substr(0, at);
    if (mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
      return Failed(path, absl::StrCat("cannot create ", prefix), errno);
    }
  }
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return Failed(path, "cannot stat", errno);
  if (!S_ISDIR(st.st_mode)) return Failed(path, "not a directory", ENOTDIR);
  return absl::OkStatus();
}

}  // namespace

std::string DefaultScratchDir() {
  const char* tmp = std::getenv("TMPDIR");
  return tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
}

absl::StatusOr<std::unique_ptr<ScratchDir>> ScratchDir::Open(const std::string& path,
                                                             const std::string& job_id,
                                                             int64_t index) {
  if (path.empty()) return absl::InvalidArgumentError("scratch dir: empty path");
  if (absl::Status s = MakeDirs(path); !s.ok()) return s;
  if (access(path.c_str(), W_OK | X_OK) != 0) return Failed(path, "not writable", errno);
  std::string lock_path = absl::StrCat(path, "/mxport-", job_id, "-worker-", index, ".lock");
  const int fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Failed(path, absl::StrCat("cannot create ", lock_path), errno);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    close(fd);
    if (err == EWOULDBLOCK) {
      return absl::FailedPreconditionError(absl::StrCat(
          "scratch dir ", path, ": ", lock_path, " is held by another mxport-worker of job '",
          job_id, "' with index ", index, " on this node"));
    }
    return Failed(path, absl::StrCat("cannot lock ", lock_path), err);
  }
  const std::string pid = absl::StrCat(getpid(), "\n");  // for whoever looks
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    const int err = errno;
    close(fd);
    return Failed(path, absl::StrCat("cannot write ", lock_path), err);
  }
  return std::unique_ptr<ScratchDir>(new ScratchDir(path, std::move(lock_path), fd));
}

ScratchDir::~ScratchDir() {
  unlink(lock_path_.c_str());  // while still locked: the next holder creates a fresh file
  close(fd_);
}

void ScratchDir::ExportEnvironment() const {
  setenv("TMPDIR", path_.c_str(), 1);
  setenv("CUDA_CACHE_PATH", absl::StrCat(path_, "/cuda-cache").c_str(), 0);
}

}  // namespace mxport::worker
