#include <cstring>
#include <deque>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/base/status_macros.h"
#include "worker/transport/transport.h"

namespace mxport::transport {

absl::Status Transport::CheckPeer(int peer) const {
  if (peer < 0 || peer >= options_.world_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("rank ", peer, " is outside the group of ", options_.world_size));
  }
  return absl::OkStatus();
}

namespace {

// Queues of messages per (sender, receiver), shared by a group; abort flags per rank.
class LoopbackHub {
 public:
  explicit LoopbackHub(int n) : n_(n), queues_(n * n), aborted_(n, false) {}

  absl::Status Push(int from, int to, absl::string_view data) {
    absl::MutexLock lock(&mu_);
    if (aborted_[from] || aborted_[to]) return Aborted(from, to);
    queues_[from * n_ + to].emplace_back(data.data(), data.size());
    return absl::OkStatus();
  }

  absl::Status Pop(int from, int to, absl::Span<char> dst, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto& q = queues_[from * n_ + to];
    auto ready = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return !q.empty() || aborted_[from] || aborted_[to];
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&ready), timeout)) {
      return absl::DeadlineExceededError(
          absl::StrCat("rank ", to, " waited ", absl::FormatDuration(timeout),
                       " for a message from rank ", from));
    }
    if (q.empty()) return Aborted(from, to);
    std::string msg = std::move(q.front());
    q.pop_front();
    if (msg.size() != dst.size()) {
      return absl::InvalidArgumentError(absl::StrCat("rank ", from, " sent ", msg.size(),
                                                     " bytes, rank ", to, " expected ",
                                                     dst.size()));
    }
    if (!msg.empty()) std::memcpy(dst.data(), msg.data(), msg.size());
    return absl::OkStatus();
  }

  void Abort(int rank) {
    absl::MutexLock lock(&mu_);
    aborted_[rank] = true;
  }

 private:
  absl::Status Aborted(int from, int to) const {
    return absl::AbortedError(
        absl::StrCat("transport aborted (message from rank ", from, " to rank ", to, ")"));
  }
  const int n_;
  absl::Mutex mu_;
  std::vector<std::deque<std::string>> queues_ ABSL_GUARDED_BY(mu_);
  std::vector<bool> aborted_ ABSL_GUARDED_BY(mu_);
};

class LoopbackTransport : public Transport {
 public:
  LoopbackTransport(TransportOptions options, std::shared_ptr<LoopbackHub> hub)
      : Transport(options), hub_(std::move(hub)) {}
  absl::Status Send(int peer, absl::string_view data) override {
    RETURN_IF_ERROR(CheckPeer(peer));
    return hub_->Push(rank(), peer, data);
  }
  absl::Status Recv(int peer, absl::Span<char> dst) override {
    RETURN_IF_ERROR(CheckPeer(peer));
    return hub_->Pop(peer, rank(), dst, options_.op_timeout);
  }
  void Abort() override { hub_->Abort(rank()); }

 private:
  std::shared_ptr<LoopbackHub> hub_;
};

}  // namespace

std::vector<std::unique_ptr<Transport>> NewLoopbackGroup(int world_size,
                                                         absl::Duration op_timeout) {
  auto hub = std::make_shared<LoopbackHub>(world_size);
  std::vector<std::unique_ptr<Transport>> out;
  for (int r = 0; r < world_size; ++r) {
    out.push_back(std::make_unique<LoopbackTransport>(
        TransportOptions{r, world_size, op_timeout}, hub));
  }
  return out;
}

}  // namespace mxport::transport
