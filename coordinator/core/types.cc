#include "coordinator/core/types.h"

#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/status_macros.h"

namespace mxport::coordinator {
namespace {

struct PhaseInfo {
  JobPhase phase;
  absl::string_view name;
  bool terminal;
};

constexpr std::array<PhaseInfo, 8> kPhases = {{
    {JobPhase::kPending, "PENDING", false},
    {JobPhase::kScanning, "SCANNING", false},
    {JobPhase::kPlanned, "PLANNED", false},
    {JobPhase::kTransferring, "TRANSFERRING", false},
    {JobPhase::kFinalizing, "FINALIZING", false},
    {JobPhase::kSucceeded, "SUCCEEDED", true},
    {JobPhase::kFailed, "FAILED", true},
    {JobPhase::kCancelled, "CANCELLED", true},
}};

const PhaseInfo* FindPhase(JobPhase phase) {
  for (const PhaseInfo& info : kPhases) {
    if (info.phase == phase) return &info;
  }
  return nullptr;
}

constexpr std::array<absl::string_view, 3> kTransports = {"auto", "nccl", "tcp"};
// The modes of common/export/quantize_plan.h, in QuantModes() order.
constexpr std::array<absl::string_view, 6> kQuantizations = {
    "none", "nvfp4", "fp8", "fp8_block", "checkpoint", "checkpoint_fp8"};
constexpr size_t kMaxJobIdLength = 128;

template <size_t N>
bool OneOf(const std::string& value, const std::array<absl::string_view, N>& allowed) {
  for (absl::string_view a : allowed) {
    if (value == a) return true;
  }
  return false;
}

// Shows a user-supplied value in an error message, bounded in length.
std::string Quote(absl::string_view value) {
  constexpr size_t kMax = 160;
  if (value.size() <= kMax) return absl::StrCat("'", value, "'");
  return absl::StrCat("'", value.substr(0, kMax), "...' (", value.size(), " bytes)");
}

absl::Status WrongType(absl::string_view context, absl::string_view key,
                       absl::string_view want) {
  return absl::InvalidArgumentError(absl::StrCat(context, ": field '", key, "' must be ", want));
}

absl::Status CheckObject(const Json& json, absl::string_view context) {
  if (!json.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(context, ": expected a JSON object"));
  }
  return absl::OkStatus();
}

// The Get* helpers read an optional field: absent (or null) leaves `*out` unchanged; a value of
// the wrong type is InvalidArgument naming the field.
const Json* Find(const Json& object, absl::string_view key) {
  auto it = object.find(std::string(key));
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

absl::Status GetString(const Json& object, absl::string_view key, absl::string_view context,
                       std::string* out) {
  const Json* field = Find(object, key);
  if (field == nullptr) return absl::OkStatus();
  if (!field->is_string()) return WrongType(context, key, "a string");
  *out = field->get<std::string>();
  return absl::OkStatus();
}

absl::Status ToInt64(const Json& value, absl::string_view key, absl::string_view context,
                     int64_t* out) {
  if (value.is_number_unsigned()) {
    const uint64_t u = value.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return WrongType(context, key, "a 64-bit signed integer");
    }
    *out = static_cast<int64_t>(u);
    return absl::OkStatus();
  }
  if (!value.is_number_integer()) return WrongType(context, key, "an integer");
  *out = value.get<int64_t>();
  return absl::OkStatus();
}

absl::Status GetInt64(const Json& object, absl::string_view key, absl::string_view context,
                      int64_t* out) {
  const Json* field = Find(object, key);
  if (field == nullptr) return absl::OkStatus();
  return ToInt64(*field, key, context, out);
}

absl::Status GetUint64(const Json& object, absl::string_view key, absl::string_view context,
                       uint64_t* out) {
  const Json* field = Find(object, key);
  if (field == nullptr) return absl::OkStatus();
  if (field->is_number_unsigned()) {
    *out = field->get<uint64_t>();
    return absl::OkStatus();
  }
  if (!field->is_number_integer() || field->get<int64_t>() < 0) {
    return WrongType(context, key, "a non-negative integer");
  }
  *out = static_cast<uint64_t>(field->get<int64_t>());
  return absl::OkStatus();
}

absl::Status GetTime(const Json& object, absl::string_view key, absl::string_view context,
                     absl::Time* out) {
  const Json* field = Find(object, key);
  if (field == nullptr) return absl::OkStatus();
  if (!field->is_string()) return WrongType(context, key, "an RFC 3339 time string");
  ASSIGN_OR_RETURN(*out, ParseTimeRfc3339(field->get<std::string>(),
                                          absl::StrCat(context, ": field '", key, "'")));
  return absl::OkStatus();
}

absl::Status GetExpertMap(const Json& object, absl::string_view context,
                          std::vector<std::vector<int64_t>>* out) {
  constexpr absl::string_view kKey = "expert_map";
  const Json* field = Find(object, kKey);
  if (field == nullptr) return absl::OkStatus();
  constexpr absl::string_view kWant = "a list of lists of integers";
  if (!field->is_array()) return WrongType(context, kKey, kWant);
  std::vector<std::vector<int64_t>> map;
  map.reserve(field->size());
  for (const Json& row : *field) {
    if (!row.is_array()) return WrongType(context, kKey, kWant);
    std::vector<int64_t>& ids = map.emplace_back();
    ids.reserve(row.size());
    for (const Json& id : row) {
      if (!id.is_number_integer()) return WrongType(context, kKey, kWant);
      RETURN_IF_ERROR(ToInt64(id, kKey, context, &ids.emplace_back()));
    }
  }
  *out = std::move(map);
  return absl::OkStatus();
}

absl::Status GetLabels(const Json& object, absl::string_view context,
                       std::map<std::string, std::string>* out) {
  constexpr absl::string_view kKey = "labels";
  const Json* field = Find(object, kKey);
  if (field == nullptr) return absl::OkStatus();
  constexpr absl::string_view kWant = "an object of strings";
  if (!field->is_object()) return WrongType(context, kKey, kWant);
  std::map<std::string, std::string> labels;
  for (const auto& [key, value] : field->items()) {
    if (!value.is_string()) return WrongType(context, kKey, kWant);
    labels[key] = value.get<std::string>();
  }
  *out = std::move(labels);
  return absl::OkStatus();
}

}  // namespace

absl::string_view JobPhaseName(JobPhase phase) {
  const PhaseInfo* info = FindPhase(phase);
  return info == nullptr ? absl::string_view("UNKNOWN") : info->name;
}

absl::StatusOr<JobPhase> JobPhaseFromName(absl::string_view name) {
  for (const PhaseInfo& info : kPhases) {
    if (info.name == name) return info.phase;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown job phase ", Quote(name)));
}

bool IsTerminal(JobPhase phase) {
  const PhaseInfo* info = FindPhase(phase);
  return info != nullptr && info->terminal;
}

std::string FormatTimeRfc3339(absl::Time time) {
  // RFC3339_full with a literal "Z": Abseil writes UTC as "+00:00".
  return absl::FormatTime("%Y-%m-%d%ET%H:%M:%E*SZ", time, absl::UTCTimeZone());
}

absl::StatusOr<absl::Time> ParseTimeRfc3339(absl::string_view text, absl::string_view context) {
  absl::Time time;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, text, &time, &error)) {
    return absl::InvalidArgumentError(
        absl::StrCat(context, ": not an RFC 3339 time: ", Quote(text), ": ", error));
  }
  return time;
}

OrderedJson JobSpecToJson(const JobSpec& spec) {
  OrderedJson json = OrderedJson::object();
  json["job_id"] = spec.job_id;
  json["source_path"] = spec.source_path;
  json["source_format"] = spec.source_format;
  if (spec.iteration.has_value()) json["iteration"] = *spec.iteration;
  json["architecture"] = spec.architecture;
  json["hf_config_dir"] = spec.hf_config_dir;
  json["expert_map"] = spec.expert_map;
  json["output_path"] = spec.output_path;
  json["max_shard_size"] = spec.max_shard_size;
  json["output_dtype"] = spec.output_dtype;
  json["quantization"] = spec.quantization;
  json["workers_expected"] = spec.workers_expected;
  json["transport"] = spec.transport;
  json["labels"] = OrderedJson::object();
  for (const auto& [key, value] : spec.labels) json["labels"][key] = value;
  return json;
}

absl::StatusOr<JobSpec> JobSpecFromJson(const Json& json, absl::string_view context) {
  RETURN_IF_ERROR(CheckObject(json, context));
  JobSpec spec;
  RETURN_IF_ERROR(GetString(json, "job_id", context, &spec.job_id));
  RETURN_IF_ERROR(GetString(json, "source_path", context, &spec.source_path));
  RETURN_IF_ERROR(GetString(json, "source_format", context, &spec.source_format));
  if (Find(json, "iteration") != nullptr) {
    int64_t iteration = 0;
    RETURN_IF_ERROR(GetInt64(json, "iteration", context, &iteration));
    spec.iteration = iteration;
  }
  RETURN_IF_ERROR(GetString(json, "architecture", context, &spec.architecture));
  RETURN_IF_ERROR(GetString(json, "hf_config_dir", context, &spec.hf_config_dir));
  RETURN_IF_ERROR(GetExpertMap(json, context, &spec.expert_map));
  RETURN_IF_ERROR(GetString(json, "output_path", context, &spec.output_path));
  RETURN_IF_ERROR(GetUint64(json, "max_shard_size", context, &spec.max_shard_size));
  RETURN_IF_ERROR(GetString(json, "output_dtype", context, &spec.output_dtype));
  RETURN_IF_ERROR(GetString(json, "quantization", context, &spec.quantization));
  RETURN_IF_ERROR(GetInt64(json, "workers_expected", context, &spec.workers_expected));
  RETURN_IF_ERROR(GetString(json, "transport", context, &spec.transport));
  RETURN_IF_ERROR(GetLabels(json, context, &spec.labels));
  return spec;
}

absl::Status ValidateJobSpec(const JobSpec& spec) {
  auto invalid = [](absl::string_view field, absl::string_view problem) {
    return absl::InvalidArgumentError(absl::StrCat("job spec: ", field, " ", problem));
  };
  bool id_ok = !spec.job_id.empty() && spec.job_id.size() <= kMaxJobIdLength;
  for (char c : spec.job_id) {
    const bool allowed = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                         (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!allowed) id_ok = false;
  }
  if (!id_ok) {
    return invalid("job_id", absl::StrCat("must be 1 to ", kMaxJobIdLength,
                                          " characters of [A-Za-z0-9._-], got ",
                                          Quote(spec.job_id)));
  }
  if (spec.source_path.empty()) return invalid("source_path", "must not be empty");
  if (spec.source_format != "torch") {
    return invalid("source_format",
                   absl::StrCat("must be 'torch', got ", Quote(spec.source_format)));
  }
  if (spec.output_path.empty()) return invalid("output_path", "must not be empty");
  if (spec.workers_expected < 1) {
    return invalid("workers_expected",
                   absl::StrCat("must be at least 1, got ", spec.workers_expected));
  }
  if (spec.max_shard_size == 0) return invalid("max_shard_size", "must be greater than 0");
  if (!OneOf(spec.transport, kTransports)) {
    return invalid("transport", absl::StrCat("must be one of ", absl::StrJoin(kTransports, ", "),
                                             "; got ", Quote(spec.transport)));
  }
  if (!OneOf(spec.quantization, kQuantizations)) {
    return invalid("quantization",
                   absl::StrCat("must be one of ", absl::StrJoin(kQuantizations, ", "), "; got ",
                                Quote(spec.quantization)));
  }
  return absl::OkStatus();
}

OrderedJson JobRecordToJson(const JobRecord& job) {
  OrderedJson json = OrderedJson::object();
  json["spec"] = JobSpecToJson(job.spec);
  json["phase"] = std::string(JobPhaseName(job.phase));
  json["generation"] = job.generation;
  json["restarts"] = job.restarts;
  json["created_at"] = FormatTimeRfc3339(job.created_at);
  json["updated_at"] = FormatTimeRfc3339(job.updated_at);
  json["message"] = job.message;
  json["bytes_total"] = job.bytes_total;
  json["bytes_done"] = job.bytes_done;
  json["files_total"] = job.files_total;
  json["files_committed"] = job.files_committed;
  return json;
}

absl::StatusOr<JobRecord> JobRecordFromJson(const Json& json, absl::string_view context) {
  RETURN_IF_ERROR(CheckObject(json, context));
  JobRecord job;
  const Json* spec = Find(json, "spec");
  if (spec == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(context, ": missing field 'spec'"));
  }
  ASSIGN_OR_RETURN(job.spec, JobSpecFromJson(*spec, absl::StrCat(context, ".spec")));
  std::string phase(JobPhaseName(job.phase));
  RETURN_IF_ERROR(GetString(json, "phase", context, &phase));
  auto parsed_phase = JobPhaseFromName(phase);
  if (!parsed_phase.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(context, ": field 'phase': ", parsed_phase.status().message()));
  }
  job.phase = *parsed_phase;
  RETURN_IF_ERROR(GetInt64(json, "generation", context, &job.generation));
  RETURN_IF_ERROR(GetInt64(json, "restarts", context, &job.restarts));
  RETURN_IF_ERROR(GetTime(json, "created_at", context, &job.created_at));
  RETURN_IF_ERROR(GetTime(json, "updated_at", context, &job.updated_at));
  RETURN_IF_ERROR(GetString(json, "message", context, &job.message));
  RETURN_IF_ERROR(GetUint64(json, "bytes_total", context, &job.bytes_total));
  RETURN_IF_ERROR(GetUint64(json, "bytes_done", context, &job.bytes_done));
  RETURN_IF_ERROR(GetInt64(json, "files_total", context, &job.files_total));
  RETURN_IF_ERROR(GetInt64(json, "files_committed", context, &job.files_committed));
  return job;
}

}  // namespace mxport::coordinator
