#include "worker/cuda/quant_backend.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "worker/cuda/cuda_status.h"
#include "worker/cuda/device.h"
#include "worker/cuda/quant_kernels.h"

namespace mxport::cuda {
namespace {

constexpr size_t kAlign = 256;
constexpr int64_t kTile = quant::kFp8BlockTile;

size_t AlignUp(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

uint8_t* Bytes(void* p, size_t offset = 0) { return static_cast<uint8_t*>(p) + offset; }

}  // namespace

CudaQuantBackend::CudaQuantBackend(int device)
    : device_(device), name_(absl::StrCat("cuda:", device)) {}

absl::StatusOr<std::unique_ptr<CudaQuantBackend>> CudaQuantBackend::Create(
    const Options& options) {
  ASSIGN_OR_RETURN(const std::vector<DeviceInfo> devices, ListDevices());
  if (options.device < 0 || options.device >= static_cast<int>(devices.size())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "GPU ", options.device, " not found: ", devices.size(), " visible"));
  }
  std::unique_ptr<CudaQuantBackend> backend(new CudaQuantBackend(options.device));
  {
    absl::MutexLock lock(&backend->mu_);
    CUDA_RETURN_IF_ERROR(cudaSetDevice(options.device));
    CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&backend->stream_, cudaStreamNonBlocking));
    if (options.verify_codecs) RETURN_IF_ERROR(VerifyDeviceCodecs(backend->stream_));
  }
  return backend;
}

CudaQuantBackend::~CudaQuantBackend() {
  absl::MutexLock lock(&mu_);
  if (cudaSetDevice(device_) != cudaSuccess) return;  // the context is gone with the process
  for (Buffer* b : {&src_, &out_, &grid_}) cudaFree(b->ptr);
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

absl::Status CudaQuantBackend::Reserve(Buffer& buffer, size_t bytes) {
  if (bytes <= buffer.capacity) return absl::OkStatus();
  // Work queued earlier in this call may still use the old buffer.
  CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
  CUDA_RETURN_IF_ERROR(cudaFree(buffer.ptr));
  buffer = Buffer{};
  const size_t want = std::max(AlignUp(bytes), size_t{1} << 20);
  CUDA_RETURN_IF_ERROR(cudaMalloc(&buffer.ptr, want));
  buffer.capacity = want;
  return absl::OkStatus();
}

template <typename Body>
absl::Status CudaQuantBackend::OnDevice(Body body) {
  CUDA_RETURN_IF_ERROR(cudaSetDevice(device_));
  const absl::Status status = body();
  // Always drain the stream: the host rows must outlive every copy queued from or into them.
  const cudaError_t synced = cudaStreamSynchronize(stream_);
  RETURN_IF_ERROR(status);
  CUDA_RETURN_IF_ERROR(synced);
  return absl::OkStatus();
}

absl::Status CudaQuantBackend::Upload(const quant::SourceRows& src, int64_t c0, int64_t cols) {
  const size_t elem = ElementBytes(src.dtype);
  const size_t width = static_cast<size_t>(cols) * elem;
  RETURN_IF_ERROR(Reserve(src_, width * static_cast<size_t>(src.rows)));
  CUDA_RETURN_IF_ERROR(cudaMemcpy2DAsync(src_.ptr, width, src.bytes.data() + c0 * elem,
                                         std::max(width, src.stride * elem), width, src.rows,
                                         cudaMemcpyHostToDevice, stream_));
  return absl::OkStatus();
}

absl::Status CudaQuantBackend::Download(const void* device, int64_t rows, int64_t width,
                                        quant::OutputRows out, int64_t c0) {
  const size_t w = static_cast<size_t>(width);
  CUDA_RETURN_IF_ERROR(cudaMemcpy2DAsync(out.bytes.data() + c0,
                                         std::max(w, static_cast<size_t>(out.stride)), device, w,
                                         w, rows, cudaMemcpyDeviceToHost, stream_));
  return absl::OkStatus();
}

absl::Status CudaQuantBackend::QuantizeNvfp4(const quant::SourceRows& src, float weight_scale_2,
                                             quant::OutputRows packed,
                                             quant::OutputRows block_scales) {
  RETURN_IF_ERROR(quant::CheckSourceRows(src));
  RETURN_IF_ERROR(quant::CheckScale(weight_scale_2, "NVFP4 weight_scale_2"));
  if (src.cols % quant::kNvfp4BlockSize != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("NVFP4 rows of ", src.cols, " elements: not a multiple of 16"));
  }
  const int64_t pw = src.cols / 2, sw = src.cols / quant::kNvfp4BlockSize;
  RETURN_IF_ERROR(quant::CheckOutputRows(packed, src.rows, pw, "NVFP4 packed output"));
  RETURN_IF_ERROR(
      quant::CheckOutputRows(block_scales, src.rows, sw, "NVFP4 block-scale output"));
  if (src.rows == 0 || src.cols == 0) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  return OnDevice([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    RETURN_IF_ERROR(Upload(src, 0, src.cols));
    const size_t scales_at = AlignUp(static_cast<size_t>(src.rows * pw));
    RETURN_IF_ERROR(Reserve(out_, scales_at + static_cast<size_t>(src.rows * sw)));
    RETURN_IF_ERROR(cuda::QuantizeNvfp4(src.dtype, src_.ptr, src.rows, src.cols, weight_scale_2,
                                        Bytes(out_.ptr), Bytes(out_.ptr, scales_at), stream_));
    RETURN_IF_ERROR(Download(out_.ptr, src.rows, pw, packed, 0));
    return Download(Bytes(out_.ptr, scales_at), src.rows, sw, block_scales, 0);
  });
}

absl::Status CudaQuantBackend::QuantizeFp8(const quant::SourceRows& src, float weight_scale,
                                           quant::OutputRows out) {
  RETURN_IF_ERROR(quant::CheckSourceRows(src));
  RETURN_IF_ERROR(quant::CheckScale(weight_scale, "FP8 weight_scale"));
  RETURN_IF_ERROR(quant::CheckOutputRows(out, src.rows, src.cols, "FP8 output"));
  if (src.rows == 0 || src.cols == 0) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  return OnDevice([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    RETURN_IF_ERROR(Upload(src, 0, src.cols));
    const size_t count = static_cast<size_t>(src.rows * src.cols);
    RETURN_IF_ERROR(Reserve(out_, count));
    RETURN_IF_ERROR(cuda::QuantizeFp8(src.dtype, src_.ptr, count, weight_scale,
                                      quant::Fp8Rounding::kOnce, Bytes(out_.ptr), stream_));
    return Download(out_.ptr, src.rows, src.cols, out, 0);
  });
}

absl::Status CudaQuantBackend::QuantizeFp8Block(const quant::SourceRows& src,
                                                const quant::Fp8BlockShape& shape,
                                                int64_t row_begin, int64_t col_begin,
                                                absl::Span<const float> scale_inv,
                                                quant::OutputRows out) {
  RETURN_IF_ERROR(quant::CheckSourceRows(src));
  RETURN_IF_ERROR(quant::CheckFp8BlockRegion(src, shape, row_begin, col_begin, scale_inv));
  RETURN_IF_ERROR(quant::CheckOutputRows(out, src.rows, src.cols, "block FP8 output"));
  if (src.rows == 0 || src.cols == 0) return absl::OkStatus();
  // The kernel maps column c of its rows to tile c / 128: a region that starts inside a tile
  // runs as that tile's columns, then the tile-aligned rest.
  const int64_t end = col_begin + src.cols;
  const int64_t split = col_begin % kTile == 0
                            ? col_begin
                            : std::min(end, (col_begin / kTile + 1) * kTile);
  std::vector<float> grids[2];  // host copies stay alive until the stream is drained
  absl::MutexLock lock(&mu_);
  return OnDevice([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    int k = 0;
    for (const auto& [c0, c1] : {std::pair{col_begin, split}, std::pair{split, end}}) {
      if (c0 == c1) continue;
      // The sub-tensor of columns [c0, c1): its grid is the tile columns from c0 / 128 on.
      const quant::Fp8BlockShape sub{shape.rows, c1 - c0};
      std::vector<float>& grid = grids[k++];
      grid.resize(static_cast<size_t>(sub.GridSize()));
      for (int64_t tr = 0; tr < sub.TileRows(); ++tr) {
        for (int64_t j = 0; j < sub.TileCols(); ++j) {
          grid[tr * sub.TileCols() + j] = scale_inv[tr * shape.TileCols() + c0 / kTile + j];
        }
      }
      RETURN_IF_ERROR(Upload(src, c0 - col_begin, c1 - c0));
      RETURN_IF_ERROR(Reserve(grid_, grid.size() * sizeof(float)));
      CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(grid_.ptr, grid.data(), grid.size() * sizeof(float),
                                           cudaMemcpyHostToDevice, stream_));
      RETURN_IF_ERROR(Reserve(out_, static_cast<size_t>(src.rows * (c1 - c0))));
      RETURN_IF_ERROR(cuda::QuantizeFp8Block(src.dtype, src_.ptr, sub, row_begin, src.rows,
                                             static_cast<const float*>(grid_.ptr),
                                             Bytes(out_.ptr), stream_));
      RETURN_IF_ERROR(Download(out_.ptr, src.rows, c1 - c0, out, c0 - col_begin));
    }
    return absl::OkStatus();
  });
}

}  // namespace mxport::cuda
