// `mxport inspect FILE [--json]`: lists what a checkpoint file holds without loading tensor
// bytes. Detects the format from the file's first bytes: a torch.save zip archive or a
// safetensors file. Prints each tensor (name, dtype, shape, bytes) and, for torch.save files,
// the non-tensor entries worth knowing (iteration, checkpoint_version, the saved args and
// other top-level scalars). Errors name the file; nothing is written.
#ifndef MXPORT_TOOLS_MXPORT_INSPECT_COMMAND_H_
#define MXPORT_TOOLS_MXPORT_INSPECT_COMMAND_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "common/fs/file_system.h"
#include "common/json/json.h"

namespace mxport::cli {

struct InspectOptions {
  std::string path;
  bool json = false;
  fs::FileSystem* fs = nullptr;  // defaults to the POSIX file system
};

// The report as JSON: {"file", "format", "tensors": [{"name","dtype","shape","bytes"}],
// "total_bytes", "metadata" (safetensors) or "entries" (torch: path -> short repr)}.
absl::StatusOr<OrderedJson> InspectFile(const InspectOptions& options);

// Runs the command, writing text or JSON to `out`.
absl::Status RunInspect(const InspectOptions& options, std::ostream& out);

}  // namespace mxport::cli

#endif  // MXPORT_TOOLS_MXPORT_INSPECT_COMMAND_H_
