// Path helpers and the whole-file operations built on the FileSystem interface.
#include "common/fs/file_system.h"

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"

namespace mxport::fs {

std::string Dirname(absl::string_view path) {
  // Ignore trailing separators ("a/b/" names the same entry as "a/b").
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  const size_t slash = path.rfind('/');
  if (slash == absl::string_view::npos) return ".";
  absl::string_view parent = path.substr(0, slash);
  while (parent.size() > 1 && parent.back() == '/') parent.remove_suffix(1);
  if (parent.empty()) return "/";
  return std::string(parent);
}

std::string JoinPath(absl::string_view a, absl::string_view b) {
  if (a.empty()) return std::string(b);
  if (b.empty()) return std::string(a);
  while (a.size() > 1 && a.back() == '/') a.remove_suffix(1);
  while (!b.empty() && b.front() == '/') b.remove_prefix(1);
  std::string joined(a);
  if (a != "/") joined += '/';
  joined.append(b.data(), b.size());
  return joined;
}

absl::StatusOr<std::string> ReadFileToString(FileSystem& fs, const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> file, fs.OpenForRead(path));
  std::string data(file->size(), '\0');
  RETURN_IF_ERROR(file->ReadAt(0, data.size(), data.data()));
  return data;
}

namespace {

std::string TempPathFor(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  return absl::StrCat(path, ".tmp-", static_cast<int64_t>(getpid()), "-",
                      counter.fetch_add(1, std::memory_order_relaxed));
}

// Writes and syncs `data` into a new file at `temp`, closing it in every case.
absl::Status WriteSyncedFile(FileSystem& fs, const std::string& temp, absl::string_view data) {
  ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file,
                   fs.OpenForWrite(temp, OpenMode::kCreateExclusive));
  absl::Status status = file->WriteAt(0, data);
  if (status.ok()) status = file->Sync();
  absl::Status close_status = file->Close();
  if (status.ok()) status = close_status;
  return status;
}

}  // namespace

absl::Status WriteFileAtomically(FileSystem& fs, const std::string& path, absl::string_view data) {
  const std::string temp = TempPathFor(path);
  absl::Status status = WriteSyncedFile(fs, temp, data);
  if (status.ok()) status = fs.Rename(temp, path);
  if (!status.ok()) {
    // The temp file may or may not exist (the open itself may have failed); either way the
    // first error is the one worth reporting.
    fs.Delete(temp).IgnoreError();
    return status;
  }
  // The rename happened: `temp` no longer exists, and only the directory entry needs syncing.
  return fs.SyncDir(Dirname(path));
}

absl::Status DeleteRecursively(FileSystem& fs, const std::string& path) {
  ASSIGN_OR_RETURN(bool is_dir, fs.IsDirectory(path));
  if (is_dir) {
    ASSIGN_OR_RETURN(std::vector<std::string> names, fs.ListDir(path));
    for (const std::string& name : names) {
      RETURN_IF_ERROR(DeleteRecursively(fs, JoinPath(path, name)));
    }
  }
  return fs.Delete(path);
}

}  // namespace mxport::fs
