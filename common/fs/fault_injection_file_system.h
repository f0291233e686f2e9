// FaultInjectionFileSystem: a test wrapper around any FileSystem that forwards every call
// (like LevelDB's EnvWrapper) and can fail chosen calls (like LevelDB's ErrorEnv) or throw
// away bytes written since the last Sync (like LevelDB's fault_injection_test).
//
// Contract:
// - Forwarding: with no fault armed, every call behaves exactly as the wrapped file system's
//   (same results, same errors). The wrapped file system is not owned and must outlive this
//   object and every file opened through it.
// - Faults: each Op counts its calls (count(op)), failed ones included. FailNth(op, n, s)
//   makes the n-th call of `op` from now on (n = 1: the very next one) return `s` once;
//   FailAll(op, s) makes every call of `op` return `s` until ClearFaults(). A failed call does
//   not reach the wrapped file system, so it changes nothing there. Ops:
//     kOpenForWrite  FileSystem::OpenForWrite      kWrite     WritableFile::WriteAt
//     kAllocate      WritableFile::Allocate        kSync      WritableFile::Sync
//     kRename        FileSystem::Rename            kSyncDir   FileSystem::SyncDir
//     kDelete        FileSystem::Delete            kRead      RandomAccessFile::ReadAt
//   Other calls (OpenForRead, Exists, ListDir, Close, ...) are forwarded and never fail here.
// - Unsynced data: the wrapper remembers, for each file opened for writing through it, the
//   bytes the file had at its last successful Sync (read back through the wrapped file system)
//   or, before any Sync, when it was first opened through the wrapper (or that it did not exist
//   then). DropUnsyncedData() restores every file written (or truncated or created) since then
//   to those bytes, deleting it if it did not exist. Renames and deletes through the wrapper
//   carry the record along (renamed) or drop it (deleted), including for files still open.
// - Not modelled: durability of directory entries (a rename or delete is never undone; use
//   MemoryFileSystem::SimulateCrash for that), files changed behind the wrapper's back, torn
//   or partial writes. Records are keyed by the path string as given (no normalization), and
//   renaming a directory does not move the records of the files in it. DropUnsyncedData() must not run concurrently with writes; open files
//   stay usable afterwards.
// - Thread safety: as the FileSystem contract; the fault table and the records are guarded by
//   one mutex, which is never held while the wrapped file system does I/O, except inside
//   DropUnsyncedData.
#ifndef MXPORT_COMMON_FS_FAULT_INJECTION_FILE_SYSTEM_H_
#define MXPORT_COMMON_FS_FAULT_INJECTION_FILE_SYSTEM_H_

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/fs/file_system.h"

namespace mxport::fs {

namespace internal_fs {
class FaultWritableFile;
class FaultRandomAccessFile;
}  // namespace internal_fs

class FaultInjectionFileSystem final : public FileSystem {
 public:
  enum class Op { kOpenForWrite, kWrite, kAllocate, kSync, kRename, kSyncDir, kDelete, kRead };
  static constexpr int kNumOps = 8;

  explicit FaultInjectionFileSystem(FileSystem* base);
  FaultInjectionFileSystem(const FaultInjectionFileSystem&) = delete;
  FaultInjectionFileSystem& operator=(const FaultInjectionFileSystem&) = delete;

  FileSystem* base() const { return base_; }

  // Arms a one-shot failure of the n-th (1-based, n >= 1) future call of `op`.
  void FailNth(Op op, int n, absl::Status status);
  // Fails every future call of `op` with `status` until ClearFaults().
  void FailAll(Op op, absl::Status status);
  // Disarms every fault (counters keep counting).
  void ClearFaults();
  // Calls of `op` so far, failed ones included.
  int count(Op op) const;

  // Restores files written since their last Sync, as described above; returns the first error
  // from the wrapped file system (and still tries the remaining files).
  absl::Status DropUnsyncedData();

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

 private:
  friend class internal_fs::FaultWritableFile;
  friend class internal_fs::FaultRandomAccessFile;

  // A file's bytes as the wrapper last saw them durable. Shared with the open file handles so
  // that a rename through the wrapper moves the record with the file.
  struct FileRecord {
    std::string path;                    // current name
    std::optional<std::string> durable;  // nullopt: did not exist
    bool dirty = false;                  // changed since `durable` was taken
  };
  struct Faults {
    int calls = 0;
    std::map<int, absl::Status> nth;  // call number -> status
    std::optional<absl::Status> all;
  };

  // Counts a call of `op` and returns the fault to inject (OK for none).
  absl::Status MaybeFail(Op op) ABSL_LOCKS_EXCLUDED(mu_);
  // Marks `record` changed since its durable bytes were taken.
  void MarkDirty(FileRecord& record) ABSL_LOCKS_EXCLUDED(mu_);
  // After a successful Sync: reads the file back as its new durable bytes.
  absl::Status RecordSync(FileRecord& record) ABSL_LOCKS_EXCLUDED(mu_);

  FileSystem* const base_;
  mutable absl::Mutex mu_;
  std::array<Faults, kNumOps> faults_ ABSL_GUARDED_BY(mu_);
  // Files opened for writing through the wrapper, by current name.
  std::map<std::string, std::shared_ptr<FileRecord>> records_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mxport::fs

#endif  // MXPORT_COMMON_FS_FAULT_INJECTION_FILE_SYSTEM_H_
