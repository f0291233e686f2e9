// Reader: random access to the tensors of one safetensors file.
//
// Open() reads the 8-byte length and then the N header bytes (never more than 8 + N bytes
// before validation) and validates the header against the file's size (Header::Parse: errors
// are InvalidArgument, or DataLoss for a file shorter than its header says). Tensor bytes are
// read on demand with pread (RandomAccessFile::ReadAt). Unknown tensor names are NotFound; a
// range outside a tensor is OutOfRange; read errors are the FileSystem's (DataLoss if the file
// shrank). Messages name the file and the tensor.
//
// Thread safety: all methods are const and may be called concurrently. The Reader owns its file.
#ifndef MXPORT_COMMON_SAFETENSORS_READER_H_
#define MXPORT_COMMON_SAFETENSORS_READER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/fs/file_system.h"
#include "common/safetensors/header.h"

namespace mxport::safetensors {

class Reader {
 public:
  // Opens `path` on `fs` and validates its header.
  static absl::StatusOr<std::unique_ptr<Reader>> Open(fs::FileSystem& fs, const std::string& path);
  // Same, for a file already open (e.g. an in-memory file); takes ownership.
  static absl::StatusOr<std::unique_ptr<Reader>> FromFile(
      std::unique_ptr<fs::RandomAccessFile> file);

  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  const Header& header() const { return header_; }
  // Entries in offset order.
  const std::vector<TensorEntry>& entries() const { return header_.entries(); }
  const Metadata& metadata() const { return header_.metadata(); }
  const std::string& path() const { return file_->path(); }

  // All bytes of tensor `name`.
  absl::StatusOr<std::string> ReadTensor(absl::string_view name) const;
  // `n` bytes at `offset` within tensor `name` into `dst` (which holds at least n bytes).
  absl::Status ReadRange(absl::string_view name, uint64_t offset, uint64_t n, char* dst) const;

 private:
  Reader(std::unique_ptr<fs::RandomAccessFile> file, Header header);
  absl::StatusOr<const TensorEntry*> Lookup(absl::string_view name) const;

  std::unique_ptr<fs::RandomAccessFile> file_;
  const Header header_;
};

}  // namespace mxport::safetensors

#endif  // MXPORT_COMMON_SAFETENSORS_READER_H_
