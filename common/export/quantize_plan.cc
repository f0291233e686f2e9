// ApplyQuantization (the plan transform) and the quantization sidecars. The statistics are in
// quant_stats.cc, the per-chunk quantization and scatter in quantize_chunk.cc.
#include "common/export/quantize_plan.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/status_macros.h"
#include "common/export/hf_config.h"
#include "common/export/quantize_internal.h"
#include "common/quant/quant.h"

namespace mxport::exporter {
namespace {

using A = QuantAlgo;

struct ModeInfo {
  absl::string_view mode;
  QuantAlgo algo;
  bool from_checkpoint;  // quantizes the calibrated modules with the checkpoint's amax
};

const ModeInfo kModes[] = {
    {"none", A::kNone, false},        {"nvfp4", A::kW4A16Nvfp4, false},
    {"fp8_block", A::kFp8Block, false}, {"fp8", A::kFp8, true},
    {"checkpoint", A::kNvfp4, true},
};

// Roles whose `.weight` is a linear-like module in the quantization config; only some may be
// quantized (the others are listed in exclude_modules).
struct LinearRole {
  Role role;
  bool quantizable;
};

const LinearRole kLinearRoles[] = {
    {Role::kQkvWeight, true},  {Role::kAttnOut, true},    {Role::kDenseFc1, true},
    {Role::kDenseFc2, true},   {Role::kExpertFc1, true},  {Role::kExpertFc2, true},
    {Role::kSharedFc1, true},  {Role::kSharedFc2, true},  {Role::kEmbedding, false},
    {Role::kOutput, false},    {Role::kRouter, false},    {Role::kSharedGate, false},
};

// The QuantPart of each tensor QuantizedTensorsFor lists.
struct PartRule {
  QuantAlgo algo;
  absl::string_view suffix;
  QuantPart part;
  ScalarScale scalar = ScalarScale::kWeightScale2;
};

const PartRule kPartRules[] = {
    {A::kW4A16Nvfp4, "weight", QuantPart::kWeight},
    {A::kW4A16Nvfp4, "weight_scale", QuantPart::kBlockScales},
    {A::kW4A16Nvfp4, "weight_scale_2", QuantPart::kWeightScale2},
    {A::kFp8Block, "weight", QuantPart::kWeight},
    {A::kFp8Block, "weight_scale_inv", QuantPart::kScaleInv},
    {A::kNvfp4, "weight", QuantPart::kWeight},
    {A::kNvfp4, "weight_scale", QuantPart::kBlockScales},
    {A::kNvfp4, "weight_scale_2", QuantPart::kWeightScale2},
    {A::kNvfp4, "input_scale", QuantPart::kWeightScale2, ScalarScale::kInputScale},
    {A::kFp8, "weight", QuantPart::kWeight},
    {A::kFp8, "weight_scale", QuantPart::kWeightScale2, ScalarScale::kWeightScale},
    {A::kFp8, "input_scale", QuantPart::kWeightScale2, ScalarScale::kInputScale},
};

// Fused siblings: HF weights that a loader fuses into one module (QKVParallelLinear,
// MergedColumnParallelLinear) share one global scale. Same key = same group.
struct FusedSuffix {
  absl::string_view suffix;
  absl::string_view key;
};

const FusedSuffix kFusedSuffixes[] = {
    {".self_attn.q_proj.weight", ".self_attn.qkv"},
    {".self_attn.k_proj.weight", ".self_attn.qkv"},
    {".self_attn.v_proj.weight", ".self_attn.qkv"},
    {".gate_proj.weight", ".gate_up_proj"},
    {".up_proj.weight", ".gate_up_proj"},
    {".w1.weight", ".w13"},
    {".w3.weight", ".w13"},
};

constexpr absl::string_view kWeightSuffix = ".weight";

const LinearRole* FindLinearRole(Role role) {
  for (const LinearRole& r : kLinearRoles) {
    if (r.role == role) return &r;
  }
  return nullptr;
}

std::string FusionKey(absl::string_view name) {
  for (const FusedSuffix& f : kFusedSuffixes) {
    if (absl::EndsWith(name, f.suffix)) {
      return absl::StrCat(name.substr(0, name.size() - f.suffix.size()), f.key);
    }
  }
  return std::string(name);
}

// The module name of a linear-like tensor, or "" when it is none.
std::string ModuleOf(const HfTensor& t) {
  if (FindLinearRole(t.role) == nullptr || !absl::EndsWith(t.name, kWeightSuffix)) return "";
  if (t.quant_part != QuantPart::kNone && t.quant_part != QuantPart::kWeight) return "";
  return t.name.substr(0, t.name.size() - kWeightSuffix.size());
}

absl::StatusOr<const ModeInfo*> FindMode(absl::string_view mode) {
  for (const ModeInfo& m : kModes) {
    if (m.mode == mode) return &m;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown quantization '", mode,
                                                 "'; accepted: ",
                                                 absl::StrJoin(QuantModes(), ", ")));
}

int64_t Elements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

bool IsNvfp4(QuantAlgo algo) { return algo == A::kW4A16Nvfp4 || algo == A::kNvfp4; }

// Checks that `w` (an unquantized 2-D weight) can be quantized with `algo`.
absl::Status CheckQuantizable(const ExportPlan& plan, int w, QuantAlgo algo) {
  const HfTensor& t = plan.tensors[w];
  if (t.shape.size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        t.name, ": only 2-D weights are quantized, this one has ", t.shape.size(), " dims"));
  }
  if (!quant::IsQuantizableSource(t.dtype)) {
    return absl::InvalidArgumentError(absl::StrCat(
        t.name, " is ", DTypeName(t.dtype), "; quantization reads bfloat16, float16 or float32"));
  }
  const QuantAlgoInfo& info = GetQuantAlgoInfo(algo);
  if (IsNvfp4(algo) && t.shape[1] % info.group_size != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        t.name, " has an input dimension of ", t.shape[1], ", not a multiple of ",
        info.group_size, " as ", info.name,
        " needs; exclude it (--quant-exclude) or use fp8_block"));
  }
  return absl::OkStatus();
}

// NVFP4 packs two elements per byte: every piece of an NVFP4 weight starts and ends at an even
// column (a 16-element block may still be cut; its scale then comes from the statistics).
absl::Status CheckPieceColumns(const ExportPlan& plan, const std::vector<QuantAlgo>& algo) {
  for (const Piece& p : plan.pieces) {
    if (!IsNvfp4(algo[p.tensor]) || (p.dst_col % 2 == 0 && p.cols % 2 == 0)) continue;
    return absl::InvalidArgumentError(absl::StrCat(
        plan.tensors[p.tensor].name, ": ", GetQuantAlgoInfo(algo[p.tensor]).name,
        " packs two elements per byte, but the piece from ", plan.sources[p.source].dir_name,
        " '", p.key, "' covers columns [", p.dst_col, ", ", p.dst_col + p.cols, ")"));
  }
  return absl::OkStatus();
}

// Orders tensors as BuildPlan does, a module's tensors together, and packs them into files of
// at most `max_shard_size` bytes without splitting a module.
void Relayout(ExportPlan& plan, uint64_t max_shard_size) {
  const size_t n = plan.tensors.size();
  std::vector<std::string> unit(n);
  for (size_t i = 0; i < n; ++i) {
    const HfTensor& t = plan.tensors[i];
    unit[i] = t.quant_part == QuantPart::kNone ? t.name : plan.tensors[t.quant_weight].name;
  }
  auto key = [&](size_t i) {
    const HfTensor& t = plan.tensors[i];
    const int group = t.role == Role::kEmbedding ? 0 : t.layer >= 0 ? 1 : 2;
    return std::make_tuple(group, t.layer >= 0 ? t.layer : 0, std::cref(unit[i]),
                           std::cref(t.name));
  };
  std::vector<int> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = static_cast<int>(i);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return key(a) < key(b); });
  std::vector<int> position(n);
  for (size_t i = 0; i < n; ++i) position[order[i]] = static_cast<int>(i);

  std::vector<HfTensor> tensors;
  tensors.reserve(n);
  for (int old : order) tensors.push_back(std::move(plan.tensors[old]));
  for (HfTensor& t : tensors) {
    if (t.quant_weight >= 0) t.quant_weight = position[t.quant_weight];
  }
  std::vector<OutputFile> files;
  plan.total_bytes = 0;
  for (size_t i = 0; i < n;) {
    size_t end = i + 1;
    uint64_t unit_bytes = tensors[i].bytes;
    while (end < n && unit[order[end]] == unit[order[i]]) unit_bytes += tensors[end++].bytes;
    if (files.empty() ||
        (files.back().data_bytes > 0 && files.back().data_bytes + unit_bytes > max_shard_size)) {
      files.emplace_back();
    }
    for (; i < end; ++i) {
      HfTensor& t = tensors[i];
      t.file = static_cast<int>(files.size() - 1);
      t.offset = files.back().data_bytes;
      files.back().tensors.push_back(static_cast<int>(i));
      files.back().data_bytes += t.bytes;
      plan.total_bytes += t.bytes;
    }
  }
  for (size_t f = 0; f < files.size(); ++f) {
    files[f].name = ShardFileName(static_cast<int>(f), static_cast<int>(files.size()));
  }
  plan.tensors = std::move(tensors);
  plan.files = std::move(files);
  for (Piece& p : plan.pieces) p.tensor = position[p.tensor];
  std::sort(plan.pieces.begin(), plan.pieces.end(), [](const Piece& a, const Piece& b) {
    return std::tie(a.tensor, a.dst_row, a.dst_col) < std::tie(b.tensor, b.dst_row, b.dst_col);
  });
}

// stat_group: the first quantized weight (in plan order) with the same fusion key and algo.
void AssignStatGroups(ExportPlan& plan) {
  std::map<std::pair<std::string, int>, int> first;
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    HfTensor& t = plan.tensors[i];
    if (t.quant_part != QuantPart::kWeight) continue;
    auto [it, inserted] = first.try_emplace({FusionKey(t.name), static_cast<int>(t.quant)},
                                            static_cast<int>(i));
    t.stat_group = it->second;
  }
}

}  // namespace

std::vector<std::string> QuantModes() {
  std::vector<std::string> out;
  for (const ModeInfo& m : kModes) out.emplace_back(m.mode);
  return out;
}

bool IsQuantized(const ExportPlan& plan) {
  for (const HfTensor& t : plan.tensors) {
    if (t.quant_part != QuantPart::kNone) return true;
  }
  return false;
}

Piece RowChunk(const Piece& piece, int64_t first, int64_t n) {
  Piece c = piece;
  c.src_row += first;
  c.dst_row += first;
  c.rows = n;
  return c;
}

// Modes checkpoint and fp8: the algorithm, and which modules (by index) the checkpoint
// calibrates (plus the routed experts of a calibrated layer projection; quantize_plan.h).
absl::StatusOr<QuantAlgo> CheckpointSelection(const ExportPlan& plan, const ModeInfo& mode,
                                              const std::vector<int>& module_tensor,
                                              std::vector<bool>& selected) {
  std::set<std::string> weight_amax, input_amax;
  for (const AmaxSource& a : plan.amax_sources) {
    for (const std::string& w : a.weights) {
      (a.input ? input_amax : weight_amax).insert(w);
      if (!a.input) weight_amax.insert(quant_internal::ExpertPattern(w));
      if (a.input) input_amax.insert(quant_internal::ExpertPattern(w));
    }
  }
  if (weight_amax.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "quantization '", mode.mode, "' re-exports a ModelOpt calibration, but the checkpoint "
        "has no quantizer amax (<module>.weight_quantizer._amax)"));
  }
  if (input_amax.empty() && mode.algo == A::kFp8) {
    return absl::FailedPreconditionError(
        "quantization 'fp8' needs activation amax (<module>.input_quantizer._amax) for its "
        "static input_scale, and the checkpoint has none; use 'checkpoint' or 'fp8_block'");
  }
  const QuantAlgo algo = input_amax.empty() ? A::kW4A16Nvfp4 : mode.algo;
  selected.assign(module_tensor.size(), false);
  for (size_t m = 0; m < module_tensor.size(); ++m) {
    const std::string& name = plan.tensors[module_tensor[m]].name;
    const std::string pattern = quant_internal::ExpertPattern(name);
    selected[m] = weight_amax.count(name) > 0 || (pattern != name && weight_amax.count(pattern));
    if (selected[m] && !input_amax.empty() && input_amax.count(name) == 0 &&
        input_amax.count(pattern) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, " is calibrated but the checkpoint has no input amax for it "
          "(input_quantizer._amax)"));
    }
  }
  return algo;
}

absl::StatusOr<ExportPlan> ApplyQuantization(ExportPlan plan, const QuantRequest& request) {
  ASSIGN_OR_RETURN(const ModeInfo* mode, FindMode(request.mode));
  QuantAlgo algo = mode->algo;
  if (algo == A::kNone) {
    if (!request.exclude.empty()) {
      return absl::InvalidArgumentError("quantization exclusions need a quantization mode");
    }
    return plan;
  }
  if (IsQuantized(plan)) return absl::FailedPreconditionError("the plan is already quantized");
  if (!mode->from_checkpoint) plan.amax_sources.clear();
  std::vector<std::string> modules;
  std::vector<int> module_tensor;
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    std::string module = ModuleOf(plan.tensors[i]);
    if (module.empty()) continue;
    modules.push_back(std::move(module));
    module_tensor.push_back(static_cast<int>(i));
  }
  std::vector<bool> selected(modules.size(), true);
  if (mode->from_checkpoint) {
    ASSIGN_OR_RETURN(algo, CheckpointSelection(plan, *mode, module_tensor, selected));
  }
  QuantPolicy policy;
  policy.algo = algo;
  policy.exclude = request.exclude;
  ASSIGN_OR_RETURN(std::vector<ModuleQuant> assigned, AssignQuantization(modules, policy));

  // Fused siblings must be quantized alike: a loader fuses them into one module.
  std::map<std::string, std::vector<size_t>> fused;
  for (size_t m = 0; m < assigned.size(); ++m) {
    const HfTensor& t = plan.tensors[module_tensor[m]];
    if (!FindLinearRole(t.role)->quantizable || !selected[m]) assigned[m].algo = A::kNone;
    fused[FusionKey(t.name)].push_back(m);
  }
  for (const auto& [key, members] : fused) {
    for (size_t m : members) {
      if (assigned[m].algo == assigned[members[0]].algo) continue;
      return absl::InvalidArgumentError(absl::StrCat(
          "fused modules must be quantized alike, but ", assigned[members[0]].name, " is ",
          GetQuantAlgoInfo(assigned[members[0]].algo).name, " and ", assigned[m].name, " is ",
          GetQuantAlgoInfo(assigned[m].algo).name, "; exclude all of them or none"));
    }
  }

  std::vector<QuantAlgo> tensor_algo(plan.tensors.size(), A::kNone);
  for (size_t m = 0; m < assigned.size(); ++m) {
    if (assigned[m].algo == A::kNone) continue;
    RETURN_IF_ERROR(CheckQuantizable(plan, module_tensor[m], algo));
    tensor_algo[module_tensor[m]] = algo;
  }
  RETURN_IF_ERROR(CheckPieceColumns(plan, tensor_algo));
  for (size_t m = 0; m < assigned.size(); ++m) {
    if (assigned[m].algo == A::kNone) continue;
    const int w = module_tensor[m];
    const HfTensor& t = plan.tensors[w];
    ASSIGN_OR_RETURN(std::vector<QuantizedTensorSpec> specs,
                     QuantizedTensorsFor(algo, t.shape[0], t.shape[1]));
    std::vector<HfTensor> added;
    for (const QuantizedTensorSpec& spec : specs) {
      const PartRule* rule = nullptr;
      for (const PartRule& r : kPartRules) {
        if (r.algo == algo && r.suffix == spec.suffix) rule = &r;
      }
      if (rule == nullptr) {
        return absl::UnimplementedError(absl::StrCat(
            GetQuantAlgoInfo(algo).name, " tensor '", spec.suffix, "' cannot be computed"));
      }
      HfTensor q;
      q.name = absl::StrCat(assigned[m].name, ".", spec.suffix);
      q.dtype = spec.dtype;
      q.shape = spec.shape;
      q.role = t.role;
      q.layer = t.layer;
      q.bytes = static_cast<uint64_t>(Elements(spec.shape)) * ElementBytes(spec.dtype);
      q.quant = algo;
      q.quant_part = rule->part;
      q.scalar = rule->scalar;
      q.quant_weight = w;
      if (rule->part == QuantPart::kWeight) {
        q.source_dtype = t.dtype;
        q.source_cols = t.shape[1];
      }
      added.push_back(std::move(q));
    }
    for (HfTensor& q : added) {
      if (q.quant_part == QuantPart::kWeight) {
        plan.tensors[w] = std::move(q);
      } else {
        plan.tensors.push_back(std::move(q));
      }
    }
  }
  Relayout(plan, request.max_shard_size);
  AssignStatGroups(plan);
  return plan;
}

absl::StatusOr<QuantSidecarFiles> QuantSidecars(const ExportPlan& plan,
                                                absl::string_view config_json,
                                                const Producer& producer) {
  QuantConfigInput input;
  input.producer = producer;
  for (const HfTensor& t : plan.tensors) {
    std::string module = ModuleOf(t);
    if (!module.empty()) input.modules.push_back({std::move(module), t.quant});
  }
  ASSIGN_OR_RETURN(QuantConfigs configs, BuildQuantConfigs(input));
  QuantSidecarFiles out;
  ASSIGN_OR_RETURN(OrderedJson config, ParseOrderedJson(config_json, "config.json"));
  if (!config.is_object()) return absl::InvalidArgumentError("config.json is not an object");
  if (configs.quantization_config.has_value()) {
    config["quantization_config"] = *configs.quantization_config;
  } else if (config.contains("quantization_config")) {
    config.erase("quantization_config");  // stale: the export is not quantized
  } else {
    out.config_json = std::string(config_json);
    return out;
  }
  out.config_json = config.dump(2) + "\n";
  if (configs.hf_quant_config.has_value()) {
    out.hf_quant_config_json = configs.hf_quant_config->dump(2) + "\n";
  }
  return out;
}

absl::StatusOr<std::vector<Sidecar>> CollectSidecars(fs::FileSystem& fs, const ExportPlan& plan,
                                                     const std::string& hf_config_dir,
                                                     const Producer& producer) {
  std::vector<Sidecar> sidecars;
  bool have_config = false;
  if (!hf_config_dir.empty()) {
    ASSIGN_OR_RETURN(std::vector<std::string> names, SidecarFiles(fs, hf_config_dir));
    for (const std::string& name : names) {
      ASSIGN_OR_RETURN(std::string bytes,
                       fs::ReadFileToString(fs, fs::JoinPath(hf_config_dir, name)));
      have_config |= name == "config.json";
      sidecars.push_back({name, std::move(bytes)});
    }
  }
  if (!have_config) {
    const int64_t vocab = plan.tensors.front().shape[0];  // the embedding comes first
    sidecars.push_back(
        {"config.json", GenerateHfConfig(plan.config, *plan.arch, vocab).dump(2) + "\n"});
  }
  std::stable_partition(sidecars.begin(), sidecars.end(),
                        [](const Sidecar& s) { return s.name == "config.json"; });
  // config.json's quantization_config and hf_quant_config.json describe the plan's tensors.
  Producer named = producer;
  if (named.version.empty()) named.version = MXPORT_PROJECT_VERSION;
  ASSIGN_OR_RETURN(QuantSidecarFiles quant, QuantSidecars(plan, sidecars.front().bytes, named));
  sidecars.front().bytes = std::move(quant.config_json);
  if (quant.hf_quant_config_json.has_value()) {
    sidecars.insert(sidecars.begin() + 1,
                    {"hf_quant_config.json", std::move(*quant.hf_quant_config_json)});
  }
  return sidecars;
}

}  // namespace mxport::exporter
