// Transport: moves byte buffers between the workers of one export generation, point to point.
//
// Contract:
// - Ranks are 0..world_size-1. Send(peer, bytes) and Recv(peer, dst) pair up in order per
//   (sender, receiver): the k-th Send from a to b is the k-th Recv by b from a, and both sides
//   know its size from the plan (so NCCL's sized receives fit). A rank may send to itself.
// - Thread safety: any number of threads may Send and Recv concurrently; calls to the same peer
//   in the same direction are ordered by their start (serialise them yourself if order matters
//   across threads).
// - Errors poison the instance: after any error, only Abort() and destruction are valid.
//   DeadlineExceeded: the operation outlived Options::op_timeout. Unavailable: a peer died or
//   its connection broke. Aborted: Abort() was called. InvalidArgument: a size mismatch
//   between sender and receiver, or a bad rank.
// - Abort() may be called from any thread and makes every blocked and future call return
//   promptly (the coordinator's abort order and the watchdog use it).
// - Exchange(sends, recvs) runs one step of a schedule: it returns once every op of the step is
//   complete. Both sides of a pair must post their matching ops in the same step, and every
//   rank posts its steps in the same order (the plan's schedule guarantees both); ops to or from
//   one peer keep their order within a step. This is the only form NCCL supports (a group of
//   ncclSend/ncclRecv); stream transports (loopback, TCP) also accept lone Send/Recv from any
//   number of threads, which `streaming()` reports.
// Implementations: loopback (in process, for tests), TCP (host buffers, anywhere), NCCL (device
// buffers, GPU machines; nccl_transport.h). One conformance suite (transport_conformance.h) runs
// against each.
#ifndef MXPORT_WORKER_TRANSPORT_TRANSPORT_H_
#define MXPORT_WORKER_TRANSPORT_TRANSPORT_H_

#include <cstdint>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace mxport::transport {

struct SendOp {
  int peer = 0;
  absl::string_view data;
};
struct RecvOp {
  int peer = 0;
  absl::Span<char> dst;  // sized by the caller: the message's exact size
};

struct TransportOptions {
  int rank = 0;
  int world_size = 1;
  absl::Duration op_timeout = absl::Minutes(5);
};

class Transport {
 public:
  virtual ~Transport() = default;
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // Sends `data` to `peer`; returns once the bytes are handed to the transport (the caller may
  // reuse the buffer).
  virtual absl::Status Send(int peer, absl::string_view data) = 0;
  // Receives the next message from `peer` into `dst`, whose size must equal the message's.
  virtual absl::Status Recv(int peer, absl::Span<char> dst) = 0;
  virtual void Abort() = 0;
  // One step of a schedule (see the contract above). The default runs the sends on a helper
  // thread while the caller receives, over Send/Recv.
  virtual absl::Status Exchange(absl::Span<const SendOp> sends, absl::Span<const RecvOp> recvs);
  // Whether lone Send/Recv calls from several threads work (false for NCCL).
  virtual bool streaming() const { return true; }
  // Host memory that this transport moves fastest, for the buffers its callers send from and
  // receive into: page-locked memory for NCCL (its device copies run at DMA speed from it),
  // plain heap memory otherwise. Allocate returns nullptr on failure; Free takes what Allocate
  // returned. Both are thread-safe; free every buffer before destroying the transport.
  virtual char* AllocateHost(size_t bytes) { return new (std::nothrow) char[bytes]; }
  virtual void FreeHost(char* p) { delete[] p; }

  int rank() const { return options_.rank; }
  int world_size() const { return options_.world_size; }

 protected:
  explicit Transport(TransportOptions options) : options_(options) {}
  absl::Status CheckPeer(int peer) const;
  const TransportOptions options_;
};

// A transport that only moves whole steps (NCCL, and its CPU stand-in): lone Send/Recv are
// one-op exchanges, and streaming() is false.
class StepTransport : public Transport {
 public:
  bool streaming() const final { return false; }
  absl::Status Send(int peer, absl::string_view data) final {
    const SendOp op{peer, data};
    return Exchange(absl::MakeConstSpan(&op, 1), {});
  }
  absl::Status Recv(int peer, absl::Span<char> dst) final {
    const RecvOp op{peer, dst};
    return Exchange({}, absl::MakeConstSpan(&op, 1));
  }
  absl::Status Exchange(absl::Span<const SendOp> sends,
                        absl::Span<const RecvOp> recvs) override = 0;

 protected:
  using Transport::Transport;
};

// N transports connected in process (rank i is result[i]).
std::vector<std::unique_ptr<Transport>> NewLoopbackGroup(int world_size,
                                                         absl::Duration op_timeout =
                                                             absl::Minutes(5));

// N in-process transports with NCCL's rendezvous semantics and no lone Send/Recv streams: an
// Exchange completes only when every op has met its partner's, so a schedule that would hang
// on NCCL hangs (and times out) here too. For tests on machines without GPUs.
std::vector<std::unique_ptr<Transport>> NewRendezvousGroup(int world_size,
                                                           absl::Duration op_timeout =
                                                               absl::Minutes(5));

}  // namespace mxport::transport

#endif  // MXPORT_WORKER_TRANSPORT_TRANSPORT_H_
