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
// Implementations: loopback (in process, for tests), TCP (host buffers, anywhere), NCCL (device
// buffers, GPU machines; nccl_transport.h). One conformance suite runs against each.
#ifndef MXPORT_WORKER_TRANSPORT_TRANSPORT_H_
#define MXPORT_WORKER_TRANSPORT_TRANSPORT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace mxport::transport {

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

  int rank() const { return options_.rank; }
  int world_size() const { return options_.world_size; }

 protected:
  explicit Transport(TransportOptions options) : options_(options) {}
  absl::Status CheckPeer(int peer) const;
  const TransportOptions options_;
};

// N transports connected in process (rank i is result[i]).
std::vector<std::unique_ptr<Transport>> NewLoopbackGroup(int world_size,
                                                         absl::Duration op_timeout =
                                                             absl::Minutes(5));

}  // namespace mxport::transport

#endif  // MXPORT_WORKER_TRANSPORT_TRANSPORT_H_
