// `mxport export --source DIR --output DIR [plan flags] [--quantization MODE
//  [--quant-exclude PATTERN...]] [--overwrite]`: a single-process export on this machine: plans
// (as `mxport plan`), writes every shard at its final offset, publishes each by atomic rename,
// then config.json (from --hf-config, else generated from the args; with quantization_config
// when quantized), hf_quant_config.json (NVFP4) and the other HF sidecars, then
// model.safetensors.index.json last. Refuses an output directory that already holds an export
// unless --overwrite.
#ifndef MXPORT_TOOLS_MXPORT_EXPORT_COMMAND_H_
#define MXPORT_TOOLS_MXPORT_EXPORT_COMMAND_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "common/export/local_executor.h"
#include "tools/mxport/plan_command.h"

namespace mxport::cli {

struct ExportCommandOptions {
  PlanCommandOptions plan;
  std::string output_dir;
  bool overwrite = false;
};

// The sidecars of an export: config.json (with the plan's quantization_config),
// hf_quant_config.json for ModelOpt formats, and the files of the HF config dir, if any.
absl::StatusOr<std::vector<exporter::Sidecar>> CollectSidecars(
    fs::FileSystem& fs, const exporter::CheckpointPlan& cp, const std::string& hf_config_dir);

absl::Status RunExport(ExportCommandOptions options, std::ostream& out);

}  // namespace mxport::cli

#endif  // MXPORT_TOOLS_MXPORT_EXPORT_COMMAND_H_
