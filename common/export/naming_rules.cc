#include "common/export/naming_rules.h"

#include <array>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"

namespace mxport::exporter {
namespace {

using R = Role;
using S = Split;
using T = Transform;

constexpr std::array<MegatronRule, 23> kMegatronRules = {{
    {"embedding.word_embeddings.weight", R::kEmbedding, S::kVocabRows, T::kNone},
    {"output_layer.weight", R::kOutput, S::kVocabRows, T::kNone},
    {"decoder.final_layernorm.weight", R::kFinalNorm, S::kReplicated, T::kNone},
    {"decoder.layers.{L}.self_attention.linear_qkv.layer_norm_weight", R::kInputNorm,
     S::kReplicated, T::kNone},
    {"decoder.layers.{L}.input_layernorm.weight", R::kInputNorm, S::kReplicated, T::kNone},
    {"decoder.layers.{L}.self_attention.linear_qkv.weight", R::kQkvWeight, S::kColumn, T::kQkv},
    {"decoder.layers.{L}.self_attention.linear_qkv.bias", R::kQkvBias, S::kColumn, T::kQkv},
    {"decoder.layers.{L}.self_attention.q_layernorm.weight", R::kQNorm, S::kReplicated,
     T::kNone},
    {"decoder.layers.{L}.self_attention.k_layernorm.weight", R::kKNorm, S::kReplicated,
     T::kNone},
    {"decoder.layers.{L}.self_attention.linear_proj.weight", R::kAttnOut, S::kRow, T::kNone},
    {"decoder.layers.{L}.pre_mlp_layernorm.weight", R::kPostAttnNorm, S::kReplicated, T::kNone},
    {"decoder.layers.{L}.mlp.linear_fc1.layer_norm_weight", R::kPostAttnNorm, S::kReplicated,
     T::kNone},
    {"decoder.layers.{L}.mlp.linear_fc1.weight", R::kDenseFc1, S::kColumn, T::kSwiGlu},
    {"decoder.layers.{L}.mlp.linear_fc2.weight", R::kDenseFc2, S::kRow, T::kNone},
    {"decoder.layers.{L}.mlp.router.weight", R::kRouter, S::kReplicated, T::kNone},
    {"decoder.layers.{L}.mlp.router.expert_bias", R::kRouterExpertBias, S::kReplicated,
     T::kNone},
    {"decoder.layers.{L}.mlp.experts.linear_fc1.weight{E}", R::kExpertFc1, S::kExpertColumn,
     T::kSwiGlu},
    {"decoder.layers.{L}.mlp.experts.linear_fc2.weight{E}", R::kExpertFc2, S::kExpertRow,
     T::kNone},
    {"decoder.layers.{L}.mlp.experts.local_experts.{E}.linear_fc1.weight", R::kExpertFc1,
     S::kExpertColumn, T::kSwiGlu},
    {"decoder.layers.{L}.mlp.experts.local_experts.{E}.linear_fc2.weight", R::kExpertFc2,
     S::kExpertRow, T::kNone},
    {"decoder.layers.{L}.mlp.shared_experts.linear_fc1.weight", R::kSharedFc1, S::kColumn,
     T::kSwiGlu},
    {"decoder.layers.{L}.mlp.shared_experts.linear_fc2.weight", R::kSharedFc2, S::kRow,
     T::kNone},
    {"decoder.layers.{L}.mlp.shared_experts.gate_weight", R::kSharedGate, S::kReplicated,
     T::kNone},
}};

// Roles every decoder-only Llama-style architecture shares.
std::vector<RoleNames> CommonRoles(bool qk_norm, bool qkv_bias) {
  std::vector<RoleNames> roles = {
      {R::kEmbedding, {"model.embed_tokens.weight"}},
      {R::kOutput, {"lm_head.weight"}},
      {R::kFinalNorm, {"model.norm.weight"}},
      {R::kInputNorm, {"model.layers.{L}.input_layernorm.weight"}},
      {R::kQkvWeight,
       {"model.layers.{L}.self_attn.q_proj.weight", "model.layers.{L}.self_attn.k_proj.weight",
        "model.layers.{L}.self_attn.v_proj.weight"}},
      {R::kAttnOut, {"model.layers.{L}.self_attn.o_proj.weight"}},
      {R::kPostAttnNorm, {"model.layers.{L}.post_attention_layernorm.weight"}},
      {R::kDenseFc1,
       {"model.layers.{L}.mlp.gate_proj.weight", "model.layers.{L}.mlp.up_proj.weight"}},
      {R::kDenseFc2, {"model.layers.{L}.mlp.down_proj.weight"}},
  };
  if (qk_norm) {
    roles.push_back({R::kQNorm, {"model.layers.{L}.self_attn.q_norm.weight"}});
    roles.push_back({R::kKNorm, {"model.layers.{L}.self_attn.k_norm.weight"}});
  }
  if (qkv_bias) {
    roles.push_back({R::kQkvBias,
                     {"model.layers.{L}.self_attn.q_proj.bias",
                      "model.layers.{L}.self_attn.k_proj.bias",
                      "model.layers.{L}.self_attn.v_proj.bias"}});
  }
  return roles;
}

std::vector<RoleNames> With(std::vector<RoleNames> roles, std::vector<RoleNames> more) {
  roles.insert(roles.end(), more.begin(), more.end());
  return roles;
}

const std::vector<ArchRules>& AllArchs() {
  static const auto* archs = new std::vector<ArchRules>{
      {"Qwen3MoeForCausalLM", "qwen3_moe", true,
       With(CommonRoles(/*qk_norm=*/true, /*qkv_bias=*/false),
            {{R::kRouter, {"model.layers.{L}.mlp.gate.weight"}},
             {R::kExpertFc1,
              {"model.layers.{L}.mlp.experts.{E}.gate_proj.weight",
               "model.layers.{L}.mlp.experts.{E}.up_proj.weight"}},
             {R::kExpertFc2, {"model.layers.{L}.mlp.experts.{E}.down_proj.weight"}}})},
      {"Qwen2MoeForCausalLM", "qwen2_moe", true,
       With(CommonRoles(/*qk_norm=*/false, /*qkv_bias=*/true),
            {{R::kRouter, {"model.layers.{L}.mlp.gate.weight"}},
             {R::kExpertFc1,
              {"model.layers.{L}.mlp.experts.{E}.gate_proj.weight",
               "model.layers.{L}.mlp.experts.{E}.up_proj.weight"}},
             {R::kExpertFc2, {"model.layers.{L}.mlp.experts.{E}.down_proj.weight"}},
             {R::kSharedFc1,
              {"model.layers.{L}.mlp.shared_expert.gate_proj.weight",
               "model.layers.{L}.mlp.shared_expert.up_proj.weight"}},
             {R::kSharedFc2, {"model.layers.{L}.mlp.shared_expert.down_proj.weight"}},
             {R::kSharedGate, {"model.layers.{L}.mlp.shared_expert_gate.weight"}}})},
      {"MixtralForCausalLM", "mixtral", true,
       With(CommonRoles(/*qk_norm=*/false, /*qkv_bias=*/false),
            {{R::kRouter, {"model.layers.{L}.block_sparse_moe.gate.weight"}},
             {R::kExpertFc1,
              {"model.layers.{L}.block_sparse_moe.experts.{E}.w1.weight",
               "model.layers.{L}.block_sparse_moe.experts.{E}.w3.weight"}},
             {R::kExpertFc2, {"model.layers.{L}.block_sparse_moe.experts.{E}.w2.weight"}}})},
      {"LlamaForCausalLM", "llama", false, CommonRoles(/*qk_norm=*/false, /*qkv_bias=*/false)},
      {"Qwen3ForCausalLM", "qwen3", false, CommonRoles(/*qk_norm=*/true, /*qkv_bias=*/false)},
  };
  return *archs;
}

// Matches `key` against `pattern`, capturing {L} and {E} as decimal numbers.
bool MatchPattern(absl::string_view pattern, absl::string_view key, MatchedKey& out) {
  while (!pattern.empty()) {
    const size_t brace = pattern.find('{');
    const absl::string_view literal = pattern.substr(0, brace);
    if (!absl::ConsumePrefix(&key, literal)) return false;
    if (brace == absl::string_view::npos) return key.empty();
    const char which = pattern[brace + 1];
    pattern.remove_prefix(brace + 3);  // "{L}"
    size_t digits = 0;
    while (digits < key.size() && absl::ascii_isdigit(key[digits])) ++digits;
    int64_t n = 0;
    if (digits == 0 || digits > 9 || !absl::SimpleAtoi(key.substr(0, digits), &n)) return false;
    key.remove_prefix(digits);
    if (which == 'L') out.layer = megatron::LocalLayer(n);
    if (which == 'E') out.expert = megatron::LocalExpert(n);
  }
  return key.empty();
}

}  // namespace

std::span<const MegatronRule> MegatronRules() { return kMegatronRules; }

std::optional<MatchedKey> MatchMegatronKey(absl::string_view key) {
  for (const MegatronRule& rule : kMegatronRules) {
    MatchedKey m;
    if (MatchPattern(rule.pattern, key, m)) {
      m.rule = &rule;
      return m;
    }
  }
  return std::nullopt;
}

const std::vector<const char*>* ArchRules::Find(Role role) const {
  for (const RoleNames& r : roles) {
    if (r.role == role) return &r.templates;
  }
  return nullptr;
}

absl::StatusOr<const ArchRules*> FindArch(absl::string_view architecture) {
  for (const ArchRules& arch : AllArchs()) {
    if (arch.architecture == architecture || arch.model_type == architecture) return &arch;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported architecture '", architecture,
                   "'; supported: ", absl::StrJoin(SupportedArchitectures(), ", ")));
}

std::vector<absl::string_view> SupportedArchitectures() {
  std::vector<absl::string_view> out;
  for (const ArchRules& arch : AllArchs()) out.push_back(arch.architecture);
  return out;
}

std::string RenderName(const char* tmpl, std::optional<megatron::GlobalLayer> layer,
                       std::optional<megatron::GlobalExpert> expert) {
  std::vector<std::pair<absl::string_view, std::string>> subs;
  if (layer.has_value()) subs.push_back({"{L}", absl::StrCat(layer->value())});
  if (expert.has_value()) subs.push_back({"{E}", absl::StrCat(expert->value())});
  return absl::StrReplaceAll(tmpl, subs);
}

}  // namespace mxport::exporter
