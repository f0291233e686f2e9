#include "common/megatron/model_config.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"

namespace mxport::megatron {
namespace {

using pickle::Kind;
using pickle::Value;

// Typed access to the attributes of the saved Namespace.
class ArgsReader {
 public:
  ArgsReader(const Value& args, absl::string_view context) : args_(args), context_(context) {}

  const Value* Find(absl::string_view name) const {
    const Value* v = args_.Attr(name);
    return v == nullptr || v->kind == Kind::kNone ? nullptr : v;
  }
  absl::Status Error(absl::string_view name, absl::string_view want) const {
    return absl::InvalidArgumentError(
        absl::StrCat(context_, ": args.", name, " ", want));
  }
  absl::StatusOr<int64_t> Int(absl::string_view name) const {
    const Value* v = Find(name);
    if (v == nullptr) return Error(name, "is missing");
    if (v->kind != Kind::kInt) return Error(name, "must be an integer");
    return v->integer;
  }
  absl::StatusOr<int64_t> IntOr(absl::string_view name, int64_t fallback) const {
    return Find(name) == nullptr ? absl::StatusOr<int64_t>(fallback) : Int(name);
  }
  absl::StatusOr<bool> BoolOr(absl::string_view name, bool fallback) const {
    const Value* v = Find(name);
    if (v == nullptr) return fallback;
    if (v->kind != Kind::kBool) return Error(name, "must be a bool");
    return v->boolean;
  }
  absl::StatusOr<double> DoubleOr(absl::string_view name, double fallback) const {
    const Value* v = Find(name);
    if (v == nullptr) return fallback;
    if (v->kind == Kind::kFloat) return v->number;
    if (v->kind == Kind::kInt) return static_cast<double>(v->integer);
    return Error(name, "must be a number");
  }
  absl::StatusOr<std::string> StringOr(absl::string_view name, absl::string_view fallback) const {
    const Value* v = Find(name);
    if (v == nullptr) return std::string(fallback);
    if (v->kind != Kind::kString) return Error(name, "must be a string");
    return v->str;
  }

 private:
  const Value& args_;
  absl::string_view context_;
};

absl::Status Check(bool ok, absl::string_view context, absl::string_view what) {
  return ok ? absl::OkStatus()
            : absl::InvalidArgumentError(absl::StrCat(context, ": ", what));
}

}  // namespace

absl::StatusOr<std::vector<int64_t>> ModelConfig::ExpectedLayersPerChunk() const {
  std::vector<int64_t> counts(vpp * pp, 0);
  if (vpp > 1) {
    if (first_stage_layers > 0 || last_stage_layers > 0) {
      return absl::UnimplementedError(
          "uneven first/last pipeline stages combined with virtual pipeline stages");
    }
    if (num_layers % (pp * vpp) != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          num_layers, " layers do not split into ", pp, " x ", vpp, " virtual stages"));
    }
    for (int64_t& c : counts) c = num_layers / (pp * vpp);
    return counts;
  }
  int64_t rest = num_layers;
  int64_t middle = pp;
  if (pp > 1 && first_stage_layers > 0) {
    counts.front() = first_stage_layers;
    rest -= first_stage_layers;
    --middle;
  }
  if (pp > 1 && last_stage_layers > 0) {
    counts.back() = last_stage_layers;
    rest -= last_stage_layers;
    --middle;
  }
  if (rest < 0 || (middle == 0 && rest != 0) || (middle > 0 && rest % middle != 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        num_layers, " layers do not split over ", pp, " pipeline stages (first ",
        first_stage_layers, ", last ", last_stage_layers, ")"));
  }
  for (int64_t p = 0; p < pp; ++p) {
    const bool fixed = (p == 0 && pp > 1 && first_stage_layers > 0) ||
                       (p == pp - 1 && pp > 1 && last_stage_layers > 0);
    if (!fixed) counts[p] = rest / middle;
  }
  return counts;
}

absl::StatusOr<ModelConfig> ModelConfig::FromArgs(const Value& args, absl::string_view context) {
  if (args.kind != Kind::kObject || args.state == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(context, ": 'args' is not a saved argparse Namespace"));
  }
  const ArgsReader r(args, context);
  ModelConfig c;
  ASSIGN_OR_RETURN(c.num_layers, r.Int("num_layers"));
  ASSIGN_OR_RETURN(c.hidden_size, r.Int("hidden_size"));
  ASSIGN_OR_RETURN(c.num_attention_heads, r.Int("num_attention_heads"));
  ASSIGN_OR_RETURN(bool gqa, r.BoolOr("group_query_attention", false));
  ASSIGN_OR_RETURN(c.num_query_groups,
                   gqa ? r.Int("num_query_groups") : r.IntOr("num_query_groups", 0));
  if (!gqa || c.num_query_groups == 0) c.num_query_groups = c.num_attention_heads;
  ASSIGN_OR_RETURN(c.kv_channels, r.IntOr("kv_channels", 0));
  if (c.kv_channels == 0 && c.num_attention_heads > 0) {
    c.kv_channels = c.hidden_size / c.num_attention_heads;
  }
  ASSIGN_OR_RETURN(c.ffn_hidden_size, r.IntOr("ffn_hidden_size", 4 * c.hidden_size));
  ASSIGN_OR_RETURN(c.num_experts, r.IntOr("num_experts", 0));
  ASSIGN_OR_RETURN(c.moe_ffn_hidden_size, r.IntOr("moe_ffn_hidden_size", c.ffn_hidden_size));
  ASSIGN_OR_RETURN(c.moe_router_topk, r.IntOr("moe_router_topk", 2));
  ASSIGN_OR_RETURN(c.shared_expert_ffn_size, r.IntOr("moe_shared_expert_intermediate_size", 0));
  ASSIGN_OR_RETURN(c.moe_layer_freq, r.IntOr("moe_layer_freq", 1));
  ASSIGN_OR_RETURN(c.padded_vocab_size, r.Int("padded_vocab_size"));
  ASSIGN_OR_RETURN(c.vocab_size, r.IntOr("vocab_size", 0));
  ASSIGN_OR_RETURN(c.max_position_embeddings, r.IntOr("max_position_embeddings", 0));
  ASSIGN_OR_RETURN(c.normalization, r.StringOr("normalization", "LayerNorm"));
  ASSIGN_OR_RETURN(c.norm_epsilon, r.DoubleOr("norm_epsilon", 1e-5));
  ASSIGN_OR_RETURN(c.rotary_base, r.DoubleOr("rotary_base", 10000));
  ASSIGN_OR_RETURN(c.qk_layernorm, r.BoolOr("qk_layernorm", false));
  ASSIGN_OR_RETURN(c.add_bias_linear, r.BoolOr("add_bias_linear", false));
  ASSIGN_OR_RETURN(c.add_qkv_bias, r.BoolOr("add_qkv_bias", c.add_bias_linear));
  ASSIGN_OR_RETURN(c.swiglu, r.BoolOr("swiglu", false));
  ASSIGN_OR_RETURN(c.untied_embeddings, r.BoolOr("untie_embeddings_and_output_weights", false));
  ASSIGN_OR_RETURN(c.moe_grouped_gemm, r.BoolOr("moe_grouped_gemm", false));
  ASSIGN_OR_RETURN(c.router_expert_bias, r.BoolOr("moe_router_enable_expert_bias", false));
  if (const Value* dtype = r.Find("params_dtype"); dtype != nullptr && dtype->kind == Kind::kDType) {
    c.params_dtype = dtype->dtype;
  } else {
    ASSIGN_OR_RETURN(bool bf16, r.BoolOr("bf16", false));
    ASSIGN_OR_RETURN(bool fp16, r.BoolOr("fp16", false));
    c.params_dtype = bf16 ? DType::kBFloat16 : fp16 ? DType::kFloat16 : DType::kFloat32;
  }

  ASSIGN_OR_RETURN(c.tp, r.IntOr("tensor_model_parallel_size", 1));
  ASSIGN_OR_RETURN(c.pp, r.IntOr("pipeline_model_parallel_size", 1));
  ASSIGN_OR_RETURN(c.ep, r.IntOr("expert_model_parallel_size", 1));
  ASSIGN_OR_RETURN(c.etp, r.IntOr("expert_tensor_parallel_size", c.tp));
  ASSIGN_OR_RETURN(c.vpp, r.IntOr("virtual_pipeline_model_parallel_size", 0));
  if (c.vpp == 0) {
    ASSIGN_OR_RETURN(int64_t per_stage, r.IntOr("num_layers_per_virtual_pipeline_stage", 0));
    c.vpp = per_stage > 0 && c.pp > 0 ? c.num_layers / (c.pp * per_stage) : 1;
  }
  ASSIGN_OR_RETURN(c.first_stage_layers, r.IntOr("decoder_first_pipeline_num_layers", 0));
  ASSIGN_OR_RETURN(c.last_stage_layers, r.IntOr("decoder_last_pipeline_num_layers", 0));
  for (absl::string_view unsupported :
       {"account_for_embedding_in_pipeline_split", "account_for_loss_in_pipeline_split"}) {
    ASSIGN_OR_RETURN(bool set, r.BoolOr(unsupported, false));
    if (set) {
      return absl::UnimplementedError(absl::StrCat(context, ": args.", unsupported,
                                                   " is not supported"));
    }
  }

  RETURN_IF_ERROR(Check(c.num_layers > 0 && c.hidden_size > 0 && c.num_attention_heads > 0,
                        context, "args give no layers, hidden size or heads"));
  RETURN_IF_ERROR(Check(c.num_attention_heads % c.num_query_groups == 0, context,
                        "num_attention_heads is not a multiple of num_query_groups"));
  RETURN_IF_ERROR(Check(c.tp > 0 && c.pp > 0 && c.ep > 0 && c.etp > 0 && c.vpp > 0, context,
                        "parallel sizes must be positive"));
  RETURN_IF_ERROR(Check(c.num_query_groups > 0 && c.num_query_groups % c.tp == 0, context,
                        "num_query_groups must be a multiple of the tensor parallel size"));
  RETURN_IF_ERROR(Check(!c.is_moe() || c.num_experts % c.ep == 0, context,
                        "num_experts is not a multiple of expert_model_parallel_size"));
  RETURN_IF_ERROR(Check(c.etp == 1 || c.etp == c.tp, context,
                        "expert_tensor_parallel_size must be 1 or equal to the tensor "
                        "parallel size for the legacy torch format"));
  RETURN_IF_ERROR(Check(c.moe_layer_freq > 0, context, "moe_layer_freq must be positive"));
  RETURN_IF_ERROR(Check(c.padded_vocab_size % c.tp == 0, context,
                        "padded_vocab_size is not a multiple of the tensor parallel size"));
  RETURN_IF_ERROR(Check(c.vocab_size <= c.padded_vocab_size, context,
                        "vocab_size exceeds padded_vocab_size"));
  auto chunks = c.ExpectedLayersPerChunk();
  if (!chunks.ok()) {
    return absl::Status(chunks.status().code(),
                        absl::StrCat(context, ": ", chunks.status().message()));
  }
  return c;
}

}  // namespace mxport::megatron
