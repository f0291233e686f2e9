// hf_quant_config.json and config.json's quantization_config (BuildQuantConfigs,
// ConvertHfQuantConfig); the schemas are described in quant_config.h.
#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/export/quant_config.h"
#include "common/export/quant_config_internal.h"

namespace mxport::exporter {
namespace {

using A = QuantAlgo;
using quant_config_internal::InvalidArgument;
using quant_config_internal::kFp8Block;
using quant_config_internal::ValidateModules;

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
