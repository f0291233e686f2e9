// The quantization sidecars of an export (quantize_plan.h QuantSidecars, CollectSidecars):
// config.json's quantization_config and hf_quant_config.json from the plan's modules.
#include <algorithm>
#include <string>
#include <vector>

#include "common/base/status_macros.h"
#include "common/export/hf_config.h"
#include "common/export/quantize_modules.h"
#include "common/export/quantize_plan.h"

namespace mxport::exporter {

using quant_internal::ModuleOf;

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
