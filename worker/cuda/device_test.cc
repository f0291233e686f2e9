// GPU-labelled: skips, saying so, where no GPU is visible.
#include <nccl.h>

#include <vector>

#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"
#include "worker/cuda/cuda_status.h"
#include "worker/cuda/device.h"
#include "worker/cuda/pattern_kernels.h"

namespace mxport::cuda {
namespace {

bool HaveGpu() {
  auto devices = ListDevices();
  return devices.ok() && !devices->empty();
}

TEST(CudaDeviceTest, ListDevicesNeverFailsForNoGpu) {
  auto devices = ListDevices();
  ASSERT_OK(devices);
  for (const DeviceInfo& d : *devices) {
    EXPECT_FALSE(d.name.empty());
    EXPECT_GT(d.total_memory, 0u);
  }
}

TEST(CudaDeviceTest, PatternRoundTripsThroughTheDevice) {
  if (!HaveGpu()) GTEST_SKIP() << "no GPU visible: device kernels not exercised";
  constexpr size_t kBytes = (size_t{1} << 20) + 13;
  void* buf = nullptr;
  unsigned long long* mismatches = nullptr;
  ASSERT_EQ(cudaMalloc(&buf, kBytes), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&mismatches, sizeof(*mismatches)), cudaSuccess);
  ASSERT_EQ(cudaMemset(mismatches, 0, sizeof(*mismatches)), cudaSuccess);
  ASSERT_OK(FillPattern(buf, kBytes, 42, nullptr));
  std::vector<uint8_t> host(kBytes);
  ASSERT_EQ(cudaMemcpy(host.data(), buf, kBytes, cudaMemcpyDeviceToHost), cudaSuccess);
  size_t host_mismatches = 0;
  for (size_t i = 0; i < kBytes; ++i) host_mismatches += host[i] != PatternByte(42, i);
  EXPECT_EQ(host_mismatches, 0u);
  // Flip three bytes; the device check must count exactly three.
  for (size_t i : {size_t{0}, size_t{4097}, kBytes - 1}) host[i] ^= 0xFF;
  ASSERT_EQ(cudaMemcpy(buf, host.data(), kBytes, cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_OK(CountPatternMismatches(buf, kBytes, 42, mismatches, nullptr));
  unsigned long long count = 0;
  ASSERT_EQ(cudaMemcpy(&count, mismatches, sizeof(count), cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(count, 3u);
  cudaFree(buf);
  cudaFree(mismatches);
}

TEST(CudaDeviceTest, NcclLibraryLoads) {
  if (!HaveGpu()) GTEST_SKIP() << "no GPU visible: NCCL not exercised";
  int version = 0;
  ASSERT_EQ(ncclGetVersion(&version), ncclSuccess);
  EXPECT_GE(version, 22800);
}

}  // namespace
}  // namespace mxport::cuda
