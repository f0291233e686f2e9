// The gRPC surface end to end: a real channel to an in-process CoordinatorServer.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "common/fs/content_hash.h"
#include "coordinator/rpc/rpc_testutil.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"

namespace mxport::coordinator::rpc::testing {
namespace {

using ::mxport::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// grpc.health.v1.Health/Check by hand (no generated health stubs ship with Debian's gRPC):
// the request is {string service = 1}, the response {ServingStatus status = 1}.
absl::StatusOr<int> HealthCheck(grpc::Channel* channel, const std::string& service) {
  std::string request_bytes;
  if (!service.empty()) {
    request_bytes = std::string("\x0a", 1) + static_cast<char>(service.size()) + service;
  }
  grpc::Slice slice(request_bytes);
  grpc::ByteBuffer request(&slice, 1), response;
  grpc::GenericStub stub(std::shared_ptr<grpc::Channel>(channel, [](grpc::Channel*) {}));
  auto context = Context();
  absl::Notification done;
  grpc::Status status;
  stub.UnaryCall(context.get(), "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request,
                 &response, [&](grpc::Status s) {
                   status = std::move(s);
                   done.Notify();
                 });
  done.WaitForNotification();
  if (!status.ok()) return FromGrpcStatus(status);
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) return absl::InternalError("cannot read the response");
  std::string bytes;
  for (const grpc::Slice& s : slices)
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  if (bytes.size() != 2 || bytes[0] != 0x08) return absl::InternalError("unexpected response");
  return static_cast<int>(bytes[1]);  // 1 SERVING, 2 NOT_SERVING
}

TEST_F(ServerTest, SubmitIsIdempotentAndChecksTheSpec) {
  ASSERT_OK_AND_ASSIGN(v1::Job job, Submit(TestSpec("a")));
  EXPECT_EQ(job.phase(), v1::PENDING);
  EXPECT_EQ(job.spec().source_format(), "torch");  // core defaults fill empty fields
  EXPECT_EQ(job.spec().max_shard_size(), uint64_t{5} << 30);
  EXPECT_FALSE(job.created_at().empty());

  ASSERT_OK_AND_ASSIGN(v1::Job again, Submit(TestSpec("a")));
  EXPECT_EQ(again.created_at(), job.created_at());

  v1::JobSpec different = TestSpec("a");
  different.set_output_path("/data/out/elsewhere");
  EXPECT_THAT(Submit(different), StatusIs(absl::StatusCode::kAlreadyExists));

  v1::JobSpec bad = TestSpec("b");
  bad.clear_source_path();
  EXPECT_THAT(Submit(bad), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("source_path")));
  v1::JobSpec outside = TestSpec("c");
  outside.set_output_path("/etc/out");
  EXPECT_THAT(Submit(outside), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(ServerTest, GetListAndCancel) {
  ASSERT_OK(Submit(TestSpec("a")));
  v1::JobSpec other = TestSpec("b");
  (*other.mutable_labels())["team"] = "other";
  ASSERT_OK(Submit(other));

  ASSERT_OK_AND_ASSIGN(v1::Job a, Get("a"));
  EXPECT_EQ(a.spec().job_id(), "a");
  EXPECT_THAT(Get("nope"), StatusIs(absl::StatusCode::kNotFound));

  v1::ListJobsRequest list;
  v1::ListJobsResponse all;
  ASSERT_TRUE(jobs_->ListJobs(Context().get(), list, &all).ok());
  EXPECT_EQ(all.jobs_size(), 2);
  (*list.mutable_label_selector())["team"] = "other";
  v1::ListJobsResponse some;
  ASSERT_TRUE(jobs_->ListJobs(Context().get(), list, &some).ok());
  ASSERT_EQ(some.jobs_size(), 1);
  EXPECT_EQ(some.jobs(0).spec().job_id(), "b");

  ASSERT_OK_AND_ASSIGN(v1::Job cancelled, Cancel("a", "changed my mind"));
  EXPECT_EQ(cancelled.phase(), v1::CANCELLED);
  EXPECT_EQ(cancelled.message(), "changed my mind");
  EXPECT_THAT(Cancel("a", ""), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(Cancel("nope", ""), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(ServerTest, WatchStreamsEventsAndClosesWhenTheJobEnds) {
  ASSERT_OK(Submit(TestSpec("a")));
  auto context = Context();
  v1::WatchJobRequest request;
  request.set_job_id("a");
  auto reader = jobs_->WatchJob(context.get(), request);
  v1::Event event;
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.seq(), 1);
  EXPECT_EQ(event.type(), "submitted");

  ASSERT_OK(Cancel("a", "stop"));
  std::vector<std::string> types;
  while (reader->Read(&event)) types.push_back(event.type() + " " + event.message());
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_THAT(types, ElementsAre("phase CANCELLED: stop"));

  // Resuming after the last seq of an ended job returns nothing and closes OK.
  auto resume_context = Context();
  request.set_after_seq(event.seq());
  auto resumed = jobs_->WatchJob(resume_context.get(), request);
  EXPECT_FALSE(resumed->Read(&event));
  EXPECT_TRUE(resumed->Finish().ok());
}

TEST_F(ServerTest, WatchOfAnUnknownJobIsNotFound) {
  auto context = Context();
  v1::WatchJobRequest request;
  request.set_job_id("nope");
  auto reader = jobs_->WatchJob(context.get(), request);
  v1::Event event;
  EXPECT_FALSE(reader->Read(&event));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ServerTest, ShutdownEndsOpenWatchStreams) {
  ASSERT_OK(Submit(TestSpec("a")));
  auto context = Context();
  v1::WatchJobRequest request;
  request.set_job_id("a");
  auto reader = jobs_->WatchJob(context.get(), request);
  v1::Event event;
  ASSERT_TRUE(reader->Read(&event));
  server_->Shutdown(absl::Now() + absl::Seconds(30));
  EXPECT_FALSE(reader->Read(&event));
  const grpc::Status status = reader->Finish();
  // Ended by the server itself (not cancelled at the shutdown deadline).
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("after_seq=1"));
}

TEST_F(ServerTest, LeasesAndCommitsAreFenced) {
  ASSERT_OK(Submit(TestSpec("a")));
  v1::RegisterRequest reg;
  reg.set_job_id("a");
  reg.set_worker_index(0);
  reg.set_data_address("127.0.0.1:9000");
  reg.set_gpu(-1);
  v1::RegisterResponse registered;
  ASSERT_TRUE(workers_->Register(Context().get(), reg, &registered).ok());
  EXPECT_EQ(registered.workers_expected(), 2);
  EXPECT_GT(registered.heartbeat_interval_seconds(), 0);
  reg.set_worker_index(7);
  EXPECT_EQ(workers_->Register(Context().get(), reg, &registered).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  v1::LeaseRequest lease;
  lease.set_job_id("a");
  lease.set_generation(registered.generation());
  lease.set_worker_index(0);
  lease.set_resource("model-00001-of-00001.safetensors");
  v1::LeaseResponse granted;
  ASSERT_TRUE(workers_->AcquireLease(Context().get(), lease, &granted).ok());
  EXPECT_EQ(granted.resource(), lease.resource());
  EXPECT_GT(granted.token(), 0);

  lease.set_worker_index(1);  // a second holder must wait
  v1::LeaseResponse refused;
  EXPECT_EQ(workers_->AcquireLease(Context().get(), lease, &refused).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  lease.set_generation(registered.generation() + 1);  // not a generation of this job
  EXPECT_EQ(workers_->AcquireLease(Context().get(), lease, &refused).error_code(),
            grpc::StatusCode::ABORTED);

  const std::string bytes = "safetensors bytes";
  const std::string staged = "/data/out/a/.staging/g0/model-00001-of-00001.safetensors";
  ASSERT_OK(fs_.CreateDirs(fs::Dirname(staged)));
  ASSERT_OK(fs::WriteFileAtomically(fs_, staged, bytes));
  v1::CommitFileRequest commit;
  commit.set_job_id("a");
  commit.set_generation(registered.generation());
  commit.set_resource(lease.resource());
  commit.set_token(granted.token() - 1);  // stale
  commit.set_staged_path(staged);
  commit.set_path("model-00001-of-00001.safetensors");
  commit.set_size(bytes.size());
  commit.set_content_hash(fs::ContentHash(bytes));
  v1::CommitFileResponse committed;
  EXPECT_EQ(workers_->CommitFile(Context().get(), commit, &committed).error_code(),
            grpc::StatusCode::ABORTED);

  commit.set_token(granted.token());
  const grpc::Status ok = workers_->CommitFile(Context().get(), commit, &committed);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_FALSE(committed.already_committed());
  ASSERT_TRUE(workers_->CommitFile(Context().get(), commit, &committed).ok());
  EXPECT_TRUE(committed.already_committed());

  ASSERT_OK_AND_ASSIGN(v1::Job job, Get("a"));
  ASSERT_EQ(job.committed_size(), 1);
  EXPECT_EQ(job.committed(0).path(), "model-00001-of-00001.safetensors");
  ASSERT_EQ(job.leases_size(), 1);
  EXPECT_EQ(job.leases(0).token(), granted.token());
  ASSERT_EQ(job.workers_size(), 1);
  EXPECT_EQ(job.workers(0).state(), v1::HEALTHY);
}

TEST_F(ServerTest, NcclIdIsUnavailableUntilPublished) {
  ASSERT_OK(Submit(TestSpec("a")));
  v1::NcclIdRequest request;
  request.set_job_id("a");
  v1::NcclIdResponse response;
  EXPECT_EQ(workers_->GetNcclId(Context().get(), request, &response).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  request.set_unique_id(std::string(128, '\x7f'));
  ASSERT_TRUE(workers_->PublishNcclId(Context().get(), request, &response).ok());
  request.clear_unique_id();
  ASSERT_TRUE(workers_->GetNcclId(Context().get(), request, &response).ok());
  EXPECT_EQ(response.unique_id(), std::string(128, '\x7f'));
}

TEST_F(ServerTest, SessionAnswersHeartbeatsAndAbortsOldGenerations) {
  ASSERT_OK(Submit(TestSpec("a")));
  v1::RegisterRequest reg;
  reg.set_job_id("a");
  reg.set_worker_index(1);
  v1::RegisterResponse registered;
  ASSERT_TRUE(workers_->Register(Context().get(), reg, &registered).ok());

  auto context = Context();
  auto stream = workers_->Session(context.get());
  v1::WorkerMessage beat;
  beat.set_job_id("a");
  beat.set_worker_index(1);
  beat.set_generation(registered.generation());
  beat.mutable_heartbeat()->set_bytes_done(10);
  beat.mutable_heartbeat()->set_bytes_total(100);
  beat.mutable_heartbeat()->set_activity("scanning");
  ASSERT_TRUE(stream->Write(beat));
  v1::CoordinatorMessage reply;
  ASSERT_TRUE(stream->Read(&reply));
  EXPECT_EQ(reply.generation(), registered.generation());
  EXPECT_EQ(reply.body_case(), v1::CoordinatorMessage::BODY_NOT_SET);

  beat.set_generation(registered.generation() + 3);
  ASSERT_TRUE(stream->Write(beat));
  ASSERT_TRUE(stream->Read(&reply));
  EXPECT_EQ(reply.generation(), registered.generation());
  EXPECT_TRUE(reply.has_abort());

  v1::WorkerMessage failure;
  failure.mutable_failure()->set_message("disk full");
  ASSERT_TRUE(stream->Write(failure));
  ASSERT_TRUE(stream->WritesDone());
  // The failure fails the job (the worker is told to finish, on this session if it is still
  // open, else on its next); then the stream closes.
  while (stream->Read(&reply)) {
  }
  const grpc::Status status = stream->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();

  ASSERT_OK_AND_ASSIGN(v1::Job job, Get("a"));
  ASSERT_EQ(job.workers_size(), 1);
  EXPECT_EQ(job.workers(0).bytes_done(), 10);
  EXPECT_EQ(job.workers(0).activity(), "scanning");
  EXPECT_EQ(job.phase(), v1::FAILED);
  EXPECT_THAT(job.message(), HasSubstr("disk full"));
  ASSERT_OK_AND_ASSIGN(std::vector<Event> events, server_->coordinator().Events("a", 0));
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().type, "worker_failed");
  EXPECT_THAT(events.back().message, HasSubstr("disk full"));
}

TEST(ServerRestartTest, JobsSurviveARestartOnSqlite) {
  CoordinatorServer::Options options;
  options.grpc_address = "127.0.0.1:0";
  options.rest_port = -1;
  options.db_path = ::testing::TempDir() + "/coordinator_rpc_restart_test.db";
  std::remove(options.db_path.c_str());
  options.tick_interval = absl::Milliseconds(1);  // exercises the tick thread's start and stop
  fs::MemoryFileSystem memory_fs;
  options.fs = &memory_fs;
  for (int run = 0; run < 2; ++run) {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<CoordinatorServer> server,
                         CoordinatorServer::Start(options));
    EXPECT_EQ(server->rest_port(), -1);
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server->grpc_port()),
                                       grpc::InsecureChannelCredentials());
    auto stub = v1::ExportService::NewStub(channel);
    v1::Job job;
    if (run == 0) {
      v1::SubmitJobRequest submit;
      *submit.mutable_spec() = TestSpec("kept");
      ASSERT_TRUE(stub->SubmitJob(Context().get(), submit, &job).ok());
    } else {
      v1::GetJobRequest get;
      get.set_job_id("kept");
      const grpc::Status status = stub->GetJob(Context().get(), get, &job);
      ASSERT_TRUE(status.ok()) << status.error_message();
      EXPECT_EQ(job.spec().workers_expected(), 2);
    }
    server->Shutdown(absl::Now() + absl::Seconds(10));
  }
}

TEST(ServerStartTest, BadOptionsAreErrors) {
  CoordinatorServer::Options options;
  options.grpc_address = "127.0.0.1:0";
  options.rest_port = -1;
  options.allowed_roots = {"relative/root"};
  EXPECT_THAT(CoordinatorServer::Start(options), StatusIs(absl::StatusCode::kInvalidArgument));
  options.allowed_roots = {};
  options.grpc_address = "256.0.0.1:1";
  EXPECT_THAT(CoordinatorServer::Start(options), StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(ServerTest, HealthIsServingUntilDrained) {
  EXPECT_THAT(HealthCheck(channel_.get(), ""), ::mxport::testing::IsOkAndHolds(1));
  EXPECT_THAT(HealthCheck(channel_.get(), "mxport.v1.ExportService"),
              ::mxport::testing::IsOkAndHolds(1));
  server_->Drain();
  EXPECT_THAT(HealthCheck(channel_.get(), ""), ::mxport::testing::IsOkAndHolds(2));
  EXPECT_THAT(HealthCheck(channel_.get(), "mxport.v1.WorkerService"),
              ::mxport::testing::IsOkAndHolds(2));
  server_->Shutdown(absl::Now() + absl::Seconds(10));
  EXPECT_THAT(HealthCheck(channel_.get(), ""), StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace mxport::coordinator::rpc::testing
