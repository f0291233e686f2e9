#include <cstring>
#include <deque>
#include <map>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/base/status_macros.h"
#include "worker/transport/transport.h"

namespace mxport::transport {

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

// Rendezvous semantics, as NCCL's point-to-point: the k-th send from a to b and the k-th
// receive of b from a match; an Exchange completes only when every one of its ops has been
// matched by the partner's. A schedule whose steps do not pair up hangs here (and times out)
// just as it would hang on NCCL.
class RendezvousHub {
 public:
  explicit RendezvousHub(int n) : n_(n), pairs_(n * n), aborted_(n, false) {}

  struct Slot {
    std::string data;
    bool sent = false, received = false;
    size_t want = 0;  // the receiver's size
    absl::Span<char> dst;
  };

  absl::Status Run(int rank, absl::Span<const SendOp> sends, absl::Span<const RecvOp> recvs,
                   absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    if (aborted_[rank]) return Aborted(rank);
    std::vector<std::pair<int, size_t>> mine;  // (pair, sequence) of every op posted here
    for (const SendOp& op : sends) {
      auto& pair = pairs_[rank * n_ + op.peer];
      Slot& slot = At(pair, pair.next_send++);
      slot.data.assign(op.data.data(), op.data.size());
      slot.sent = true;
      mine.emplace_back(rank * n_ + op.peer, pair.next_send - 1);
    }
    for (const RecvOp& op : recvs) {
      auto& pair = pairs_[op.peer * n_ + rank];
      Slot& slot = At(pair, pair.next_recv++);
      slot.received = true;
      slot.want = op.dst.size();
      slot.dst = op.dst;
      mine.emplace_back(op.peer * n_ + rank, pair.next_recv - 1);
    }
    auto matched = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      if (aborted_[rank]) return true;
      for (const auto& [p, k] : mine) {
        const Slot& slot = pairs_[p].slots.at(k);
        if (!slot.sent || !slot.received) return false;
      }
      return true;
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&matched), timeout)) {
      return absl::DeadlineExceededError(absl::StrCat(
          "rank ", rank, " waited ", absl::FormatDuration(timeout),
          " for its step's partners (", sends.size(), " sends, ", recvs.size(), " receives)"));
    }
    if (aborted_[rank]) return Aborted(rank);
    // Receives take their bytes once both sides are posted.
    for (const auto& [p, k] : mine) {
      Slot& slot = pairs_[p].slots.at(k);
      if (p % n_ != rank) continue;  // a send of this rank
      if (slot.data.size() != slot.want) {
        return absl::InvalidArgumentError(absl::StrCat("rank ", p / n_, " sent ",
                                                       slot.data.size(), " bytes, rank ", rank,
                                                       " expected ", slot.want));
      }
      if (!slot.data.empty()) std::memcpy(slot.dst.data(), slot.data.data(), slot.data.size());
    }
    return absl::OkStatus();
  }

  void Abort(int rank) {
    absl::MutexLock lock(&mu_);
    aborted_[rank] = true;
  }

 private:
  struct Pair {
    size_t next_send = 0, next_recv = 0;
    std::map<size_t, Slot> slots;
  };
  static Slot& At(Pair& pair, size_t k) { return pair.slots[k]; }
  absl::Status Aborted(int rank) const {
    return absl::AbortedError(absl::StrCat("transport of rank ", rank, " aborted"));
  }
  const int n_;
  absl::Mutex mu_;
  std::vector<Pair> pairs_ ABSL_GUARDED_BY(mu_);
  std::vector<bool> aborted_ ABSL_GUARDED_BY(mu_);
};

class RendezvousTransport : public StepTransport {
 public:
  RendezvousTransport(TransportOptions options, std::shared_ptr<RendezvousHub> hub)
      : StepTransport(options), hub_(std::move(hub)) {}
  absl::Status Exchange(absl::Span<const SendOp> sends, absl::Span<const RecvOp> recvs) override {
    for (const SendOp& op : sends) RETURN_IF_ERROR(CheckPeer(op.peer));
    for (const RecvOp& op : recvs) RETURN_IF_ERROR(CheckPeer(op.peer));
    return hub_->Run(rank(), sends, recvs, options_.op_timeout);
  }
  void Abort() override { hub_->Abort(rank()); }

 private:
  std::shared_ptr<RendezvousHub> hub_;
};

}  // namespace

std::vector<std::unique_ptr<Transport>> NewRendezvousGroup(int world_size,
                                                           absl::Duration op_timeout) {
  auto hub = std::make_shared<RendezvousHub>(world_size);
  std::vector<std::unique_ptr<Transport>> out;
  for (int r = 0; r < world_size; ++r) {
    out.push_back(std::make_unique<RendezvousTransport>(
        TransportOptions{r, world_size, op_timeout}, hub));
  }
  return out;
}

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
