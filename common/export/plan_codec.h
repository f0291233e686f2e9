// The wire form of an ExportPlan: everything a worker needs to execute its part (sources,
// tensors, pieces, files, the architecture and the virtual-stage count), as compact JSON.
// EncodePlan(DecodePlan(x)) round-trips exactly. DecodePlan validates indices and sizes and
// returns InvalidArgument naming the field on malformed input. Stateless; thread-safe.
#ifndef MXPORT_COMMON_EXPORT_PLAN_CODEC_H_
#define MXPORT_COMMON_EXPORT_PLAN_CODEC_H_

#include <string>

#include "absl/status/statusor.h"
#include "common/export/plan.h"

namespace mxport::exporter {

std::string EncodePlan(const ExportPlan& plan);
absl::StatusOr<ExportPlan> DecodePlan(absl::string_view text);

}  // namespace mxport::exporter

#endif  // MXPORT_COMMON_EXPORT_PLAN_CODEC_H_
