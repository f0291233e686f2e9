// The HF tensors a model config implies for an architecture: the completeness oracle of the
// plan. Every name carries GLOBAL layer and expert ids. InvalidArgument when the architecture
// cannot express the config (a MoE config for a dense architecture, a role with no HF name).
// Stateless; thread-safe.
#ifndef MXPORT_COMMON_EXPORT_EXPECTED_TENSORS_H_
#define MXPORT_COMMON_EXPORT_EXPECTED_TENSORS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/export/naming_rules.h"
#include "common/megatron/model_config.h"

namespace mxport::exporter {

struct ExpectedTensor {
  std::string name;
  Role role;
  int output = 0;  // which output of the role's transform (q=0, k=1, v=2; gate=0, up=1)
  std::optional<megatron::GlobalLayer> layer;
  std::optional<megatron::GlobalExpert> expert;
  std::vector<int64_t> shape;
  int64_t rows() const { return shape.empty() ? 1 : shape[0]; }
};

// `hf_vocab_size` is the vocabulary rows the HF embedding keeps (the true vocabulary).
absl::StatusOr<std::vector<ExpectedTensor>> ExpectedTensors(const megatron::ModelConfig& config,
                                                            const ArchRules& arch,
                                                            int64_t hf_vocab_size);

}  // namespace mxport::exporter

#endif  // MXPORT_COMMON_EXPORT_EXPECTED_TENSORS_H_
