// FileSystem: every byte mxport reads or writes goes through this interface, so tests can run
// on memory and inject faults (see memory_file_system.h, fault_injection_file_system.h).
//
// Contract:
// - Paths are plain strings ('/'-separated). Every error message names the path it concerns.
// - NotFound: the path does not exist. AlreadyExists: creating what exists. FailedPrecondition:
//   wrong kind of object (a directory where a file is wanted). DataLoss: a read past the end of
//   a file (the file is shorter than its reader was told). Other I/O errors: Internal or
//   Unavailable with errno's text.
// - Durability follows POSIX: bytes written are durable after WritableFile::Sync(); a created,
//   renamed or deleted directory entry is durable after SyncDir() on its parent directory.
//   Rename() atomically replaces the destination.
// - Thread safety: FileSystem methods may be called concurrently. RandomAccessFile::ReadAt is
//   safe to call concurrently (pread). WritableFile::WriteAt may be called concurrently for
//   disjoint ranges; Sync/Close are not concurrent with writes.
// - Ownership: the returned file objects are owned by the caller and closed on destruction
//   (without sync; call Close() to see errors).
#ifndef MXPORT_COMMON_FS_FILE_SYSTEM_H_
#define MXPORT_COMMON_FS_FILE_SYSTEM_H_

#include <cstdint>
#include <memory>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace mxport::fs {

class RandomAccessFile {
 public:
  virtual ~RandomAccessFile() = default;
  // Reads exactly `n` bytes at `offset` into `dst`. DataLoss if fewer bytes exist.
  virtual absl::Status ReadAt(uint64_t offset, size_t n, char* dst) const = 0;
  // Size of the file when it was opened.
  virtual uint64_t size() const = 0;
  virtual const std::string& path() const = 0;
};

class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Writes `data` at `offset`, extending the file if needed. Any order, any offset.
  virtual absl::Status WriteAt(uint64_t offset, absl::string_view data) = 0;
  // Sets the file's size to `size` (reserving blocks where the platform can), zero-filled.
  virtual absl::Status Allocate(uint64_t size) = 0;
  // Makes all written bytes durable.
  virtual absl::Status Sync() = 0;
  // Releases the file. Further calls fail with FailedPrecondition.
  virtual absl::Status Close() = 0;
  virtual const std::string& path() const = 0;
};

enum class OpenMode {
  kCreateOrTruncate,  // create, or truncate an existing file to 0 bytes
  kCreateExclusive,   // create; AlreadyExists when present
  kOpenExisting,      // open an existing file, keeping its bytes; NotFound when absent
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  virtual absl::StatusOr<std::unique_ptr<RandomAccessFile>> OpenForRead(
      const std::string& path) = 0;
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> OpenForWrite(const std::string& path,
                                                                     OpenMode mode) = 0;
  // OK when `path` exists (file or directory), NotFound otherwise.
  virtual absl::Status Exists(const std::string& path) = 0;
  virtual absl::StatusOr<bool> IsDirectory(const std::string& path) = 0;
  virtual absl::StatusOr<uint64_t> FileSize(const std::string& path) = 0;
  // Creates `path` and any missing parents; OK when it already is a directory.
  virtual absl::Status CreateDirs(const std::string& path) = 0;
  // Names in `path` (not "." or ".."), sorted.
  virtual absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path) = 0;
  // Atomically renames a file, replacing `to` if it exists.
  virtual absl::Status Rename(const std::string& from, const std::string& to) = 0;
  // Deletes a file or an empty directory.
  virtual absl::Status Delete(const std::string& path) = 0;
  // Makes the directory's entries (creations, renames, deletions) durable.
  virtual absl::Status SyncDir(const std::string& path) = 0;
};

// The process-wide POSIX file system (never null, never deleted).
FileSystem* PosixFileSystem();

// Parent directory of `path` ("a/b" -> "a", "b" -> ".", "/b" -> "/").
std::string Dirname(absl::string_view path);
// "a" + "b" -> "a/b" (no doubled separator).
std::string JoinPath(absl::string_view a, absl::string_view b);

// Reads a whole file.
absl::StatusOr<std::string> ReadFileToString(FileSystem& fs, const std::string& path);

// Deletes `path` and, if it is a directory, everything under it.
absl::Status DeleteRecursively(FileSystem& fs, const std::string& path);
// Writes `data` to `path` so that no reader ever sees a partial file: writes
// `<path>.tmp-<pid>-<n>` (same directory, a fresh name per call), syncs and closes it, renames it
// over `path`, syncs the parent directory. On failure before the rename it deletes the temp file,
// leaves `path` as it was, and returns the first error.
absl::Status WriteFileAtomically(FileSystem& fs, const std::string& path, absl::string_view data);

}  // namespace mxport::fs

#endif  // MXPORT_COMMON_FS_FILE_SYSTEM_H_
