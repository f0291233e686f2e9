// Mode "fp8" (per-tensor FP8 from the weights) against "checkpoint_fp8" (per-tensor FP8 from a
// ModelOpt calibration) on the ModelOpt fixtures (make_megatron_fixtures.py modelopt_state):
// "fp8" quantizes the modules "nvfp4" quantizes, weight_scale = the amax of the weights
// computed here (fused siblings maxed) / 448, input_scale bit-identical to "checkpoint_fp8"'s.
// The fixtures calibrate with the weights' true amax, so both modes give the same files; a
// plan whose checkpoint weight amax is replaced by another scalar shows which amax each reads.
// Without activation amax for a quantized module "fp8" fails naming it, and excluding the
// module makes the export succeed.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
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
using ::testing::AllOf;
using ::testing::HasSubstr;
using testutil::Exported;
using testutil::HfQuantization;
using testutil::kModelOptLayouts;
using testutil::ModulesWith;
using testutil::Scalar;
using testutil::Tensors;

constexpr float kFp8Max = 448.0f;


// The names of `got`'s files that differ from `want`'s, or that only one of them has.
std::vector<std::string> DifferentFiles(const Exported& got, const Exported& want) {
  std::vector<std::string> out;
  for (const auto& [name, bytes] : got.files) {
    if (!want.files.contains(name) || want.files.at(name) != bytes) out.push_back(name);
  }
  for (const auto& [name, bytes] : want.files) {
    if (!got.files.contains(name)) out.push_back(name);
  }
  return out;
}

class QuantizeFp8Test : public ::testing::Test {
 protected:
  Exported Export(const Json& layout, const std::string& mode) {
    return testutil::ExportLayout(layout, mode, Out(layout, mode));
  }
  Exported ExportTagged(const ExportPlan& plan, const Json& layout, const std::string& tag) {
    return testutil::ExportPlanTo(plan, layout, Out(layout, tag));
  }
  std::string Out(const Json& layout, const std::string& tag) {
    return absl::StrCat(dir_.path(), "/", layout["name"].get<std::string>(), "_", tag);
  }

  fs::testutil::PosixTempDir dir_;
};

TEST_F(QuantizeFp8Test, WeightScalesFromTheWeightsInputScalesFromTheCalibration) {
  for (const char* name : kModelOptLayouts) {
    SCOPED_TRACE(name);
    const Json layout = testutil::CatalogLayout(name);
    ASSERT_FALSE(layout.is_null());
    // The plan reads the activation amax and nothing else from the checkpoint.
    auto cp = testutil::PlanLayout(layout, "fp8");
    ASSERT_OK(cp.status());
    ASSERT_FALSE(cp->plan.amax_sources.empty());
    for (const AmaxSource& a : cp->plan.amax_sources) EXPECT_TRUE(a.input) << a.key;

    const Exported got = Export(layout, "fp8");
    const Exported calibrated = Export(layout, "checkpoint_fp8");
    const Exported nvfp4 = Export(layout, "nvfp4");
    ASSERT_FALSE(got.files.empty() || calibrated.files.empty() || nvfp4.files.empty());
    const Tensors original = testutil::LayoutOriginal(layout);

    // The modules nvfp4 quantizes, each with its full FP8 tensor set.
    const std::set<std::string> quantized = ModulesWith(got.tensors, ".input_scale");
    ASSERT_FALSE(quantized.empty());
    EXPECT_EQ(quantized, ModulesWith(nvfp4.tensors, ".weight_scale_2"));
    EXPECT_EQ(ModulesWith(got.tensors, ".weight_scale"), quantized);
    for (const std::string& m : quantized) {
      SCOPED_TRACE(m);
      const testutil::Tensor& w = got.tensors.at(m + ".weight");
      EXPECT_EQ(w.dtype, DType::kFloat8E4M3FN);
      EXPECT_EQ(w.shape, original.at(m + ".weight").shape);
      const testutil::Tensor& scale = got.tensors.at(m + ".weight_scale");
      EXPECT_EQ(scale.dtype, DType::kFloat32);
      EXPECT_EQ(scale.shape, std::vector<int64_t>{});
      EXPECT_EQ(Scalar(scale), testutil::FusedAmax(original, m + ".weight") / kFp8Max);
      const testutil::Tensor& in = got.tensors.at(m + ".input_scale");
      EXPECT_EQ(in.dtype, DType::kFloat32);
      EXPECT_EQ(in.shape, std::vector<int64_t>{1});
      EXPECT_EQ(in.bytes, calibrated.tensors.at(m + ".input_scale").bytes);
    }
    const Json hf = HfQuantization(got);
    EXPECT_EQ(hf["quant_algo"], "FP8");
    EXPECT_FALSE(hf.contains("group_size"));
    EXPECT_EQ(hf["exclude_modules"], HfQuantization(nvfp4)["exclude_modules"]);
    // The checkpoint's weight amax is the weights' true amax: the same files.
    EXPECT_THAT(DifferentFiles(got, calibrated), ::testing::IsEmpty());
  }
}

// The weight amax of o_proj in layer 1 is redirected, in the plan, to its activation amax (a
// scalar of the same rank files that differs from the weight's amax): checkpoint_fp8 scales the
// weight by it, fp8 computes the amax and writes exactly the files of the unmodified plan.
TEST_F(QuantizeFp8Test, OnlyCheckpointFp8ReadsTheCheckpointWeightAmax) {
  const Json layout = testutil::CatalogLayout("qwen3_moe_ep2_modelopt");
  ASSERT_FALSE(layout.is_null());
  auto cp = testutil::PlanLayout(layout, "none");
  ASSERT_OK(cp.status());
  ExportPlan plan = cp->plan;
  const std::string key = "decoder.layers.1.self_attention.linear_proj.";
  int redirected = 0;
  for (AmaxSource& a : plan.amax_sources) {
    if (a.input || a.key != key + "weight_quantizer._amax") continue;
    a.key = key + "input_quantizer._amax";
    ++redirected;
  }
  ASSERT_GT(redirected, 0);

  const std::string o = "model.layers.1.self_attn.o_proj";
  const Tensors original = testutil::LayoutOriginal(layout);
  const float weight_amax = testutil::Amax(original.at(o + ".weight"));
  const Tensors rank = testutil::ReadTorchTensors(
      testutil::MegatronFixtures() + "/" + layout["dir"].get<std::string>() +
      "/iter_0000100/mp_rank_00_000/model_optim_rng.pt");
  const float input_amax = Scalar(rank.at("model/" + key + "input_quantizer._amax"));
  ASSERT_NE(input_amax, weight_amax);

  std::map<std::string, Exported> got;
  for (const char* mode : {"fp8", "checkpoint_fp8"}) {
    QuantRequest request{mode, {}, 48 * 1024};
    ASSERT_OK_AND_ASSIGN(ExportPlan quantized,
                         ApplyQuantization(plan, request));
    got[mode] = ExportTagged(quantized, layout, absl::StrCat("redirected_", mode));
    ASSERT_FALSE(got[mode].files.empty()) << mode;
  }
  const Tensors& fp8 = got["fp8"].tensors;
  const Tensors& calibrated = got["checkpoint_fp8"].tensors;
  EXPECT_EQ(Scalar(fp8.at(o + ".weight_scale")), weight_amax / kFp8Max);
  EXPECT_EQ(Scalar(calibrated.at(o + ".weight_scale")), input_amax / kFp8Max);
  EXPECT_NE(fp8.at(o + ".weight").bytes, calibrated.at(o + ".weight").bytes);
  for (const auto& [name, t] : fp8) {
    if (name == o + ".weight" || name == o + ".weight_scale") continue;
    EXPECT_TRUE(calibrated.contains(name) && calibrated.at(name).bytes == t.bytes) << name;
  }
  EXPECT_EQ(fp8.size(), calibrated.size());
  EXPECT_THAT(DifferentFiles(got["fp8"], Export(layout, "fp8")), ::testing::IsEmpty());
}

TEST_F(QuantizeFp8Test, WithoutQuantizerStateFp8FailsNamingAModule) {
  for (const char* name : {"qwen3_moe_ep2", "qwen2_moe_tp2_ep2"}) {
    SCOPED_TRACE(name);
    EXPECT_THAT(testutil::PlanLayout(testutil::CatalogLayout(name), "fp8").status(),
                StatusIs(absl::StatusCode::kFailedPrecondition,
                         AllOf(HasSubstr("quantization 'fp8' sets each module's static "
                                         "input_scale from the checkpoint's activation amax"),
                               HasSubstr("has none for model.layers.0."), HasSubstr(" more;"),
                               HasSubstr("'fp8_block' (dynamic activations, no calibration) "
                                         "or 'nvfp4'"))));
  }
}

// Activation amax missing for layer 1's attention: fp8 names those modules; excluding them
// gives the full export's tensors for every other module and the original weights for them.
TEST_F(QuantizeFp8Test, ModulesWithoutActivationAmaxCanBeExcluded) {
  const Json layout = testutil::CatalogLayout("qwen3_moe_ep2_modelopt");
  ASSERT_FALSE(layout.is_null());
  auto cp = testutil::PlanLayout(layout, "none");
  ASSERT_OK(cp.status());
  ExportPlan plan = cp->plan;
  std::erase_if(plan.amax_sources, [](const AmaxSource& a) {
    return a.input && absl::StartsWith(a.key, "decoder.layers.1.self_attention.");
  });
  EXPECT_THAT(ApplyQuantization(plan, {"fp8", {}, 48 * 1024}),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("has none for model.layers.1.self_attn."),
                             HasSubstr("and 1 more;"), HasSubstr("--quant-exclude"))));
  ASSERT_OK_AND_ASSIGN(plan, ApplyQuantization(std::move(plan),
                                               {"fp8", {"model.layers.1.self_attn.*"}, 48 * 1024}));
  const Exported got = ExportTagged(plan, layout, "excluded");
  const Exported full = Export(layout, "fp8");
  ASSERT_FALSE(got.files.empty() || full.files.empty());
  const Tensors original = testutil::LayoutOriginal(layout);

  std::set<std::string> excluded;
  for (const char* p : {"q_proj", "k_proj", "v_proj", "o_proj"}) {
    excluded.insert(absl::StrCat("model.layers.1.self_attn.", p));
  }
  std::set<std::string> want = ModulesWith(full.tensors, ".input_scale");
  for (const std::string& m : excluded) EXPECT_EQ(want.erase(m), 1u) << m;
  EXPECT_EQ(ModulesWith(got.tensors, ".input_scale"), want);
  for (const auto& [name, t] : got.tensors) {
    const bool from_excluded = excluded.contains(name.substr(0, name.rfind('.')));
    const testutil::Tensor& expected = from_excluded ? original.at(name) : full.tensors.at(name);
    EXPECT_TRUE(expected.bytes == t.bytes) << name;
  }
  const std::vector<std::string> listed =
      HfQuantization(got)["exclude_modules"].get<std::vector<std::string>>();
  for (const std::string& m : excluded) {
    EXPECT_THAT(listed, ::testing::Contains(m));
  }
  EXPECT_EQ(HfQuantization(got)["quant_algo"], "FP8");
}

}  // namespace
}  // namespace mxport::exporter
