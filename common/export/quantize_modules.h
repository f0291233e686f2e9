// The module structure of a plan as quantization sees it (not part of the module's API; shared
// by quantize_plan.cc and quant_sidecars.cc): which HfTensors are linear-like modules (a
// `.weight` of a role the quantization config lists, quantizable or not), which weights a loader
// fuses (q/k/v, gate/up, w1/w3: one global scale), and the relayout of a quantized plan
// (quantize_plan.h: BuildPlan's order rule, a module's tensors kept together in one file).
// Pure functions; thread-safe.
#ifndef MXPORT_COMMON_EXPORT_QUANTIZE_MODULES_H_
#define MXPORT_COMMON_EXPORT_QUANTIZE_MODULES_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "common/export/plan.h"

namespace mxport::exporter::quant_internal {

// A role whose `.weight` is a linear-like module in the quantization config; only some may be
// quantized (the others are listed in exclude_modules).
struct LinearRole {
  Role role;
  bool quantizable;
};

// The entry of `role`, or nullptr when its tensors are no linear module (norms, biases).
const LinearRole* FindLinearRole(Role role);

// Fused siblings share a key ("<prefix>.self_attn.qkv", "<prefix>.gate_up_proj", "<prefix>.w13");
// any other name is its own key.
std::string FusionKey(absl::string_view name);

// The module name of a linear-like tensor (its weight, unquantized or kWeight), or "" when it is
// none.
std::string ModuleOf(const HfTensor& t);

// Orders tensors as BuildPlan does, a module's tensors together, and packs them into files of
// at most `max_shard_size` bytes without splitting a module; pieces follow their tensors, sorted
// by (tensor, dst_row, dst_col).
void Relayout(ExportPlan& plan, uint64_t max_shard_size);

// stat_group of each kWeight: the first quantized weight (in plan order) with the same fusion
// key and algorithm.
void AssignStatGroups(ExportPlan& plan);

}  // namespace mxport::exporter::quant_internal

#endif  // MXPORT_COMMON_EXPORT_QUANTIZE_MODULES_H_
