// Quantization metadata: module selection, the exact hf_quant_config.json / config.json
// strings for a tiny Qwen3-MoE-like model, exclude lists as exact complements, and the tensor
// table.
#include "common/export/quant_config.h"

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mxport::exporter {
namespace {

using ::mxport::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// One MoE layer, two experts, untied lm_head; HF names as the naming rules render them.
const std::vector<std::string>& TinyModules() {
  static const auto* m = new std::vector<std::string>{
      "model.embed_tokens",
      "model.layers.0.self_attn.q_proj",
      "model.layers.0.self_attn.k_proj",
      "model.layers.0.self_attn.v_proj",
      "model.layers.0.self_attn.o_proj",
      "model.layers.0.mlp.gate",
      "model.layers.0.mlp.experts.0.gate_proj",
      "model.layers.0.mlp.experts.0.up_proj",
      "model.layers.0.mlp.experts.0.down_proj",
      "model.layers.0.mlp.experts.1.gate_proj",
      "model.layers.0.mlp.experts.1.up_proj",
      "model.layers.0.mlp.experts.1.down_proj",
      "lm_head",
  };
  return *m;
}

constexpr char kExcluded[] = R"(["lm_head","model.embed_tokens","model.layers.0.mlp.gate"])";
constexpr char kProducer[] = R"({"name":"mxport","version":"1.2.3"})";

std::string S(const char* a, const char* b = "", const char* c = "", const char* d = "",
              const char* e = "", const char* f = "", const char* g = "") {
  return std::string(a) + b + c + d + e + f + g;
}

QuantConfigs Build(const QuantPolicy& policy, KvCacheAlgo kv = KvCacheAlgo::kNone) {
  auto modules = AssignQuantization(TinyModules(), policy);
  EXPECT_THAT(modules, ::mxport::testing::IsOk());
  QuantConfigInput input{*modules, kv, {"mxport", "1.2.3"}};
  auto configs = BuildQuantConfigs(input);
  EXPECT_THAT(configs, ::mxport::testing::IsOk());
  return *configs;
}

// Every non-norm module is either quantized or excluded, never both.
void ExpectExactComplement(const std::vector<ModuleQuant>& modules) {
  const std::vector<std::string> excluded = ExcludedModules(modules);
  const std::set<std::string> ex(excluded.begin(), excluded.end());
  EXPECT_TRUE(std::is_sorted(excluded.begin(), excluded.end()));
  for (const ModuleQuant& m : modules) {
    if (m.name.find("norm") != std::string::npos) {
      EXPECT_EQ(ex.count(m.name), 0u) << m.name;
      continue;
    }
    EXPECT_EQ(ex.count(m.name) == 1, m.algo == QuantAlgo::kNone) << m.name;
  }
}

TEST(QuantConfigTest, UniformNvfp4) {
  const QuantConfigs c = Build({QuantAlgo::kNvfp4});
  ASSERT_TRUE(c.hf_quant_config.has_value());
  ASSERT_TRUE(c.quantization_config.has_value());
  EXPECT_EQ(c.hf_quant_config->dump(),
            S(R"({"producer":)", kProducer,
              R"(,"quantization":{"quant_algo":"NVFP4","kv_cache_quant_algo":null,)",
              R"("group_size":16,"exclude_modules":)", kExcluded, "}}"));
  EXPECT_EQ(c.quantization_config->dump(),
            S(R"({"config_groups":{"group_0":{"input_activations":{"dynamic":false,)",
              R"("num_bits":4,"type":"float","group_size":16},"weights":{"dynamic":false,)",
              R"("num_bits":4,"type":"float","group_size":16},"targets":["Linear"]}},)",
              R"("ignore":)", kExcluded, R"(,"quant_algo":"NVFP4","producer":)",
              S(kProducer, R"(,"quant_method":"modelopt"})").c_str()));
}

TEST(QuantConfigTest, UniformFp8WithFp8KvCache) {
  const QuantConfigs c = Build({QuantAlgo::kFp8}, KvCacheAlgo::kFp8);
  EXPECT_EQ(c.hf_quant_config->dump(),
            S(R"({"producer":)", kProducer,
              R"(,"quantization":{"quant_algo":"FP8","kv_cache_quant_algo":"FP8",)",
              R"("exclude_modules":)", kExcluded, "}}"));
  EXPECT_EQ(c.quantization_config->dump(),
            S(R"({"config_groups":{"group_0":{"input_activations":{"dynamic":false,)",
              R"("num_bits":8,"type":"float"},"weights":{"dynamic":false,"num_bits":8,)",
              R"("type":"float"},"targets":["Linear"]}},"ignore":)", kExcluded,
              R"(,"quant_algo":"FP8","kv_cache_scheme":{"dynamic":false,"num_bits":8,)",
              R"("type":"float"},"producer":)",
              S(kProducer, R"(,"quant_method":"modelopt"})").c_str()));
}

TEST(QuantConfigTest, UniformW4A16HasNoInputActivations) {
  const QuantConfigs c = Build({QuantAlgo::kW4A16Nvfp4});
  EXPECT_EQ(c.hf_quant_config->dump(),
            S(R"({"producer":)", kProducer,
              R"(,"quantization":{"quant_algo":"W4A16_NVFP4","kv_cache_quant_algo":null,)",
              R"("group_size":16,"exclude_modules":)", kExcluded, "}}"));
  EXPECT_EQ(c.quantization_config->dump(),
            S(R"({"config_groups":{"group_0":{"weights":{"dynamic":false,"num_bits":4,)",
              R"("type":"float","group_size":16},"targets":["Linear"]}},"ignore":)", kExcluded,
              R"(,"quant_algo":"W4A16_NVFP4","producer":)",
              S(kProducer, R"(,"quant_method":"modelopt"})").c_str()));
}

TEST(QuantConfigTest, MixedNvfp4ExpertsFp8Attention) {
  QuantPolicy policy{QuantAlgo::kNvfp4, {{"*.self_attn.*", QuantAlgo::kFp8}}, {}};
  const QuantConfigs c = Build(policy, KvCacheAlgo::kFp8);
  const std::string nv = R"({"quant_algo":"NVFP4","group_size":16})";
  const std::string fp8 = R"({"quant_algo":"FP8"})";
  const std::string e = "model.layers.0.mlp.experts.";
  const std::string a = "model.layers.0.self_attn.";
  const std::string layers =
      "{\"" + e + "0.down_proj\":" + nv + ",\"" + e + "0.gate_proj\":" + nv + ",\"" + e +
      "0.up_proj\":" + nv + ",\"" + e + "1.down_proj\":" + nv + ",\"" + e +
      "1.gate_proj\":" + nv + ",\"" + e + "1.up_proj\":" + nv + ",\"" + a + "k_proj\":" + fp8 +
      ",\"" + a + "o_proj\":" + fp8 + ",\"" + a + "q_proj\":" + fp8 + ",\"" + a +
      "v_proj\":" + fp8 + "}";
  EXPECT_EQ(c.hf_quant_config->dump(),
            S(R"({"producer":)", kProducer,
              R"(,"quantization":{"quant_algo":"MIXED_PRECISION","kv_cache_quant_algo":"FP8",)",
              R"("quantized_layers":)") +
                layers + R"(,"exclude_modules":)" + kExcluded + "}}");
  const std::string expert_targets = "[\"" + e + "0.down_proj\",\"" + e + "0.gate_proj\",\"" +
                                     e + "0.up_proj\",\"" + e + "1.down_proj\",\"" + e +
                                     "1.gate_proj\",\"" + e + "1.up_proj\"]";
  const std::string attn_targets = "[\"" + a + "k_proj\",\"" + a + "o_proj\",\"" + a +
                                   "q_proj\",\"" + a + "v_proj\"]";
  EXPECT_EQ(
      c.quantization_config->dump(),
      S(R"({"config_groups":{"group_0":{"input_activations":{"dynamic":false,"num_bits":4,)",
        R"("type":"float","group_size":16},"weights":{"dynamic":false,"num_bits":4,)",
        R"("type":"float","group_size":16},"targets":)") +
          expert_targets +
          R"(},"group_1":{"input_activations":{"dynamic":false,"num_bits":8,"type":"float"},)"
          R"("weights":{"dynamic":false,"num_bits":8,"type":"float"},"targets":)" +
          attn_targets + R"(}},"quantized_layers":)" + layers + R"(,"ignore":)" + kExcluded +
          R"(,"quant_algo":"MIXED_PRECISION","kv_cache_scheme":{"dynamic":false,)"
          R"("num_bits":8,"type":"float"},"producer":)" +
          kProducer + R"(,"quant_method":"modelopt"})");
}

TEST(QuantConfigTest, BlockFp8UsesTheDeepSeekFormAndNoHfQuantConfig) {
  const QuantConfigs c = Build({QuantAlgo::kFp8Block});
  EXPECT_FALSE(c.hf_quant_config.has_value());
  ASSERT_TRUE(c.quantization_config.has_value());
  EXPECT_EQ(c.quantization_config->dump(),
            S(R"({"quant_method":"fp8","fmt":"e4m3","activation_scheme":"dynamic",)",
              R"("weight_block_size":[128,128],"modules_to_not_convert":)", kExcluded,
              R"(,"ignored_layers":)", kExcluded, "}"));
}

TEST(QuantConfigTest, BlockFp8CannotMixOrDeclareKvCache) {
  std::vector<ModuleQuant> mixed = {{"a.q_proj", QuantAlgo::kFp8Block},
                                    {"a.k_proj", QuantAlgo::kFp8}};
  EXPECT_THAT(BuildQuantConfigs({mixed, KvCacheAlgo::kNone, {}}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  std::vector<ModuleQuant> block = {{"a.q_proj", QuantAlgo::kFp8Block}};
  EXPECT_THAT(BuildQuantConfigs({block, KvCacheAlgo::kFp8, {}}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(QuantConfigTest, UnquantizedModelWritesNothingAndKvAloneIsRejected) {
  std::vector<ModuleQuant> none = {{"lm_head", QuantAlgo::kNone}};
  auto c = BuildQuantConfigs({none, KvCacheAlgo::kNone, {}});
  ASSERT_THAT(c, ::mxport::testing::IsOk());
  EXPECT_FALSE(c->hf_quant_config.has_value());
  EXPECT_FALSE(c->quantization_config.has_value());
  EXPECT_THAT(BuildQuantConfigs({none, KvCacheAlgo::kFp8, {}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("KV cache")));
}

TEST(QuantConfigTest, DefaultsQuantizeEveryDecoderLinearAndExcludeTheRest) {
  auto modules = AssignQuantization(TinyModules(), {QuantAlgo::kNvfp4});
  ASSERT_THAT(modules, ::mxport::testing::IsOk());
  EXPECT_THAT(ExcludedModules(*modules),
              ElementsAre("lm_head", "model.embed_tokens", "model.layers.0.mlp.gate"));
  ExpectExactComplement(*modules);
  for (const ModuleQuant& m : *modules) {
    const bool decoder_linear =
        m.name.find("_proj") != std::string::npos && m.name.find("layers") != std::string::npos;
    EXPECT_EQ(m.algo == QuantAlgo::kNvfp4, decoder_linear) << m.name;
  }
}

TEST(QuantConfigTest, OtherArchitecturesRoutersEmbeddingsAndConvAreExcluded) {
  const std::vector<std::string> names = {
      "backbone.embeddings",
      "backbone.layers.0.mixer.conv1d",
      "backbone.layers.0.mixer.in_proj",
      "backbone.layers.1.mixer.gate",
      "backbone.layers.1.mixer.experts.0.up_proj",
      "backbone.layers.1.mixer.shared_experts.up_proj",
      "model.layers.2.mlp.router",
      "model.layers.3.mlp.shared_expert_gate",
      "model.layers.3.mlp.shared_expert.gate_proj",
      "model.layers.4.block_sparse_moe.gate",
      "model.layers.4.block_sparse_moe.experts.0.w1",
      "backbone.layers.0.norm",
      "lm_head",
  };
  auto modules = AssignQuantization(names, {QuantAlgo::kFp8});
  ASSERT_THAT(modules, ::mxport::testing::IsOk());
  EXPECT_THAT(ExcludedModules(*modules),
              ElementsAre("backbone.embeddings", "backbone.layers.0.mixer.conv1d",
                          "backbone.layers.1.mixer.gate", "lm_head",
                          "model.layers.2.mlp.router", "model.layers.3.mlp.shared_expert_gate",
                          "model.layers.4.block_sparse_moe.gate"));
  ExpectExactComplement(*modules);
}

TEST(QuantConfigTest, UserPatternsExcludeAndOverride) {
  QuantPolicy policy{QuantAlgo::kNvfp4, {{"lm_head", QuantAlgo::kFp8}}, {"*.experts.1.*"}};
  auto modules = AssignQuantization(TinyModules(), policy);
  ASSERT_THAT(modules, ::mxport::testing::IsOk());
  EXPECT_THAT(ExcludedModules(*modules),
              ElementsAre("model.embed_tokens", "model.layers.0.mlp.experts.1.down_proj",
                          "model.layers.0.mlp.experts.1.gate_proj",
                          "model.layers.0.mlp.experts.1.up_proj", "model.layers.0.mlp.gate"));
  EXPECT_EQ(modules->back().name, "lm_head");
  EXPECT_EQ(modules->back().algo, QuantAlgo::kFp8);
  ExpectExactComplement(*modules);

  // Exclusion beats an override naming the same module.
  QuantPolicy both{QuantAlgo::kNvfp4, {{"lm_head", QuantAlgo::kFp8}}, {"lm_head"}};
  auto m2 = AssignQuantization(TinyModules(), both);
  ASSERT_THAT(m2, ::mxport::testing::IsOk());
  EXPECT_EQ(m2->back().algo, QuantAlgo::kNone);
}

TEST(QuantConfigTest, PatternsThatMatchNothingAreErrors) {
  QuantPolicy policy{QuantAlgo::kNvfp4, {{"*.self_atn.*", QuantAlgo::kFp8}}, {"*.typo"}};
  EXPECT_THAT(AssignQuantization(TinyModules(), policy),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::AllOf(HasSubstr("exclude '*.typo'"),
                                        HasSubstr("override '*.self_atn.*'"))));
  // A pattern matching only norms matches nothing: norms are not candidates.
  const std::vector<std::string> with_norm = {"model.layers.0.input_layernorm",
                                              "model.layers.0.self_attn.q_proj"};
  EXPECT_THAT(AssignQuantization(with_norm, {QuantAlgo::kFp8, {}, {"*layernorm"}}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(AssignQuantization(with_norm, {QuantAlgo::kFp8, {}, {""}}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(QuantConfigTest, NormsAreNeverQuantizedNorListed) {
  const std::vector<std::string> names = {"model.layers.0.input_layernorm", "model.norm",
                                          "model.layers.0.self_attn.q_proj"};
  auto modules = AssignQuantization(names, {QuantAlgo::kFp8});
  ASSERT_THAT(modules, ::mxport::testing::IsOk());
  EXPECT_EQ((*modules)[0].algo, QuantAlgo::kNone);
  EXPECT_EQ((*modules)[1].algo, QuantAlgo::kNone);
  EXPECT_TRUE(ExcludedModules(*modules).empty());
  std::vector<ModuleQuant> bad = {{"model.norm", QuantAlgo::kFp8}};
  EXPECT_THAT(BuildQuantConfigs({bad, KvCacheAlgo::kNone, {}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("norm")));
}

TEST(QuantConfigTest, BadModuleNamesAreRejected) {
  for (const std::vector<ModuleQuant>& bad :
       {std::vector<ModuleQuant>{{"a.q_proj", QuantAlgo::kFp8}, {"a.q_proj", QuantAlgo::kFp8}},
        std::vector<ModuleQuant>{{"", QuantAlgo::kFp8}},
        std::vector<ModuleQuant>{{"a.q_proj.", QuantAlgo::kFp8}}}) {
    EXPECT_THAT(BuildQuantConfigs({bad, KvCacheAlgo::kNone, {}}),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
}

TEST(QuantConfigTest, OutputIsIndependentOfInputOrder) {
  QuantPolicy policy{QuantAlgo::kNvfp4, {{"*.self_attn.*", QuantAlgo::kFp8}}, {}};
  const QuantConfigs ref = Build(policy, KvCacheAlgo::kFp8);
  std::vector<std::string> shuffled = TinyModules();
  std::mt19937 rng(7);
  for (int round = 0; round < 5; ++round) {
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    auto modules = AssignQuantization(shuffled, policy);
    ASSERT_THAT(modules, ::mxport::testing::IsOk());
    auto c = BuildQuantConfigs({*modules, KvCacheAlgo::kFp8, {"mxport", "1.2.3"}});
    ASSERT_THAT(c, ::mxport::testing::IsOk());
    EXPECT_EQ(c->hf_quant_config->dump(), ref.hf_quant_config->dump());
    EXPECT_EQ(c->quantization_config->dump(), ref.quantization_config->dump());
  }
}

TEST(QuantConfigTest, ConvertMatchesModelOptDocstringExample) {
  // convert_hf_quant_config_format's documented FP8 example.
  const OrderedJson in = OrderedJson::parse(
      R"({"producer":{"name":"modelopt","version":"0.19.0"},"quantization":)"
      R"({"quant_algo":"FP8","kv_cache_quant_algo":"FP8","exclude_modules":["lm_head"]}})");
  auto out = ConvertHfQuantConfig(in);
  ASSERT_THAT(out, ::mxport::testing::IsOk());
  EXPECT_EQ(out->dump(),
            R"({"config_groups":{"group_0":{"input_activations":{"dynamic":false,"num_bits":8,)"
            R"("type":"float"},"weights":{"dynamic":false,"num_bits":8,"type":"float"},)"
            R"("targets":["Linear"]}},"ignore":["lm_head"],"quant_algo":"FP8",)"
            R"("kv_cache_scheme":{"dynamic":false,"num_bits":8,"type":"float"},)"
            R"("producer":{"name":"modelopt","version":"0.19.0"},"quant_method":"modelopt"})");
}

TEST(QuantConfigTest, ConvertGroupsMixedLayersInFirstAppearanceOrder) {
  const OrderedJson in = OrderedJson::parse(
      R"({"quantization":{"quant_algo":"MIXED_PRECISION","kv_cache_quant_algo":null,)"
      R"("quantized_layers":{"z.fc":{"quant_algo":"FP8"},)"
      R"("b.fc":{"group_size":16,"quant_algo":"NVFP4"},"a.fc":{"quant_algo":"FP8"}},)"
      R"("exclude_modules":["lm_head"]}})");
  auto out = ConvertHfQuantConfig(in);
  ASSERT_THAT(out, ::mxport::testing::IsOk());
  EXPECT_EQ((*out)["config_groups"]["group_0"]["targets"].dump(), R"(["a.fc","z.fc"])");
  EXPECT_EQ((*out)["config_groups"]["group_1"]["targets"].dump(), R"(["b.fc"])");
  EXPECT_FALSE(out->contains("kv_cache_scheme"));
  EXPECT_FALSE(out->contains("producer"));
  EXPECT_THAT(ConvertHfQuantConfig(OrderedJson::parse(R"({"quantization":{"quant_algo":"X"}})")),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ConvertHfQuantConfig(OrderedJson::parse("{}")),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(QuantConfigTest, ModuleMatchesFollowsFnmatchOnModuleAndQuantizerNames) {
  EXPECT_TRUE(ModuleMatches("*mlp.gate.*", "model.layers.0.mlp.gate"));
  EXPECT_FALSE(ModuleMatches("*mlp.gate.*", "model.layers.0.mlp.gate_proj"));
  EXPECT_TRUE(ModuleMatches("*.mlp.gate", "model.layers.0.mlp.gate"));
  EXPECT_TRUE(ModuleMatches("lm_head", "lm_head"));
  EXPECT_FALSE(ModuleMatches("lm_head", "model.lm_head"));
  EXPECT_TRUE(ModuleMatches("*layers.?.self_attn.[qk]_proj", "model.layers.3.self_attn.k_proj"));
  EXPECT_FALSE(ModuleMatches("*layers.?.self_attn.[qk]_proj", "model.layers.3.self_attn.v_proj"));
  EXPECT_TRUE(ModuleMatches("*experts.[!0]*", "model.layers.0.mlp.experts.1.up_proj"));
  EXPECT_FALSE(ModuleMatches("*experts.[!0]*", "model.layers.0.mlp.experts.0.up_proj"));
  EXPECT_TRUE(ModuleMatches("*experts.[0-3].*", "x.experts.2.up_proj"));
  EXPECT_FALSE(ModuleMatches("*experts.[0-3].*", "x.experts.7.up_proj"));
  EXPECT_TRUE(ModuleMatches("a[b", "a[b"));
}

TEST(QuantConfigTest, ParseNames) {
  EXPECT_THAT(ParseQuantAlgo("nvfp4"), ::mxport::testing::IsOkAndHolds(QuantAlgo::kNvfp4));
  EXPECT_THAT(ParseQuantAlgo("W4A16_NVFP4"),
              ::mxport::testing::IsOkAndHolds(QuantAlgo::kW4A16Nvfp4));
  EXPECT_THAT(ParseQuantAlgo("fp8_block"), ::mxport::testing::IsOkAndHolds(QuantAlgo::kFp8Block));
  EXPECT_THAT(ParseQuantAlgo("fp8_pb_wo"), ::mxport::testing::IsOkAndHolds(QuantAlgo::kFp8Block));
  EXPECT_THAT(ParseQuantAlgo("none"), ::mxport::testing::IsOkAndHolds(QuantAlgo::kNone));
  EXPECT_THAT(ParseQuantAlgo("int4"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NVFP4")));
  EXPECT_THAT(ParseKvCacheAlgo("FP8"), ::mxport::testing::IsOkAndHolds(KvCacheAlgo::kFp8));
  EXPECT_THAT(ParseKvCacheAlgo("nvfp4"), StatusIs(absl::StatusCode::kInvalidArgument));
  for (const QuantAlgoInfo& info : AllQuantAlgos()) {
    EXPECT_EQ(&GetQuantAlgoInfo(info.algo), &info);
  }
}

struct TensorCase {
  QuantAlgo algo;
  int64_t out, in;
  std::vector<std::string> expected;  // "suffix dtype shape"
};

std::string Describe(const QuantizedTensorSpec& t) {
  std::string s = std::string(t.suffix) + " " +
                  std::string(GetDTypeInfo(t.dtype).safetensors_name) + " [";
  for (size_t i = 0; i < t.shape.size(); ++i) {
    s += (i ? "," : "") + std::to_string(t.shape[i]);
  }
  return s + "]";
}

TEST(QuantConfigTest, QuantizedTensorsTable) {
  const TensorCase cases[] = {
      {QuantAlgo::kNvfp4, 256, 64,
       {"weight U8 [256,32]", "weight_scale F8_E4M3 [256,4]", "weight_scale_2 F32 []",
        "input_scale F32 []"}},
      {QuantAlgo::kW4A16Nvfp4, 8, 16,
       {"weight U8 [8,8]", "weight_scale F8_E4M3 [8,1]", "weight_scale_2 F32 []"}},
      {QuantAlgo::kFp8, 6, 10,
       {"weight F8_E4M3 [6,10]", "weight_scale F32 []", "input_scale F32 [1]"}},
      {QuantAlgo::kFp8Block, 300, 130,
       {"weight F8_E4M3 [300,130]", "weight_scale_inv F32 [3,2]"}},
      {QuantAlgo::kFp8Block, 256, 128,
       {"weight F8_E4M3 [256,128]", "weight_scale_inv F32 [2,1]"}},
  };
  for (const TensorCase& c : cases) {
    auto specs = QuantizedTensorsFor(c.algo, c.out, c.in);
    ASSERT_THAT(specs, ::mxport::testing::IsOk());
    std::vector<std::string> got;
    for (const QuantizedTensorSpec& t : *specs) got.push_back(Describe(t));
    EXPECT_EQ(got, c.expected) << GetQuantAlgoInfo(c.algo).name;
  }
  EXPECT_THAT(QuantizedTensorsFor(QuantAlgo::kNvfp4, 8, 24),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("16")));
  EXPECT_THAT(QuantizedTensorsFor(QuantAlgo::kNone, 8, 16),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(QuantizedTensorsFor(QuantAlgo::kFp8, 0, 16),
              StatusIs(absl::StatusCode::kInvalidArgument));
  std::vector<std::string> kv;
  for (const QuantizedTensorSpec& t : KvCacheTensorsFor(KvCacheAlgo::kFp8)) {
    kv.push_back(Describe(t));
  }
  EXPECT_THAT(kv, ElementsAre("k_proj.k_scale F32 [1]", "v_proj.v_scale F32 [1]"));
  EXPECT_TRUE(KvCacheTensorsFor(KvCacheAlgo::kNone).empty());
}

}  // namespace
}  // namespace mxport::exporter
