// Quantization kernel throughput next to the device's own copy bandwidth, measured in the same
// run: GB/s of BF16 (and F32) input for abs-max, NVFP4, FP8 per tensor and block FP8, and each
// as a fraction of cudaMemcpy device-to-device GB/s of the same byte count (goal >= 70%).
// A copy of N bytes reads and writes N bytes; quantizing N input bytes reads N and writes
// N/4 (NVFP4 of BF16) or N/2 (FP8 of BF16), so the ratio compares input consumed per second.
// Exits 0, saying so, when no GPU is visible.
//
//   quant_benchmark [input MiB, default 1024]
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/quant/quant.h"
#include "worker/cuda/device.h"
#include "worker/cuda/quant_kernels.h"

namespace mxport {
namespace {

#define BENCH_CHECK(expr)                                                      \
  do {                                                                         \
    const auto& bench_status_ = (expr);                                        \
    if (!bench_status_.ok()) {                                                 \
      std::fprintf(stderr, "%s failed: %s\n", #expr,                           \
                   std::string(bench_status_.ToString()).c_str());             \
      std::exit(1);                                                            \
    }                                                                          \
  } while (false)

#define BENCH_CUDA(expr)                                                       \
  do {                                                                         \
    const cudaError_t bench_error_ = (expr);                                   \
    if (bench_error_ != cudaSuccess) {                                         \
      std::fprintf(stderr, "%s failed: %s\n", #expr,                           \
                   cudaGetErrorString(bench_error_));                          \
      std::exit(1);                                                            \
    }                                                                          \
  } while (false)

// Mean milliseconds per call of `fn` over `iterations` calls after two warm-ups.
double TimeMs(const std::function<void()>& fn, int iterations) {
  cudaEvent_t start, stop;
  BENCH_CUDA(cudaEventCreate(&start));
  BENCH_CUDA(cudaEventCreate(&stop));
  fn();
  fn();
  BENCH_CUDA(cudaEventRecord(start));
  for (int i = 0; i < iterations; ++i) fn();
  BENCH_CUDA(cudaEventRecord(stop));
  BENCH_CUDA(cudaEventSynchronize(stop));
  float ms = 0;
  BENCH_CUDA(cudaEventElapsedTime(&ms, start, stop));
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return ms / iterations;
}

// Normal-ish values with magnitudes over several decades, as BF16 or F32 bytes.
std::vector<uint8_t> MakeInput(DType dtype, size_t count) {
  std::vector<uint8_t> out(count * ElementBytes(dtype));
  uint64_t s = 12345;
  for (size_t i = 0; i < count; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    const float u = static_cast<float>(s >> 40) * 0x1.0p-24f - 0.5f;
    const float v = u * quant::BitsToFloat(0x3C000000u + ((s >> 20) & 0x3) * 0x00800000u);
    if (dtype == DType::kBFloat16) {
      const uint16_t h = quant::FloatToBFloat16Bits(v);
      std::memcpy(&out[2 * i], &h, 2);
    } else {
      std::memcpy(&out[4 * i], &v, 4);
    }
  }
  return out;
}

int Run(size_t input_mib) {
  auto devices = cuda::ListDevices();
  if (!devices.ok() || devices->empty()) {
    std::printf("quant_benchmark: no GPU visible, nothing measured\n");
    return 0;
  }
  cudaDeviceProp prop;
  BENCH_CUDA(cudaGetDeviceProperties(&prop, 0));
  const size_t bytes = input_mib << 20;
  constexpr int64_t kCols = 7168;  // a DeepSeek-V3 hidden size: rows are whole
  std::printf("device: %s, %d SMs; input %zu MiB per call\n", prop.name,
              prop.multiProcessorCount, input_mib);

  void* src = nullptr;
  void* dst = nullptr;
  BENCH_CUDA(cudaMalloc(&src, bytes));
  BENCH_CUDA(cudaMalloc(&dst, bytes));
  float* amax = nullptr;
  float* grid = nullptr;
  BENCH_CUDA(cudaMalloc(reinterpret_cast<void**>(&amax), sizeof(float)));

  const int kIters = 20;
  const double copy_ms = TimeMs(
      [&] { BENCH_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice)); }, kIters);
  const double copy_gbs = bytes / copy_ms / 1e6;
  std::printf("%-34s %8.1f GB/s  (%.0f GB/s read+written)\n", "cudaMemcpy device-to-device",
              copy_gbs, 2 * copy_gbs);

  bool all_met = true;
  for (DType dtype : {DType::kBFloat16, DType::kFloat32}) {
    const int eb = ElementBytes(dtype);
    const int64_t rows = static_cast<int64_t>(bytes / eb / kCols);
    const size_t count = static_cast<size_t>(rows) * kCols;
    const size_t in_bytes = count * eb;
    const std::vector<uint8_t> host = MakeInput(dtype, count);
    BENCH_CUDA(cudaMemcpy(src, host.data(), in_bytes, cudaMemcpyHostToDevice));
    const quant::Fp8BlockShape shape{rows, kCols};
    BENCH_CUDA(cudaMalloc(reinterpret_cast<void**>(&grid), shape.GridSize() * sizeof(float)));
    std::vector<float> ones(shape.GridSize(), 0.01f);
    BENCH_CUDA(cudaMemcpy(grid, ones.data(), ones.size() * sizeof(float), cudaMemcpyHostToDevice));
    uint8_t* out = static_cast<uint8_t*>(dst);
    uint8_t* scales = out + count / 2;  // NVFP4 block scales after the packed codes

    struct Op {
      const char* name;
      std::function<void()> fn;
    };
    const Op ops[] = {
        {"abs max",
         [&] { BENCH_CHECK(cuda::AbsMax(dtype, src, count, amax, nullptr)); }},
        {"NVFP4 quantize",
         [&] {
           BENCH_CHECK(cuda::QuantizeNvfp4(dtype, src, rows, kCols, 1e-4f, out, scales, nullptr));
         }},
        {"FP8 per-tensor quantize",
         [&] {
           BENCH_CHECK(cuda::QuantizeFp8(dtype, src, count, 1e-3f, quant::Fp8Rounding::kOnce, out,
                                         nullptr));
         }},
        {"FP8 per-tensor (via source dtype)",
         [&] {
           BENCH_CHECK(cuda::QuantizeFp8(dtype, src, count, 1e-3f,
                                         quant::Fp8Rounding::kViaSourceDType, out, nullptr));
         }},
        {"FP8 block tile amax",
         [&] { BENCH_CHECK(cuda::TileAbsMax(dtype, src, shape, 0, rows, grid, nullptr)); }},
        {"FP8 block quantize",
         [&] {
           BENCH_CHECK(cuda::QuantizeFp8Block(dtype, src, shape, 0, rows, grid, out, nullptr));
         }},
    };
    std::printf("-- %s input, [%lld, %lld]\n", std::string(DTypeName(dtype)).c_str(),
                static_cast<long long>(rows), static_cast<long long>(kCols));
    for (const Op& op : ops) {
      const double ms = TimeMs(op.fn, kIters);
      const double gbs = in_bytes / ms / 1e6;
      const double ratio = gbs / copy_gbs;
      const bool quantize = std::string(op.name).find("quantize") != std::string::npos;
      if (quantize && ratio < 0.7) all_met = false;
      std::printf("%-34s %8.1f GB/s of input  %5.1f%% of copy%s\n", op.name, gbs, 100 * ratio,
                  quantize && ratio < 0.7 ? "  (below the 70% goal)" : "");
    }
    BENCH_CUDA(cudaFree(grid));
  }
  std::printf("goal (every quantize >= 70%% of copy): %s\n", all_met ? "met" : "NOT met");
  cudaFree(amax);
  cudaFree(src);
  cudaFree(dst);
  return 0;
}

}  // namespace
}  // namespace mxport

int main(int argc, char** argv) {
  const size_t mib = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1024;
  return mxport::Run(std::max<size_t>(mib, 16));
}
