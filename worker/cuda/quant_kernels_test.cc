// GPU-labelled: the quantization kernels against the CPU library, bit for bit, on about 150
// million values (three source dtypes) drawn from a mixture of distributions that reaches every
// regime: huge and tiny magnitudes, zeros, f32 subnormals, exact E2M1 and E4M3 grid values and
// midpoints, values near FLT_MAX, and random bit patterns (NaN, Inf). Skips, saying so, where
// no GPU is visible.
#include "worker/cuda/quant_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/quant/quant.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/cuda/device.h"

namespace mxport::cuda {
namespace {

using ::mxport::testing::StatusIs;
using ::testing::HasSubstr;

bool HaveGpu() {
  auto devices = ListDevices();
  return devices.ok() && !devices->empty();
}

// Device memory for the length of a test.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    if (cudaMalloc(&ptr_, std::max<size_t>(bytes, 1)) != cudaSuccess) ptr_ = nullptr;
  }
  ~DeviceBuffer() { cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  uint8_t* get() const { return static_cast<uint8_t*>(ptr_); }
  float* floats() const { return static_cast<float*>(ptr_); }
  bool ok() const { return ptr_ != nullptr; }
  void Upload(const void* host, size_t bytes, size_t offset = 0) {
    ASSERT_EQ(cudaMemcpy(get() + offset, host, bytes, cudaMemcpyHostToDevice), cudaSuccess);
  }
  template <typename T>
  std::vector<T> Download(size_t count, size_t offset = 0) const {
    std::vector<T> out(count);
    EXPECT_EQ(cudaMemcpy(out.data(), get() + offset, count * sizeof(T), cudaMemcpyDeviceToHost),
              cudaSuccess);
    return out;
  }

 private:
  void* ptr_ = nullptr;
  size_t bytes_;
};

// splitmix64: fast, seedable per chunk so generation parallelises deterministically.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  float Uniform() { return static_cast<float>(Next() >> 40) * 0x1.0p-24f; }  // [0, 1)
  int Int(int lo, int hi) { return lo + static_cast<int>(Next() % uint64_t(hi - lo + 1)); }
  float Normal() {
    const float u = std::max(Uniform(), 1e-7f), v = Uniform();
    return std::sqrt(-2.0f * std::log(u)) * std::cos(6.2831853f * v);
  }
  float Sign() { return (Next() & 1) ? -1.0f : 1.0f; }

 private:
  uint64_t state_;
};

// One 16-element block from one of 16 distributions.
void FillBlock(Rng& rng, float* w) {
  static const float kE2M1[] = {0, .5f, 1, 1.5f, 2, 3, 4, 6};
  static const float kE2M1Ties[] = {.25f, .75f, 1.25f, 1.75f, 2.5f, 3.5f, 5};
  const int kind = rng.Int(0, 15);
  const float p2 = std::ldexp(1.0f, rng.Int(-30, 30));
  for (int i = 0; i < 16; ++i) {
    float v;
    switch (kind) {
      case 6: v = (2 * rng.Uniform() - 1) * p2; break;
      case 7: v = (rng.Next() & 3) ? 0.0f : -0.0f; break;
      case 8: v = quant::BitsToFloat(static_cast<uint32_t>(rng.Next()) & 0x807FFFFFu); break;
      case 9: v = rng.Sign() * kE2M1[rng.Int(0, 7)] * p2; break;
      case 10: v = rng.Sign() * kE2M1Ties[rng.Int(0, 6)] * p2; break;
      case 11: {
        // An E4M3 value or a midpoint between neighbours, scaled by a power of two.
        const uint8_t c = static_cast<uint8_t>(rng.Int(0, 0x7D));
        const float a = quant::E4M3ToFloat(c), b = quant::E4M3ToFloat(c + 1);
        v = rng.Sign() * ((rng.Next() & 1) ? a : (a + b) / 2) * p2;
        break;
      }
      case 12: v = quant::BitsToFloat(static_cast<uint32_t>(rng.Next())); break;  // NaN, Inf...
      case 13: v = rng.Normal() * 1e-37f; break;
      case 14: v = rng.Sign() * 3.4e38f * rng.Uniform(); break;
      case 15: v = rng.Sign() * 448.0f * (1 + (rng.Uniform() - 0.5f) * 0.1f) * p2; break;
      default: v = rng.Normal() * p2; break;
    }
    w[i] = v;
  }
}

// Runs fn(row_begin, row_end) over [0, rows) on all cores; returns the first error.
template <typename Fn>
absl::Status ParallelRows(int64_t rows, Fn fn) {
  const int64_t threads = std::clamp<int64_t>(std::thread::hardware_concurrency(), 1, 32);
  const int64_t per = (rows + threads - 1) / threads;
  std::mutex mu;
  absl::Status first;
  std::vector<std::thread> pool;
  for (int64_t t = 0; t < threads; ++t) {
    const int64_t a = t * per, b = std::min(rows, a + per);
    if (a >= b) break;
    pool.emplace_back([&, a, b] {
      absl::Status s = fn(a, b);
      std::lock_guard<std::mutex> lock(mu);
      if (first.ok()) first = s;
    });
  }
  for (std::thread& t : pool) t.join();
  return first;
}

// Counts differing bytes; prints the first few with their inputs.
size_t CountMismatches(const std::vector<uint8_t>& cpu, const std::vector<uint8_t>& gpu,
                       const std::string& what, const std::vector<float>* inputs = nullptr,
                       int inputs_per_output = 1) {
  EXPECT_EQ(cpu.size(), gpu.size()) << what;
  size_t differ = 0;
  for (size_t i = 0; i < std::min(cpu.size(), gpu.size()); ++i) {
    if (cpu[i] == gpu[i]) continue;
    if (differ++ < 5) {
      std::string in;
      if (inputs != nullptr) {
        for (int k = 0; k < inputs_per_output; ++k) {
          const float x = (*inputs)[i * inputs_per_output + k];
          absl::StrAppend(&in, " ", x, "/0x", absl::Hex(quant::FloatBits(x)));
        }
      }
      ADD_FAILURE() << what << "[" << i << "]: cpu 0x" << absl::StrCat(absl::Hex(cpu[i]))
                    << " gpu 0x" << absl::StrCat(absl::Hex(gpu[i])) << (in.empty() ? "" : " input")
                    << in;
    }
  }
  return differ;
}

struct SourceCase {
  DType dtype;
  int bytes;
};

std::vector<uint8_t> Encode(const std::vector<float>& values, DType dtype) {
  std::vector<uint8_t> out;
  if (dtype == DType::kFloat32) {
    out.resize(values.size() * 4);
    std::memcpy(out.data(), values.data(), out.size());
  } else {
    out.resize(values.size() * 2);
    for (size_t i = 0; i < values.size(); ++i) {
      const uint16_t h = dtype == DType::kBFloat16 ? quant::FloatToBFloat16Bits(values[i])
                                                   : quant::FloatToHalfBits(values[i]);
      std::memcpy(out.data() + 2 * i, &h, 2);
    }
  }
  return out;
}

absl::string_view Rows(const std::vector<uint8_t>& bytes, int64_t a, int64_t b, int64_t cols,
                       int eb) {
  return absl::string_view(reinterpret_cast<const char*>(bytes.data()) + a * cols * eb,
                           (b - a) * cols * eb);
}

TEST(QuantKernelsTest, HardwareConversionsEqualThePortableCodeOnEveryFloat) {
  if (!HaveGpu()) GTEST_SKIP() << "no GPU visible: quantization kernels not exercised";
  EXPECT_OK(VerifyDeviceCodecs(nullptr));
}

TEST(QuantKernelsTest, BitIdenticalToCpuOnAHundredMillionValues) {
  if (!HaveGpu()) GTEST_SKIP() << "no GPU visible: quantization kernels not exercised";
  constexpr int64_t kCols = 4096, kChunkRows = 256, kRows = 12288;  // 50.3M values per dtype
  constexpr size_t kCount = kRows * kCols;
  std::vector<float> values(kCount);
  ASSERT_OK(ParallelRows(kRows / kChunkRows, [&](int64_t a, int64_t b) {
    for (int64_t chunk = a; chunk < b; ++chunk) {
      Rng rng(1000 + chunk);
      for (int64_t i = chunk * kChunkRows * kCols; i < (chunk + 1) * kChunkRows * kCols; i += 16) {
        FillBlock(rng, &values[i]);
      }
    }
    return absl::OkStatus();
  }));

  size_t compared = 0;
  for (const SourceCase& sc : {SourceCase{DType::kBFloat16, 2}, SourceCase{DType::kFloat16, 2},
                               SourceCase{DType::kFloat32, 4}}) {
    SCOPED_TRACE(std::string(DTypeName(sc.dtype)));
    const std::vector<uint8_t> host = Encode(values, sc.dtype);
    std::vector<float> as_float(kCount);
    ASSERT_OK(quant::ToFloat(sc.dtype, absl::string_view(reinterpret_cast<const char*>(host.data()),
                                                         host.size()),
                             absl::MakeSpan(as_float)));
    DeviceBuffer src(host.size()), packed(kCount / 2), scales(kCount / 16), q(kCount),
        q_via(kCount), qb(kCount), amax(sizeof(float) * (kRows / kChunkRows)),
        grid(sizeof(float) * (kRows / 128) * (kCols / 128));
    ASSERT_TRUE(src.ok() && packed.ok() && scales.ok() && q.ok() && q_via.ok() && qb.ok());
    src.Upload(host.data(), host.size());
    ASSERT_EQ(cudaMemset(amax.get(), 0, sizeof(float) * (kRows / kChunkRows)), cudaSuccess);
    ASSERT_EQ(cudaMemset(grid.get(), 0, sizeof(float) * (kRows / 128) * (kCols / 128)),
              cudaSuccess);

    // Per 256-row chunk: amax, then scales chosen three ways (from the finite amax, a random
    // power of two, a subnormal-sized one) so every scale regime is reached.
    const int64_t chunks = kRows / kChunkRows;
    std::vector<float> cpu_amax(chunks), s2(chunks), fp8_scale(chunks);
    for (int64_t c = 0; c < chunks; ++c) {
      ASSERT_OK(AbsMax(sc.dtype, src.get() + c * kChunkRows * kCols * sc.bytes, kChunkRows * kCols,
                       amax.floats() + c, nullptr));
      ASSERT_OK_AND_ASSIGN(cpu_amax[c],
                           quant::AbsMax(sc.dtype, Rows(host, c * kChunkRows, (c + 1) * kChunkRows,
                                                        kCols, sc.bytes)));
      float finite = 0;
      for (int64_t i = c * kChunkRows * kCols; i < (c + 1) * kChunkRows * kCols; ++i) {
        if (std::isfinite(as_float[i])) finite = std::max(finite, std::fabs(as_float[i]));
      }
      Rng rng(77 + c);
      switch (c % 3) {
        case 0:
          s2[c] = *quant::Nvfp4WeightScale2(finite);
          fp8_scale[c] = *quant::Fp8WeightScale(finite);
          break;
        case 1:
          s2[c] = std::ldexp(1.0f, rng.Int(-60, 20)) * (1 + rng.Uniform());
          fp8_scale[c] = std::ldexp(1.0f, rng.Int(-60, 20)) * (1 + rng.Uniform());
          break;
        default:
          s2[c] = *quant::Nvfp4WeightScale2(1e-36f);
          fp8_scale[c] = *quant::Fp8WeightScale(1e-38f);
          break;
      }
      ASSERT_OK(QuantizeNvfp4(sc.dtype, src.get() + c * kChunkRows * kCols * sc.bytes, kChunkRows,
                              kCols, s2[c], packed.get() + c * kChunkRows * kCols / 2,
                              scales.get() + c * kChunkRows * kCols / 16, nullptr));
      for (auto [out, rounding] : {std::pair{&q, quant::Fp8Rounding::kOnce},
                                   std::pair{&q_via, quant::Fp8Rounding::kViaSourceDType}}) {
        ASSERT_OK(QuantizeFp8(sc.dtype, src.get() + c * kChunkRows * kCols * sc.bytes,
                              kChunkRows * kCols, fp8_scale[c], rounding,
                              out->get() + c * kChunkRows * kCols, nullptr));
      }
    }
    // Block FP8 over the whole tensor, tile amax from two pieces that split tile rows.
    const quant::Fp8BlockShape shape{kRows, kCols};
    ASSERT_OK(TileAbsMax(sc.dtype, src.get(), shape, 0, 1000, grid.floats(), nullptr));
    ASSERT_OK(TileAbsMax(sc.dtype, src.get() + 1000 * kCols * sc.bytes, shape, 1000,
                         kRows - 1000, grid.floats(), nullptr));
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const std::vector<float> gpu_grid = grid.Download<float>(shape.GridSize());
    std::vector<float> cpu_grid(shape.GridSize(), 0.0f);
    ASSERT_OK(quant::TileAbsMax(sc.dtype, Rows(host, 0, kRows, kCols, sc.bytes), shape, 0,
                                absl::MakeSpan(cpu_grid)));
    for (size_t i = 0; i < cpu_grid.size(); ++i) {
      ASSERT_EQ(quant::FloatBits(gpu_grid[i]), quant::FloatBits(cpu_grid[i])) << "tile " << i;
    }
    std::vector<float> scale_inv(shape.GridSize());
    for (size_t i = 0; i < scale_inv.size(); ++i) {
      scale_inv[i] = quant::Fp8BlockScaleInvFromAmax(cpu_grid[i]);
    }
    grid.Upload(scale_inv.data(), scale_inv.size() * sizeof(float));
    ASSERT_OK(QuantizeFp8Block(sc.dtype, src.get(), shape, 0, kRows, grid.floats(), qb.get(),
                               nullptr));
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);

    const std::vector<float> gpu_amax = amax.Download<float>(chunks);
    for (int64_t c = 0; c < chunks; ++c) {
      EXPECT_EQ(quant::FloatBits(gpu_amax[c]), quant::FloatBits(cpu_amax[c])) << "chunk " << c;
    }

    // The CPU reference, row ranges in parallel.
    std::vector<uint8_t> cpu_packed(kCount / 2), cpu_scales(kCount / 16), cpu_q(kCount),
        cpu_q_via(kCount), cpu_qb(kCount);
    ASSERT_OK(ParallelRows(chunks, [&](int64_t a, int64_t b) -> absl::Status {
      for (int64_t c = a; c < b; ++c) {
        const absl::string_view rows =
            Rows(host, c * kChunkRows, (c + 1) * kChunkRows, kCols, sc.bytes);
        const size_t e0 = c * kChunkRows * kCols, n = kChunkRows * kCols;
        RETURN_IF_ERROR(quant::QuantizeNvfp4(sc.dtype, rows, kCols, s2[c],
                                             absl::MakeSpan(cpu_packed).subspan(e0 / 2, n / 2),
                                             absl::MakeSpan(cpu_scales).subspan(e0 / 16, n / 16)));
        RETURN_IF_ERROR(quant::QuantizeFp8(sc.dtype, rows, fp8_scale[c],
                                           absl::MakeSpan(cpu_q).subspan(e0, n)));
        RETURN_IF_ERROR(quant::QuantizeFp8(sc.dtype, rows, fp8_scale[c],
                                           absl::MakeSpan(cpu_q_via).subspan(e0, n),
                                           quant::Fp8Rounding::kViaSourceDType));
        RETURN_IF_ERROR(quant::QuantizeFp8Block(sc.dtype, rows, shape, c * kChunkRows, scale_inv,
                                                absl::MakeSpan(cpu_qb).subspan(e0, n)));
      }
      return absl::OkStatus();
    }));

    EXPECT_EQ(CountMismatches(cpu_scales, scales.Download<uint8_t>(kCount / 16), "nvfp4 scales"),
              0u);
    EXPECT_EQ(CountMismatches(cpu_packed, packed.Download<uint8_t>(kCount / 2), "nvfp4 packed",
                              &as_float, 2),
              0u);
    EXPECT_EQ(CountMismatches(cpu_q, q.Download<uint8_t>(kCount), "fp8", &as_float), 0u);
    EXPECT_EQ(CountMismatches(cpu_q_via, q_via.Download<uint8_t>(kCount), "fp8 via source",
                              &as_float),
              0u);
    EXPECT_EQ(CountMismatches(cpu_qb, qb.Download<uint8_t>(kCount), "block fp8", &as_float), 0u);
    compared += kCount;
  }
  std::printf("compared %zu values (x5 outputs each) between GPU and CPU\n", compared);
  EXPECT_GE(compared, 100'000'000u);
}

// Scalar paths: unaligned pointers, counts that are not multiples of 8, column counts that are
// not multiples of 8, row ranges that start inside a tile, accumulation into earlier amax.
TEST(QuantKernelsTest, ScalarPathsAndOddShapes) {
  if (!HaveGpu()) GTEST_SKIP() << "no GPU visible: quantization kernels not exercised";
  Rng rng(5);
  std::vector<float> values(300 * 1001);
  for (size_t i = 0; i + 16 <= values.size(); i += 16) FillBlock(rng, &values[i]);
  for (DType dtype : {DType::kBFloat16, DType::kFloat16, DType::kFloat32}) {
    SCOPED_TRACE(std::string(DTypeName(dtype)));
    const int eb = dtype == DType::kFloat32 ? 4 : 2;
    const std::vector<uint8_t> host = Encode(values, dtype);
    DeviceBuffer src(host.size() + 64), out(host.size() + 64), dev_amax(16);
    src.Upload(host.data(), host.size(), eb);  // one element past 16-byte alignment
    const uint8_t* s = src.get() + eb;
    for (size_t count : {size_t{1}, size_t{7}, size_t{17}, size_t{1001}, values.size() - 3}) {
      const absl::string_view bytes(reinterpret_cast<const char*>(host.data()), count * eb);
      std::vector<uint8_t> cpu(count);
      ASSERT_OK(quant::QuantizeFp8(dtype, bytes, 0.37f, absl::MakeSpan(cpu)));
      ASSERT_OK(QuantizeFp8(dtype, s, count, 0.37f, quant::Fp8Rounding::kOnce, out.get() + 1,
                            nullptr));
      EXPECT_EQ(CountMismatches(cpu, out.Download<uint8_t>(count, 1), "fp8 unaligned"), 0u);
      ASSERT_EQ(cudaMemset(dev_amax.get(), 0, 4), cudaSuccess);
      ASSERT_OK(AbsMax(dtype, s, count, dev_amax.floats(), nullptr));
      ASSERT_OK_AND_ASSIGN(const float amax, quant::AbsMax(dtype, bytes));
      EXPECT_EQ(quant::FloatBits(dev_amax.Download<float>(1)[0]), quant::FloatBits(amax));
    }
    // NVFP4 with an unaligned source and output: 300 rows of 992 (a multiple of 16).
    {
      const int64_t rows = 300, cols = 992;
      const absl::string_view bytes(reinterpret_cast<const char*>(host.data()), rows * cols * eb);
      std::vector<uint8_t> cpu_packed(rows * cols / 2), cpu_scales(rows * cols / 16);
      ASSERT_OK(quant::QuantizeNvfp4(dtype, bytes, cols, 0.01f, absl::MakeSpan(cpu_packed),
                                     absl::MakeSpan(cpu_scales)));
      DeviceBuffer scales(rows * cols / 16);
      ASSERT_OK(QuantizeNvfp4(dtype, s, rows, cols, 0.01f, out.get() + 3, scales.get(), nullptr));
      EXPECT_EQ(CountMismatches(cpu_packed, out.Download<uint8_t>(rows * cols / 2, 3),
                                "nvfp4 unaligned"),
                0u);
      EXPECT_EQ(CountMismatches(cpu_scales, scales.Download<uint8_t>(rows * cols / 16),
                                "nvfp4 unaligned scales"),
                0u);
    }
    // Block FP8 on [300, 1001]: rows [100, 300) in one call, tile amax accumulated onto the
    // grid of rows [0, 100), from an aligned and an unaligned source.
    {
      const quant::Fp8BlockShape shape{300, 1001};
      const absl::string_view all(reinterpret_cast<const char*>(host.data()), 300 * 1001 * eb);
      std::vector<float> first(shape.GridSize(), 0.0f);
      ASSERT_OK(quant::TileAbsMax(dtype, all.substr(0, 100 * 1001 * eb), shape, 0,
                                  absl::MakeSpan(first)));
      std::vector<float> cpu_grid = first;
      ASSERT_OK(quant::TileAbsMax(dtype, all.substr(100 * 1001 * eb), shape, 100,
                                  absl::MakeSpan(cpu_grid)));
      std::vector<float> scale_inv(shape.GridSize());
      for (size_t i = 0; i < scale_inv.size(); ++i) {
        scale_inv[i] = quant::Fp8BlockScaleInvFromAmax(cpu_grid[i]);
      }
      std::vector<uint8_t> cpu_q(200 * 1001);
      ASSERT_OK(quant::QuantizeFp8Block(dtype, all.substr(100 * 1001 * eb), shape, 100,
                                        scale_inv, absl::MakeSpan(cpu_q)));
      DeviceBuffer aligned(host.size()), grid(shape.GridSize() * 4);
      aligned.Upload(host.data(), host.size());
      for (const uint8_t* base : {static_cast<const uint8_t*>(aligned.get()), s}) {
        grid.Upload(first.data(), first.size() * 4);
        ASSERT_OK(TileAbsMax(dtype, base + 100 * 1001 * eb, shape, 100, 200, grid.floats(),
                             nullptr));
        const std::vector<float> gpu_grid = grid.Download<float>(shape.GridSize());
        for (size_t i = 0; i < cpu_grid.size(); ++i) {
          EXPECT_EQ(quant::FloatBits(gpu_grid[i]), quant::FloatBits(cpu_grid[i])) << i;
        }
        grid.Upload(scale_inv.data(), scale_inv.size() * 4);
        ASSERT_OK(QuantizeFp8Block(dtype, base + 100 * 1001 * eb, shape, 100, 200, grid.floats(),
                                   out.get(), nullptr));
        EXPECT_EQ(CountMismatches(cpu_q, out.Download<uint8_t>(200 * 1001), "block fp8 odd"), 0u);
      }
    }
  }
}

TEST(QuantKernelsTest, RejectsBadArguments) {
  if (!HaveGpu()) GTEST_SKIP() << "no GPU visible: quantization kernels not exercised";
  DeviceBuffer buf(1024);
  EXPECT_THAT(QuantizeFp8(DType::kInt32, buf.get(), 4, 1.0f, quant::Fp8Rounding::kOnce,
                          buf.get(), nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("int32")));
  EXPECT_THAT(AbsMax(DType::kBFloat16, buf.get() + 1, 4, buf.floats(), nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("aligned")));
  EXPECT_THAT(QuantizeNvfp4(DType::kBFloat16, buf.get(), 2, 24, 1.0f, buf.get(), buf.get(),
                            nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("multiple of 16")));
  EXPECT_THAT(QuantizeFp8Block(DType::kFloat32, buf.get(), quant::Fp8BlockShape{4, 4}, 2, 3,
                               buf.floats(), buf.get(), nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("outside")));
}

}  // namespace
}  // namespace mxport::cuda
