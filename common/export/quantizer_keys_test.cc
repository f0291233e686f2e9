// ModelOpt quantizer keys in Megatron checkpoints: the weight -> amax table and the parser,
// table-driven over legacy (`model` dict) and torch_dist key forms.
#include "common/export/quantizer_keys.h"

#include <optional>
#include <string>
#include <vector>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mxport::exporter {
namespace {

using ::mxport::testing::IsOk;
using ::mxport::testing::StatusIs;
using ::testing::ElementsAre;

constexpr int64_t kNo = -1;

struct ParseCase {
  const char* key;
  const char* module;
  QuantizerKind kind;
  QuantizerState state;
  int64_t expert;  // kNo: none
  ExpertIndexSpace space;
  int64_t level;   // kNo: none
  bool shared;
};

using K = QuantizerKind;
using S = QuantizerState;
using X = ExpertIndexSpace;

const ParseCase kParseCases[] = {
    {"decoder.layers.0.self_attention.linear_qkv.weight_quantizer._amax",
     "decoder.layers.0.self_attention.linear_qkv", K::kWeight, S::kAmax, kNo, X::kNone, kNo,
     false},
    {"decoder.layers.0.self_attention.linear_qkv.input_quantizer._amax",
     "decoder.layers.0.self_attention.linear_qkv", K::kInput, S::kAmax, kNo, X::kNone, kNo, false},
    {"decoder.layers.2.self_attention.linear_proj.input_quantizer._pre_quant_scale",
     "decoder.layers.2.self_attention.linear_proj", K::kInput, S::kPreQuantScale, kNo, X::kNone,
     kNo, false},
    {"decoder.layers.1.self_attention.core_attention.k_bmm_quantizer._amax",
     "decoder.layers.1.self_attention.core_attention", K::kKBmm, S::kAmax, kNo, X::kNone, kNo,
     false},
    {"decoder.layers.1.self_attention.core_attention.v_bmm_quantizer._bias_value",
     "decoder.layers.1.self_attention.core_attention", K::kVBmm, S::kBiasValue, kNo, X::kNone,
     kNo, false},
    {"decoder.layers.1.self_attention.core_attention.q_bmm_quantizer._amax",
     "decoder.layers.1.self_attention.core_attention", K::kQBmm, S::kAmax, kNo, X::kNone, kNo,
     false},
    // TEGroupedMLP, legacy: GroupedQuantizer entry per local expert; shared input amax.
    {"decoder.layers.3.mlp.experts.linear_fc1.weight_quantizer.7._amax",
     "decoder.layers.3.mlp.experts.linear_fc1", K::kWeight, S::kAmax, 7, X::kLocal, kNo, false},
    {"decoder.layers.3.mlp.experts.linear_fc2.weight_quantizer.0._global_amax",
     "decoder.layers.3.mlp.experts.linear_fc2", K::kWeight, S::kGlobalAmax, 0, X::kLocal, kNo,
     false},
    {"decoder.layers.3.mlp.experts.linear_fc1.weight_quantizer.7.1._amax",
     "decoder.layers.3.mlp.experts.linear_fc1", K::kWeight, S::kAmax, 7, X::kLocal, 1, false},
    {"decoder.layers.3.mlp.experts.linear_fc1.input_quantizer._amax",
     "decoder.layers.3.mlp.experts.linear_fc1", K::kInput, S::kAmax, kNo, X::kNone, kNo, true},
    // Pre-0.47 TEGroupedMLP: one weight amax for every expert.
    {"decoder.layers.3.mlp.experts.linear_fc1.weight_quantizer._amax",
     "decoder.layers.3.mlp.experts.linear_fc1", K::kWeight, S::kAmax, kNo, X::kNone, kNo, true},
    // SequentialMLP, legacy.
    {"decoder.layers.0.mlp.experts.local_experts.5.linear_fc2.weight_quantizer._amax",
     "decoder.layers.0.mlp.experts.local_experts.5.linear_fc2", K::kWeight, S::kAmax, 5,
     X::kLocal, kNo, false},
    // torch_dist singleton keys: global expert in the path; TEGroupedMLP shared input.
    {"decoder.layers.0.mlp.experts.experts.12.linear_fc1.weight_quantizer._amax",
     "decoder.layers.0.mlp.experts.experts.12.linear_fc1", K::kWeight, S::kAmax, 12, X::kGlobal,
     kNo, false},
    {"decoder.layers.0.mlp.experts.experts.linear_fc1.input_quantizer._amax",
     "decoder.layers.0.mlp.experts.experts.linear_fc1", K::kInput, S::kAmax, kNo, X::kNone, kNo,
     true},
    // Homogeneous torch_dist stack (no layer number), W4A8 sequential level, output layer.
    {"decoder.layers.mlp.linear_fc1.weight_quantizer.1._amax", "decoder.layers.mlp.linear_fc1",
     K::kWeight, S::kAmax, kNo, X::kNone, 1, false},
    {"output_layer.weight_quantizer._scale", "output_layer", K::kWeight, S::kScale, kNo, X::kNone,
     kNo, false},
    {"decoder.layers.0.mlp.shared_experts.linear_fc2.output_quantizer._amax",
     "decoder.layers.0.mlp.shared_experts.linear_fc2", K::kOutput, S::kAmax, kNo, X::kNone, kNo,
     false},
};

TEST(QuantizerKeysTest, ParsesEveryForm) {
  for (const ParseCase& c : kParseCases) {
    SCOPED_TRACE(c.key);
    auto parsed = ParseQuantizerKey(c.key);
    ASSERT_THAT(parsed, IsOk());
    ASSERT_TRUE(parsed->has_value());
    const ParsedQuantizerKey& p = **parsed;
    EXPECT_EQ(p.module, c.module);
    EXPECT_EQ(p.kind, c.kind);
    EXPECT_EQ(p.state, c.state);
    EXPECT_EQ(p.expert, c.expert == kNo ? std::nullopt : std::optional<int64_t>(c.expert));
    EXPECT_EQ(p.expert_space, c.space);
    EXPECT_EQ(p.level, c.level == kNo ? std::nullopt : std::optional<int64_t>(c.level));
    EXPECT_EQ(p.shared_by_experts, c.shared);
    // Round trip: module + attribute (+ indices) + state rebuilds the key.
    EXPECT_TRUE(std::string(c.key).rfind(p.module + "." +
                                             std::string(QuantizerAttrName(p.kind)),
                                         0) == 0);
    EXPECT_TRUE(std::string(c.key).size() >= QuantizerStateName(p.state).size());
  }
}

TEST(QuantizerKeysTest, NonQuantizerKeysAreNotParsed) {
  for (const char* key : {"decoder.layers.0.self_attention.linear_qkv.weight",
                          "decoder.layers.0.mlp.experts.linear_fc1.weight3",
                          "decoder.layers.0.self_attention.linear_qkv._extra_state",
                          "embedding.word_embeddings.weight", "modelopt_state"}) {
    auto parsed = ParseQuantizerKey(key);
    ASSERT_THAT(parsed, IsOk()) << key;
    EXPECT_FALSE(parsed->has_value()) << key;
  }
}

TEST(QuantizerKeysTest, MalformedQuantizerKeysAreErrors) {
  for (const char* key : {
           "decoder.layers.0.foo_quantizer._amax",                 // unknown quantizer
           "decoder.layers.0.linear_qkv.weight_quantizer._foo",    // unknown state
           "decoder.layers.0.linear_qkv.weight_quantizer",         // no state
           "weight_quantizer._amax",                               // no module
           "decoder.layers.0.linear_qkv.input_quantizer.3._amax",  // indexed input
           "decoder.layers.0.linear_qkv.weight_quantizer.x._amax",  // not an index
           "decoder.layers.0.linear_qkv.weight_quantizer.1.2._amax",  // 2 indices, not grouped
           "decoder.layers.0.mlp.experts.linear_fc1.weight_quantizer.1.2.3._amax",
       }) {
    EXPECT_THAT(ParseQuantizerKey(key), StatusIs(absl::StatusCode::kInvalidArgument)) << key;
  }
}

struct TableCase {
  const char* weight;
  const char* weight_amax;
  std::vector<std::string> input_amax;
  const char* k_bmm;
  const char* v_bmm;
};

const TableCase kTableCases[] = {
    {"decoder.layers.4.self_attention.linear_qkv.weight",
     "decoder.layers.4.self_attention.linear_qkv.weight_quantizer._amax",
     {"decoder.layers.4.self_attention.linear_qkv.input_quantizer._amax"},
     "decoder.layers.4.self_attention.core_attention.k_bmm_quantizer._amax",
     "decoder.layers.4.self_attention.core_attention.v_bmm_quantizer._amax"},
    {"decoder.layers.4.self_attention.linear_proj.weight",
     "decoder.layers.4.self_attention.linear_proj.weight_quantizer._amax",
     {"decoder.layers.4.self_attention.linear_proj.input_quantizer._amax"}, "", ""},
    {"decoder.layers.0.mlp.linear_fc1.weight",
     "decoder.layers.0.mlp.linear_fc1.weight_quantizer._amax",
     {"decoder.layers.0.mlp.linear_fc1.input_quantizer._amax"}, "", ""},
    {"decoder.layers.1.mlp.shared_experts.linear_fc2.weight",
     "decoder.layers.1.mlp.shared_experts.linear_fc2.weight_quantizer._amax",
     {"decoder.layers.1.mlp.shared_experts.linear_fc2.input_quantizer._amax"}, "", ""},
    {"decoder.layers.1.mlp.experts.linear_fc1.weight3",
     "decoder.layers.1.mlp.experts.linear_fc1.weight_quantizer.3._amax",
     {"decoder.layers.1.mlp.experts.linear_fc1.input_quantizer._amax"}, "", ""},
    {"decoder.layers.1.mlp.experts.linear_fc2.weight12",
     "decoder.layers.1.mlp.experts.linear_fc2.weight_quantizer.12._amax",
     {"decoder.layers.1.mlp.experts.linear_fc2.input_quantizer._amax"}, "", ""},
    {"decoder.layers.1.mlp.experts.local_experts.3.linear_fc1.weight",
     "decoder.layers.1.mlp.experts.local_experts.3.linear_fc1.weight_quantizer._amax",
     {"decoder.layers.1.mlp.experts.local_experts.3.linear_fc1.input_quantizer._amax"}, "", ""},
    {"decoder.layers.1.mlp.experts.experts.40.linear_fc2.weight",
     "decoder.layers.1.mlp.experts.experts.40.linear_fc2.weight_quantizer._amax",
     {"decoder.layers.1.mlp.experts.experts.40.linear_fc2.input_quantizer._amax",
      "decoder.layers.1.mlp.experts.experts.linear_fc2.input_quantizer._amax"},
     "", ""},
    // Singleton SwiGLU halves map to the unsplit module's quantizers.
    {"decoder.layers.1.mlp.experts.experts.40.linear_fc1.weight_w",
     "decoder.layers.1.mlp.experts.experts.40.linear_fc1.weight_quantizer._amax",
     {"decoder.layers.1.mlp.experts.experts.40.linear_fc1.input_quantizer._amax",
      "decoder.layers.1.mlp.experts.experts.linear_fc1.input_quantizer._amax"},
     "", ""},
    {"decoder.layers.mlp.linear_fc1.weight_v",
     "decoder.layers.mlp.linear_fc1.weight_quantizer._amax",
     {"decoder.layers.mlp.linear_fc1.input_quantizer._amax"}, "", ""},
    {"decoder.layers.2.self_attention.linear_kv_up_proj.weight",
     "decoder.layers.2.self_attention.linear_kv_up_proj.weight_quantizer._amax",
     {"decoder.layers.2.self_attention.linear_kv_up_proj.input_quantizer._amax"}, "", ""},
    {"output_layer.weight", "output_layer.weight_quantizer._amax",
     {"output_layer.input_quantizer._amax"}, "", ""},
};

TEST(QuantizerKeysTest, WeightToAmaxTable) {
  for (const TableCase& c : kTableCases) {
    SCOPED_TRACE(c.weight);
    auto keys = QuantizerKeysForWeight(c.weight);
    ASSERT_THAT(keys, IsOk());
    EXPECT_EQ(keys->weight_amax, c.weight_amax);
    EXPECT_EQ(keys->input_amax, c.input_amax);
    EXPECT_EQ(keys->k_bmm_amax, c.k_bmm);
    EXPECT_EQ(keys->v_bmm_amax, c.v_bmm);
    // Every produced key parses back to the weight's module.
    auto parsed = ParseQuantizerKey(keys->weight_amax);
    ASSERT_THAT(parsed, IsOk());
    ASSERT_TRUE(parsed->has_value());
    EXPECT_EQ((*parsed)->kind, QuantizerKind::kWeight);
    for (const std::string& in : keys->input_amax) {
      auto p = ParseQuantizerKey(in);
      ASSERT_THAT(p, IsOk());
      ASSERT_TRUE(p->has_value());
      EXPECT_EQ((*p)->kind, QuantizerKind::kInput);
    }
  }
}

TEST(QuantizerKeysTest, UnquantizableWeightsHaveNoRule) {
  for (const char* key : {"embedding.word_embeddings.weight", "decoder.layers.0.mlp.router.weight",
                          "decoder.final_layernorm.weight", "linear_qkv.weight",
                          "self_attention.linear_qkv.weight"}) {
    EXPECT_THAT(QuantizerKeysForWeight(key), StatusIs(absl::StatusCode::kNotFound)) << key;
  }
}

TEST(QuantizerKeysTest, NamesComeFromTheTables) {
  EXPECT_EQ(QuantizerAttrName(QuantizerKind::kKBmm), "k_bmm_quantizer");
  EXPECT_EQ(QuantizerStateName(QuantizerState::kPreQuantScale), "_pre_quant_scale");
  EXPECT_FALSE(QuantizerKeyRules().empty());
  int top_level = 0;
  for (const QuantizerKeyRule& r : QuantizerKeyRules()) {
    if (r.top_level) ++top_level;
    EXPECT_FALSE(r.input_amax.empty()) << r.weight;
  }
  EXPECT_EQ(top_level, 1);
}

}  // namespace
}  // namespace mxport::exporter
