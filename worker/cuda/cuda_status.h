// CUDA and NCCL error codes as absl::Status. CUDA_RETURN_IF_ERROR(expr) returns from the
// enclosing function when a CUDA runtime call fails, with the call's text, file and line and
// CUDA's own error string. cudaErrorNoDevice / cudaErrorInsufficientDriver map to
// FailedPrecondition (no usable GPU here); everything else to Internal.
#ifndef MXPORT_WORKER_CUDA_CUDA_STATUS_H_
#define MXPORT_WORKER_CUDA_CUDA_STATUS_H_

#include <cuda_runtime_api.h>

#include "absl/status/status.h"

namespace mxport::cuda {

absl::Status CudaStatus(cudaError_t error, const char* expr, const char* file, int line);

}  // namespace mxport::cuda

#define CUDA_RETURN_IF_ERROR(expr)                                                    \
  do {                                                                                \
    const cudaError_t mxport_cuda_error_ = (expr);                                    \
    if (mxport_cuda_error_ != cudaSuccess) {                                          \
      return ::mxport::cuda::CudaStatus(mxport_cuda_error_, #expr, __FILE__, __LINE__); \
    }                                                                                 \
  } while (false)

#endif  // MXPORT_WORKER_CUDA_CUDA_STATUS_H_
