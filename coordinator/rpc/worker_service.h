// WorkerServiceImpl: the worker-facing API (mxport.v1.WorkerService) over gRPC's callback API.
//
// Register, AcquireLease, RenewLease, CommitFile, PublishNcclId and GetNcclId are thin unary
// handlers over the Coordinator; every call after Register carries (job, generation), and the
// core's codes pass through unchanged: ABORTED for a stale generation or fencing token,
// UNAVAILABLE for a lease held by another worker or an NCCL id not yet published,
// FAILED_PRECONDITION for a job that already ended.
//
// Session is one bidirectional stream per worker, driven by its own thread (never by blocking
// inside a reaction). Heartbeats go to Coordinator::Heartbeat and are answered with a
// CoordinatorMessage carrying the current generation (an empty body acknowledges it; an Abort
// body tells a worker of an old generation to stop). Failure, done and abort-ack reports are
// recorded as job events. Other errors end the stream with the core's status; the client's
// half-close ends it OK; server shutdown ends it UNAVAILABLE. (Sending assignments and plans
// down the stream is left to the orchestration layer.)
//
// Thread-safe. The Coordinator, StreamSet and Metrics are borrowed and must outlive the gRPC
// server this service is registered with.
#ifndef MXPORT_COORDINATOR_RPC_WORKER_SERVICE_H_
#define MXPORT_COORDINATOR_RPC_WORKER_SERVICE_H_

#include "absl/time/time.h"
#include "coordinator/core/coordinator.h"
#include "coordinator/core/job_driver.h"
#include "coordinator/rpc/metrics.h"
#include "coordinator/rpc/stream_set.h"
#include "mxport/v1/worker.grpc.pb.h"

namespace mxport::coordinator::rpc {

class WorkerServiceImpl final : public v1::WorkerService::CallbackService {
 public:
  struct Options {
    Coordinator* coordinator = nullptr;
    StreamSet* streams = nullptr;
    Metrics* metrics = nullptr;  // optional
    // Told to workers at Register (a third of the coordinator's heartbeat TTL, say).
    absl::Duration heartbeat_interval = absl::Seconds(5);
    // Orchestration: orders for the workers, fed by registrations, manifests and commits.
    // Optional (without it the service only tracks health, leases and commits).
    JobDriver* driver = nullptr;
  };
  explicit WorkerServiceImpl(Options options) : options_(std::move(options)) {}

  grpc::ServerUnaryReactor* Register(grpc::CallbackServerContext* context,
                                     const v1::RegisterRequest* request,
                                     v1::RegisterResponse* response) override;
  grpc::ServerBidiReactor<v1::WorkerMessage, v1::CoordinatorMessage>* Session(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* AcquireLease(grpc::CallbackServerContext* context,
                                         const v1::LeaseRequest* request,
                                         v1::LeaseResponse* response) override;
  grpc::ServerUnaryReactor* RenewLease(grpc::CallbackServerContext* context,
                                       const v1::LeaseRequest* request,
                                       v1::LeaseResponse* response) override;
  grpc::ServerUnaryReactor* CommitFile(grpc::CallbackServerContext* context,
                                       const v1::CommitFileRequest* request,
                                       v1::CommitFileResponse* response) override;
  grpc::ServerUnaryReactor* PublishNcclId(grpc::CallbackServerContext* context,
                                          const v1::NcclIdRequest* request,
                                          v1::NcclIdResponse* response) override;
  grpc::ServerUnaryReactor* GetNcclId(grpc::CallbackServerContext* context,
                                      const v1::NcclIdRequest* request,
                                      v1::NcclIdResponse* response) override;

 private:
  const Options options_;
};

}  // namespace mxport::coordinator::rpc

#endif  // MXPORT_COORDINATOR_RPC_WORKER_SERVICE_H_
