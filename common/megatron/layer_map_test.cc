// LayerMap: (vp, pp, local layer) <-> global layer, vp-major then pp-minor, checked against
// what the args say each chunk holds.
#include "common/megatron/layer_map.h"

#include <cstdint>
#include <vector>

#include "common/megatron/ids.h"
#include "common/megatron/model_config.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mxport::megatron {
namespace {

using ::mxport::testing::IsOkAndHolds;
using ::mxport::testing::StatusIs;
using ::testing::Eq;
using ::testing::HasSubstr;

ModelConfig Layout(int64_t num_layers, int64_t pp, int64_t vpp = 1, int64_t first = 0,
                   int64_t last = 0) {
  ModelConfig c;
  c.num_layers = num_layers;
  c.pp = pp;
  c.vpp = vpp;
  c.first_stage_layers = first;
  c.last_stage_layers = last;
  return c;
}

struct Expect {
  int64_t vp, pp, local, global;
};

void ExpectMapping(const LayerMap& map, const std::vector<Expect>& cases) {
  for (const Expect& e : cases) {
    SCOPED_TRACE(::testing::Message() << "vp" << e.vp << " pp" << e.pp << " local " << e.local);
    EXPECT_THAT(map.ToGlobal(VpRank(e.vp), PpRank(e.pp), LocalLayer(e.local)),
                IsOkAndHolds(Eq(GlobalLayer(e.global))));
    ASSERT_OK_AND_ASSIGN(LayerMap::Location loc, map.ToLocal(GlobalLayer(e.global)));
    EXPECT_EQ(loc.vp, VpRank(e.vp));
    EXPECT_EQ(loc.pp, PpRank(e.pp));
    EXPECT_EQ(loc.local, LocalLayer(e.local));
  }
}

TEST(LayerMapTest, EvenSplit) {
  ASSERT_OK_AND_ASSIGN(LayerMap map, LayerMap::Create(Layout(8, 4), {2, 2, 2, 2}));
  EXPECT_EQ(map.num_layers(), 8);
  ExpectMapping(map, {{0, 0, 0, 0}, {0, 0, 1, 1}, {0, 1, 0, 2}, {0, 1, 1, 3},
                      {0, 2, 0, 4}, {0, 2, 1, 5}, {0, 3, 0, 6}, {0, 3, 1, 7}});
}

TEST(LayerMapTest, NoPipelineIsTheIdentity) {
  ASSERT_OK_AND_ASSIGN(LayerMap map, LayerMap::Create(Layout(3, 1), {3}));
  ExpectMapping(map, {{0, 0, 0, 0}, {0, 0, 1, 1}, {0, 0, 2, 2}});
}

TEST(LayerMapTest, UnevenFirstAndLastStages) {
  // 10 layers over 4 stages: first 1, last 3, the middle two share the remaining 6.
  ASSERT_OK_AND_ASSIGN(LayerMap map, LayerMap::Create(Layout(10, 4, 1, 1, 3), {1, 3, 3, 3}));
  EXPECT_EQ(map.num_layers(), 10);
  ExpectMapping(map, {{0, 0, 0, 0}, {0, 1, 0, 1}, {0, 1, 2, 3}, {0, 2, 0, 4},
                      {0, 2, 2, 6}, {0, 3, 0, 7}, {0, 3, 2, 9}});
}

TEST(LayerMapTest, UnevenFirstStageOnly) {
  ASSERT_OK_AND_ASSIGN(LayerMap map, LayerMap::Create(Layout(7, 3, 1, 1, 0), {1, 3, 3}));
  ExpectMapping(map, {{0, 0, 0, 0}, {0, 1, 0, 1}, {0, 2, 0, 4}, {0, 2, 2, 6}});
}

TEST(LayerMapTest, VirtualStagesAreVpMajorPpMinor) {
  // L=8, PP=2, VPP=2: (vp0,pp0) 0-1, (vp0,pp1) 2-3, (vp1,pp0) 4-5, (vp1,pp1) 6-7.
  ASSERT_OK_AND_ASSIGN(LayerMap map, LayerMap::Create(Layout(8, 2, 2), {2, 2, 2, 2}));
  ExpectMapping(map, {{0, 0, 0, 0}, {0, 0, 1, 1}, {0, 1, 0, 2}, {0, 1, 1, 3},
                      {1, 0, 0, 4}, {1, 0, 1, 5}, {1, 1, 0, 6}, {1, 1, 1, 7}});
}

TEST(LayerMapTest, VirtualStagesWithFourStages) {
  // L=16, PP=4, VPP=2: 2 layers per chunk; chunk (vp, pp) starts at vp*8 + pp*2.
  ASSERT_OK_AND_ASSIGN(LayerMap map,
                       LayerMap::Create(Layout(16, 4, 2), std::vector<int64_t>(8, 2)));
  for (int64_t vp = 0; vp < 2; ++vp) {
    for (int64_t pp = 0; pp < 4; ++pp) {
      for (int64_t local = 0; local < 2; ++local) {
        EXPECT_THAT(map.ToGlobal(VpRank(vp), PpRank(pp), LocalLayer(local)),
                    IsOkAndHolds(Eq(GlobalLayer(vp * 8 + pp * 2 + local))));
      }
    }
  }
}

TEST(LayerMapTest, ToLocalInvertsToGlobalForEveryLayer) {
  ASSERT_OK_AND_ASSIGN(LayerMap map, LayerMap::Create(Layout(12, 3, 2), std::vector<int64_t>(6, 2)));
  for (int64_t g = 0; g < 12; ++g) {
    ASSERT_OK_AND_ASSIGN(LayerMap::Location loc, map.ToLocal(GlobalLayer(g)));
    EXPECT_THAT(map.ToGlobal(loc.vp, loc.pp, loc.local), IsOkAndHolds(Eq(GlobalLayer(g))));
  }
  EXPECT_THAT(map.ToLocal(GlobalLayer(12)),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("no global layer 12")));
  EXPECT_THAT(map.ToLocal(GlobalLayer(-1)), StatusIs(absl::StatusCode::kOutOfRange));
}

TEST(LayerMapTest, ToGlobalOutsideAChunkIsOutOfRange) {
  ASSERT_OK_AND_ASSIGN(LayerMap map, LayerMap::Create(Layout(8, 2, 2), {2, 2, 2, 2}));
  struct Case {
    int64_t vp, pp, local;
  };
  const Case cases[] = {{0, 0, 2}, {0, 0, -1}, {0, 2, 0}, {0, -1, 0},
                        {2, 0, 0}, {-1, 1, 0}, {1, 1, 2}};
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << "vp" << c.vp << " pp" << c.pp << " local " << c.local);
    EXPECT_THAT(map.ToGlobal(VpRank(c.vp), PpRank(c.pp), LocalLayer(c.local)),
                StatusIs(absl::StatusCode::kOutOfRange));
  }
}

TEST(LayerMapTest, MismatchedCountNamesTheChunk) {
  EXPECT_THAT(LayerMap::Create(Layout(8, 4), {2, 3, 1, 2}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("pipeline chunk vp0 pp1 holds 3 layers, but the args say it "
                                 "should hold 2")));
  EXPECT_THAT(LayerMap::Create(Layout(8, 2, 2), {2, 2, 1, 3}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("pipeline chunk vp1 pp0 holds 1 layers")));
  EXPECT_THAT(LayerMap::Create(Layout(10, 4, 1, 1, 3), {2, 3, 3, 2}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("chunk vp0 pp0 holds 2")));
}

TEST(LayerMapTest, WrongNumberOfChunks) {
  EXPECT_THAT(LayerMap::Create(Layout(8, 4), {4, 4}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("found layers for 2 pipeline chunks, args describe 4")));
  EXPECT_THAT(LayerMap::Create(Layout(8, 2, 2), {4, 4}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("args describe 4")));
}

TEST(LayerMapTest, ConfigErrorsPropagate) {
  EXPECT_THAT(LayerMap::Create(Layout(8, 2, 2, 1, 0), {1, 3, 2, 2}),
              StatusIs(absl::StatusCode::kUnimplemented));
  EXPECT_THAT(LayerMap::Create(Layout(7, 2), {3, 4}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("do not split")));
}

}  // namespace
}  // namespace mxport::megatron
