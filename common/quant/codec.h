// Scalar number codecs for quantized export, written once for the CPU library
// (common/quant/quant.h) and the CUDA kernels (worker/cuda/quant_kernels.cu) so that both
// produce the same bytes: FP8 E4M3FN and FP4 E2M1 encode/decode, BF16/F16 <-> F32, and the
// per-block scale steps of NVFP4 and block FP8.
//
// Exactness. Every function is integer work on IEEE-754 bit patterns, f32 operations rounded
// to nearest-even one at a time through QuantDiv / QuantMul / QuantAdd, or (on the device) a
// round-to-nearest-even cvt instruction (below). Under nvcc the three operations are
// __fdiv_rn / __fmul_rn / __fadd_rn: never contracted into an FMA and never the approximate
// division of --use_fast_math. On the host they are the plain operators; x86-64 SSE arithmetic
// has no excess precision and the library is compiled with -ffp-contract=off (and
// -fno-trapping-math, which lets loops vectorise and changes no value). Subnormal f32
// values are honoured on both sides: neither side may be built with flush-to-zero (-ftz=true,
// --use_fast_math, -ffast-math).
//
// NaN. Encoders are total. FloatToE4M3(NaN) is 0x7F whatever the sign (PyTorch keeps the sign:
// -NaN -> 0xFF; both are NaN in E4M3FN). FloatToE2M1(NaN) is 0x7, as ModelOpt's searchsorted
// puts NaN after every bound. Amax values are non-negative floats or the canonical NaN
// 0x7FC00000, so they order (and max-reduce) as unsigned integers.
//
// Hardware conversions. On devices of compute capability 8.9 and up, FloatToE4M3 and the
// BF16/F16 roundings before it use the cvt instructions, which are several times cheaper; the
// ...Portable functions keep the reference definitions, and VerifyDeviceCodecs
// (worker/cuda/quant_kernels.h) proves the two equal on every one of the 2^32 f32 inputs.
//
// No allocation, no state, no CUDA headers (only the __CUDACC__ / __CUDA_ARCH__ macros and
// inline PTX): safe from any thread and from device code. C++17 so nvcc can compile it.
#ifndef MXPORT_COMMON_QUANT_CODEC_H_
#define MXPORT_COMMON_QUANT_CODEC_H_

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define MXPORT_QUANT_HD __host__ __device__ __forceinline__
#else
#define MXPORT_QUANT_HD inline
#endif

namespace mxport::quant {

inline constexpr float kE4M3Max = 448.0f;           // largest finite E4M3FN value (0x7E)
inline constexpr float kE2M1Max = 6.0f;             // largest E2M1 magnitude (code 7)
inline constexpr float kNvfp4ScaleMin = 0.001953125f;  // 2^-9: smallest E4M3 subnormal
inline constexpr int kNvfp4BlockSize = 16;          // elements per NVFP4 block scale
inline constexpr int kFp8BlockTile = 128;           // block FP8 tile edge (DeepSeek-V3)
inline constexpr uint32_t kCanonicalNanBits = 0x7FC00000u;
inline constexpr uint32_t kInfBits = 0x7F800000u;

// ---- Bits and correctly rounded f32 arithmetic.

MXPORT_QUANT_HD uint32_t FloatBits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
#endif
}

MXPORT_QUANT_HD float BitsToFloat(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
#endif
}

MXPORT_QUANT_HD float QuantDiv(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}

MXPORT_QUANT_HD float QuantMul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

MXPORT_QUANT_HD float QuantAdd(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}

// ---- Amax bookkeeping: |x| as bits, NaN made canonical, max-combine.

// |x| as bits: orders like |x| for every non-NaN x, and every NaN sorts above +Inf.
MXPORT_QUANT_HD uint32_t AbsBits(float x) { return FloatBits(x) & 0x7FFFFFFFu; }

MXPORT_QUANT_HD uint32_t CanonicalAmaxBits(uint32_t abs_bits) {
  return abs_bits > kInfBits ? kCanonicalNanBits : abs_bits;
}

// max(|a|, |b|) of two amax values, NaN-propagating (the result is then the canonical NaN).
MXPORT_QUANT_HD float CombineAbsMax(float a, float b) {
  const uint32_t x = AbsBits(a);
  const uint32_t y = AbsBits(b);
  return BitsToFloat(CanonicalAmaxBits(x > y ? x : y));
}

// ---- Source element types to f32 (exact).

MXPORT_QUANT_HD float BFloat16BitsToFloat(uint16_t h) {
  return BitsToFloat(static_cast<uint32_t>(h) << 16);
}

// IEEE half to float, exact; the same construction as PyTorch's c10 fp16_ieee_to_fp32_value
// (normal values rebias through a power-of-two multiply, subnormals through a magic subtract),
// so a signalling NaN comes back quiet, as in PyTorch.
MXPORT_QUANT_HD float HalfBitsToFloat(uint16_t h) {
  const uint32_t w = static_cast<uint32_t>(h) << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t two_w = w + w;
  const float normalized = QuantMul(BitsToFloat((two_w >> 4) + (0xE0u << 23)),
                                    BitsToFloat(0x07800000u));  // 2^-112
  const float denormalized = QuantAdd(BitsToFloat((two_w >> 17) | (126u << 23)), -0.5f);
  const uint32_t magnitude =
      two_w < (1u << 27) ? FloatBits(denormalized) : FloatBits(normalized);
  return BitsToFloat(sign | magnitude);
}

// Round-to-nearest-even right shift of a significand by r (1 <= r <= 31).
MXPORT_QUANT_HD uint32_t ShiftRightRne(uint32_t sig, uint32_t r) {
  const uint32_t q = sig >> r;
  const uint32_t rem = sig & ((1u << r) - 1u);
  const uint32_t half = 1u << (r - 1u);
  return q + ((rem > half || (rem == half && (q & 1u))) ? 1u : 0u);
}

// f32 -> bf16 bits, round to nearest even; NaN -> 0x7FC0 with the sign (PyTorch's rule).
MXPORT_QUANT_HD uint16_t FloatToBFloat16Bits(float f) {
  const uint32_t u = FloatBits(f);
  const uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
  const uint32_t nan = ((u >> 16) & 0x8000u) | 0x7FC0u;
  return static_cast<uint16_t>((u & 0x7FFFFFFFu) > kInfBits ? nan : rounded);
}

// f32 -> IEEE half bits, round to nearest even (overflow to Inf, subnormals rounded);
// NaN -> 0x7E00 with the sign (PyTorch's rule).
MXPORT_QUANT_HD uint16_t FloatToHalfBits(float f) {
  const uint32_t u = FloatBits(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t a = u & 0x7FFFFFFFu;
  if (a > kInfBits) return static_cast<uint16_t>(sign | 0x7E00u);
  if (a >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // >= 65520 rounds to Inf
  if (a >= 0x38800000u) {                                              // >= 2^-14: normal half
    const uint32_t t = a - (112u << 23);
    return static_cast<uint16_t>(sign | ((t + 0xFFFu + ((t >> 13) & 1u)) >> 13));
  }
  if (a <= 0x33000000u) return static_cast<uint16_t>(sign);  // <= 2^-25 rounds to zero
  // Subnormal half k * 2^-24: k = RNE(significand * 2^(E - 126)).
  const uint32_t e = a >> 23;
  const uint32_t sig = (a & 0x7FFFFFu) | 0x800000u;
  return static_cast<uint16_t>(sign | ShiftRightRne(sig, 126u - e));
}

// ---- FP8 E4M3FN.

// Clamp to +-448, then round to nearest even (subnormals included: 2^-10 -> 0x00, a tie to even).
// Identical to PyTorch's x.clamp(-448, 448).to(torch.float8_e4m3fn) except that every NaN gives
// 0x7F. The portable definition, written as selects so the compiler can vectorise it.
MXPORT_QUANT_HD uint8_t FloatToE4M3Portable(float x) {
  const uint32_t u = FloatBits(x);
  const uint32_t sign = (u >> 24) & 0x80u;
  const uint32_t a = u & 0x7FFFFFFFu;
  // Normal range [2^-6, 448): rebias the exponent (127 -> 7) and round 20 mantissa bits off.
  const uint32_t t = a - (120u << 23);
  const uint32_t normal = (t + 0x7FFFFu + ((t >> 20) & 1u)) >> 20;
  // Below 2^-6: adding 2^14 leaves an f32 whose last mantissa bit is worth 2^-9, the E4M3
  // subnormal step, so the f32 addition itself rounds |x| to the nearest even multiple of 2^-9.
  const uint32_t subnormal =
      FloatBits(QuantAdd(BitsToFloat(a < 0x3C800000u ? a : 0u), 16384.0f)) - (141u << 23);
  uint32_t code = a >= 0x3C800000u ? normal : subnormal;
  code = a >= 0x43E00000u ? 0x7Eu : code;  // >= 448 (Inf too) saturates
  code |= sign;
  return static_cast<uint8_t>(a > kInfBits ? 0x7Fu : code);
}

// FloatToE4M3Portable; on devices of compute capability 8.9 and up one
// cvt.rn.satfinite.e4m3x2.f32 instruction (round to nearest even, saturating to +-448) with NaN
// made 0x7F. VerifyDeviceCodecs (worker/cuda/quant_kernels.h) checks the device form against
// the portable one on all 2^32 inputs.
MXPORT_QUANT_HD uint8_t FloatToE4M3(float x) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  unsigned short pair;
  asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(pair) : "f"(0.0f), "f"(x));
  return x != x ? 0x7Fu : static_cast<uint8_t>(pair & 0xFFu);
#else
  return FloatToE4M3Portable(x);
#endif
}

MXPORT_QUANT_HD float E4M3ToFloat(uint8_t code) {
  const uint32_t sign = static_cast<uint32_t>(code & 0x80u) << 24;
  const uint32_t e = (code >> 3) & 0xFu;
  const uint32_t m = code & 0x7u;
  if (e == 0xFu && m == 0x7u) return BitsToFloat(sign | kCanonicalNanBits);
  if (e == 0u) {
    // m * 2^-9, exact.
    return BitsToFloat(sign | FloatBits(QuantMul(static_cast<float>(m), kNvfp4ScaleMin)));
  }
  return BitsToFloat(sign | ((e + 120u) << 23) | (m << 20));
}

// ---- FP4 E2M1 (sign bit 3; magnitudes 0, .5, 1, 1.5, 2, 3, 4, 6).

// ModelOpt's _cast_fp4 (NVFP4QTensor): the index is the number of bounds
// {.25,.75,1.25,1.75,2.5,3.5,5} below |v|, plus one when |v| is exactly .75, 1.75 or 3.5, i.e.
// round half to even on the grid, saturating at 6; NaN sorts past every bound (code 7). The
// sign bit is v < 0, so tiny negatives give 0x8 and -0 (or -NaN) gives 0x0.
// Computed here as a rounding of the f32 bits (fewer operations than seven comparisons; equal
// to the comparison form on all 2^32 inputs, checked exhaustively):
//   |v| >= 1: rebias the exponent so that 1.0 is code 2, drop 22 mantissa bits to nearest even
//             (a carry moves into the exponent), saturate at code 7 (Inf and NaN land there);
//   |v| <  1: adding 2^22 leaves an f32 whose last mantissa bit is worth 0.5, the E2M1 step
//             below 1, so the addition rounds |v| to 0, 0.5 or 1 (codes 0, 1, 2), ties to even.
MXPORT_QUANT_HD uint8_t FloatToE2M1(float v) {
  const uint32_t a = AbsBits(v);
  const uint32_t t = a - (126u << 23);
  uint32_t normal = (t + 0x1FFFFFu + ((t >> 22) & 1u)) >> 22;
  normal = normal < 7u ? normal : 7u;
  const uint32_t small =
      FloatBits(QuantAdd(BitsToFloat(a < 0x3F800000u ? a : 0u), 4194304.0f)) - (149u << 23);
  const uint32_t idx = a < 0x3F800000u ? small : normal;
  return static_cast<uint8_t>((v < 0.0f ? 8u : 0u) | idx);
}

MXPORT_QUANT_HD float E2M1ToFloat(uint8_t code) {
  const uint32_t e = (code >> 1) & 0x3u;
  const uint32_t m = code & 0x1u;
  // e == 0: m * 0.5 (0 or 0.5); otherwise 2^(e-1) * (1 + m/2). All exact.
  const float magnitude =
      e == 0u ? (m != 0u ? 0.5f : 0.0f)
              : BitsToFloat(((e + 126u) << 23) | (m << 22));
  return (code & 0x8u) != 0u ? -magnitude : magnitude;
}

// ---- NVFP4 (ModelOpt NVFP4QTensor) per-block steps.

// The E4M3 block scale of a 16-element block, ModelOpt's NVFP4QTensor.get_weights_scaling_factor
// (NVIDIA/Model-Optimizer modelopt/torch/quantization/qtensor/nvfp4_tensor.py, read at commit
// 211c6b3; the dynamic path, which the export takes for a weight quantizer without a static
// global_amax):
//   s = block_amax / (6 * weight_scale_2)     (the product rounded to f32 first: pass it in)
//   s == 0 -> 1.0                             (zero blocks)
//   s = clamp(s, min=2^-9)                    ("so tiny-amax blocks don't underflow to 0")
//   weight_scale = s.to(float8_e4m3fn)
// ModelOpt clamps only the lower end; its cast maps (448, 464] to 448 and larger values to
// NaN. FloatToE4M3 saturates at 448 instead, which gives the same byte whenever block_amax does
// not exceed the global amax (then s <= 448 up to rounding). A NaN s stays NaN through the
// clamp, as in torch.clamp, and encodes as 0x7F.
MXPORT_QUANT_HD uint8_t Nvfp4BlockScaleCode(float block_amax, float six_times_scale_2) {
  float s = QuantDiv(block_amax, six_times_scale_2);
  s = s == 0.0f ? 1.0f : s;
  s = s < kNvfp4ScaleMin ? kNvfp4ScaleMin : s;
  return FloatToE4M3(s);
}

// 6 * weight_scale_2 in f32, as ModelOpt's `6.0 * weights_scaling_factor_2` rounds it.
MXPORT_QUANT_HD float Nvfp4SixTimesScale2(float weight_scale_2) {
  return QuantMul(6.0f, weight_scale_2);
}

// The divisor of a block's values: float(weight_scale) * weight_scale_2 rounded to f32
// (ModelOpt divides by the product, once, not by each factor in turn).
MXPORT_QUANT_HD float Nvfp4BlockDivisor(uint8_t scale_code, float weight_scale_2) {
  return QuantMul(E4M3ToFloat(scale_code), weight_scale_2);
}

MXPORT_QUANT_HD uint8_t Nvfp4Code(float w, float block_divisor) {
  return FloatToE2M1(QuantDiv(w, block_divisor));
}

// ---- Block FP8 (DeepSeek-V3 weight_scale_inv).

// scale_inv = tile_amax / 448; a tile whose scale is 0 (all zeros, or an amax so small that the
// quotient underflows), NaN or Inf gets 1.0 so that no division by zero or Inf reaches the
// values. (The host API reports non-finite tile amax as an error before it gets here.)
MXPORT_QUANT_HD float Fp8BlockScaleInvFromAmax(float tile_amax) {
  const float s = QuantDiv(tile_amax, kE4M3Max);
  return (s > 0.0f && s <= 3.40282347e+38f) ? s : 1.0f;
}

// ---- FP8 of a scaled value: e4m3(clamp(w / scale)).

MXPORT_QUANT_HD uint8_t Fp8Code(float w, float scale) { return FloatToE4M3(QuantDiv(w, scale)); }

// E4M3 of q after rounding it to BF16 (resp. F16) first. Portable forms, then the device forms:
// cvt.rn.bf16.f32 / cvt.rn.f16.f32 (round to nearest even; NaN stays NaN, with another payload,
// which FloatToE4M3 maps to 0x7F anyway), checked by VerifyDeviceCodecs on all 2^32 inputs.
MXPORT_QUANT_HD uint8_t E4M3OfBFloat16RoundedPortable(float q) {
  return FloatToE4M3Portable(BFloat16BitsToFloat(FloatToBFloat16Bits(q)));
}
MXPORT_QUANT_HD uint8_t E4M3OfHalfRoundedPortable(float q) {
  return FloatToE4M3Portable(HalfBitsToFloat(FloatToHalfBits(q)));
}
MXPORT_QUANT_HD uint8_t E4M3OfBFloat16Rounded(float q) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  unsigned short h;
  asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(q));
  return FloatToE4M3(BFloat16BitsToFloat(h));
#else
  return E4M3OfBFloat16RoundedPortable(q);
#endif
}
MXPORT_QUANT_HD uint8_t E4M3OfHalfRounded(float q) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  unsigned short h;
  float f;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(q));
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return FloatToE4M3(f);
#else
  return E4M3OfHalfRoundedPortable(q);
#endif
}

// ModelOpt's `(weight / weight_scale).to(torch.float8_e4m3fn)` on a bf16 (or f16) weight: the
// quotient is computed in f32 and rounded to the weight's dtype before the cast (PyTorch's CPU
// div_true_kernel for a reduced-float tensor and a 0-dim f32 tensor), a double rounding.
MXPORT_QUANT_HD uint8_t Fp8CodeViaBFloat16(float w, float scale) {
  return E4M3OfBFloat16Rounded(QuantDiv(w, scale));
}
MXPORT_QUANT_HD uint8_t Fp8CodeViaHalf(float w, float scale) {
  return E4M3OfHalfRounded(QuantDiv(w, scale));
}

}  // namespace mxport::quant

#endif  // MXPORT_COMMON_QUANT_CODEC_H_
