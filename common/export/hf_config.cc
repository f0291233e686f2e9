#include "common/export/hf_config.h"

#include "absl/strings/match.h"
#include "common/base/status_macros.h"

namespace mxport::exporter {
namespace {

using megatron::ModelConfig;

// Fields one architecture family adds to the common ones.
struct FamilyFields {
  absl::string_view model_type;
  void (*add)(const ModelConfig& c, OrderedJson& j);
};

const FamilyFields kFamilies[] = {
    {"qwen3_moe",
     [](const ModelConfig& c, OrderedJson& j) {
       j["attention_bias"] = false;
       j["moe_intermediate_size"] = c.moe_ffn_hidden_size;
       j["num_experts"] = c.num_experts;
       j["num_experts_per_tok"] = c.moe_router_topk;
       j["decoder_sparse_step"] = c.moe_layer_freq;
       j["norm_topk_prob"] = true;
       j["mlp_only_layers"] = OrderedJson::array();
     }},
    {"qwen2_moe",
     [](const ModelConfig& c, OrderedJson& j) {
       j["moe_intermediate_size"] = c.moe_ffn_hidden_size;
       j["shared_expert_intermediate_size"] = c.shared_expert_ffn_size;
       j["num_experts"] = c.num_experts;
       j["num_experts_per_tok"] = c.moe_router_topk;
       j["decoder_sparse_step"] = c.moe_layer_freq;
       j["norm_topk_prob"] = false;
       j["mlp_only_layers"] = OrderedJson::array();
     }},
    {"mixtral",
     [](const ModelConfig& c, OrderedJson& j) {
       j["intermediate_size"] = c.moe_ffn_hidden_size;
       j["num_local_experts"] = c.num_experts;
       j["num_experts_per_tok"] = c.moe_router_topk;
     }},
    {"llama",
     [](const ModelConfig& c, OrderedJson& j) {
       j["attention_bias"] = c.add_qkv_bias;
       j["mlp_bias"] = false;
     }},
    {"qwen3",
     [](const ModelConfig& c, OrderedJson& j) { j["attention_bias"] = c.add_qkv_bias; }},
};

// Files of an HF model directory that are weights or stale metadata, not sidecars.
bool IsWeightOrStale(absl::string_view name) {
  return absl::EndsWith(name, ".safetensors") || absl::EndsWith(name, ".bin") ||
         absl::EndsWith(name, ".pt") || absl::EndsWith(name, ".pth") ||
         absl::EndsWith(name, ".index.json") || name == "hf_quant_config.json" ||
         absl::StartsWith(name, ".");
}

}  // namespace

OrderedJson GenerateHfConfig(const ModelConfig& c, const ArchRules& arch, int64_t hf_vocab_size) {
  OrderedJson j;
  j["architectures"] = {std::string(arch.architecture)};
  j["model_type"] = std::string(arch.model_type);
  j["vocab_size"] = hf_vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.ffn_hidden_size;
  j["num_hidden_layers"] = c.num_layers;
  j["num_attention_heads"] = c.num_attention_heads;
  j["num_key_value_heads"] = c.num_query_groups;
  j["head_dim"] = c.kv_channels;
  j["hidden_act"] = "silu";
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["rms_norm_eps"] = c.norm_epsilon;
  j["rope_theta"] = c.rotary_base;
  j["tie_word_embeddings"] = !c.untied_embeddings;
  j["attention_dropout"] = 0.0;
  j["use_cache"] = true;
  for (const FamilyFields& f : kFamilies) {
    if (f.model_type == arch.model_type) f.add(c, j);
  }
  j["dtype"] = std::string(DTypeName(c.params_dtype));
  return j;
}

absl::StatusOr<std::vector<std::string>> SidecarFiles(fs::FileSystem& fs,
                                                      const std::string& hf_dir) {
  ASSIGN_OR_RETURN(std::vector<std::string> names, fs.ListDir(hf_dir));
  std::vector<std::string> out;
  for (const std::string& name : names) {
    if (IsWeightOrStale(name)) continue;
    ASSIGN_OR_RETURN(bool is_dir, fs.IsDirectory(fs::JoinPath(hf_dir, name)));
    if (!is_dir) out.push_back(name);
  }
  return out;
}

}  // namespace mxport::exporter
