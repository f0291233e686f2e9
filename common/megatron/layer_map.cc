#include "common/megatron/layer_map.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"

namespace mxport::megatron {

absl::StatusOr<LayerMap> LayerMap::Create(const ModelConfig& config,
                                          const std::vector<int64_t>& found) {
  ASSIGN_OR_RETURN(std::vector<int64_t> expected, config.ExpectedLayersPerChunk());
  if (found.size() != expected.size()) {
    return absl::InvalidArgumentError(absl::StrCat("found layers for ", found.size(),
                                                   " pipeline chunks, args describe ",
                                                   expected.size()));
  }
  LayerMap map;
  map.pp_ = config.pp;
  map.counts_ = found;
  for (size_t i = 0; i < found.size(); ++i) {
    if (found[i] != expected[i]) {
      return absl::InvalidArgumentError(absl::StrCat(
          "pipeline chunk vp", i / config.pp, " pp", i % config.pp, " holds ", found[i],
          " layers, but the args say it should hold ", expected[i]));
    }
    map.offsets_.push_back(map.total_);
    map.total_ += found[i];
  }
  if (map.total_ != config.num_layers) {
    return absl::InvalidArgumentError(absl::StrCat("checkpoint holds ", map.total_,
                                                   " layers, args say ", config.num_layers));
  }
  return map;
}

absl::StatusOr<GlobalLayer> LayerMap::ToGlobal(VpRank vp, PpRank pp, LocalLayer local) const {
  const int64_t chunk = vp.value() * pp_ + pp.value();
  if (pp.value() < 0 || pp.value() >= pp_ || chunk < 0 ||
      chunk >= static_cast<int64_t>(counts_.size()) || local.value() < 0 ||
      local.value() >= counts_[chunk]) {
    return absl::OutOfRangeError(absl::StrCat("no layer ", local.value(), " in chunk vp",
                                              vp.value(), " pp", pp.value()));
  }
  return GlobalLayer(offsets_[chunk] + local.value());
}

absl::StatusOr<LayerMap::Location> LayerMap::ToLocal(GlobalLayer layer) const {
  for (size_t chunk = 0; chunk < counts_.size(); ++chunk) {
    const int64_t local = layer.value() - offsets_[chunk];
    if (local >= 0 && local < counts_[chunk]) {
      return Location{VpRank(chunk / pp_), PpRank(chunk % pp_), LocalLayer(local)};
    }
  }
  return absl::OutOfRangeError(absl::StrCat("no global layer ", layer.value()));
}

}  // namespace mxport::megatron
