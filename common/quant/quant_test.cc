#include "common/quant/quant.h"

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mxport::quant {
namespace {

using ::mxport::testing::StatusIs;
using ::testing::HasSubstr;

template <typename T>
absl::string_view AsBytes(const std::vector<T>& v) {
  return absl::string_view(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

float Pow2(int e) { return std::ldexp(1.0f, e); }

std::vector<uint16_t> ToBFloat16(const std::vector<float>& v) {
  std::vector<uint16_t> out;
  for (float f : v) out.push_back(FloatToBFloat16Bits(f));
  return out;
}

// ---- Independent slow references for the scalar codecs.

// All finite E4M3FN values, indexed by code (NaN codes hold NaN).
std::vector<double> E4M3Table() {
  std::vector<double> t(256);
  for (int c = 0; c < 256; ++c) {
    const int e = (c >> 3) & 15, m = c & 7;
    double v = e == 0 ? m * std::ldexp(1.0, -9) : (1 + m / 8.0) * std::ldexp(1.0, e - 7);
    if (e == 15 && m == 7) v = std::nan("");
    t[c] = (c & 0x80) ? -v : v;
  }
  return t;
}

// Nearest finite E4M3 after clamping to +-448, ties to the even code.
uint8_t SlowE4M3(float x) {
  static const std::vector<double> table = E4M3Table();
  if (std::isnan(x)) return 0x7F;
  const double v = std::max(-448.0, std::min(448.0, static_cast<double>(x)));
  int best = -1;
  double best_d = 0;
  for (int c = 0; c < 256; ++c) {
    if (std::isnan(table[c]) || c == 0x80) continue;  // skip NaN and -0 (sign fixed below)
    const double d = std::fabs(table[c] - v);
    if (best < 0 || d < best_d || (d == best_d && (c & 1) == 0)) {
      best = c;
      best_d = d;
    }
  }
  if (best == 0 && std::signbit(x)) best = 0x80;
  return static_cast<uint8_t>(best);
}

uint8_t SlowE2M1(float v) {
  static const double kGrid[8] = {0, .5, 1, 1.5, 2, 3, 4, 6};
  const uint8_t sign = v < 0 ? 8 : 0;
  const double a = std::fabs(static_cast<double>(v));
  if (std::isnan(a) || a > 6) return sign | 7;
  int best = 0;
  for (int i = 1; i < 8; ++i) {
    const double d = std::fabs(kGrid[i] - a), bd = std::fabs(kGrid[best] - a);
    if (d < bd || (d == bd && (i & 1) == 0)) best = i;
  }
  return sign | best;
}

// Every f32 bit pattern with the given stride, both signs (about 2^32 / stride values).
template <typename Fn>
void SweepFloats(uint32_t stride, Fn fn) {
  for (uint64_t u = 0; u <= 0xFFFFFFFFull; u += stride) fn(BitsToFloat(static_cast<uint32_t>(u)));
}

TEST(E4M3Test, EdgeCases) {
  EXPECT_EQ(FloatToE4M3(448.0f), 0x7E);
  EXPECT_EQ(FloatToE4M3(-448.0f), 0xFE);
  EXPECT_EQ(FloatToE4M3(464.0f), 0x7E);  // clamped (PyTorch: 448 too)
  EXPECT_EQ(FloatToE4M3(500.0f), 0x7E);  // clamped (PyTorch without clamp: NaN)
  EXPECT_EQ(FloatToE4M3(1e30f), 0x7E);
  EXPECT_EQ(FloatToE4M3(INFINITY), 0x7E);
  EXPECT_EQ(FloatToE4M3(-INFINITY), 0xFE);
  EXPECT_EQ(FloatToE4M3(NAN), 0x7F);
  EXPECT_EQ(FloatToE4M3(-NAN), 0x7F);
  EXPECT_EQ(FloatToE4M3(0.0f), 0x00);
  EXPECT_EQ(FloatToE4M3(-0.0f), 0x80);
  EXPECT_EQ(FloatToE4M3(1.0f), 0x38);
  // Subnormals: 2^-9 is the smallest; 2^-10 ties to even (0); 3 * 2^-10 ties to 2 * 2^-9.
  EXPECT_EQ(FloatToE4M3(Pow2(-9)), 0x01);
  EXPECT_EQ(FloatToE4M3(Pow2(-10)), 0x00);
  EXPECT_EQ(FloatToE4M3(-Pow2(-10)), 0x80);
  EXPECT_EQ(FloatToE4M3(std::nextafter(Pow2(-10), 1.0f)), 0x01);
  EXPECT_EQ(FloatToE4M3(3 * Pow2(-10)), 0x02);
  EXPECT_EQ(FloatToE4M3(7 * Pow2(-9)), 0x07);
  EXPECT_EQ(FloatToE4M3(15 * Pow2(-10)), 0x08);  // ties up to 2^-6, the smallest normal
  EXPECT_EQ(FloatToE4M3(Pow2(-6)), 0x08);
  EXPECT_EQ(FloatToE4M3(1e-40f), 0x00);  // f32 subnormal
  // Normal ties: 1.0625 between 1.0 (0x38) and 1.125 (0x39) goes to even; 1.1875 to 1.25.
  EXPECT_EQ(FloatToE4M3(1.0625f), 0x38);
  EXPECT_EQ(FloatToE4M3(1.1875f), 0x3A);
  EXPECT_EQ(FloatToE4M3(400.0f), 0x7C);  // between 384 and 416
  EXPECT_EQ(FloatToE4M3(432.0f), 0x7E);  // between 416 and 448
  EXPECT_EQ(FloatToE4M3(std::nextafter(400.0f, 0.0f)), 0x7C);
  EXPECT_EQ(FloatToE4M3(std::nextafter(400.0f, 500.0f)), 0x7D);
}

TEST(E4M3Test, DecodeRoundTripsEveryCode) {
  const std::vector<double> table = E4M3Table();
  for (int c = 0; c < 256; ++c) {
    const float f = E4M3ToFloat(static_cast<uint8_t>(c));
    if (std::isnan(table[c])) {
      EXPECT_TRUE(std::isnan(f)) << c;
      continue;
    }
    EXPECT_EQ(static_cast<double>(f), table[c]) << c;
    EXPECT_EQ(FloatToE4M3(f), c) << c;
  }
}

TEST(E4M3Test, MatchesNearestEvenReferenceOnASweep) {
  int mismatches = 0;
  SweepFloats(4099, [&](float x) {
    if (FloatToE4M3(x) != SlowE4M3(x) && ++mismatches < 10) {
      ADD_FAILURE() << "x=" << x << " got " << int{FloatToE4M3(x)} << " want "
                    << int{SlowE4M3(x)};
    }
  });
  // Every midpoint between neighbours, and one f32 step either side of it.
  const std::vector<double> table = E4M3Table();
  for (int c = 0; c < 0x7E; ++c) {
    const float mid = static_cast<float>((table[c] + table[c + 1]) / 2);
    for (float x : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e9f)}) {
      EXPECT_EQ(FloatToE4M3(x), SlowE4M3(x)) << x;
      EXPECT_EQ(FloatToE4M3(-x), SlowE4M3(-x)) << -x;
    }
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(E2M1Test, TiesRoundToEven) {
  struct Case {
    float v;
    uint8_t code;
  };
  const Case cases[] = {
      {0.0f, 0x0},  {0.25f, 0x0}, {0.75f, 0x2}, {1.25f, 0x2}, {1.75f, 0x4},  {2.5f, 0x4},
      {3.5f, 0x6},  {5.0f, 0x6},  {0.5f, 0x1},  {1.0f, 0x2},  {1.5f, 0x3},   {2.0f, 0x4},
      {3.0f, 0x5},  {4.0f, 0x6},  {6.0f, 0x7},  {6.5f, 0x7},  {100.0f, 0x7}, {-0.25f, 0x8},
      {-0.75f, 0xA}, {-3.5f, 0xE}, {-5.0f, 0xE}, {-6.0f, 0xF}, {-0.0f, 0x0},
      {-1e-30f, 0x8}, {-1e-45f, 0x8}, {INFINITY, 0x7}, {-INFINITY, 0xF}, {NAN, 0x7},
      {std::nextafter(0.25f, 1.0f), 0x1}, {std::nextafter(0.75f, 0.0f), 0x1},
      {std::nextafter(5.0f, 9.0f), 0x7}, {std::nextafter(1.75f, 0.0f), 0x3},
  };
  for (const Case& c : cases) EXPECT_EQ(FloatToE2M1(c.v), c.code) << c.v;
}

TEST(E2M1Test, MatchesReferenceAndDecodes) {
  SweepFloats(65537, [&](float x) {
    if (!std::isnan(x)) {
      ASSERT_EQ(FloatToE2M1(x), SlowE2M1(x)) << x;
    }
  });
  const float grid[8] = {0, .5, 1, 1.5, 2, 3, 4, 6};
  for (int c = 0; c < 16; ++c) {
    const float want = (c & 8) ? -grid[c & 7] : grid[c & 7];
    EXPECT_EQ(E2M1ToFloat(static_cast<uint8_t>(c)), want) << c;
    if (c != 8) {
      EXPECT_EQ(FloatToE2M1(want), c);
    }
  }
}

TEST(HalfTest, ConversionsMatchTheCompilersFloat16) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    _Float16 f16;
    const uint16_t bits = static_cast<uint16_t>(h);
    std::memcpy(&f16, &bits, 2);
    const float want = static_cast<float>(f16);
    const float got = HalfBitsToFloat(bits);
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(got)) << h;
    } else {
      ASSERT_EQ(FloatBits(got), FloatBits(want)) << h;
    }
  }
  SweepFloats(8191, [&](float x) {
    if (std::isnan(x)) return;
    const _Float16 want = static_cast<_Float16>(x);
    uint16_t want_bits;
    std::memcpy(&want_bits, &want, 2);
    ASSERT_EQ(FloatToHalfBits(x), want_bits) << x;
  });
}

TEST(BFloat16Test, RoundsToNearestEven) {
  EXPECT_EQ(FloatToBFloat16Bits(1.0f), 0x3F80);
  EXPECT_EQ(FloatToBFloat16Bits(BitsToFloat(0x3F808000)), 0x3F80);  // tie, even stays
  EXPECT_EQ(FloatToBFloat16Bits(BitsToFloat(0x3F818000)), 0x3F82);  // tie, odd rounds up
  EXPECT_EQ(FloatToBFloat16Bits(BitsToFloat(0x3F808001)), 0x3F81);
  EXPECT_EQ(FloatToBFloat16Bits(NAN), 0x7FC0);
  EXPECT_EQ(BFloat16BitsToFloat(0xC040), -3.0f);
}

TEST(ToFloatTest, ConvertsEachDTypeAndRejectsOthers) {
  const std::vector<uint16_t> bf16 = {0x3F80, 0xC040, 0x0000, 0x8000};
  std::vector<float> out(4);
  ASSERT_OK(ToFloat(DType::kBFloat16, AsBytes(bf16), absl::MakeSpan(out)));
  EXPECT_THAT(out, ::testing::ElementsAre(1.0f, -3.0f, 0.0f, -0.0f));
  const std::vector<uint16_t> f16 = {0x3C00, 0xC200, 0x0001, 0x7BFF};
  ASSERT_OK(ToFloat(DType::kFloat16, AsBytes(f16), absl::MakeSpan(out)));
  EXPECT_THAT(out, ::testing::ElementsAre(1.0f, -3.0f, Pow2(-24), 65504.0f));
  const std::vector<float> f32 = {1.5f, -2.0f, 1e-40f, 7.0f};
  ASSERT_OK(ToFloat(DType::kFloat32, AsBytes(f32), absl::MakeSpan(out)));
  EXPECT_EQ(out, f32);

  EXPECT_THAT(ToFloat(DType::kInt32, AsBytes(f32), absl::MakeSpan(out)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("int32")));
  EXPECT_THAT(ToFloat(DType::kFloat8E4M3FN, "ab", absl::MakeSpan(out)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("float8_e4m3fn")));
  EXPECT_THAT(ToFloat(DType::kFloat32, "abc", absl::MakeSpan(out)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ToFloat(DType::kFloat32, AsBytes(f32), absl::MakeSpan(out).subspan(1)),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(AbsMaxTest, EachDTypeAndNaN) {
  const std::vector<float> f32 = {1.0f, -7.5f, 3.0f, -0.0f};
  EXPECT_THAT(AbsMax(DType::kFloat32, AsBytes(f32)), mxport::testing::IsOkAndHolds(7.5f));
  EXPECT_THAT(AbsMax(DType::kBFloat16, AsBytes(ToBFloat16(f32))),
              mxport::testing::IsOkAndHolds(7.5f));
  const std::vector<uint16_t> f16 = {0x3C00, 0xC780 /* -7.5 */, 0x0001};
  EXPECT_THAT(AbsMax(DType::kFloat16, AsBytes(f16)), mxport::testing::IsOkAndHolds(7.5f));
  EXPECT_THAT(AbsMax(DType::kFloat32, ""), mxport::testing::IsOkAndHolds(0.0f));

  std::vector<float> with_inf = f32;
  with_inf.push_back(-INFINITY);
  EXPECT_THAT(AbsMax(DType::kFloat32, AsBytes(with_inf)),
              mxport::testing::IsOkAndHolds(INFINITY));
  std::vector<float> with_nan = with_inf;
  with_nan.insert(with_nan.begin(), BitsToFloat(0xFFC01234));  // a negative NaN with payload
  ASSERT_OK_AND_ASSIGN(const float amax, AbsMax(DType::kFloat32, AsBytes(with_nan)));
  EXPECT_EQ(FloatBits(amax), kCanonicalNanBits);
  const std::vector<uint16_t> f16_nan = {0x3C00, 0xFE01};
  ASSERT_OK_AND_ASSIGN(const float amax16, AbsMax(DType::kFloat16, AsBytes(f16_nan)));
  EXPECT_EQ(FloatBits(amax16), kCanonicalNanBits);
  EXPECT_EQ(FloatBits(CombineAbsMax(amax, 3.0f)), kCanonicalNanBits);
  EXPECT_EQ(CombineAbsMax(2.0f, 3.0f), 3.0f);
}

// ---- NVFP4.

TEST(Nvfp4Test, WorkedExampleOfFormatsMd) {
  std::vector<float> w = {0,    .1f,  -.2f, .25f, .3f, -.5f, .75f, 1,
                          -1.25f, 1.5f, 1.75f, -2, 2.5f, 3,   -3.5f, 6};
  for (int i = 0; i < 16; ++i) w.push_back(0.01f * i);
  ASSERT_OK_AND_ASSIGN(const float amax, AbsMax(DType::kFloat32, AsBytes(w)));
  ASSERT_OK_AND_ASSIGN(const float s2, Nvfp4WeightScale2(amax));
  uint8_t s2_bytes[4];
  std::memcpy(s2_bytes, &s2, 4);
  EXPECT_THAT(s2_bytes, ::testing::ElementsAre(0x25, 0x49, 0x12, 0x3B));

  std::vector<uint8_t> packed(16), scales(2);
  ASSERT_OK(QuantizeNvfp4(DType::kFloat32, AsBytes(w), 32, s2, absl::MakeSpan(packed),
                          absl::MakeSpan(scales)));
  EXPECT_THAT(scales, ::testing::ElementsAre(0x7E, 0x53));
  EXPECT_THAT(packed, ::testing::ElementsAre(0x00, 0x08, 0x91, 0x22, 0x3A, 0xC4, 0x54, 0x7E,  //
                                             0x10, 0x22, 0x43, 0x54, 0x65, 0x66, 0x76, 0x77));
  // The same values as BF16 rows give the same first block (all exact in BF16).
  std::vector<uint8_t> packed_bf16(16), scales_bf16(2);
  ASSERT_OK(QuantizeNvfp4(DType::kBFloat16, AsBytes(ToBFloat16(w)), 16, s2,
                          absl::MakeSpan(packed_bf16), absl::MakeSpan(scales_bf16)));
  EXPECT_EQ(scales_bf16[0], 0x7E);
  EXPECT_TRUE(std::equal(packed.begin(), packed.begin() + 8, packed_bf16.begin()));
}

TEST(Nvfp4Test, ZeroAndTinyBlocks) {
  std::vector<float> w(48, 0.0f);
  w[16] = -0.0f;
  for (int i = 32; i < 48; ++i) w[i] = (i % 2 ? -1e-30f : 1e-30f);
  w[0] = 0.0f;
  std::vector<float> big = w;
  big.insert(big.end(), 16, 0.0f);
  big[48] = 100.0f;  // a fourth block carrying the amax
  ASSERT_OK_AND_ASSIGN(const float s2, Nvfp4WeightScale2(100.0f));
  std::vector<uint8_t> packed(32), scales(4);
  ASSERT_OK(QuantizeNvfp4(DType::kFloat32, AsBytes(big), 64, s2, absl::MakeSpan(packed),
                          absl::MakeSpan(scales)));
  EXPECT_EQ(scales[0], 0x38);  // zero block -> 1.0
  EXPECT_EQ(scales[1], 0x38);  // negative zeros too
  EXPECT_EQ(scales[2], 0x01);  // clamped up to 2^-9
  EXPECT_EQ(scales[3], 0x7E);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(packed[i], 0x00) << i;
  for (int i = 16; i < 24; ++i) EXPECT_EQ(packed[i], 0x80) << i;  // tiny negatives -> 0x8

  // An all-zero tensor: amax 0 maps to maxbound 6, so weight_scale_2 = 1/448.
  ASSERT_OK_AND_ASSIGN(const float s2_zero, Nvfp4WeightScale2(0.0f));
  EXPECT_EQ(s2_zero, 1.0f / 448.0f);
  ASSERT_OK(QuantizeNvfp4(DType::kFloat32, AsBytes(w), 16, s2_zero,
                          absl::MakeSpan(packed).subspan(0, 24), absl::MakeSpan(scales).subspan(0, 3)));
  EXPECT_EQ(scales[0], 0x38);
}

TEST(Nvfp4Test, RejectsBadArguments) {
  const std::vector<float> w(24, 1.0f);
  std::vector<uint8_t> packed(12), scales(1);
  EXPECT_THAT(QuantizeNvfp4(DType::kFloat32, AsBytes(w), 24, 1.0f, absl::MakeSpan(packed),
                            absl::MakeSpan(scales)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("multiple of 16")));
  EXPECT_THAT(QuantizeNvfp4(DType::kInt8, AsBytes(w), 16, 1.0f, absl::MakeSpan(packed),
                            absl::MakeSpan(scales)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("int8")));
  EXPECT_THAT(QuantizeNvfp4(DType::kFloat32, AsBytes(w), 16, 1.0f, absl::MakeSpan(packed),
                            absl::MakeSpan(scales)),
              StatusIs(absl::StatusCode::kInvalidArgument));  // 24 elements: not whole rows
  EXPECT_THAT(Nvfp4WeightScale2(NAN), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Nvfp4WeightScale2(-1.0f), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Nvfp4WeightScale2(INFINITY), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Fp8WeightScale(NAN), StatusIs(absl::StatusCode::kInvalidArgument));
}

// Random data with magnitudes over many decades: tensor quantized whole equals the same rows
// quantized in pieces, and dequantizes within half an E2M1 step of the block scale.
TEST(Nvfp4Test, RowRangesAndErrorBound) {
  std::mt19937_64 rng(7);
  std::normal_distribution<float> normal;
  std::uniform_real_distribution<float> exponent(-20.0f, 10.0f);
  constexpr int64_t kRows = 96, kCols = 256;
  std::vector<float> w(kRows * kCols);
  for (size_t b = 0; b < w.size() / 16; ++b) {
    const float mag = std::exp2(exponent(rng));
    for (int i = 0; i < 16; ++i) w[b * 16 + i] = normal(rng) * mag;
  }
  const std::vector<uint16_t> bf16 = ToBFloat16(w);
  for (DType dtype : {DType::kFloat32, DType::kBFloat16}) {
    const absl::string_view bytes = dtype == DType::kFloat32 ? AsBytes(w) : AsBytes(bf16);
    const int eb = dtype == DType::kFloat32 ? 4 : 2;
    ASSERT_OK_AND_ASSIGN(const float amax, AbsMax(dtype, bytes));
    ASSERT_OK_AND_ASSIGN(const float s2, Nvfp4WeightScale2(amax));
    std::vector<uint8_t> packed(w.size() / 2), scales(w.size() / 16);
    ASSERT_OK(QuantizeNvfp4(dtype, bytes, kCols, s2, absl::MakeSpan(packed),
                            absl::MakeSpan(scales)));
    // Pieces of 1, 7, 40 and 48 rows.
    std::vector<uint8_t> packed2(packed.size()), scales2(scales.size());
    int64_t row = 0;
    for (int64_t n : {1, 7, 40, 48}) {
      ASSERT_OK(QuantizeNvfp4(dtype, bytes.substr(row * kCols * eb, n * kCols * eb), kCols, s2,
                              absl::MakeSpan(packed2).subspan(row * kCols / 2, n * kCols / 2),
                              absl::MakeSpan(scales2).subspan(row * kCols / 16, n * kCols / 16)));
      row += n;
    }
    EXPECT_EQ(packed, packed2);
    EXPECT_EQ(scales, scales2);

    std::vector<float> source(w.size()), deq(w.size());
    ASSERT_OK(ToFloat(dtype, bytes, absl::MakeSpan(source)));
    ASSERT_OK(DequantizeNvfp4(packed, scales, kCols, s2, absl::MakeSpan(deq)));
    for (size_t i = 0; i < w.size(); ++i) {
      const float divisor = Nvfp4BlockDivisor(scales[i / 16], s2);
      const float v = std::fabs(source[i] / divisor);
      // Half the E2M1 step at |v|, or the saturation error above 6.
      const float half_step = v <= 2 ? 0.25f : v <= 4 ? 0.5f : v <= 6 ? 1.0f : v - 6;
      ASSERT_LE(std::fabs(deq[i] - source[i]), divisor * (half_step + 1e-5f) + 1e-38f)
          << i << " w=" << source[i];
    }
  }
}

TEST(ScaleTest, ExportAmaxRulesAndDivision) {
  EXPECT_THAT(Fp8WeightScale(0.0f), mxport::testing::IsOkAndHolds(1.0f));
  EXPECT_THAT(Fp8InputScale(0.0f), mxport::testing::IsOkAndHolds(1.0f));
  EXPECT_THAT(Fp8WeightScale(448.0f), mxport::testing::IsOkAndHolds(1.0f));
  EXPECT_THAT(Nvfp4InputScale(0.0f), mxport::testing::IsOkAndHolds(1.0f / 448.0f));
  EXPECT_THAT(Nvfp4InputScale(2688.0f), mxport::testing::IsOkAndHolds(1.0f));
  // A subnormal amax is raised to FLT_MIN first.
  EXPECT_THAT(Fp8WeightScale(1e-40f),
              mxport::testing::IsOkAndHolds(std::numeric_limits<float>::min() / 448.0f));
  // Reciprocal multiplication differs from division for some amax, never by more than an ulp.
  int differ = 0;
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<float> u(0.0f, 10.0f);
  for (int i = 0; i < 1000; ++i) {
    const float amax = u(rng);
    ASSERT_OK_AND_ASSIGN(const float a, Nvfp4WeightScale2(amax, ScalarDivision::kTrueDivide));
    ASSERT_OK_AND_ASSIGN(const float b,
                         Nvfp4WeightScale2(amax, ScalarDivision::kReciprocalMultiply));
    EXPECT_EQ(b, amax * (1.0f / 2688.0f));
    EXPECT_LE(std::fabs(static_cast<int64_t>(FloatBits(a)) - static_cast<int64_t>(FloatBits(b))),
              1);
    differ += a != b;
  }
  EXPECT_GT(differ, 100);
}

// ---- FP8 per tensor.

TEST(Fp8Test, QuantizesAndDequantizesWithinHalfAStep) {
  std::mt19937_64 rng(11);
  std::normal_distribution<float> normal;
  std::vector<float> w(10000);
  for (float& x : w) x = normal(rng) * 0.03f;
  w[17] = 0.0f;
  w[18] = -0.0f;
  ASSERT_OK_AND_ASSIGN(const float amax, AbsMax(DType::kFloat32, AsBytes(w)));
  ASSERT_OK_AND_ASSIGN(const float scale, Fp8WeightScale(amax));
  std::vector<uint8_t> q(w.size());
  ASSERT_OK(QuantizeFp8(DType::kFloat32, AsBytes(w), scale, absl::MakeSpan(q)));
  EXPECT_EQ(q[17], 0x00);
  EXPECT_EQ(q[18], 0x80);
  int at_max = 0;
  for (uint8_t c : q) at_max += (c & 0x7F) == 0x7E;
  EXPECT_GE(at_max, 1);  // the amax element maps to +-448
  std::vector<float> deq(w.size());
  ASSERT_OK(DequantizeFp8(q, scale, absl::MakeSpan(deq)));
  for (size_t i = 0; i < w.size(); ++i) {
    // Relative step 2^-3 for normals, absolute 2^-9 * scale for subnormals.
    const float bound = std::max(std::fabs(w[i]) * 0.0625f, scale * Pow2(-10)) * 1.0001f;
    ASSERT_LE(std::fabs(deq[i] - w[i]), bound) << i;
  }
  EXPECT_THAT(QuantizeFp8(DType::kFloat32, AsBytes(w), 0.0f, absl::MakeSpan(q)),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(Fp8Test, ViaSourceDTypeRoundsTwice) {
  // The quotient 1.0625 + 2^-12 is past the midpoint of 1.0 and 1.125 (so once: 1.125), but
  // BF16 rounds it onto 1.0625 first, which then ties to even (1.0).
  const float scale = 3.0f;
  const float w = (1.0625f + Pow2(-12)) * scale;
  const std::vector<float> f32 = {w};
  std::vector<uint8_t> once(1), twice(1);
  ASSERT_OK(QuantizeFp8(DType::kFloat32, AsBytes(f32), scale, absl::MakeSpan(once)));
  EXPECT_EQ(once[0], 0x39);
  // As BF16 source, w itself is first rounded to BF16: pick one that is exact in BF16.
  std::mt19937_64 rng(5);
  std::normal_distribution<float> normal;
  std::vector<float> values(20000);
  for (float& x : values) x = BFloat16BitsToFloat(FloatToBFloat16Bits(normal(rng)));
  const std::vector<uint16_t> bf16 = ToBFloat16(values);
  std::vector<uint8_t> a(values.size()), b(values.size()), c(values.size());
  ASSERT_OK(QuantizeFp8(DType::kBFloat16, AsBytes(bf16), 0.01f, absl::MakeSpan(a)));
  ASSERT_OK(QuantizeFp8(DType::kBFloat16, AsBytes(bf16), 0.01f, absl::MakeSpan(b),
                        Fp8Rounding::kViaSourceDType));
  ASSERT_OK(QuantizeFp8(DType::kFloat32, AsBytes(values), 0.01f, absl::MakeSpan(c)));
  EXPECT_EQ(a, c);
  int differ = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    differ += a[i] != b[i];
    EXPECT_EQ(b[i], FloatToE4M3(BFloat16BitsToFloat(FloatToBFloat16Bits(values[i] / 0.01f))));
  }
  EXPECT_GT(differ, 0);
  std::printf("FP8 via BF16 differs from one rounding on %d of %zu values\n", differ, a.size());
}

// ---- Block FP8.

TEST(Fp8BlockTest, TilesAcrossPiecesAndErrorBound) {
  constexpr int64_t kRows = 300, kCols = 260;
  const Fp8BlockShape shape{kRows, kCols};
  ASSERT_EQ(shape.TileRows(), 3);
  ASSERT_EQ(shape.TileCols(), 3);
  std::mt19937_64 rng(13);
  std::normal_distribution<float> normal;
  std::vector<float> w(kRows * kCols);
  for (int64_t r = 0; r < kRows; ++r) {
    for (int64_t c = 0; c < kCols; ++c) {
      const bool zero_tile = r < 128 && c >= 128 && c < 256;
      w[r * kCols + c] = zero_tile ? 0.0f : normal(rng) * std::exp2(-float(r % 20));
    }
  }
  const std::vector<uint16_t> bf16 = ToBFloat16(w);
  const absl::string_view bytes = AsBytes(bf16);

  std::vector<float> whole(shape.GridSize(), 0.0f);
  ASSERT_OK(TileAbsMax(DType::kBFloat16, bytes, shape, 0, absl::MakeSpan(whole)));
  // Two workers with pieces that split tiles (rows [0, 100) and [100, 300)).
  std::vector<float> a(shape.GridSize(), 0.0f), b(shape.GridSize(), 0.0f);
  ASSERT_OK(TileAbsMax(DType::kBFloat16, bytes.substr(0, 100 * kCols * 2), shape, 0,
                       absl::MakeSpan(a)));
  ASSERT_OK(TileAbsMax(DType::kBFloat16, bytes.substr(100 * kCols * 2), shape, 100,
                       absl::MakeSpan(b)));
  ASSERT_OK(MergeTileAbsMax(absl::MakeSpan(a), b));
  EXPECT_EQ(a, whole);
  EXPECT_EQ(whole[1], 0.0f);

  std::vector<float> scale_inv(shape.GridSize());
  ASSERT_OK(Fp8BlockScaleInv(whole, absl::MakeSpan(scale_inv)));
  EXPECT_EQ(scale_inv[1], 1.0f);  // the zero tile
  std::vector<uint8_t> q(w.size()), q2(w.size());
  ASSERT_OK(QuantizeFp8Block(DType::kBFloat16, bytes, shape, 0, scale_inv, absl::MakeSpan(q)));
  ASSERT_OK(QuantizeFp8Block(DType::kBFloat16, bytes.substr(0, 129 * kCols * 2), shape, 0,
                             scale_inv, absl::MakeSpan(q2).subspan(0, 129 * kCols)));
  ASSERT_OK(QuantizeFp8Block(DType::kBFloat16, bytes.substr(129 * kCols * 2), shape, 129,
                             scale_inv, absl::MakeSpan(q2).subspan(129 * kCols)));
  EXPECT_EQ(q, q2);

  std::vector<float> source(w.size()), deq(w.size());
  ASSERT_OK(ToFloat(DType::kBFloat16, bytes, absl::MakeSpan(source)));
  ASSERT_OK(DequantizeFp8Block(q, shape, 0, scale_inv, absl::MakeSpan(deq)));
  for (int64_t r = 0; r < kRows; ++r) {
    for (int64_t c = 0; c < kCols; ++c) {
      const size_t i = r * kCols + c;
      const float s = scale_inv[(r / 128) * 3 + c / 128];
      const float bound = std::max(std::fabs(source[i]) * 0.0625f, s * Pow2(-10)) * 1.0001f;
      ASSERT_LE(std::fabs(deq[i] - source[i]), bound) << r << "," << c;
    }
  }

  EXPECT_THAT(TileAbsMax(DType::kBFloat16, bytes, shape, 1, absl::MakeSpan(a)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("outside")));
  std::vector<float> bad = whole;
  bad[4] = NAN;
  EXPECT_THAT(Fp8BlockScaleInv(bad, absl::MakeSpan(scale_inv)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("tile 4")));
}

// Throughput of the CPU path (the CI path); printed, not asserted.
TEST(QuantSpeedTest, PrintsCpuThroughput) {
  constexpr int64_t kCols = 4096, kRows = 1024;
  std::vector<uint16_t> bf16(kRows * kCols);
  std::mt19937_64 rng(1);
  std::normal_distribution<float> normal;
  for (uint16_t& h : bf16) h = FloatToBFloat16Bits(normal(rng) * 0.02f);
  const absl::string_view bytes = AsBytes(bf16);
  std::vector<uint8_t> packed(bf16.size() / 2), scales(bf16.size() / 16), q(bf16.size());
  const Fp8BlockShape shape{kRows, kCols};
  std::vector<float> grid(shape.GridSize(), 0.0f), scale_inv(shape.GridSize());
  auto time = [&](const char* what, auto fn) {
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_OK(fn());
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%-22s %8.1f MB/s of bf16 input\n", what, bytes.size() / s / 1e6);
  };
  float amax = 0;
  time("abs max", [&] {
    auto r = AbsMax(DType::kBFloat16, bytes);
    if (r.ok()) amax = *r;
    return r.status();
  });
  const float s2 = *Nvfp4WeightScale2(amax);
  time("nvfp4", [&] {
    return QuantizeNvfp4(DType::kBFloat16, bytes, kCols, s2, absl::MakeSpan(packed),
                         absl::MakeSpan(scales));
  });
  time("fp8 per tensor", [&] {
    return QuantizeFp8(DType::kBFloat16, bytes, *Fp8WeightScale(amax), absl::MakeSpan(q));
  });
  time("fp8 tile amax", [&] {
    return TileAbsMax(DType::kBFloat16, bytes, shape, 0, absl::MakeSpan(grid));
  });
  ASSERT_OK(Fp8BlockScaleInv(grid, absl::MakeSpan(scale_inv)));
  time("fp8 block", [&] {
    return QuantizeFp8Block(DType::kBFloat16, bytes, shape, 0, scale_inv, absl::MakeSpan(q));
  });
}

}  // namespace
}  // namespace mxport::quant
