// LeaseManager: grants time-bounded exclusive ownership of a named resource (an output file of
// a job, or a job's sidecar-writer role) to one worker, with a fencing token.
//
// Thread-safe; does no I/O of its own except through the Store, which persists every token
// before it is returned (so a restarted coordinator never issues a smaller one); knows nothing
// of gRPC. Time comes only from the injected Clock; expired leases are dropped lazily on each
// call, so there is no background thread. Tokens come from one store-wide counter, so they
// increase strictly across all resources and across restarts.
//
// Codes: Acquire on a resource held by another, unexpired: Unavailable naming the holder (the
// caller may retry the call). Renew/Release of a lease that expired or was revoked, or of a
// token that is not the current one: Aborted (the caller must give up the larger operation).
// Check(resource, token) is what commits call: OK only for the current, unexpired token.
#ifndef MXPORT_COORDINATOR_CORE_LEASE_MANAGER_H_
#define MXPORT_COORDINATOR_CORE_LEASE_MANAGER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/base/clock.h"
#include "coordinator/core/store.h"

namespace mxport::coordinator {

struct Lease {
  std::string resource;
  std::string holder;
  int64_t token = 0;
  absl::Time expires_at;
};

class LeaseManager {
 public:
  struct Options {
    absl::Duration default_duration = absl::Seconds(30);
    absl::Duration max_duration = absl::Minutes(10);
    Clock* clock = RealClock();
    Store* store = nullptr;  // required: tokens are persisted there
  };

  explicit LeaseManager(Options options) : options_(std::move(options)) {}

  // Grants `resource` to `holder` for `duration` (default when zero, capped at max). If the
  // holder already holds it, the same token is kept and the expiry extended.
  absl::StatusOr<Lease> Acquire(const std::string& resource, const std::string& holder,
                                absl::Duration duration = absl::ZeroDuration());
  // Extends a live lease; Aborted when `token` is no longer current.
  absl::StatusOr<Lease> Renew(const std::string& resource, int64_t token,
                              absl::Duration duration = absl::ZeroDuration());
  absl::Status Release(const std::string& resource, int64_t token);
  // Takes the resource away from its holder (an unresponsive or lost worker).
  void Revoke(const std::string& resource);
  // Revokes every lease whose resource starts with `prefix` (a job's leases on a new generation).
  void RevokePrefix(const std::string& prefix);
  // OK when `token` is the current, unexpired token of `resource`; Aborted otherwise.
  absl::Status Check(const std::string& resource, int64_t token);
  // Live leases, sorted by resource.
  std::vector<Lease> Snapshot();

 private:
  void PurgeExpired() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Duration Clamp(absl::Duration d) const;

  const Options options_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Lease> leases_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mxport::coordinator

#endif  // MXPORT_COORDINATOR_CORE_LEASE_MANAGER_H_
