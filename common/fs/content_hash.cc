#include "common/fs/content_hash.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"

// Header-only use of libxxhash: nothing to link or ship at run time.
#define XXH_INLINE_ALL
#include <xxhash.h>

namespace mxport::fs {

struct ContentHasher::State {
  XXH3_state_t xxh;
};

ContentHasher::ContentHasher() : state_(std::make_unique<State>()) {
  XXH3_128bits_reset(&state_->xxh);
}

ContentHasher::~ContentHasher() = default;

void ContentHasher::Update(absl::string_view bytes) {
  XXH3_128bits_update(&state_->xxh, bytes.data(), bytes.size());
}

std::string ContentHasher::Finish() {
  XXH128_canonical_t canonical;
  XXH128_canonicalFromHash(&canonical, XXH3_128bits_digest(&state_->xxh));
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(kContentHashPrefix);
  for (unsigned char byte : canonical.digest) {
    out += kDigits[byte >> 4];
    out += kDigits[byte & 15];
  }
  return out;
}

std::string ContentHash(absl::string_view bytes) {
  ContentHasher hasher;
  hasher.Update(bytes);
  return hasher.Finish();
}

absl::StatusOr<std::string> ContentHashFile(FileSystem& fs, const std::string& path) {
  ASSIGN_OR_RETURN(auto file, fs.OpenForRead(path));
  ContentHasher hasher;
  std::string buffer(1 << 20, '\0');
  for (uint64_t offset = 0; offset < file->size();) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(buffer.size(), file->size() - offset));
    RETURN_IF_ERROR(file->ReadAt(offset, n, buffer.data()));
    hasher.Update(absl::string_view(buffer.data(), n));
    offset += n;
  }
  return hasher.Finish();
}

}  // namespace mxport::fs
