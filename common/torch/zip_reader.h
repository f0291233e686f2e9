// ZipReader: the read side of the zip container that torch.save writes (formats.md §1.1).
//
// Reads the central directory of a zip that occupies a window [base, base + length) of a
// RandomAccessFile, so archives embedded in bigger files (DCP items) or held in memory (TE
// extra state) work alike. The end-of-central-directory record is found by scanning back from
// the window's end; zip64 records are honoured; sizes come from the central directory (torch's
// local headers carry zeros). Stored entries are read lazily with pread at their absolute file
// offset; deflated entries are inflated with zlib on read; other methods and encrypted entries
// are rejected. Every entry's local header is checked against the central directory, and entry
// ranges may not overlap each other or the directory (self-overlapping "zip bombs" fail).
//
// Errors: InvalidArgument for anything malformed, naming the archive and the entry; DataLoss
// when the data ends early. Thread-safe after Open (all reads are positional).
#ifndef MXPORT_COMMON_TORCH_ZIP_READER_H_
#define MXPORT_COMMON_TORCH_ZIP_READER_H_

#include <cstdint>
#include <memory>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/fs/file_system.h"

namespace mxport::torch {

struct ZipEntry {
  std::string name;
  uint16_t method = 0;           // 0 stored, 8 deflate
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0;
  uint64_t uncompressed_size = 0;
  uint64_t header_offset = 0;    // of the local header, relative to the window
  uint64_t data_offset = 0;      // of the payload, relative to the window
};

struct ZipReaderOptions {
  uint64_t max_entries = 1 << 22;
  // Largest entry ReadEntry will materialize in memory.
  uint64_t max_read_bytes = uint64_t{4} << 30;
  // Verify CRC-32 in ReadEntry (torch writes it unless told not to; 0 is accepted as absent).
  bool verify_crc = false;
};

class ZipReader {
 public:
  // Opens the zip in [base, base + length) of `file`; length UINT64_MAX means "to the end".
  // `name` is used in error messages.
  static absl::StatusOr<std::unique_ptr<ZipReader>> Open(
      std::shared_ptr<const fs::RandomAccessFile> file, std::string name, uint64_t base = 0,
      uint64_t length = UINT64_MAX, const ZipReaderOptions& options = {});

  const std::vector<ZipEntry>& entries() const { return entries_; }
  // The entry named exactly `name`, or nullptr.
  const ZipEntry* Find(absl::string_view name) const;
  const std::string& name() const { return name_; }

  // The whole (decompressed) payload of `entry`.
  absl::StatusOr<std::string> ReadEntry(const ZipEntry& entry) const;
  // `n` bytes at `offset` within the decompressed payload of `entry`.
  absl::Status ReadEntryRange(const ZipEntry& entry, uint64_t offset, size_t n, char* dst) const;
  // Absolute offset of a stored entry's payload in the underlying file (for lazy tensors).
  uint64_t AbsoluteDataOffset(const ZipEntry& entry) const { return base_ + entry.data_offset; }
  const std::shared_ptr<const fs::RandomAccessFile>& file() const { return file_; }

 private:
  ZipReader(std::shared_ptr<const fs::RandomAccessFile> file, std::string name, uint64_t base,
            uint64_t length, const ZipReaderOptions& options)
      : file_(std::move(file)), name_(std::move(name)), base_(base), length_(length),
        options_(options) {}
  absl::Status ReadDirectory();
  absl::Status ReadWindow(uint64_t offset, size_t n, char* dst) const;

  std::shared_ptr<const fs::RandomAccessFile> file_;
  std::string name_;
  uint64_t base_;
  uint64_t length_;
  ZipReaderOptions options_;
  std::vector<ZipEntry> entries_;
  absl::flat_hash_map<std::string, size_t> by_name_;
};

// A RandomAccessFile over bytes held in memory (nested archives, fuzzing, tests).
std::shared_ptr<const fs::RandomAccessFile> NewMemoryRandomAccessFile(std::string name,
                                                                      std::string bytes);

}  // namespace mxport::torch

#endif  // MXPORT_COMMON_TORCH_ZIP_READER_H_
