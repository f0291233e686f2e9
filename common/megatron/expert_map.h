// ExpertMap: the ONLY code that converts between (EP rank, local expert slot) and global expert
// id. Every EP rank numbers its experts 0..N-1; naming them by that local number is how peers
// lost 7/8 of the experts at EP=8. Here keys are rendered from GlobalExpert only (see
// naming_rules.h), and a GlobalExpert comes only from ToGlobal.
//
// Immutable after construction, so thread-safe. Built either contiguously (rank r owns
// [r*N, (r+1)*N), Megatron's default) or from explicit per-rank lists (a job's
// local_expert_indices); both are validated once: every global id in [0, E) owned exactly once.
#ifndef MXPORT_COMMON_MEGATRON_EXPERT_MAP_H_
#define MXPORT_COMMON_MEGATRON_EXPERT_MAP_H_

#include <vector>

#include "absl/status/statusor.h"
#include "common/megatron/ids.h"

namespace mxport::megatron {

class ExpertMap {
 public:
  // InvalidArgument unless num_global > 0, ep_size > 0 and ep_size divides num_global.
  static absl::StatusOr<ExpertMap> Contiguous(int64_t num_global, int64_t ep_size);
  // per_rank[r][j] is the global id of rank r's local expert j. InvalidArgument naming the id
  // when one is out of range, owned twice, or owned by nobody, or when ranks differ in count.
  static absl::StatusOr<ExpertMap> FromExplicit(const std::vector<std::vector<int64_t>>& per_rank,
                                                int64_t num_global);

  // OutOfRange when `rank` or `local` is outside the map.
  absl::StatusOr<GlobalExpert> ToGlobal(EpRank rank, LocalExpert local) const;
  // The (rank, local slot) that owns `global`.
  absl::StatusOr<std::pair<EpRank, LocalExpert>> Owner(GlobalExpert global) const;
  const std::vector<GlobalExpert>& LocalExperts(EpRank rank) const {
    return per_rank_[rank.value()];
  }
  int64_t num_global() const { return num_global_; }
  int64_t ep_size() const { return static_cast<int64_t>(per_rank_.size()); }
  int64_t experts_per_rank() const { return per_rank_.empty() ? 0 : per_rank_[0].size(); }

 private:
  ExpertMap() = default;
  int64_t num_global_ = 0;
  std::vector<std::vector<GlobalExpert>> per_rank_;
  std::vector<std::pair<EpRank, LocalExpert>> owner_;  // indexed by global id
};

}  // namespace mxport::megatron

#endif  // MXPORT_COMMON_MEGATRON_EXPERT_MAP_H_
