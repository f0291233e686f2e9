// Test fixture for the rpc layer: an in-process CoordinatorServer (memory store, in-memory file
// system, no tick thread, both ports picked by the kernel) and a real gRPC channel to it. The
// fixture owns the channel and stubs (see grpc/grpc#32584). Every client call gets a deadline.
#ifndef MXPORT_COORDINATOR_RPC_RPC_TESTUTIL_H_
#define MXPORT_COORDINATOR_RPC_RPC_TESTUTIL_H_

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/fs/memory_file_system.h"
#include "common/testing/status_matchers.h"
#include "coordinator/rpc/proto_convert.h"
#include "coordinator/rpc/server.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "mxport/v1/export.grpc.pb.h"
#include "mxport/v1/worker.grpc.pb.h"

namespace mxport::coordinator::rpc::testing {

// A spec the core accepts (paths are never read before workers scan).
inline v1::JobSpec TestSpec(const std::string& job_id) {
  v1::JobSpec spec;
  spec.set_job_id(job_id);
  spec.set_source_path("/data/ckpt/" + job_id);
  spec.set_output_path("/data/out/" + job_id);
  spec.set_workers_expected(2);
  (*spec.mutable_labels())["team"] = "export";
  return spec;
}

// A client context whose call fails DEADLINE_EXCEEDED instead of hanging a broken test.
inline std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout = absl::Seconds(20)) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return context;
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer(""); }
  void TearDown() override { StopServer(); }

  void StartServer(const std::string& bearer_token) {
    CoordinatorServer::Options options;
    options.grpc_address = "127.0.0.1:0";
    options.rest_host = "127.0.0.1";
    options.rest_port = 0;
    options.db_path = ":memory:";
    options.allowed_roots = {"/data"};
    options.bearer_token = bearer_token;
    options.tick_interval = absl::ZeroDuration();
    options.fs = &fs_;
    auto server = CoordinatorServer::Start(options);
    ASSERT_OK(server);
    server_ = std::move(*server);
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->grpc_port()),
                                   grpc::InsecureChannelCredentials());
    jobs_ = v1::ExportService::NewStub(channel_);
    workers_ = v1::WorkerService::NewStub(channel_);
  }

  void StopServer() {
    if (server_ != nullptr) server_->Shutdown(absl::Now() + absl::Seconds(10));
    jobs_.reset();
    workers_.reset();
    channel_.reset();
    server_.reset();
  }

  absl::StatusOr<v1::Job> Submit(const v1::JobSpec& spec) {
    v1::SubmitJobRequest request;
    *request.mutable_spec() = spec;
    v1::Job job;
    const grpc::Status s = jobs_->SubmitJob(Context().get(), request, &job);
    if (!s.ok()) return FromGrpcStatus(s);
    return job;
  }
  absl::StatusOr<v1::Job> Get(const std::string& job_id) {
    v1::GetJobRequest request;
    request.set_job_id(job_id);
    v1::Job job;
    const grpc::Status s = jobs_->GetJob(Context().get(), request, &job);
    if (!s.ok()) return FromGrpcStatus(s);
    return job;
  }
  absl::StatusOr<v1::Job> Cancel(const std::string& job_id, const std::string& reason) {
    v1::CancelJobRequest request;
    request.set_job_id(job_id);
    request.set_reason(reason);
    v1::Job job;
    const grpc::Status s = jobs_->CancelJob(Context().get(), request, &job);
    if (!s.ok()) return FromGrpcStatus(s);
    return job;
  }

  fs::MemoryFileSystem fs_;
  std::unique_ptr<CoordinatorServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ExportService::Stub> jobs_;
  std::unique_ptr<v1::WorkerService::Stub> workers_;
};

}  // namespace mxport::coordinator::rpc::testing

#endif  // MXPORT_COORDINATOR_RPC_RPC_TESTUTIL_H_
