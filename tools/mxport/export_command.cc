#include "tools/mxport/export_command.h"

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/export/hf_config.h"
#include "common/export/quantize_plan.h"

namespace mxport::cli {

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
                   exporter::CollectSidecars(fs, cp.plan, options.plan.request.hf_config_dir,
                                             exporter::Producer{"mxport", MXPORT_VERSION}));
  RETURN_IF_ERROR(fs.CreateDirs(options.output_dir));
  RETURN_IF_ERROR(exporter::ExecutePlanLocally(fs, cp.plan, options.output_dir, sidecars));
  out << "exported " << cp.plan.tensors.size() << " tensors (" << cp.plan.total_bytes
      << " bytes) in " << cp.plan.files.size() << " files to " << options.output_dir;
  if (exporter::IsQuantized(cp.plan)) out << " (" << options.plan.request.quantization.mode << ")";
  out << "\n";
  return absl::OkStatus();
}

}  // namespace mxport::cli
