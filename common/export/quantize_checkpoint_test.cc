// Quantized exports that re-export a ModelOpt calibration (modes "checkpoint" and
// "checkpoint_fp8") of the ModelOpt fixtures (make_megatron_fixtures.py modelopt_state): scales
// are checked against the amax read here from the rank files, dequantized weights against the HF
// originals, the TP=2 and TP=1 layouts of the model must give identical files, and the
// statistics must carry the checkpoint amax between processes.
#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/export/checkpoint_planner.h"
#include "common/export/local_executor.h"
#include "common/export/quant_testutil.h"
#include "common/export/quantize_plan.h"
#include "common/fs/fs_testutil.h"
#include "common/json/json.h"
#include "common/quant/quant.h"
#include "common/safetensors/reader.h"
#include "common/testing/status_matchers.h"
#include "common/torch/torch_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mxport::exporter {
namespace {

using ::mxport::testing::StatusIs;
using ::testing::HasSubstr;

const std::string kFixtures = testutil::MegatronFixtures();
constexpr int kLayers = 6, kExperts = 8, kLocal = 4;  // qwen3_moe; EP = 2

using testutil::Amax;
using testutil::Floats;
using testutil::Scalar;
using testutil::Tensor;
using testutil::Tensors;

Json Layout(const std::string& name) { return testutil::CatalogLayout(name); }

class QuantizeCheckpointTest : public ::testing::Test {
 protected:
  absl::StatusOr<CheckpointPlan> Plan(const Json& layout, const std::string& mode) {
    return testutil::PlanLayout(layout, mode);
  }

  // Exports `layout` with `mode`: its files by name, and its tensors in `tensors`.
  std::map<std::string, std::string> Export(const Json& layout, const std::string& mode,
                                            Tensors& tensors) {
    testutil::Exported e = testutil::ExportLayout(
        layout, mode, absl::StrCat(dir_.path(), "/", layout["name"].get<std::string>(), "_", mode));
    tensors = std::move(e.tensors);
    return std::move(e.files);
  }

  fs::testutil::PosixTempDir dir_;
};

struct Expect {
  float weight_amax;
  float input_amax;
};

// The amax each quantized HF module must use, from the rank files of qwen3_moe_ep2_modelopt
// (TP = 1, EP = 2): a linear's checkpoint amax; an expert without one (the fixture's
// uncalibrated expert) its own weight's amax.
std::map<std::string, Expect> Expected(const Json& layout, const Tensors& original) {
  const std::string root = kFixtures + "/" + layout["dir"].get<std::string>() + "/iter_0000100/";
  const Tensors rank[2] = {testutil::ReadTorchTensors(root + "mp_rank_00_000/model_optim_rng.pt"),
                           testutil::ReadTorchTensors(root + "mp_rank_00_001/model_optim_rng.pt")};
  std::map<std::string, Expect> out;
  for (int g = 0; g < kLayers; ++g) {
    const std::string m = absl::StrCat("model/decoder.layers.", g, ".");
    const std::string h = absl::StrCat("model.layers.", g, ".");
    auto scalar = [&](int r, const std::string& key) { return Scalar(rank[r].at(m + key)); };
    const Expect qkv{scalar(0, "self_attention.linear_qkv.weight_quantizer._amax"),
                     scalar(0, "self_attention.linear_qkv.input_quantizer._amax")};
    for (const char* p : {"q_proj", "k_proj", "v_proj"}) out[h + "self_attn." + p] = qkv;
    out[h + "self_attn.o_proj"] = {scalar(0, "self_attention.linear_proj.weight_quantizer._amax"),
                                   scalar(0, "self_attention.linear_proj.input_quantizer._amax")};
    for (int e = 0; e < kExperts; ++e) {
      const std::string x = absl::StrCat(h, "mlp.experts.", e, ".");
      for (const char* fc : {"linear_fc1", "linear_fc2"}) {
        const bool fc1 = std::string(fc) == "linear_fc1";
        const std::string key =
            absl::StrCat("mlp.experts.", fc, ".weight_quantizer.", e % kLocal, "._amax");
        const bool calibrated = rank[e / kLocal].contains(m + key);
        EXPECT_EQ(calibrated, !(g == 0 && e == kExperts - 1)) << key;
        float w = calibrated ? scalar(e / kLocal, key) : 0.0f;
        if (!calibrated) {
          for (const char* p : fc1 ? std::vector<const char*>{"gate_proj", "up_proj"}
                                   : std::vector<const char*>{"down_proj"}) {
            w = std::max(w, Amax(original.at(x + p + ".weight")));
          }
        }
        const float in = scalar(e / kLocal, absl::StrCat("mlp.experts.", fc,
                                                         ".input_quantizer._amax"));
        EXPECT_EQ(in, scalar(1 - e / kLocal, absl::StrCat("mlp.experts.", fc,
                                                          ".input_quantizer._amax")));
        for (const char* p : fc1 ? std::vector<const char*>{"gate_proj", "up_proj"}
                                 : std::vector<const char*>{"down_proj"}) {
          out[x + p] = {w, in};
        }
      }
    }
  }
  return out;
}

// Checks the quantized tensors of every module of `expected` and the configs.
void CheckExport(const std::string& mode, const std::map<std::string, std::string>& files,
                 const Tensors& got, const Tensors& original,
                 const std::map<std::string, Expect>& expected) {
  const bool nvfp4 = mode == "checkpoint";
  double max_bound_use = 0;
  for (const auto& [module, want] : expected) {
    SCOPED_TRACE(module);
    const Tensor& w = original.at(module + ".weight");
    // The fixture's weight amax is the true amax of the fused module weight.
    float fused = Amax(w);
    for (const auto& [a, b] : std::vector<std::pair<std::string, std::string>>{
             {".q_proj", ".k_proj"}, {".q_proj", ".v_proj"}, {".k_proj", ".q_proj"},
             {".k_proj", ".v_proj"}, {".v_proj", ".q_proj"}, {".v_proj", ".k_proj"},
             {".gate_proj", ".up_proj"}, {".up_proj", ".gate_proj"}}) {
      if (absl::EndsWith(module, a)) {
        fused = std::max(fused, Amax(original.at(absl::StrReplaceAll(module, {{a, b}}) +
                                                 ".weight")));
      }
    }
    EXPECT_EQ(want.weight_amax, fused);
    const Tensor& in = got.at(module + ".input_scale");
    EXPECT_EQ(in.dtype, DType::kFloat32);
    EXPECT_EQ(in.shape, nvfp4 ? std::vector<int64_t>{} : std::vector<int64_t>{1});
    EXPECT_EQ(Scalar(in), want.input_amax / (nvfp4 ? 2688.0f : 448.0f));
    const std::vector<float> x = Floats(w);
    std::vector<float> dq(x.size());
    const Tensor& q = got.at(module + ".weight");
    const Tensor& scale = got.at(module + ".weight_scale");
    if (nvfp4) {
      const float s2 = Scalar(got.at(module + ".weight_scale_2"));
      EXPECT_EQ(s2, want.weight_amax / 2688.0f);
      EXPECT_EQ(got.at(module + ".weight_scale_2").shape, std::vector<int64_t>{});
      EXPECT_EQ(q.shape, (std::vector<int64_t>{w.shape[0], w.shape[1] / 2}));
      ASSERT_OK(quant::DequantizeNvfp4(
          absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(q.bytes.data()), x.size() / 2),
          absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(scale.bytes.data()),
                              x.size() / 16),
          w.shape[1], s2, absl::MakeSpan(dq)));
      for (size_t i = 0; i < x.size(); ++i) {
        // |v| = |x| / d on the E2M1 grid: error <= d * max(1/4, |v|/4) (saturation included).
        const double d =
            quant::E4M3ToFloat(static_cast<uint8_t>(scale.bytes[i / 16])) * static_cast<double>(s2);
        const double bound = std::max(0.25 * d, std::fabs(x[i]) / 4.0) * (1 + 1e-6);
        max_bound_use = std::max(max_bound_use, std::fabs(x[i] - dq[i]) / bound);
      }
    } else {
      const float s = Scalar(scale);
      EXPECT_EQ(s, want.weight_amax / 448.0f);
      EXPECT_EQ(scale.shape, std::vector<int64_t>{});
      EXPECT_EQ(q.dtype, DType::kFloat8E4M3FN);
      EXPECT_EQ(q.shape, w.shape);
      ASSERT_OK(quant::DequantizeFp8(
          absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(q.bytes.data()), x.size()), s,
          absl::MakeSpan(dq)));
      for (size_t i = 0; i < x.size(); ++i) {
        const double bound = (std::fabs(x[i]) / 16 + s / 1024) * (1 + 1e-6);
        max_bound_use = std::max(max_bound_use, std::fabs(x[i] - dq[i]) / bound);
      }
    }
  }
  EXPECT_LE(max_bound_use, 1.0);
  // Unquantized tensors are copied; exclude_modules is the exact complement.
  std::vector<std::string> excluded;
  for (const auto& [name, t] : original) {
    const std::string module = name.substr(0, name.size() - 7);
    if (expected.contains(module)) continue;
    EXPECT_TRUE(got.at(name).bytes == t.bytes) << name;
    if (absl::EndsWith(name, ".weight") && t.shape.size() == 2) excluded.push_back(module);
  }
  EXPECT_EQ(got.size(), original.size() + expected.size() * (nvfp4 ? 3 : 2));
  EXPECT_EQ(excluded.size(), 2u + kLayers);  // embedding, lm_head, routers
  auto hf = ParseJson(files.at("hf_quant_config.json"), "hf_quant_config.json");
  ASSERT_TRUE(hf.ok());
  const Json& qc = (*hf)["quantization"];
  EXPECT_EQ(qc["quant_algo"], nvfp4 ? "NVFP4" : "FP8");
  EXPECT_TRUE(qc.contains("kv_cache_quant_algo") && qc["kv_cache_quant_algo"].is_null());
  EXPECT_EQ(qc.contains("group_size"), nvfp4);
  EXPECT_EQ(qc["exclude_modules"].get<std::vector<std::string>>(), excluded);
  auto config = ParseJson(files.at("config.json"), "config.json");
  EXPECT_EQ((*config)["quantization_config"]["quant_algo"], nvfp4 ? "NVFP4" : "FP8");
  std::cout << "[ figures  ] " << mode << ": " << expected.size()
            << " modules from checkpoint amax, max error / bound " << max_bound_use << "\n";
}

TEST_F(QuantizeCheckpointTest, ScalesComeFromTheCheckpointAmaxAndTpDoesNotMatter) {
  const Json tp1 = Layout("qwen3_moe_ep2_modelopt"), tp2 = Layout("qwen3_moe_tp2_ep2_modelopt");
  ASSERT_FALSE(tp1.is_null() || tp2.is_null());
  const Tensors original = testutil::LayoutOriginal(tp1);
  const std::map<std::string, Expect> expected = Expected(tp1, original);
  ASSERT_EQ(expected.size(), static_cast<size_t>(kLayers * (4 + 3 * kExperts)));
  for (const std::string mode : {"checkpoint", "checkpoint_fp8"}) {
    SCOPED_TRACE(mode);
    Tensors got1, got2;
    const auto files1 = Export(tp1, mode, got1);
    const auto files2 = Export(tp2, mode, got2);
    ASSERT_FALSE(files1.empty());
    ASSERT_EQ(files1.size(), files2.size());
    for (const auto& [name, bytes] : files1) {
      EXPECT_TRUE(files2.contains(name) && files2.at(name) == bytes) << name << " differs";
    }
    CheckExport(mode, files1, got1, original, expected);
  }
}

TEST_F(QuantizeCheckpointTest, SharedExpertIsCalibratedRouterAndGateAreNot) {
  const Json layout = Layout("qwen2_moe_tp2_ep2_modelopt");
  ASSERT_FALSE(layout.is_null());
  Tensors got;
  const auto files = Export(layout, "checkpoint_fp8", got);
  ASSERT_FALSE(files.empty());
  const Tensors original = testutil::LayoutOriginal(layout);
  for (int g = 0; g < 4; ++g) {
    const std::string sh = absl::StrCat("model.layers.", g, ".mlp.shared_expert.");
    SCOPED_TRACE(sh);
    const float fused = std::max(Amax(original.at(sh + "gate_proj.weight")),
                                 Amax(original.at(sh + "up_proj.weight")));
    EXPECT_EQ(Scalar(got.at(sh + "gate_proj.weight_scale")), fused / 448.0f);
    for (const char* t : {"weight_scale", "input_scale"}) {
      EXPECT_EQ(got.at(sh + "up_proj." + t).bytes, got.at(sh + "gate_proj." + t).bytes) << t;
    }
    EXPECT_EQ(Scalar(got.at(sh + "down_proj.weight_scale")),
              Amax(original.at(sh + "down_proj.weight")) / 448.0f);
    const std::string p = absl::StrCat("model.layers.", g, ".mlp.");
    EXPECT_FALSE(got.contains(p + "shared_expert_gate.weight_scale"));
    EXPECT_FALSE(got.contains(p + "gate.weight_scale"));
    EXPECT_TRUE(got.at(p + "gate.weight").bytes == original.at(p + "gate.weight").bytes);
  }
}

TEST_F(QuantizeCheckpointTest, SequentialExpertsHaveTheirOwnInputAmax) {
  const Json seq = Layout("qwen2_moe_pp2_ep4_seq_modelopt");
  const Json grouped = Layout("qwen2_moe_tp2_ep2_modelopt");
  ASSERT_FALSE(seq.is_null() || grouped.is_null());
  Tensors a, b;
  ASSERT_FALSE(Export(seq, "checkpoint", a).empty());
  ASSERT_FALSE(Export(grouped, "checkpoint", b).empty());
  ASSERT_EQ(a.size(), b.size());
  int experts = 0;
  for (const auto& [name, t] : a) {
    if (absl::EndsWith(name, ".weight_scale_2")) {
      EXPECT_EQ(t.bytes, b.at(name).bytes) << name;  // the same weight amax
    }
    if (absl::StrContains(name, "layers.0.mlp.experts.") && absl::EndsWith(name, ".weight")) {
      experts = std::max(experts, std::stoi(name.substr(name.find("experts.") + 8)) + 1);
    }
  }
  ASSERT_GT(experts, 2);
  // Expert 0 of layer 0 (pp 0, ep 0) has its own input amax in the rank file.
  const Tensors rank = testutil::ReadTorchTensors(
      kFixtures + "/" + seq["dir"].get<std::string>() +
      "/iter_0000100/mp_rank_00_000_000/model_optim_rng.pt");
  const float own = Scalar(rank.at(
      "model/decoder.layers.0.mlp.experts.local_experts.0.linear_fc1.input_quantizer._amax"));
  EXPECT_EQ(Scalar(a.at("model.layers.0.mlp.experts.0.gate_proj.input_scale")), own / 2688.0f);
  // The uncalibrated expert (the last of layer 0) takes the max over the layer's experts.
  for (const char* proj : {"gate_proj", "down_proj"}) {
    std::set<float> others;
    for (int e = 0; e + 1 < experts; ++e) {
      others.insert(Scalar(a.at(absl::StrCat("model.layers.0.mlp.experts.", e, ".", proj,
                                             ".input_scale"))));
    }
    EXPECT_GT(others.size(), 1u) << "per-expert input amax should differ";
    EXPECT_EQ(Scalar(a.at(absl::StrCat("model.layers.0.mlp.experts.", experts - 1, ".", proj,
                                       ".input_scale"))),
              *others.rbegin())
        << proj;
  }
}

TEST_F(QuantizeCheckpointTest, NeedsModelOptAmax) {
  const Json plain = Layout("qwen3_moe_ep2");
  EXPECT_THAT(Plan(plain, "checkpoint_fp8").status(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("has no quantizer amax (<module>.weight_quantizer._amax)")));
  EXPECT_THAT(Plan(plain, "checkpoint").status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("ModelOpt calibration")));
}

TEST_F(QuantizeCheckpointTest, PlanRecordsAmaxSources) {
  auto cp = Plan(Layout("qwen3_moe_ep2_modelopt"), "none");
  ASSERT_OK(cp.status());
  // Per layer and EP file: qkv and proj (weight, input), 4 experts x (fc1, fc2) weight amax and
  // the shared fc1 and fc2 input amax once per local expert; layer 0 lacks expert 7's two.
  EXPECT_EQ(cp->plan.amax_sources.size(), static_cast<size_t>(kLayers * 2 * 20 - 2));
  const AmaxSource& first = cp->plan.amax_sources.front();
  EXPECT_EQ(first.dtype, DType::kFloat32);
  for (const AmaxSource& a : cp->plan.amax_sources) {
    if (a.key == "decoder.layers.1.self_attention.linear_qkv.weight_quantizer._amax") {
      EXPECT_FALSE(a.input);
      EXPECT_THAT(a.weights, ::testing::ElementsAre("model.layers.1.self_attn.q_proj.weight",
                                                    "model.layers.1.self_attn.k_proj.weight",
                                                    "model.layers.1.self_attn.v_proj.weight"));
    }
  }
  EXPECT_TRUE(Plan(Layout("qwen3_moe_ep2"), "none")->plan.amax_sources.empty());
}

TEST_F(QuantizeCheckpointTest, StatisticsCarryTheCheckpointAmax) {
  auto cp = Plan(Layout("qwen3_moe_tp2_ep2_modelopt"), "checkpoint");
  ASSERT_OK(cp.status());
  const ExportPlan& plan = cp->plan;
  SourceReader reader(*fs::PosixFileSystem(), plan);
  QuantStats halves[2];
  int n = 0;
  for (const Piece& p : plan.pieces) {
    if (plan.tensors[p.tensor].quant_part != QuantPart::kWeight) continue;
    auto rows = reader.ReadRows(p);
    ASSERT_OK(rows.status());
    ASSERT_OK(halves[n++ % 2].Accumulate(plan, p, *rows));
  }
  QuantStats merged = halves[0];
  ASSERT_OK(merged.Merge(halves[1]));
  EXPECT_THAT(merged.Finish(plan), StatusIs(absl::StatusCode::kFailedPrecondition,
                                            HasSubstr("ReadCheckpointAmax")));
  // One process reads the amax; the others get them through Serialize and Merge.
  ASSERT_OK(halves[1].ReadCheckpointAmax(plan, reader));
  auto parsed = QuantStats::Parse(halves[1].Serialize());
  ASSERT_OK(parsed.status());
  QuantStats all = halves[0];
  ASSERT_OK(all.Merge(*parsed));
  ASSERT_OK(all.Finish(plan));
  QuantStats direct = halves[0];
  ASSERT_OK(direct.Merge(halves[1]));
  ASSERT_OK(direct.Finish(plan, &reader));
  EXPECT_EQ(all.Serialize(), direct.Serialize());
  int with_input = 0;
  for (const auto& [tensor, w] : all.weights()) {
    EXPECT_TRUE(w.input_amax.has_value()) << plan.tensors[tensor].name;
    with_input += w.input_amax.has_value();
  }
  EXPECT_EQ(with_input, kLayers * (4 + 3 * kExperts));
}

}  // namespace
}  // namespace mxport::exporter
