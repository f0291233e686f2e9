#include "common/quant/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"

namespace mxport::quant {
namespace {

// ---- Source element types. Loads go through memcpy: the bytes may be unaligned.

struct BFloat16Source {
  static constexpr int kBytes = 2;
  static float Load(const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, sizeof(h));
    return BFloat16BitsToFloat(h);
  }
  static uint8_t Fp8ViaSource(float w, float scale) { return Fp8CodeViaBFloat16(w, scale); }
};

struct HalfSource {
  static constexpr int kBytes = 2;
  static float Load(const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, sizeof(h));
    return HalfBitsToFloat(h);
  }
  static uint8_t Fp8ViaSource(float w, float scale) { return Fp8CodeViaHalf(w, scale); }
};

struct Float32Source {
  static constexpr int kBytes = 4;
  static float Load(const uint8_t* p) {
    float f;
    std::memcpy(&f, p, sizeof(f));
    return f;
  }
  static uint8_t Fp8ViaSource(float w, float scale) { return Fp8Code(w, scale); }
};

// ---- Loops, one instantiation per source type. Plain indexed loops over fixed-size blocks so
// the compiler vectorises them.

template <typename S>
void ToFloatLoop(const uint8_t* src, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = S::Load(src + i * S::kBytes);
}

// Max of AbsBits over n elements (not yet canonical).
template <typename S>
uint32_t AbsMaxBitsLoop(const uint8_t* src, size_t n) {
  uint32_t m = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t k = AbsBits(S::Load(src + i * S::kBytes));
    m = k > m ? k : m;
  }
  return m;
}

template <typename S>
void TileAbsMaxLoop(const uint8_t* src, int64_t num_rows, int64_t cols, int64_t row_begin,
                    int64_t tile_cols, float* grid) {
  const size_t row_bytes = static_cast<size_t>(cols) * S::kBytes;
  for (int64_t r = 0; r < num_rows; ++r) {
    const uint8_t* row = src + static_cast<size_t>(r) * row_bytes;
    float* cells = grid + ((row_begin + r) / kFp8BlockTile) * tile_cols;
    for (int64_t tc = 0; tc < tile_cols; ++tc) {
      const int64_t c0 = tc * kFp8BlockTile;
      const int64_t width = std::min<int64_t>(kFp8BlockTile, cols - c0);
      const uint32_t m = AbsMaxBitsLoop<S>(row + c0 * S::kBytes, static_cast<size_t>(width));
      cells[tc] = CombineAbsMax(cells[tc], BitsToFloat(CanonicalAmaxBits(m)));
    }
  }
}

// Works through chunks of 64 blocks so that each stage is one long loop: convert, block
// scales, codes, packing.
template <typename S>
void Nvfp4Loop(const uint8_t* src, size_t blocks, float weight_scale_2, uint8_t* packed,
               uint8_t* scales) {
  constexpr size_t kChunkBlocks = 64;
  constexpr size_t kChunk = kChunkBlocks * kNvfp4BlockSize;
  const float six_s2 = Nvfp4SixTimesScale2(weight_scale_2);
  float w[kChunk];
  float divisor[kChunk];
  uint8_t codes[kChunk];
  for (size_t b0 = 0; b0 < blocks; b0 += kChunkBlocks) {
    const size_t nb = std::min(kChunkBlocks, blocks - b0);
    const size_t n = nb * kNvfp4BlockSize;
    ToFloatLoop<S>(src + b0 * kNvfp4BlockSize * S::kBytes, n, w);
    for (size_t b = 0; b < nb; ++b) {
      uint32_t m = 0;
      for (int i = 0; i < kNvfp4BlockSize; ++i) {
        const uint32_t k = AbsBits(w[b * kNvfp4BlockSize + i]);
        m = k > m ? k : m;
      }
      const uint8_t scale = Nvfp4BlockScaleCode(BitsToFloat(m), six_s2);
      scales[b0 + b] = scale;
      const float d = Nvfp4BlockDivisor(scale, weight_scale_2);
      for (int i = 0; i < kNvfp4BlockSize; ++i) divisor[b * kNvfp4BlockSize + i] = d;
    }
    for (size_t i = 0; i < n; ++i) codes[i] = Nvfp4Code(w[i], divisor[i]);
    uint8_t* out = packed + b0 * (kNvfp4BlockSize / 2);
    for (size_t i = 0; i < n / 2; ++i) {
      out[i] = static_cast<uint8_t>(codes[2 * i] | (codes[2 * i + 1] << 4));
    }
  }
}

template <typename S>
void Fp8OnceLoop(const uint8_t* src, size_t n, float scale, uint8_t* out) {
  for (size_t i = 0; i < n; ++i) out[i] = Fp8Code(S::Load(src + i * S::kBytes), scale);
}

template <typename S>
void Fp8ViaSourceLoop(const uint8_t* src, size_t n, float scale, uint8_t* out) {
  for (size_t i = 0; i < n; ++i) out[i] = S::Fp8ViaSource(S::Load(src + i * S::kBytes), scale);
}

template <typename S>
void Fp8BlockLoop(const uint8_t* src, int64_t num_rows, int64_t cols, int64_t row_begin,
                  int64_t tile_cols, const float* scale_inv, uint8_t* out) {
  const size_t row_bytes = static_cast<size_t>(cols) * S::kBytes;
  for (int64_t r = 0; r < num_rows; ++r) {
    const uint8_t* row = src + static_cast<size_t>(r) * row_bytes;
    uint8_t* q = out + static_cast<size_t>(r) * cols;
    const float* scales = scale_inv + ((row_begin + r) / kFp8BlockTile) * tile_cols;
    for (int64_t tc = 0; tc < tile_cols; ++tc) {
      const int64_t c0 = tc * kFp8BlockTile;
      const int64_t width = std::min<int64_t>(kFp8BlockTile, cols - c0);
      Fp8OnceLoop<S>(row + c0 * S::kBytes, static_cast<size_t>(width), scales[tc], q + c0);
    }
  }
}

// One row per source dtype: the whole dispatch.
struct SourceOps {
  DType dtype;
  int element_bytes;
  void (*to_float)(const uint8_t*, size_t, float*);
  uint32_t (*abs_max_bits)(const uint8_t*, size_t);
  void (*tile_abs_max)(const uint8_t*, int64_t, int64_t, int64_t, int64_t, float*);
  void (*nvfp4)(const uint8_t*, size_t, float, uint8_t*, uint8_t*);
  void (*fp8_once)(const uint8_t*, size_t, float, uint8_t*);
  void (*fp8_via_source)(const uint8_t*, size_t, float, uint8_t*);
  void (*fp8_block)(const uint8_t*, int64_t, int64_t, int64_t, int64_t, const float*, uint8_t*);
};

template <typename S>
constexpr SourceOps MakeOps(DType dtype) {
  return {dtype,           S::kBytes,           &ToFloatLoop<S>,      &AbsMaxBitsLoop<S>,
          &TileAbsMaxLoop<S>, &Nvfp4Loop<S>,    &Fp8OnceLoop<S>,      &Fp8ViaSourceLoop<S>,
          &Fp8BlockLoop<S>};
}

constexpr SourceOps kSources[] = {
    MakeOps<BFloat16Source>(DType::kBFloat16),
    MakeOps<HalfSource>(DType::kFloat16),
    MakeOps<Float32Source>(DType::kFloat32),
};

const SourceOps* FindOps(DType dtype) {
  for (const SourceOps& ops : kSources) {
    if (ops.dtype == dtype) return &ops;
  }
  return nullptr;
}

absl::StatusOr<const SourceOps*> SourceFor(DType dtype) {
  const SourceOps* ops = FindOps(dtype);
  if (ops == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "quantization reads bfloat16, float16 or float32 elements, not ", DTypeName(dtype)));
  }
  return ops;
}

const uint8_t* Bytes(absl::string_view bytes) {
  return reinterpret_cast<const uint8_t*>(bytes.data());
}

// Number of whole elements in `bytes`.
absl::StatusOr<size_t> ElementCount(const SourceOps& ops, absl::string_view bytes) {
  if (bytes.size() % ops.element_bytes != 0) {
    return absl::InvalidArgumentError(absl::StrCat(bytes.size(), " bytes are not whole ",
                                                   DTypeName(ops.dtype), " elements"));
  }
  return bytes.size() / ops.element_bytes;
}

// Number of whole rows of `cols` elements in `bytes`.
absl::StatusOr<int64_t> RowCount(const SourceOps& ops, absl::string_view bytes, int64_t cols) {
  if (cols <= 0) return absl::InvalidArgumentError(absl::StrCat("cols must be positive, not ", cols));
  ASSIGN_OR_RETURN(const size_t n, ElementCount(ops, bytes));
  if (n % static_cast<size_t>(cols) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(n, " elements are not whole rows of ", cols, " columns"));
  }
  return static_cast<int64_t>(n / static_cast<size_t>(cols));
}

absl::Status CheckSize(absl::string_view what, size_t got, size_t want) {
  if (got != want) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " holds ", got, " entries; ", want, " are needed"));
  }
  return absl::OkStatus();
}

absl::Status CheckShape(const Fp8BlockShape& shape) {
  if (shape.rows < 0 || shape.cols <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad block FP8 shape [", shape.rows, ", ", shape.cols, "]"));
  }
  return absl::OkStatus();
}

absl::Status CheckRowRange(const Fp8BlockShape& shape, int64_t row_begin, int64_t num_rows) {
  if (row_begin < 0 || row_begin > shape.rows || num_rows > shape.rows - row_begin) {
    return absl::InvalidArgumentError(absl::StrCat("rows [", row_begin, ", ", row_begin + num_rows,
                                                   ") are outside a tensor of ", shape.rows,
                                                   " rows"));
  }
  return absl::OkStatus();
}

// TensorQuantizer.export_amax: 0 -> maxbound, then clamp to [FLT_MIN, FLT_MAX]. Negative, NaN
// and infinite values are errors here.
absl::StatusOr<float> ExportAmax(float amax, float maxbound, absl::string_view what) {
  if (!(amax >= 0.0f) || std::isinf(amax)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be finite and non-negative, not ", amax));
  }
  if (amax == 0.0f) return maxbound;
  return std::max(amax, std::numeric_limits<float>::min());
}

float DivideScalar(float amax, float divisor, ScalarDivision division) {
  if (division == ScalarDivision::kReciprocalMultiply) {
    return QuantMul(amax, QuantDiv(1.0f, divisor));
  }
  return QuantDiv(amax, divisor);
}

constexpr float kNvfp4GlobalDivisor = kE2M1Max * kE4M3Max;  // 2688, exact

}  // namespace

bool IsQuantizableSource(DType dtype) { return FindOps(dtype) != nullptr; }

absl::Status ToFloat(DType dtype, absl::string_view bytes, absl::Span<float> out) {
  ASSIGN_OR_RETURN(const SourceOps* ops, SourceFor(dtype));
  ASSIGN_OR_RETURN(const size_t n, ElementCount(*ops, bytes));
  RETURN_IF_ERROR(CheckSize("float output", out.size(), n));
  ops->to_float(Bytes(bytes), n, out.data());
  return absl::OkStatus();
}

absl::StatusOr<float> AbsMax(DType dtype, absl::string_view bytes) {
  ASSIGN_OR_RETURN(const SourceOps* ops, SourceFor(dtype));
  ASSIGN_OR_RETURN(const size_t n, ElementCount(*ops, bytes));
  return BitsToFloat(CanonicalAmaxBits(ops->abs_max_bits(Bytes(bytes), n)));
}

absl::Status TileAbsMax(DType dtype, absl::string_view bytes, const Fp8BlockShape& shape,
                        int64_t row_begin, absl::Span<float> grid) {
  ASSIGN_OR_RETURN(const SourceOps* ops, SourceFor(dtype));
  RETURN_IF_ERROR(CheckShape(shape));
  ASSIGN_OR_RETURN(const int64_t num_rows, RowCount(*ops, bytes, shape.cols));
  RETURN_IF_ERROR(CheckRowRange(shape, row_begin, num_rows));
  RETURN_IF_ERROR(CheckSize("tile amax grid", grid.size(), static_cast<size_t>(shape.GridSize())));
  ops->tile_abs_max(Bytes(bytes), num_rows, shape.cols, row_begin, shape.TileCols(), grid.data());
  return absl::OkStatus();
}

absl::Status MergeTileAbsMax(absl::Span<float> into, absl::Span<const float> from) {
  RETURN_IF_ERROR(CheckSize("tile amax grid", from.size(), into.size()));
  for (size_t i = 0; i < into.size(); ++i) into[i] = CombineAbsMax(into[i], from[i]);
  return absl::OkStatus();
}

absl::StatusOr<float> Nvfp4WeightScale2(float global_amax, ScalarDivision division) {
  ASSIGN_OR_RETURN(const float amax, ExportAmax(global_amax, kE2M1Max, "NVFP4 weight amax"));
  return DivideScalar(amax, kNvfp4GlobalDivisor, division);
}

absl::StatusOr<float> Nvfp4InputScale(float act_amax, ScalarDivision division) {
  ASSIGN_OR_RETURN(const float amax, ExportAmax(act_amax, kE2M1Max, "NVFP4 activation amax"));
  return DivideScalar(amax, kNvfp4GlobalDivisor, division);
}

absl::StatusOr<float> Fp8WeightScale(float amax, ScalarDivision division) {
  ASSIGN_OR_RETURN(const float a, ExportAmax(amax, kE4M3Max, "FP8 weight amax"));
  return DivideScalar(a, kE4M3Max, division);
}

absl::StatusOr<float> Fp8InputScale(float act_amax, ScalarDivision division) {
  ASSIGN_OR_RETURN(const float a, ExportAmax(act_amax, kE4M3Max, "FP8 activation amax"));
  return DivideScalar(a, kE4M3Max, division);
}

absl::Status Fp8BlockScaleInv(absl::Span<const float> tile_amax, absl::Span<float> scale_inv) {
  RETURN_IF_ERROR(CheckSize("scale_inv grid", scale_inv.size(), tile_amax.size()));
  for (size_t i = 0; i < tile_amax.size(); ++i) {
    if (!(tile_amax[i] >= 0.0f) || std::isinf(tile_amax[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tile ", i, " has amax ", tile_amax[i], ": the tile holds non-finite values"));
    }
  }
  for (size_t i = 0; i < tile_amax.size(); ++i) {
    scale_inv[i] = Fp8BlockScaleInvFromAmax(tile_amax[i]);
  }
  return absl::OkStatus();
}

absl::Status QuantizeNvfp4(DType dtype, absl::string_view bytes, int64_t cols,
                           float weight_scale_2, absl::Span<uint8_t> packed,
                           absl::Span<uint8_t> block_scales) {
  ASSIGN_OR_RETURN(const SourceOps* ops, SourceFor(dtype));
  if (cols <= 0 || cols % kNvfp4BlockSize != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "NVFP4 needs the input dimension to be a multiple of ", kNvfp4BlockSize, ", not ", cols));
  }
  if (!(weight_scale_2 > 0.0f) || std::isinf(weight_scale_2)) {
    return absl::InvalidArgumentError(
        absl::StrCat("NVFP4 weight_scale_2 must be finite and positive, not ", weight_scale_2));
  }
  ASSIGN_OR_RETURN(const int64_t rows, RowCount(*ops, bytes, cols));
  const size_t elements = static_cast<size_t>(rows) * static_cast<size_t>(cols);
  RETURN_IF_ERROR(CheckSize("NVFP4 packed output", packed.size(), elements / 2));
  RETURN_IF_ERROR(CheckSize("NVFP4 block scales", block_scales.size(), elements / kNvfp4BlockSize));
  ops->nvfp4(Bytes(bytes), elements / kNvfp4BlockSize, weight_scale_2, packed.data(),
             block_scales.data());
  return absl::OkStatus();
}

absl::Status DequantizeNvfp4(absl::Span<const uint8_t> packed,
                             absl::Span<const uint8_t> block_scales, int64_t cols,
                             float weight_scale_2, absl::Span<float> out) {
  if (cols <= 0 || cols % kNvfp4BlockSize != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "NVFP4 needs the input dimension to be a multiple of ", kNvfp4BlockSize, ", not ", cols));
  }
  RETURN_IF_ERROR(CheckSize("float output", out.size(), packed.size() * 2));
  RETURN_IF_ERROR(CheckSize("NVFP4 block scales", block_scales.size(),
                            out.size() / kNvfp4BlockSize));
  for (size_t b = 0; b < block_scales.size(); ++b) {
    const float block_scale = Nvfp4BlockDivisor(block_scales[b], weight_scale_2);
    for (int i = 0; i < kNvfp4BlockSize; ++i) {
      const size_t e = b * kNvfp4BlockSize + i;
      const uint8_t byte = packed[e / 2];
      const uint8_t code = (e % 2 == 0) ? (byte & 0xF) : (byte >> 4);
      out[e] = QuantMul(E2M1ToFloat(code), block_scale);
    }
  }
  return absl::OkStatus();
}

absl::Status QuantizeFp8(DType dtype, absl::string_view bytes, float weight_scale,
                         absl::Span<uint8_t> out, Fp8Rounding rounding) {
  ASSIGN_OR_RETURN(const SourceOps* ops, SourceFor(dtype));
  if (!(weight_scale > 0.0f) || std::isinf(weight_scale)) {
    return absl::InvalidArgumentError(
        absl::StrCat("FP8 weight_scale must be finite and positive, not ", weight_scale));
  }
  ASSIGN_OR_RETURN(const size_t n, ElementCount(*ops, bytes));
  RETURN_IF_ERROR(CheckSize("FP8 output", out.size(), n));
  if (rounding == Fp8Rounding::kViaSourceDType) {
    ops->fp8_via_source(Bytes(bytes), n, weight_scale, out.data());
  } else {
    ops->fp8_once(Bytes(bytes), n, weight_scale, out.data());
  }
  return absl::OkStatus();
}

absl::Status DequantizeFp8(absl::Span<const uint8_t> q, float weight_scale,
                           absl::Span<float> out) {
  RETURN_IF_ERROR(CheckSize("float output", out.size(), q.size()));
  for (size_t i = 0; i < q.size(); ++i) out[i] = QuantMul(E4M3ToFloat(q[i]), weight_scale);
  return absl::OkStatus();
}

absl::Status QuantizeFp8Block(DType dtype, absl::string_view bytes, const Fp8BlockShape& shape,
                              int64_t row_begin, absl::Span<const float> scale_inv,
                              absl::Span<uint8_t> out) {
  ASSIGN_OR_RETURN(const SourceOps* ops, SourceFor(dtype));
  RETURN_IF_ERROR(CheckShape(shape));
  ASSIGN_OR_RETURN(const int64_t num_rows, RowCount(*ops, bytes, shape.cols));
  RETURN_IF_ERROR(CheckRowRange(shape, row_begin, num_rows));
  RETURN_IF_ERROR(
      CheckSize("scale_inv grid", scale_inv.size(), static_cast<size_t>(shape.GridSize())));
  RETURN_IF_ERROR(CheckSize("FP8 output", out.size(),
                            static_cast<size_t>(num_rows) * static_cast<size_t>(shape.cols)));
  ops->fp8_block(Bytes(bytes), num_rows, shape.cols, row_begin, shape.TileCols(),
                 scale_inv.data(), out.data());
  return absl::OkStatus();
}

absl::Status DequantizeFp8Block(absl::Span<const uint8_t> q, const Fp8BlockShape& shape,
                                int64_t row_begin, absl::Span<const float> scale_inv,
                                absl::Span<float> out) {
  RETURN_IF_ERROR(CheckShape(shape));
  if (q.size() % static_cast<size_t>(shape.cols) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(q.size(), " bytes are not whole rows of ", shape.cols, " columns"));
  }
  const int64_t num_rows = static_cast<int64_t>(q.size() / static_cast<size_t>(shape.cols));
  RETURN_IF_ERROR(CheckRowRange(shape, row_begin, num_rows));
  RETURN_IF_ERROR(
      CheckSize("scale_inv grid", scale_inv.size(), static_cast<size_t>(shape.GridSize())));
  RETURN_IF_ERROR(CheckSize("float output", out.size(), q.size()));
  for (int64_t r = 0; r < num_rows; ++r) {
    const float* scales = scale_inv.data() + ((row_begin + r) / kFp8BlockTile) * shape.TileCols();
    for (int64_t c = 0; c < shape.cols; ++c) {
      const size_t i = static_cast<size_t>(r * shape.cols + c);
      out[i] = QuantMul(E4M3ToFloat(q[i]), scales[c / kFp8BlockTile]);
    }
  }
  return absl::OkStatus();
}

}  // namespace mxport::quant
