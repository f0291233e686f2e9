// GPUs visible to this process. ListDevices never fails for "no GPU": on a machine without a
// driver or device it returns an empty list, so callers (and GPU-labelled tests) can decide to
// fall back to CPU paths. Other CUDA failures are Internal. Thread-safe.
#ifndef MXPORT_WORKER_CUDA_DEVICE_H_
#define MXPORT_WORKER_CUDA_DEVICE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace mxport::cuda {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int compute_major = 0;
  int compute_minor = 0;
  uint64_t total_memory = 0;
  int multiprocessors = 0;
};

absl::StatusOr<std::vector<DeviceInfo>> ListDevices();

}  // namespace mxport::cuda

#endif  // MXPORT_WORKER_CUDA_DEVICE_H_
