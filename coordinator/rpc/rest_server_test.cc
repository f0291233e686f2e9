// The REST surface end to end with httplib::Client against an in-process CoordinatorServer.
#include "coordinator/rpc/rest_server.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "coordinator/rpc/rpc_testutil.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"

namespace mxport::coordinator::rpc::testing {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

class RestTest : public ServerTest {
 protected:
  std::unique_ptr<httplib::Client> Client(const std::string& token = "") {
    auto client = std::make_unique<httplib::Client>("127.0.0.1", server_->rest_port());
    client->set_connection_timeout(10);
    client->set_read_timeout(20);
    client->set_write_timeout(10);
    if (!token.empty()) client->set_bearer_token_auth(token.c_str());
    return client;
  }
  static std::string SpecJson(const std::string& job_id) {
    return *MessageToJson(TestSpec(job_id));
  }
  // The error code of an error response.
  static std::string Code(const httplib::Result& res) {
    return Json::parse(res->body, nullptr, false).value("code", "");
  }
};

TEST_F(RestTest, SubmitGetListCancel) {
  auto client = Client();
  auto res = client->Post("/v1/jobs", SpecJson("a"), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const Json job = Json::parse(res->body);
  EXPECT_EQ(job["spec"]["job_id"], "a");
  EXPECT_EQ(job["phase"], "PENDING");
  EXPECT_EQ(job["spec"]["max_shard_size"], "5368709120");  // proto3 JSON: 64-bit as string

  // The SubmitJobRequest form, with the same spec: idempotent.
  res = client->Post("/v1/jobs", "{\"spec\": " + SpecJson("a") + "}", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  v1::JobSpec different = TestSpec("a");
  different.set_workers_expected(5);
  res = client->Post("/v1/jobs", *MessageToJson(different), "application/json");
  EXPECT_EQ(res->status, 409);
  EXPECT_EQ(Code(res), "ALREADY_EXISTS");
  res = client->Post("/v1/jobs", R"({"job_id": "b"})", "application/json");
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(Code(res), "INVALID_ARGUMENT");
  res = client->Post("/v1/jobs", "{not json", "application/json");
  EXPECT_EQ(res->status, 400);
  res = client->Post("/v1/jobs", R"({"job_id": 5, "workers_expected": "x"})", "application/json");
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(Code(res), "INVALID_ARGUMENT");

  res = client->Get("/v1/jobs/a");
  ASSERT_EQ(res->status, 200);
  EXPECT_EQ(Json::parse(res->body)["spec"]["job_id"], "a");
  res = client->Get("/v1/jobs/nope");
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(Code(res), "NOT_FOUND");

  v1::JobSpec other = TestSpec("b");
  (*other.mutable_labels())["team"] = "other";
  ASSERT_EQ(client->Post("/v1/jobs", *MessageToJson(other), "application/json")->status, 200);
  res = client->Get("/v1/jobs");
  EXPECT_EQ(Json::parse(res->body)["jobs"].size(), 2);
  res = client->Get("/v1/jobs?label=team=other");
  ASSERT_EQ(res->status, 200) << res->body;
  const Json some = Json::parse(res->body);
  ASSERT_EQ(some["jobs"].size(), 1);
  EXPECT_EQ(some["jobs"][0]["spec"]["job_id"], "b");
  res = client->Get("/v1/jobs?label=team%3Dother&label=absent=x");
  EXPECT_EQ(Json::parse(res->body)["jobs"].size(), 0);  // every selector term must match
  EXPECT_EQ(client->Get("/v1/jobs?label=team")->status, 400);

  res = client->Post("/v1/jobs/a:cancel", R"({"reason": "not today"})", "application/json");
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(Json::parse(res->body)["phase"], "CANCELLED");
  EXPECT_EQ(Json::parse(res->body)["message"], "not today");
  res = client->Post("/v1/jobs/a:cancel", "", "application/json");
  EXPECT_EQ(res->status, 412);
  EXPECT_EQ(Code(res), "FAILED_PRECONDITION");
  EXPECT_EQ(client->Get("/v1/nothing-here")->status, 404);
}

TEST_F(RestTest, JobJsonIsWhatGrpcReturns) {
  ASSERT_OK(Submit(TestSpec("a")));
  ASSERT_OK_AND_ASSIGN(v1::Job grpc_job, Get("a"));
  ASSERT_OK_AND_ASSIGN(std::string grpc_json, MessageToJson(grpc_job));
  auto res = Client()->Get("/v1/jobs/a");
  ASSERT_EQ(res->status, 200);
  EXPECT_EQ(Json::parse(res->body), Json::parse(grpc_json));
}

TEST_F(RestTest, EventsAsNdjson) {
  auto client = Client();
  ASSERT_EQ(client->Post("/v1/jobs", SpecJson("a"), "application/json")->status, 200);
  ASSERT_EQ(client->Post("/v1/jobs/a:cancel", "", "application/json")->status, 200);
  auto res = client->Get("/v1/jobs/a/events");
  ASSERT_EQ(res->status, 200);
  std::vector<std::string> lines = absl::StrSplit(res->body, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2);
  EXPECT_EQ(Json::parse(lines[0])["seq"], "1");  // int64 in proto3 JSON
  EXPECT_EQ(Json::parse(lines[1])["type"], "phase");
  res = client->Get("/v1/jobs/a/events?after_seq=1");
  EXPECT_EQ(std::vector<std::string>(absl::StrSplit(res->body, '\n', absl::SkipEmpty())).size(), 1);
  EXPECT_EQ(client->Get("/v1/jobs/a/events?after_seq=x")->status, 400);
  EXPECT_EQ(client->Get("/v1/jobs/nope/events")->status, 404);
  EXPECT_EQ(client->Get("/v1/jobs/nope/events?follow=1")->status, 404);
}

TEST_F(RestTest, FollowStreamsUntilTheJobEnds) {
  auto client = Client();
  ASSERT_EQ(client->Post("/v1/jobs", SpecJson("a"), "application/json")->status, 200);
  absl::Notification first_line;
  std::string body;
  int status = 0;
  std::thread follower([&] {
    auto follow = Client();
    auto res = follow->Get("/v1/jobs/a/events?follow=1", [&](const char* data, size_t size) {
      body.append(data, size);
      if (absl::StrContains(body, "\n") && !first_line.HasBeenNotified()) first_line.Notify();
      return true;
    });
    if (res) status = res->status;
    if (!first_line.HasBeenNotified()) first_line.Notify();
  });
  first_line.WaitForNotification();
  ASSERT_EQ(client->Post("/v1/jobs/a:cancel", "", "application/json")->status, 200);
  follower.join();
  EXPECT_EQ(status, 200);
  std::vector<std::string> lines = absl::StrSplit(body, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2) << body;
  EXPECT_EQ(Json::parse(lines[0])["type"], "submitted");
  EXPECT_THAT(Json::parse(lines[1])["message"].get<std::string>(), HasSubstr("CANCELLED"));
}

TEST_F(RestTest, ShutdownCutsFollowStreams) {
  ASSERT_EQ(Client()->Post("/v1/jobs", SpecJson("a"), "application/json")->status, 200);
  absl::Notification first_line;
  std::string body;
  std::thread follower([&] {
    Client()->Get("/v1/jobs/a/events?follow=1", [&](const char* data, size_t size) {
      body.append(data, size);
      if (absl::StrContains(body, "\n") && !first_line.HasBeenNotified()) first_line.Notify();
      return true;
    });
    if (!first_line.HasBeenNotified()) first_line.Notify();
  });
  first_line.WaitForNotification();
  server_->Shutdown(absl::Now() + absl::Seconds(10));
  follower.join();  // the stream ended although the job is still PENDING
  EXPECT_EQ(std::vector<std::string>(absl::StrSplit(body, '\n', absl::SkipEmpty())).size(), 1);
}

TEST_F(RestTest, HealthMetricsAndDashboard) {
  auto client = Client();
  ASSERT_EQ(client->Post("/v1/jobs", SpecJson("a"), "application/json")->status, 200);
  ASSERT_OK(Get("a"));
  auto res = client->Get("/healthz");
  ASSERT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "ok\n");

  res = client->Get("/metrics");
  ASSERT_EQ(res->status, 200);
  EXPECT_THAT(res->get_header_value("Content-Type"), HasSubstr("version=0.0.4"));
  for (const char* name :
       {"mxport_jobs{phase=\"PENDING\"} 1", "mxport_job_bytes_done{job=\"a\"} 0",
        "mxport_job_bytes_total{job=\"a\"}", "mxport_job_bytes_per_second{job=\"a\"}",
        "mxport_workers{job=\"a\",state=\"HEALTHY\"} 0", "mxport_job_generation{job=\"a\"} 0",
        "mxport_job_restarts_total{job=\"a\"} 0", "# TYPE mxport_lease_token gauge",
        "mxport_commits_total{job=\"a\"} 0", "# TYPE mxport_rpc_latency_seconds histogram",
        "mxport_rpc_latency_seconds_count{method=\"POST /v1/jobs\"} 1",
        "mxport_rpc_latency_seconds_bucket{method=\"/mxport.v1.ExportService/GetJob\",le=\"+Inf\"} "
        "1"}) {
    EXPECT_THAT(res->body, HasSubstr(name));
  }
  res = client->Get("/");
  ASSERT_EQ(res->status, 200);
  EXPECT_THAT(res->body, HasSubstr("<html"));
}

TEST_F(RestTest, BearerTokenGuardsTheApi) {
  StopServer();
  StartServer("s3cret");
  auto res = Client()->Get("/v1/jobs");
  EXPECT_EQ(res->status, 401);
  EXPECT_EQ(Code(res), "UNAUTHENTICATED");
  EXPECT_EQ(Client("wrong")->Get("/v1/jobs")->status, 401);
  EXPECT_EQ(Client("s3cret")->Get("/v1/jobs")->status, 200);
  EXPECT_EQ(Client("s3cret")->Post("/v1/jobs", SpecJson("a"), "application/json")->status, 200);
  EXPECT_EQ(Client()->Get("/healthz")->status, 200);  // probes need no token
  EXPECT_EQ(Client()->Get("/metrics")->status, 200);
}

TEST(HttpStatusTest, CodesMapToHttp) {
  EXPECT_EQ(HttpStatusFromCode(absl::StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusFromCode(absl::StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusFromCode(absl::StatusCode::kAlreadyExists), 409);
  EXPECT_EQ(HttpStatusFromCode(absl::StatusCode::kFailedPrecondition), 412);
  EXPECT_EQ(HttpStatusFromCode(absl::StatusCode::kAborted), 409);
  EXPECT_EQ(HttpStatusFromCode(absl::StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusFromCode(absl::StatusCode::kInternal), 500);
  EXPECT_EQ(HttpStatusFromCode(absl::StatusCode::kDataLoss), 500);
}

}  // namespace
}  // namespace mxport::coordinator::rpc::testing
