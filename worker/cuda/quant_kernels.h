// Quantization on device buffers: the CUDA twins of common/quant/quant.h, for workers that hold
// tensor rows in GPU memory. Each function writes exactly the bytes its CPU namesake writes for
// the same input and scales (NVFP4 packed codes and E4M3 block scales, FP8 per tensor and per
// 128x128 tile, amax values): the per-element arithmetic is common/quant/codec.h compiled for
// the device with correctly rounded intrinsics and no FMA contraction or flush-to-zero (see
// that header and worker/cuda/CMakeLists.txt).
//
// Scalars (weight_scale_2, weight_scale) come from the CPU functions in quant.h; grids of tile
// amax go back to the host to be max-reduced across workers and turned into scale_inv by
// quant::Fp8BlockScaleInv, then come back to the device.
//
// Conventions. Pointers are device pointers; source pointers must be aligned to their element
// size (16-byte alignment of sources and 8-byte alignment of outputs take the vectorised path).
// Launches are asynchronous on `stream`; a returned OK means the launch was accepted, and
// kernel faults surface at the next synchronising CUDA call. InvalidArgument for an unsupported
// dtype, a misaligned pointer, cols not a multiple of 16 (NVFP4) or rows outside the tensor;
// FailedPrecondition when no GPU is usable; Internal for other CUDA errors. Stateless and
// thread-safe (per CUDA's rules for streams).
#ifndef MXPORT_WORKER_CUDA_QUANT_KERNELS_H_
#define MXPORT_WORKER_CUDA_QUANT_KERNELS_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "common/base/dtype.h"
#include "common/quant/quant.h"

namespace mxport::cuda {

// Proves on this device that the hardware conversions the kernels use (E4M3 with saturation,
// and the BF16/F16 roundings before it; codec.h) give the bytes of their portable definitions,
// the ones the CPU runs, for every one of the 2^32 f32 inputs. Synchronous; about 10 ms on an
// H100. Internal naming the count and the first differing input when they do not.
absl::Status VerifyDeviceCodecs(cudaStream_t stream);

// Max-combines max |x| of `count` elements at `src` into *amax (one float in device memory; set
// it to 0 first, or leave a previous result there to accumulate). NaN gives the canonical NaN,
// as quant::AbsMax does.
absl::Status AbsMax(DType dtype, const void* src, size_t count, float* amax,
                    cudaStream_t stream);

// quant::TileAbsMax for the whole rows [row_begin, row_begin + num_rows) of `shape`, held at
// `src`; `grid` is the tensor's whole tile grid (shape.GridSize() floats) on the device.
absl::Status TileAbsMax(DType dtype, const void* src, const quant::Fp8BlockShape& shape,
                        int64_t row_begin, int64_t num_rows, float* grid, cudaStream_t stream);

// quant::QuantizeNvfp4 of `rows` whole rows of `cols` elements: `packed` gets rows * cols / 2
// bytes, `block_scales` rows * cols / 16.
absl::Status QuantizeNvfp4(DType dtype, const void* src, int64_t rows, int64_t cols,
                           float weight_scale_2, uint8_t* packed, uint8_t* block_scales,
                           cudaStream_t stream);

// quant::QuantizeFp8 of `count` elements into `out` (one byte each).
absl::Status QuantizeFp8(DType dtype, const void* src, size_t count, float weight_scale,
                         quant::Fp8Rounding rounding, uint8_t* out, cudaStream_t stream);

// quant::QuantizeFp8Block of the rows [row_begin, row_begin + num_rows) held at `src`, with
// `scale_inv` the whole grid on the device; `out` gets num_rows * cols bytes.
absl::Status QuantizeFp8Block(DType dtype, const void* src, const quant::Fp8BlockShape& shape,
                              int64_t row_begin, int64_t num_rows, const float* scale_inv,
                              uint8_t* out, cudaStream_t stream);

}  // namespace mxport::cuda

#endif  // MXPORT_WORKER_CUDA_QUANT_KERNELS_H_
