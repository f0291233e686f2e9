// The algorithm table, which modules are quantized (AssignQuantization, the default exclusions,
// fnmatch patterns) and the tensors of a quantized module. The JSON files are in
// quant_config_json.cc.
#include "common/export/quant_config.h"

#include <algorithm>
#include <array>
#include <optional>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/status_macros.h"
#include "common/export/quant_config_internal.h"

namespace mxport::exporter {
namespace {

using quant_config_internal::InvalidArgument;
using quant_config_internal::IsNorm;
using quant_config_internal::kFp8Block;
using quant_config_internal::ValidateModules;

using A = QuantAlgo;

constexpr std::array<QuantAlgoInfo, 5> kAlgos = {{
    {A::kNone, "none", 0, false, false},
    {A::kNvfp4, "NVFP4", 16, true, true},
    {A::kW4A16Nvfp4, "W4A16_NVFP4", 16, true, false},
    {A::kFp8, "FP8", 0, true, true},
    {A::kFp8Block, "FP8_BLOCK", 128, false, false},
}};

// Names accepted besides the table's.
constexpr std::array<std::pair<absl::string_view, QuantAlgo>, 1> kAlgoAliases = {{
    {"fp8_pb_wo", A::kFp8Block},  // ModelOpt's name for weight-only block FP8
}};

const DefaultExclusion kDefaultExclusions[] = {
    // Verbatim from ModelOpt's _default_disabled_quantizer_cfg (quantizer-name patterns).
    {"*lm_head*", "output projection (ModelOpt default)"},
    {"*proj_out.*", "Whisper output projection (ModelOpt default)"},
    {"*block_sparse_moe.gate*", "MoE router (ModelOpt default)"},
    {"*router*", "MoE router (ModelOpt default)"},
    {"*mlp.gate.*", "MoE router (ModelOpt default)"},
    {"*mlp.shared_expert_gate.*", "shared-expert gate (ModelOpt default)"},
    {"*linear_attn.conv1d*", "linear-attention conv1d (ModelOpt default)"},
    {"*mixer.conv1d*", "Mamba conv1d (ModelOpt default)"},
    {"*output_layer*", "Megatron output layer (ModelOpt default)"},
    {"output.*", "output projection (ModelOpt default)"},
    // HF names of modules ModelOpt never quantizes in the Megatron model.
    {"*embed_tokens", "embedding (not a linear layer)"},
    {"*embeddings", "embedding (not a linear layer)"},
    {"*mixer.gate.*", "Nemotron-H router (Megatron mlp.router)"},
};

// fnmatch over the whole string: '*' any run, '?' one char, '[...]' a set ('!' negates).
bool Glob(absl::string_view p, absl::string_view s) {
  size_t pi = 0, si = 0;
  size_t star_p = absl::string_view::npos, star_s = 0;
  while (si < s.size()) {
    if (pi < p.size() && p[pi] == '*') {
      star_p = pi++;
      star_s = si;
      continue;
    }
    bool matched = false;
    size_t next = pi + 1;
    if (pi < p.size() && p[pi] == '?') {
      matched = true;
    } else if (pi < p.size() && p[pi] == '[') {
      size_t j = pi + 1;
      const bool negate = j < p.size() && p[j] == '!';
      if (negate) ++j;
      bool in_set = false;
      const size_t set_begin = j;
      while (j < p.size() && (p[j] != ']' || j == set_begin)) {
        if (j + 2 < p.size() && p[j + 1] == '-' && p[j + 2] != ']') {
          if (p[j] <= s[si] && s[si] <= p[j + 2]) in_set = true;
          j += 3;
        } else {
          if (p[j] == s[si]) in_set = true;
          ++j;
        }
      }
      if (j < p.size()) {  // a closed set
        matched = in_set != negate;
        next = j + 1;
      } else {  // an unclosed '[' is a literal
        matched = s[si] == '[';
      }
    } else if (pi < p.size()) {
      matched = p[pi] == s[si];
    }
    if (matched) {
      pi = next;
      ++si;
    } else if (star_p != absl::string_view::npos) {
      pi = star_p + 1;
      si = ++star_s;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

}  // namespace

namespace quant_config_internal {

absl::Status ValidateModules(std::span<const ModuleQuant> modules) {
  std::set<absl::string_view> seen;
  for (const ModuleQuant& m : modules) {
    const bool printable = std::all_of(m.name.begin(), m.name.end(),
                                       [](char c) { return c > ' ' && c < 0x7f; });
    if (m.name.empty() || !printable || absl::EndsWith(m.name, ".") ||
        absl::StartsWith(m.name, ".")) {
      return InvalidArgument("bad module name '", m.name, "'");
    }
    if (!seen.insert(m.name).second) return InvalidArgument("duplicate module '", m.name, "'");
    if (m.algo != A::kNone && IsNorm(m.name)) {
      return InvalidArgument("norm module '", m.name, "' cannot be quantized");
    }
  }
  return absl::OkStatus();
}

}  // namespace quant_config_internal

std::span<const QuantAlgoInfo> AllQuantAlgos() { return kAlgos; }

const QuantAlgoInfo& GetQuantAlgoInfo(QuantAlgo algo) {
  return kAlgos[static_cast<size_t>(algo)];
}

absl::StatusOr<QuantAlgo> ParseQuantAlgo(absl::string_view name) {
  for (const QuantAlgoInfo& info : kAlgos) {
    if (absl::EqualsIgnoreCase(info.name, name)) return info.algo;
  }
  for (const auto& [alias, algo] : kAlgoAliases) {
    if (absl::EqualsIgnoreCase(alias, name)) return algo;
  }
  std::vector<absl::string_view> names;
  for (const QuantAlgoInfo& info : kAlgos) names.push_back(info.name);
  for (const auto& alias : kAlgoAliases) names.push_back(alias.first);
  return InvalidArgument("unknown quantization algorithm '", name,
                         absl::StrCat("'; accepted: ", absl::StrJoin(names, ", ")));
}

absl::StatusOr<KvCacheAlgo> ParseKvCacheAlgo(absl::string_view name) {
  if (absl::EqualsIgnoreCase(name, "none")) return KvCacheAlgo::kNone;
  if (absl::EqualsIgnoreCase(name, "fp8")) return KvCacheAlgo::kFp8;
  return InvalidArgument("unknown KV cache algorithm '", name, "'; accepted: none, FP8");
}

bool ModuleMatches(absl::string_view pattern, absl::string_view module) {
  return Glob(pattern, module) || Glob(pattern, absl::StrCat(module, ".weight_quantizer"));
}

std::span<const DefaultExclusion> DefaultExclusions() { return kDefaultExclusions; }

absl::StatusOr<std::vector<ModuleQuant>> AssignQuantization(
    std::span<const std::string> linear_modules, const QuantPolicy& policy) {
  for (const std::string& p : policy.exclude) {
    if (p.empty()) return InvalidArgument("empty exclude pattern");
  }
  for (const AlgoOverride& o : policy.overrides) {
    if (o.pattern.empty()) return InvalidArgument("empty override pattern");
  }
  std::vector<bool> exclude_used(policy.exclude.size(), false);
  std::vector<bool> override_used(policy.overrides.size(), false);
  std::vector<ModuleQuant> out;
  out.reserve(linear_modules.size());
  for (const std::string& name : linear_modules) {
    ModuleQuant m{name, policy.algo};
    if (IsNorm(name)) {
      m.algo = A::kNone;
      out.push_back(std::move(m));
      continue;
    }
    // A pattern counts as used when it matches, whatever takes precedence.
    bool excluded = false;
    for (size_t i = 0; i < policy.exclude.size(); ++i) {
      if (ModuleMatches(policy.exclude[i], name)) {
        exclude_used[i] = true;
        excluded = true;
      }
    }
    std::optional<QuantAlgo> override_algo;
    for (size_t i = 0; i < policy.overrides.size(); ++i) {
      if (ModuleMatches(policy.overrides[i].pattern, name)) {
        override_used[i] = true;
        if (!override_algo.has_value()) override_algo = policy.overrides[i].algo;
      }
    }
    if (excluded) {
      m.algo = A::kNone;
    } else if (override_algo.has_value()) {
      m.algo = *override_algo;
    } else {
      for (const DefaultExclusion& d : kDefaultExclusions) {
        if (ModuleMatches(d.pattern, name)) {
          m.algo = A::kNone;
          break;
        }
      }
    }
    out.push_back(std::move(m));
  }
  std::vector<std::string> unused;
  for (size_t i = 0; i < policy.exclude.size(); ++i) {
    if (!exclude_used[i]) unused.push_back(absl::StrCat("exclude '", policy.exclude[i], "'"));
  }
  for (size_t i = 0; i < policy.overrides.size(); ++i) {
    if (!override_used[i]) {
      unused.push_back(absl::StrCat("override '", policy.overrides[i].pattern, "'"));
    }
  }
  if (!unused.empty()) {
    return InvalidArgument("patterns match no module: ", absl::StrJoin(unused, ", "));
  }
  RETURN_IF_ERROR(ValidateModules(out));
  return out;
}

std::vector<std::string> ExcludedModules(std::span<const ModuleQuant> modules) {
  std::vector<std::string> out;
  for (const ModuleQuant& m : modules) {
    if (m.algo == A::kNone && !IsNorm(m.name)) out.push_back(m.name);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// ---- Tensors ----

namespace {

using ShapeFn = std::vector<int64_t> (*)(int64_t out, int64_t in);

struct TensorRule {
  QuantAlgo algo;
  absl::string_view suffix;
  DType dtype;
  ShapeFn shape;
};

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

std::vector<int64_t> Full(int64_t out, int64_t in) { return {out, in}; }
std::vector<int64_t> PackedE2m1(int64_t out, int64_t in) { return {out, in / 2}; }
std::vector<int64_t> PerBlock16(int64_t out, int64_t in) { return {out, in / 16}; }
std::vector<int64_t> Tiles128(int64_t out, int64_t in) {
  return {CeilDiv(out, kFp8Block), CeilDiv(in, kFp8Block)};
}
std::vector<int64_t> Scalar(int64_t, int64_t) { return {}; }
std::vector<int64_t> One(int64_t, int64_t) { return {1}; }

const TensorRule kTensorRules[] = {
    {A::kNvfp4, "weight", DType::kUInt8, PackedE2m1},
    {A::kNvfp4, "weight_scale", DType::kFloat8E4M3FN, PerBlock16},
    {A::kNvfp4, "weight_scale_2", DType::kFloat32, Scalar},
    {A::kNvfp4, "input_scale", DType::kFloat32, Scalar},
    {A::kW4A16Nvfp4, "weight", DType::kUInt8, PackedE2m1},
    {A::kW4A16Nvfp4, "weight_scale", DType::kFloat8E4M3FN, PerBlock16},
    {A::kW4A16Nvfp4, "weight_scale_2", DType::kFloat32, Scalar},
    {A::kFp8, "weight", DType::kFloat8E4M3FN, Full},
    {A::kFp8, "weight_scale", DType::kFloat32, Scalar},
    {A::kFp8, "input_scale", DType::kFloat32, One},
    {A::kFp8Block, "weight", DType::kFloat8E4M3FN, Full},
    {A::kFp8Block, "weight_scale_inv", DType::kFloat32, Tiles128},
};

}  // namespace

absl::StatusOr<std::vector<QuantizedTensorSpec>> QuantizedTensorsFor(QuantAlgo algo,
                                                                     int64_t out, int64_t in) {
  if (algo == A::kNone) {
    return InvalidArgument("an unquantized module has no quantized tensors");
  }
  if (out <= 0 || in <= 0) {
    return InvalidArgument(absl::StrCat("bad weight shape [", out, ", ", in, "]"));
  }
  const QuantAlgoInfo& info = GetQuantAlgoInfo(algo);
  if ((algo == A::kNvfp4 || algo == A::kW4A16Nvfp4) && in % info.group_size != 0) {
    return InvalidArgument(absl::StrCat(info.name, " needs an input dim divisible by ",
                                        info.group_size, ", got ", in));
  }
  std::vector<QuantizedTensorSpec> specs;
  for (const TensorRule& r : kTensorRules) {
    if (r.algo == algo) specs.push_back({r.suffix, r.dtype, r.shape(out, in)});
  }
  return specs;
}

std::vector<QuantizedTensorSpec> KvCacheTensorsFor(KvCacheAlgo algo) {
  if (algo == KvCacheAlgo::kNone) return {};
  return {{"k_proj.k_scale", DType::kFloat32, {1}}, {"v_proj.v_scale", DType::kFloat32, {1}}};
}

}  // namespace mxport::exporter
