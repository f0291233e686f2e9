#include "common/base/clock.h"

namespace mxport {
namespace {

class WallClock : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

}  // namespace

Clock* RealClock() {
  static WallClock* clock = new WallClock();
  return clock;
}

}  // namespace mxport
