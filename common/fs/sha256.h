// SHA-256 of bytes or of a file read through the FileSystem (1 MiB at a time), as lowercase
// hex. Commits carry it so the coordinator can tell a retry from a conflicting write.
// Stateless; thread-safe.
#ifndef MXPORT_COMMON_FS_SHA256_H_
#define MXPORT_COMMON_FS_SHA256_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/fs/file_system.h"

namespace mxport::fs {

std::string Sha256Hex(absl::string_view bytes);
absl::StatusOr<std::string> Sha256File(FileSystem& fs, const std::string& path);

}  // namespace mxport::fs

#endif  // MXPORT_COMMON_FS_SHA256_H_
