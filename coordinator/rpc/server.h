// CoordinatorServer: the coordinator process minus main(): the store, the Coordinator core,
// the gRPC server (ExportService, WorkerService, grpc.health.v1 health checking and server
// reflection for grpcurl) and the REST server, with a background thread that calls
// Coordinator::Tick() every tick_interval (the one place a real timer runs).
//
// Start() returns a running server; grpc_port() and rest_port() give the bound ports (ask for
// port 0 to let the kernel pick, as tests do). Shutdown(deadline) drains: health goes
// NOT_SERVING (so probes and load balancers stop sending work), the REST server stops, watch
// and worker session streams are ended by the server itself, gRPC refuses new calls and waits
// for running ones until `deadline` (then cancels them), and the tick thread is joined. It is
// idempotent; the destructor runs it with a short deadline if nobody did. Wait() blocks until
// Shutdown() has completed. Thread-safe.
//
// Errors from Start: InvalidArgument for bad options, Unavailable when a port cannot be bound,
// and whatever opening the store returns.
#ifndef MXPORT_COORDINATOR_RPC_SERVER_H_
#define MXPORT_COORDINATOR_RPC_SERVER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/base/clock.h"
#include "common/fs/file_system.h"
#include "coordinator/core/coordinator.h"

namespace mxport::coordinator::rpc {

class CoordinatorServer {
 public:
  struct Options {
    std::string grpc_address = "0.0.0.0:0";
    // REST/JSON, /metrics, /healthz and the dashboard. rest_port 0 picks a free port;
    // a negative port disables the REST server.
    std::string rest_host = "0.0.0.0";
    int rest_port = 0;
    // SQLite database file; empty or ":memory:" keeps state in memory (lost on exit).
    std::string db_path;
    // Job paths must lie under one of these (see Coordinator::Options); empty: any path.
    std::vector<std::string> allowed_roots;
    // When set, REST /v1/ routes need `Authorization: Bearer <token>`.
    std::string bearer_token;
    // Coordinator::Tick() period (heartbeat TTL and stall rules); zero disables the thread.
    absl::Duration tick_interval = absl::Seconds(1);
    absl::Duration heartbeat_ttl = absl::Seconds(15);
    // Re-read every staged file to check the writer's content hash before committing it. Off by
    // default: the writer hashes the synced file itself, and a coordinator reading every byte
    // of a large export over shared storage would be its bottleneck.
    bool verify_commit_hash = false;
    absl::Duration stall_after = absl::Minutes(2);
    absl::Duration lease_duration = absl::Seconds(60);
    // gRPC keepalive (control-plane.md §4): the server pings idle connections every
    // keepalive_time and drops them when a ping is unanswered for keepalive_timeout; workers
    // may ping as often as min_client_ping_interval, even with no call in flight.
    absl::Duration keepalive_time = absl::Seconds(30);
    absl::Duration keepalive_timeout = absl::Seconds(10);
    absl::Duration min_client_ping_interval = absl::Seconds(5);
    int max_message_size = 64 << 20;  // bytes, both directions
    // Injected for tests; defaults are the real ones.
    Clock* clock = RealClock();
    fs::FileSystem* fs = nullptr;  // nullptr: PosixFileSystem()
  };

  static absl::StatusOr<std::unique_ptr<CoordinatorServer>> Start(Options options);
  ~CoordinatorServer();

  int grpc_port() const;
  int rest_port() const;  // -1 when REST is disabled
  Coordinator& coordinator();

  // Stops serving new health checks (NOT_SERVING) without stopping anything else; Shutdown
  // starts with this. For a preStop hook, or a test.
  void Drain();
  void Shutdown(absl::Time deadline);
  void Wait();

 private:
  struct Impl;
  explicit CoordinatorServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mxport::coordinator::rpc

#endif  // MXPORT_COORDINATOR_RPC_SERVER_H_
