#include "common/export/quant_config.h"

#include <algorithm>
#include <array>
#include <map>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/status_macros.h"

namespace mxport::exporter {
namespace {

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

constexpr int kFp8Block = 128;

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

absl::Status InvalidArgument(absl::string_view a, absl::string_view b = "",
                             absl::string_view c = "") {
  return absl::InvalidArgumentError(absl::StrCat("quantization config: ", a, b, c));
}

bool IsNorm(absl::string_view module) { return absl::StrContains(module, "norm"); }

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

// The per-layer config of process_layer_quant_config.
OrderedJson LayerConfig(QuantAlgo algo) {
  const QuantAlgoInfo& info = GetQuantAlgoInfo(algo);
  OrderedJson j;
  j["quant_algo"] = std::string(info.name);
  if (info.group_size > 0) j["group_size"] = info.group_size;
  return j;
}

OrderedJson KvAlgoJson(KvCacheAlgo kv) {
  return kv == KvCacheAlgo::kFp8 ? OrderedJson("FP8") : OrderedJson(nullptr);
}

OrderedJson StringArray(const std::vector<std::string>& names) {
  OrderedJson a = OrderedJson::array();
  for (const std::string& n : names) a.push_back(n);
  return a;
}

// _quant_algo_to_group_config, for the algorithms a per-layer config can name here.
absl::StatusOr<OrderedJson> GroupDetails(absl::string_view algo, int64_t group_size) {
  auto spec = [](int bits, std::optional<int64_t> gs) {
    OrderedJson j;
    j["dynamic"] = false;
    j["num_bits"] = bits;
    j["type"] = "float";
    if (gs.has_value()) j["group_size"] = *gs;
    return j;
  };
  const int64_t gs = group_size > 0 ? group_size : 16;
  OrderedJson g;
  if (algo == "FP8") {
    g["input_activations"] = spec(8, std::nullopt);
    g["weights"] = spec(8, std::nullopt);
  } else if (algo == "NVFP4") {
    g["input_activations"] = spec(4, gs);
    g["weights"] = spec(4, gs);
  } else if (algo == "W4A16_NVFP4") {
    g["weights"] = spec(4, gs);
  } else {
    return InvalidArgument("unsupported quant_algo '", algo, "'");
  }
  return g;
}

OrderedJson BlockFp8Config(const std::vector<std::string>& excluded) {
  OrderedJson j;
  j["quant_method"] = "fp8";
  j["fmt"] = "e4m3";
  j["activation_scheme"] = "dynamic";
  j["weight_block_size"] = {kFp8Block, kFp8Block};
  j["modules_to_not_convert"] = StringArray(excluded);
  j["ignored_layers"] = StringArray(excluded);
  return j;
}

}  // namespace

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

// ---- JSON ----

absl::StatusOr<OrderedJson> ConvertHfQuantConfig(const OrderedJson& hf_quant_config) {
  if (!hf_quant_config.is_object() || !hf_quant_config.contains("quantization") ||
      !hf_quant_config["quantization"].is_object()) {
    return InvalidArgument("hf_quant_config has no \"quantization\" object");
  }
  const OrderedJson& q = hf_quant_config["quantization"];
  std::string algo;
  if (q.contains("quant_algo") && q["quant_algo"].is_string()) {
    algo = q["quant_algo"].get<std::string>();
  }
  OrderedJson out;
  if (algo == "FP8" || algo == "NVFP4" || algo == "W4A16_NVFP4") {
    const int64_t gs =
        q.contains("group_size") && q["group_size"].is_number_integer()
            ? q["group_size"].get<int64_t>()
            : 16;
    ASSIGN_OR_RETURN(OrderedJson group, GroupDetails(algo, gs));
    group["targets"] = StringArray({"Linear"});
    out["config_groups"]["group_0"] = std::move(group);
  } else if (algo == "MIXED_PRECISION") {
    if (!q.contains("quantized_layers") || !q["quantized_layers"].is_object()) {
      return InvalidArgument("MIXED_PRECISION without a \"quantized_layers\" object");
    }
    const OrderedJson& layers = q["quantized_layers"];
    // Groups in order of first appearance, keyed by the config's sorted items (as ModelOpt).
    std::vector<std::pair<std::string, std::vector<std::string>>> groups;
    std::map<std::string, size_t> index;
    std::vector<const OrderedJson*> configs;
    for (auto it = layers.begin(); it != layers.end(); ++it) {
      if (!it.value().is_object()) return InvalidArgument("quantized layer config not an object");
      std::map<std::string, std::string> items;
      for (auto kv = it.value().begin(); kv != it.value().end(); ++kv) {
        items[kv.key()] =
            kv.value().dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
      }
      std::string key;
      for (const auto& [k, v] : items) absl::StrAppend(&key, k, "=", v, ";");
      auto [pos, inserted] = index.emplace(key, groups.size());
      if (inserted) {
        groups.push_back({key, {}});
        configs.push_back(&it.value());
      }
      groups[pos->second].second.push_back(it.key());
    }
    OrderedJson config_groups = OrderedJson::object();
    for (size_t g = 0; g < groups.size(); ++g) {
      const OrderedJson& cfg = *configs[g];
      if (!cfg.contains("quant_algo") || !cfg["quant_algo"].is_string()) {
        return InvalidArgument("quantized layer without a string quant_algo");
      }
      const int64_t gs = cfg.contains("group_size") && cfg["group_size"].is_number_integer()
                             ? cfg["group_size"].get<int64_t>()
                             : 0;
      ASSIGN_OR_RETURN(OrderedJson group,
                       GroupDetails(cfg["quant_algo"].get<std::string>(), gs));
      std::vector<std::string> targets = groups[g].second;
      std::sort(targets.begin(), targets.end());
      group["targets"] = StringArray(targets);
      config_groups[absl::StrCat("group_", g)] = std::move(group);
    }
    out["config_groups"] = std::move(config_groups);
    out["quantized_layers"] = layers;
  } else if (!algo.empty()) {
    return InvalidArgument("unsupported quant_algo '", algo, "'");
  }
  out["ignore"] = q.contains("exclude_modules") && !q["exclude_modules"].is_null()
                      ? q["exclude_modules"]
                      : OrderedJson::array();
  if (!algo.empty()) out["quant_algo"] = algo;
  if (q.contains("kv_cache_quant_algo") && q["kv_cache_quant_algo"].is_string()) {
    const std::string kv = q["kv_cache_quant_algo"].get<std::string>();
    if (kv == "FP8") {
      OrderedJson scheme;
      scheme["dynamic"] = false;
      scheme["num_bits"] = 8;
      scheme["type"] = "float";
      out["kv_cache_scheme"] = std::move(scheme);
    } else if (!kv.empty()) {
      out["kv_cache_scheme"] = kv;
    }
  }
  if (hf_quant_config.contains("producer") && !hf_quant_config["producer"].is_null()) {
    out["producer"] = hf_quant_config["producer"];
  }
  out["quant_method"] = "modelopt";
  return out;
}

absl::StatusOr<QuantConfigs> BuildQuantConfigs(const QuantConfigInput& input) {
  RETURN_IF_ERROR(ValidateModules(input.modules));
  std::set<QuantAlgo> algos;
  for (const ModuleQuant& m : input.modules) {
    if (m.algo != A::kNone) algos.insert(m.algo);
  }
  const std::vector<std::string> excluded = ExcludedModules(input.modules);
  QuantConfigs out;
  if (algos.empty()) {
    if (input.kv_cache != KvCacheAlgo::kNone) {
      return InvalidArgument("an FP8 KV cache needs at least one quantized linear module");
    }
    return out;
  }
  if (algos.count(A::kFp8Block) > 0) {
    if (algos.size() > 1) {
      return InvalidArgument("block FP8 cannot be mixed with ModelOpt formats");
    }
    if (input.kv_cache != KvCacheAlgo::kNone) {
      return InvalidArgument("the block-FP8 config cannot declare an FP8 KV cache");
    }
    out.quantization_config = BlockFp8Config(excluded);
    return out;
  }

  OrderedJson q;
  if (algos.size() == 1) {
    const QuantAlgoInfo& info = GetQuantAlgoInfo(*algos.begin());
    q["quant_algo"] = std::string(info.name);
    q["kv_cache_quant_algo"] = KvAlgoJson(input.kv_cache);
    if (info.group_size > 0) q["group_size"] = info.group_size;
  } else {
    q["quant_algo"] = "MIXED_PRECISION";
    q["kv_cache_quant_algo"] = KvAlgoJson(input.kv_cache);
    std::vector<const ModuleQuant*> quantized;
    for (const ModuleQuant& m : input.modules) {
      if (m.algo != A::kNone) quantized.push_back(&m);
    }
    std::sort(quantized.begin(), quantized.end(),
              [](const ModuleQuant* a, const ModuleQuant* b) { return a->name < b->name; });
    OrderedJson layers = OrderedJson::object();
    for (const ModuleQuant* m : quantized) layers[m->name] = LayerConfig(m->algo);
    q["quantized_layers"] = std::move(layers);
  }
  q["exclude_modules"] = StringArray(excluded);

  OrderedJson file;
  file["producer"]["name"] = input.producer.name;
  file["producer"]["version"] = input.producer.version;
  file["quantization"] = std::move(q);
  ASSIGN_OR_RETURN(OrderedJson converted, ConvertHfQuantConfig(file));
  out.quantization_config = std::move(converted);
  out.hf_quant_config = std::move(file);
  return out;
}

}  // namespace mxport::exporter
