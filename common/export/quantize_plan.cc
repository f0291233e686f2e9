// ApplyQuantization (the plan transform): the modes, which modules each quantizes with which
// algorithm, and the tensors a quantized module gains. The module structure and the relayout are
// in quantize_modules.cc, the sidecars in quant_sidecars.cc, the statistics in quant_stats.cc,
// the per-chunk quantization and scatter in quantize_chunk.cc.
#include "common/export/quantize_plan.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/status_macros.h"
#include "common/export/quantize_internal.h"
#include "common/export/quantize_modules.h"
#include "common/quant/quant.h"

namespace mxport::exporter {
namespace {

using A = QuantAlgo;
using quant_internal::AssignStatGroups;
using quant_internal::FindLinearRole;
using quant_internal::FusionKey;
using quant_internal::ModuleOf;
using quant_internal::Relayout;

// What a mode takes from the checkpoint's ModelOpt quantizer state (ExportPlan::amax_sources).
enum class AmaxUse {
  kNone,   // nothing: amax_sources are cleared
  kInput,  // activation amax only: modules with one get input_scale, the others `weight_only`
  kAll,    // weight and activation amax: only the calibrated modules are quantized
};

struct ModeInfo {
  absl::string_view mode;
  QuantAlgo algo;  // with activation amax where the mode reads it
  AmaxUse amax;
  // The algorithm of a module without activation amax; kNone: the mode needs that amax
  // (ModelOpt has no weight-only per-tensor FP8).
  QuantAlgo weight_only = A::kNone;
};

const ModeInfo kModes[] = {
    {"none", A::kNone, AmaxUse::kNone},
    {"nvfp4", A::kNvfp4, AmaxUse::kInput, A::kW4A16Nvfp4},
    {"fp8", A::kFp8, AmaxUse::kInput},
    {"fp8_block", A::kFp8Block, AmaxUse::kNone},
    {"checkpoint", A::kNvfp4, AmaxUse::kAll, A::kW4A16Nvfp4},
    {"checkpoint_fp8", A::kFp8, AmaxUse::kAll},
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

// The HF weights the checkpoint holds a weight / an activation amax for (amax_sources), by
// name and by expert pattern: an expert lacking its own amax is covered by its layer
// projection's (quant_stats.cc fills it with their max).
struct Calibration {
  std::set<std::string> weight, input;
};

Calibration CalibrationOf(const ExportPlan& plan) {
  Calibration c;
  for (const AmaxSource& a : plan.amax_sources) {
    std::set<std::string>& names = a.input ? c.input : c.weight;
    for (const std::string& w : a.weights) {
      names.insert(w);
      names.insert(quant_internal::ExpertPattern(w));
    }
  }
  return c;
}

bool Covers(const std::set<std::string>& names, const std::string& weight) {
  return names.count(weight) > 0 || names.count(quant_internal::ExpertPattern(weight)) > 0;
}

// What a mode that needs activation amax says about modules without it: `names` (HF modules),
// the first few of them.
std::string MissingInputAmax(const ModeInfo& mode, const std::vector<std::string>& names) {
  constexpr size_t kShown = 3;
  std::vector<std::string> shown(names.begin(),
                                 names.begin() + std::min(names.size(), kShown));
  std::string which = absl::StrJoin(shown, ", ");
  if (names.size() > kShown) absl::StrAppend(&which, " and ", names.size() - kShown, " more");
  return absl::StrCat(
      "quantization '", mode.mode, "' sets each module's static input_scale from the "
      "checkpoint's activation amax (<module>.input_quantizer._amax, a ModelOpt calibration), "
      "and the checkpoint has none for ", which,
      "; ModelOpt has no weight-only per-tensor FP8: exclude those modules (--quant-exclude), "
      "or use 'fp8_block' (dynamic activations, no calibration) or 'nvfp4'");
}

// The algorithm `mode` gives each module (module_tensor: its weight's index; modules: its HF
// name) that the policy keeps (kept); kNone for the others and for a module the mode leaves
// unquantized (quantize_plan.h).
absl::StatusOr<std::vector<QuantAlgo>> ModeAlgorithms(const ExportPlan& plan,
                                                      const ModeInfo& mode,
                                                      const std::vector<int>& module_tensor,
                                                      const std::vector<std::string>& modules,
                                                      const std::vector<bool>& kept) {
  std::vector<QuantAlgo> out(module_tensor.size(), A::kNone);
  for (size_t m = 0; m < out.size(); ++m) {
    if (kept[m]) out[m] = mode.algo;
  }
  if (mode.amax == AmaxUse::kNone) return out;
  const Calibration cal = CalibrationOf(plan);
  if (mode.amax == AmaxUse::kInput) {
    std::vector<std::string> missing;
    for (size_t m = 0; m < out.size(); ++m) {
      if (out[m] == A::kNone || Covers(cal.input, plan.tensors[module_tensor[m]].name)) continue;
      out[m] = mode.weight_only;
      if (mode.weight_only == A::kNone) missing.push_back(modules[m]);
    }
    if (!missing.empty()) return absl::FailedPreconditionError(MissingInputAmax(mode, missing));
    return out;
  }
  if (cal.weight.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "quantization '", mode.mode, "' re-exports a ModelOpt calibration, but the checkpoint "
        "has no quantizer amax (<module>.weight_quantizer._amax)"));
  }
  if (cal.input.empty() && mode.weight_only == A::kNone) {
    return absl::FailedPreconditionError(absl::StrCat(
        "quantization '", mode.mode, "' needs activation amax (<module>.input_quantizer._amax) "
        "for its static input_scale, and the checkpoint has none; use 'checkpoint' or "
        "'fp8_block'"));
  }
  const QuantAlgo algo = cal.input.empty() ? mode.weight_only : mode.algo;
  for (size_t m = 0; m < out.size(); ++m) {
    if (out[m] == A::kNone) continue;
    const std::string& name = plan.tensors[module_tensor[m]].name;
    out[m] = Covers(cal.weight, name) ? algo : A::kNone;
    if (out[m] != A::kNone && !cal.input.empty() && !Covers(cal.input, name)) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, " is calibrated but the checkpoint has no input amax for it "
          "(input_quantizer._amax)"));
    }
  }
  return out;
}

// Keeps the amax_sources the quantized plan reads: none (AmaxUse::kNone), the activation amax
// of weights that have an input_scale (kInput), or all of them (kAll).
void PruneAmaxSources(ExportPlan& plan, AmaxUse use) {
  if (use == AmaxUse::kAll) return;
  std::set<std::string> with_input;
  for (const HfTensor& t : plan.tensors) {
    if (t.quant_part == QuantPart::kWeight && GetQuantAlgoInfo(t.quant).has_input_scale) {
      with_input.insert(t.name);
    }
  }
  std::erase_if(plan.amax_sources, [&](const AmaxSource& a) {
    return use == AmaxUse::kNone || !a.input ||
           std::none_of(a.weights.begin(), a.weights.end(),
                        [&](const std::string& w) { return with_input.count(w) > 0; });
  });
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

absl::StatusOr<ExportPlan> ApplyQuantization(ExportPlan plan, const QuantRequest& request) {
  ASSIGN_OR_RETURN(const ModeInfo* mode, FindMode(request.mode));
  if (mode->algo == A::kNone) {
    if (!request.exclude.empty()) {
      return absl::InvalidArgumentError("quantization exclusions need a quantization mode");
    }
    return plan;
  }
  if (IsQuantized(plan)) return absl::FailedPreconditionError("the plan is already quantized");
  std::vector<std::string> modules;
  std::vector<int> module_tensor;
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    std::string module = ModuleOf(plan.tensors[i]);
    if (module.empty()) continue;
    modules.push_back(std::move(module));
    module_tensor.push_back(static_cast<int>(i));
  }
  QuantPolicy policy;
  policy.algo = mode->algo;  // any algorithm: a kept module gets ModeAlgorithms' below
  policy.exclude = request.exclude;
  ASSIGN_OR_RETURN(std::vector<ModuleQuant> assigned, AssignQuantization(modules, policy));
  std::vector<bool> kept(assigned.size());
  for (size_t m = 0; m < assigned.size(); ++m) {
    kept[m] = assigned[m].algo != A::kNone &&
              FindLinearRole(plan.tensors[module_tensor[m]].role)->quantizable;
  }
  ASSIGN_OR_RETURN(const std::vector<QuantAlgo> mode_algo,
                   ModeAlgorithms(plan, *mode, module_tensor, modules, kept));

  // Fused siblings must be quantized alike: a loader fuses them into one module.
  std::map<std::string, std::vector<size_t>> fused;
  for (size_t m = 0; m < assigned.size(); ++m) {
    assigned[m].algo = mode_algo[m];
    fused[FusionKey(plan.tensors[module_tensor[m]].name)].push_back(m);
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
    RETURN_IF_ERROR(CheckQuantizable(plan, module_tensor[m], assigned[m].algo));
    tensor_algo[module_tensor[m]] = assigned[m].algo;
  }
  RETURN_IF_ERROR(CheckPieceColumns(plan, tensor_algo));
  for (size_t m = 0; m < assigned.size(); ++m) {
    const QuantAlgo algo = assigned[m].algo;
    if (algo == A::kNone) continue;
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
  PruneAmaxSources(plan, mode->amax);
  return plan;
}

}  // namespace mxport::exporter
