// RestServer: the job API as REST/JSON, plus health, metrics and the dashboard, on its own
// HTTP port (cpp-httplib). Bodies are the mxport.v1 messages in protobuf's JSON mapping with
// the options of proto_convert.h, so a job here is byte-for-byte what gRPC GetJob returns:
//   POST /v1/jobs                   body: JobSpec, or {"spec": JobSpec}      -> Job
//   GET  /v1/jobs[?label=k=v...]    jobs whose labels include every k=v     -> ListJobsResponse
//   GET  /v1/jobs/{id}                                                      -> Job
//   POST /v1/jobs/{id}:cancel       optional body {"reason": "..."}         -> Job
//   GET  /v1/jobs/{id}/events?after_seq=N[&follow=1]   newline-delimited Event JSON; with
//        follow the response streams (chunked) until the job has ended and every event is
//        sent, and is cut off (no final chunk) when the server stops
//   GET  /healthz  "ok";  GET /metrics  Prometheus text 0.0.4;  GET /  the dashboard page
// Errors are {"code": "NOT_FOUND", "message": "..."} with the HTTP status of the code (400
// INVALID_ARGUMENT, 404 NOT_FOUND, 409 ALREADY_EXISTS and ABORTED, 412 FAILED_PRECONDITION,
// 503 UNAVAILABLE, 500 otherwise...). With a bearer token set, every /v1/ route needs
// `Authorization: Bearer <token>` (else 401, code UNAUTHENTICATED); /healthz, /metrics and /
// stay open for probes and scrapers.
//
// Start binds (port 0 picks a free port, see port()) and serves on a thread of its own.
// Writing to a client that went away must not kill the process, so Start ignores SIGPIPE if
// it still has its default action. Stop() (idempotent; also run by the destructor) ends
// follow streams, closes the listener and joins. The Coordinator and Metrics are borrowed.
#ifndef MXPORT_COORDINATOR_RPC_REST_SERVER_H_
#define MXPORT_COORDINATOR_RPC_REST_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/base/clock.h"
#include "coordinator/core/coordinator.h"
#include "coordinator/rpc/metrics.h"

namespace mxport::coordinator::rpc {

class RestServer {
 public:
  struct Options {
    std::string host = "0.0.0.0";
    int port = 0;              // 0: any free port
    std::string bearer_token;  // empty: no authentication
    Coordinator* coordinator = nullptr;
    Metrics* metrics = nullptr;  // required (it serves /metrics)
    Clock* clock = RealClock();  // for heartbeat ages
    // How long a follow stream waits for events before it looks for shutdown again.
    absl::Duration follow_poll = absl::Milliseconds(200);
    // Connections served at once; each open follow stream holds one.
    int threads = 32;
  };

  // InvalidArgument without a coordinator or metrics; Unavailable when the port cannot be
  // bound.
  static absl::StatusOr<std::unique_ptr<RestServer>> Start(Options options);
  ~RestServer();

  int port() const;
  void Stop();

 private:
  struct Impl;
  explicit RestServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The HTTP status that stands for an absl status code.
int HttpStatusFromCode(absl::StatusCode code);

}  // namespace mxport::coordinator::rpc

#endif  // MXPORT_COORDINATOR_RPC_REST_SERVER_H_
