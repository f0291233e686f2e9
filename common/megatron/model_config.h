// ModelConfig: the model and parallel layout a Megatron checkpoint was saved with, typed,
// read from the argparse Namespace `args` every legacy rank file carries.
//
// FromArgs reads each field by its Megatron argument name; a missing or mistyped required field
// is InvalidArgument naming the field and `context` (the rank file). Derived values (kv_channels
// when absent, the expert ffn size, VPP size from layers-per-virtual-stage) are filled in, and
// impossible combinations (heads not divisible by query groups, ETP outside {1, TP}, layers not
// matching the stage split) are rejected. A value type; thread-safe.
#ifndef MXPORT_COMMON_MEGATRON_MODEL_CONFIG_H_
#define MXPORT_COMMON_MEGATRON_MODEL_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/base/dtype.h"
#include "common/torch/pickle_value.h"

namespace mxport::megatron {

struct ModelConfig {
  // Model.
  int64_t num_layers = 0;
  int64_t hidden_size = 0;
  int64_t num_attention_heads = 0;
  int64_t num_query_groups = 0;  // == num_attention_heads without GQA
  int64_t kv_channels = 0;       // head dim
  int64_t ffn_hidden_size = 0;   // dense MLP
  int64_t num_experts = 0;       // 0: dense model
  int64_t moe_ffn_hidden_size = 0;
  int64_t moe_router_topk = 0;
  int64_t shared_expert_ffn_size = 0;  // 0: no shared expert
  int64_t moe_layer_freq = 1;          // every k-th layer is MoE (1: all)
  int64_t padded_vocab_size = 0;
  int64_t vocab_size = 0;              // true vocabulary; 0 when the args do not say
  int64_t max_position_embeddings = 0;
  std::string normalization = "RMSNorm";
  double norm_epsilon = 1e-5;
  double rotary_base = 10000;
  bool qk_layernorm = false;
  bool add_qkv_bias = false;
  bool add_bias_linear = false;
  bool swiglu = true;
  bool untied_embeddings = true;  // untie_embeddings_and_output_weights
  bool moe_grouped_gemm = false;  // TEGroupedMLP (otherwise SequentialMLP)
  bool router_expert_bias = false;
  DType params_dtype = DType::kBFloat16;

  // Parallel layout at save time.
  int64_t tp = 1;
  int64_t pp = 1;
  int64_t ep = 1;
  int64_t etp = 1;  // expert tensor parallel
  int64_t vpp = 1;  // virtual pipeline stages per rank
  int64_t first_stage_layers = 0;  // 0: even split
  int64_t last_stage_layers = 0;

  bool is_moe() const { return num_experts > 0; }
  bool IsMoeLayer(int64_t global_layer) const {
    return is_moe() && global_layer % moe_layer_freq == 0;
  }
  int64_t heads_per_group() const { return num_attention_heads / num_query_groups; }
  int64_t experts_per_rank() const { return num_experts / ep; }
  // Layers each (vp, pp) chunk holds as args describe it, vp-major: result[vp * pp + p].
  absl::StatusOr<std::vector<int64_t>> ExpectedLayersPerChunk() const;

  static absl::StatusOr<ModelConfig> FromArgs(const pickle::Value& args,
                                              absl::string_view context);
};

}  // namespace mxport::megatron

#endif  // MXPORT_COMMON_MEGATRON_MODEL_CONFIG_H_
