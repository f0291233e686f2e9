#include "coordinator/core/lease_manager.h"

#include <atomic>
#include <thread>
#include <vector>

#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace mxport::coordinator {
namespace {

using ::mxport::testing::StatusIs;
using ::testing::HasSubstr;

class LeaseManagerTest : public ::testing::Test {
 protected:
  LeaseManager::Options Opts(Store* store) {
    LeaseManager::Options o;
    o.clock = &clock_;
    o.store = store;
    o.default_duration = absl::Seconds(30);
    return o;
  }
  FakeClock clock_;
  std::unique_ptr<Store> store_ = NewMemoryStore();
};

TEST_F(LeaseManagerTest, ConcurrentAcquiresGiveExactlyOneHolder) {
  LeaseManager leases(Opts(store_.get()));
  constexpr int kThreads = 16;
  std::atomic<int> winners{0}, unavailable{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      auto lease = leases.Acquire("job/a/sidecars", absl::StrCat("worker-", i));
      if (lease.ok()) ++winners;
      if (lease.status().code() == absl::StatusCode::kUnavailable) ++unavailable;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(winners.load(), 1);
  EXPECT_EQ(unavailable.load(), kThreads - 1);
  ASSERT_EQ(leases.Snapshot().size(), 1u);
}

TEST_F(LeaseManagerTest, HeldLeaseNamesItsHolderAndSameHolderExtends) {
  LeaseManager leases(Opts(store_.get()));
  ASSERT_OK_AND_ASSIGN(Lease first, leases.Acquire("r", "w0"));
  EXPECT_THAT(leases.Acquire("r", "w1"), StatusIs(absl::StatusCode::kUnavailable,
                                                  HasSubstr("leased to w0")));
  clock_.Advance(absl::Seconds(20));
  ASSERT_OK_AND_ASSIGN(Lease again, leases.Acquire("r", "w0"));
  EXPECT_EQ(again.token, first.token);
  EXPECT_EQ(again.expires_at, clock_.Now() + absl::Seconds(30));
}

TEST_F(LeaseManagerTest, ExpiredLeaseIsRegrantedWithALargerToken) {
  LeaseManager leases(Opts(store_.get()));
  ASSERT_OK_AND_ASSIGN(Lease first, leases.Acquire("r", "w0"));
  clock_.Advance(absl::Seconds(31));
  EXPECT_THAT(leases.Check("r", first.token), StatusIs(absl::StatusCode::kAborted));
  ASSERT_OK_AND_ASSIGN(Lease second, leases.Acquire("r", "w1"));
  EXPECT_GT(second.token, first.token);
  EXPECT_EQ(second.holder, "w1");
  EXPECT_THAT(leases.Renew("r", first.token), StatusIs(absl::StatusCode::kAborted));
  EXPECT_OK(leases.Check("r", second.token));
}

TEST_F(LeaseManagerTest, RenewReleaseRevoke) {
  LeaseManager leases(Opts(store_.get()));
  ASSERT_OK_AND_ASSIGN(Lease lease, leases.Acquire("r", "w0", absl::Seconds(10)));
  clock_.Advance(absl::Seconds(9));
  ASSERT_OK_AND_ASSIGN(Lease renewed, leases.Renew("r", lease.token, absl::Seconds(10)));
  clock_.Advance(absl::Seconds(9));
  EXPECT_OK(leases.Check("r", renewed.token));
  EXPECT_OK(leases.Release("r", renewed.token));
  EXPECT_THAT(leases.Check("r", renewed.token), StatusIs(absl::StatusCode::kAborted));
  ASSERT_OK_AND_ASSIGN(Lease other, leases.Acquire("job/x/f1", "w1"));
  ASSERT_OK(leases.Acquire("job/x/f2", "w2").status());
  ASSERT_OK(leases.Acquire("job/y/f1", "w3").status());
  leases.RevokePrefix("job/x/");
  ASSERT_EQ(leases.Snapshot().size(), 1u);
  EXPECT_EQ(leases.Snapshot()[0].resource, "job/y/f1");
  EXPECT_THAT(leases.Check("job/x/f1", other.token), StatusIs(absl::StatusCode::kAborted));
}

TEST_F(LeaseManagerTest, DurationIsCappedAtTheMaximum) {
  LeaseManager::Options o = Opts(store_.get());
  o.max_duration = absl::Minutes(1);
  LeaseManager leases(o);
  ASSERT_OK_AND_ASSIGN(Lease lease, leases.Acquire("r", "w0", absl::Hours(5)));
  EXPECT_EQ(lease.expires_at, clock_.Now() + absl::Minutes(1));
}

TEST_F(LeaseManagerTest, TokensAreNeverReissuedSmallerAfterARestart) {
  const std::string db = ::testing::TempDir() + "/lease_tokens.db";
  std::remove(db.c_str());
  int64_t last = 0;
  {
    ASSERT_OK_AND_ASSIGN(auto store, OpenSqliteStore(db));
    LeaseManager leases(Opts(store.get()));
    for (int i = 0; i < 5; ++i) {
      ASSERT_OK_AND_ASSIGN(Lease lease, leases.Acquire(absl::StrCat("r", i), "w"));
      EXPECT_GT(lease.token, last);
      last = lease.token;
    }
  }
  // A new coordinator on the same database: the lease table is empty, the counter is not.
  ASSERT_OK_AND_ASSIGN(auto store, OpenSqliteStore(db));
  LeaseManager leases(Opts(store.get()));
  ASSERT_OK_AND_ASSIGN(Lease lease, leases.Acquire("r0", "w-new"));
  EXPECT_GT(lease.token, last);
}

}  // namespace
}  // namespace mxport::coordinator
