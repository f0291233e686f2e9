// Helpers shared by quant_stats.cc and quantize_chunk.cc (not part of the module's API): chunk
// validation and access to a chunk's row segments. A chunk's `rows` are full source rows
// (chunk.rows x chunk.src_cols elements); its region in the tensor is
// [dst_row, +rows) x [dst_col, +cols) in the tensor's piece element space.
#ifndef MXPORT_COMMON_EXPORT_QUANTIZE_INTERNAL_H_
#define MXPORT_COMMON_EXPORT_QUANTIZE_INTERNAL_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/base/dtype.h"
#include "common/export/plan.h"
#include "common/quant/codec.h"

namespace mxport::exporter::quant_internal {

inline constexpr int64_t kBlock = quant::kNvfp4BlockSize;
inline constexpr int64_t kTile = quant::kFp8BlockTile;

inline bool IsNvfp4(QuantAlgo algo) {
  return algo == QuantAlgo::kNvfp4 || algo == QuantAlgo::kW4A16Nvfp4;
}

// The name with its routed-expert index replaced by '*' ("...mlp.experts.*.up_proj.weight",
// Mixtral "...experts.*.w3.weight"); unchanged when it names no expert.
inline std::string ExpertPattern(absl::string_view name) {
  const size_t at = name.find(".experts.");
  if (at == absl::string_view::npos) return std::string(name);
  const size_t begin = at + 9;
  size_t end = begin;
  while (end < name.size() && name[end] >= '0' && name[end] <= '9') ++end;
  if (end == begin || end == name.size() || name[end] != '.') return std::string(name);
  return absl::StrCat(name.substr(0, begin), "*", name.substr(end));
}

inline int64_t RoundUp(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
inline int64_t RoundDown(int64_t x, int64_t m) { return x / m * m; }

// The chunk's tensor index is valid, its region lies in the tensor and its source, and `rows`
// holds exactly its source rows.
inline absl::Status CheckChunk(const ExportPlan& plan, const Piece& chunk,
                               absl::string_view rows) {
  if (chunk.tensor < 0 || chunk.tensor >= static_cast<int>(plan.tensors.size())) {
    return absl::InvalidArgumentError(absl::StrCat("chunk names tensor ", chunk.tensor));
  }
  const HfTensor& t = plan.tensors[chunk.tensor];
  if (chunk.rows < 0 || chunk.cols < 0 || chunk.dst_row < 0 || chunk.dst_col < 0 ||
      chunk.src_col < 0 || chunk.dst_row + chunk.rows > t.rows() ||
      chunk.dst_col + chunk.cols > t.piece_cols() || chunk.src_col + chunk.cols > chunk.src_cols) {
    return absl::InvalidArgumentError(
        absl::StrCat("a chunk of ", t.name, " (key '", chunk.key, "') lies outside it"));
  }
  const uint64_t want = static_cast<uint64_t>(chunk.rows) * static_cast<uint64_t>(chunk.src_cols) *
                        ElementBytes(t.piece_dtype());
  if (rows.size() != want) {
    return absl::InternalError(absl::StrCat("chunk of ", t.name, " has ", rows.size(),
                                            " bytes, expected ", want));
  }
  return absl::OkStatus();
}

// Source bytes of chunk row r (0-based), tensor columns [begin, end).
inline absl::string_view Segment(const Piece& chunk, absl::string_view rows, size_t elem,
                                 int64_t r, int64_t begin, int64_t end) {
  const int64_t first = r * chunk.src_cols + chunk.src_col + (begin - chunk.dst_col);
  return rows.substr(static_cast<size_t>(first) * elem, static_cast<size_t>(end - begin) * elem);
}

// Number of NVFP4 block scales a chunk writes per row: the blocks whose first column lies in it.
inline int64_t ScalesPerRow(const Piece& chunk) {
  return RoundUp(chunk.dst_col + chunk.cols, kBlock) / kBlock - RoundUp(chunk.dst_col, kBlock) /
                                                                    kBlock;
}

}  // namespace mxport::exporter::quant_internal

#endif  // MXPORT_COMMON_EXPORT_QUANTIZE_INTERNAL_H_
