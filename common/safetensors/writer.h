// Writer: writes one safetensors file whose header is fixed up front, while the tensor bytes
// arrive in pieces, at any offset within any tensor, in any order, from several threads.
//
// Create() opens the file through the FileSystem (creating or truncating it), preallocates it
// to header.file_size() with WritableFile::Allocate, and writes the encoded header.
// WritePiece() writes bytes at an offset within one tensor. The writer tracks which bytes of
// each tensor were written, as a set of disjoint intervals:
// - NotFound: no tensor of that name.
// - OutOfRange: the piece does not lie within the tensor.
// - AlreadyExists: the piece overlaps bytes already written, or being written by another thread.
// - A failed WriteAt returns its error (annotated with the tensor) and forgets the piece, so it
//   may be retried.
// Finish() fails with FailedPrecondition naming the tensors not fully written (more pieces may
// then still be written); otherwise it syncs and closes the file. After a successful Finish,
// every call fails with FailedPrecondition. Messages name the file and the tensor.
//
// Thread safety: WritePiece and BytesWritten may be called concurrently; Finish must not run
// concurrently with WritePiece. The Writer owns its file; destroying it without Finish closes
// the file unsynced. Because the file is preallocated, missing pieces read back as zeros and a
// Reader cannot tell: publish a file (e.g. rename a temporary name) only after Finish succeeds.
#ifndef MXPORT_COMMON_SAFETENSORS_WRITER_H_
#define MXPORT_COMMON_SAFETENSORS_WRITER_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/fs/file_system.h"
#include "common/safetensors/header.h"

namespace mxport::safetensors {

class Writer {
 public:
  // Opens `path` (OpenMode::kCreateOrTruncate), preallocates and writes the header. Errors are
  // the FileSystem's.
  static absl::StatusOr<std::unique_ptr<Writer>> Create(fs::FileSystem& fs, const std::string& path,
                                                        Header header);

  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;
  ~Writer();

  // Writes `bytes` at `offset` bytes into tensor `name`'s data. An empty piece within bounds
  // is a no-op. Thread-safe.
  absl::Status WritePiece(absl::string_view name, uint64_t offset, absl::string_view bytes);

  // Bytes of tensor `name` written so far, or NotFound. Thread-safe.
  absl::StatusOr<uint64_t> BytesWritten(absl::string_view name) const;

  // Checks that every tensor is fully written, then Syncs and Closes the file.
  absl::Status Finish();

  const Header& header() const { return header_; }
  const std::string& path() const { return path_; }

 private:
  struct Span {
    uint64_t end = 0;
    bool done = false;  // false while its WriteAt is in flight
  };
  // Which bytes of one tensor are written or being written.
  struct Coverage {
    mutable absl::Mutex mu;
    std::map<uint64_t, Span> spans ABSL_GUARDED_BY(mu);  // begin -> span; disjoint
    uint64_t bytes_done ABSL_GUARDED_BY(mu) = 0;
  };

  Writer(std::string path, Header header, std::unique_ptr<fs::WritableFile> file);
  absl::Status FailedPrecondition(absl::string_view what) const;

  const std::string path_;
  const Header header_;
  std::unique_ptr<fs::WritableFile> file_;
  std::vector<std::unique_ptr<Coverage>> coverage_;  // parallel to header_.entries()
  std::atomic<bool> finished_{false};
};

// A whole tensor to write: safetensors dtype and shape, and its bytes (not owned).
struct TensorData {
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  absl::string_view data;
};

// Writes a whole file: lays out `tensors` in `order` (kAsGiven means name order, the map's),
// then writes and finishes it. InvalidArgument when a tensor's bytes do not match its size.
absl::Status WriteTensors(fs::FileSystem& fs, const std::string& path,
                          const std::map<std::string, TensorData>& tensors,
                          const Metadata& metadata, LayoutOrder order = LayoutOrder::kPythonWriter);

}  // namespace mxport::safetensors

#endif  // MXPORT_COMMON_SAFETENSORS_WRITER_H_
