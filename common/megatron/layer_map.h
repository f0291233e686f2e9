// LayerMap: the ONLY code that converts a (virtual stage, pipeline stage, local layer) to a
// global layer number. Offsets are prefix sums of the local layer counts actually found in the
// checkpoint, taken vp-major then pp-minor (Megatron's order), and cross-checked against what
// the args say each stage holds; a mismatch is an error naming the stage. Immutable after
// construction; thread-safe.
#ifndef MXPORT_COMMON_MEGATRON_LAYER_MAP_H_
#define MXPORT_COMMON_MEGATRON_LAYER_MAP_H_

#include <vector>

#include "absl/status/statusor.h"
#include "common/megatron/ids.h"
#include "common/megatron/model_config.h"

namespace mxport::megatron {

class LayerMap {
 public:
  // `found[vp * pp + p]` is the number of layers found in chunk (vp, p).
  static absl::StatusOr<LayerMap> Create(const ModelConfig& config,
                                         const std::vector<int64_t>& found);
  // OutOfRange when the local layer is not inside its chunk.
  absl::StatusOr<GlobalLayer> ToGlobal(VpRank vp, PpRank pp, LocalLayer local) const;
  struct Location {
    VpRank vp;
    PpRank pp;
    LocalLayer local;
  };
  // The inverse of ToGlobal; OutOfRange past the last layer.
  absl::StatusOr<Location> ToLocal(GlobalLayer layer) const;
  int64_t num_layers() const { return total_; }

 private:
  LayerMap() = default;
  int64_t pp_ = 1;
  int64_t total_ = 0;
  std::vector<int64_t> counts_;
  std::vector<int64_t> offsets_;
};

}  // namespace mxport::megatron

#endif  // MXPORT_COMMON_MEGATRON_LAYER_MAP_H_
