// ExportServiceImpl: the public job API (mxport.v1.ExportService) over gRPC's callback API.
//
// Unary RPCs are thin: request proto -> Coordinator call -> response proto, with the core's
// absl::Status mapped 1:1 onto the gRPC status (INVALID_ARGUMENT for a bad spec, ALREADY_EXISTS
// for a job id reused with a different spec, NOT_FOUND, FAILED_PRECONDITION for a terminal job).
//
// WatchJob streams the job's numbered events after `after_seq`. Each stream runs its waiting
// loop (Coordinator::WaitForEvents with a short deadline) on its own thread, never inside a
// gRPC reaction; the thread issues one write at a time and waits for OnWriteDone. The stream
// ends OK once the job is terminal and every event has been sent, CANCELLED when the client
// goes away, and UNAVAILABLE when the server shuts down (the client resumes from the last seq).
//
// Thread-safe. The Coordinator, StreamSet and Metrics are borrowed and must outlive the gRPC
// server this service is registered with.
#ifndef MXPORT_COORDINATOR_RPC_EXPORT_SERVICE_H_
#define MXPORT_COORDINATOR_RPC_EXPORT_SERVICE_H_

#include "absl/time/time.h"
#include "common/base/clock.h"
#include "coordinator/core/coordinator.h"
#include "coordinator/rpc/metrics.h"
#include "coordinator/rpc/stream_set.h"
#include "mxport/v1/export.grpc.pb.h"

namespace mxport::coordinator::rpc {

class ExportServiceImpl final : public v1::ExportService::CallbackService {
 public:
  struct Options {
    Coordinator* coordinator = nullptr;
    StreamSet* streams = nullptr;
    Metrics* metrics = nullptr;  // optional
    Clock* clock = RealClock();  // for worker heartbeat ages in Job views
    // How long a watch thread waits for events before it looks for shutdown again.
    absl::Duration watch_poll = absl::Milliseconds(200);
  };
  explicit ExportServiceImpl(Options options) : options_(std::move(options)) {}

  grpc::ServerUnaryReactor* SubmitJob(grpc::CallbackServerContext* context,
                                      const v1::SubmitJobRequest* request,
                                      v1::Job* response) override;
  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* context,
                                   const v1::GetJobRequest* request, v1::Job* response) override;
  grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext* context,
                                     const v1::ListJobsRequest* request,
                                     v1::ListJobsResponse* response) override;
  grpc::ServerUnaryReactor* CancelJob(grpc::CallbackServerContext* context,
                                      const v1::CancelJobRequest* request,
                                      v1::Job* response) override;
  grpc::ServerWriteReactor<v1::Event>* WatchJob(grpc::CallbackServerContext* context,
                                                const v1::WatchJobRequest* request) override;

 private:
  const Options options_;
};

}  // namespace mxport::coordinator::rpc

#endif  // MXPORT_COORDINATOR_RPC_EXPORT_SERVICE_H_
