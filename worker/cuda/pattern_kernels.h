// Verifiable device data (as nccl-tests does): FillPattern writes bytes that are a pure
// function of (seed, byte index), so a receiver can check exactly what arrived without a
// second copy. PatternByte is the same function on the host. Launchers are asynchronous on
// `stream`; errors come back as Status.
#ifndef MXPORT_WORKER_CUDA_PATTERN_KERNELS_H_
#define MXPORT_WORKER_CUDA_PATTERN_KERNELS_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"

namespace mxport::cuda {

// splitmix64 of (seed, index / 8), byte index % 8.
inline uint8_t PatternByte(uint64_t seed, uint64_t index) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (index / 8 + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<uint8_t>(z >> (8 * (index % 8)));
}

absl::Status FillPattern(void* device_ptr, size_t bytes, uint64_t seed, cudaStream_t stream);

// Counts bytes that differ from the pattern into *device_mismatches (an unsigned long long on
// the device, which the caller zeroes first).
absl::Status CountPatternMismatches(const void* device_ptr, size_t bytes, uint64_t seed,
                                    unsigned long long* device_mismatches, cudaStream_t stream);

}  // namespace mxport::cuda

#endif  // MXPORT_WORKER_CUDA_PATTERN_KERNELS_H_
