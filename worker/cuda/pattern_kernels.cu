#include "worker/cuda/cuda_status.h"
#include "worker/cuda/pattern_kernels.h"

namespace mxport::cuda {
namespace {

__device__ inline uint8_t DevicePatternByte(uint64_t seed, uint64_t index) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (index / 8 + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<uint8_t>(z >> (8 * (index % 8)));
}

__global__ void FillKernel(uint8_t* data, size_t bytes, uint64_t seed) {
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < bytes;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    data[i] = DevicePatternByte(seed, i);
  }
}

__global__ void CheckKernel(const uint8_t* data, size_t bytes, uint64_t seed,
                            unsigned long long* mismatches) {
  unsigned long long local = 0;
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < bytes;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    local += data[i] != DevicePatternByte(seed, i);
  }
  if (local != 0) atomicAdd(mismatches, local);
}

constexpr int kThreads = 256;
int Blocks(size_t bytes) {
  const size_t blocks = (bytes + kThreads - 1) / kThreads;
  return static_cast<int>(blocks < 4096 ? (blocks == 0 ? 1 : blocks) : 4096);
}

}  // namespace

absl::Status FillPattern(void* device_ptr, size_t bytes, uint64_t seed, cudaStream_t stream) {
  FillKernel<<<Blocks(bytes), kThreads, 0, stream>>>(static_cast<uint8_t*>(device_ptr), bytes,
                                                      seed);
  CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return absl::OkStatus();
}

absl::Status CountPatternMismatches(const void* device_ptr, size_t bytes, uint64_t seed,
                                    unsigned long long* device_mismatches, cudaStream_t stream) {
  CheckKernel<<<Blocks(bytes), kThreads, 0, stream>>>(static_cast<const uint8_t*>(device_ptr),
                                                       bytes, seed, device_mismatches);
  CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return absl::OkStatus();
}

}  // namespace mxport::cuda
