// Content hashes of the files an export publishes: "xxh3-128:" followed by the 32 lowercase hex
// digits of XXH3's 128-bit hash (seed 0) in canonical form, the digits `xxh128sum` prints for
// the same file. A commit carries one so the coordinator can tell a retry (same path, same hash)
// from a conflicting write, and can re-hash a staged file to check it. XXH3 is not a
// cryptographic hash: it guards against accidents (torn or mixed-up files), not against a
// writer that lies, which could write any bytes anyway; at ~20 GB/s per core it keeps hashing
// far from the critical path of an export, where SHA-256 would cost a core-second per 1.6 GB.
//
// ContentHasher is thread-compatible; the functions are stateless and thread-safe.
#ifndef MXPORT_COMMON_FS_CONTENT_HASH_H_
#define MXPORT_COMMON_FS_CONTENT_HASH_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/fs/file_system.h"

namespace mxport::fs {

inline constexpr absl::string_view kContentHashPrefix = "xxh3-128:";

// Incremental: Update with consecutive byte ranges, then Finish once.
class ContentHasher {
 public:
  ContentHasher();
  ~ContentHasher();
  ContentHasher(const ContentHasher&) = delete;
  ContentHasher& operator=(const ContentHasher&) = delete;

  void Update(absl::string_view bytes);
  std::string Finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

std::string ContentHash(absl::string_view bytes);
// Reads the file through `fs`, 1 MiB at a time.
absl::StatusOr<std::string> ContentHashFile(FileSystem& fs, const std::string& path);

}  // namespace mxport::fs

#endif  // MXPORT_COMMON_FS_CONTENT_HASH_H_
