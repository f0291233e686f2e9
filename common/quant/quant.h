// Quantization math for export, on the CPU: FP8 per tensor (ModelOpt "fp8"), NVFP4 (ModelOpt
// NVFP4QTensor) and block FP8 (DeepSeek-V3 weight_scale_inv), plus the statistics they need
// (amax of a tensor, amax per 128x128 tile) and dequantization for error checks.
//
// Row-local by design. A tensor is a row-major [rows, cols] matrix of BF16, F16 or F32 elements
// (the last dimension is cols; leading dimensions fold into rows). Once the global statistics
// are known (the tensor's amax, maxed over fused siblings by the caller; for block FP8 the tile
// maxima, max-reduced over whoever read parts of a tile), any worker can quantize any range of
// whole rows, and the bytes it writes are exactly those of the same rows quantized in one piece.
// Source bytes may be unaligned. worker/cuda/quant_kernels.h does the same on device buffers and
// writes identical bytes: the per-element arithmetic lives in codec.h, shared by both.
//
// Scales follow ModelOpt (NVIDIA/Model-Optimizer, modelopt/torch/export/quant_utils.py and
// qtensor/nvfp4_tensor.py) and its TensorQuantizer.export_amax rule for the amax: 0 -> the
// format's maxbound (448 for E4M3, 6 for E2M1), clamped to [FLT_MIN, FLT_MAX]. A negative, NaN
// or infinite amax is InvalidArgument here (ModelOpt would turn NaN into maxbound and export a
// model of garbage). AbsMax and TileAbsMax propagate NaN (as torch.amax does) as the canonical
// NaN, so a NaN weight is seen when its scale is made.
//
// Errors: InvalidArgument for an unsupported dtype (naming it), byte counts that are not whole
// rows, output spans of the wrong size, cols not a multiple of 16 (NVFP4), rows outside the
// tensor (block FP8) and bad amax values. Nothing is written when a call fails validation.
// Stateless; every function is thread-safe and allocates nothing per element.
#ifndef MXPORT_COMMON_QUANT_QUANT_H_
#define MXPORT_COMMON_QUANT_QUANT_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/base/dtype.h"
#include "common/quant/codec.h"

namespace mxport::quant {

// True for the element types quantization reads: BF16, F16, F32.
bool IsQuantizableSource(DType dtype);

// ---- Element access and statistics.

// Converts the elements in `bytes` (little-endian `dtype`) to f32, exactly; `out` holds one
// float per element.
absl::Status ToFloat(DType dtype, absl::string_view bytes, absl::Span<float> out);

// max |x| over the elements in `bytes` (0 for none). Any NaN makes the result the canonical NaN
// (bits 0x7FC00000); Inf stays Inf. Results of pieces combine with CombineAbsMax (codec.h).
absl::StatusOr<float> AbsMax(DType dtype, absl::string_view bytes);

// Block FP8 geometry: a [rows, cols] tensor cut into kFp8BlockTile-square tiles; the scale grid
// is [TileRows(), TileCols()], row-major.
struct Fp8BlockShape {
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t TileRows() const { return (rows + kFp8BlockTile - 1) / kFp8BlockTile; }
  int64_t TileCols() const { return (cols + kFp8BlockTile - 1) / kFp8BlockTile; }
  int64_t GridSize() const { return TileRows() * TileCols(); }
};

// Per-tile amax of the whole rows [row_begin, row_begin + n) of `shape`, where `bytes` holds
// exactly those rows. `grid` is the tensor's whole tile grid (GridSize() floats); each cell the
// rows touch becomes max(cell, tile amax of those rows), NaN-propagating, and other cells are
// left alone. Start from zeros; grids of pieces read by different workers merge cell by cell
// with CombineAbsMax (or MergeTileAbsMax), in any order.
absl::Status TileAbsMax(DType dtype, absl::string_view bytes, const Fp8BlockShape& shape,
                        int64_t row_begin, absl::Span<float> grid);

// into[i] = CombineAbsMax(into[i], from[i]); the spans must have the same size.
absl::Status MergeTileAbsMax(absl::Span<float> into, absl::Span<const float> from);

// ---- Scales from statistics (f32 scalars, as ModelOpt writes them).

// How a scalar scale amax / d is rounded. ModelOpt writes `amax.float() / d` with d a Python
// number; PyTorch computes that as a true division on the CPU but, on CUDA, as
// amax * f32(1 / d) (div_true_kernel_cuda's reciprocal shortcut), which differs in the last bit
// for about a quarter of amax values with d = 2688 and half of them with d = 448. ModelOpt's
// export holds the quantizers' amax on the GPU, so kReciprocalMultiply reproduces its files.
enum class ScalarDivision : uint8_t {
  kTrueDivide,          // round(amax / d): PyTorch on the CPU. The default.
  kReciprocalMultiply,  // round(amax * round(1 / d)): PyTorch on CUDA.
};

// NVFP4 weight_scale_2 = amax / (6 * 448), with amax the tensor's global amax already maxed over
// fused siblings. amax 0 (an all-zero tensor) maps to maxbound 6, giving 1/448: ModelOpt would
// divide 0 by 0 in the block scales.
absl::StatusOr<float> Nvfp4WeightScale2(float global_amax,
                                        ScalarDivision division = ScalarDivision::kTrueDivide);
// NVFP4 input_scale = act_amax / (6 * 448) (NVFP4QTensor.get_activation_scaling_factor).
absl::StatusOr<float> Nvfp4InputScale(float act_amax,
                                      ScalarDivision division = ScalarDivision::kTrueDivide);
// FP8 per-tensor weight_scale = amax / 448 (quant_utils.get_scaling_factor); amax 0 -> 1.0.
absl::StatusOr<float> Fp8WeightScale(float amax,
                                     ScalarDivision division = ScalarDivision::kTrueDivide);
// FP8 input_scale = act_amax / 448; act_amax 0 -> 1.0.
absl::StatusOr<float> Fp8InputScale(float act_amax,
                                    ScalarDivision division = ScalarDivision::kTrueDivide);

// Block FP8 weight_scale_inv per tile: tile_amax / 448, and 1.0 for a tile whose amax is 0 (or
// so small that the quotient underflows). `tile_amax` and `scale_inv` are whole grids of one
// size. A negative, NaN or infinite tile amax is InvalidArgument naming the tile.
absl::Status Fp8BlockScaleInv(absl::Span<const float> tile_amax, absl::Span<float> scale_inv);

// ---- NVFP4.

// Quantizes whole rows of `cols` elements (cols % 16 == 0) in 16-element blocks along cols:
// block_scales[b] = e4m3 of the block scale (Nvfp4BlockScaleCode), and the E2M1 codes of
// w / (float(block_scale) * weight_scale_2), packed two per byte with the even element in the
// low nibble. `packed` holds rows * cols / 2 bytes (U8 [rows, cols/2]), `block_scales`
// rows * cols / 16 (F8_E4M3 [rows, cols/16]).
absl::Status QuantizeNvfp4(DType dtype, absl::string_view bytes, int64_t cols,
                           float weight_scale_2, absl::Span<uint8_t> packed,
                           absl::Span<uint8_t> block_scales);

// out = e2m1 * (float(block_scale) * weight_scale_2), ModelOpt's dequantize order.
absl::Status DequantizeNvfp4(absl::Span<const uint8_t> packed,
                             absl::Span<const uint8_t> block_scales, int64_t cols,
                             float weight_scale_2, absl::Span<float> out);

// ---- FP8 per tensor.

// How w / weight_scale reaches E4M3.
enum class Fp8Rounding : uint8_t {
  // e4m3(clamp(f32(w) / scale)): one rounding. The default.
  kOnce,
  // ModelOpt's export expression `(weight / weight_scale).to(torch.float8_e4m3fn)` run on the CPU
  // with a BF16/F16 weight: PyTorch rounds the f32 quotient to the weight's dtype first, then
  // casts. Differs from kOnce on about one value in a few hundred; same as kOnce for F32 input.
  kViaSourceDType,
};

// out[i] = e4m3(clamp(w[i] / weight_scale, +-448)); `out` holds one byte per element.
absl::Status QuantizeFp8(DType dtype, absl::string_view bytes, float weight_scale,
                         absl::Span<uint8_t> out, Fp8Rounding rounding = Fp8Rounding::kOnce);

// out[i] = float(q[i]) * weight_scale.
absl::Status DequantizeFp8(absl::Span<const uint8_t> q, float weight_scale,
                           absl::Span<float> out);

// ---- Block FP8.

// Quantizes the whole rows [row_begin, row_begin + n) of `shape` held in `bytes`:
// out = e4m3(clamp(w / scale_inv[tile])), with `scale_inv` the whole grid from
// Fp8BlockScaleInv. `out` holds n * cols bytes.
absl::Status QuantizeFp8Block(DType dtype, absl::string_view bytes, const Fp8BlockShape& shape,
                              int64_t row_begin, absl::Span<const float> scale_inv,
                              absl::Span<uint8_t> out);

// out = float(q) * scale_inv[tile] for the rows [row_begin, row_begin + q.size() / cols).
absl::Status DequantizeFp8Block(absl::Span<const uint8_t> q, const Fp8BlockShape& shape,
                                int64_t row_begin, absl::Span<const float> scale_inv,
                                absl::Span<float> out);

}  // namespace mxport::quant

#endif  // MXPORT_COMMON_QUANT_QUANT_H_
