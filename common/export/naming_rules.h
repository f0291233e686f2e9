// Naming rules as data: how each Megatron (legacy, Transformer Engine spec) parameter becomes
// Hugging Face tensors, for each supported architecture.
//
// Two tables. The Megatron table (arch-independent) matches a model key pattern, with {L} a
// local layer and {E} a local expert slot, to a Role, how the role is split over ranks, and its
// transform (QKV split, SwiGLU de-interleave, vocab un-padding). The architecture tables give
// each Role's HF name templates, with {L} the GLOBAL layer and {E} the GLOBAL expert id; the
// renderer takes only GlobalLayer/GlobalExpert, so a local id cannot reach a key. Adding an
// architecture is adding a table. Everything here is immutable and thread-safe.
#ifndef MXPORT_COMMON_EXPORT_NAMING_RULES_H_
#define MXPORT_COMMON_EXPORT_NAMING_RULES_H_

#include <optional>
#include <span>
#include <array>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/megatron/ids.h"

namespace mxport::exporter {

enum class Role {
  kEmbedding,
  kOutput,
  kFinalNorm,
  kInputNorm,
  kQkvWeight,
  kQkvBias,
  kQNorm,
  kKNorm,
  kAttnOut,
  kPostAttnNorm,
  kDenseFc1,
  kDenseFc2,
  kRouter,
  kRouterExpertBias,
  kExpertFc1,
  kExpertFc2,
  kSharedFc1,
  kSharedFc2,
  kSharedGate,
};

// How a role's tensor is divided over ranks in the legacy format.
enum class Split {
  kReplicated,    // every rank holds the whole tensor
  kVocabRows,     // dim 0 over TP, padded vocabulary (trailing rows dropped)
  kColumn,        // dim 0 over TP
  kRow,           // dim 1 over TP
  kExpertColumn,  // dim 0 over expert TP (ETP)
  kExpertRow,     // dim 1 over ETP
};

// What turns the concatenated rows into HF tensors.
enum class Transform {
  kNone,
  kQkv,     // grouped [q(p), k, v] x head_dim rows -> q_proj, k_proj, v_proj
  kSwiGlu,  // per rank [gate_r; up_r] -> gate_proj, up_proj
};

struct MegatronRule {
  absl::string_view pattern;  // "decoder.layers.{L}.mlp.experts.linear_fc1.weight{E}"
  Role role;
  Split split;
  Transform transform;
};

// The whole Megatron table.
std::span<const MegatronRule> MegatronRules();

// A model key matched against the table.
struct MatchedKey {
  const MegatronRule* rule = nullptr;
  std::optional<megatron::LocalLayer> layer;
  std::optional<megatron::LocalExpert> expert;
};
// nullopt when no rule matches `key`.
std::optional<MatchedKey> MatchMegatronKey(absl::string_view key);

// One row of an architecture table: a role's HF name templates, several for transforms with
// several outputs, in output order (q, k, v; gate, up).
struct RoleNames {
  Role role;
  std::vector<const char*> templates;
};

struct ArchRules {
  absl::string_view architecture;  // "Qwen3MoeForCausalLM"
  absl::string_view model_type;    // "qwen3_moe"
  bool moe = false;                // has routed experts
  std::vector<RoleNames> roles;
  // The templates for `role`, or nullptr when this architecture has no such tensor.
  const std::vector<const char*>* Find(Role role) const;
};

// InvalidArgument listing the supported names when `architecture` is unknown.
absl::StatusOr<const ArchRules*> FindArch(absl::string_view architecture);
std::vector<absl::string_view> SupportedArchitectures();

// Renders a template with the global layer and expert.
std::string RenderName(const char* tmpl, std::optional<megatron::GlobalLayer> layer,
                       std::optional<megatron::GlobalExpert> expert);

}  // namespace mxport::exporter

#endif  // MXPORT_COMMON_EXPORT_NAMING_RULES_H_
