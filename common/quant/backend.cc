#include "common/quant/backend.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"

namespace mxport::quant {
namespace {

// Row r of `src`, columns [begin, end).
absl::string_view SourceSegment(const SourceRows& src, int64_t r, int64_t begin, int64_t end) {
  const size_t elem = ElementBytes(src.dtype);
  return src.bytes.substr(static_cast<size_t>(r * src.stride + begin) * elem,
                          static_cast<size_t>(end - begin) * elem);
}

absl::Span<uint8_t> OutputRow(const OutputRows& out, int64_t r, int64_t width) {
  return out.bytes.subspan(static_cast<size_t>(r * out.stride), static_cast<size_t>(width));
}

// Dense regions (one row after the other, both sides) go through quant.h in one call.
bool Dense(const SourceRows& src, const OutputRows& out, int64_t width) {
  return (src.rows <= 1 || src.stride == src.cols) && (src.rows <= 1 || out.stride == width);
}

class Cpu final : public Backend {
 public:
  absl::string_view name() const override { return "cpu"; }

  absl::Status QuantizeNvfp4(const SourceRows& src, float weight_scale_2, OutputRows packed,
                             OutputRows block_scales) override {
    RETURN_IF_ERROR(CheckSourceRows(src));
    RETURN_IF_ERROR(CheckScale(weight_scale_2, "NVFP4 weight_scale_2"));
    if (src.cols % kNvfp4BlockSize != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("NVFP4 rows of ", src.cols, " elements: not a multiple of 16"));
    }
    const int64_t pw = src.cols / 2, sw = src.cols / kNvfp4BlockSize;
    RETURN_IF_ERROR(CheckOutputRows(packed, src.rows, pw, "NVFP4 packed output"));
    RETURN_IF_ERROR(CheckOutputRows(block_scales, src.rows, sw, "NVFP4 block-scale output"));
    if (src.rows == 0 || src.cols == 0) return absl::OkStatus();
    if (Dense(src, packed, pw) && Dense(src, block_scales, sw)) {
      return quant::QuantizeNvfp4(src.dtype, SourceSegment(src, 0, 0, src.rows * src.cols),
                                  src.cols, weight_scale_2, OutputRow(packed, 0, src.rows * pw),
                                  OutputRow(block_scales, 0, src.rows * sw));
    }
    for (int64_t r = 0; r < src.rows; ++r) {
      RETURN_IF_ERROR(quant::QuantizeNvfp4(src.dtype, SourceSegment(src, r, 0, src.cols),
                                           src.cols, weight_scale_2, OutputRow(packed, r, pw),
                                           OutputRow(block_scales, r, sw)));
    }
    return absl::OkStatus();
  }

  absl::Status QuantizeFp8(const SourceRows& src, float weight_scale, OutputRows out) override {
    RETURN_IF_ERROR(CheckSourceRows(src));
    RETURN_IF_ERROR(CheckScale(weight_scale, "FP8 weight_scale"));
    RETURN_IF_ERROR(CheckOutputRows(out, src.rows, src.cols, "FP8 output"));
    if (src.rows == 0 || src.cols == 0) return absl::OkStatus();
    if (Dense(src, out, src.cols)) {
      return quant::QuantizeFp8(src.dtype, SourceSegment(src, 0, 0, src.rows * src.cols),
                                weight_scale, OutputRow(out, 0, src.rows * src.cols));
    }
    for (int64_t r = 0; r < src.rows; ++r) {
      RETURN_IF_ERROR(quant::QuantizeFp8(src.dtype, SourceSegment(src, r, 0, src.cols),
                                         weight_scale, OutputRow(out, r, src.cols)));
    }
    return absl::OkStatus();
  }

  absl::Status QuantizeFp8Block(const SourceRows& src, const Fp8BlockShape& shape,
                                int64_t row_begin, int64_t col_begin,
                                absl::Span<const float> scale_inv, OutputRows out) override {
    RETURN_IF_ERROR(CheckSourceRows(src));
    RETURN_IF_ERROR(CheckFp8BlockRegion(src, shape, row_begin, col_begin, scale_inv));
    RETURN_IF_ERROR(CheckOutputRows(out, src.rows, src.cols, "block FP8 output"));
    if (src.rows == 0 || src.cols == 0) return absl::OkStatus();
    if (col_begin == 0 && src.cols == shape.cols && Dense(src, out, src.cols)) {
      return quant::QuantizeFp8Block(src.dtype, SourceSegment(src, 0, 0, src.rows * src.cols),
                                     shape, row_begin, scale_inv,
                                     OutputRow(out, 0, src.rows * src.cols));
    }
    // Row by row, one run per tile the row crosses: each run is FP8 with its tile's scale_inv.
    const int64_t end = col_begin + src.cols;
    for (int64_t r = 0; r < src.rows; ++r) {
      const float* tiles = scale_inv.data() + ((row_begin + r) / kFp8BlockTile) * shape.TileCols();
      absl::Span<uint8_t> row = OutputRow(out, r, src.cols);
      for (int64_t c = col_begin; c < end;) {
        const int64_t next = std::min(end, (c / kFp8BlockTile + 1) * kFp8BlockTile);
        RETURN_IF_ERROR(quant::QuantizeFp8(
            src.dtype, SourceSegment(src, r, c - col_begin, next - col_begin),
            tiles[c / kFp8BlockTile],
            row.subspan(static_cast<size_t>(c - col_begin), static_cast<size_t>(next - c))));
        c = next;
      }
    }
    return absl::OkStatus();
  }
};

}  // namespace

Backend& CpuBackend() {
  static Cpu* const cpu = new Cpu();
  return *cpu;
}

absl::Status CheckSourceRows(const SourceRows& src) {
  if (!IsQuantizableSource(src.dtype)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot quantize ", DTypeName(src.dtype), " elements"));
  }
  if (src.rows < 0 || src.cols < 0 || src.stride < src.cols) {
    return absl::InvalidArgumentError(absl::StrCat("bad source region: ", src.rows, " rows of ",
                                                   src.cols, " elements, stride ", src.stride));
  }
  const uint64_t need =
      src.rows == 0 ? 0
                    : static_cast<uint64_t>((src.rows - 1) * src.stride + src.cols) *
                          ElementBytes(src.dtype);
  if (src.bytes.size() < need) {
    return absl::InvalidArgumentError(absl::StrCat("source region of ", src.rows, " rows of ",
                                                   src.cols, " elements (stride ", src.stride,
                                                   ") needs ", need, " bytes, has ",
                                                   src.bytes.size()));
  }
  return absl::OkStatus();
}

absl::Status CheckOutputRows(const OutputRows& out, int64_t rows, int64_t width,
                             absl::string_view what) {
  if (rows > 1 && out.stride < width) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": stride ", out.stride, " is shorter than a row of ", width));
  }
  const uint64_t need = rows <= 0 ? 0 : static_cast<uint64_t>((rows - 1) * out.stride + width);
  if (out.bytes.size() < need) {
    return absl::InvalidArgumentError(absl::StrCat(what, " of ", rows, " rows of ", width,
                                                   " bytes needs ", need, ", has ",
                                                   out.bytes.size()));
  }
  return absl::OkStatus();
}

absl::Status CheckScale(float scale, absl::string_view what) {
  if (!(scale > 0.0f) || std::isinf(scale)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be finite and positive, not ", scale));
  }
  return absl::OkStatus();
}

absl::Status CheckFp8BlockRegion(const SourceRows& src, const Fp8BlockShape& shape,
                                 int64_t row_begin, int64_t col_begin,
                                 absl::Span<const float> scale_inv) {
  if (shape.rows < 0 || shape.cols < 0 || row_begin < 0 || col_begin < 0 ||
      row_begin + src.rows > shape.rows || col_begin + src.cols > shape.cols) {
    return absl::InvalidArgumentError(absl::StrCat(
        "block FP8 region [", row_begin, ", +", src.rows, ") x [", col_begin, ", +", src.cols,
        ") lies outside the [", shape.rows, ", ", shape.cols, "] tensor"));
  }
  if (static_cast<int64_t>(scale_inv.size()) != shape.GridSize()) {
    return absl::InvalidArgumentError(absl::StrCat("block FP8 scale_inv grid has ",
                                                   scale_inv.size(), " values, expected ",
                                                   shape.GridSize()));
  }
  for (size_t i = 0; i < scale_inv.size(); ++i) {
    if (!(scale_inv[i] > 0.0f) || std::isinf(scale_inv[i])) {
      return absl::InvalidArgumentError(absl::StrCat("block FP8 scale_inv of tile ", i,
                                                     " must be finite and positive, not ",
                                                     scale_inv[i]));
    }
  }
  return absl::OkStatus();
}

}  // namespace mxport::quant
