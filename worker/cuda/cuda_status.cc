#include "worker/cuda/cuda_status.h"

#include "absl/strings/str_cat.h"

namespace mxport::cuda {

absl::Status CudaStatus(cudaError_t error, const char* expr, const char* file, int line) {
  const std::string message = absl::StrCat(expr, " failed at ", file, ":", line, ": ",
                                           cudaGetErrorName(error), " (",
                                           cudaGetErrorString(error), ")");
  if (error == cudaErrorNoDevice || error == cudaErrorInsufficientDriver) {
    return absl::FailedPreconditionError(message);
  }
  return absl::InternalError(message);
}

}  // namespace mxport::cuda
