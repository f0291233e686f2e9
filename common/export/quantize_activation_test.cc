// Mode "nvfp4" on checkpoints that carry ModelOpt quantizer state (make_megatron_fixtures.py
// modelopt_state): weight amax from the weights (the files' weights and weight scales equal the
// export of the same model without quantizer state), input_scale from the checkpoint's
// activation amax, bit-identical to mode "checkpoint" and to amax/(6*448) of the rank files'
// scalars, W4A16_NVFP4 for modules without activation amax, each layer declared as written
// (MIXED_PRECISION when both occur), exclude_modules unchanged; the same files from every layout
// and the same statistics however they are split over workers.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/export/local_executor.h"
#include "common/export/quant_testutil.h"
#include "common/export/quantize_plan.h"
#include "common/fs/fs_testutil.h"
#include "common/json/json.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mxport::exporter {
namespace {

using ::mxport::testing::StatusIs;
using ::testing::HasSubstr;
using testutil::Exported;
using testutil::HfQuantization;
using testutil::kModelOptLayouts;
using testutil::ModulesWith;
using testutil::QuantizationConfig;
using testutil::Scalar;
using testutil::Tensors;

constexpr int kLayers = 6, kExperts = 8, kLocal = 4;  // qwen3_moe; EP = 2
constexpr float kNvfp4Bound = 6.0f * 448.0f;


class QuantizeActivationTest : public ::testing::Test {
 protected:
  Exported Export(const Json& layout, const std::string& mode) {
    return testutil::ExportLayout(layout, mode, Out(layout, mode));
  }
  std::string Out(const Json& layout, const std::string& tag) {
    return absl::StrCat(dir_.path(), "/", layout["name"].get<std::string>(), "_", tag);
  }

  fs::testutil::PosixTempDir dir_;
};

TEST_F(QuantizeActivationTest, InputScalesAreTheCheckpointModesAndWeightScalesTheWeights) {
  for (const char* name : kModelOptLayouts) {
    SCOPED_TRACE(name);
    const Json layout = testutil::CatalogLayout(name);
    ASSERT_FALSE(layout.is_null());
    const Json plain = testutil::CatalogLayout(layout["modelopt"]["pin_as"].get<std::string>());
    ASSERT_FALSE(plain.is_null());
    // The plan reads the activation amax and nothing else from the checkpoint.
    auto cp = testutil::PlanLayout(layout, "nvfp4");
    ASSERT_OK(cp.status());
    ASSERT_FALSE(cp->plan.amax_sources.empty());
    for (const AmaxSource& a : cp->plan.amax_sources) EXPECT_TRUE(a.input) << a.key;

    const Exported got = Export(layout, "nvfp4");
    const Exported checkpoint = Export(layout, "checkpoint");
    const Exported weights_only = Export(plain, "nvfp4");
    ASSERT_FALSE(got.files.empty() || checkpoint.files.empty() || weights_only.files.empty());
    const Tensors original = testutil::LayoutOriginal(layout);

    const std::set<std::string> quantized = ModulesWith(got.tensors, ".weight_scale_2");
    ASSERT_FALSE(quantized.empty());
    EXPECT_EQ(ModulesWith(got.tensors, ".input_scale"), quantized);
    EXPECT_EQ(ModulesWith(checkpoint.tensors, ".input_scale"), quantized);
    EXPECT_EQ(ModulesWith(weights_only.tensors, ".weight_scale_2"), quantized);
    EXPECT_TRUE(ModulesWith(weights_only.tensors, ".input_scale").empty());
    for (const std::string& m : quantized) {
      SCOPED_TRACE(m);
      const testutil::Tensor& in = got.tensors.at(m + ".input_scale");
      EXPECT_EQ(in.dtype, DType::kFloat32);
      EXPECT_EQ(in.shape, std::vector<int64_t>{});
      EXPECT_EQ(in.bytes, checkpoint.tensors.at(m + ".input_scale").bytes);
      EXPECT_EQ(Scalar(got.tensors.at(m + ".weight_scale_2")),
                testutil::FusedAmax(original, m + ".weight") / kNvfp4Bound);
    }
    // Everything else is the export of the same weights without quantizer state.
    EXPECT_EQ(got.tensors.size(), weights_only.tensors.size() + quantized.size());
    for (const auto& [tensor, t] : weights_only.tensors) {
      EXPECT_TRUE(got.tensors.contains(tensor) && got.tensors.at(tensor).bytes == t.bytes)
          << tensor;
    }

    const Json hf = HfQuantization(got), plain_hf = HfQuantization(weights_only);
    EXPECT_EQ(hf["quant_algo"], "NVFP4");
    EXPECT_EQ(hf["group_size"], 16);
    EXPECT_TRUE(hf.contains("kv_cache_quant_algo") && hf["kv_cache_quant_algo"].is_null());
    EXPECT_EQ(hf["exclude_modules"], plain_hf["exclude_modules"]);
    EXPECT_EQ(hf["exclude_modules"], HfQuantization(checkpoint)["exclude_modules"]);
    EXPECT_EQ(plain_hf["quant_algo"], "W4A16_NVFP4");
    const Json qc = QuantizationConfig(got), plain_qc = QuantizationConfig(weights_only);
    EXPECT_EQ(qc["quant_algo"], "NVFP4");
    EXPECT_EQ(qc["ignore"], hf["exclude_modules"]);
    EXPECT_EQ(qc["config_groups"]["group_0"]["input_activations"],
              Json::parse(R"({"dynamic":false,"num_bits":4,"type":"float","group_size":16})"));
    EXPECT_EQ(plain_qc["quant_algo"], "W4A16_NVFP4");
    EXPECT_FALSE(plain_qc["config_groups"]["group_0"].contains("input_activations"));
  }
}

TEST_F(QuantizeActivationTest, InputScaleIsTheRankFilesActivationAmaxOver2688) {
  const Json layout = testutil::CatalogLayout("qwen3_moe_ep2_modelopt");
  ASSERT_FALSE(layout.is_null());
  const Exported got = Export(layout, "nvfp4");
  ASSERT_FALSE(got.files.empty());
  const std::string root = testutil::MegatronFixtures() + "/" + layout["dir"].get<std::string>() +
                           "/iter_0000100/mp_rank_00_00";
  const Tensors rank[2] = {testutil::ReadTorchTensors(root + "0/model_optim_rng.pt"),
                           testutil::ReadTorchTensors(root + "1/model_optim_rng.pt")};
  for (int g = 0; g < kLayers; ++g) {
    const std::string m = absl::StrCat("model/decoder.layers.", g, ".");
    const std::string h = absl::StrCat("model.layers.", g, ".");
    auto input_scale = [&](const std::string& module) {
      return Scalar(got.tensors.at(module + ".input_scale"));
    };
    const float qkv = Scalar(rank[0].at(m + "self_attention.linear_qkv.input_quantizer._amax"));
    for (const char* p : {"q_proj", "k_proj", "v_proj"}) {
      EXPECT_EQ(input_scale(h + "self_attn." + p), qkv / kNvfp4Bound) << g << p;
    }
    EXPECT_EQ(input_scale(h + "self_attn.o_proj"),
              Scalar(rank[0].at(m + "self_attention.linear_proj.input_quantizer._amax")) /
                  kNvfp4Bound);
    for (int e = 0; e < kExperts; ++e) {
      const std::string x = absl::StrCat(h, "mlp.experts.", e, ".");
      const Tensors& r = rank[e / kLocal];
      const float fc1 = Scalar(r.at(m + "mlp.experts.linear_fc1.input_quantizer._amax"));
      const float fc2 = Scalar(r.at(m + "mlp.experts.linear_fc2.input_quantizer._amax"));
      EXPECT_EQ(input_scale(x + "gate_proj"), fc1 / kNvfp4Bound) << x;
      EXPECT_EQ(input_scale(x + "up_proj"), fc1 / kNvfp4Bound) << x;
      EXPECT_EQ(input_scale(x + "down_proj"), fc2 / kNvfp4Bound) << x;
    }
  }
}

TEST_F(QuantizeActivationTest, EveryLayoutGivesTheSameFiles) {
  const Json tp1 = testutil::CatalogLayout("qwen3_moe_ep2_modelopt");
  const Json tp2 = testutil::CatalogLayout("qwen3_moe_tp2_ep2_modelopt");
  ASSERT_FALSE(tp1.is_null() || tp2.is_null());
  const Exported a = Export(tp1, "nvfp4"), b = Export(tp2, "nvfp4");
  ASSERT_FALSE(a.files.empty());
  EXPECT_TRUE(a.files == b.files);
}

TEST_F(QuantizeActivationTest, WithoutQuantizerStateNvfp4IsWeightOnly) {
  for (const char* name : {"qwen3_moe_ep2", "qwen2_moe_tp2_ep2"}) {
    SCOPED_TRACE(name);
    auto cp = testutil::PlanLayout(testutil::CatalogLayout(name), "nvfp4");
    ASSERT_OK(cp.status());
    EXPECT_TRUE(cp->plan.amax_sources.empty());
    int quantized = 0;
    for (const HfTensor& t : cp->plan.tensors) {
      EXPECT_NE(t.quant, QuantAlgo::kNvfp4) << t.name;
      EXPECT_NE(t.scalar, ScalarScale::kInputScale) << t.name;
      quantized += t.quant_part == QuantPart::kWeight;
    }
    EXPECT_GT(quantized, 0);
    ASSERT_OK_AND_ASSIGN(QuantSidecarFiles side, QuantSidecars(cp->plan, "{}"));
    EXPECT_THAT(*side.hf_quant_config_json, HasSubstr("\"quant_algo\": \"W4A16_NVFP4\""));
  }
}

// Activation amax for some modules only (dropped from the plan before quantizing): those are
// NVFP4 with the same input_scale as before, the others W4A16_NVFP4, and both configs declare
// every layer's algorithm.
TEST_F(QuantizeActivationTest, PartialActivationAmaxIsDeclaredPerLayer) {
  const Json layout = testutil::CatalogLayout("qwen3_moe_ep2_modelopt");
  ASSERT_FALSE(layout.is_null());
  auto cp = testutil::PlanLayout(layout, "none");
  ASSERT_OK(cp.status());
  ExportPlan plan = cp->plan;
  const size_t before = plan.amax_sources.size();
  std::erase_if(plan.amax_sources, [](const AmaxSource& a) {
    return a.input && (absl::StartsWith(a.key, "decoder.layers.1.self_attention.") ||
                       absl::StartsWith(a.key, "decoder.layers.2.mlp.experts.linear_fc2."));
  });
  ASSERT_LT(plan.amax_sources.size(), before);
  QuantRequest request{"nvfp4", {}, 48 * 1024};
  ASSERT_OK_AND_ASSIGN(plan, ApplyQuantization(std::move(plan), request));
  const Exported got = testutil::ExportPlanTo(plan, layout, Out(layout, "partial"));
  const Exported full = Export(layout, "nvfp4");
  ASSERT_FALSE(got.files.empty() || full.files.empty());

  std::set<std::string> weight_only;
  for (const char* p : {"q_proj", "k_proj", "v_proj", "o_proj"}) {
    weight_only.insert(absl::StrCat("model.layers.1.self_attn.", p));
  }
  for (int e = 0; e < kExperts; ++e) {
    weight_only.insert(absl::StrCat("model.layers.2.mlp.experts.", e, ".down_proj"));
  }
  const std::set<std::string> quantized = ModulesWith(got.tensors, ".weight_scale_2");
  EXPECT_EQ(quantized, ModulesWith(full.tensors, ".weight_scale_2"));
  std::set<std::string> with_input;
  for (const std::string& m : quantized) {
    if (!weight_only.contains(m)) with_input.insert(m);
  }
  EXPECT_EQ(ModulesWith(got.tensors, ".input_scale"), with_input);
  for (const auto& [name, t] : got.tensors) {
    EXPECT_TRUE(full.tensors.contains(name) && full.tensors.at(name).bytes == t.bytes) << name;
  }

  const Json hf = HfQuantization(got);
  EXPECT_EQ(hf["quant_algo"], "MIXED_PRECISION");
  EXPECT_FALSE(hf.contains("group_size"));
  EXPECT_EQ(hf["exclude_modules"], HfQuantization(full)["exclude_modules"]);
  const Json& layers = hf["quantized_layers"];
  ASSERT_EQ(layers.size(), quantized.size());
  for (const std::string& m : quantized) {
    const char* algo = weight_only.contains(m) ? "W4A16_NVFP4" : "NVFP4";
    EXPECT_EQ(layers[m], Json::parse(absl::StrCat(R"({"quant_algo":")", algo,
                                                  R"(","group_size":16})")))
        << m;
  }
  const Json qc = QuantizationConfig(got);
  EXPECT_EQ(qc["quant_algo"], "MIXED_PRECISION");
  EXPECT_EQ(qc["quantized_layers"], layers);
  EXPECT_EQ(qc["ignore"], hf["exclude_modules"]);
  ASSERT_EQ(qc["config_groups"].size(), 2u);
  for (const auto& [group, g] : qc["config_groups"].items()) {
    const bool activations = g.contains("input_activations");
    const std::set<std::string> targets = g["targets"].get<std::set<std::string>>();
    EXPECT_EQ(targets, activations ? with_input : weight_only) << group;
    EXPECT_EQ(g["weights"]["num_bits"], 4);
  }
}

// The statistics of the quantized weights gathered as W workers would (pieces dealt
// round-robin in row chunks, one worker reading the checkpoint amax, the others' statistics
// arriving serialized): the same finished statistics and scale tensors for every W, equal to
// the local export's.
TEST_F(QuantizeActivationTest, StatisticsDoNotDependOnTheWorkers) {
  const Json layout = testutil::CatalogLayout("qwen3_moe_tp2_ep2_modelopt");
  ASSERT_FALSE(layout.is_null());
  auto cp = testutil::PlanLayout(layout, "nvfp4");
  ASSERT_OK(cp.status());
  const ExportPlan& plan = cp->plan;
  const Exported exported = testutil::ExportPlanTo(plan, layout, Out(layout, "local"));
  ASSERT_FALSE(exported.files.empty());
  SourceReader reader(*fs::PosixFileSystem(), plan);
  std::string first;
  for (int workers : {1, 2, 3, 5}) {
    SCOPED_TRACE(workers);
    std::vector<QuantStats> stats(workers);
    int next = 0;
    for (const Piece& p : plan.pieces) {
      if (plan.tensors[p.tensor].quant_part != QuantPart::kWeight) continue;
      for (int64_t r = 0; r < p.rows; r += workers + 1) {
        const Piece chunk = RowChunk(p, r, std::min<int64_t>(workers + 1, p.rows - r));
        ASSERT_OK_AND_ASSIGN(const std::string rows, reader.ReadRows(chunk));
        ASSERT_OK(stats[next++ % workers].Accumulate(plan, chunk, rows));
      }
    }
    ASSERT_OK(stats[workers - 1].ReadCheckpointAmax(plan, reader));
    QuantStats all;
    for (int w = workers - 1; w >= 0; --w) {
      ASSERT_OK_AND_ASSIGN(const QuantStats parsed, QuantStats::Parse(stats[w].Serialize()));
      ASSERT_OK(all.Merge(parsed));
    }
    ASSERT_OK(all.Finish(plan));
    if (first.empty()) first = all.Serialize();
    EXPECT_EQ(all.Serialize(), first);
    int scales = 0;
    for (size_t t = 0; t < plan.tensors.size(); ++t) {
      if (plan.tensors[t].quant_part != QuantPart::kWeightScale2) continue;
      ASSERT_OK_AND_ASSIGN(const std::string bytes, ScaleTensorBytes(plan, all, t));
      EXPECT_EQ(bytes, exported.tensors.at(plan.tensors[t].name).bytes) << plan.tensors[t].name;
      ++scales;
    }
    EXPECT_EQ(scales, 2 * kLayers * (4 + 3 * kExperts));  // weight_scale_2 and input_scale
  }
  // Without the activation amax the statistics cannot finish.
  QuantStats unread;
  for (const Piece& p : plan.pieces) {
    if (plan.tensors[p.tensor].quant_part != QuantPart::kWeight) continue;
    ASSERT_OK_AND_ASSIGN(const std::string rows, reader.ReadRows(p));
    ASSERT_OK(unread.Accumulate(plan, p, rows));
  }
  EXPECT_THAT(unread.Finish(plan), StatusIs(absl::StatusCode::kFailedPrecondition,
                                            HasSubstr("ReadCheckpointAmax")));
}

}  // namespace
}  // namespace mxport::exporter
