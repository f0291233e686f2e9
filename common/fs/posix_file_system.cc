// PosixFileSystem(): the FileSystem contract on open/pread/pwrite/fsync/rename.
//
// Short reads and writes are looped and EINTR is retried. errno is mapped to a status code as
// the contract in file_system.h says; every message is "<op> '<path>': <strerror>".
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/base/status_macros.h"
#include "common/fs/file_system.h"

namespace mxport::fs {
namespace {

absl::Status ErrnoStatus(int err, absl::string_view op, absl::string_view path) {
  std::string message = absl::StrCat(op, " '", path, "': ", std::strerror(err));
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(message);
    case EEXIST:
      return absl::AlreadyExistsError(message);
    case EISDIR:
    case ENOTDIR:
    case ENOTEMPTY:
      return absl::FailedPreconditionError(message);
    case EAGAIN:
    case EBUSY:
    case EINTR:
      return absl::UnavailableError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::Status ClosedStatus(absl::string_view op, absl::string_view path) {
  return absl::FailedPreconditionError(absl::StrCat(op, " '", path, "': file is closed"));
}

// Retries `fn` (a syscall returning -1 and setting errno) while it fails with EINTR.
template <typename Fn>
auto RetryOnEintr(Fn fn) {
  decltype(fn()) result;
  do {
    result = fn();
  } while (result == -1 && errno == EINTR);
  return result;
}

class PosixRandomAccessFile final : public RandomAccessFile {
 public:
  PosixRandomAccessFile(std::string path, int fd, uint64_t size)
      : path_(std::move(path)), fd_(fd), size_(size) {}
  ~PosixRandomAccessFile() override { close(fd_); }

  absl::Status ReadAt(uint64_t offset, size_t n, char* dst) const override {
    size_t done = 0;
    while (done < n) {
      const ssize_t r = RetryOnEintr(
          [&] { return pread(fd_, dst + done, n - done, static_cast<off_t>(offset + done)); });
      if (r < 0) return ErrnoStatus(errno, "read", path_);
      if (r == 0) return PastEnd(offset, n);
      done += static_cast<size_t>(r);
    }
    return absl::OkStatus();
  }
  uint64_t size() const override { return size_; }
  const std::string& path() const override { return path_; }

 private:
  absl::Status PastEnd(uint64_t offset, size_t n) const {
    struct stat st;
    const int64_t now = fstat(fd_, &st) == 0 ? static_cast<int64_t>(st.st_size) : -1;
    return absl::DataLossError(absl::StrCat("read '", path_, "': offset ", offset, " length ", n,
                                            " is past the end of the file (", now, " bytes)"));
  }

  const std::string path_;
  const int fd_;
  const uint64_t size_;
};

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) close(fd_);
  }

  absl::Status WriteAt(uint64_t offset, absl::string_view data) override {
    if (fd_ < 0) return ClosedStatus("write", path_);
    size_t done = 0;
    while (done < data.size()) {
      const ssize_t w = RetryOnEintr([&] {
        return pwrite(fd_, data.data() + done, data.size() - done,
                      static_cast<off_t>(offset + done));
      });
      if (w < 0) return ErrnoStatus(errno, "write", path_);
      done += static_cast<size_t>(w);
    }
    return absl::OkStatus();
  }

  absl::Status Allocate(uint64_t size) override {
    if (fd_ < 0) return ClosedStatus("allocate", path_);
    struct stat st;
    if (fstat(fd_, &st) != 0) return ErrnoStatus(errno, "stat", path_);
    if (size > static_cast<uint64_t>(st.st_size)) {
      int err;
      do {
        err = posix_fallocate(fd_, 0, static_cast<off_t>(size));
      } while (err == EINTR);
      if (err == 0) return absl::OkStatus();
      // Some file systems (tmpfs on old kernels, FUSE, NFS) cannot reserve blocks; a sparse
      // extension still gives the promised size and zero fill.
      if (err != EOPNOTSUPP && err != ENOSYS && err != EINVAL) {
        return ErrnoStatus(err, "allocate", path_);
      }
    }
    if (RetryOnEintr([&] { return ftruncate(fd_, static_cast<off_t>(size)); }) != 0) {
      return ErrnoStatus(errno, "truncate", path_);
    }
    return absl::OkStatus();
  }

  absl::Status Sync() override {
    if (fd_ < 0) return ClosedStatus("sync", path_);
    if (RetryOnEintr([&] { return fsync(fd_); }) != 0) return ErrnoStatus(errno, "sync", path_);
    return absl::OkStatus();
  }

  absl::Status Close() override {
    if (fd_ < 0) return ClosedStatus("close", path_);
    const int fd = fd_;
    fd_ = -1;
    // Never retry close(2) on EINTR: on Linux the descriptor is already released.
    if (close(fd) != 0) return ErrnoStatus(errno, "close", path_);
    return absl::OkStatus();
  }

  const std::string& path() const override { return path_; }

 private:
  const std::string path_;
  int fd_;
};

class PosixFileSystemImpl final : public FileSystem {
 public:
  absl::StatusOr<std::unique_ptr<RandomAccessFile>> OpenForRead(const std::string& path) override {
    const int fd = RetryOnEintr([&] { return open(path.c_str(), O_RDONLY | O_CLOEXEC); });
    if (fd < 0) return ErrnoStatus(errno, "open", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
      absl::Status status = ErrnoStatus(errno, "stat", path);
      close(fd);
      return status;
    }
    if (S_ISDIR(st.st_mode)) {
      close(fd);
      return ErrnoStatus(EISDIR, "open", path);
    }
    return std::make_unique<PosixRandomAccessFile>(path, fd, static_cast<uint64_t>(st.st_size));
  }

  absl::StatusOr<std::unique_ptr<WritableFile>> OpenForWrite(const std::string& path,
                                                             OpenMode mode) override {
    int flags = O_WRONLY | O_CLOEXEC;
    switch (mode) {
      case OpenMode::kCreateOrTruncate:
        flags |= O_CREAT | O_TRUNC;
        break;
      case OpenMode::kCreateExclusive:
        flags |= O_CREAT | O_EXCL;
        break;
      case OpenMode::kOpenExisting:
        break;
    }
    const int fd = RetryOnEintr([&] { return open(path.c_str(), flags, 0644); });
    if (fd < 0) return ErrnoStatus(errno, "open", path);
    return std::make_unique<PosixWritableFile>(path, fd);
  }

  absl::Status Exists(const std::string& path) override {
    struct stat st;
    if (stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, "stat", path);
    return absl::OkStatus();
  }

  absl::StatusOr<bool> IsDirectory(const std::string& path) override {
    struct stat st;
    if (stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, "stat", path);
    return S_ISDIR(st.st_mode);
  }

  absl::StatusOr<uint64_t> FileSize(const std::string& path) override {
    struct stat st;
    if (stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, "stat", path);
    if (S_ISDIR(st.st_mode)) return ErrnoStatus(EISDIR, "size of", path);
    return static_cast<uint64_t>(st.st_size);
  }

  absl::Status CreateDirs(const std::string& path) override {
    // Walk the prefixes ("a", "a/b", "a/b/c"), creating each one that is missing.
    for (size_t end = 0; end != std::string::npos;) {
      end = path.find('/', end + 1);
      const std::string prefix = path.substr(0, end);
      if (prefix.empty() || prefix.back() == '/') continue;  // "/" or a doubled separator
      if (mkdir(prefix.c_str(), 0755) == 0) continue;
      const int err = errno;
      struct stat st;
      if (err == EEXIST && stat(prefix.c_str(), &st) == 0) {
        if (S_ISDIR(st.st_mode)) continue;
        return ErrnoStatus(ENOTDIR, "mkdir", prefix);
      }
      return ErrnoStatus(err, "mkdir", prefix);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path) override {
    DIR* dir = opendir(path.c_str());
    if (dir == nullptr) return ErrnoStatus(errno, "list", path);
    std::vector<std::string> names;
    errno = 0;
    while (const dirent* entry = readdir(dir)) {
      const absl::string_view name = entry->d_name;
      if (name != "." && name != "..") names.emplace_back(name);
      errno = 0;
    }
    const int err = errno;
    closedir(dir);
    if (err != 0) return ErrnoStatus(err, "list", path);
    std::sort(names.begin(), names.end());
    return names;
  }

  absl::Status Rename(const std::string& from, const std::string& to) override {
    if (rename(from.c_str(), to.c_str()) != 0) {
      const int err = errno;
      return ErrnoStatus(err, "rename", absl::StrCat(from, "' to '", to));
    }
    return absl::OkStatus();
  }

  absl::Status Delete(const std::string& path) override {
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) return ErrnoStatus(errno, "delete", path);
    if (S_ISDIR(st.st_mode)) {
      if (rmdir(path.c_str()) != 0) {
        // Linux says ENOTEMPTY, some systems EEXIST: either way the directory is not empty.
        const int err = errno == EEXIST ? ENOTEMPTY : errno;
        return ErrnoStatus(err, "delete", path);
      }
    } else if (unlink(path.c_str()) != 0) {
      return ErrnoStatus(errno, "delete", path);
    }
    return absl::OkStatus();
  }

  absl::Status SyncDir(const std::string& path) override {
    const int fd =
        RetryOnEintr([&] { return open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); });
    if (fd < 0) return ErrnoStatus(errno, "open directory", path);
    absl::Status status;
    if (RetryOnEintr([&] { return fsync(fd); }) != 0) status = ErrnoStatus(errno, "sync", path);
    close(fd);
    return status;
  }
};

}  // namespace

FileSystem* PosixFileSystem() {
  static FileSystem* const fs = new PosixFileSystemImpl();
  return fs;
}

}  // namespace mxport::fs
