// Clock: the only source of time for code that expires, times out or measures (leases,
// heartbeats, throughput). Production code takes a Clock* (RealClock() by default); tests pass
// a FakeClock and Advance() it, so nothing sleeps. Thread-safe.
#ifndef MXPORT_COMMON_BASE_CLOCK_H_
#define MXPORT_COMMON_BASE_CLOCK_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace mxport {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

// The process-wide wall clock (never null, never deleted).
Clock* RealClock();

class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'700'000'000)) : now_(start) {}
  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mxport

#endif  // MXPORT_COMMON_BASE_CLOCK_H_
