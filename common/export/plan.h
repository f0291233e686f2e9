// ExportPlan: the whole export, described as data, before a byte is written.
//
// BuildPlan takes the model config, the architecture's naming rules, and the manifests of every
// rank file (keys, dtypes, shapes; no tensor bytes), and produces:
//   - the HF tensors the config implies (names with GLOBAL layer and expert ids, dtype, shape),
//     in a deterministic order (embedding, then layers in order with names sorted, then the
//     tensors after the layers, by name), packed into output files of at most max_shard_size data bytes;
//   - pieces: rectangular copies from a source tensor (viewed as rows x cols, dim 0 by the
//     product of the rest) to a region of one HF tensor. QKV splits, SwiGLU de-interleaving,
//     TP concatenation and vocab un-padding are all pieces.
// ModelOpt quantizer state (quantizer_keys.h) is not mapped to tensors: per-tensor weight and
// input amax of a mapped linear become ExportPlan::amax_sources; output, KV (bmm) quantizers
// and `_extra_state` are skipped; other quantizer state (per-channel or per-expert-vector amax,
// pre_quant_scale, real-quantized scales, multi-level quantizers) and quantizer keys of a module
// with no counterpart fail like an unknown key.
// Validation is complete before returning: an unknown or unexpected key, a mis-shaped source
// tensor, a region claimed by two ranks that should hold different data (two EP ranks giving
// the same expert, two stages the same layer), and any HF tensor not exactly covered fail the
// plan with one FailedPrecondition/InvalidArgument error that names every offending key and
// file (up to a limit). Replicas (dense weights repeated across EP files, ETP=1 experts across
// TP files, DP copies) are recognised and read once, from the first file in (pp, ep, tp) order.
//
// The same model from any source layout gives the same tensors, order and files. Immutable
// after construction; safe to share across threads.
#ifndef MXPORT_COMMON_EXPORT_PLAN_H_
#define MXPORT_COMMON_EXPORT_PLAN_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/dtype.h"
#include "common/export/naming_rules.h"
#include "common/export/quant_config.h"
#include "common/megatron/expert_map.h"
#include "common/megatron/model_config.h"
#include "common/megatron/source.h"
#include "common/json/json.h"

namespace mxport::exporter {

struct SourceFile {
  std::string path;
  std::string dir_name;
  megatron::TpRank tp;
  megatron::PpRank pp;
  megatron::EpRank ep;
};

// What a tensor of a quantized module holds (ApplyQuantization, quantize_plan.h).
enum class QuantPart : uint8_t {
  kNone,          // not quantized: the pieces' bytes, as read
  kWeight,        // the quantized weight; its pieces are in the unquantized element space
  kBlockScales,   // per-block scales written with the weight's pieces (NVFP4 weight_scale)
  kWeightScale2,  // a scalar from the statistics (which: HfTensor::scalar)
  kScaleInv,      // tile grid from the statistics (block FP8 weight_scale_inv)
};

// Which scalar a kWeightScale2 tensor holds (F32 [] or [1]).
enum class ScalarScale : uint8_t {
  kWeightScale2,  // NVFP4 weight_scale_2 = amax / (6 * 448)
  kWeightScale,   // FP8 per-tensor weight_scale = amax / 448
  kInputScale,    // input_scale from the checkpoint's input amax (NVFP4: / (6 * 448), FP8: / 448)
};

struct HfTensor {
  std::string name;
  DType dtype = DType::kBFloat16;
  std::vector<int64_t> shape;
  Role role = Role::kEmbedding;
  int64_t layer = -1;   // global layer, -1 outside the decoder layers
  int file = -1;        // index into ExportPlan::files
  uint64_t offset = 0;  // of its data within the file's data buffer
  uint64_t bytes = 0;
  // Quantization (all defaults when the tensor is written as read).
  QuantAlgo quant = QuantAlgo::kNone;  // the algorithm of the module this tensor belongs to
  QuantPart quant_part = QuantPart::kNone;
  int quant_weight = -1;  // the module's kWeight tensor (itself for the weight)
  int stat_group = -1;    // kWeight: the first weight of its fused siblings (q/k/v, gate/up)
  ScalarScale scalar = ScalarScale::kWeightScale2;  // kWeightScale2: which scalar
  DType source_dtype = DType::kBFloat16;  // kWeight: the element type pieces are read in
  int64_t source_cols = 0;                // kWeight: the unquantized cols pieces address
  int64_t rows() const { return shape.empty() ? 1 : shape[0]; }
  int64_t cols() const;  // product of dims after the first (1 for vectors and scalars)
  // The element space of this tensor's pieces: the source's for a quantized weight, else its own.
  DType piece_dtype() const { return quant_part == QuantPart::kWeight ? source_dtype : dtype; }
  int64_t piece_cols() const { return quant_part == QuantPart::kWeight ? source_cols : cols(); }
};

// Coordinates are in the tensor's piece element space (HfTensor::piece_cols / piece_dtype).
struct Piece {
  int tensor = -1;  // index into ExportPlan::tensors
  int source = -1;  // index into ExportPlan::sources
  int64_t vp = 0;   // virtual stage holding `key`
  std::string key;  // Megatron model key in that stage's state dict
  int64_t src_rows = 0, src_cols = 0;  // the source tensor as rows x cols
  int64_t src_row = 0, src_col = 0;    // block origin in the source
  int64_t rows = 0, cols = 0;          // block size
  int64_t dst_row = 0, dst_col = 0;    // block origin in the HF tensor
};

// A ModelOpt per-tensor amax in a rank file (quantizer_keys.h): BuildPlan records each
// `<module>.weight_quantizer[.<i>]._amax` and `<module>.input_quantizer._amax` of a linear it maps
// (numel 1) instead of mapping it to a tensor; a quantized export (quantize_plan.h: modes
// "checkpoint" and "checkpoint_fp8" all of them, "nvfp4" and "fp8" the activation amax) reads
// them. A TEGroupedMLP's shared input amax is recorded once per local expert; replicas (TP, DP)
// are all recorded (they hold the same value; the max is used).
struct AmaxSource {
  bool input = false;                // input_quantizer (activations); else weight_quantizer
  std::vector<std::string> weights;  // the HF weights it calibrates (q/k/v, gate/up: several)
  int source = -1;                   // index into ExportPlan::sources
  int64_t vp = 0;                    // virtual stage holding `key`
  std::string key;                   // the Megatron quantizer key
  DType dtype = DType::kFloat32;     // as stored (ModelOpt keeps the calibration dtype)
};

struct OutputFile {
  std::string name;  // "model-00001-of-00003.safetensors"
  std::vector<int> tensors;  // in file order
  uint64_t data_bytes = 0;
};

struct PlanOptions {
  uint64_t max_shard_size = uint64_t{5} << 30;
  // Explicit expert placement (`local_expert_indices` per EP rank); contiguous when empty.
  std::vector<std::vector<int64_t>> expert_map;
  // Rows of the HF embedding and lm_head (the true vocabulary); from the args when 0.
  int64_t hf_vocab_size = 0;
  // Most problems listed in one error.
  int max_problems = 50;
};

struct ExportPlan {
  megatron::ModelConfig config;
  const ArchRules* arch = nullptr;
  std::vector<SourceFile> sources;
  std::vector<HfTensor> tensors;
  std::vector<Piece> pieces;  // grouped by output file, then tensor
  std::vector<OutputFile> files;
  uint64_t total_bytes = 0;
  std::vector<AmaxSource> amax_sources;  // in file order, then manifest order

  // The plan as JSON (what `mxport plan --json` prints and what the coordinator hands out).
  OrderedJson ToJson() const;
  // model.safetensors.index.json: {"metadata": {"total_size"}, "weight_map": {name: file}}.
  OrderedJson IndexJson() const;
};

// `manifests[i]` belongs to `files[i]` (ranks resolved).
absl::StatusOr<ExportPlan> BuildPlan(const megatron::ModelConfig& config, const ArchRules& arch,
                                     const std::vector<megatron::RankFile>& files,
                                     const std::vector<megatron::RankManifest>& manifests,
                                     const PlanOptions& options = {});

// "weight", "block_scales", ... ("none" for kNone).
absl::string_view QuantPartName(QuantPart part);

// Output file name for shard i (0-based) of n: "model.safetensors" when n == 1.
std::string ShardFileName(int i, int n);

}  // namespace mxport::exporter

#endif  // MXPORT_COMMON_EXPORT_PLAN_H_
