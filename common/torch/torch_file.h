// TorchFile: a checkpoint written by torch.save (the zip format, formats.md §1), opened for
// lazy reading.
//
// Open reads the zip directory and data.pkl only, unpickles it with the restricted unpickler
// (unpickler.h), and validates every storage and tensor against the archive before returning:
// each storage's record `data/<key>` exists with exactly the declared size, each tensor's
// elements (offset, size, stride) lie inside its storage, and the byte order is little-endian.
// No tensor bytes are read until ReadTensor is called; reads use pread and handle any strided
// view (slices, transposes, expands) by gathering into row-major order.
//
// Rejected with a clear error naming the file: the legacy pre-1.6 pickle format, TorchScript
// archives (constants.pkl), tar archives, big-endian files, unsupported tensor kinds.
// Errors are InvalidArgument (malformed), DataLoss (short data), PermissionDenied (a global
// that runs code), Unimplemented (a valid but unsupported feature). Thread-safe after Open.
#ifndef MXPORT_COMMON_TORCH_TORCH_FILE_H_
#define MXPORT_COMMON_TORCH_TORCH_FILE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/tensor.h"
#include "common/fs/file_system.h"
#include "common/torch/pickle_value.h"
#include "common/torch/unpickler.h"
#include "common/torch/zip_reader.h"

namespace mxport::torch {

struct TorchFileOptions {
  pickle::UnpicklerOptions unpickler;
  ZipReaderOptions zip;
  uint64_t max_pickle_bytes = uint64_t{1} << 30;
  int max_walk_depth = 1000;
};

// A tensor found in the file, with its path (see pickle::WalkValues for the path syntax).
struct TensorEntry {
  std::string path;
  const pickle::TensorRef* tensor;
};

// Where a contiguous tensor's bytes lie in the underlying file.
struct FileRange {
  uint64_t offset = 0;
  uint64_t length = 0;
};

class TorchFile {
 public:
  static absl::StatusOr<std::unique_ptr<TorchFile>> Open(fs::FileSystem& fs,
                                                         const std::string& path,
                                                         const TorchFileOptions& options = {});
  // Opens the torch.save archive in [base, base + length) of `file` (DCP items, nested
  // BytesIO archives). `name` appears in errors.
  static absl::StatusOr<std::unique_ptr<TorchFile>> OpenFrom(
      std::shared_ptr<const fs::RandomAccessFile> file, std::string name, uint64_t base,
      uint64_t length, const TorchFileOptions& options = {});

  const std::string& name() const { return name_; }
  // The folder every record sits under ("model_optim_rng", "archive").
  const std::string& archive_prefix() const { return prefix_; }
  // Contents of the `version` record, or "" when absent.
  const std::string& format_version() const { return version_; }
  const pickle::Value& root() const { return *unpickled_.root; }
  // Every tensor reachable from the root, in pickle order.
  const std::vector<TensorEntry>& tensors() const { return tensors_; }

  static TensorDescriptor Describe(const pickle::TensorRef& tensor) {
    return TensorDescriptor{tensor.dtype, tensor.shape};
  }
  // The tensor's values as contiguous row-major little-endian bytes.
  absl::StatusOr<std::string> ReadTensor(const pickle::TensorRef& tensor) const;
  // Same, into `dst`, which must hold exactly the tensor's byte count.
  absl::Status ReadTensorInto(const pickle::TensorRef& tensor, char* dst, size_t size) const;
  // The file range holding the tensor when it is row-major contiguous in a stored record;
  // FailedPrecondition otherwise.
  absl::StatusOr<FileRange> ContiguousRange(const pickle::TensorRef& tensor) const;
  const std::shared_ptr<const fs::RandomAccessFile>& file() const { return zip_->file(); }

 private:
  TorchFile() = default;
  absl::Status Load(const TorchFileOptions& options);
  absl::StatusOr<const ZipEntry*> StorageRecord(const pickle::StorageRef& storage) const;
  absl::Status CheckTensor(const std::string& path, const pickle::TensorRef& tensor) const;

  std::string name_;
  std::string prefix_;
  std::string version_;
  std::unique_ptr<ZipReader> zip_;
  pickle::Unpickled unpickled_;
  std::vector<TensorEntry> tensors_;
};

// True when `shape`/`stride` describe a row-major contiguous layout (size-1 dims ignored).
bool IsRowMajorContiguous(const std::vector<int64_t>& shape, const std::vector<int64_t>& stride);

}  // namespace mxport::torch

#endif  // MXPORT_COMMON_TORCH_TORCH_FILE_H_
