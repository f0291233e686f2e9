#include "common/export/expected_tensors.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace mxport::exporter {
namespace {

using megatron::GlobalExpert;
using megatron::GlobalLayer;

class Builder {
 public:
  Builder(const ArchRules& arch) : arch_(arch) {}

  // Adds the tensors of `role`; `shapes` has one shape per output of the role.
  void Add(Role role, std::optional<GlobalLayer> layer, std::optional<GlobalExpert> expert,
           const std::vector<std::vector<int64_t>>& shapes) {
    if (!status_.ok()) return;
    const std::vector<const char*>* names = arch_.Find(role);
    if (names == nullptr || names->size() != shapes.size()) {
      status_ = absl::InvalidArgumentError(absl::StrCat(
          arch_.architecture, " has no Hugging Face name for Megatron role ",
          static_cast<int>(role), " (the checkpoint holds a tensor this architecture lacks)"));
      return;
    }
    for (size_t i = 0; i < shapes.size(); ++i) {
      out_.push_back({RenderName((*names)[i], layer, expert), role, static_cast<int>(i), layer,
                      expert, shapes[i]});
    }
  }
  absl::StatusOr<std::vector<ExpectedTensor>> Finish() {
    if (!status_.ok()) return status_;
    return std::move(out_);
  }

 private:
  const ArchRules& arch_;
  std::vector<ExpectedTensor> out_;
  absl::Status status_;
};

}  // namespace

absl::StatusOr<std::vector<ExpectedTensor>> ExpectedTensors(const megatron::ModelConfig& c,
                                                            const ArchRules& arch,
                                                            int64_t hf_vocab_size) {
  if (arch.moe != c.is_moe()) {
    return absl::InvalidArgumentError(absl::StrCat(
        arch.architecture, c.is_moe() ? " is a dense architecture but the checkpoint has "
                                      : " is a mixture-of-experts architecture but the "
                                        "checkpoint has ",
        c.num_experts, " experts"));
  }
  if (c.add_bias_linear) {
    return absl::UnimplementedError("checkpoints with linear biases (add_bias_linear) are not "
                                    "supported yet");
  }
  if (!c.swiglu) {
    return absl::UnimplementedError("only SwiGLU MLPs are supported");
  }
  const int64_t h = c.hidden_size, d = c.kv_channels, q = c.num_attention_heads * d,
                kv = c.num_query_groups * d;
  Builder b(arch);
  b.Add(Role::kEmbedding, std::nullopt, std::nullopt, {{hf_vocab_size, h}});
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const GlobalLayer layer(l);
    b.Add(Role::kInputNorm, layer, std::nullopt, {{h}});
    b.Add(Role::kQkvWeight, layer, std::nullopt, {{q, h}, {kv, h}, {kv, h}});
    if (c.add_qkv_bias) b.Add(Role::kQkvBias, layer, std::nullopt, {{q}, {kv}, {kv}});
    if (c.qk_layernorm) {
      b.Add(Role::kQNorm, layer, std::nullopt, {{d}});
      b.Add(Role::kKNorm, layer, std::nullopt, {{d}});
    }
    b.Add(Role::kAttnOut, layer, std::nullopt, {{h, q}});
    b.Add(Role::kPostAttnNorm, layer, std::nullopt, {{h}});
    if (c.IsMoeLayer(l)) {
      b.Add(Role::kRouter, layer, std::nullopt, {{c.num_experts, h}});
      if (c.router_expert_bias) {
        b.Add(Role::kRouterExpertBias, layer, std::nullopt, {{c.num_experts}});
      }
      const int64_t f = c.moe_ffn_hidden_size;
      for (int64_t e = 0; e < c.num_experts; ++e) {
        b.Add(Role::kExpertFc1, layer, GlobalExpert(e), {{f, h}, {f, h}});
        b.Add(Role::kExpertFc2, layer, GlobalExpert(e), {{h, f}});
      }
      if (c.shared_expert_ffn_size > 0) {
        const int64_t s = c.shared_expert_ffn_size;
        b.Add(Role::kSharedFc1, layer, std::nullopt, {{s, h}, {s, h}});
        b.Add(Role::kSharedFc2, layer, std::nullopt, {{h, s}});
        b.Add(Role::kSharedGate, layer, std::nullopt, {{1, h}});
      }
    } else {
      b.Add(Role::kDenseFc1, layer, std::nullopt, {{c.ffn_hidden_size, h}, {c.ffn_hidden_size, h}});
      b.Add(Role::kDenseFc2, layer, std::nullopt, {{h, c.ffn_hidden_size}});
    }
  }
  b.Add(Role::kFinalNorm, std::nullopt, std::nullopt, {{h}});
  if (c.untied_embeddings) b.Add(Role::kOutput, std::nullopt, std::nullopt, {{hf_vocab_size, h}});
  return b.Finish();
}

}  // namespace mxport::exporter
