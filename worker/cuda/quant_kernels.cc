#include "worker/cuda/quant_kernels.h"

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "worker/cuda/cuda_status.h"
#include "worker/cuda/quant_kernels_internal.h"

namespace mxport::cuda {
namespace {

using internal_quant::Source;

struct SourceRow {
  DType dtype;
  Source source;
  int element_bytes;
};

constexpr SourceRow kSources[] = {
    {DType::kBFloat16, Source::kBFloat16, 2},
    {DType::kFloat16, Source::kFloat16, 2},
    {DType::kFloat32, Source::kFloat32, 4},
};

bool Aligned(const void* p, size_t alignment) {
  return reinterpret_cast<uintptr_t>(p) % alignment == 0;
}

// The kernel source type of `dtype`, checking that `src` is aligned to its elements.
absl::StatusOr<Source> SourceOf(DType dtype, const void* src) {
  for (const SourceRow& row : kSources) {
    if (row.dtype != dtype) continue;
    if (!Aligned(src, row.element_bytes)) {
      return absl::InvalidArgumentError(
          absl::StrCat("source pointer is not aligned to its ", DTypeName(dtype), " elements"));
    }
    return row.source;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "quantization reads bfloat16, float16 or float32 elements, not ", DTypeName(dtype)));
}

absl::Status CheckRows(const quant::Fp8BlockShape& shape, int64_t row_begin, int64_t num_rows) {
  if (shape.rows < 0 || shape.cols <= 0 || row_begin < 0 || num_rows < 0 ||
      row_begin > shape.rows || num_rows > shape.rows - row_begin) {
    return absl::InvalidArgumentError(absl::StrCat("rows [", row_begin, ", ", row_begin + num_rows,
                                                   ") are outside a [", shape.rows, ", ",
                                                   shape.cols, "] tensor"));
  }
  return absl::OkStatus();
}

// The row kernels give each thread 8 consecutive columns.
bool RowsVectorisable(int64_t cols, const void* src, const void* out) {
  return cols % 8 == 0 && Aligned(src, 16) && (out == nullptr || Aligned(out, 8));
}

}  // namespace

absl::Status VerifyDeviceCodecs(cudaStream_t stream) {
  struct Counters {
    unsigned long long mismatches;
    unsigned int first_bad;
  };
  Counters host{0, 0xFFFFFFFFu};
  Counters* device = nullptr;
  CUDA_RETURN_IF_ERROR(cudaMalloc(reinterpret_cast<void**>(&device), sizeof(Counters)));
  absl::Status status = [&]() -> absl::Status {
    CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(device, &host, sizeof(host), cudaMemcpyHostToDevice, stream));
    CUDA_RETURN_IF_ERROR(
        internal_quant::LaunchCodecSelfCheck(&device->mismatches, &device->first_bad, stream));
    CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(&host, device, sizeof(host), cudaMemcpyDeviceToHost, stream));
    CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
    return absl::OkStatus();
  }();
  cudaFree(device);
  RETURN_IF_ERROR(status);
  if (host.mismatches != 0) {
    return absl::InternalError(absl::StrCat(
        "device E4M3/BF16/F16 conversions differ from the portable code on ", host.mismatches,
        " f32 inputs; the first is bits 0x", absl::Hex(host.first_bad)));
  }
  return absl::OkStatus();
}

absl::Status AbsMax(DType dtype, const void* src, size_t count, float* amax,
                    cudaStream_t stream) {
  ASSIGN_OR_RETURN(const Source source, SourceOf(dtype, src));
  if (count == 0) return absl::OkStatus();
  CUDA_RETURN_IF_ERROR(internal_quant::LaunchAbsMax(source, Aligned(src, 16), src, count,
                                                    reinterpret_cast<unsigned int*>(amax),
                                                    stream));
  return absl::OkStatus();
}

absl::Status TileAbsMax(DType dtype, const void* src, const quant::Fp8BlockShape& shape,
                        int64_t row_begin, int64_t num_rows, float* grid, cudaStream_t stream) {
  ASSIGN_OR_RETURN(const Source source, SourceOf(dtype, src));
  RETURN_IF_ERROR(CheckRows(shape, row_begin, num_rows));
  if (num_rows == 0) return absl::OkStatus();
  CUDA_RETURN_IF_ERROR(internal_quant::LaunchTileAbsMax(
      source, RowsVectorisable(shape.cols, src, nullptr), src, num_rows, shape.cols, row_begin,
      shape.TileCols(), reinterpret_cast<unsigned int*>(grid), stream));
  return absl::OkStatus();
}

absl::Status QuantizeNvfp4(DType dtype, const void* src, int64_t rows, int64_t cols,
                           float weight_scale_2, uint8_t* packed, uint8_t* block_scales,
                           cudaStream_t stream) {
  ASSIGN_OR_RETURN(const Source source, SourceOf(dtype, src));
  if (cols <= 0 || cols % quant::kNvfp4BlockSize != 0) {
    return absl::InvalidArgumentError(absl::StrCat("NVFP4 needs the input dimension to be a ",
                                                   "multiple of ", quant::kNvfp4BlockSize,
                                                   ", not ", cols));
  }
  if (rows < 0) return absl::InvalidArgumentError(absl::StrCat("negative row count ", rows));
  const size_t blocks =
      static_cast<size_t>(rows) * static_cast<size_t>(cols) / quant::kNvfp4BlockSize;
  if (blocks == 0) return absl::OkStatus();
  CUDA_RETURN_IF_ERROR(internal_quant::LaunchNvfp4(source, Aligned(src, 16) && Aligned(packed, 8),
                                                   src, blocks, weight_scale_2, packed,
                                                   block_scales, stream));
  return absl::OkStatus();
}

absl::Status QuantizeFp8(DType dtype, const void* src, size_t count, float weight_scale,
                         quant::Fp8Rounding rounding, uint8_t* out, cudaStream_t stream) {
  ASSIGN_OR_RETURN(const Source source, SourceOf(dtype, src));
  if (count == 0) return absl::OkStatus();
  CUDA_RETURN_IF_ERROR(internal_quant::LaunchFp8(
      source, Aligned(src, 16) && Aligned(out, 8),
      rounding == quant::Fp8Rounding::kViaSourceDType, src, count, weight_scale, out, stream));
  return absl::OkStatus();
}

absl::Status QuantizeFp8Block(DType dtype, const void* src, const quant::Fp8BlockShape& shape,
                              int64_t row_begin, int64_t num_rows, const float* scale_inv,
                              uint8_t* out, cudaStream_t stream) {
  ASSIGN_OR_RETURN(const Source source, SourceOf(dtype, src));
  RETURN_IF_ERROR(CheckRows(shape, row_begin, num_rows));
  if (num_rows == 0) return absl::OkStatus();
  CUDA_RETURN_IF_ERROR(internal_quant::LaunchFp8Block(
      source, RowsVectorisable(shape.cols, src, out), src, num_rows, shape.cols, row_begin,
      shape.TileCols(), scale_inv, out, stream));
  return absl::OkStatus();
}

}  // namespace mxport::cuda
