// MemoryFileSystem: the FileSystem contract in memory, with a model of durability for crash
// tests.
//
// Contract:
// - Same status codes and messages-name-the-path rule as file_system.h. Directories are
//   explicit: creating a file in a missing directory is NotFound, and CreateDirs makes them.
//   "/" always exists. Paths are split on '/', empty and "." components are ignored, and a
//   relative path is resolved from the root, so "a/b", "./a/b" and "/a/b" name the same entry
//   and "." is the root. ".." is InvalidArgument.
// - Files are inodes: an open handle keeps its file, so renaming or deleting an open file
//   behaves as on POSIX (writes follow the file, not the name). Handles may outlive the file
//   system object.
// - Rename moves files only; renaming a directory is FailedPrecondition (unlike POSIX).
// - Thread safety: every method takes one mutex, so all calls may be concurrent (concurrent
//   WriteAt calls are simply serialized).
//
// Durability model (what SimulateCrash() keeps):
// - Each file has its current bytes and its synced bytes; WritableFile::Sync() copies the
//   former to the latter. Allocate, truncation on open and writes touch only current bytes.
// - Each directory has its current entries (name -> file or directory) and its durable
//   entries; SyncDir() copies the former to the latter. Creating, renaming or deleting a file
//   or creating a directory changes only the current entries of the directories involved.
// - SimulateCrash() replaces, from the root down, each reachable directory's entries with its
//   durable entries and each reachable file's bytes with its synced bytes. So a file created
//   (or renamed into a directory) without SyncDir disappears; an un-synced rename is undone
//   and the old name comes back with its synced bytes; an un-synced delete is undone; a
//   directory made by CreateDirs disappears unless its parent was synced. A rename synced in
//   the target directory but not in the source leaves the file under both names (a hard link),
//   one of the outcomes POSIX allows.
// - Not modelled: partial syncs, torn writes, reordering within a file, metadata such as
//   sizes being durable separately from data. Open handles stay usable after a crash and keep
//   writing to their (possibly now unreachable) file.
#ifndef MXPORT_COMMON_FS_MEMORY_FILE_SYSTEM_H_
#define MXPORT_COMMON_FS_MEMORY_FILE_SYSTEM_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/fs/file_system.h"

namespace mxport::fs {

namespace internal_fs {
struct MemoryState;
}  // namespace internal_fs

class MemoryFileSystem final : public FileSystem {
 public:
  // An empty file system holding only the root directory (durable).
  MemoryFileSystem();
  ~MemoryFileSystem() override;
  MemoryFileSystem(const MemoryFileSystem&) = delete;
  MemoryFileSystem& operator=(const MemoryFileSystem&) = delete;

  absl::StatusOr<std::unique_ptr<RandomAccessFile>> OpenForRead(const std::string& path) override;
  absl::StatusOr<std::unique_ptr<WritableFile>> OpenForWrite(const std::string& path,
                                                             OpenMode mode) override;
  absl::Status Exists(const std::string& path) override;
  absl::StatusOr<bool> IsDirectory(const std::string& path) override;
  absl::StatusOr<uint64_t> FileSize(const std::string& path) override;
  absl::Status CreateDirs(const std::string& path) override;
  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path) override;
  absl::Status Rename(const std::string& from, const std::string& to) override;
  absl::Status Delete(const std::string& path) override;
  absl::Status SyncDir(const std::string& path) override;

  // Loses everything not durable, as described above.
  void SimulateCrash();
  // Makes everything reachable durable, as if every file and directory had been synced.
  // Handy after setting up a test's starting state.
  void SyncEverything();

 private:
  std::shared_ptr<internal_fs::MemoryState> state_;
};

std::unique_ptr<MemoryFileSystem> NewMemoryFileSystem();

}  // namespace mxport::fs

#endif  // MXPORT_COMMON_FS_MEMORY_FILE_SYSTEM_H_
