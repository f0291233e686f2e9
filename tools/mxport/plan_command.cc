#include "tools/mxport/plan_command.h"

#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/status_macros.h"
#include "common/json/json.h"

namespace mxport::cli {
namespace {

struct Unit {
  const char* suffix;
  uint64_t factor;
};
constexpr Unit kUnits[] = {{"KIB", 1ull << 10}, {"MIB", 1ull << 20}, {"GIB", 1ull << 30},
                           {"TIB", 1ull << 40}, {"KB", 1000ull},     {"MB", 1000000ull},
                           {"GB", 1000000000ull}, {"TB", 1000000000000ull}, {"B", 1}};

std::string HumanBytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? absl::StrCat(bytes, " B") : absl::StrFormat("%.2f %s", v, units[u]);
}

void PrintSummary(const exporter::CheckpointPlan& cp, std::ostream& out) {
  const exporter::ExportPlan& plan = cp.plan;
  const megatron::ModelConfig& c = plan.config;
  out << "model:   " << plan.arch->architecture << ", " << c.num_layers << " layers, hidden "
      << c.hidden_size << ", " << c.num_attention_heads << " heads / " << c.num_query_groups
      << " query groups, head dim " << c.kv_channels;
  if (c.is_moe()) {
    out << ", " << c.num_experts << " experts (top-" << c.moe_router_topk << ", ffn "
        << c.moe_ffn_hidden_size << ", " << (c.moe_grouped_gemm ? "grouped" : "sequential")
        << ")";
  }
  out << ", vocab " << c.vocab_size << " (padded " << c.padded_vocab_size << "), "
      << (c.untied_embeddings ? "untied" : "tied") << " embeddings\n";
  out << "layout:  TP=" << c.tp << " PP=" << c.pp << " EP=" << c.ep << " ETP=" << c.etp
      << " VPP=" << c.vpp << ", " << cp.checkpoint.files.size() << " rank files in "
      << cp.checkpoint.iteration_dir << "\n";
  out << "export:  " << plan.tensors.size() << " tensors, " << HumanBytes(plan.total_bytes)
      << " (" << plan.total_bytes << " bytes), " << plan.pieces.size() << " pieces, "
      << plan.files.size() << " files\n";
  for (const exporter::OutputFile& f : plan.files) {
    out << "  " << f.name << "  " << f.tensors.size() << " tensors  "
        << HumanBytes(f.data_bytes) << "\n";
  }
  out << "  model.safetensors.index.json\n";
}

}  // namespace

absl::StatusOr<uint64_t> ParseByteSize(absl::string_view text) {
  std::string s = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(text));
  uint64_t factor = 1;
  for (const Unit& u : kUnits) {
    if (s.size() > strlen(u.suffix) && absl::EndsWith(s, u.suffix)) {
      factor = u.factor;
      s.resize(s.size() - strlen(u.suffix));
      break;
    }
  }
  uint64_t n = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(s), &n) || n == 0 ||
      n > UINT64_MAX / factor) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad size '", text, "': expected a positive number with an optional unit (GB, GiB, MB...)"));
  }
  return n * factor;
}

absl::Status ResolvePlanFlags(fs::FileSystem& fs, PlanCommandOptions& options) {
  if (!options.max_shard_size.empty()) {
    ASSIGN_OR_RETURN(options.request.options.max_shard_size,
                     ParseByteSize(options.max_shard_size));
  }
  if (!options.expert_map_file.empty()) {
    ASSIGN_OR_RETURN(std::string text, fs::ReadFileToString(fs, options.expert_map_file));
    ASSIGN_OR_RETURN(Json j, ParseJson(text, options.expert_map_file));
    if (!j.is_array()) {
      return absl::InvalidArgumentError(absl::StrCat(
          options.expert_map_file, ": expected a list of per-EP-rank lists of global ids"));
    }
    for (const Json& rank : j) {
      std::vector<int64_t> ids;
      if (!rank.is_array()) {
        return absl::InvalidArgumentError(
            absl::StrCat(options.expert_map_file, ": each EP rank needs a list of ids"));
      }
      for (const Json& id : rank) {
        if (!id.is_number_integer()) {
          return absl::InvalidArgumentError(
              absl::StrCat(options.expert_map_file, ": expert ids must be integers"));
        }
        ids.push_back(id.get<int64_t>());
      }
      options.request.options.expert_map.push_back(std::move(ids));
    }
  }
  return absl::OkStatus();
}

absl::Status RunPlan(PlanCommandOptions options, std::ostream& out) {
  fs::FileSystem& fs = *fs::PosixFileSystem();
  RETURN_IF_ERROR(ResolvePlanFlags(fs, options));
  ASSIGN_OR_RETURN(exporter::CheckpointPlan cp, exporter::PlanCheckpoint(fs, options.request));
  if (options.json) {
    out << cp.plan.ToJson().dump(1) << "\n";
  } else {
    PrintSummary(cp, out);
  }
  return absl::OkStatus();
}

}  // namespace mxport::cli
