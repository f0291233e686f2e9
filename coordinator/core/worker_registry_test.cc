#include "coordinator/core/worker_registry.h"

#include <set>

#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace mxport::coordinator {
namespace {

using ::mxport::testing::StatusIs;

class WorkerRegistryTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  WorkerRegistry registry_{{&clock_, absl::Seconds(15), absl::Seconds(60)}};
};

TEST_F(WorkerRegistryTest, MissedHeartbeatsMakeAWorkerLost) {
  registry_.Register("j", 0, "10.0.0.1:7000", "host-a", 0);
  registry_.Register("j", 1, "10.0.0.2:7000", "host-b", 0);
  clock_.Advance(absl::Seconds(10));
  ASSERT_OK(registry_.Heartbeat("j", 0, 0, 100, "scanning"));
  clock_.Advance(absl::Seconds(10));  // worker 1 silent for 20 s > 15 s
  auto changes = registry_.Sweep();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].worker.index, 1);
  EXPECT_EQ(changes[0].to, WorkerState::kLost);
  EXPECT_THAT(registry_.Heartbeat("j", 1, 0, 100, ""),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  // It comes back: a new session, healthy again.
  WorkerInfo back = registry_.Register("j", 1, "10.0.0.9:7000", "host-c", 0);
  EXPECT_EQ(back.state, WorkerState::kHealthy);
  EXPECT_TRUE(registry_.Sweep().empty());
}

TEST_F(WorkerRegistryTest, FlatProgressWithHeartbeatsIsStuckNotLost) {
  registry_.Register("j", 0, "", "", -1);
  // Bytes move at t=10 s, then stay flat for 70 s (> 60 s) while heartbeats keep coming.
  for (int i = 0; i < 8; ++i) {
    clock_.Advance(absl::Seconds(10));
    ASSERT_OK(registry_.Heartbeat("j", 0, 500, 1000, "writing"));
  }
  auto changes = registry_.Sweep();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].to, WorkerState::kStuck);
  ASSERT_OK(registry_.Heartbeat("j", 0, 600, 1000, "writing"));
  EXPECT_EQ(registry_.Workers("j")[0].state, WorkerState::kHealthy);
  // Finished work is never stuck.
  ASSERT_OK(registry_.Heartbeat("j", 0, 1000, 1000, "done"));
  clock_.Advance(absl::Minutes(5));
  for (int i = 0; i < 3; ++i) ASSERT_OK(registry_.Heartbeat("j", 0, 1000, 1000, "done"));
  EXPECT_TRUE(registry_.Sweep().empty());
}

TEST(AssignShardsTest, FewerWorkersThanShards) {
  // 4 workers over 10 shards: every shard once, worker w takes w, w+4, w+8.
  std::multiset<int64_t> seen;
  for (int w = 0; w < 4; ++w) {
    for (const ShardAssignment& a : AssignShards(w, 4, 10)) {
      EXPECT_EQ(a.shard % 4, w);
      EXPECT_EQ(a.replicas, 1);
      seen.insert(a.shard);
    }
  }
  EXPECT_EQ(seen, (std::multiset<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST(AssignShardsTest, MoreWorkersThanShardsSplitAsReplicas) {
  // 7 workers over 3 shards: shard 0 has workers 0,3,6; shards 1 and 2 have two each.
  std::map<int64_t, std::set<int64_t>> replicas_of;
  for (int w = 0; w < 7; ++w) {
    auto a = AssignShards(w, 7, 3);
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0].shard, w % 3);
    EXPECT_EQ(a[0].replicas, w % 3 == 0 ? 3 : 2);
    replicas_of[a[0].shard].insert(a[0].replica);
  }
  EXPECT_EQ(replicas_of[0], (std::set<int64_t>{0, 1, 2}));
  EXPECT_EQ(replicas_of[1], (std::set<int64_t>{0, 1}));
  EXPECT_TRUE(AssignShards(7, 7, 3).empty());
}

TEST(ThroughputMeterTest, RateAndEta) {
  ThroughputMeter meter(absl::Seconds(10));
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  EXPECT_EQ(meter.Eta(100), absl::InfiniteDuration());
  meter.Observe(t0, 0);
  for (int i = 1; i <= 30; ++i) meter.Observe(t0 + absl::Seconds(i), uint64_t(i) * 1000);
  EXPECT_DOUBLE_EQ(meter.bytes_per_second(), 1000.0);
  EXPECT_EQ(meter.Eta(50000), absl::Seconds(20));
}

}  // namespace
}  // namespace mxport::coordinator
