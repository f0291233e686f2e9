// Test helpers for the fs module's tests (header-only, test code only): write a whole file in
// one call, and a fresh POSIX temp directory removed (recursively) on destruction.
#ifndef MXPORT_COMMON_FS_FS_TESTUTIL_H_
#define MXPORT_COMMON_FS_FS_TESTUTIL_H_

#include <stdlib.h>

#include <memory>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/status.h"
#include "common/base/status_macros.h"
#include "common/fs/file_system.h"

namespace mxport::fs::testutil {

// Creates or truncates `path` and writes `data` into it, synced and closed.
inline absl::Status WriteString(FileSystem& fs, const std::string& path, absl::string_view data) {
  ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file,
                   fs.OpenForWrite(path, OpenMode::kCreateOrTruncate));
  RETURN_IF_ERROR(file->WriteAt(0, data));
  RETURN_IF_ERROR(file->Sync());
  return file->Close();
}

// A directory made with mkdtemp under $TMPDIR (or /tmp); path() is empty if that failed.
class PosixTempDir {
 public:
  PosixTempDir() {
    const char* tmpdir = getenv("TMPDIR");
    std::string templ =
        JoinPath(tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp", "mxport_fs_test.XXXXXX");
    if (mkdtemp(templ.data()) != nullptr) path_ = templ;
  }
  ~PosixTempDir() {
    if (!path_.empty()) DeleteRecursively(*PosixFileSystem(), path_).IgnoreError();
  }
  PosixTempDir(const PosixTempDir&) = delete;
  PosixTempDir& operator=(const PosixTempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace mxport::fs::testutil

#endif  // MXPORT_COMMON_FS_FS_TESTUTIL_H_
