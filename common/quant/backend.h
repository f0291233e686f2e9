// Quantization backends: where the per-element work of a quantized export runs. The export
// (common/export/quantize_chunk.cc) computes the scales from the statistics and hands a
// backend the regions of a chunk to quantize; the backend writes the codes. CpuBackend() runs
// common/quant/quant.h on the calling thread (the reference, and the CI path);
// worker/cuda/quant_backend.h copies the rows to the GPU and runs worker/cuda/quant_kernels.h.
// Every backend writes exactly the bytes CpuBackend() writes for the same arguments.
//
// Regions are strided matrices in host memory, so a chunk's column range of its full source
// rows, and its place in a row of packed output, need no copy: source row r starts
// r * stride elements after row 0, output row r r * stride bytes after row 0. The element
// arithmetic is that of quant.h: NVFP4 blocks of 16 along a row (cols % 16 == 0), FP8 per
// tensor with Fp8Rounding::kOnce, block FP8 with each element divided by the scale_inv of the
// 128x128 tile of the whole tensor it lies in.
//
// Errors: InvalidArgument for an unsupported dtype, negative sizes, a stride shorter than a
// row, a span too short for its region, a block FP8 region outside its tensor or a grid of the
// wrong size, and the scale errors of quant.h; nothing is written then. A device backend adds
// FailedPrecondition (no usable GPU) and Internal (other device errors). Backends are
// thread-safe: CpuBackend() is stateless, device backends serialise their calls.
#ifndef MXPORT_COMMON_QUANT_BACKEND_H_
#define MXPORT_COMMON_QUANT_BACKEND_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/base/dtype.h"
#include "common/quant/quant.h"

namespace mxport::quant {

// `rows` rows of `cols` source elements; `bytes` starts at row 0's first element and holds at
// least (rows - 1) * stride + cols elements (when rows > 0).
struct SourceRows {
  DType dtype = DType::kBFloat16;
  absl::string_view bytes;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t stride = 0;  // elements from one row's start to the next's; >= cols
};

// Output rows: row r at bytes.data() + r * stride.
struct OutputRows {
  absl::Span<uint8_t> bytes;
  int64_t stride = 0;  // bytes; >= the row width the call writes
};

class Backend {
 public:
  virtual ~Backend() = default;

  // "cpu", "cuda:0": for logs.
  virtual absl::string_view name() const = 0;

  // quant::QuantizeNvfp4 of every row of `src` (cols % 16 == 0): cols / 2 packed bytes in
  // row r of `packed`, cols / 16 block scales in row r of `block_scales`.
  virtual absl::Status QuantizeNvfp4(const SourceRows& src, float weight_scale_2,
                                     OutputRows packed, OutputRows block_scales) = 0;

  // quant::QuantizeFp8 (kOnce) of every row of `src`: cols bytes in row r of `out`.
  virtual absl::Status QuantizeFp8(const SourceRows& src, float weight_scale,
                                   OutputRows out) = 0;

  // The region [row_begin, +src.rows) x [col_begin, +src.cols) of a tensor of `shape`, held
  // in `src`, quantized as quant::QuantizeFp8Block quantizes the whole tensor with the grid
  // `scale_inv` (shape.GridSize() floats): cols bytes in row r of `out`.
  virtual absl::Status QuantizeFp8Block(const SourceRows& src, const Fp8BlockShape& shape,
                                        int64_t row_begin, int64_t col_begin,
                                        absl::Span<const float> scale_inv, OutputRows out) = 0;
};

// The CPU backend (a process-wide instance).
Backend& CpuBackend();

// Argument checks every backend makes before writing anything.
// `src` is a valid region of a quantizable dtype.
absl::Status CheckSourceRows(const SourceRows& src);
// `out` holds `rows` rows of `width` bytes; `what` names it in the error.
absl::Status CheckOutputRows(const OutputRows& out, int64_t rows, int64_t width,
                             absl::string_view what);
// `scale` (a weight_scale, weight_scale_2 or scale_inv) is finite and positive.
absl::Status CheckScale(float scale, absl::string_view what);
// The block FP8 region lies in `shape` and `scale_inv` is its whole grid of valid scales.
absl::Status CheckFp8BlockRegion(const SourceRows& src, const Fp8BlockShape& shape,
                                 int64_t row_begin, int64_t col_begin,
                                 absl::Span<const float> scale_inv);

}  // namespace mxport::quant

#endif  // MXPORT_COMMON_QUANT_BACKEND_H_
