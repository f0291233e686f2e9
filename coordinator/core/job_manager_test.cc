#include "coordinator/core/job_manager.h"

#include <thread>

#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace mxport::coordinator {
namespace {

using ::mxport::testing::StatusIs;
using ::testing::HasSubstr;

JobSpec Spec(const std::string& id) {
  JobSpec spec;
  spec.job_id = id;
  spec.source_path = "/ckpt";
  spec.output_path = "/out/" + id;
  spec.workers_expected = 4;
  return spec;
}

class JobManagerTest : public ::testing::Test {
 protected:
  std::unique_ptr<JobManager> Manager() {
    auto m = JobManager::Create({store_.get(), &clock_});
    EXPECT_TRUE(m.ok());
    return std::move(*m);
  }
  FakeClock clock_;
  std::unique_ptr<Store> store_ = NewMemoryStore();
};

TEST_F(JobManagerTest, SubmitIsIdempotentOnTheJobId) {
  auto jobs = Manager();
  ASSERT_OK_AND_ASSIGN(JobRecord a, jobs->Submit(Spec("a")));
  EXPECT_EQ(a.phase, JobPhase::kPending);
  EXPECT_EQ(a.generation, 0);
  ASSERT_OK_AND_ASSIGN(JobRecord again, jobs->Submit(Spec("a")));
  EXPECT_EQ(again, a);
  JobSpec other = Spec("a");
  other.workers_expected = 8;
  EXPECT_THAT(jobs->Submit(other), StatusIs(absl::StatusCode::kAlreadyExists));
  JobSpec bad = Spec("b");
  bad.source_path = "";
  EXPECT_THAT(jobs->Submit(bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("source_path")));
  EXPECT_EQ(jobs->List().size(), 1u);
}

TEST_F(JobManagerTest, PhasesFollowTheTableWithEvents) {
  auto jobs = Manager();
  ASSERT_OK(jobs->Submit(Spec("a")).status());
  for (JobPhase p : {JobPhase::kScanning, JobPhase::kPlanned, JobPhase::kTransferring,
                     JobPhase::kFinalizing, JobPhase::kSucceeded}) {
    clock_.Advance(absl::Seconds(1));
    ASSERT_OK_AND_ASSIGN(JobRecord job, jobs->Transition("a", 0, p));
    EXPECT_EQ(job.phase, p);
    EXPECT_EQ(job.updated_at, clock_.Now());
  }
  EXPECT_THAT(jobs->Transition("a", 0, JobPhase::kFailed),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("SUCCEEDED")));
  EXPECT_THAT(jobs->Cancel("a", ""), StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK_AND_ASSIGN(auto events, jobs->Events("a", 0));
  ASSERT_EQ(events.size(), 6u);
  EXPECT_EQ(events[0].seq, 1);
  EXPECT_EQ(events[0].type, "submitted");
  EXPECT_EQ(events[5].message, "SUCCEEDED");
  ASSERT_OK_AND_ASSIGN(auto tail, jobs->Events("a", 4));
  ASSERT_EQ(tail.size(), 2u);
  EXPECT_EQ(tail[0].seq, 5);
}

TEST_F(JobManagerTest, SkippingAPhaseOrAStaleGenerationIsRefused) {
  auto jobs = Manager();
  ASSERT_OK(jobs->Submit(Spec("a")).status());
  EXPECT_THAT(jobs->Transition("a", 0, JobPhase::kTransferring),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK(jobs->Transition("a", 0, JobPhase::kScanning).status());
  ASSERT_OK_AND_ASSIGN(JobRecord next, jobs->NewGeneration("a", "worker 2 lost"));
  EXPECT_EQ(next.generation, 1);
  EXPECT_EQ(next.restarts, 1);
  EXPECT_EQ(next.phase, JobPhase::kPending);
  EXPECT_THAT(jobs->Transition("a", 0, JobPhase::kScanning),
              StatusIs(absl::StatusCode::kAborted, HasSubstr("generation 1")));
  EXPECT_THAT(jobs->UpdateProgress("a", 0, 1, 2, 0, 1), StatusIs(absl::StatusCode::kAborted));
  EXPECT_OK(jobs->Transition("a", 1, JobPhase::kScanning).status());
  EXPECT_THAT(jobs->Get("nope"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(JobManagerTest, CancelAndFail) {
  auto jobs = Manager();
  ASSERT_OK(jobs->Submit(Spec("a")).status());
  ASSERT_OK(jobs->Submit(Spec("b")).status());
  ASSERT_OK_AND_ASSIGN(JobRecord a, jobs->Cancel("a", "user asked"));
  EXPECT_EQ(a.phase, JobPhase::kCancelled);
  EXPECT_EQ(a.message, "user asked");
  ASSERT_OK_AND_ASSIGN(JobRecord b, jobs->Transition("b", 0, JobPhase::kFailed, "plan: bad"));
  EXPECT_EQ(b.message, "plan: bad");
}

// Progress reports race: a heartbeat's older snapshot landing after a newer report neither
// takes commits back nor, from FINALIZING on, the bytes (all done once the weights are).
TEST_F(JobManagerTest, LateProgressReportsDoNotGoBack) {
  auto jobs = Manager();
  ASSERT_OK(jobs->Submit(Spec("a")).status());
  for (JobPhase p : {JobPhase::kScanning, JobPhase::kPlanned, JobPhase::kTransferring}) {
    ASSERT_OK(jobs->Transition("a", 0, p).status());
  }
  ASSERT_OK(jobs->UpdateProgress("a", 0, 60, 100, 3, 4).status());
  ASSERT_OK_AND_ASSIGN(JobRecord a, jobs->UpdateProgress("a", 0, 50, 100, 2, 4));
  EXPECT_EQ(a.bytes_done, 50u);  // bytes may be re-estimated while transferring
  EXPECT_EQ(a.files_committed, 3);
  ASSERT_OK_AND_ASSIGN(a, jobs->Transition("a", 0, JobPhase::kFinalizing));
  EXPECT_EQ(a.bytes_done, 100u);
  ASSERT_OK_AND_ASSIGN(a, jobs->UpdateProgress("a", 0, 0, 100, 4, 6));
  EXPECT_EQ(a.bytes_done, 100u);
  EXPECT_EQ(a.files_committed, 4);
  EXPECT_EQ(a.files_total, 6);
}

TEST_F(JobManagerTest, ARestartedManagerResumesEveryJob) {
  {
    auto jobs = Manager();
    ASSERT_OK(jobs->Submit(Spec("a")).status());
    ASSERT_OK(jobs->Transition("a", 0, JobPhase::kScanning).status());
    ASSERT_OK(jobs->UpdateProgress("a", 0, 10, 100, 1, 4).status());
  }
  auto jobs = Manager();
  ASSERT_OK_AND_ASSIGN(JobRecord a, jobs->Get("a"));
  EXPECT_EQ(a.phase, JobPhase::kScanning);
  EXPECT_EQ(a.bytes_done, 10u);
  EXPECT_EQ(a.files_total, 4);
  ASSERT_OK_AND_ASSIGN(auto events, jobs->Events("a", 0));
  EXPECT_EQ(events.size(), 2u);
  ASSERT_OK(jobs->Transition("a", 0, JobPhase::kPlanned).status());
  ASSERT_OK_AND_ASSIGN(events, jobs->Events("a", 0));
  EXPECT_EQ(events.back().seq, 3);
}

TEST_F(JobManagerTest, WaitForEventsWakesOnANewEvent) {
  auto jobs = Manager();
  ASSERT_OK(jobs->Submit(Spec("a")).status());
  std::thread writer([&] { ASSERT_OK(jobs->Record("a", "note", "hello").status()); });
  ASSERT_OK_AND_ASSIGN(auto events,
                       jobs->WaitForEvents("a", 1, absl::Now() + absl::Seconds(30)));
  writer.join();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].message, "hello");
}

}  // namespace
}  // namespace mxport::coordinator
