#include "common/export/checkpoint_planner.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/status_macros.h"

namespace mxport::exporter {
namespace {

struct StructuralField {
  const char* hf_name;
  int64_t (*from_args)(const megatron::ModelConfig&);
  bool moe_only;
};

// HF config fields that must agree with the Megatron args.
const StructuralField kStructuralFields[] = {
    {"hidden_size", [](const megatron::ModelConfig& c) { return c.hidden_size; }, false},
    {"num_hidden_layers", [](const megatron::ModelConfig& c) { return c.num_layers; }, false},
    {"num_attention_heads", [](const megatron::ModelConfig& c) { return c.num_attention_heads; },
     false},
    {"num_key_value_heads", [](const megatron::ModelConfig& c) { return c.num_query_groups; },
     false},
    {"head_dim", [](const megatron::ModelConfig& c) { return c.kv_channels; }, false},
    {"num_experts", [](const megatron::ModelConfig& c) { return c.num_experts; }, true},
    {"num_local_experts", [](const megatron::ModelConfig& c) { return c.num_experts; }, true},
    {"moe_intermediate_size",
     [](const megatron::ModelConfig& c) { return c.moe_ffn_hidden_size; }, true},
    {"num_experts_per_tok", [](const megatron::ModelConfig& c) { return c.moe_router_topk; },
     true},
    {"shared_expert_intermediate_size",
     [](const megatron::ModelConfig& c) { return c.shared_expert_ffn_size; }, true},
};

}  // namespace

absl::Status CheckHfConfig(const Json& hf, const megatron::ModelConfig& c,
                           absl::string_view context) {
  std::vector<std::string> mismatches;
  for (const StructuralField& f : kStructuralFields) {
    if (f.moe_only && !c.is_moe()) continue;
    auto it = hf.find(f.hf_name);
    if (it == hf.end() || !it->is_number_integer()) continue;
    const int64_t want = f.from_args(c);
    if (it->get<int64_t>() != want) {
      mismatches.push_back(absl::StrCat(f.hf_name, " is ", it->get<int64_t>(),
                                        " but the checkpoint args give ", want));
    }
  }
  // Mixtral-style configs name the expert MLP size intermediate_size.
  if (!c.is_moe() || (hf.contains("num_local_experts") && !hf.contains("moe_intermediate_size"))) {
    auto it = hf.find("intermediate_size");
    const int64_t want = c.is_moe() ? c.moe_ffn_hidden_size : c.ffn_hidden_size;
    if (it != hf.end() && it->is_number_integer() && it->get<int64_t>() != want) {
      mismatches.push_back(absl::StrCat("intermediate_size is ", it->get<int64_t>(),
                                        " but the checkpoint args give ", want));
    }
  }
  if (auto it = hf.find("tie_word_embeddings"); it != hf.end() && it->is_boolean() &&
                                                it->get<bool>() == c.untied_embeddings) {
    mismatches.push_back(absl::StrCat("tie_word_embeddings is ", it->get<bool>() ? "true" : "false",
                                      " but the checkpoint ",
                                      c.untied_embeddings ? "has" : "has no",
                                      " separate output layer"));
  }
  if (auto it = hf.find("vocab_size"); it != hf.end() && it->is_number_integer() &&
                                       it->get<int64_t>() > c.padded_vocab_size) {
    mismatches.push_back(absl::StrCat("vocab_size is ", it->get<int64_t>(),
                                      " but the checkpoint's padded vocabulary has only ",
                                      c.padded_vocab_size, " rows"));
  }
  if (!mismatches.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        context, " contradicts the checkpoint: ", absl::StrJoin(mismatches, "; ")));
  }
  return absl::OkStatus();
}

absl::StatusOr<CheckpointPlan> PlanCheckpoint(fs::FileSystem& fs,
                                              const CheckpointPlanRequest& request) {
  CheckpointPlan out;
  ASSIGN_OR_RETURN(out.checkpoint, megatron::DiscoverLegacyCheckpoint(fs, request.source_dir,
                                                                      request.iteration));
  ASSIGN_OR_RETURN(megatron::ModelConfig config,
                   megatron::ReadModelConfig(fs, out.checkpoint.files.front().path));
  RETURN_IF_ERROR(megatron::ResolveRanks(config, out.checkpoint));
  PlanOptions options = request.options;
  std::string architecture = request.architecture;
  if (!request.hf_config_dir.empty()) {
    const std::string path = fs::JoinPath(request.hf_config_dir, "config.json");
    ASSIGN_OR_RETURN(std::string text, fs::ReadFileToString(fs, path));
    ASSIGN_OR_RETURN(Json hf, ParseJson(text, path));
    RETURN_IF_ERROR(CheckHfConfig(hf, config, path));
    if (architecture.empty()) {
      auto archs = hf.find("architectures");
      if (archs == hf.end() || !archs->is_array() || archs->empty() || !(*archs)[0].is_string()) {
        return absl::InvalidArgumentError(absl::StrCat(path, ": no 'architectures' list"));
      }
      architecture = (*archs)[0].get<std::string>();
    }
    if (auto v = hf.find("vocab_size"); v != hf.end() && v->is_number_integer()) {
      if (options.hf_vocab_size == 0) options.hf_vocab_size = v->get<int64_t>();
    }
    out.hf_config = std::move(hf);
  }
  if (architecture.empty()) {
    return absl::InvalidArgumentError(
        "the architecture is unknown: pass --arch or --hf-config with a config.json");
  }
  ASSIGN_OR_RETURN(const ArchRules* arch, FindArch(architecture));
  std::vector<megatron::RankManifest> manifests;
  for (const megatron::RankFile& file : out.checkpoint.files) {
    ASSIGN_OR_RETURN(megatron::RankManifest m,
                     megatron::ScanRankFile(fs, file.path, config.vpp));
    manifests.push_back(std::move(m));
  }
  ASSIGN_OR_RETURN(ExportPlan plan,
                   BuildPlan(config, *arch, out.checkpoint.files, manifests, options));
  QuantRequest quantization = request.quantization;
  quantization.max_shard_size = options.max_shard_size;
  ASSIGN_OR_RETURN(out.plan, ApplyQuantization(std::move(plan), quantization));
  return out;
}

}  // namespace mxport::exporter
