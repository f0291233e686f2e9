// QuantizeChunk, ScatterQuantized and ScaleTensorBytes: the write pass of a quantized plan. The
// scales come from the statistics here; the codes of whole NVFP4 blocks and of FP8 elements
// from a quant::Backend (the CPU unless the caller names another); NVFP4 blocks a chunk cuts
// are quantized here with their amax from the statistics.
#include <algorithm>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "common/base/status_macros.h"
#include "common/export/local_executor.h"
#include "common/export/quantize_internal.h"
#include "common/export/quantize_plan.h"
#include "common/quant/backend.h"
#include "common/quant/quant.h"

namespace mxport::exporter {
namespace {

using quant_internal::IsNvfp4;
using quant_internal::kBlock;
using quant_internal::RoundDown;
using quant_internal::RoundUp;
using quant_internal::ScalesPerRow;
using quant_internal::Segment;

absl::Status Annotate(const absl::Status& s, absl::string_view name) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(name, ": ", s.message()));
}

// The finished statistics of the weight of `t` (itself a weight or one of its scales).
absl::StatusOr<const QuantStats::Weight*> WeightStats(const ExportPlan& plan,
                                                      const QuantStats& stats,
                                                      const HfTensor& t) {
  if (!stats.finished()) {
    return absl::FailedPreconditionError(
        absl::StrCat(t.name, ": the quantization statistics are not finished"));
  }
  auto it = stats.weights().find(t.quant_weight);
  if (it == stats.weights().end()) {
    return absl::FailedPreconditionError(
        absl::StrCat(t.name, ": no quantization statistics for ",
                     plan.tensors[t.quant_weight].name));
  }
  return &it->second;
}

absl::StatusOr<float> WeightScale2(const HfTensor& t, const QuantStats::Weight& w) {
  auto s2 = quant::Nvfp4WeightScale2(w.amax);
  if (!s2.ok()) return Annotate(s2.status(), t.name);
  return *s2;
}

absl::StatusOr<std::vector<float>> ScaleInvGrid(const HfTensor& t, const QuantStats::Weight& w) {
  std::vector<float> grid(w.tiles.size());
  RETURN_IF_ERROR(Annotate(quant::Fp8BlockScaleInv(w.tiles, absl::MakeSpan(grid)), t.name));
  return grid;
}

// Quantizes the elements of one block that the chunk holds only partly (row r, tensor columns
// [lo, hi)), with the block's amax from the statistics; writes hi - lo codes packed into
// `packed` and returns the block scale code.
absl::StatusOr<uint8_t> QuantizeCutBlock(const HfTensor& t, const QuantStats::Weight& w,
                                         float s2, absl::string_view source, int64_t row,
                                         int64_t lo, uint8_t* packed) {
  auto cut = w.cut_blocks.find(lo / kBlock);
  if (cut == w.cut_blocks.end() || row >= static_cast<int64_t>(cut->second.size())) {
    return absl::FailedPreconditionError(absl::StrCat(
        t.name, ": no statistics for the cut block at column ", RoundDown(lo, kBlock)));
  }
  const uint8_t code =
      quant::Nvfp4BlockScaleCode(cut->second[row], quant::Nvfp4SixTimesScale2(s2));
  const float divisor = quant::Nvfp4BlockDivisor(code, s2);
  float values[kBlock];
  const size_t n = source.size() / ElementBytes(t.source_dtype);
  RETURN_IF_ERROR(quant::ToFloat(t.source_dtype, source, absl::MakeSpan(values, n)));
  for (size_t i = 0; i < n; i += 2) {
    packed[i / 2] = static_cast<uint8_t>(quant::Nvfp4Code(values[i], divisor) |
                                         (quant::Nvfp4Code(values[i + 1], divisor) << 4));
  }
  return code;
}

// The chunk's columns [begin, end) of every row, as a region of its source rows.
quant::SourceRows Region(const HfTensor& t, const Piece& chunk, absl::string_view rows,
                         int64_t begin, int64_t end) {
  const size_t elem = ElementBytes(t.source_dtype);
  return {t.source_dtype,
          rows.substr(std::min(rows.size(),
                               static_cast<size_t>(chunk.src_col + begin - chunk.dst_col) * elem)),
          chunk.rows, end - begin, chunk.src_cols};
}

absl::Span<uint8_t> Tail(std::string& out, size_t offset) {
  return absl::MakeSpan(reinterpret_cast<uint8_t*>(out.data()) + offset, out.size() - offset);
}

absl::StatusOr<std::string> QuantizeNvfp4Chunk(const HfTensor& t, const QuantStats::Weight& w,
                                               const Piece& chunk, absl::string_view rows,
                                               quant::Backend& backend) {
  ASSIGN_OR_RETURN(const float s2, WeightScale2(t, w));
  const size_t elem = ElementBytes(t.source_dtype);
  const int64_t begin = chunk.dst_col, end = chunk.dst_col + chunk.cols;
  const int64_t packed_row = chunk.cols / 2, scales_row = ScalesPerRow(chunk);
  std::string out(static_cast<size_t>(chunk.rows * (packed_row + scales_row)), '\0');
  // Per row: a cut head block, whole blocks, a cut tail block (it owns its scale). The whole
  // blocks of every row go to the backend at once; cut blocks (a few bytes) stay here.
  const int64_t head_end = std::min(end, RoundUp(begin, kBlock));
  const int64_t tail_begin = std::max(head_end, RoundDown(end, kBlock));
  const size_t scales_at = static_cast<size_t>(chunk.rows * packed_row);
  if (head_end < tail_begin && chunk.rows > 0) {
    RETURN_IF_ERROR(Annotate(
        backend.QuantizeNvfp4(Region(t, chunk, rows, head_end, tail_begin), s2,
                              {Tail(out, static_cast<size_t>(head_end - begin) / 2), packed_row},
                              {Tail(out, scales_at), scales_row}),
        t.name));
  }
  if (begin == head_end && tail_begin == end) return out;
  uint8_t* data = reinterpret_cast<uint8_t*>(out.data());
  for (int64_t r = 0; r < chunk.rows; ++r) {
    uint8_t* packed = data + r * packed_row;
    const int64_t row = chunk.dst_row + r;
    if (begin < head_end) {
      RETURN_IF_ERROR(QuantizeCutBlock(t, w, s2, Segment(chunk, rows, elem, r, begin, head_end),
                                       row, begin, packed)
                          .status());
    }
    if (tail_begin < end) {
      ASSIGN_OR_RETURN(data[scales_at + r * scales_row + scales_row - 1],
                       QuantizeCutBlock(t, w, s2, Segment(chunk, rows, elem, r, tail_begin, end),
                                        row, tail_begin, packed + (tail_begin - begin) / 2));
    }
  }
  return out;
}

absl::StatusOr<std::string> QuantizeFp8BlockChunk(const HfTensor& t, const QuantStats::Weight& w,
                                                  const Piece& chunk, absl::string_view rows,
                                                  quant::Backend& backend) {
  ASSIGN_OR_RETURN(const std::vector<float> scale_inv, ScaleInvGrid(t, w));
  std::string out(static_cast<size_t>(chunk.rows * chunk.cols), '\0');
  RETURN_IF_ERROR(Annotate(
      backend.QuantizeFp8Block(Region(t, chunk, rows, chunk.dst_col, chunk.dst_col + chunk.cols),
                               quant::Fp8BlockShape{t.rows(), t.source_cols}, chunk.dst_row,
                               chunk.dst_col, scale_inv, {Tail(out, 0), chunk.cols}),
      t.name));
  return out;
}

absl::StatusOr<std::string> QuantizeFp8Chunk(const HfTensor& t, const QuantStats::Weight& w,
                                             const Piece& chunk, absl::string_view rows,
                                             quant::Backend& backend) {
  auto scale = quant::Fp8WeightScale(w.amax);
  if (!scale.ok()) return Annotate(scale.status(), t.name);
  std::string out(static_cast<size_t>(chunk.rows * chunk.cols), '\0');
  RETURN_IF_ERROR(Annotate(
      backend.QuantizeFp8(Region(t, chunk, rows, chunk.dst_col, chunk.dst_col + chunk.cols),
                          *scale, {Tail(out, 0), chunk.cols}),
      t.name));
  return out;
}

// The scalar of a kWeightScale2 tensor (HfTensor::scalar).
absl::StatusOr<float> ScalarValue(const HfTensor& t, const QuantStats::Weight& w) {
  absl::StatusOr<float> v;
  switch (t.scalar) {
    case ScalarScale::kWeightScale2: return WeightScale2(t, w);
    case ScalarScale::kWeightScale: v = quant::Fp8WeightScale(w.amax); break;
    case ScalarScale::kInputScale:
      if (!w.input_amax.has_value()) {
        return absl::FailedPreconditionError(absl::StrCat(t.name, ": no input amax"));
      }
      v = IsNvfp4(t.quant) ? quant::Nvfp4InputScale(*w.input_amax)
                           : quant::Fp8InputScale(*w.input_amax);
      break;
  }
  if (!v.ok()) return Annotate(v.status(), t.name);
  return *v;
}

// The kBlockScales tensor of weight `w`: laid out right after it (ApplyQuantization).
absl::StatusOr<int> BlockScalesOf(const ExportPlan& plan, int w) {
  for (size_t i = w + 1; i < plan.tensors.size() && plan.tensors[i].quant_weight == w; ++i) {
    if (plan.tensors[i].quant_part == QuantPart::kBlockScales) return static_cast<int>(i);
  }
  return absl::FailedPreconditionError(
      absl::StrCat(plan.tensors[w].name, " has no block-scale tensor after it in the plan"));
}

// Writes `rows` runs of `run` bytes from `src` (stride `run`) at `offset` + r * `stride`.
absl::Status WriteRuns(const TensorWriteFn& write, int tensor, absl::string_view src,
                       int64_t rows, uint64_t run, uint64_t offset, uint64_t stride) {
  if (run == 0) return absl::OkStatus();
  if (run == stride) return write(tensor, offset, src.substr(0, rows * run));
  for (int64_t r = 0; r < rows; ++r) {
    RETURN_IF_ERROR(write(tensor, offset + r * stride, src.substr(r * run, run)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> QuantizeChunk(const ExportPlan& plan, const QuantStats& stats,
                                          const Piece& chunk, absl::string_view rows,
                                          quant::Backend* backend) {
  RETURN_IF_ERROR(quant_internal::CheckChunk(plan, chunk, rows));
  const HfTensor& t = plan.tensors[chunk.tensor];
  if (t.quant_part == QuantPart::kNone) return std::string(rows);
  if (t.quant_part != QuantPart::kWeight) {
    return absl::InvalidArgumentError(
        absl::StrCat(t.name, " has no pieces: it is computed from the statistics"));
  }
  ASSIGN_OR_RETURN(const QuantStats::Weight* w, WeightStats(plan, stats, t));
  quant::Backend& b = backend != nullptr ? *backend : quant::CpuBackend();
  if (IsNvfp4(t.quant)) return QuantizeNvfp4Chunk(t, *w, chunk, rows, b);
  if (t.quant == QuantAlgo::kFp8Block) return QuantizeFp8BlockChunk(t, *w, chunk, rows, b);
  if (t.quant == QuantAlgo::kFp8) return QuantizeFp8Chunk(t, *w, chunk, rows, b);
  return absl::UnimplementedError(
      absl::StrCat(t.name, ": ", GetQuantAlgoInfo(t.quant).name, " weights are not computed"));
}

absl::Status ScatterQuantized(const ExportPlan& plan, const Piece& chunk, absl::string_view bytes,
                              const TensorWriteFn& write) {
  if (chunk.tensor < 0 || chunk.tensor >= static_cast<int>(plan.tensors.size())) {
    return absl::InvalidArgumentError(absl::StrCat("chunk names tensor ", chunk.tensor));
  }
  const HfTensor& t = plan.tensors[chunk.tensor];
  if (t.quant_part == QuantPart::kNone) {
    return ScatterPiece(chunk, t, bytes, [&](uint64_t offset, absl::string_view b) {
      return write(chunk.tensor, offset, b);
    });
  }
  if (t.quant_part != QuantPart::kWeight) {
    return absl::InvalidArgumentError(
        absl::StrCat(t.name, " has no pieces: it is computed from the statistics"));
  }
  const bool nvfp4 = IsNvfp4(t.quant);
  const uint64_t packed_run = nvfp4 ? chunk.cols / 2 : chunk.cols;
  const uint64_t scales_run = nvfp4 ? ScalesPerRow(chunk) : 0;
  if (bytes.size() != chunk.rows * (packed_run + scales_run)) {
    return absl::InternalError(absl::StrCat("quantized chunk of ", t.name, " has ", bytes.size(),
                                            " bytes, expected ",
                                            chunk.rows * (packed_run + scales_run)));
  }
  const uint64_t row_bytes = nvfp4 ? t.source_cols / 2 : t.source_cols;
  const uint64_t col_byte = nvfp4 ? chunk.dst_col / 2 : chunk.dst_col;
  RETURN_IF_ERROR(WriteRuns(write, chunk.tensor, bytes, chunk.rows, packed_run,
                            chunk.dst_row * row_bytes + col_byte, row_bytes));
  if (!nvfp4 || scales_run == 0) return absl::OkStatus();
  ASSIGN_OR_RETURN(const int scales, BlockScalesOf(plan, chunk.tensor));
  const uint64_t scale_row_bytes = t.source_cols / kBlock;
  return WriteRuns(write, scales, bytes.substr(chunk.rows * packed_run), chunk.rows, scales_run,
                   chunk.dst_row * scale_row_bytes + RoundUp(chunk.dst_col, kBlock) / kBlock,
                   scale_row_bytes);
}

absl::StatusOr<std::string> ScaleTensorBytes(const ExportPlan& plan, const QuantStats& stats,
                                             int tensor) {
  if (tensor < 0 || tensor >= static_cast<int>(plan.tensors.size())) {
    return absl::InvalidArgumentError(absl::StrCat("no tensor ", tensor));
  }
  const HfTensor& t = plan.tensors[tensor];
  if (t.quant_part != QuantPart::kWeightScale2 && t.quant_part != QuantPart::kScaleInv) {
    return absl::InvalidArgumentError(
        absl::StrCat(t.name, " is not computed from the statistics alone"));
  }
  ASSIGN_OR_RETURN(const QuantStats::Weight* w, WeightStats(plan, stats, t));
  std::vector<float> values;
  if (t.quant_part != QuantPart::kScaleInv) {
    ASSIGN_OR_RETURN(const float scale, ScalarValue(t, *w));
    values.push_back(scale);
  } else {
    ASSIGN_OR_RETURN(values, ScaleInvGrid(t, *w));
  }
  if (values.size() * sizeof(float) != t.bytes) {
    return absl::InternalError(absl::StrCat(t.name, ": ", values.size(), " values for ", t.bytes,
                                            " bytes"));
  }
  std::string out(t.bytes, '\0');
  std::memcpy(out.data(), values.data(), out.size());  // little-endian hosts only
  return out;
}

}  // namespace mxport::exporter
