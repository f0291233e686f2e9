#include "tools/mxport/job_spec_builder.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/base/status_macros.h"
#include "common/fs/file_system.h"
#include "common/json/json.h"
#include "google/protobuf/util/json_util.h"
#include "tools/mxport/cli_format.h"
#include "tools/mxport/plan_command.h"

namespace mxport::cli {

namespace pb = ::mxport::v1;

absl::Status ParseLabels(const std::vector<std::string>& flags,
                         google::protobuf::Map<std::string, std::string>* labels) {
  for (const std::string& flag : flags) {
    const size_t eq = flag.find('=');
    if (eq == 0 || eq == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("label '", flag, "' is not key=value"));
    }
    (*labels)[flag.substr(0, eq)] = flag.substr(eq + 1);
  }
  return absl::OkStatus();
}

// The YAML subset: "key: value" lines, '#' comments, and indented "name: value" lines under a
// "key:" line (one level, e.g. labels). Scalars become JSON strings, which the proto3 JSON
// parser also takes for numeric fields.
absl::StatusOr<std::string> SimpleYamlToJson(absl::string_view text, const std::string& path) {
  Json root = Json::object();
  std::string block;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    line = line.substr(0, line.find(" #"));
    if (absl::StartsWith(absl::StripLeadingAsciiWhitespace(line), "#") ||
        absl::StripAsciiWhitespace(line).empty()) {
      continue;
    }
    const bool nested = absl::ascii_isspace(line[0]);
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos || (nested && block.empty())) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line_no, ": not 'key: value'"));
    }
    const std::string key(absl::StripAsciiWhitespace(line.substr(0, colon)));
    std::string value(absl::StripAsciiWhitespace(line.substr(colon + 1)));
    if (value.size() >= 2 && (value[0] == '"' || value[0] == '\'') && value.back() == value[0]) {
      value = value.substr(1, value.size() - 2);
    }
    if (!nested) block = value.empty() ? key : "";
    Json& slot = nested ? root[block][key] : root[key];
    slot = !nested && value.empty() ? Json::object() : Json(value);
  }
  return root.dump();
}

absl::StatusOr<pb::JobSpec> BuildSpec(const SubmitOptions& o) {
  pb::JobSpec spec;
  if (!o.spec_file.empty()) {
    ASSIGN_OR_RETURN(std::string text, fs::ReadFileToString(*fs::PosixFileSystem(), o.spec_file));
    if (!absl::StartsWith(absl::StripLeadingAsciiWhitespace(text), "{")) {
      ASSIGN_OR_RETURN(text, SimpleYamlToJson(text, o.spec_file));
    }
    const auto parsed = google::protobuf::util::JsonStringToMessage(text, &spec);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(o.spec_file, ": not a JobSpec: ", std::string(parsed.message())));
    }
  }
  auto set = [](const std::string& value, std::string* field) {
    if (!value.empty()) *field = value;
  };
  set(o.job_id, spec.mutable_job_id());
  set(AbsolutePath(o.source), spec.mutable_source_path());
  set(AbsolutePath(o.output), spec.mutable_output_path());
  set(AbsolutePath(o.hf_config), spec.mutable_hf_config_dir());
  set(o.architecture, spec.mutable_architecture());
  set(o.transport, spec.mutable_transport());
  set(o.quantization, spec.mutable_quantization());
  set(o.output_dtype, spec.mutable_output_dtype());
  if (o.workers > 0) spec.set_workers_expected(o.workers);
  if (o.iteration >= 0) spec.set_iteration(o.iteration);
  if (!o.max_shard_size.empty()) {
    ASSIGN_OR_RETURN(uint64_t size, ParseByteSize(o.max_shard_size));
    spec.set_max_shard_size(size);
  }
  RETURN_IF_ERROR(ParseLabels(o.labels, spec.mutable_labels()));
  if (spec.job_id().empty()) return absl::InvalidArgumentError("no job id (--job-id or --spec)");
  return spec;
}

}  // namespace mxport::cli
