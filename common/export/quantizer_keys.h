// ModelOpt quantizer state in Megatron-Core checkpoints: where the calibrated amax of each
// quantized linear lives, as a table from Megatron weight keys to quantizer keys, and a parser
// for quantizer keys. Pure string functions; immutable tables; thread-safe.
//
// Facts, read in NVIDIA/Model-Optimizer:
//   - modelopt/torch/quantization/nn/modules/tensor_quantizer.py: a TensorQuantizer keeps its
//     calibration in buffers: `_amax` (per-tensor: 0-dim, from reduce_amax with the scalar
//     squeezed; per-channel axis=0: [out,1]; static blocks: one per block), `_global_amax`
//     (NVFP4 static/MSE: 0-dim), `_pre_quant_scale` (AWQ/SmoothQuant, [in]), `_bias_value`
//     (affine KV). Real-quantized (compressed) weights add `_scale`/`_double_scale`/
//     `_scale_zeros`. The dtype is that of the calibrated tensor (F32 or the model dtype); read
//     it as-is and cast to F32. export_amax() turns a per-tensor amax (no block sizes, axis
//     None) into [1].
//   - modelopt/torch/quantization/plugins/megatron.py: every Megatron linear gets
//     `weight_quantizer`, `input_quantizer`, `output_quantizer` (the last disabled by default)
//     under its module key, e.g. decoder.layers.{n}.self_attention.linear_qkv.weight_quantizer.
//     _amax. _QuantTEDotProductAttention adds `q_bmm_quantizer`, `k_bmm_quantizer`,
//     `v_bmm_quantizer` to self_attention.core_attention (scalars only; the KV cache amax).
//     In torch_dist, _MegatronParallelLinear.sharded_state_dict stores amax with numel 1 as [1]
//     and larger ones as [out,-1]; per-tensor amax has no TP shard axis (replicated); per-channel
//     column-parallel amax shards on axis 0; row-parallel `_pre_quant_scale` on axis 0.
//     _QuantMegatronTEGroupedLinear stores one amax per expert, `weight_quantizer.{i}._amax`
//     (native shape) with the global expert id `ep_rank*num_local + i`, while
//     `input_quantizer._amax` is one [1] tensor shared by the layer's experts.
//     quant_module_get_extra_state puts each QuantModule's quantizer properties in its
//     `_extra_state`, which opt/plugins/megatron.py pickles into a uint8 tensor (TE's own extra
//     state nested under "extra_state").
//   - modelopt/torch/quantization/plugins/transformer_engine.py (GroupedQuantizer revision,
//     PR #1550, 0.47): _QuantTEGroupedLinear replaces the single weight quantizer with a
//     GroupedQuantizer (nn.ModuleList), one TensorQuantizer per local expert, so the state dict
//     key is `...mlp.experts.linear_fc1.weight_quantizer.{i}._amax`. Earlier checkpoints have one
//     `weight_quantizer._amax` for all experts; the current exporter rejects them ("pre-0.47
//     single-quantizer checkpoints are not supported", unified_export_megatron.py). Another
//     revision of that file keeps one quantizer with axis=0: `weight_quantizer._amax` of shape
//     [num_local,1,1], saved flat. An unindexed grouped weight amax is therefore shared when
//     numel is 1 and per-expert (dim 0) when numel is the local expert count.
//   - modelopt/torch/opt/plugins/megatron.py: _MegatronMLP.sharded_state_dict forces
//     metadata["singleton_local_shards"]=True for quantized MLPs (dense, SequentialMLP,
//     TEGroupedMLP), so torch_dist expert keys carry the global id in the path (Megatron's
//     singleton layout, shared/reference/megatron-checkpoints.md section 2):
//     `...mlp.experts.experts.{g}.linear_fc1.weight_quantizer._amax`; the TEGroupedMLP shared
//     input amax is `...mlp.experts.experts.linear_fc1.input_quantizer._amax`, a SequentialMLP
//     expert's own is `...mlp.experts.experts.{g}.linear_fc1.input_quantizer._amax`.
//   - modelopt/torch/opt/plugins/mcore_dist_checkpointing.py: the legacy torch format keeps the
//     amax buffers inside `model` (local layer and expert ids, like the weights) and the mode
//     state under the top-level key `modelopt_state` (`modelopt_state_{i}` with virtual PP).
//     torch_dist keeps amax as ShardedTensors of the main checkpoint (keys above; a homogeneous
//     layer stack drops `{n}` and prepends a layer axis like the weights) and the mode state in
//     the sub-checkpoint `<iter>/modelopt_state/` (common.pt: modelopt_version,
//     modelopt_state_dict); since 0.29 per-module quantizer_state lives only in `_extra_state`.
//
// Key grammar parsed here: <module>.<q>_quantizer[.<i>[.<j>]].<state>, q in {weight, input,
// output, q_bmm, k_bmm, v_bmm}. After weight_quantizer of a grouped expert linear (module ending
// "experts.linear_fc1|2"), i is the local expert and j an optional SequentialQuantizer level
// (W4A8); elsewhere i is the level. The module path itself may carry an expert:
// `local_experts.{j}` (SequentialMLP, local id) or `experts.experts.{g}` (torch_dist, global).
#ifndef MXPORT_COMMON_EXPORT_QUANTIZER_KEYS_H_
#define MXPORT_COMMON_EXPORT_QUANTIZER_KEYS_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mxport::exporter {

enum class QuantizerKind : uint8_t { kWeight, kInput, kOutput, kQBmm, kKBmm, kVBmm };
enum class QuantizerState : uint8_t {
  kAmax,           // _amax
  kGlobalAmax,     // _global_amax
  kPreQuantScale,  // _pre_quant_scale
  kBiasValue,      // _bias_value
  kScale,          // _scale (real-quantized weights)
  kDoubleScale,    // _double_scale
  kScaleZeros,     // _scale_zeros
};
enum class ExpertIndexSpace : uint8_t { kNone, kLocal, kGlobal };

absl::string_view QuantizerAttrName(QuantizerKind kind);    // "k_bmm_quantizer"
absl::string_view QuantizerStateName(QuantizerState state);  // "_amax"

struct ParsedQuantizerKey {
  std::string module;  // everything before the quantizer attribute
  QuantizerKind kind = QuantizerKind::kWeight;
  QuantizerState state = QuantizerState::kAmax;
  std::optional<int64_t> expert;
  ExpertIndexSpace expert_space = ExpertIndexSpace::kNone;
  std::optional<int64_t> level;    // SequentialQuantizer level
  // Unindexed quantizer of a grouped expert linear: one tensor for all its experts (numel 1;
  // see above for the axis=0 per-expert variant).
  bool shared_by_experts = false;
};

// nullopt: `key` has no "<q>_quantizer" component (a weight, norm, _extra_state...).
// InvalidArgument: it has one but the quantizer, an index or the state leaf is not in the
// grammar above (e.g. "x.input_quantizer.3._amax", "x.weight_quantizer._foo").
absl::StatusOr<std::optional<ParsedQuantizerKey>> ParseQuantizerKey(absl::string_view key);

// One table row: a Megatron weight key suffix (after the layer prefix) and its quantizer keys.
// {E} is an expert index, carried through unchanged (local in legacy keys, global in torch_dist
// singleton keys).
struct QuantizerKeyRule {
  absl::string_view weight;       // "mlp.experts.linear_fc1.weight{E}"
  absl::string_view weight_amax;  // "mlp.experts.linear_fc1.weight_quantizer.{E}._amax"
  std::vector<absl::string_view> input_amax;  // candidates, preferred first
  absl::string_view k_bmm_amax;   // "" unless the weight is the attention's QKV
  absl::string_view v_bmm_amax;
  bool top_level = false;         // no layer prefix (output_layer)
};
std::span<const QuantizerKeyRule> QuantizerKeyRules();

struct QuantizerKeys {
  std::string weight_amax;
  std::vector<std::string> input_amax;  // the checkpoint holds at most one of them
  std::string k_bmm_amax;               // empty when not an attention QKV weight
  std::string v_bmm_amax;
};

// Keys for `weight_key`: a layer rule matches "<prefix>.<rule.weight>" for any non-empty prefix
// (decoder.layers.{n}, decoder.layers in a homogeneous stack, an MTP layer...), kept verbatim.
// A singleton torch_dist SwiGLU half ("...linear_fc1.weight_w" / "_v") maps to its module's
// keys. NotFound when no rule matches (embedding, router and norms are never quantized by
// default; non-singleton torch_dist expert keys never carry ModelOpt state, see above).
absl::StatusOr<QuantizerKeys> QuantizerKeysForWeight(absl::string_view weight_key);

}  // namespace mxport::exporter

#endif  // MXPORT_COMMON_EXPORT_QUANTIZER_KEYS_H_
