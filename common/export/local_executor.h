// Executes an ExportPlan in this process: reads each piece from its rank file with pread,
// writes it at its final offset of a preallocated safetensors file, and publishes every file by
// atomic rename (staged as `<out>/.staging/<name>`, fsynced, renamed, directory fsynced), the
// index last. Used by tests and by single-machine exports; distributed exports run the same
// piece copies in workers (worker issue). Memory holds one piece at a time.
// A quantized plan (quantize_plan.h) takes a statistics pass over the quantized weights' pieces
// first, then writes quantized chunks and the scale tensors computed from the statistics.
//
// Errors name the file and key; on any error nothing more is published and staged files are
// removed. Not thread-safe (one call at a time per output directory).
#ifndef MXPORT_COMMON_EXPORT_LOCAL_EXECUTOR_H_
#define MXPORT_COMMON_EXPORT_LOCAL_EXECUTOR_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "common/export/plan.h"
#include "common/fs/file_system.h"
#include "common/torch/torch_file.h"

namespace mxport::exporter {

// Opens source rank files lazily and finds a piece's tensor in them. Thread-compatible.
class SourceReader {
 public:
  SourceReader(fs::FileSystem& fs, const ExportPlan& plan) : fs_(fs), plan_(plan) {}
  // Reads rows [piece.src_row, +piece.rows) of the piece's source tensor, full width.
  absl::StatusOr<std::string> ReadRows(const Piece& piece);
  // The same rows into `out`, which must hold exactly their bytes (InvalidArgument otherwise,
  // naming the file and key).
  absl::Status ReadRowsInto(const Piece& piece, absl::Span<char> out);

 private:
  struct Located {
    const torch::TorchFile* file;
    const pickle::TensorRef* tensor;
    uint64_t row_bytes;  // of one full-width row
    std::string chunk;   // the state-dict key of the piece's virtual stage
  };
  absl::StatusOr<const torch::TorchFile*> File(int source);
  absl::StatusOr<Located> Locate(const Piece& piece);
  absl::Status Read(const Piece& piece, const Located& at, absl::Span<char> out);
  fs::FileSystem& fs_;
  const ExportPlan& plan_;
  std::vector<std::unique_ptr<torch::TorchFile>> files_;
};

// Copies `rows` (the piece's rows of its source, full width) into the piece's region of
// `tensor`, calling write(offset_in_tensor, bytes) for each contiguous destination run.
// FailedPrecondition for a quantized tensor (ScatterQuantized writes those).
absl::Status ScatterPiece(const Piece& piece, const HfTensor& tensor, absl::string_view rows,
                          const std::function<absl::Status(uint64_t, absl::string_view)>& write);

// A small file published with the weights (config.json, tokenizer files, ...).
struct Sidecar {
  std::string name;
  std::string bytes;
};

// Writes every output file of `plan`, then the sidecars, then the index (last: loaders enter
// through it) into `output_dir`.
absl::Status ExecutePlanLocally(fs::FileSystem& fs, const ExportPlan& plan,
                                const std::string& output_dir,
                                const std::vector<Sidecar>& sidecars = {});

}  // namespace mxport::exporter

#endif  // MXPORT_COMMON_EXPORT_LOCAL_EXECUTOR_H_
