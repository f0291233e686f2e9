// CoordinatorClient over gRPC: the worker daemon's link to the coordinator.
//
// Unary calls (Register, AcquireLease, CommitFile) carry a deadline each and retry UNAVAILABLE
// with exponential backoff (a restarting coordinator), never other codes. One bidirectional
// Session stream per registration carries heartbeats, manifests and failures up and orders
// down; a reader thread queues the orders for NextOrders. A broken session is reopened by the
// next Register. Generated protobuf types stay inside this module. Thread-safe.
#ifndef MXPORT_WORKER_RPC_GRPC_COORDINATOR_CLIENT_H_
#define MXPORT_WORKER_RPC_GRPC_COORDINATOR_CLIENT_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "worker/core/worker_agent.h"

namespace mxport::worker {

struct GrpcClientOptions {
  std::string coordinator_address;  // host:port
  absl::Duration call_timeout = absl::Seconds(30);
  absl::Duration max_backoff = absl::Seconds(10);
  int retries = 12;  // for UNAVAILABLE
  // When set and true, retries stop and the call returns Cancelled (SIGTERM during backoff).
  const std::atomic<bool>* stop = nullptr;
  std::string host;  // reported at registration
  int64_t gpu = -1;
};

std::unique_ptr<CoordinatorClient> NewGrpcCoordinatorClient(GrpcClientOptions options);

}  // namespace mxport::worker

#endif  // MXPORT_WORKER_RPC_GRPC_COORDINATOR_CLIENT_H_
