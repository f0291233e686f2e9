// Launchers behind worker/cuda/quant_kernels.h, between its host-side validation
// (quant_kernels.cc, C++20) and the kernels (quant_kernels.cu, compiled by nvcc as C++17, which
// is why this header names no DType and no absl type). Callers have already checked sizes,
// alignment and shapes; `vec` selects the 16-byte-load kernels, legal only when the sources are
// 16-byte aligned, the outputs 8-byte aligned and (for the row kernels) cols % 8 == 0. Each
// returns cudaGetLastError() after its launch.
#ifndef MXPORT_WORKER_CUDA_QUANT_KERNELS_INTERNAL_H_
#define MXPORT_WORKER_CUDA_QUANT_KERNELS_INTERNAL_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace mxport::cuda::internal_quant {

// The element types the kernels read, in the order of the kernel table in quant_kernels.cu.
enum class Source : int { kBFloat16 = 0, kFloat16 = 1, kFloat32 = 2 };

// Counts into *mismatches the f32 inputs where a device conversion differs from its portable
// definition (codec.h), and lowers *first_bad to the smallest such bit pattern.
cudaError_t LaunchCodecSelfCheck(unsigned long long* mismatches, unsigned int* first_bad,
                                 cudaStream_t stream);

cudaError_t LaunchAbsMax(Source source, bool vec, const void* src, size_t count,
                         unsigned int* amax_bits, cudaStream_t stream);

cudaError_t LaunchTileAbsMax(Source source, bool vec, const void* src, int64_t num_rows,
                             int64_t cols, int64_t row_begin, int64_t tile_cols,
                             unsigned int* grid_bits, cudaStream_t stream);

cudaError_t LaunchNvfp4(Source source, bool vec, const void* src, size_t blocks,
                        float weight_scale_2, uint8_t* packed, uint8_t* scales,
                        cudaStream_t stream);

cudaError_t LaunchFp8(Source source, bool vec, bool via_source, const void* src, size_t count,
                      float scale, uint8_t* out, cudaStream_t stream);

cudaError_t LaunchFp8Block(Source source, bool vec, const void* src, int64_t num_rows,
                           int64_t cols, int64_t row_begin, int64_t tile_cols,
                           const float* scale_inv, uint8_t* out, cudaStream_t stream);

}  // namespace mxport::cuda::internal_quant

#endif  // MXPORT_WORKER_CUDA_QUANT_KERNELS_INTERNAL_H_
