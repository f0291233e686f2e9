#include "worker/cuda/device.h"

#include <cuda_runtime_api.h>

#include "worker/cuda/cuda_status.h"

namespace mxport::cuda {

absl::StatusOr<std::vector<DeviceInfo>> ListDevices() {
  int count = 0;
  const cudaError_t error = cudaGetDeviceCount(&count);
  if (error == cudaErrorNoDevice || error == cudaErrorInsufficientDriver) {
    cudaGetLastError();  // clear the sticky error
    return std::vector<DeviceInfo>{};
  }
  CUDA_RETURN_IF_ERROR(error);
  std::vector<DeviceInfo> devices;
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, i));
    devices.push_back({i, prop.name, prop.major, prop.minor,
                       static_cast<uint64_t>(prop.totalGlobalMem), prop.multiProcessorCount});
  }
  return devices;
}

}  // namespace mxport::cuda
