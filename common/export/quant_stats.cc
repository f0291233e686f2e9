// QuantStats: accumulation, merging, the fused-sibling max, and the wire form.
//
// Wire form (little-endian): "MXQS", u32 version 2, u8 finished, u8 checkpoint read, u32 weight
// count, then per weight in tensor order: i32 tensor, f32 amax, u64 elements, u32 tile count,
// f32 tiles..., u32 cut block count, per cut block: i64 block column, u32 rows, f32 amax per
// row; then u8 flags (1: checkpoint amax, 2: input amax), f32 checkpoint amax, f32 input amax.
#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/export/quantize_internal.h"
#include "common/export/quantize_plan.h"
#include "common/quant/quant.h"

namespace mxport::exporter {
namespace {

using quant_internal::kBlock;
using quant_internal::kTile;
using quant_internal::Segment;

constexpr absl::string_view kMagic = "MXQS";
constexpr uint32_t kVersion = 2;

template <typename T>
void Put(std::string& out, T value) {
  char buf[sizeof(T)];
  std::memcpy(buf, &value, sizeof(T));
  out.append(buf, sizeof(T));
}

class Cursor {
 public:
  explicit Cursor(absl::string_view bytes) : rest_(bytes) {}
  template <typename T>
  absl::StatusOr<T> Get() {
    if (rest_.size() < sizeof(T)) {
      return absl::InvalidArgumentError("quantization statistics are truncated");
    }
    T value;
    std::memcpy(&value, rest_.data(), sizeof(T));
    rest_.remove_prefix(sizeof(T));
    return value;
  }
  absl::StatusOr<std::vector<float>> Floats() {
    ASSIGN_OR_RETURN(const uint32_t n, Get<uint32_t>());
    if (rest_.size() / sizeof(float) < n) {
      return absl::InvalidArgumentError("quantization statistics are truncated");
    }
    std::vector<float> v(n);
    std::memcpy(v.data(), rest_.data(), n * sizeof(float));
    rest_.remove_prefix(n * sizeof(float));
    return v;
  }
  bool done() const { return rest_.empty(); }

 private:
  absl::string_view rest_;
};

void PutFloats(std::string& out, const std::vector<float>& v) {
  Put<uint32_t>(out, static_cast<uint32_t>(v.size()));
  out.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

absl::Status CombineInto(std::vector<float>& into, const std::vector<float>& from,
                         absl::string_view what) {
  if (into.empty()) {
    into = from;
    return absl::OkStatus();
  }
  if (from.empty()) return absl::OkStatus();
  if (into.size() != from.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("quantization statistics disagree on the size of a ", what));
  }
  for (size_t i = 0; i < into.size(); ++i) into[i] = quant::CombineAbsMax(into[i], from[i]);
  return absl::OkStatus();
}

// amax of row r's columns [begin, end), folded into `into`.
absl::Status FoldAbsMax(DType dtype, const Piece& chunk, absl::string_view rows, int64_t r,
                        int64_t begin, int64_t end, float& into) {
  ASSIGN_OR_RETURN(const float m, quant::AbsMax(dtype, Segment(chunk, rows, ElementBytes(dtype),
                                                                 r, begin, end)));
  into = quant::CombineAbsMax(into, m);
  return absl::OkStatus();
}

void CombineOptional(std::optional<float>& into, const std::optional<float>& from) {
  if (!from.has_value()) return;
  into = into.has_value() ? quant::CombineAbsMax(*into, *from) : *from;
}

// The plan takes amax from the checkpoint (modes checkpoint, checkpoint_fp8; nvfp4 and fp8 their
// activation amax).
bool UsesCheckpointAmax(const ExportPlan& plan) {
  return !plan.amax_sources.empty() && IsQuantized(plan);
}

}  // namespace

absl::Status QuantStats::ReadCheckpointAmax(const ExportPlan& plan, SourceReader& reader) {
  std::map<std::string, int> weight_index;
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    if (plan.tensors[i].quant_part == QuantPart::kWeight) {
      weight_index.emplace(plan.tensors[i].name, static_cast<int>(i));
    }
  }
  for (const AmaxSource& a : plan.amax_sources) {
    Piece p;
    p.source = a.source;
    p.vp = a.vp;
    p.key = a.key;
    p.src_rows = p.src_cols = p.rows = p.cols = 1;
    ASSIGN_OR_RETURN(const std::string bytes, reader.ReadRows(p));
    if (bytes.size() != static_cast<size_t>(ElementBytes(a.dtype))) {
      return absl::InvalidArgumentError(absl::StrCat(
          plan.sources[a.source].dir_name, ": '", a.key, "' is not a ", DTypeName(a.dtype),
          " scalar"));
    }
    ASSIGN_OR_RETURN(const float amax, quant::AbsMax(a.dtype, bytes));
    for (const std::string& name : a.weights) {
      auto it = weight_index.find(name);
      if (it == weight_index.end()) continue;  // not quantized (excluded)
      Weight& w = weights_[it->second];
      CombineOptional(a.input ? w.input_amax : w.checkpoint_amax, amax);
    }
  }
  checkpoint_read_ = true;
  finished_ = false;
  return absl::OkStatus();
}

absl::Status QuantStats::Accumulate(const ExportPlan& plan, const Piece& chunk,
                                    absl::string_view rows) {
  RETURN_IF_ERROR(quant_internal::CheckChunk(plan, chunk, rows));
  const HfTensor& t = plan.tensors[chunk.tensor];
  if (t.quant_part != QuantPart::kWeight) return absl::OkStatus();
  finished_ = false;
  const DType dtype = t.source_dtype;
  const int64_t end = chunk.dst_col + chunk.cols;
  Weight& w = weights_[chunk.tensor];
  w.elements += static_cast<uint64_t>(chunk.rows) * static_cast<uint64_t>(chunk.cols);
  if (chunk.rows == 0 || chunk.cols == 0) return absl::OkStatus();
  const bool whole_rows = chunk.src_col == 0 && chunk.cols == chunk.src_cols;
  if (whole_rows) {
    ASSIGN_OR_RETURN(const float m, quant::AbsMax(dtype, rows));
    w.amax = quant::CombineAbsMax(w.amax, m);
  } else {
    for (int64_t r = 0; r < chunk.rows; ++r) {
      RETURN_IF_ERROR(FoldAbsMax(dtype, chunk, rows, r, chunk.dst_col, end, w.amax));
    }
  }
  if (t.quant == QuantAlgo::kFp8Block) {
    const quant::Fp8BlockShape shape{t.rows(), t.source_cols};
    if (w.tiles.empty()) w.tiles.assign(shape.GridSize(), 0.0f);
    if (whole_rows && chunk.cols == t.source_cols) {
      return quant::TileAbsMax(dtype, rows, shape, chunk.dst_row, absl::MakeSpan(w.tiles));
    }
    for (int64_t r = 0; r < chunk.rows; ++r) {
      float* cells = w.tiles.data() + ((chunk.dst_row + r) / kTile) * shape.TileCols();
      for (int64_t c = chunk.dst_col; c < end;) {
        const int64_t next = std::min(end, quant_internal::RoundDown(c, kTile) + kTile);
        RETURN_IF_ERROR(FoldAbsMax(dtype, chunk, rows, r, c, next, cells[c / kTile]));
        c = next;
      }
    }
  } else if (quant_internal::IsNvfp4(t.quant)) {
    // Blocks this chunk covers partly: at most the first and the last.
    for (const int64_t b : {chunk.dst_col / kBlock, (end - 1) / kBlock}) {
      const int64_t lo = std::max(chunk.dst_col, b * kBlock);
      const int64_t hi = std::min(end, b * kBlock + kBlock);
      if (hi - lo == kBlock) continue;
      std::vector<float>& cut = w.cut_blocks[b];
      if (cut.empty()) cut.assign(t.rows(), 0.0f);
      for (int64_t r = 0; r < chunk.rows; ++r) {
        RETURN_IF_ERROR(FoldAbsMax(dtype, chunk, rows, r, lo, hi, cut[chunk.dst_row + r]));
      }
      if (chunk.dst_col / kBlock == (end - 1) / kBlock) break;  // one block: done once
    }
  }
  return absl::OkStatus();
}

absl::Status QuantStats::Merge(const QuantStats& other) {
  finished_ = false;
  for (const auto& [tensor, from] : other.weights_) {
    auto [it, inserted] = weights_.try_emplace(tensor, from);
    if (inserted) continue;
    Weight& into = it->second;
    into.amax = quant::CombineAbsMax(into.amax, from.amax);
    into.elements += from.elements;
    RETURN_IF_ERROR(CombineInto(into.tiles, from.tiles, "tile grid"));
    for (const auto& [block, amax] : from.cut_blocks) {
      RETURN_IF_ERROR(CombineInto(into.cut_blocks[block], amax, "cut block column"));
    }
    CombineOptional(into.checkpoint_amax, from.checkpoint_amax);
    CombineOptional(into.input_amax, from.input_amax);
  }
  checkpoint_read_ |= other.checkpoint_read_;
  return absl::OkStatus();
}

absl::Status QuantStats::Finish(const ExportPlan& plan, SourceReader* reader) {
  const bool from_checkpoint = UsesCheckpointAmax(plan);
  if (from_checkpoint && !checkpoint_read_) {
    if (reader == nullptr) {
      return absl::FailedPreconditionError(
          "the plan quantizes with the checkpoint's amax, which were not read (pass a "
          "SourceReader to Finish or call ReadCheckpointAmax)");
    }
    RETURN_IF_ERROR(ReadCheckpointAmax(plan, *reader));
  }
  std::map<int, float> group_amax;
  for (const auto& [tensor, w] : weights_) {
    if (tensor < 0 || tensor >= static_cast<int>(plan.tensors.size()) ||
        plan.tensors[tensor].quant_part != QuantPart::kWeight) {
      return absl::FailedPreconditionError(absl::StrCat(
          "quantization statistics name tensor ", tensor, ", not a quantized weight of the plan"));
    }
  }
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    const HfTensor& t = plan.tensors[i];
    if (t.quant_part != QuantPart::kWeight) continue;
    auto it = weights_.find(static_cast<int>(i));
    const uint64_t want = static_cast<uint64_t>(t.rows()) * static_cast<uint64_t>(t.source_cols);
    const uint64_t have = it == weights_.end() ? 0 : it->second.elements;
    if (have != want) {
      return absl::FailedPreconditionError(absl::StrCat(
          "quantization statistics of ", t.name, " cover ", have, " of its ", want,
          " elements (a chunk was ", have < want ? "never accumulated" : "accumulated twice",
          ")"));
    }
    const Weight& w = it->second;
    float& g = group_amax[t.stat_group];
    g = quant::CombineAbsMax(g, from_checkpoint ? w.checkpoint_amax.value_or(w.amax) : w.amax);
  }
  for (auto& [tensor, w] : weights_) w.amax = group_amax[plan.tensors[tensor].stat_group];
  if (from_checkpoint) RETURN_IF_ERROR(FinishInputAmax(plan));
  finished_ = true;
  return absl::OkStatus();
}

absl::Status QuantStats::FinishInputAmax(const ExportPlan& plan) {
  // Experts without their own input amax: the max over their layer projection's experts.
  std::map<std::string, std::optional<float>> by_pattern;
  for (const auto& [tensor, w] : weights_) {
    CombineOptional(by_pattern[quant_internal::ExpertPattern(plan.tensors[tensor].name)],
                    w.input_amax);
  }
  std::map<int, std::optional<float>> group_input;
  for (auto& [tensor, w] : weights_) {
    const HfTensor& t = plan.tensors[tensor];
    if (!w.input_amax.has_value()) w.input_amax = by_pattern[quant_internal::ExpertPattern(t.name)];
    if (!GetQuantAlgoInfo(t.quant).has_input_scale) continue;
    if (!w.input_amax.has_value()) {
      return absl::FailedPreconditionError(absl::StrCat(
          t.name, ": the checkpoint has no input amax for it (input_quantizer._amax)"));
    }
    CombineOptional(group_input[t.stat_group], w.input_amax);
  }
  for (auto& [tensor, w] : weights_) {
    auto it = group_input.find(plan.tensors[tensor].stat_group);
    if (it != group_input.end()) w.input_amax = it->second;
  }
  return absl::OkStatus();
}

absl::StatusOr<float> QuantStats::Amax(int weight) const {
  auto it = weights_.find(weight);
  if (it == weights_.end()) {
    return absl::NotFoundError(absl::StrCat("no quantization statistics for tensor ", weight));
  }
  return it->second.amax;
}

std::string QuantStats::Serialize() const {
  std::string out(kMagic);
  Put<uint32_t>(out, kVersion);
  Put<uint8_t>(out, finished_ ? 1 : 0);
  Put<uint8_t>(out, checkpoint_read_ ? 1 : 0);
  Put<uint32_t>(out, static_cast<uint32_t>(weights_.size()));
  for (const auto& [tensor, w] : weights_) {
    Put<int32_t>(out, tensor);
    Put<float>(out, w.amax);
    Put<uint64_t>(out, w.elements);
    PutFloats(out, w.tiles);
    Put<uint32_t>(out, static_cast<uint32_t>(w.cut_blocks.size()));
    for (const auto& [block, amax] : w.cut_blocks) {
      Put<int64_t>(out, block);
      PutFloats(out, amax);
    }
    Put<uint8_t>(out, (w.checkpoint_amax.has_value() ? 1 : 0) | (w.input_amax.has_value() ? 2 : 0));
    Put<float>(out, w.checkpoint_amax.value_or(0.0f));
    Put<float>(out, w.input_amax.value_or(0.0f));
  }
  return out;
}

absl::StatusOr<QuantStats> QuantStats::Parse(absl::string_view bytes) {
  if (bytes.substr(0, kMagic.size()) != kMagic) {
    return absl::InvalidArgumentError("not quantization statistics (bad magic)");
  }
  Cursor in(bytes.substr(kMagic.size()));
  ASSIGN_OR_RETURN(const uint32_t version, in.Get<uint32_t>());
  if (version != kVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("quantization statistics version ", version, "; this build reads ", kVersion));
  }
  QuantStats stats;
  ASSIGN_OR_RETURN(const uint8_t finished, in.Get<uint8_t>());
  stats.finished_ = finished != 0;
  ASSIGN_OR_RETURN(const uint8_t checkpoint_read, in.Get<uint8_t>());
  stats.checkpoint_read_ = checkpoint_read != 0;
  ASSIGN_OR_RETURN(const uint32_t count, in.Get<uint32_t>());
  for (uint32_t i = 0; i < count; ++i) {
    ASSIGN_OR_RETURN(const int32_t tensor, in.Get<int32_t>());
    Weight w;
    ASSIGN_OR_RETURN(w.amax, in.Get<float>());
    ASSIGN_OR_RETURN(w.elements, in.Get<uint64_t>());
    ASSIGN_OR_RETURN(w.tiles, in.Floats());
    ASSIGN_OR_RETURN(const uint32_t cuts, in.Get<uint32_t>());
    for (uint32_t c = 0; c < cuts; ++c) {
      ASSIGN_OR_RETURN(const int64_t block, in.Get<int64_t>());
      ASSIGN_OR_RETURN(w.cut_blocks[block], in.Floats());
    }
    ASSIGN_OR_RETURN(const uint8_t flags, in.Get<uint8_t>());
    ASSIGN_OR_RETURN(const float checkpoint_amax, in.Get<float>());
    ASSIGN_OR_RETURN(const float input_amax, in.Get<float>());
    if (flags & 1) w.checkpoint_amax = checkpoint_amax;
    if (flags & 2) w.input_amax = input_amax;
    if (!stats.weights_.emplace(tensor, std::move(w)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("quantization statistics list tensor ", tensor, " twice"));
    }
  }
  if (!in.done()) return absl::InvalidArgumentError("quantization statistics have trailing bytes");
  return stats;
}

}  // namespace mxport::exporter
