#include "coordinator/core/types.h"

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mxport::coordinator {
namespace {

using ::mxport::testing::IsOkAndHolds;
using ::mxport::testing::StatusIs;
using ::testing::AllOf;
using ::testing::Eq;
using ::testing::HasSubstr;

JobSpec FullSpec() {
  JobSpec spec;
  spec.job_id = "deepseek-v3.export_01";
  spec.source_path = "/ckpt/iter_0001000";
  spec.iteration = 1000;
  spec.architecture = "DeepseekV3ForCausalLM";
  spec.hf_config_dir = "/configs/dsv3";
  spec.expert_map = {{0, 1, 2}, {3, 4, 5}, {}};
  spec.output_path = "/out/dsv3";
  spec.max_shard_size = (uint64_t{1} << 63) + 7;  // beyond int64
  spec.output_dtype = "bfloat16";
  spec.quantization = "fp8_block";
  spec.workers_expected = 16;
  spec.transport = "nccl";
  spec.labels = {{"team", "llm"}, {"priority", "high"}};
  return spec;
}

JobRecord FullRecord() {
  JobRecord job;
  job.spec = FullSpec();
  job.phase = JobPhase::kTransferring;
  job.generation = 3;
  job.restarts = 2;
  job.created_at = absl::FromUnixNanos(1'700'000'000'123'456'789);
  job.updated_at = job.created_at + absl::Minutes(5) + absl::Nanoseconds(0.25);
  job.message = "worker w-3 lost; \"retrying\"\n";
  job.bytes_total = ~uint64_t{0};
  job.bytes_done = 12345;
  job.files_total = 163;
  job.files_committed = 40;
  return job;
}

TEST(JobPhaseTest, NamesRoundTrip) {
  for (JobPhase phase : {JobPhase::kPending, JobPhase::kScanning, JobPhase::kPlanned,
                         JobPhase::kTransferring, JobPhase::kFinalizing, JobPhase::kSucceeded,
                         JobPhase::kFailed, JobPhase::kCancelled}) {
    EXPECT_THAT(JobPhaseFromName(JobPhaseName(phase)), IsOkAndHolds(Eq(phase)));
  }
  EXPECT_EQ(JobPhaseName(JobPhase::kPending), "PENDING");
  EXPECT_EQ(JobPhaseName(JobPhase::kCancelled), "CANCELLED");
  EXPECT_THAT(JobPhaseFromName("pending"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'pending'")));
}

TEST(JobPhaseTest, Terminal) {
  EXPECT_FALSE(IsTerminal(JobPhase::kPending));
  EXPECT_FALSE(IsTerminal(JobPhase::kFinalizing));
  EXPECT_TRUE(IsTerminal(JobPhase::kSucceeded));
  EXPECT_TRUE(IsTerminal(JobPhase::kFailed));
  EXPECT_TRUE(IsTerminal(JobPhase::kCancelled));
}

TEST(TimeTest, Rfc3339RoundTripsExactly) {
  for (absl::Time t : {absl::UnixEpoch(), absl::FromUnixNanos(1'700'000'000'123'456'789),
                       absl::FromUnixSeconds(-86400 * 400) + absl::Nanoseconds(0.75),
                       absl::InfiniteFuture(), absl::InfinitePast()}) {
    const std::string text = FormatTimeRfc3339(t);
    EXPECT_THAT(ParseTimeRfc3339(text, "t"), IsOkAndHolds(Eq(t))) << text;
  }
  EXPECT_EQ(FormatTimeRfc3339(absl::FromUnixSeconds(1'700'000'000)), "2023-11-14T22:13:20Z");
  EXPECT_THAT(ParseTimeRfc3339("2024-05-01T12:00:00+02:00", "t"),
              IsOkAndHolds(Eq(absl::FromUnixSeconds(1'714'557'600))));
  EXPECT_THAT(ParseTimeRfc3339("yesterday", "ctx"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("ctx"), HasSubstr("yesterday"))));
}

TEST(JobSpecJsonTest, RoundTrips) {
  const JobSpec spec = FullSpec();
  EXPECT_THAT(JobSpecFromJson(JobSpecToJson(spec), "spec"), IsOkAndHolds(Eq(spec)));
  const JobSpec defaults;
  EXPECT_THAT(JobSpecFromJson(JobSpecToJson(defaults), "spec"), IsOkAndHolds(Eq(defaults)));
}

TEST(JobSpecJsonTest, FieldNamesAndShape) {
  JobSpec spec = FullSpec();
  OrderedJson json = JobSpecToJson(spec);
  EXPECT_EQ(json["job_id"], "deepseek-v3.export_01");
  EXPECT_EQ(json["iteration"], 1000);
  EXPECT_EQ(json["expert_map"], OrderedJson::parse("[[0,1,2],[3,4,5],[]]"));
  EXPECT_EQ(json["labels"], OrderedJson::parse(R"({"priority":"high","team":"llm"})"));
  EXPECT_EQ(json["max_shard_size"].get<uint64_t>(), spec.max_shard_size);
  EXPECT_EQ(json.begin().key(), "job_id");  // struct order

  spec.iteration.reset();
  spec.labels.clear();
  json = JobSpecToJson(spec);
  EXPECT_FALSE(json.contains("iteration"));
  EXPECT_TRUE(json["labels"].is_object());
}

TEST(JobSpecJsonTest, MissingFieldsKeepDefaultsAndUnknownFieldsAreIgnored) {
  const Json json = Json::parse(R"({"job_id": "j1", "output_path": "/out", "iteration": null,
                                    "max_shard_size": 1024, "future_field": [1, 2]})");
  JobSpec want;
  want.job_id = "j1";
  want.output_path = "/out";
  want.max_shard_size = 1024;
  EXPECT_THAT(JobSpecFromJson(json, "spec"), IsOkAndHolds(Eq(want)));
}

TEST(JobSpecJsonTest, WrongTypesNameTheField) {
  struct Case {
    const char* json;
    const char* field;
  };
  const Case cases[] = {
      {R"({"job_id": 7})", "'job_id' must be a string"},
      {R"({"iteration": "1000"})", "'iteration' must be an integer"},
      {R"({"iteration": 1.5})", "'iteration' must be an integer"},
      {R"({"iteration": 18446744073709551615})", "'iteration' must be a 64-bit signed integer"},
      {R"({"expert_map": [0, 1]})", "'expert_map' must be a list of lists of integers"},
      {R"({"expert_map": [[0, "1"]]})", "'expert_map' must be a list of lists of integers"},
      {R"({"expert_map": {}})", "'expert_map' must be a list of lists of integers"},
      {R"({"max_shard_size": -1})", "'max_shard_size' must be a non-negative integer"},
      {R"({"workers_expected": true})", "'workers_expected' must be an integer"},
      {R"({"labels": ["a"]})", "'labels' must be an object of strings"},
      {R"({"labels": {"a": 1}})", "'labels' must be an object of strings"},
      {R"({"transport": null, "quantization": 3})", "'quantization' must be a string"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(JobSpecFromJson(Json::parse(c.json), "submit"),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         AllOf(HasSubstr("submit"), HasSubstr(c.field))))
        << c.json;
  }
  EXPECT_THAT(JobSpecFromJson(Json::parse("[1]"), "submit"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected a JSON object")));
}

TEST(ValidateJobSpecTest, AcceptsAValidSpec) {
  EXPECT_OK(ValidateJobSpec(FullSpec()));
  JobSpec spec = FullSpec();
  spec.job_id = std::string(128, 'a');
  EXPECT_OK(ValidateJobSpec(spec));
  for (const char* transport : {"auto", "nccl", "tcp"}) {
    spec.transport = transport;
    EXPECT_OK(ValidateJobSpec(spec));
  }
  for (const char* quantization :
       {"none", "nvfp4", "fp8", "fp8_block", "checkpoint", "checkpoint_fp8"}) {
    spec.quantization = quantization;
    EXPECT_OK(ValidateJobSpec(spec));
  }
}

TEST(ValidateJobSpecTest, RejectionsNameTheField) {
  struct Case {
    void (*mutate)(JobSpec&);
    const char* message;
  };
  const Case cases[] = {
      {[](JobSpec& s) { s.job_id = ""; }, "job_id must be 1 to 128 characters"},
      {[](JobSpec& s) { s.job_id = std::string(129, 'a'); }, "job_id must be 1 to 128"},
      {[](JobSpec& s) { s.job_id = "a/b"; }, "job_id must be 1 to 128 characters of "
                                             "[A-Za-z0-9._-], got 'a/b'"},
      {[](JobSpec& s) { s.job_id = "job id"; }, "job_id"},
      {[](JobSpec& s) { s.source_path = ""; }, "source_path must not be empty"},
      {[](JobSpec& s) { s.source_format = "dist"; }, "source_format must be 'torch', got 'dist'"},
      {[](JobSpec& s) { s.output_path = ""; }, "output_path must not be empty"},
      {[](JobSpec& s) { s.workers_expected = 0; }, "workers_expected must be at least 1, got 0"},
      {[](JobSpec& s) { s.max_shard_size = 0; }, "max_shard_size must be greater than 0"},
      {[](JobSpec& s) { s.transport = "ib"; }, "transport must be one of auto, nccl, tcp; got "
                                               "'ib'"},
      {[](JobSpec& s) { s.quantization = "int4"; }, "quantization must be one of none, "
                                                    "nvfp4, fp8, fp8_block, checkpoint, "
                                                    "checkpoint_fp8; got 'int4'"},
  };
  for (const Case& c : cases) {
    JobSpec spec = FullSpec();
    c.mutate(spec);
    EXPECT_THAT(ValidateJobSpec(spec),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)));
  }
}

TEST(JobRecordJsonTest, RoundTripsExactly) {
  const JobRecord record = FullRecord();
  EXPECT_THAT(JobRecordFromJson(JobRecordToJson(record), "job"), IsOkAndHolds(Eq(record)));
  const JobRecord defaults;
  EXPECT_THAT(JobRecordFromJson(JobRecordToJson(defaults), "job"), IsOkAndHolds(Eq(defaults)));
  // Through text, as the store keeps it.
  EXPECT_THAT(JobRecordFromJson(Json::parse(JobRecordToJson(record).dump()), "job"),
              IsOkAndHolds(Eq(record)));
}

TEST(JobRecordJsonTest, Shape) {
  const OrderedJson json = JobRecordToJson(FullRecord());
  EXPECT_EQ(json["phase"], "TRANSFERRING");
  EXPECT_EQ(json["created_at"], "2023-11-14T22:13:20.123456789Z");
  EXPECT_EQ(json["spec"]["job_id"], "deepseek-v3.export_01");
}

TEST(JobRecordJsonTest, ErrorsNameTheField) {
  Json json = JobRecordToJson(FullRecord());
  json["phase"] = "RUNNING";
  EXPECT_THAT(JobRecordFromJson(json, "job"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("job: field 'phase'"), HasSubstr("'RUNNING'"))));
  json = JobRecordToJson(FullRecord());
  json["created_at"] = "2024-13-01";
  EXPECT_THAT(JobRecordFromJson(json, "job"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'created_at'")));
  json = JobRecordToJson(FullRecord());
  json["spec"]["labels"] = "x";
  EXPECT_THAT(JobRecordFromJson(json, "job"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("job.spec: field 'labels' must be an object of strings")));
  json = JobRecordToJson(FullRecord());
  json.erase("spec");
  EXPECT_THAT(JobRecordFromJson(json, "job"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("missing field 'spec'")));
  json = JobRecordToJson(FullRecord());
  json["bytes_done"] = -5;
  EXPECT_THAT(JobRecordFromJson(json, "job"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'bytes_done'")));
}

}  // namespace
}  // namespace mxport::coordinator
