// Quantized exports of the real-PyTorch Megatron fixtures
// (tests/fixtures/make_megatron_fixtures.py) checked against the HF originals (model.pt, read by the torch reader):
//   - every layout of a model gives byte-identical files (TP-split weights included, whose amax
//     spans TP ranks and whose NVFP4 blocks TP boundaries may cut);
//   - scales follow from the originals' amax (computed here), dequantized weights are within
//     the format's rounding bound of the originals, unquantized tensors are copied bit for bit;
//   - every quantized module has its complete tensor set, exclude_modules is exactly the linear
//     modules without quantized tensors (derived from the exported names), the configs agree.
#include <cmath>
#include <iostream>
#include <map>
#include <set>
#include <string>

#include "absl/strings/match.h"
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

using ::testing::HasSubstr;

const std::string kFixtures = std::string(MXPORT_BINARY_DIR) + "/fixtures/megatron";

using testutil::Floats;
using testutil::FusedAmax;
using testutil::Scalar;
using testutil::Tensor;
using testutil::Tensors;

Json Catalog() {
  auto text = fs::ReadFileToString(*fs::PosixFileSystem(), kFixtures + "/catalog.json");
  EXPECT_TRUE(text.ok()) << text.status() << " (run ctest, or make_megatron_fixtures.py)";
  if (!text.ok()) return Json::array();
  auto json = ParseJson(*text, "catalog.json");
  return json.ok() ? *json : Json::array();
}

Tensors Original(const std::string& model_dir) {
  return testutil::ReadTorchTensors(model_dir + "/model.pt");
}

struct Figures {
  int quantized = 0, copied = 0;
  double max_abs_error = 0, max_error_over_block_amax = 0, max_bound_use = 0;
};

// NVFP4 weight `name` against its original: scales from the amax, per-element error bound.
void CheckNvfp4(const Tensors& got, const Tensors& original, const std::string& name,
                Figures& fig) {
  const std::string module = name.substr(0, name.size() - 7);
  const Tensor& w = original.at(name);
  const int64_t out = w.shape[0], in = w.shape[1];
  const Tensor& packed = got.at(name);
  const Tensor& scales = got.at(module + ".weight_scale");
  const Tensor& s2t = got.at(module + ".weight_scale_2");
  EXPECT_EQ(packed.dtype, DType::kUInt8);
  EXPECT_EQ(packed.shape, (std::vector<int64_t>{out, in / 2}));
  EXPECT_EQ(scales.dtype, DType::kFloat8E4M3FN);
  EXPECT_EQ(scales.shape, (std::vector<int64_t>{out, in / 16}));
  EXPECT_EQ(s2t.dtype, DType::kFloat32);
  EXPECT_EQ(s2t.shape, std::vector<int64_t>{});
  const float s2 = Scalar(s2t);
  EXPECT_EQ(s2, FusedAmax(original, name) / 2688.0f) << name;
  const std::vector<float> x = Floats(w);
  std::vector<float> dq(x.size());
  ASSERT_OK(quant::DequantizeNvfp4(
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(packed.bytes.data()), x.size() / 2),
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(scales.bytes.data()), x.size() / 16),
      in, s2, absl::MakeSpan(dq)));
  for (int64_t b = 0; b < out * in / 16; ++b) {
    float bamax = 0.0f;
    for (int i = 0; i < 16; ++i) bamax = std::max(bamax, std::fabs(x[b * 16 + i]));
    const float sc = quant::E4M3ToFloat(static_cast<uint8_t>(scales.bytes[b]));
    const double target = bamax / (6.0 * s2);
    if (bamax == 0.0f) {
      EXPECT_EQ(sc, 1.0f) << name << " block " << b;
    } else {  // e4m3 rounding: 2^-4 relative, 2^-9 absolute (subnormal step, the clamp)
      EXPECT_LE(std::fabs(sc - target), target / 16 + 1.0 / 512) << name << " block " << b;
    }
    const float d = sc * s2;  // the f32 divisor the values were scaled by
    for (int i = 0; i < 16; ++i) {
      const double v = std::fabs(x[b * 16 + i]) / d;
      // Half the E2M1 spacing around v, or the saturation above 6 (v <= 6 / (1 - 2^-4)), plus
      // 10^-6 d for the f32 roundings of the quotient and of the dequantized product.
      const double bound = ((v < 2 ? 0.25 : v < 4 ? 0.5 : v <= 6 ? 1.0 : v - 6) + 1e-6) * d;
      const double err = std::fabs(x[b * 16 + i] - dq[b * 16 + i]);
      EXPECT_LE(v, 6.0 / (1 - 1.0 / 16) + 1e-6) << name;
      if (err > bound) {
        ADD_FAILURE() << name << "[" << b * 16 + i << "]: " << err << " > " << bound << " x "
                      << x[b * 16 + i] << " dq " << dq[b * 16 + i] << " scale " << sc << " s2 "
                      << s2 << " v " << v;
      }
      fig.max_abs_error = std::max(fig.max_abs_error, err);
      if (bamax > 0) fig.max_error_over_block_amax = std::max(fig.max_error_over_block_amax,
                                                              err / bamax);
      if (bound > 0) fig.max_bound_use = std::max(fig.max_bound_use, err / bound);
    }
  }
}

// Block FP8 weight `name`: scale_inv = tile amax / 448, error <= 2^-4 |w| + 2^-10 scale_inv.
void CheckFp8Block(const Tensors& got, const Tensors& original, const std::string& name,
                   Figures& fig) {
  const std::string module = name.substr(0, name.size() - 7);
  const Tensor& w = original.at(name);
  const quant::Fp8BlockShape shape{w.shape[0], w.shape[1]};
  const Tensor& q = got.at(name);
  const Tensor& inv = got.at(module + ".weight_scale_inv");
  EXPECT_EQ(q.dtype, DType::kFloat8E4M3FN);
  EXPECT_EQ(q.shape, w.shape);
  EXPECT_EQ(inv.dtype, DType::kFloat32);
  EXPECT_EQ(inv.shape, (std::vector<int64_t>{shape.TileRows(), shape.TileCols()}));
  const std::vector<float> x = Floats(w), grid = Floats(inv);
  std::vector<float> tile_amax(grid.size(), 0.0f);
  for (int64_t i = 0; i < static_cast<int64_t>(x.size()); ++i) {
    float& a = tile_amax[(i / shape.cols) / 128 * shape.TileCols() + (i % shape.cols) / 128];
    a = std::max(a, std::fabs(x[i]));
  }
  for (size_t t = 0; t < grid.size(); ++t) {
    EXPECT_EQ(grid[t], tile_amax[t] == 0 ? 1.0f : tile_amax[t] / 448.0f) << name << " tile " << t;
  }
  std::vector<float> dq(x.size());
  ASSERT_OK(quant::DequantizeFp8Block(
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(q.bytes.data()), x.size()), shape, 0,
      grid, absl::MakeSpan(dq)));
  for (size_t i = 0; i < x.size(); ++i) {
    const double s = grid[(i / shape.cols) / 128 * shape.TileCols() + (i % shape.cols) / 128];
    const double bound = (std::fabs(x[i]) / 16 + s / 1024) * (1 + 1e-6);
    const double err = std::fabs(x[i] - dq[i]);
    if (err > bound) ADD_FAILURE() << name << "[" << i << "]: " << err << " > " << bound;
    fig.max_abs_error = std::max(fig.max_abs_error, err);
    fig.max_error_over_block_amax = std::max(fig.max_error_over_block_amax, err / (s * 448));
    fig.max_bound_use = std::max(fig.max_bound_use, err / bound);
  }
}

// The linear modules (2-D ".weight" tensors outside norms) without quantized tensors, from the
// exported names alone.
std::vector<std::string> UnquantizedLinears(const Tensors& got) {
  std::set<std::string> linear, quantized;
  for (const auto& [name, t] : got) {
    if (absl::EndsWith(name, ".weight") && t.shape.size() == 2 &&
        !absl::StrContains(name, "norm")) {
      linear.insert(name.substr(0, name.size() - 7));
    }
    for (const char* suffix : {".weight_scale_2", ".weight_scale_inv"}) {
      if (absl::EndsWith(name, suffix)) {
        quantized.insert(name.substr(0, name.size() - std::strlen(suffix)));
      }
    }
  }
  std::vector<std::string> out;
  for (const std::string& m : linear) {
    if (!quantized.contains(m)) out.push_back(m);
  }
  return out;
}

class QuantizeExportTest : public ::testing::Test {
 protected:
  // Exports `layout` quantized; returns its files by name and fills `tensors`.
  std::map<std::string, std::string> Export(const Json& layout, const QuantRequest& quant,
                                            Tensors& tensors) {
    CheckpointPlanRequest request;
    request.source_dir = kFixtures + "/" + layout["dir"].get<std::string>();
    request.hf_config_dir = kFixtures + "/" + layout["expected"].get<std::string>();
    request.options.max_shard_size = 48 * 1024;  // several files
    request.quantization = quant;
    fs::FileSystem& fs = *fs::PosixFileSystem();
    auto cp = PlanCheckpoint(fs, request);
    EXPECT_TRUE(cp.ok()) << cp.status();
    if (!cp.ok()) return {};
    auto config = fs::ReadFileToString(fs, request.hf_config_dir + "/config.json");
    auto side = QuantSidecars(cp->plan, *config, {"mxport", "test"});
    EXPECT_TRUE(side.ok()) << side.status();
    std::vector<Sidecar> sidecars = {{"config.json", side->config_json}};
    if (side->hf_quant_config_json) {
      sidecars.push_back({"hf_quant_config.json", *side->hf_quant_config_json});
    }
    const std::string out =
        absl::StrCat(dir_.path(), "/", layout["name"].get<std::string>(), "_", quant.mode);
    EXPECT_OK(fs.CreateDirs(out));
    EXPECT_OK(ExecutePlanLocally(fs, cp->plan, out, sidecars));
    std::map<std::string, std::string> files;
    auto names = fs.ListDir(out);
    for (const std::string& name : *names) {
      if (name != ".staging") files[name] = *fs::ReadFileToString(fs, out + "/" + name);
    }
    auto index = ParseJson(files["model.safetensors.index.json"], "index");
    EXPECT_TRUE(index.ok());
    uint64_t total = 0;
    for (const auto& [name, file] : (*index)["weight_map"].items()) {
      auto reader = safetensors::Reader::Open(fs, out + "/" + file.get<std::string>());
      EXPECT_TRUE(reader.ok()) << reader.status();
      const safetensors::TensorEntry* e = (*reader)->header().Find(name);
      EXPECT_NE(e, nullptr) << name << " is not in " << file;
      auto bytes = (*reader)->ReadTensor(name);
      tensors[name] = {e->dtype, e->shape, *bytes};
      total += bytes->size();
    }
    EXPECT_EQ((*index)["metadata"]["total_size"].get<uint64_t>(), total);
    return files;
  }

  // Exports every layout with `mode`; deep checks on each model's first layout. nvfp4 skips the
  // layouts with ModelOpt quantizer state, whose activation amax add input scales
  // (quantize_activation_test.cc).
  void CheckEveryLayout(const std::string& mode) {
    const Json catalog = Catalog();
    ASSERT_GE(catalog.size(), 30u);
    std::map<std::string, std::map<std::string, std::string>> reference;
    std::map<std::string, std::vector<std::string>> layouts;
    Figures fig;
    for (const Json& layout : catalog) {
      const std::string model = layout["model"].get<std::string>();
      SCOPED_TRACE(layout["name"].get<std::string>());
      if (mode == "nvfp4" && layout.contains("modelopt")) continue;
      Tensors got;
      std::map<std::string, std::string> files = Export(layout, {mode, {}}, got);
      ASSERT_FALSE(files.empty());
      layouts[model].push_back(layout["name"].get<std::string>());
      if (reference.contains(model)) {
        ASSERT_EQ(files.size(), reference[model].size());
        for (const auto& [file, bytes] : files) {
          EXPECT_TRUE(bytes == reference[model][file]) << file << " differs from the first layout";
        }
        continue;
      }
      reference[model] = files;
      const Tensors original =
          Original(kFixtures + "/" + layout["expected"].get<std::string>());
      CheckModel(mode, files, got, original, fig);
    }
    int compared = 0;
    for (const auto& [model, names] : layouts) compared += names.size();
    std::cout << "[ figures  ] " << mode << ": " << layouts.size() << " models, " << compared
              << " layouts byte-identical per model; " << fig.quantized << " weights dequantized, "
              << fig.copied << " tensors bit-exact; max |w - dq| " << fig.max_abs_error
              << ", max error / " << (mode == "nvfp4" ? "block amax " : "tile amax ")
              << fig.max_error_over_block_amax << ", max error / bound " << fig.max_bound_use
              << "\n";
    EXPECT_GE(layouts.size(), 6u);
    EXPECT_GT(fig.quantized, 300);
  }

  void CheckModel(const std::string& mode, const std::map<std::string, std::string>& files,
                  const Tensors& got, const Tensors& original, Figures& fig) {
    const bool nvfp4 = mode == "nvfp4";
    size_t scale_tensors = 0;
    for (const auto& [name, t] : original) {
      SCOPED_TRACE(name);
      ASSERT_TRUE(got.contains(name));
      const std::string module = name.substr(0, name.size() - 7);
      if (got.contains(module + ".weight_scale_2") || got.contains(module + ".weight_scale_inv")) {
        ASSERT_TRUE(absl::EndsWith(name, ".weight"));
        if (nvfp4) {
          CheckNvfp4(got, original, name, fig);
          scale_tensors += 2;
        } else {
          CheckFp8Block(got, original, name, fig);
          scale_tensors += 1;
        }
        ++fig.quantized;
      } else {
        EXPECT_EQ(got.at(name).dtype, t.dtype);
        EXPECT_TRUE(got.at(name).bytes == t.bytes) << "unquantized tensor differs";
        ++fig.copied;
      }
    }
    EXPECT_EQ(got.size(), original.size() + scale_tensors) << "unexpected tensors";
    // Every module with any quantized tensor has the complete set.
    for (const auto& [name, t] : got) {
      for (const char* suffix : {".weight_scale", ".weight_scale_2", ".weight_scale_inv"}) {
        if (!absl::EndsWith(name, suffix)) continue;
        const std::string module = name.substr(0, name.size() - std::strlen(suffix));
        for (const char* need : nvfp4 ? std::vector<const char*>{".weight", ".weight_scale",
                                                                 ".weight_scale_2"}
                                      : std::vector<const char*>{".weight", ".weight_scale_inv"}) {
          EXPECT_TRUE(got.contains(module + need)) << module << " lacks " << need;
        }
      }
    }
    const std::vector<std::string> excluded = UnquantizedLinears(got);
    EXPECT_TRUE(std::find(excluded.begin(), excluded.end(), "model.embed_tokens") !=
                excluded.end());
    auto config = ParseJson(files.at("config.json"), "config.json");
    ASSERT_TRUE(config.ok());
    const Json& qc = (*config)["quantization_config"];
    if (nvfp4) {
      auto hf = ParseJson(files.at("hf_quant_config.json"), "hf_quant_config.json");
      ASSERT_TRUE(hf.ok());
      const Json& q = (*hf)["quantization"];
      EXPECT_EQ(q["quant_algo"], "W4A16_NVFP4");
      EXPECT_EQ(q["group_size"], 16);
      EXPECT_TRUE(q["kv_cache_quant_algo"].is_null());
      EXPECT_EQ(q["exclude_modules"].get<std::vector<std::string>>(), excluded);
      EXPECT_EQ(qc["quant_method"], "modelopt");
      EXPECT_EQ(qc["quant_algo"], "W4A16_NVFP4");
      EXPECT_EQ(qc["ignore"].get<std::vector<std::string>>(), excluded);
      EXPECT_FALSE(qc["config_groups"]["group_0"].contains("input_activations"));
    } else {
      EXPECT_FALSE(files.contains("hf_quant_config.json"));
      EXPECT_EQ(qc["quant_method"], "fp8");
      EXPECT_EQ(qc["activation_scheme"], "dynamic");
      EXPECT_EQ(qc["weight_block_size"], Json::array({128, 128}));
      EXPECT_EQ(qc["modules_to_not_convert"].get<std::vector<std::string>>(), excluded);
    }
  }

  fs::testutil::PosixTempDir dir_;
};

TEST_F(QuantizeExportTest, Nvfp4EveryLayoutIdenticalAndWithinTheE2m1Bound) {
  CheckEveryLayout("nvfp4");
}

TEST_F(QuantizeExportTest, Fp8BlockEveryLayoutIdenticalAndWithinTheE4m3Bound) {
  CheckEveryLayout("fp8_block");
}

TEST_F(QuantizeExportTest, FusedSiblingsShareWeightScale2) {
  for (const char* name : {"qwen3_moe_tp2_pp2_ep4", "mixtral_ep4", "qwen2_moe_tp2_ep2"}) {
    SCOPED_TRACE(name);
    Json layout;
    for (const Json& l : Catalog()) {
      if (l["name"] == name) layout = l;
    }
    Tensors got;
    Export(layout, {"nvfp4", {}}, got);
    int groups = 0;
    for (const auto& [tensor, t] : got) {
      std::vector<std::pair<std::string, std::string>> subs;
      if (absl::EndsWith(tensor, ".q_proj.weight_scale_2")) {
        subs = {{".q_proj.", ".k_proj."}, {".q_proj.", ".v_proj."}};
      } else if (absl::EndsWith(tensor, ".gate_proj.weight_scale_2")) {
        subs = {{".gate_proj.", ".up_proj."}};
      } else if (absl::EndsWith(tensor, ".w1.weight_scale_2")) {
        subs = {{".w1.", ".w3."}};
      } else {
        continue;
      }
      for (const auto& sub : subs) {
        EXPECT_EQ(got.at(absl::StrReplaceAll(tensor, {sub})).bytes, t.bytes) << tensor;
      }
      ++groups;
    }
    EXPECT_GE(groups, 20);
  }
}

TEST_F(QuantizeExportTest, ExcludedModulesStayBitExactAndAreListed) {
  Json layout;
  for (const Json& l : Catalog()) {
    if (l["name"] == "qwen3_moe_tp2_ep2_etp2") layout = l;
  }
  Tensors got;
  auto files = Export(layout, {"nvfp4", {"*.self_attn.*", "*.experts.7.*"}}, got);
  const Tensors original = Original(kFixtures + "/models/qwen3_moe/hf");
  EXPECT_TRUE(got.at("model.layers.2.self_attn.q_proj.weight").bytes ==
              original.at("model.layers.2.self_attn.q_proj.weight").bytes);
  EXPECT_TRUE(got.at("model.layers.2.mlp.experts.7.down_proj.weight").bytes ==
              original.at("model.layers.2.mlp.experts.7.down_proj.weight").bytes);
  EXPECT_EQ(got.at("model.layers.2.mlp.experts.6.down_proj.weight").dtype, DType::kUInt8);
  auto hf = ParseJson(files["hf_quant_config.json"], "hf_quant_config.json");
  ASSERT_TRUE(hf.ok());
  const auto excluded = (*hf)["quantization"]["exclude_modules"].get<std::vector<std::string>>();
  EXPECT_EQ(excluded, UnquantizedLinears(got));
  // 6 layers x (q, k, v, o, router, expert 7's three) + embedding + lm_head.
  EXPECT_EQ(excluded.size(), 6u * 8 + 2);
  EXPECT_THAT(excluded, ::testing::Contains("model.layers.5.mlp.experts.7.gate_proj"));
  EXPECT_THAT(excluded, ::testing::Contains("model.layers.0.mlp.gate"));
}

}  // namespace
}  // namespace mxport::exporter
