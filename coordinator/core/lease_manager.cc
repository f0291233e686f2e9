#include "coordinator/core/lease_manager.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"

namespace mxport::coordinator {

absl::Duration LeaseManager::Clamp(absl::Duration d) const {
  if (d <= absl::ZeroDuration()) d = options_.default_duration;
  return std::min(d, options_.max_duration);
}

void LeaseManager::PurgeExpired() {
  const absl::Time now = options_.clock->Now();
  absl::erase_if(leases_, [now](const auto& entry) { return entry.second.expires_at <= now; });
}

absl::StatusOr<Lease> LeaseManager::Acquire(const std::string& resource,
                                            const std::string& holder, absl::Duration duration) {
  absl::MutexLock lock(&mu_);
  PurgeExpired();
  const absl::Time expires = options_.clock->Now() + Clamp(duration);
  auto it = leases_.find(resource);
  if (it != leases_.end()) {
    if (it->second.holder != holder) {
      return absl::UnavailableError(absl::StrCat(
          resource, " is leased to ", it->second.holder, " (token ", it->second.token,
          ") until ", absl::FormatTime(it->second.expires_at)));
    }
    it->second.expires_at = expires;
    return it->second;
  }
  // Persisted before it is handed out: a restart can never issue it again.
  ASSIGN_OR_RETURN(int64_t token, options_.store->NextToken());
  Lease lease{resource, holder, token, expires};
  leases_[resource] = lease;
  return lease;
}

absl::StatusOr<Lease> LeaseManager::Renew(const std::string& resource, int64_t token,
                                          absl::Duration duration) {
  absl::MutexLock lock(&mu_);
  PurgeExpired();
  auto it = leases_.find(resource);
  if (it == leases_.end() || it->second.token != token) {
    return absl::AbortedError(
        absl::StrCat("lease on ", resource, " with token ", token, " is no longer held"));
  }
  it->second.expires_at = options_.clock->Now() + Clamp(duration);
  return it->second;
}

absl::Status LeaseManager::Release(const std::string& resource, int64_t token) {
  absl::MutexLock lock(&mu_);
  PurgeExpired();
  auto it = leases_.find(resource);
  if (it == leases_.end() || it->second.token != token) {
    return absl::AbortedError(
        absl::StrCat("lease on ", resource, " with token ", token, " is no longer held"));
  }
  leases_.erase(it);
  return absl::OkStatus();
}

void LeaseManager::Revoke(const std::string& resource) {
  absl::MutexLock lock(&mu_);
  leases_.erase(resource);
}

void LeaseManager::RevokePrefix(const std::string& prefix) {
  absl::MutexLock lock(&mu_);
  absl::erase_if(leases_,
                 [&](const auto& entry) { return absl::StartsWith(entry.first, prefix); });
}

absl::Status LeaseManager::Check(const std::string& resource, int64_t token) {
  absl::MutexLock lock(&mu_);
  PurgeExpired();
  auto it = leases_.find(resource);
  if (it == leases_.end()) {
    return absl::AbortedError(
        absl::StrCat("token ", token, " is stale: no live lease on ", resource));
  }
  if (it->second.token != token) {
    return absl::AbortedError(absl::StrCat("token ", token, " is stale: ", resource,
                                           " is leased with token ", it->second.token));
  }
  return absl::OkStatus();
}

std::vector<Lease> LeaseManager::Snapshot() {
  absl::MutexLock lock(&mu_);
  PurgeExpired();
  std::vector<Lease> out;
  for (const auto& [resource, lease] : leases_) out.push_back(lease);
  std::sort(out.begin(), out.end(),
            [](const Lease& a, const Lease& b) { return a.resource < b.resource; });
  return out;
}

}  // namespace mxport::coordinator
