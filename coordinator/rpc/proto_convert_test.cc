#include "coordinator/rpc/proto_convert.h"

#include "common/testing/status_matchers.h"
#include "coordinator/rpc/metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace mxport::coordinator::rpc {
namespace {

using ::mxport::testing::IsOk;
using ::mxport::testing::StatusIs;
using ::testing::HasSubstr;

TEST(ProtoConvertTest, JobSpecRoundTripsAndEmptyFieldsTakeDefaults) {
  v1::JobSpec proto;
  proto.set_job_id("j");
  proto.set_source_path("/src");
  proto.set_output_path("/out");
  proto.set_iteration(1000);
  proto.add_expert_map()->add_global_ids(3);
  (*proto.mutable_labels())["k"] = "v";
  const JobSpec spec = JobSpecFromProto(proto);
  EXPECT_EQ(spec.source_format, "torch");
  EXPECT_EQ(spec.max_shard_size, uint64_t{5} << 30);
  EXPECT_EQ(spec.quantization, "none");
  EXPECT_EQ(spec.workers_expected, 1);
  EXPECT_EQ(spec.transport, "auto");
  EXPECT_EQ(spec.iteration, 1000);
  EXPECT_EQ(spec.expert_map, (std::vector<std::vector<int64_t>>{{3}}));
  EXPECT_EQ(spec.labels.at("k"), "v");
  EXPECT_EQ(JobSpecFromProto(JobSpecToProto(spec)), spec);

  v1::JobSpec no_iteration = proto;
  no_iteration.clear_iteration();
  EXPECT_FALSE(JobSpecFromProto(no_iteration).iteration.has_value());
}

TEST(ProtoConvertTest, StatusCodesMapOneToOne) {
  for (int code = 0; code <= 16; ++code) {
    const absl::Status status(static_cast<absl::StatusCode>(code), code == 0 ? "" : "why");
    const grpc::Status g = ToGrpcStatus(status);
    EXPECT_EQ(static_cast<int>(g.error_code()), code);
    EXPECT_EQ(FromGrpcStatus(g), status);
  }
  EXPECT_EQ(ToGrpcStatus(absl::AbortedError("stale token")).error_code(),
            grpc::StatusCode::ABORTED);
}

TEST(ProtoConvertTest, JsonUsesProtoNamesAndPrintsDefaults) {
  v1::Event event;
  event.set_seq(3);
  event.set_type("phase");
  ASSERT_OK_AND_ASSIGN(std::string json, MessageToJson(event));
  const nlohmann::json parsed = nlohmann::json::parse(json);
  EXPECT_EQ(parsed["seq"], "3");
  EXPECT_EQ(parsed["job_id"], "");  // printed although empty
  EXPECT_EQ(parsed["generation"], "0");
  EXPECT_EQ(json.find('\n'), std::string::npos);  // one line, for NDJSON

  v1::Event back;
  EXPECT_THAT(JsonToMessage(R"({"seq": "3", "type": "phase", "unknown": 1})", &back), IsOk());
  EXPECT_EQ(back.seq(), 3);
  EXPECT_THAT(JsonToMessage(R"({"seq": "three"})", &back, "events"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("events")));
  EXPECT_THAT(JsonToMessage("[1,", &back), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ProtoConvertTest, JobViewCarriesWorkersLeasesAndCommits) {
  JobView view;
  view.job.spec.job_id = "j";
  view.job.phase = JobPhase::kTransferring;
  view.job.generation = 2;
  view.job.created_at = absl::FromUnixSeconds(1'700'000'000);
  WorkerInfo worker;
  worker.index = 1;
  worker.state = WorkerState::kStuck;
  worker.registered_at = absl::FromUnixSeconds(1'700'000'000);
  worker.last_heartbeat = absl::FromUnixSeconds(1'700'000'010);
  view.workers.push_back(worker);
  view.leases.push_back({Coordinator::LeaseResource("j", "sidecars"), "worker-1", 42,
                         absl::FromUnixSeconds(1'700'000'100)});
  CommitRecord commit;
  commit.path = "config.json";
  commit.token = 42;
  view.committed.push_back(commit);
  view.eta_seconds = -1;

  const v1::Job job = JobViewToProto(view, absl::FromUnixSeconds(1'700'000'015));
  EXPECT_EQ(job.phase(), v1::TRANSFERRING);
  EXPECT_EQ(job.created_at(), "2023-11-14T22:13:20Z");
  ASSERT_EQ(job.workers_size(), 1);
  EXPECT_EQ(job.workers(0).state(), v1::STUCK);
  EXPECT_DOUBLE_EQ(job.workers(0).heartbeat_age_seconds(), 5);
  ASSERT_EQ(job.leases_size(), 1);
  EXPECT_EQ(job.leases(0).resource(), "sidecars");
  EXPECT_EQ(job.leases(0).token(), 42);
  ASSERT_EQ(job.committed_size(), 1);
  EXPECT_EQ(job.committed(0).path(), "config.json");
  EXPECT_EQ(job.eta_seconds(), -1);
}

TEST(MetricsTest, RendersHistogramsAndEscapesLabels) {
  Metrics metrics;
  metrics.ObserveRpc("GetJob", 0.003);
  metrics.ObserveRpc("GetJob", 20);
  const std::string text = metrics.Render({}, absl::UnixEpoch());
  EXPECT_THAT(text,
              HasSubstr("mxport_rpc_latency_seconds_bucket{method=\"GetJob\",le=\"0.0025\"} 0"));
  EXPECT_THAT(text,
              HasSubstr("mxport_rpc_latency_seconds_bucket{method=\"GetJob\",le=\"0.005\"} 1"));
  EXPECT_THAT(text, HasSubstr("mxport_rpc_latency_seconds_bucket{method=\"GetJob\",le=\"10\"} 1"));
  EXPECT_THAT(text,
              HasSubstr("mxport_rpc_latency_seconds_bucket{method=\"GetJob\",le=\"+Inf\"} 2"));
  EXPECT_THAT(text, HasSubstr("mxport_rpc_latency_seconds_count{method=\"GetJob\"} 2"));
  EXPECT_THAT(text, HasSubstr("mxport_jobs{phase=\"CANCELLED\"} 0"));
  EXPECT_EQ(EscapeLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

}  // namespace
}  // namespace mxport::coordinator::rpc
