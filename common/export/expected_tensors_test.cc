// The HF tensor set a config implies for an architecture: counts, names, shapes, and configs an
// architecture cannot express.
#include "common/export/expected_tensors.h"

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/export/naming_rules.h"
#include "common/megatron/model_config.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mxport::exporter {
namespace {

using megatron::GlobalExpert;
using megatron::GlobalLayer;
using megatron::ModelConfig;
using ::mxport::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// h=32, 4 heads of d=8 in 2 query groups: q rows 32, k/v rows 16.
ModelConfig Dense() {
  ModelConfig c;
  c.num_layers = 2;
  c.hidden_size = 32;
  c.num_attention_heads = 4;
  c.num_query_groups = 2;
  c.kv_channels = 8;
  c.ffn_hidden_size = 48;
  c.padded_vocab_size = 128;
  c.vocab_size = 100;
  c.swiglu = true;
  c.untied_embeddings = true;
  return c;
}

ModelConfig Moe() {
  ModelConfig c = Dense();
  c.num_experts = 4;
  c.moe_ffn_hidden_size = 16;
  return c;
}

const ArchRules& Arch(const char* name) {
  absl::StatusOr<const ArchRules*> arch = FindArch(name);
  EXPECT_OK(arch);
  return **arch;
}

std::vector<ExpectedTensor> Expect(const ModelConfig& c, const char* arch, int64_t vocab = 100) {
  absl::StatusOr<std::vector<ExpectedTensor>> out = ExpectedTensors(c, Arch(arch), vocab);
  EXPECT_OK(out);
  return out.ok() ? *out : std::vector<ExpectedTensor>{};
}

// Points into `ts`, which must outlive the map.
std::map<std::string, const ExpectedTensor*> ByName(const std::vector<ExpectedTensor>& ts) {
  std::map<std::string, const ExpectedTensor*> out;
  for (const ExpectedTensor& t : ts) {
    EXPECT_TRUE(out.emplace(t.name, &t).second) << t.name << " is expected twice";
  }
  return out;
}
std::map<std::string, const ExpectedTensor*> ByName(std::vector<ExpectedTensor>&&) = delete;

// Looks `name` up and checks its shape.
void ExpectShape(const std::map<std::string, const ExpectedTensor*>& by_name,
                 const std::string& name, const std::vector<int64_t>& shape) {
  auto it = by_name.find(name);
  ASSERT_NE(it, by_name.end()) << name << " is not expected";
  EXPECT_EQ(it->second->shape, shape) << name;
}

TEST(ExpectedTensorsTest, Qwen3Moe) {
  ModelConfig c = Moe();
  c.qk_layernorm = true;
  const std::vector<ExpectedTensor> ts = Expect(c, "qwen3_moe");
  // embedding, final norm, lm_head, and per layer: input norm, q/k/v, q/k norm, o, post-attn
  // norm, router, and 3 tensors per expert.
  EXPECT_EQ(ts.size(), 3u + 2 * (1 + 3 + 2 + 1 + 1 + 1 + 4 * 3));
  const auto by_name = ByName(ts);
  ExpectShape(by_name, "model.embed_tokens.weight", {100, 32});
  ExpectShape(by_name, "lm_head.weight", {100, 32});
  ExpectShape(by_name, "model.norm.weight", {32});
  ExpectShape(by_name, "model.layers.0.input_layernorm.weight", {32});
  ExpectShape(by_name, "model.layers.0.self_attn.q_proj.weight", {32, 32});
  ExpectShape(by_name, "model.layers.0.self_attn.k_proj.weight", {16, 32});
  ExpectShape(by_name, "model.layers.1.self_attn.v_proj.weight", {16, 32});
  ExpectShape(by_name, "model.layers.1.self_attn.q_norm.weight", {8});
  ExpectShape(by_name, "model.layers.1.self_attn.k_norm.weight", {8});
  ExpectShape(by_name, "model.layers.1.self_attn.o_proj.weight", {32, 32});
  ExpectShape(by_name, "model.layers.1.post_attention_layernorm.weight", {32});
  ExpectShape(by_name, "model.layers.1.mlp.gate.weight", {4, 32});
  ExpectShape(by_name, "model.layers.1.mlp.experts.3.gate_proj.weight", {16, 32});
  ExpectShape(by_name, "model.layers.1.mlp.experts.3.up_proj.weight", {16, 32});
  ExpectShape(by_name, "model.layers.1.mlp.experts.3.down_proj.weight", {32, 16});
  ExpectShape(by_name, "model.layers.0.mlp.experts.0.down_proj.weight", {32, 16});
  EXPECT_FALSE(by_name.contains("model.layers.0.mlp.gate_proj.weight"));
  EXPECT_FALSE(by_name.contains("model.layers.0.mlp.experts.4.down_proj.weight"));
  // Embedding first, lm_head last.
  EXPECT_EQ(ts.front().name, "model.embed_tokens.weight");
  EXPECT_EQ(ts.back().name, "lm_head.weight");

  // Roles, outputs and global ids travel with the names.
  const ExpectedTensor& up = *by_name.at("model.layers.1.mlp.experts.2.up_proj.weight");
  EXPECT_EQ(up.role, Role::kExpertFc1);
  EXPECT_EQ(up.output, 1);
  EXPECT_EQ(up.layer, GlobalLayer(1));
  EXPECT_EQ(up.expert, GlobalExpert(2));
  EXPECT_EQ(up.rows(), 16);
  const ExpectedTensor& v = *by_name.at("model.layers.0.self_attn.v_proj.weight");
  EXPECT_EQ(v.role, Role::kQkvWeight);
  EXPECT_EQ(v.output, 2);
  EXPECT_FALSE(v.expert.has_value());
  const ExpectedTensor& norm = *by_name.at("model.norm.weight");
  EXPECT_FALSE(norm.layer.has_value());
  EXPECT_EQ(norm.role, Role::kFinalNorm);
}

TEST(ExpectedTensorsTest, Qwen2MoeWithSharedExpertAndQkvBias) {
  ModelConfig c = Moe();
  c.add_qkv_bias = true;
  c.shared_expert_ffn_size = 24;
  const std::vector<ExpectedTensor> ts = Expect(c, "Qwen2MoeForCausalLM");
  // Per layer: norm, q/k/v, q/k/v bias, o, norm, router, 4 experts x 3, shared gate/up/down,
  // shared gate.
  EXPECT_EQ(ts.size(), 3u + 2 * (1 + 3 + 3 + 1 + 1 + 1 + 4 * 3 + 3 + 1));
  const auto by_name = ByName(ts);
  ExpectShape(by_name, "model.layers.0.self_attn.q_proj.bias", {32});
  ExpectShape(by_name, "model.layers.0.self_attn.k_proj.bias", {16});
  ExpectShape(by_name, "model.layers.0.self_attn.v_proj.bias", {16});
  ExpectShape(by_name, "model.layers.1.mlp.shared_expert.gate_proj.weight", {24, 32});
  ExpectShape(by_name, "model.layers.1.mlp.shared_expert.up_proj.weight", {24, 32});
  ExpectShape(by_name, "model.layers.1.mlp.shared_expert.down_proj.weight", {32, 24});
  ExpectShape(by_name, "model.layers.1.mlp.shared_expert_gate.weight", {1, 32});
  ExpectShape(by_name, "model.layers.1.mlp.experts.0.gate_proj.weight", {16, 32});
  EXPECT_EQ(by_name.at("model.layers.1.mlp.shared_expert.up_proj.weight")->output, 1);
  EXPECT_FALSE(by_name.at("model.layers.1.mlp.shared_expert.up_proj.weight")->expert);
  EXPECT_FALSE(by_name.contains("model.layers.0.self_attn.q_norm.weight"));
}

TEST(ExpectedTensorsTest, Mixtral) {
  const std::vector<ExpectedTensor> ts = Expect(Moe(), "MixtralForCausalLM");
  EXPECT_EQ(ts.size(), 3u + 2 * (1 + 3 + 1 + 1 + 1 + 4 * 3));
  const auto by_name = ByName(ts);
  ExpectShape(by_name, "model.layers.0.block_sparse_moe.gate.weight", {4, 32});
  ExpectShape(by_name, "model.layers.0.block_sparse_moe.experts.1.w1.weight", {16, 32});
  ExpectShape(by_name, "model.layers.0.block_sparse_moe.experts.1.w3.weight", {16, 32});
  ExpectShape(by_name, "model.layers.1.block_sparse_moe.experts.3.w2.weight", {32, 16});
  EXPECT_EQ(by_name.at("model.layers.0.block_sparse_moe.experts.1.w3.weight")->output, 1);
}

TEST(ExpectedTensorsTest, LlamaTiedAndUntied) {
  const std::vector<ExpectedTensor> untied = Expect(Dense(), "llama");
  // Per layer: norm, q/k/v, o, norm, gate/up, down.
  EXPECT_EQ(untied.size(), 3u + 2 * (1 + 3 + 1 + 1 + 2 + 1));
  const auto by_name = ByName(untied);
  ExpectShape(by_name, "lm_head.weight", {100, 32});
  ExpectShape(by_name, "model.layers.1.mlp.gate_proj.weight", {48, 32});
  ExpectShape(by_name, "model.layers.1.mlp.up_proj.weight", {48, 32});
  ExpectShape(by_name, "model.layers.1.mlp.down_proj.weight", {32, 48});
  EXPECT_EQ(by_name.at("model.layers.1.mlp.up_proj.weight")->role, Role::kDenseFc1);

  ModelConfig tied_config = Dense();
  tied_config.untied_embeddings = false;
  const std::vector<ExpectedTensor> tied = Expect(tied_config, "LlamaForCausalLM");
  EXPECT_EQ(tied.size(), untied.size() - 1);
  EXPECT_FALSE(ByName(tied).contains("lm_head.weight"));
  EXPECT_EQ(tied.back().name, "model.norm.weight");
}

TEST(ExpectedTensorsTest, VocabRowsComeFromTheArgument) {
  const std::vector<ExpectedTensor> ts = Expect(Dense(), "llama", /*vocab=*/128);
  const auto by_name = ByName(ts);
  ExpectShape(by_name, "model.embed_tokens.weight", {128, 32});
  ExpectShape(by_name, "lm_head.weight", {128, 32});
}

TEST(ExpectedTensorsTest, MoeLayerFrequencyMixesDenseLayers) {
  ModelConfig c = Moe();
  c.qk_layernorm = true;
  c.num_layers = 4;
  c.moe_layer_freq = 2;  // layers 0 and 2 are MoE
  const std::vector<ExpectedTensor> ts = Expect(c, "qwen3_moe");
  const auto by_name = ByName(ts);
  EXPECT_TRUE(by_name.contains("model.layers.0.mlp.gate.weight"));
  EXPECT_TRUE(by_name.contains("model.layers.2.mlp.experts.3.down_proj.weight"));
  EXPECT_FALSE(by_name.contains("model.layers.1.mlp.gate.weight"));
  EXPECT_FALSE(by_name.contains("model.layers.3.mlp.experts.0.down_proj.weight"));
  ExpectShape(by_name, "model.layers.1.mlp.gate_proj.weight", {48, 32});
  ExpectShape(by_name, "model.layers.3.mlp.down_proj.weight", {32, 48});
}

TEST(ExpectedTensorsTest, Qwen3DenseWithQkNorm) {
  ModelConfig c = Dense();
  c.qk_layernorm = true;
  const std::vector<ExpectedTensor> ts = Expect(c, "Qwen3ForCausalLM");
  const auto by_name = ByName(ts);
  ExpectShape(by_name, "model.layers.0.self_attn.q_norm.weight", {8});
  EXPECT_EQ(by_name.size(), 3u + 2 * (1 + 3 + 2 + 1 + 1 + 2 + 1));
}

TEST(ExpectedTensorsTest, NamesAreUniqueAcrossABiggerModel) {
  ModelConfig c = Moe();
  c.num_layers = 12;
  c.num_experts = 128;
  c.qk_layernorm = true;
  c.router_expert_bias = false;
  const std::vector<ExpectedTensor> ts = Expect(c, "qwen3_moe");
  EXPECT_EQ(ts.size(), 3u + 12 * (9 + 128 * 3));
  EXPECT_EQ(ByName(ts).size(), ts.size());
}

TEST(ExpectedTensorsTest, ArchitectureAndConfigMismatch) {
  EXPECT_THAT(ExpectedTensors(Moe(), Arch("llama"), 100),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("LlamaForCausalLM is a dense architecture"),
                             HasSubstr("4 experts"))));
  EXPECT_THAT(ExpectedTensors(Dense(), Arch("qwen3_moe"), 100),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("Qwen3MoeForCausalLM is a mixture-of-experts architecture")));
}

TEST(ExpectedTensorsTest, RolesTheArchitectureCannotName) {
  struct Case {
    const char* arch;
    ModelConfig config;
  };
  ModelConfig mixtral_qk = Moe();
  mixtral_qk.qk_layernorm = true;
  ModelConfig llama_bias = Dense();
  llama_bias.add_qkv_bias = true;
  ModelConfig qwen3_shared = Moe();
  qwen3_shared.qk_layernorm = true;
  qwen3_shared.shared_expert_ffn_size = 8;
  ModelConfig qwen3_expert_bias = Moe();
  qwen3_expert_bias.qk_layernorm = true;
  qwen3_expert_bias.router_expert_bias = true;
  const Case cases[] = {
      {"mixtral", mixtral_qk},
      {"llama", llama_bias},
      {"qwen3_moe", qwen3_shared},
      {"qwen3_moe", qwen3_expert_bias},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.arch);
    EXPECT_THAT(ExpectedTensors(c.config, Arch(c.arch), 100),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("has no Hugging Face name for Megatron role")));
  }
}

TEST(ExpectedTensorsTest, UnsupportedMlps) {
  ModelConfig bias = Dense();
  bias.add_bias_linear = true;
  EXPECT_THAT(ExpectedTensors(bias, Arch("llama"), 100),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("add_bias_linear")));
  ModelConfig gelu = Dense();
  gelu.swiglu = false;
  EXPECT_THAT(ExpectedTensors(gelu, Arch("llama"), 100),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("SwiGLU")));
}

}  // namespace
}  // namespace mxport::exporter
