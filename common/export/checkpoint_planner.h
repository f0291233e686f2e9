// From a checkpoint directory to an ExportPlan in one call: discovers the rank files, reads the
// args, resolves ranks, picks the architecture (explicit, or config.json's `architectures[0]`
// from the HF config dir), checks the HF config's structural fields against the args, scans
// every rank file's pickle (no tensor bytes), builds the plan and applies the requested
// quantization (quantize_plan.h). What `mxport plan` and local exports run; the coordinator
// runs the same steps with manifests reported by workers.
//
// Errors: NotFound (no checkpoint there), InvalidArgument (bad args, unknown architecture,
// an HF config field that contradicts the args: the message names the field and both values),
// FailedPrecondition (the plan's validation; names every missing or duplicated key), and
// ApplyQuantization's errors.
#ifndef MXPORT_COMMON_EXPORT_CHECKPOINT_PLANNER_H_
#define MXPORT_COMMON_EXPORT_CHECKPOINT_PLANNER_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/export/plan.h"
#include "common/export/quantize_plan.h"
#include "common/fs/file_system.h"
#include "common/json/json.h"
#include "common/megatron/source.h"

namespace mxport::exporter {

struct CheckpointPlanRequest {
  std::string source_dir;
  std::optional<int64_t> iteration;
  std::string architecture;   // empty: from hf_config_dir
  std::string hf_config_dir;  // empty: none
  PlanOptions options;
  QuantRequest quantization;  // its max_shard_size is taken from `options`
};

struct CheckpointPlan {
  megatron::LegacyCheckpoint checkpoint;
  std::optional<Json> hf_config;  // the HF config.json, when given
  ExportPlan plan;
};

absl::StatusOr<CheckpointPlan> PlanCheckpoint(fs::FileSystem& fs,
                                              const CheckpointPlanRequest& request);

// InvalidArgument naming each structural field of `hf_config` that contradicts `config`.
absl::Status CheckHfConfig(const Json& hf_config, const megatron::ModelConfig& config,
                           absl::string_view context);

}  // namespace mxport::exporter

#endif  // MXPORT_COMMON_EXPORT_CHECKPOINT_PLANNER_H_
