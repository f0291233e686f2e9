// Quantized export: a transform of an ExportPlan, and the per-chunk work that executes it on
// any process (the local executor here, workers in a distributed export).
//
// ApplyQuantization rewrites a plan from BuildPlan deterministically. The linear weights the
// policy quantizes (q/k/v, o_proj, dense and expert and shared-expert gate/up/down; never
// embeddings, lm_head, routers or the shared-expert gate) change dtype and shape and gain
// their scale tensors (quant_config.h QuantizedTensorsFor); every HfTensor of such a module
// records its QuantPart, its weight, and for the weight the source element type and cols its
// pieces still address. Pieces are unchanged: coordinates stay in the unquantized element
// space. Files are laid out again with BuildPlan's order rule (embedding, layers by index then
// name, the rest by name) and max_shard_size, a module's weight and scales always in one file
// (weight first, scales right after it); pieces end up sorted by (tensor, dst_row, dst_col).
// Modes: "none" (the plan unchanged); "fp8_block" (128x128 tiles, weight_scale_inv, dynamic
// activations). Two modes quantize every module the policy quantizes from its weights (weight
// amax computed, maxed over fused siblings; a checkpoint's weight amax is never read) and read
// only the activation amax a checkpoint may hold (amax_sources with `input`: a ModelOpt
// calibration; an expert without its own input amax takes the max over its layer projection's
// experts):
//   "nvfp4": a module with activation amax is NVFP4 with input_scale = input amax/(6*448),
//     F32 [], exactly as "checkpoint" computes it; every other module is W4A16_NVFP4 (no
//     input_scale). Without activation amax in the checkpoint that is every module; with some,
//     the configs are MIXED_PRECISION, each layer declared as it is written.
//   "fp8": FP8 per tensor: weight_scale = amax/448 (F32 []), weight e4m3(clamp(w/weight_scale)),
//     input_scale = input amax/448 (F32 [1]), exactly as "checkpoint_fp8" computes it. ModelOpt
//     has no weight-only per-tensor FP8, so a selected module without activation amax (every
//     module of a checkpoint without quantizer state) is FailedPrecondition naming it and
//     suggesting --quant-exclude, fp8_block or nvfp4.
// Two modes re-export a ModelOpt calibration, reading the plan's amax_sources (plan.h): they
// quantize exactly the modules calibrated in the checkpoint (those with a weight_quantizer
// amax) and every routed expert of a layer projection (gate/up, down) with at least one
// calibrated expert (rule 9), with the checkpoint's weight amax, maxed over fused siblings (an
// expert without its own weight amax uses the amax computed from its weight):
//   "checkpoint": NVFP4, weight_scale_2 = amax/(6*448), input_scale as for "nvfp4". A
//     checkpoint with no input amax at all gives W4A16_NVFP4 (no input_scale) instead.
//   "checkpoint_fp8": FP8 per tensor, the tensors of "fp8". FailedPrecondition when the
//     checkpoint has no input amax.
// Both fail with FailedPrecondition when the checkpoint has no weight amax, and with
// InvalidArgument naming a selected module that has no input amax while others do. Excluded
// modules are never checked for amax. The quantized plan keeps only the amax_sources it reads:
// all of them (checkpoint, checkpoint_fp8), the activation amax of modules with input_scale
// (nvfp4, fp8), none (fp8_block). Unknown modes are InvalidArgument listing the modes.
//
// Execution of a quantized plan (ExecutePlanLocally does exactly this; a distributed executor
// splits the loops over workers):
//   1. Statistics. For every chunk of a kWeight tensor (a Piece, or a row range of one from
//      RowChunk), Accumulate the rows SourceReader::ReadRows returns. Stats of disjoint chunk
//      sets Merge in any order to the same bytes (Serialize/Parse carry them between
//      processes). Finish once everything is merged: it checks that every quantized weight was
//      covered exactly once and maxes the amax over fused siblings (stat_group). A plan with
//      amax_sources (modes checkpoint, checkpoint_fp8, fp8; nvfp4 with activation amax) also
//      needs the checkpoint's amax: Finish reads them with the SourceReader it is given (a few
//      scalars, read by whoever finishes), or a ReadCheckpointAmax call before Finish; without
//      either Finish is FailedPrecondition. Read checkpoint amax travels with the rest (Merge,
//      Serialize).
//   2. Writing. For every chunk of every tensor, QuantizeChunk then ScatterQuantized (plain
//      copies for unquantized tensors, exactly ScatterPiece); for every kWeightScale2 and
//      kScaleInv tensor, ScaleTensorBytes written at offset 0. kBlockScales tensors are written
//      by their weight's chunks, in the same file.
// Bytes depend only on the model, never on the source layout or on how chunks are split:
// a 16-element NVFP4 block cut by a TP column boundary takes its scale from the statistics,
// and is written by the chunk holding its first column.
//
// Errors: InvalidArgument naming the tensor (NVFP4 with an input dim not a multiple of 16 or a
// piece at an odd column, a source dtype other than BF16/F16/F32, fused siblings quantized
// differently, an exclude pattern matching nothing); FailedPrecondition for stats that are
// unfinished, incomplete or duplicated; Internal for chunk bytes of the wrong size.
// Everything is a pure function of its arguments; QuantStats is thread-compatible.
#ifndef MXPORT_COMMON_EXPORT_QUANTIZE_PLAN_H_
#define MXPORT_COMMON_EXPORT_QUANTIZE_PLAN_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/export/local_executor.h"
#include "common/export/plan.h"
#include "common/export/quant_config.h"
#include "common/fs/file_system.h"
#include "common/quant/backend.h"

namespace mxport::exporter {

struct QuantRequest {
  std::string mode = "none";         // QuantModes(), see above
  std::vector<std::string> exclude;  // fnmatch patterns of HF module names left unquantized
  // The PlanOptions::max_shard_size the plan was built with.
  uint64_t max_shard_size = PlanOptions{}.max_shard_size;
};

// The accepted mode names, in order.
std::vector<std::string> QuantModes();

absl::StatusOr<ExportPlan> ApplyQuantization(ExportPlan plan, const QuantRequest& request);

// True when some tensor of `plan` is quantized.
bool IsQuantized(const ExportPlan& plan);

// Rows [first, first + n) of `piece` as a piece of its own.
Piece RowChunk(const Piece& piece, int64_t first, int64_t n);

// Statistics of the quantized weights: per weight its amax (after Finish, the max over its
// fused siblings), the element count seen, for block FP8 the 128x128 tile amax grid, and for
// NVFP4 the amax, per row, of each 16-element block column that a chunk covers only partly
// (none unless a TP boundary cuts blocks).
class QuantStats {
 public:
  // Adds `rows` (ReadRows of `chunk`). A chunk of an unquantized tensor is ignored.
  absl::Status Accumulate(const ExportPlan& plan, const Piece& chunk, absl::string_view rows);
  // Adds the statistics of other chunks (CombineAbsMax per value; counts add).
  absl::Status Merge(const QuantStats& other);
  // Reads every amax of plan.amax_sources (values of one quantized weight combine by max).
  absl::Status ReadCheckpointAmax(const ExportPlan& plan, SourceReader& reader);
  // Checks coverage, picks each weight's amax (the checkpoint's, else the computed one) and
  // input amax (filled for experts), and applies the fused-sibling max. Needed before
  // QuantizeChunk and ScaleTensorBytes; Accumulate and Merge clear it. `reader`: see above.
  absl::Status Finish(const ExportPlan& plan, SourceReader* reader = nullptr);
  bool finished() const { return finished_; }

  std::string Serialize() const;
  static absl::StatusOr<QuantStats> Parse(absl::string_view bytes);

  // The amax of weight tensor `weight` (NotFound without stats).
  absl::StatusOr<float> Amax(int weight) const;

  struct Weight {
    float amax = 0.0f;
    uint64_t elements = 0;
    std::vector<float> tiles;  // block FP8: TileRows x TileCols
    std::map<int64_t, std::vector<float>> cut_blocks;  // NVFP4: block column -> amax per row
    std::optional<float> checkpoint_amax;  // weight amax read from the checkpoint
    std::optional<float> input_amax;       // activation amax (after Finish: filled, group max)
  };
  const std::map<int, Weight>& weights() const { return weights_; }

 private:
  absl::Status FinishInputAmax(const ExportPlan& plan);

  std::map<int, Weight> weights_;  // by weight tensor index
  bool checkpoint_read_ = false;
  bool finished_ = false;
};

// The bytes ScatterQuantized needs for `chunk`, from its source rows: for an NVFP4 weight the
// packed E2M1 rows (rows x cols/2) then the block-scale rows (rows x the blocks whose first
// column lies in the chunk); for block FP8 the E4M3 rows (rows x cols); otherwise `rows`.
// The codes come from `backend` (nullptr: quant::CpuBackend()); every backend gives these bytes.
absl::StatusOr<std::string> QuantizeChunk(const ExportPlan& plan, const QuantStats& stats,
                                          const Piece& chunk, absl::string_view rows,
                                          quant::Backend* backend = nullptr);

// write(tensor index, offset within that tensor's data, bytes).
using TensorWriteFn = std::function<absl::Status(int, uint64_t, absl::string_view)>;

// Writes QuantizeChunk's bytes at their offsets in the weight and its kBlockScales tensor;
// for an unquantized tensor exactly ScatterPiece.
absl::Status ScatterQuantized(const ExportPlan& plan, const Piece& chunk, absl::string_view bytes,
                              const TensorWriteFn& write);

// The whole data of a kWeightScale2 (f32 scalar or [1]: HfTensor::scalar) or kScaleInv (f32
// grid) tensor, little-endian.
absl::StatusOr<std::string> ScaleTensorBytes(const ExportPlan& plan, const QuantStats& stats,
                                             int tensor);

// The quantization sidecars of an export.
struct QuantSidecarFiles {
  std::string config_json;  // config.json with "quantization_config" (absent when unquantized)
  std::optional<std::string> hf_quant_config_json;  // nullopt: no file (block FP8, none)
};

// From the plan's modules (BuildQuantConfigs) and the config.json to publish. An unquantized
// plan returns `config_json` unchanged unless it carries a stale quantization_config.
absl::StatusOr<QuantSidecarFiles> QuantSidecars(const ExportPlan& plan,
                                                absl::string_view config_json,
                                                const Producer& producer = {});

// Everything an export publishes besides the tensors and the index, config.json first: the
// files of `hf_config_dir` (SidecarFiles), config.json generated from the args when that
// directory has none, and, for a quantized plan, config.json's quantization_config and
// hf_quant_config.json. `mxport export` and the coordinator's sidecar order both use it. An
// empty producer version means this build's version.
absl::StatusOr<std::vector<Sidecar>> CollectSidecars(fs::FileSystem& fs, const ExportPlan& plan,
                                                     const std::string& hf_config_dir,
                                                     const Producer& producer);

}  // namespace mxport::exporter

#endif  // MXPORT_COMMON_EXPORT_QUANTIZE_PLAN_H_
