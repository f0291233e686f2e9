// ExpertMap: the (EP rank, local slot) <-> global expert conversion and its validation.
// The PR #1631 regression (keys rendered for every rank are disjoint and cover all experts)
// lives in common/export/naming_rules_test.cc, since it needs the naming rules.
#include "common/megatron/expert_map.h"

#include <cstdint>
#include <utility>
#include <vector>

#include "common/megatron/ids.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mxport::megatron {
namespace {

using ::mxport::testing::IsOkAndHolds;
using ::mxport::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::Eq;
using ::testing::HasSubstr;
using ::testing::Pair;

std::vector<GlobalExpert> Globals(std::vector<int64_t> ids) {
  std::vector<GlobalExpert> out;
  for (int64_t id : ids) out.push_back(GlobalExpert(id));
  return out;
}

TEST(ExpertMapTest, ContiguousGivesEachRankAConsecutiveBlock) {
  ASSERT_OK_AND_ASSIGN(ExpertMap map, ExpertMap::Contiguous(8, 4));
  EXPECT_EQ(map.num_global(), 8);
  EXPECT_EQ(map.ep_size(), 4);
  EXPECT_EQ(map.experts_per_rank(), 2);
  struct Case {
    int64_t rank, local, global;
  };
  const Case cases[] = {{0, 0, 0}, {0, 1, 1}, {1, 0, 2}, {1, 1, 3},
                        {2, 0, 4}, {2, 1, 5}, {3, 0, 6}, {3, 1, 7}};
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << "rank " << c.rank << " local " << c.local);
    EXPECT_THAT(map.ToGlobal(EpRank(c.rank), LocalExpert(c.local)),
                IsOkAndHolds(Eq(GlobalExpert(c.global))));
    EXPECT_THAT(map.Owner(GlobalExpert(c.global)),
                IsOkAndHolds(Pair(EpRank(c.rank), LocalExpert(c.local))));
  }
  EXPECT_EQ(map.LocalExperts(EpRank(0)), Globals({0, 1}));
  EXPECT_EQ(map.LocalExperts(EpRank(2)), Globals({4, 5}));
  EXPECT_EQ(map.LocalExperts(EpRank(3)), Globals({6, 7}));
}

TEST(ExpertMapTest, ContiguousWithOneRankIsTheIdentity) {
  ASSERT_OK_AND_ASSIGN(ExpertMap map, ExpertMap::Contiguous(5, 1));
  EXPECT_EQ(map.experts_per_rank(), 5);
  for (int64_t j = 0; j < 5; ++j) {
    EXPECT_THAT(map.ToGlobal(EpRank(0), LocalExpert(j)), IsOkAndHolds(Eq(GlobalExpert(j))));
  }
}

TEST(ExpertMapTest, ContiguousRejectsImpossibleSizes) {
  struct Case {
    int64_t num_global, ep_size;
  };
  const Case cases[] = {{0, 1}, {-8, 2}, {8, 0}, {8, -2}, {8, 3}, {2, 4}};
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << c.num_global << " over " << c.ep_size);
    EXPECT_THAT(ExpertMap::Contiguous(c.num_global, c.ep_size),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cannot be split")));
  }
}

TEST(ExpertMapTest, FromExplicitAcceptsANonContiguousPlacement) {
  // Round-robin: rank 0 holds the even experts, rank 1 the odd ones.
  ASSERT_OK_AND_ASSIGN(ExpertMap map, ExpertMap::FromExplicit({{0, 2, 4}, {1, 3, 5}}, 6));
  EXPECT_EQ(map.ep_size(), 2);
  EXPECT_EQ(map.experts_per_rank(), 3);
  EXPECT_THAT(map.ToGlobal(EpRank(0), LocalExpert(1)), IsOkAndHolds(Eq(GlobalExpert(2))));
  EXPECT_THAT(map.ToGlobal(EpRank(1), LocalExpert(0)), IsOkAndHolds(Eq(GlobalExpert(1))));
  EXPECT_THAT(map.ToGlobal(EpRank(1), LocalExpert(2)), IsOkAndHolds(Eq(GlobalExpert(5))));
  EXPECT_THAT(map.Owner(GlobalExpert(3)), IsOkAndHolds(Pair(EpRank(1), LocalExpert(1))));
  EXPECT_THAT(map.Owner(GlobalExpert(4)), IsOkAndHolds(Pair(EpRank(0), LocalExpert(2))));
  EXPECT_EQ(map.LocalExperts(EpRank(1)), Globals({1, 3, 5}));
  // Slots need not be sorted either.
  ASSERT_OK_AND_ASSIGN(ExpertMap reversed, ExpertMap::FromExplicit({{3, 2}, {1, 0}}, 4));
  EXPECT_THAT(reversed.ToGlobal(EpRank(0), LocalExpert(0)), IsOkAndHolds(Eq(GlobalExpert(3))));
  EXPECT_THAT(reversed.Owner(GlobalExpert(0)), IsOkAndHolds(Pair(EpRank(1), LocalExpert(1))));
}

TEST(ExpertMapTest, FromExplicitRejectsADuplicateNamingBothOwners) {
  EXPECT_THAT(
      ExpertMap::FromExplicit({{0, 1}, {1, 3}}, 4),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("global expert 1"), HasSubstr("EP rank 0 (local 1)"),
                     HasSubstr("EP rank 1 (local 0)"))));
  // A duplicate within one rank.
  EXPECT_THAT(ExpertMap::FromExplicit({{2, 2}, {0, 1}}, 4),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("global expert 2"), HasSubstr("EP rank 0 (local 0)"),
                             HasSubstr("EP rank 0 (local 1)"))));
}

TEST(ExpertMapTest, FromExplicitRejectsAnOutOfRangeId) {
  EXPECT_THAT(ExpertMap::FromExplicit({{0, 4}, {1, 2}}, 4),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("EP rank 0 local expert 1"),
                             HasSubstr("global expert 4"), HasSubstr("outside [0, 4)"))));
  EXPECT_THAT(ExpertMap::FromExplicit({{0, 1}, {-1, 2}}, 3),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("EP rank 1 local expert 0"),
                             HasSubstr("global expert -1"))));
}

TEST(ExpertMapTest, FromExplicitRejectsAnUnownedId) {
  EXPECT_THAT(ExpertMap::FromExplicit({{0, 1}, {2, 3}}, 5),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("global expert 4 is owned by no EP rank")));
  EXPECT_THAT(ExpertMap::FromExplicit({{}, {}}, 2),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("global expert 0 is owned by no EP rank")));
}

TEST(ExpertMapTest, FromExplicitRejectsUnequalCounts) {
  EXPECT_THAT(ExpertMap::FromExplicit({{0, 1}, {2}}, 3),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("EP rank 1 owns 1 experts, rank 0 owns 2")));
}

TEST(ExpertMapTest, FromExplicitRejectsAnEmptyMap) {
  EXPECT_THAT(ExpertMap::FromExplicit({}, 4), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ExpertMap::FromExplicit({{0}}, 0), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ExpertMapTest, ToGlobalAndOwnerOutsideTheMapAreOutOfRange) {
  ASSERT_OK_AND_ASSIGN(ExpertMap map, ExpertMap::Contiguous(8, 4));
  struct Case {
    int64_t rank, local;
  };
  const Case cases[] = {{-1, 0}, {4, 0}, {0, -1}, {0, 2}, {3, 2}, {100, 100}};
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << "rank " << c.rank << " local " << c.local);
    EXPECT_THAT(map.ToGlobal(EpRank(c.rank), LocalExpert(c.local)),
                StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("4 ranks of 2")));
  }
  EXPECT_THAT(map.Owner(GlobalExpert(-1)), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(map.Owner(GlobalExpert(8)),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("no global expert 8")));
}

TEST(ExpertMapTest, OwnerInvertsToGlobalForEveryExpert) {
  ASSERT_OK_AND_ASSIGN(ExpertMap map,
                       ExpertMap::FromExplicit({{5, 0, 7}, {2, 6, 1}, {4, 8, 3}}, 9));
  for (int64_t r = 0; r < map.ep_size(); ++r) {
    for (int64_t j = 0; j < map.experts_per_rank(); ++j) {
      ASSERT_OK_AND_ASSIGN(GlobalExpert g, map.ToGlobal(EpRank(r), LocalExpert(j)));
      EXPECT_THAT(map.Owner(g), IsOkAndHolds(Pair(EpRank(r), LocalExpert(j))));
    }
  }
}

}  // namespace
}  // namespace mxport::megatron
