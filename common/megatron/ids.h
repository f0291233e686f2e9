// Strong integer ids for every coordinate the export juggles, so that a local expert slot can
// never be used where a global expert id is wanted (the bug this product exists to prevent)
// and a local layer never where a global one is. Conversions between local and global ids
// happen only in layer_map.h and expert_map.h. Plain values; thread-safe.
#ifndef MXPORT_COMMON_MEGATRON_IDS_H_
#define MXPORT_COMMON_MEGATRON_IDS_H_

#include <compare>
#include <cstdint>
#include <ostream>

#include <utility>

namespace mxport::megatron {

template <typename Tag>
class StrongId {
 public:
  constexpr StrongId() = default;
  constexpr explicit StrongId(int64_t value) : value_(value) {}
  constexpr int64_t value() const { return value_; }
  friend constexpr auto operator<=>(StrongId, StrongId) = default;
  template <typename H>
  friend H AbslHashValue(H h, StrongId id) {
    return H::combine(std::move(h), id.value_);
  }
  friend std::ostream& operator<<(std::ostream& os, StrongId id) {
    return os << Tag::kName << id.value_;
  }

 private:
  int64_t value_ = 0;
};

struct TpRankTag { static constexpr const char* kName = "tp"; };
struct PpRankTag { static constexpr const char* kName = "pp"; };
struct EpRankTag { static constexpr const char* kName = "ep"; };
struct VpRankTag { static constexpr const char* kName = "vp"; };
struct LocalLayerTag { static constexpr const char* kName = "local layer "; };
struct GlobalLayerTag { static constexpr const char* kName = "layer "; };
struct LocalExpertTag { static constexpr const char* kName = "local expert "; };
struct GlobalExpertTag { static constexpr const char* kName = "expert "; };

using TpRank = StrongId<TpRankTag>;
using PpRank = StrongId<PpRankTag>;
using EpRank = StrongId<EpRankTag>;
using VpRank = StrongId<VpRankTag>;
using LocalLayer = StrongId<LocalLayerTag>;
using GlobalLayer = StrongId<GlobalLayerTag>;
using LocalExpert = StrongId<LocalExpertTag>;
using GlobalExpert = StrongId<GlobalExpertTag>;

}  // namespace mxport::megatron

#endif  // MXPORT_COMMON_MEGATRON_IDS_H_
