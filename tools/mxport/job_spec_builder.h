// The job spec `mxport submit` sends: a JSON file (or the simple YAML subset: flat keys,
// scalars, one-level lists) overlaid with the command's flags, every path made absolute, and
// "key=value" labels. Errors are InvalidArgument naming the file, key or flag. Stateless.
#ifndef MXPORT_TOOLS_MXPORT_JOB_SPEC_BUILDER_H_
#define MXPORT_TOOLS_MXPORT_JOB_SPEC_BUILDER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "mxport/v1/export.pb.h"
#include "tools/mxport/client_commands.h"

namespace mxport::cli {

absl::StatusOr<v1::JobSpec> BuildSpec(const SubmitOptions& options);

// Adds "key=value" flags to `labels`.
absl::Status ParseLabels(const std::vector<std::string>& flags,
                         google::protobuf::Map<std::string, std::string>* labels);

// The YAML subset job files may use, as JSON text.
absl::StatusOr<std::string> SimpleYamlToJson(absl::string_view text, const std::string& path);

}  // namespace mxport::cli

#endif  // MXPORT_TOOLS_MXPORT_JOB_SPEC_BUILDER_H_
