#include "coordinator/core/committer.h"

#include "common/fs/memory_file_system.h"
#include "common/fs/content_hash.h"
#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace mxport::coordinator {
namespace {

using ::mxport::testing::StatusIs;
using ::testing::HasSubstr;

class CommitterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(fs_->CreateDirs("/out/.staging/g0-t1"));
    fs_->SyncEverything();  // the directories exist durably before any commit
    LeaseManager::Options lo;
    lo.clock = &clock_;
    lo.store = store_.get();
    leases_ = std::make_unique<LeaseManager>(lo);
    Committer::Options co;
    co.fs = fs_.get();
    co.store = store_.get();
    co.leases = leases_.get();
    co.clock = &clock_;
    committer_ = std::make_unique<Committer>(co);
  }
  // Stages `data` and returns a request for committing it as `path` with `token`.
  CommitRequest Stage(const std::string& name, const std::string& data, const std::string& path,
                      int64_t token) {
    const std::string staged = "/out/.staging/g0-t1/" + name;
    EXPECT_OK(fs::WriteFileAtomically(*fs_, staged, data));
    return {"job", 0, "job/job/" + path, token, staged, path, data.size(), fs::ContentHash(data)};
  }
  std::string Read(const std::string& path) {
    auto s = fs::ReadFileToString(*fs_, path);
    return s.ok() ? *s : "<missing>";
  }

  FakeClock clock_;
  std::unique_ptr<fs::MemoryFileSystem> fs_ = fs::NewMemoryFileSystem();
  std::unique_ptr<Store> store_ = NewMemoryStore();
  std::unique_ptr<LeaseManager> leases_;
  std::unique_ptr<Committer> committer_;
};

TEST_F(CommitterTest, CommitRenamesIntoPlaceAndJournals) {
  ASSERT_OK_AND_ASSIGN(Lease lease, leases_->Acquire("job/job/config.json", "w0"));
  CommitRequest req = Stage("config.json", "{\"a\":1}", "config.json", lease.token);
  ASSERT_OK_AND_ASSIGN(CommitResult result, committer_->Commit("/out", req));
  EXPECT_FALSE(result.already_committed);
  EXPECT_EQ(Read("/out/config.json"), "{\"a\":1}");
  EXPECT_EQ(Read(req.staged_path), "<missing>");
  ASSERT_OK_AND_ASSIGN(auto journaled, store_->GetCommit("job", "config.json"));
  ASSERT_TRUE(journaled.has_value());
  EXPECT_EQ(journaled->token, lease.token);
  EXPECT_EQ(journaled->content_hash, fs::ContentHash("{\"a\":1}"));
  // Durable: survives a crash of the file system right after the commit returned.
  fs_->SimulateCrash();
  EXPECT_EQ(Read("/out/config.json"), "{\"a\":1}");
}

TEST_F(CommitterTest, StaleTokenIsAbortedAndNothingMoves) {
  ASSERT_OK_AND_ASSIGN(Lease old_lease, leases_->Acquire("job/job/config.json", "w0"));
  clock_.Advance(absl::Minutes(1));  // w0 paused past its lease; w1 takes over
  ASSERT_OK_AND_ASSIGN(Lease new_lease, leases_->Acquire("job/job/config.json", "w1"));
  CommitRequest stale = Stage("old.json", "stale", "config.json", old_lease.token);
  EXPECT_THAT(committer_->Commit("/out", stale),
              StatusIs(absl::StatusCode::kAborted, HasSubstr("stale")));
  EXPECT_EQ(Read("/out/config.json"), "<missing>");
  EXPECT_EQ(Read(stale.staged_path), "stale");
  ASSERT_OK_AND_ASSIGN(auto journaled, store_->GetCommit("job", "config.json"));
  EXPECT_FALSE(journaled.has_value());
  CommitRequest fresh = Stage("new.json", "fresh", "config.json", new_lease.token);
  ASSERT_OK(committer_->Commit("/out", fresh).status());
  EXPECT_EQ(Read("/out/config.json"), "fresh");
}

TEST_F(CommitterTest, RepeatedCommitIsANoOp) {
  ASSERT_OK_AND_ASSIGN(Lease lease, leases_->Acquire("job/job/model.safetensors", "w0"));
  CommitRequest req = Stage("a", "bytes", "model.safetensors", lease.token);
  ASSERT_OK_AND_ASSIGN(CommitResult first, committer_->Commit("/out", req));
  // The writer retries (its reply was lost): same path and hash, even after the lease lapsed.
  clock_.Advance(absl::Minutes(5));
  CommitRequest retry = Stage("b", "bytes", "model.safetensors", lease.token);
  ASSERT_OK_AND_ASSIGN(CommitResult second, committer_->Commit("/out", retry));
  EXPECT_TRUE(second.already_committed);
  EXPECT_EQ(second.record, first.record);
  EXPECT_EQ(Read("/out/model.safetensors"), "bytes");
  ASSERT_OK_AND_ASSIGN(auto commits, store_->Commits("job"));
  EXPECT_EQ(commits.size(), 1u);
}

TEST_F(CommitterTest, SizeOrHashMismatchIsRefused) {
  ASSERT_OK_AND_ASSIGN(Lease lease, leases_->Acquire("job/job/f", "w0"));
  CommitRequest req = Stage("f", "12345", "f", lease.token);
  req.size = 4;
  EXPECT_THAT(committer_->Commit("/out", req),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("has 5 bytes")));
  req.size = 5;
  req.content_hash = fs::ContentHash("54321");
  EXPECT_THAT(committer_->Commit("/out", req),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("content hash")));
  EXPECT_EQ(Read("/out/f"), "<missing>");
}

TEST_F(CommitterTest, PathsAreConfinedToTheOutputDirectory) {
  ASSERT_OK_AND_ASSIGN(Lease lease, leases_->Acquire("job/job/x", "w0"));
  for (const char* bad : {"../escape", "/abs", "a/../../b", "", "a//b", "./a"}) {
    SCOPED_TRACE(bad);
    CommitRequest req = Stage("x", "data", bad, lease.token);
    EXPECT_THAT(committer_->Commit("/out", req), StatusIs(absl::StatusCode::kInvalidArgument));
  }
  CommitRequest outside = Stage("x", "data", "x", lease.token);
  outside.staged_path = "/elsewhere/x";
  EXPECT_THAT(committer_->Commit("/out", outside),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(".staging")));
}

}  // namespace
}  // namespace mxport::coordinator
