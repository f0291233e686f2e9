// `mxport plan --source DIR [--hf-config DIR] [--arch NAME] [--iteration N]
//  [--max-shard-size SIZE] [--expert-map FILE] [--json]`: the dry run. Reads only the pickles
// of the rank files and prints the model, the layout found, the HF tensors and bytes, the
// output files, and every problem that would stop an export (then fails). Writes nothing.
#ifndef MXPORT_TOOLS_MXPORT_PLAN_COMMAND_H_
#define MXPORT_TOOLS_MXPORT_PLAN_COMMAND_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/export/checkpoint_planner.h"

namespace mxport::cli {

struct PlanCommandOptions {
  exporter::CheckpointPlanRequest request;
  std::string max_shard_size;   // "5GB", "500MiB", "1000" (bytes); empty: default
  std::string expert_map_file;  // JSON [[global ids of EP rank 0], [rank 1], ...]
  bool json = false;
};

// "5GB" -> 5e9, "5GiB" -> 5 * 2^30, "123" -> 123. InvalidArgument otherwise.
absl::StatusOr<uint64_t> ParseByteSize(absl::string_view text);

// Fills request.options from the size and expert-map flags.
absl::Status ResolvePlanFlags(fs::FileSystem& fs, PlanCommandOptions& options);

absl::Status RunPlan(PlanCommandOptions options, std::ostream& out);

}  // namespace mxport::cli

#endif  // MXPORT_TOOLS_MXPORT_PLAN_COMMAND_H_
