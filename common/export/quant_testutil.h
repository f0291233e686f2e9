// Helpers the quantized-export tests share: every tensor of a torch.save file (an HF original
// or a rank file) read with the project's torch reader, element values as floats, f32 scalars,
// the Megatron fixture catalog (make_megatron_fixtures.py), and a local export of a plan with
// its quantization sidecars read back by name. Failures are test failures (empty results), not
// statuses. Tests only.
#ifndef MXPORT_COMMON_EXPORT_QUANT_TESTUTIL_H_
#define MXPORT_COMMON_EXPORT_QUANT_TESTUTIL_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/types/span.h"
#include "common/base/dtype.h"
#include "common/export/checkpoint_planner.h"
#include "common/export/local_executor.h"
#include "common/export/quantize_plan.h"
#include "common/fs/file_system.h"
#include "common/json/json.h"
#include "common/quant/quant.h"
#include "common/safetensors/reader.h"
#include "common/testing/status_matchers.h"
#include "common/torch/torch_file.h"
#include "gtest/gtest.h"

namespace mxport::exporter::testutil {

struct Tensor {
  DType dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};
using Tensors = std::map<std::string, Tensor>;

// Every tensor of the torch.save file at `path`, by path ("model/decoder.layers.0...." in a
// rank file, the state-dict key in an HF model.pt).
inline Tensors ReadTorchTensors(const std::string& path) {
  Tensors out;
  auto file = torch::TorchFile::Open(*fs::PosixFileSystem(), path);
  EXPECT_TRUE(file.ok()) << file.status();
  if (!file.ok()) return out;
  for (const torch::TensorEntry& e : (*file)->tensors()) {
    auto bytes = (*file)->ReadTensor(*e.tensor);
    EXPECT_TRUE(bytes.ok()) << path << ": " << e.path;
    if (bytes.ok()) out[e.path] = {e.tensor->dtype, e.tensor->shape, *bytes};
  }
  return out;
}

inline std::vector<float> Floats(const Tensor& t) {
  std::vector<float> v(t.bytes.size() / ElementBytes(t.dtype));
  EXPECT_OK(quant::ToFloat(t.dtype, t.bytes, absl::MakeSpan(v)));
  return v;
}

inline float Scalar(const Tensor& t) {
  float f = 0.0f;
  if (t.bytes.size() >= sizeof(f)) std::memcpy(&f, t.bytes.data(), sizeof(f));
  return f;
}

inline float Amax(const Tensor& t) {
  float amax = 0.0f;
  for (float x : Floats(t)) amax = std::max(amax, std::fabs(x));
  return amax;
}

// max |x| of the original tensors fused with `name` (q/k/v, gate/up, w1/w3), computed here.
inline float FusedAmax(const Tensors& original, const std::string& name) {
  std::vector<std::string> siblings = {name};
  const std::vector<std::vector<std::string>> families = {
      {".q_proj.", ".k_proj.", ".v_proj."}, {".gate_proj.", ".up_proj."}, {".w1.", ".w3."}};
  for (const auto& family : families) {
    for (const std::string& member : family) {
      if (!absl::StrContains(name, member)) continue;
      siblings.clear();
      for (const std::string& other : family) {
        siblings.push_back(absl::StrReplaceAll(name, {{member, other}}));
      }
    }
  }
  float amax = 0.0f;
  for (const std::string& s : siblings) {
    for (float x : Floats(original.at(s))) amax = std::max(amax, std::fabs(x));
  }
  return amax;
}

// The Megatron fixtures built by the test build.
inline std::string MegatronFixtures() {
  return std::string(MXPORT_BINARY_DIR) + "/fixtures/megatron";
}

// The catalog entry of layout `name` ("dir", "expected", ...); null when absent.
inline Json CatalogLayout(const std::string& name) {
  auto text = fs::ReadFileToString(*fs::PosixFileSystem(), MegatronFixtures() + "/catalog.json");
  EXPECT_TRUE(text.ok()) << text.status() << " (run ctest, or make_megatron_fixtures.py)";
  if (!text.ok()) return Json();
  auto json = ParseJson(*text, "catalog.json");
  EXPECT_TRUE(json.ok()) << json.status();
  if (!json.ok()) return Json();
  for (const Json& l : *json) {
    if (l["name"] == name) return l;
  }
  ADD_FAILURE() << "no layout " << name;
  return Json();
}

// The HF original (model.pt) of a catalog layout.
inline Tensors LayoutOriginal(const Json& layout) {
  return ReadTorchTensors(MegatronFixtures() + "/" + layout["expected"].get<std::string>() +
                          "/model.pt");
}

// PlanCheckpoint for a catalog layout with its HF config, small shards, quantization `mode`.
inline absl::StatusOr<CheckpointPlan> PlanLayout(const Json& layout, const std::string& mode) {
  CheckpointPlanRequest request;
  request.source_dir = MegatronFixtures() + "/" + layout["dir"].get<std::string>();
  request.hf_config_dir = MegatronFixtures() + "/" + layout["expected"].get<std::string>();
  request.options.max_shard_size = 48 * 1024;
  request.quantization = {mode, {}};
  return PlanCheckpoint(*fs::PosixFileSystem(), request);
}

struct Exported {
  std::map<std::string, std::string> files;  // every published file by name
  Tensors tensors;                           // every tensor of the index by name
};

// ExecutePlanLocally of `plan` into `out` (created) with config.json (the layout's, plus
// QuantSidecars) and hf_quant_config.json when quantized; producer {"mxport", "test"}.
inline Exported ExportPlanTo(const ExportPlan& plan, const Json& layout, const std::string& out) {
  fs::FileSystem& fs = *fs::PosixFileSystem();
  Exported e;
  auto config = fs::ReadFileToString(
      fs, MegatronFixtures() + "/" + layout["expected"].get<std::string>() + "/config.json");
  EXPECT_TRUE(config.ok()) << config.status();
  if (!config.ok()) return e;
  auto side = QuantSidecars(plan, *config, {"mxport", "test"});
  EXPECT_TRUE(side.ok()) << side.status();
  if (!side.ok()) return e;
  std::vector<Sidecar> sidecars = {{"config.json", side->config_json}};
  if (side->hf_quant_config_json) {
    sidecars.push_back({"hf_quant_config.json", *side->hf_quant_config_json});
  }
  EXPECT_OK(fs.CreateDirs(out));
  const absl::Status run = ExecutePlanLocally(fs, plan, out, sidecars);
  EXPECT_OK(run);
  if (!run.ok()) return e;
  auto names = fs.ListDir(out);
  EXPECT_TRUE(names.ok()) << names.status();
  if (!names.ok()) return e;
  for (const std::string& name : *names) {
    if (name != ".staging") e.files[name] = *fs::ReadFileToString(fs, out + "/" + name);
  }
  auto index = ParseJson(e.files["model.safetensors.index.json"], "index");
  EXPECT_TRUE(index.ok()) << index.status();
  if (!index.ok()) return e;
  for (const auto& [name, file] : (*index)["weight_map"].items()) {
    auto reader = safetensors::Reader::Open(fs, out + "/" + file.get<std::string>());
    EXPECT_TRUE(reader.ok()) << reader.status();
    if (!reader.ok()) continue;
    const safetensors::TensorEntry* entry = (*reader)->header().Find(name);
    auto bytes = (*reader)->ReadTensor(name);
    EXPECT_TRUE(entry != nullptr && bytes.ok()) << name;
    if (entry != nullptr && bytes.ok()) e.tensors[name] = {entry->dtype, entry->shape, *bytes};
  }
  return e;
}

// PlanLayout then ExportPlanTo `out`; empty when planning fails (a test failure).
inline Exported ExportLayout(const Json& layout, const std::string& mode, const std::string& out) {
  auto cp = PlanLayout(layout, mode);
  EXPECT_TRUE(cp.ok()) << cp.status();
  if (!cp.ok()) return {};
  return ExportPlanTo(cp->plan, layout, out);
}

// The ModelOpt-calibrated fixture layouts (quantizer amax in the rank files).
inline constexpr const char* kModelOptLayouts[] = {
    "qwen3_moe_ep2_modelopt", "qwen3_moe_tp2_ep2_modelopt", "qwen2_moe_tp2_ep2_modelopt",
    "qwen2_moe_pp2_ep4_seq_modelopt"};

// The modules (HF prefixes) of the tensors named "<module><suffix>".
inline std::set<std::string> ModulesWith(const Tensors& tensors, absl::string_view suffix) {
  std::set<std::string> out;
  for (const auto& [name, t] : tensors) {
    if (absl::EndsWith(name, suffix)) out.insert(name.substr(0, name.size() - suffix.size()));
  }
  return out;
}

// hf_quant_config.json's "quantization" and config.json's "quantization_config".
inline Json HfQuantization(const Exported& e) {
  auto j = ParseJson(e.files.at("hf_quant_config.json"), "hf_quant_config.json");
  EXPECT_TRUE(j.ok()) << j.status();
  return j.ok() ? (*j)["quantization"] : Json();
}
inline Json QuantizationConfig(const Exported& e) {
  auto j = ParseJson(e.files.at("config.json"), "config.json");
  EXPECT_TRUE(j.ok()) << j.status();
  return j.ok() ? (*j)["quantization_config"] : Json();
}

}  // namespace mxport::exporter::testutil

#endif  // MXPORT_COMMON_EXPORT_QUANT_TESTUTIL_H_
