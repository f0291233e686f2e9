// The Hugging Face side files an export publishes besides the tensors.
//
// GenerateHfConfig builds config.json from the Megatron args for the architecture (table-driven
// per architecture: common Llama-style fields plus each family's own), loadable by
// transformers 5.x. SidecarFiles lists what to copy from a user's HF directory: everything but
// weights, the weight index and any stale quantization config. Stateless; thread-safe.
#ifndef MXPORT_COMMON_EXPORT_HF_CONFIG_H_
#define MXPORT_COMMON_EXPORT_HF_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/export/naming_rules.h"
#include "common/fs/file_system.h"
#include "common/json/json.h"
#include "common/megatron/model_config.h"

namespace mxport::exporter {

OrderedJson GenerateHfConfig(const megatron::ModelConfig& config, const ArchRules& arch,
                             int64_t hf_vocab_size);

// Names of the files in `hf_dir` to publish next to the weights, sorted.
absl::StatusOr<std::vector<std::string>> SidecarFiles(fs::FileSystem& fs,
                                                      const std::string& hf_dir);

}  // namespace mxport::exporter

#endif  // MXPORT_COMMON_EXPORT_HF_CONFIG_H_
