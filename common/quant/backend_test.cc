// The CPU backend through the Backend interface: strided regions of a wider source, written
// into strided rows of a wider output, give exactly the bytes of quant.h on the dense region
// (for block FP8, the bytes of the whole tensor quantized in one piece), leave every other
// output byte alone, and bad arguments fail before anything is written.
#include "common/quant/backend.h"

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/quant/quant.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mxport::quant {
namespace {

using ::mxport::testing::StatusIs;
using ::testing::HasSubstr;

constexpr uint8_t kUntouched = 0xA5;

// rows x cols random elements of `dtype` (normal, with some zeros and outliers).
std::string RandomMatrix(DType dtype, int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  const int elem = ElementBytes(dtype);
  std::string out(static_cast<size_t>(rows * cols * elem), '\0');
  for (int64_t i = 0; i < rows * cols; ++i) {
    float v = normal(rng);
    if (i % 97 == 3) v *= 300.0f;
    if (i % 41 == 0) v = 0.0f;
    if (dtype == DType::kFloat32) {
      std::memcpy(out.data() + i * elem, &v, 4);
    } else {
      const uint16_t h = dtype == DType::kBFloat16 ? FloatToBFloat16Bits(v) : FloatToHalfBits(v);
      std::memcpy(out.data() + i * elem, &h, 2);
    }
  }
  return out;
}

// Columns [c0, c0 + n) of every row of a dense [rows, cols] matrix, dense.
std::string Columns(const std::string& m, DType dtype, int64_t rows, int64_t cols, int64_t c0,
                    int64_t n) {
  const int elem = ElementBytes(dtype);
  std::string out;
  for (int64_t r = 0; r < rows; ++r) out += m.substr((r * cols + c0) * elem, n * elem);
  return out;
}

// Rows of `width` bytes at stride `stride` of `buffer`, dense; every other byte must be
// untouched.
std::vector<uint8_t> Unstride(const std::vector<uint8_t>& buffer, int64_t rows, int64_t width,
                              int64_t stride, int64_t offset) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i < buffer.size(); ++i) {
    const int64_t k = static_cast<int64_t>(i) - offset;
    const bool inside = k >= 0 && k / stride < rows && k % stride < width;
    if (!inside) {
      EXPECT_EQ(buffer[i], kUntouched) << "byte " << i << " written";
    }
  }
  for (int64_t r = 0; r < rows; ++r) {
    out.insert(out.end(), buffer.begin() + offset + r * stride,
               buffer.begin() + offset + r * stride + width);
  }
  return out;
}

const DType kDTypes[] = {DType::kBFloat16, DType::kFloat16, DType::kFloat32};

TEST(CpuBackendTest, Nvfp4StridedRegionsEqualTheDenseQuantization) {
  Backend& cpu = CpuBackend();
  EXPECT_EQ(cpu.name(), "cpu");
  for (DType dtype : kDTypes) {
    const int64_t rows = 37, cols = 208, c0 = 48, n = 128;
    const std::string m = RandomMatrix(dtype, rows, cols, 7);
    const int elem = ElementBytes(dtype);
    const std::string dense = Columns(m, dtype, rows, cols, c0, n);
    std::vector<uint8_t> want_packed(rows * n / 2), want_scales(rows * n / 16);
    ASSERT_OK(QuantizeNvfp4(dtype, dense, n, 0.0125f, absl::MakeSpan(want_packed),
                            absl::MakeSpan(want_scales)));
    // Output rows of 80 and 11 bytes, starting 3 bytes in.
    std::vector<uint8_t> packed(3 + rows * 80, kUntouched), scales(3 + rows * 11, kUntouched);
    ASSERT_OK(cpu.QuantizeNvfp4({dtype, absl::string_view(m).substr(c0 * elem), rows, n, cols},
                                0.0125f, {absl::MakeSpan(packed).subspan(3), 80},
                                {absl::MakeSpan(scales).subspan(3), 11}));
    EXPECT_EQ(Unstride(packed, rows, n / 2, 80, 3), want_packed) << DTypeName(dtype);
    EXPECT_EQ(Unstride(scales, rows, n / 16, 11, 3), want_scales) << DTypeName(dtype);
    // Dense on both sides: the one-call path.
    std::vector<uint8_t> p2(want_packed.size()), s2(want_scales.size());
    ASSERT_OK(cpu.QuantizeNvfp4({dtype, dense, rows, n, n}, 0.0125f, {absl::MakeSpan(p2), n / 2},
                                {absl::MakeSpan(s2), n / 16}));
    EXPECT_EQ(p2, want_packed);
    EXPECT_EQ(s2, want_scales);
  }
}

TEST(CpuBackendTest, Fp8StridedRegionsEqualTheDenseQuantization) {
  Backend& cpu = CpuBackend();
  for (DType dtype : kDTypes) {
    const int64_t rows = 19, cols = 100, c0 = 7, n = 61;
    const std::string m = RandomMatrix(dtype, rows, cols, 11);
    const std::string dense = Columns(m, dtype, rows, cols, c0, n);
    std::vector<uint8_t> want(rows * n);
    ASSERT_OK(QuantizeFp8(dtype, dense, 0.37f, absl::MakeSpan(want)));
    std::vector<uint8_t> out(5 + rows * 64, kUntouched);
    ASSERT_OK(cpu.QuantizeFp8(
        {dtype, absl::string_view(m).substr(c0 * ElementBytes(dtype)), rows, n, cols}, 0.37f,
        {absl::MakeSpan(out).subspan(5), 64}));
    EXPECT_EQ(Unstride(out, rows, n, 64, 5), want) << DTypeName(dtype);
  }
}

TEST(CpuBackendTest, Fp8BlockRegionsEqualTheWholeTensor) {
  Backend& cpu = CpuBackend();
  for (DType dtype : kDTypes) {
    const Fp8BlockShape shape{300, 330};
    const std::string m = RandomMatrix(dtype, shape.rows, shape.cols, 13);
    std::vector<float> tiles(shape.GridSize(), 0.0f), grid(shape.GridSize());
    ASSERT_OK(TileAbsMax(dtype, m, shape, 0, absl::MakeSpan(tiles)));
    ASSERT_OK(Fp8BlockScaleInv(tiles, absl::MakeSpan(grid)));
    std::vector<uint8_t> whole(shape.rows * shape.cols);
    ASSERT_OK(QuantizeFp8Block(dtype, m, shape, 0, grid, absl::MakeSpan(whole)));
    const int elem = ElementBytes(dtype);
    struct Region {
      int64_t r0, rows, c0, cols;
    };
    for (const Region& g : {Region{0, 300, 0, 330}, Region{100, 57, 0, 330},
                            Region{5, 250, 100, 200}, Region{129, 1, 255, 2},
                            Region{0, 300, 128, 202}, Region{7, 0, 3, 4}}) {
      SCOPED_TRACE(::testing::PrintToString(std::vector<int64_t>{g.r0, g.rows, g.c0, g.cols}));
      std::vector<uint8_t> out(g.rows * g.cols, kUntouched);
      ASSERT_OK(cpu.QuantizeFp8Block(
          {dtype, absl::string_view(m).substr((g.r0 * shape.cols + g.c0) * elem), g.rows, g.cols,
           shape.cols},
          shape, g.r0, g.c0, grid, {absl::MakeSpan(out), g.cols}));
      std::vector<uint8_t> want;
      for (int64_t r = 0; r < g.rows; ++r) {
        const auto row = whole.begin() + (g.r0 + r) * shape.cols + g.c0;
        want.insert(want.end(), row, row + g.cols);
      }
      EXPECT_EQ(out, want) << DTypeName(dtype);
    }
  }
}

TEST(CpuBackendTest, BadArgumentsWriteNothing) {
  Backend& cpu = CpuBackend();
  const std::string m = RandomMatrix(DType::kBFloat16, 4, 32, 1);
  std::vector<uint8_t> out(256, kUntouched);
  const auto span = absl::MakeSpan(out);
  EXPECT_THAT(cpu.QuantizeFp8({DType::kInt32, m, 4, 16, 16}, 1.0f, {span, 16}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("int32")));
  EXPECT_THAT(cpu.QuantizeFp8({DType::kBFloat16, m, 4, 32, 16}, 1.0f, {span, 32}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("stride")));
  EXPECT_THAT(cpu.QuantizeFp8({DType::kBFloat16, m, 5, 32, 32}, 1.0f, {span, 32}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("needs 320 bytes")));
  EXPECT_THAT(cpu.QuantizeFp8({DType::kBFloat16, m, 4, 32, 32}, 1.0f, {span.subspan(0, 100), 32}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("FP8 output")));
  EXPECT_THAT(cpu.QuantizeFp8({DType::kBFloat16, m, 4, 32, 32}, 1.0f, {span, 31}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("stride 31")));
  EXPECT_THAT(cpu.QuantizeFp8({DType::kBFloat16, m, 4, 32, 32}, -1.0f, {span, 32}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("weight_scale")));
  EXPECT_THAT(cpu.QuantizeNvfp4({DType::kBFloat16, m, 4, 24, 32}, 1.0f, {span, 12}, {span, 2}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("multiple of 16")));
  const std::vector<float> grid(1, 1.0f);
  EXPECT_THAT(cpu.QuantizeFp8Block({DType::kBFloat16, m, 4, 32, 32}, {4, 40}, 0, 9, grid,
                                   {span, 32}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("outside")));
  EXPECT_THAT(cpu.QuantizeFp8Block({DType::kBFloat16, m, 4, 32, 32}, {4, 300}, 0, 0, grid,
                                   {span, 32}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("grid has 1 values")));
  for (uint8_t b : out) EXPECT_EQ(b, kUntouched);
}

}  // namespace
}  // namespace mxport::quant
