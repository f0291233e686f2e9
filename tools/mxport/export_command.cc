#include "tools/mxport/export_command.h"

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/export/hf_config.h"
#include "common/export/quantize_plan.h"

namespace mxport::cli {

absl::StatusOr<std::vector<exporter::Sidecar>> CollectSidecars(
    fs::FileSystem& fs, const exporter::CheckpointPlan& cp, const std::string& hf_config_dir) {
  std::vector<exporter::Sidecar> sidecars;
  bool have_config = false;
  if (!hf_config_dir.empty()) {
    ASSIGN_OR_RETURN(std::vector<std::string> names, exporter::SidecarFiles(fs, hf_config_dir));
    for (const std::string& name : names) {
      ASSIGN_OR_RETURN(std::string bytes,
                       fs::ReadFileToString(fs, fs::JoinPath(hf_config_dir, name)));
      have_config |= name == "config.json";
      sidecars.push_back({name, std::move(bytes)});
    }
  }
  if (!have_config) {
    const exporter::ExportPlan& plan = cp.plan;
    const int64_t vocab = plan.tensors.front().shape[0];  // the embedding comes first
    sidecars.push_back({"config.json",
                        exporter::GenerateHfConfig(plan.config, *plan.arch, vocab).dump(2) + "\n"});
  }
  // config.json's quantization_config and hf_quant_config.json describe the plan's tensors.
  for (exporter::Sidecar& sidecar : sidecars) {
    if (sidecar.name != "config.json") continue;
    ASSIGN_OR_RETURN(exporter::QuantSidecarFiles quant,
                     exporter::QuantSidecars(cp.plan, sidecar.bytes,
                                             exporter::Producer{"mxport", MXPORT_VERSION}));
    sidecar.bytes = std::move(quant.config_json);
    if (quant.hf_quant_config_json.has_value()) {
      sidecars.push_back({"hf_quant_config.json", std::move(*quant.hf_quant_config_json)});
    }
    break;
  }
  return sidecars;
}

absl::Status RunExport(ExportCommandOptions options, std::ostream& out) {
  fs::FileSystem& fs = *fs::PosixFileSystem();
  RETURN_IF_ERROR(ResolvePlanFlags(fs, options.plan));
  if (options.output_dir.empty()) return absl::InvalidArgumentError("--output is required");
  const std::string index = fs::JoinPath(options.output_dir, "model.safetensors.index.json");
  if (fs.Exists(index).ok() && !options.overwrite) {
    return absl::AlreadyExistsError(absl::StrCat(
        options.output_dir, " already holds an export (", index, "); pass --overwrite"));
  }
  ASSIGN_OR_RETURN(exporter::CheckpointPlan cp,
                   exporter::PlanCheckpoint(fs, options.plan.request));
  ASSIGN_OR_RETURN(std::vector<exporter::Sidecar> sidecars,
                   CollectSidecars(fs, cp, options.plan.request.hf_config_dir));
  RETURN_IF_ERROR(fs.CreateDirs(options.output_dir));
  RETURN_IF_ERROR(exporter::ExecutePlanLocally(fs, cp.plan, options.output_dir, sidecars));
  out << "exported " << cp.plan.tensors.size() << " tensors (" << cp.plan.total_bytes
      << " bytes) in " << cp.plan.files.size() << " files to " << options.output_dir;
  if (exporter::IsQuantized(cp.plan)) out << " (" << options.plan.request.quantization.mode << ")";
  out << "\n";
  return absl::OkStatus();
}

}  // namespace mxport::cli
