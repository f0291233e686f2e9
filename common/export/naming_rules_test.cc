// The naming tables: Megatron key matching, architecture lookup, rendering, and the PR #1631
// regression (expert keys from every EP rank are disjoint and cover every expert).
#include "common/export/naming_rules.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/megatron/expert_map.h"
#include "common/megatron/ids.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mxport::exporter {
namespace {

using megatron::EpRank;
using megatron::ExpertMap;
using megatron::GlobalExpert;
using megatron::GlobalLayer;
using megatron::LocalExpert;
using megatron::LocalLayer;
using ::mxport::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int64_t kNone = -1;

struct MatchCase {
  const char* key;
  const char* pattern;  // the rule that must match
  Role role;
  int64_t layer;   // kNone: no {L}
  int64_t expert;  // kNone: no {E}
};

// One key per rule (every rule appears at least once), with several layer/expert numbers.
const MatchCase kMatchCases[] = {
    {"embedding.word_embeddings.weight", "embedding.word_embeddings.weight", Role::kEmbedding,
     kNone, kNone},
    {"output_layer.weight", "output_layer.weight", Role::kOutput, kNone, kNone},
    {"decoder.final_layernorm.weight", "decoder.final_layernorm.weight", Role::kFinalNorm, kNone,
     kNone},
    {"decoder.layers.0.self_attention.linear_qkv.layer_norm_weight",
     "decoder.layers.{L}.self_attention.linear_qkv.layer_norm_weight", Role::kInputNorm, 0,
     kNone},
    {"decoder.layers.17.input_layernorm.weight", "decoder.layers.{L}.input_layernorm.weight",
     Role::kInputNorm, 17, kNone},
    {"decoder.layers.3.self_attention.linear_qkv.weight",
     "decoder.layers.{L}.self_attention.linear_qkv.weight", Role::kQkvWeight, 3, kNone},
    {"decoder.layers.3.self_attention.linear_qkv.bias",
     "decoder.layers.{L}.self_attention.linear_qkv.bias", Role::kQkvBias, 3, kNone},
    {"decoder.layers.5.self_attention.q_layernorm.weight",
     "decoder.layers.{L}.self_attention.q_layernorm.weight", Role::kQNorm, 5, kNone},
    {"decoder.layers.5.self_attention.k_layernorm.weight",
     "decoder.layers.{L}.self_attention.k_layernorm.weight", Role::kKNorm, 5, kNone},
    {"decoder.layers.9.self_attention.linear_proj.weight",
     "decoder.layers.{L}.self_attention.linear_proj.weight", Role::kAttnOut, 9, kNone},
    {"decoder.layers.1.pre_mlp_layernorm.weight", "decoder.layers.{L}.pre_mlp_layernorm.weight",
     Role::kPostAttnNorm, 1, kNone},
    {"decoder.layers.1.mlp.linear_fc1.layer_norm_weight",
     "decoder.layers.{L}.mlp.linear_fc1.layer_norm_weight", Role::kPostAttnNorm, 1, kNone},
    {"decoder.layers.2.mlp.linear_fc1.weight", "decoder.layers.{L}.mlp.linear_fc1.weight",
     Role::kDenseFc1, 2, kNone},
    {"decoder.layers.2.mlp.linear_fc2.weight", "decoder.layers.{L}.mlp.linear_fc2.weight",
     Role::kDenseFc2, 2, kNone},
    {"decoder.layers.47.mlp.router.weight", "decoder.layers.{L}.mlp.router.weight",
     Role::kRouter, 47, kNone},
    {"decoder.layers.47.mlp.router.expert_bias", "decoder.layers.{L}.mlp.router.expert_bias",
     Role::kRouterExpertBias, 47, kNone},
    {"decoder.layers.0.mlp.experts.linear_fc1.weight0",
     "decoder.layers.{L}.mlp.experts.linear_fc1.weight{E}", Role::kExpertFc1, 0, 0},
    {"decoder.layers.12.mlp.experts.linear_fc1.weight31",
     "decoder.layers.{L}.mlp.experts.linear_fc1.weight{E}", Role::kExpertFc1, 12, 31},
    {"decoder.layers.12.mlp.experts.linear_fc2.weight7",
     "decoder.layers.{L}.mlp.experts.linear_fc2.weight{E}", Role::kExpertFc2, 12, 7},
    {"decoder.layers.4.mlp.experts.local_experts.0.linear_fc1.weight",
     "decoder.layers.{L}.mlp.experts.local_experts.{E}.linear_fc1.weight", Role::kExpertFc1, 4,
     0},
    {"decoder.layers.4.mlp.experts.local_experts.127.linear_fc2.weight",
     "decoder.layers.{L}.mlp.experts.local_experts.{E}.linear_fc2.weight", Role::kExpertFc2, 4,
     127},
    {"decoder.layers.6.mlp.shared_experts.linear_fc1.weight",
     "decoder.layers.{L}.mlp.shared_experts.linear_fc1.weight", Role::kSharedFc1, 6, kNone},
    {"decoder.layers.6.mlp.shared_experts.linear_fc2.weight",
     "decoder.layers.{L}.mlp.shared_experts.linear_fc2.weight", Role::kSharedFc2, 6, kNone},
    {"decoder.layers.6.mlp.shared_experts.gate_weight",
     "decoder.layers.{L}.mlp.shared_experts.gate_weight", Role::kSharedGate, 6, kNone},
    {"decoder.layers.123456789.mlp.router.weight", "decoder.layers.{L}.mlp.router.weight",
     Role::kRouter, 123456789, kNone},
};

TEST(MatchMegatronKeyTest, EveryRuleMatchesWithItsCaptures) {
  std::set<absl::string_view> covered;
  for (const MatchCase& c : kMatchCases) {
    SCOPED_TRACE(c.key);
    std::optional<MatchedKey> m = MatchMegatronKey(c.key);
    ASSERT_TRUE(m.has_value());
    ASSERT_NE(m->rule, nullptr);
    EXPECT_EQ(m->rule->pattern, c.pattern);
    EXPECT_EQ(m->rule->role, c.role);
    if (c.layer == kNone) {
      EXPECT_FALSE(m->layer.has_value());
    } else {
      EXPECT_EQ(m->layer, LocalLayer(c.layer));
    }
    if (c.expert == kNone) {
      EXPECT_FALSE(m->expert.has_value());
    } else {
      EXPECT_EQ(m->expert, LocalExpert(c.expert));
    }
    covered.insert(m->rule->pattern);
  }
  EXPECT_EQ(covered.size(), MegatronRules().size()) << "a rule has no case above";
}

TEST(MatchMegatronKeyTest, EveryRuleMatchesItsOwnPatternRendered) {
  for (const MegatronRule& rule : MegatronRules()) {
    SCOPED_TRACE(rule.pattern);
    std::string key(rule.pattern);
    const bool has_layer = key.find("{L}") != std::string::npos;
    const bool has_expert = key.find("{E}") != std::string::npos;
    if (has_layer) key.replace(key.find("{L}"), 3, "21");
    if (has_expert) key.replace(key.find("{E}"), 3, "13");
    std::optional<MatchedKey> m = MatchMegatronKey(key);
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->rule, &rule);  // the first rule to match is the rule itself
    EXPECT_EQ(m->layer.has_value(), has_layer);
    EXPECT_EQ(m->expert.has_value(), has_expert);
    if (has_layer) {
      EXPECT_EQ(m->layer, LocalLayer(21));
    }
    if (has_expert) {
      EXPECT_EQ(m->expert, LocalExpert(13));
    }
  }
}

TEST(MatchMegatronKeyTest, SplitsAndTransforms) {
  struct Case {
    const char* key;
    Split split;
    Transform transform;
  };
  const Case cases[] = {
      {"embedding.word_embeddings.weight", Split::kVocabRows, Transform::kNone},
      {"output_layer.weight", Split::kVocabRows, Transform::kNone},
      {"decoder.final_layernorm.weight", Split::kReplicated, Transform::kNone},
      {"decoder.layers.0.self_attention.linear_qkv.weight", Split::kColumn, Transform::kQkv},
      {"decoder.layers.0.self_attention.linear_qkv.bias", Split::kColumn, Transform::kQkv},
      {"decoder.layers.0.self_attention.linear_proj.weight", Split::kRow, Transform::kNone},
      {"decoder.layers.0.mlp.linear_fc1.weight", Split::kColumn, Transform::kSwiGlu},
      {"decoder.layers.0.mlp.linear_fc2.weight", Split::kRow, Transform::kNone},
      {"decoder.layers.0.mlp.router.weight", Split::kReplicated, Transform::kNone},
      {"decoder.layers.0.mlp.router.expert_bias", Split::kReplicated, Transform::kNone},
      {"decoder.layers.0.mlp.experts.linear_fc1.weight0", Split::kExpertColumn,
       Transform::kSwiGlu},
      {"decoder.layers.0.mlp.experts.linear_fc2.weight0", Split::kExpertRow, Transform::kNone},
      {"decoder.layers.0.mlp.experts.local_experts.0.linear_fc1.weight", Split::kExpertColumn,
       Transform::kSwiGlu},
      {"decoder.layers.0.mlp.experts.local_experts.0.linear_fc2.weight", Split::kExpertRow,
       Transform::kNone},
      // Shared experts are split over the dense TP group, not ETP.
      {"decoder.layers.0.mlp.shared_experts.linear_fc1.weight", Split::kColumn,
       Transform::kSwiGlu},
      {"decoder.layers.0.mlp.shared_experts.linear_fc2.weight", Split::kRow, Transform::kNone},
      {"decoder.layers.0.mlp.shared_experts.gate_weight", Split::kReplicated, Transform::kNone},
      {"decoder.layers.0.self_attention.q_layernorm.weight", Split::kReplicated,
       Transform::kNone},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.key);
    std::optional<MatchedKey> m = MatchMegatronKey(c.key);
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->rule->split, c.split);
    EXPECT_EQ(m->rule->transform, c.transform);
  }
}

TEST(MatchMegatronKeyTest, NonMatches) {
  const char* const cases[] = {
      "",
      "decoder.layers.x.mlp.linear_fc1.weight",
      "decoder.layers..mlp.router.weight",
      "decoder.layers.-1.mlp.router.weight",
      "decoder.layers.1234567890.mlp.router.weight",  // more than 9 digits
      "decoder.layers.0.mlp.linear_fc1.weight.extra",
      "decoder.layers.0.mlp.linear_fc1.weightX",
      "decoder.layers.0.mlp.linear_fc1.weight ",
      "embedding.word_embeddings.weight2",
      "output_layer.weight.bias",
      "module.embedding.word_embeddings.weight",
      "decoder.layers.0.mlp.experts.linear_fc1.weight",      // grouped key without a slot
      "decoder.layers.0.mlp.experts.linear_fc1.weight1a",
      "decoder.layers.0.mlp.experts.local_experts.x.linear_fc1.weight",
      "decoder.layers.0.mlp.experts.local_experts..linear_fc1.weight",
      "decoder.layers.0.mlp.experts.local_experts.0.linear_fc1.bias",
      "decoder.layers.0.self_attention.linear_proj.bias",
      "decoder.layers.0.self_attention.core_attention.weight",
      "mtp.layers.0.mtp_model_layer.mlp.router.weight",
      "decoder.layers.0.mlp.router.weight.",
      "Decoder.layers.0.mlp.router.weight",
      // TE extra state is never a weight.
      "decoder.layers.0.self_attention.linear_qkv._extra_state",
      "decoder.layers.0.self_attention.linear_proj._extra_state",
      "decoder.layers.0.mlp.linear_fc1._extra_state",
      "decoder.layers.0.mlp.experts.linear_fc1._extra_state",
      "decoder.layers.0.mlp.experts.linear_fc1.weight_extra_state",
      "decoder.layers.0.mlp.experts.local_experts.0.linear_fc1._extra_state",
      "decoder.layers.0.mlp.shared_experts.linear_fc2._extra_state",
      "output_layer._extra_state",
      "_extra_state",
  };
  for (const char* key : cases) {
    EXPECT_FALSE(MatchMegatronKey(key).has_value()) << key;
  }
}

TEST(FindArchTest, ByArchitectureAndByModelType) {
  struct Case {
    const char* architecture;
    const char* model_type;
    bool moe;
  };
  const Case cases[] = {
      {"Qwen3MoeForCausalLM", "qwen3_moe", true},
      {"Qwen2MoeForCausalLM", "qwen2_moe", true},
      {"MixtralForCausalLM", "mixtral", true},
      {"LlamaForCausalLM", "llama", false},
      {"Qwen3ForCausalLM", "qwen3", false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.architecture);
    ASSERT_OK_AND_ASSIGN(const ArchRules* by_arch, FindArch(c.architecture));
    ASSERT_OK_AND_ASSIGN(const ArchRules* by_type, FindArch(c.model_type));
    EXPECT_EQ(by_arch, by_type);
    EXPECT_EQ(by_arch->architecture, c.architecture);
    EXPECT_EQ(by_arch->model_type, c.model_type);
    EXPECT_EQ(by_arch->moe, c.moe);
  }
  EXPECT_THAT(SupportedArchitectures(),
              ElementsAre("Qwen3MoeForCausalLM", "Qwen2MoeForCausalLM", "MixtralForCausalLM",
                          "LlamaForCausalLM", "Qwen3ForCausalLM"));
}

TEST(FindArchTest, UnknownListsTheSupportedArchitectures) {
  for (const char* name : {"DeepseekV3ForCausalLM", "", "qwen3moe", "Qwen3MoeForCausalLM "}) {
    SCOPED_TRACE(name);
    EXPECT_THAT(FindArch(name),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         AllOf(HasSubstr(absl::StrCat("unsupported architecture '", name, "'")),
                               HasSubstr("Qwen3MoeForCausalLM"), HasSubstr("Qwen2MoeForCausalLM"),
                               HasSubstr("MixtralForCausalLM"), HasSubstr("LlamaForCausalLM"),
                               HasSubstr("Qwen3ForCausalLM"))));
  }
}

std::vector<std::string> Templates(const ArchRules& arch, Role role) {
  const std::vector<const char*>* t = arch.Find(role);
  return t == nullptr ? std::vector<std::string>{} : std::vector<std::string>(t->begin(), t->end());
}

TEST(FindArchTest, RoleTemplates) {
  ASSERT_OK_AND_ASSIGN(const ArchRules* qwen3_moe, FindArch("qwen3_moe"));
  EXPECT_THAT(Templates(*qwen3_moe, Role::kQkvWeight),
              ElementsAre("model.layers.{L}.self_attn.q_proj.weight",
                          "model.layers.{L}.self_attn.k_proj.weight",
                          "model.layers.{L}.self_attn.v_proj.weight"));
  EXPECT_THAT(Templates(*qwen3_moe, Role::kExpertFc1),
              ElementsAre("model.layers.{L}.mlp.experts.{E}.gate_proj.weight",
                          "model.layers.{L}.mlp.experts.{E}.up_proj.weight"));
  EXPECT_THAT(Templates(*qwen3_moe, Role::kExpertFc2),
              ElementsAre("model.layers.{L}.mlp.experts.{E}.down_proj.weight"));
  EXPECT_THAT(Templates(*qwen3_moe, Role::kRouter),
              ElementsAre("model.layers.{L}.mlp.gate.weight"));
  EXPECT_THAT(Templates(*qwen3_moe, Role::kQNorm),
              ElementsAre("model.layers.{L}.self_attn.q_norm.weight"));
  EXPECT_EQ(qwen3_moe->Find(Role::kQkvBias), nullptr);
  EXPECT_EQ(qwen3_moe->Find(Role::kSharedFc1), nullptr);
  EXPECT_EQ(qwen3_moe->Find(Role::kRouterExpertBias), nullptr);

  ASSERT_OK_AND_ASSIGN(const ArchRules* qwen2_moe, FindArch("qwen2_moe"));
  EXPECT_THAT(Templates(*qwen2_moe, Role::kSharedFc1),
              ElementsAre("model.layers.{L}.mlp.shared_expert.gate_proj.weight",
                          "model.layers.{L}.mlp.shared_expert.up_proj.weight"));
  EXPECT_THAT(Templates(*qwen2_moe, Role::kSharedGate),
              ElementsAre("model.layers.{L}.mlp.shared_expert_gate.weight"));
  EXPECT_THAT(Templates(*qwen2_moe, Role::kQkvBias),
              ElementsAre("model.layers.{L}.self_attn.q_proj.bias",
                          "model.layers.{L}.self_attn.k_proj.bias",
                          "model.layers.{L}.self_attn.v_proj.bias"));
  EXPECT_EQ(qwen2_moe->Find(Role::kQNorm), nullptr);

  ASSERT_OK_AND_ASSIGN(const ArchRules* mixtral, FindArch("mixtral"));
  EXPECT_THAT(Templates(*mixtral, Role::kExpertFc1),
              ElementsAre("model.layers.{L}.block_sparse_moe.experts.{E}.w1.weight",
                          "model.layers.{L}.block_sparse_moe.experts.{E}.w3.weight"));
  EXPECT_THAT(Templates(*mixtral, Role::kRouter),
              ElementsAre("model.layers.{L}.block_sparse_moe.gate.weight"));

  ASSERT_OK_AND_ASSIGN(const ArchRules* llama, FindArch("llama"));
  EXPECT_THAT(Templates(*llama, Role::kDenseFc1),
              ElementsAre("model.layers.{L}.mlp.gate_proj.weight",
                          "model.layers.{L}.mlp.up_proj.weight"));
  EXPECT_THAT(Templates(*llama, Role::kEmbedding), ElementsAre("model.embed_tokens.weight"));
  EXPECT_THAT(Templates(*llama, Role::kOutput), ElementsAre("lm_head.weight"));
  EXPECT_EQ(llama->Find(Role::kRouter), nullptr);
  EXPECT_EQ(llama->Find(Role::kExpertFc1), nullptr);
}

TEST(RenderNameTest, SubstitutesGlobalIds) {
  struct Case {
    const char* tmpl;
    std::optional<int64_t> layer, expert;
    const char* want;
  };
  const Case cases[] = {
      {"model.layers.{L}.mlp.experts.{E}.down_proj.weight", 3, 17,
       "model.layers.3.mlp.experts.17.down_proj.weight"},
      {"model.layers.{L}.mlp.experts.{E}.gate_proj.weight", 0, 0,
       "model.layers.0.mlp.experts.0.gate_proj.weight"},
      {"model.layers.{L}.input_layernorm.weight", 93, std::nullopt,
       "model.layers.93.input_layernorm.weight"},
      {"model.norm.weight", std::nullopt, std::nullopt, "model.norm.weight"},
      {"lm_head.weight", 4, 5, "lm_head.weight"},
      {"{E}.{L}.{E}", 1, 255, "255.1.255"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.tmpl);
    std::optional<GlobalLayer> layer;
    std::optional<GlobalExpert> expert;
    if (c.layer) layer = GlobalLayer(*c.layer);
    if (c.expert) expert = GlobalExpert(*c.expert);
    EXPECT_EQ(RenderName(c.tmpl, layer, expert), c.want);
  }
}

// PR #1631 (peer exporter): expert keys were rendered from the LOCAL slot, so at EP=8 every
// rank wrote experts 0..7 and 7/8 of the experts were lost. Here every rank's keys go through
// MatchMegatronKey -> ExpertMap::ToGlobal -> RenderName, and the union over all ranks must be
// disjoint and cover experts 0..E-1 exactly, for both TEGroupedMLP and SequentialMLP keys.

using LocalKeyFn = std::function<std::string(int64_t slot)>;
using ToGlobalFn = std::function<GlobalExpert(EpRank, LocalExpert)>;

// Renders the HF names of every (EP rank, local slot) of layer 0 for `num_experts` experts over
// `ep` ranks, from the Megatron keys `local_key(slot)` that every rank holds, converting slots
// with `to_global`. Returns "" when the names from all ranks are pairwise disjoint and are
// exactly the names of experts 0..num_experts-1, else what is wrong.
std::string CheckExpertKeys(int64_t num_experts, int64_t ep, const LocalKeyFn& local_key,
                            const ToGlobalFn& to_global) {
  const ArchRules* arch = *FindArch("Qwen3MoeForCausalLM");
  std::set<std::string> rendered;
  const MegatronRule* rule = nullptr;
  for (int64_t r = 0; r < ep; ++r) {
    for (int64_t j = 0; j < num_experts / ep; ++j) {
      const std::string key = local_key(j);
      std::optional<MatchedKey> m = MatchMegatronKey(key);
      if (!m.has_value() || !m->expert.has_value() || !m->layer.has_value()) {
        return "no expert rule matches " + key;
      }
      if (*m->expert != LocalExpert(j)) return "wrong slot captured from " + key;
      if (*m->layer != LocalLayer(0)) return "wrong layer captured from " + key;
      rule = m->rule;
      const std::vector<const char*>* templates = arch->Find(rule->role);
      if (templates == nullptr) return "no HF name for " + key;
      const GlobalExpert g = to_global(EpRank(r), *m->expert);
      for (const char* tmpl : *templates) {
        const std::string name = RenderName(tmpl, GlobalLayer(0), g);
        if (!rendered.insert(name).second) {
          return absl::StrCat(name, " is rendered twice (again by EP rank ", r, " slot ", j, ")");
        }
      }
    }
  }
  std::set<std::string> want;
  for (int64_t e = 0; e < num_experts; ++e) {
    for (const char* tmpl : *arch->Find(rule->role)) {
      want.insert(RenderName(tmpl, GlobalLayer(0), GlobalExpert(e)));
    }
  }
  for (const std::string& name : want) {
    if (!rendered.contains(name)) {
      return absl::StrCat(name, " is missing (", rendered.size(), " of ", want.size(),
                          " names rendered)");
    }
  }
  if (rendered.size() != want.size()) return "names outside experts 0..E-1 were rendered";
  return "";
}

std::vector<std::pair<std::string, LocalKeyFn>> ExpertKeyForms() {
  return {
      {"TEGroupedMLP fc1",
       [](int64_t j) { return absl::StrCat("decoder.layers.0.mlp.experts.linear_fc1.weight", j); }},
      {"TEGroupedMLP fc2",
       [](int64_t j) { return absl::StrCat("decoder.layers.0.mlp.experts.linear_fc2.weight", j); }},
      {"SequentialMLP fc1",
       [](int64_t j) {
         return absl::StrCat("decoder.layers.0.mlp.experts.local_experts.", j,
                             ".linear_fc1.weight");
       }},
      {"SequentialMLP fc2",
       [](int64_t j) {
         return absl::StrCat("decoder.layers.0.mlp.experts.local_experts.", j,
                             ".linear_fc2.weight");
       }},
  };
}

TEST(ExpertKeysTest, Pr1631KeysFromAllEpRanksAreDisjointAndCoverEveryExpert) {
  constexpr int64_t kExperts = 64;
  for (int64_t ep : {1, 2, 4, 8}) {
    ASSERT_OK_AND_ASSIGN(ExpertMap map, ExpertMap::Contiguous(kExperts, ep));
    const ToGlobalFn to_global = [&map](EpRank r, LocalExpert j) {
      absl::StatusOr<GlobalExpert> g = map.ToGlobal(r, j);
      EXPECT_OK(g);
      return g.ok() ? *g : GlobalExpert(-1);
    };
    for (const auto& [form, local_key] : ExpertKeyForms()) {
      SCOPED_TRACE(absl::StrCat(form, " EP=", ep));
      EXPECT_EQ(CheckExpertKeys(kExperts, ep, local_key, to_global), "");
    }
  }
}

TEST(ExpertKeysTest, Pr1631HoldsForAnExplicitPlacementToo) {
  // Round-robin: rank r holds experts r, r+8, r+16, ...
  constexpr int64_t kExperts = 64, kEp = 8;
  std::vector<std::vector<int64_t>> per_rank(kEp);
  for (int64_t e = 0; e < kExperts; ++e) per_rank[e % kEp].push_back(e);
  ASSERT_OK_AND_ASSIGN(ExpertMap map, ExpertMap::FromExplicit(per_rank, kExperts));
  const ToGlobalFn to_global = [&map](EpRank r, LocalExpert j) { return *map.ToGlobal(r, j); };
  for (const auto& [form, local_key] : ExpertKeyForms()) {
    SCOPED_TRACE(form);
    EXPECT_EQ(CheckExpertKeys(kExperts, kEp, local_key, to_global), "");
  }
}

TEST(ExpertKeysTest, Pr1631TheCheckCatchesLocalSlotsUsedAsGlobalIds) {
  // The peer's bug: the local slot number used as the expert id.
  const ToGlobalFn buggy = [](EpRank, LocalExpert j) { return GlobalExpert(j.value()); };
  for (int64_t ep : {2, 4, 8}) {
    for (const auto& [form, local_key] : ExpertKeyForms()) {
      SCOPED_TRACE(absl::StrCat(form, " EP=", ep));
      EXPECT_THAT(CheckExpertKeys(64, ep, local_key, buggy), HasSubstr("is rendered twice"));
    }
  }
  // A map that forgets a rank's offset for one rank only still collides.
  const ToGlobalFn off_by_rank = [](EpRank r, LocalExpert j) {
    return GlobalExpert(r.value() == 3 ? j.value() : r.value() * 8 + j.value());
  };
  EXPECT_THAT(CheckExpertKeys(64, 8, ExpertKeyForms()[0].second, off_by_rank),
              HasSubstr("is rendered twice"));
  // And one that skips experts is caught as missing coverage.
  const ToGlobalFn spread = [](EpRank r, LocalExpert j) {
    return GlobalExpert(r.value() * 16 + j.value());  // 8 ranks x 8 slots, stride 16
  };
  EXPECT_THAT(CheckExpertKeys(64, 8, ExpertKeyForms()[0].second, spread),
              HasSubstr("is missing"));
}

}  // namespace
}  // namespace mxport::exporter
