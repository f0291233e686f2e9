// Quantization metadata of a Hugging Face export: which linear modules are quantized, the
// tensors each quantized module carries, hf_quant_config.json, and config.json's
// "quantization_config". Pure functions over module names; no I/O. Stateless; thread-safe.
//
// Schemas follow NVIDIA Model-Optimizer (ModelOpt), read in NVIDIA/Model-Optimizer:
//   - modelopt/torch/export/quant_utils.py (process_layer_quant_config): per-layer configs
//     {"quant_algo":"FP8"}, {"quant_algo":"NVFP4","group_size":16},
//     {"quant_algo":"W4A16_NVFP4","group_size":16}; one distinct config -> uniform, more ->
//     "MIXED_PRECISION" with "quantized_layers". Key order of "quantization": quant_algo,
//     kv_cache_quant_algo, then group_size (uniform NVFP4/W4A16_NVFP4) or quantized_layers
//     (mixed), then exclude_modules.
//   - modelopt/torch/export/unified_export_megatron.py (save_pretrained): the file is
//     {"producer":{"name","version"},"quantization":{...}} and exclude_modules is the gathered
//     list of unquantized HF module prefixes, skipping any name containing "norm".
//   - modelopt/torch/export/convert_hf_config.py (convert_hf_quant_config_format): config.json's
//     quantization_config = config_groups, [quantized_layers], ignore, quant_algo,
//     [kv_cache_scheme], producer, quant_method "modelopt". ConvertHfQuantConfig reproduces it.
//   - modelopt/torch/quantization/config.py (_default_disabled_quantizer_cfg): the patterns
//     ModelOpt never quantizes; DefaultExclusions() carries them verbatim plus the HF names of
//     modules ModelOpt never wraps (embeddings) and of routers renamed on export.
// Block FP8 (DeepSeek-V3 / HF FineGrainedFP8 form, weight_scale_inv) is not a ModelOpt format:
// ModelOpt's own "fp8_pb_wo" writes `weight_scale` and a lowercase quant_algo that no loader
// reads. For block FP8 there is no hf_quant_config.json; config.json gets
// {"quant_method":"fp8","fmt":"e4m3","activation_scheme":"dynamic","weight_block_size":[128,128],
//  "modules_to_not_convert":[...],"ignored_layers":[...]} (transformers' FineGrainedFP8Config
// reads modules_to_not_convert; vLLM's Fp8Config reads ignored_layers; both get the same list).
// Block FP8 cannot be mixed with ModelOpt formats nor declare an FP8 KV cache: InvalidArgument.
//
// exclude_modules / ignore is exactly the complement of the quantized modules among the given
// linear-like modules (embeddings, lm_head, routers, conv1d, unquantized projections), sorted;
// names containing "norm" are never listed. Module names are HF prefixes without a trailing dot;
// a fused Megatron module appears under its split HF names (q_proj, k_proj, v_proj).
// Every function returns InvalidArgument for an empty, duplicate or non-printable-ASCII module
// name, a quantized norm, or a pattern that matches no module (a typo in an exclusion must not
// silently quantize).
#ifndef MXPORT_COMMON_EXPORT_QUANT_CONFIG_H_
#define MXPORT_COMMON_EXPORT_QUANT_CONFIG_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/base/dtype.h"
#include "common/json/json.h"

namespace mxport::exporter {

enum class QuantAlgo : uint8_t {
  kNone,
  kNvfp4,       // W4A4: E2M1 weights, E4M3 per-16 block scales, static NVFP4 activations
  kW4A16Nvfp4,  // NVFP4 weights, unquantized activations
  kFp8,         // per-tensor E4M3 weights and static per-tensor activations
  kFp8Block,    // E4M3 weights with 128x128 F32 tile scales, dynamic activations
};

enum class KvCacheAlgo : uint8_t { kNone, kFp8 };

struct QuantAlgoInfo {
  QuantAlgo algo;
  absl::string_view name;  // as written in quant_algo ("NVFP4"); "FP8_BLOCK" for block FP8
  int group_size;          // elements per weight scale along the input dim; 0 = none
  bool modelopt;           // described by hf_quant_config.json
  bool has_input_scale;    // static activation scale tensor
};

// The algorithm table, in enum order.
std::span<const QuantAlgoInfo> AllQuantAlgos();
const QuantAlgoInfo& GetQuantAlgoInfo(QuantAlgo algo);
// Accepts the table names case-insensitively plus "none" and "fp8_pb_wo"; InvalidArgument
// listing the accepted names otherwise.
absl::StatusOr<QuantAlgo> ParseQuantAlgo(absl::string_view name);
absl::StatusOr<KvCacheAlgo> ParseKvCacheAlgo(absl::string_view name);  // "none", "fp8"

// ---- Which modules are quantized ----

// fnmatch-style ('*', '?', '[seq]', '[!seq]'), matched against the module name and against
// "<module>.weight_quantizer" (ModelOpt's patterns name quantizers, e.g. "*mlp.gate.*").
bool ModuleMatches(absl::string_view pattern, absl::string_view module);

struct DefaultExclusion {
  absl::string_view pattern;
  absl::string_view reason;
};
// Modules left unquantized unless an override names them.
std::span<const DefaultExclusion> DefaultExclusions();

struct AlgoOverride {
  std::string pattern;
  QuantAlgo algo = QuantAlgo::kNone;
};

struct QuantPolicy {
  QuantAlgo algo = QuantAlgo::kNone;    // every linear not matched below
  std::vector<AlgoOverride> overrides;  // first match wins, beats DefaultExclusions
  std::vector<std::string> exclude;     // user exclusions; beat everything
};

struct ModuleQuant {
  std::string name;  // "model.layers.0.mlp.experts.3.down_proj"
  QuantAlgo algo = QuantAlgo::kNone;
};

// Decides every module's algorithm: names containing "norm" are never quantized; then user
// exclusions, then overrides, then DefaultExclusions, then policy.algo. Output in input order.
// InvalidArgument naming every user pattern (exclude or override) that matches no non-norm
// module (a pattern shadowed by a higher-precedence one still counts as matching).
absl::StatusOr<std::vector<ModuleQuant>> AssignQuantization(
    std::span<const std::string> linear_modules, const QuantPolicy& policy);

// The sorted complement: unquantized modules, without names containing "norm".
std::vector<std::string> ExcludedModules(std::span<const ModuleQuant> modules);

// ---- Tensors of a quantized module ----

struct QuantizedTensorSpec {
  absl::string_view suffix;  // appended to "<module>."
  DType dtype;
  std::vector<int64_t> shape;  // {} = 0-dim scalar
};

// Rule 9: the complete set every quantized module (each expert included) must carry, with
// ModelOpt's shapes (unified_export_megatron.py _get_weight_scales squeezes the FP8
// weight_scale to 0-dim; TensorQuantizer.export_amax unsqueezes a per-tensor FP8 activation
// amax to [1]; NVFP4's dynamic-block input quantizer keeps its 0-dim amax):
//   NVFP4       weight U8 [out,in/2], weight_scale F8_E4M3 [out,in/16], weight_scale_2 F32 [],
//               input_scale F32 []
//   W4A16_NVFP4 the same without input_scale
//   FP8         weight F8_E4M3 [out,in], weight_scale F32 [], input_scale F32 [1]
//   FP8_BLOCK   weight F8_E4M3 [out,in], weight_scale_inv F32 [ceil(out/128),ceil(in/128)]
// InvalidArgument for kNone, non-positive dims, or (NVFP4) in % 16 != 0.
absl::StatusOr<std::vector<QuantizedTensorSpec>> QuantizedTensorsFor(QuantAlgo algo,
                                                                     int64_t out, int64_t in);

// KV-cache scales of one attention module, relative to "<...>.self_attn.": ModelOpt's
// postprocess_state_dict renames k/v_bmm_quantizer._amax to "k_proj.k_scale"/"v_proj.v_scale",
// F32 [1]. Empty for kNone.
std::vector<QuantizedTensorSpec> KvCacheTensorsFor(KvCacheAlgo algo);

// ---- The JSON files ----

struct Producer {
  std::string name = "mxport";
  std::string version;
};

struct QuantConfigInput {
  std::vector<ModuleQuant> modules;  // every linear-like module of the exported model
  KvCacheAlgo kv_cache = KvCacheAlgo::kNone;
  Producer producer;
};

struct QuantConfigs {
  // hf_quant_config.json; nullopt: do not write the file (nothing quantized, or block FP8).
  std::optional<OrderedJson> hf_quant_config;
  // config.json "quantization_config"; nullopt: the model is not quantized.
  std::optional<OrderedJson> quantization_config;
};

// Both files' contents. A model with no quantized module and no KV quantization yields two
// nullopts; an FP8 KV cache with nothing else quantized is InvalidArgument (ModelOpt's Megatron
// exporter writes no config for it, so a loader would never apply the scales).
absl::StatusOr<QuantConfigs> BuildQuantConfigs(const QuantConfigInput& input);

// convert_hf_quant_config_format: hf_quant_config.json content -> config.json
// quantization_config. InvalidArgument when the input lacks "quantization" or has an algorithm
// outside FP8/NVFP4/W4A16_NVFP4/MIXED_PRECISION.
absl::StatusOr<OrderedJson> ConvertHfQuantConfig(const OrderedJson& hf_quant_config);

}  // namespace mxport::exporter

#endif  // MXPORT_COMMON_EXPORT_QUANT_CONFIG_H_
