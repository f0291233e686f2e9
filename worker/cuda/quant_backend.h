// CudaQuantBackend: the quant::Backend of GPU workers. Each call copies the region's rows to a
// device buffer (one 2-D copy, so a column range of wider source rows arrives dense), runs the
// kernels of quant_kernels.h on one stream, copies the codes back into the strided output
// rows and waits for the stream; the bytes are those of quant::CpuBackend() (the kernels are
// its bit-identical twins, and Create proves this device's conversions first). Device buffers
// grow to the largest region seen and are reused; host memory is the caller's (pageable).
//
// Block FP8 regions that start inside a 128-column tile run as two launches: the cut tile's
// columns, then the tile-aligned rest, each with the columns of the scale grid it needs.
//
// Errors: FailedPrecondition from Create when the GPU is absent or unusable (callers fall back
// to the CPU), InvalidArgument as quant::Backend says, Internal for other CUDA failures
// (naming the call). Thread-safe: calls are serialised on the one stream.
#ifndef MXPORT_WORKER_CUDA_QUANT_BACKEND_H_
#define MXPORT_WORKER_CUDA_QUANT_BACKEND_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/quant/backend.h"

namespace mxport::cuda {

class CudaQuantBackend final : public quant::Backend {
 public:
  struct Options {
    int device = 0;
    // Run VerifyDeviceCodecs once (about 10 ms on an H100) before the first call.
    bool verify_codecs = true;
  };
  static absl::StatusOr<std::unique_ptr<CudaQuantBackend>> Create(const Options& options);
  ~CudaQuantBackend() override;
  CudaQuantBackend(const CudaQuantBackend&) = delete;
  CudaQuantBackend& operator=(const CudaQuantBackend&) = delete;

  absl::string_view name() const override { return name_; }
  absl::Status QuantizeNvfp4(const quant::SourceRows& src, float weight_scale_2,
                             quant::OutputRows packed, quant::OutputRows block_scales) override;
  absl::Status QuantizeFp8(const quant::SourceRows& src, float weight_scale,
                           quant::OutputRows out) override;
  absl::Status QuantizeFp8Block(const quant::SourceRows& src, const quant::Fp8BlockShape& shape,
                                int64_t row_begin, int64_t col_begin,
                                absl::Span<const float> scale_inv,
                                quant::OutputRows out) override;

 private:
  struct Buffer {
    void* ptr = nullptr;
    size_t capacity = 0;
  };
  explicit CudaQuantBackend(int device);
  absl::Status Reserve(Buffer& buffer, size_t bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Columns [c0, c0 + cols) of every row of `src`, dense, into src_.
  absl::Status Upload(const quant::SourceRows& src, int64_t c0, int64_t cols)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `rows` dense rows of `width` bytes at `device` into columns [c0, c0 + width) of `out`.
  absl::Status Download(const void* device, int64_t rows, int64_t width, quant::OutputRows out,
                        int64_t c0) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Makes this thread use the device, runs `body`, then waits for the stream.
  template <typename Body>
  absl::Status OnDevice(Body body) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int device_;
  const std::string name_;
  absl::Mutex mu_;
  cudaStream_t stream_ ABSL_GUARDED_BY(mu_) = nullptr;
  Buffer src_ ABSL_GUARDED_BY(mu_);    // source elements
  Buffer out_ ABSL_GUARDED_BY(mu_);    // codes (NVFP4: packed, then block scales)
  Buffer grid_ ABSL_GUARDED_BY(mu_);   // block FP8 scale_inv columns
};

}  // namespace mxport::cuda

#endif  // MXPORT_WORKER_CUDA_QUANT_BACKEND_H_
