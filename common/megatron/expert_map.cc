#include "common/megatron/expert_map.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace mxport::megatron {

absl::StatusOr<ExpertMap> ExpertMap::Contiguous(int64_t num_global, int64_t ep_size) {
  if (num_global <= 0 || ep_size <= 0 || num_global % ep_size != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        num_global, " experts cannot be split evenly over ", ep_size, " expert-parallel ranks"));
  }
  const int64_t n = num_global / ep_size;
  std::vector<std::vector<int64_t>> per_rank(ep_size);
  for (int64_t r = 0; r < ep_size; ++r) {
    for (int64_t j = 0; j < n; ++j) per_rank[r].push_back(r * n + j);
  }
  return FromExplicit(per_rank, num_global);
}

absl::StatusOr<ExpertMap> ExpertMap::FromExplicit(
    const std::vector<std::vector<int64_t>>& per_rank, int64_t num_global) {
  if (per_rank.empty() || num_global <= 0) {
    return absl::InvalidArgumentError("expert map needs at least one rank and one expert");
  }
  ExpertMap map;
  map.num_global_ = num_global;
  map.owner_.assign(num_global, {EpRank(-1), LocalExpert(-1)});
  for (size_t r = 0; r < per_rank.size(); ++r) {
    if (per_rank[r].size() != per_rank[0].size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "expert map: EP rank ", r, " owns ", per_rank[r].size(), " experts, rank 0 owns ",
          per_rank[0].size()));
    }
    std::vector<GlobalExpert> ids;
    for (size_t j = 0; j < per_rank[r].size(); ++j) {
      const int64_t g = per_rank[r][j];
      if (g < 0 || g >= num_global) {
        return absl::InvalidArgumentError(absl::StrCat(
            "expert map: EP rank ", r, " local expert ", j, " names global expert ", g,
            ", outside [0, ", num_global, ")"));
      }
      auto& owner = map.owner_[g];
      if (owner.first.value() >= 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "expert map: global expert ", g, " is claimed by EP rank ", owner.first.value(),
            " (local ", owner.second.value(), ") and EP rank ", r, " (local ", j, ")"));
      }
      owner = {EpRank(r), LocalExpert(j)};
      ids.push_back(GlobalExpert(g));
    }
    map.per_rank_.push_back(std::move(ids));
  }
  for (int64_t g = 0; g < num_global; ++g) {
    if (map.owner_[g].first.value() < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("expert map: global expert ", g, " is owned by no EP rank"));
    }
  }
  return map;
}

absl::StatusOr<GlobalExpert> ExpertMap::ToGlobal(EpRank rank, LocalExpert local) const {
  if (rank.value() < 0 || rank.value() >= ep_size() || local.value() < 0 ||
      local.value() >= experts_per_rank()) {
    return absl::OutOfRangeError(absl::StrCat("no expert at EP rank ", rank.value(),
                                              " local slot ", local.value(), " (", ep_size(),
                                              " ranks of ", experts_per_rank(), ")"));
  }
  return per_rank_[rank.value()][local.value()];
}

absl::StatusOr<std::pair<EpRank, LocalExpert>> ExpertMap::Owner(GlobalExpert global) const {
  if (global.value() < 0 || global.value() >= num_global_) {
    return absl::OutOfRangeError(absl::StrCat("no global expert ", global.value()));
  }
  return owner_[global.value()];
}

}  // namespace mxport::megatron
