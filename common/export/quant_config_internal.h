// Helpers shared by quant_config.cc and quant_config_json.cc (not part of the module's API):
// the error form of every quantization-config error, the norm rule and module-name validation
// (quant_config.h describes both).
#ifndef MXPORT_COMMON_EXPORT_QUANT_CONFIG_INTERNAL_H_
#define MXPORT_COMMON_EXPORT_QUANT_CONFIG_INTERNAL_H_

#include <span>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/export/quant_config.h"

namespace mxport::exporter::quant_config_internal {

// Block FP8 tile edge (weight_block_size).
inline constexpr int kFp8Block = 128;

// InvalidArgument "quantization config: <a><b><c>".
inline absl::Status InvalidArgument(absl::string_view a, absl::string_view b = "",
                                    absl::string_view c = "") {
  return absl::InvalidArgumentError(absl::StrCat("quantization config: ", a, b, c));
}

// Names containing "norm" are never quantized nor listed as excluded.
inline bool IsNorm(absl::string_view module) { return absl::StrContains(module, "norm"); }

// InvalidArgument for an empty, dotted-edge, non-printable-ASCII or duplicate module name, or a
// quantized norm.
absl::Status ValidateModules(std::span<const ModuleQuant> modules);

}  // namespace mxport::exporter::quant_config_internal

#endif  // MXPORT_COMMON_EXPORT_QUANT_CONFIG_INTERNAL_H_
