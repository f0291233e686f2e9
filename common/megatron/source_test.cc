// Discovery of a legacy checkpoint's iteration and rank directories on a MemoryFileSystem, and
// resolving rank directory numbers into (tp, pp, ep). Scanning real rank files is covered by
// the fixture test (common/export/export_fixture_test.cc).
#include "common/megatron/source.h"

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "common/fs/file_system.h"
#include "common/fs/fs_testutil.h"
#include "common/fs/memory_file_system.h"
#include "common/megatron/ids.h"
#include "common/megatron/model_config.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mxport::megatron {
namespace {

using ::mxport::fs::testutil::WriteString;
using ::mxport::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

constexpr char kTracker[] = "/ckpt/latest_checkpointed_iteration.txt";

class DiscoverTest : public ::testing::Test {
 protected:
  // Makes `iteration_dir` with one rank dir (holding model_optim_rng.pt) per name.
  void MakeRanks(const std::string& iteration_dir, const std::vector<std::string>& names) {
    for (const std::string& name : names) {
      ASSERT_OK(fs_->CreateDirs(iteration_dir + "/" + name));
      ASSERT_OK(WriteString(*fs_, iteration_dir + "/" + name + "/model_optim_rng.pt", "pt"));
    }
  }
  void MakeTracker(const std::string& text) {
    ASSERT_OK(fs_->CreateDirs("/ckpt"));
    ASSERT_OK(WriteString(*fs_, kTracker, text));
  }
  static std::vector<std::string> DirNames(const LegacyCheckpoint& c) {
    std::vector<std::string> out;
    for (const RankFile& f : c.files) out.push_back(f.dir_name);
    return out;
  }

  std::unique_ptr<fs::MemoryFileSystem> fs_ = fs::NewMemoryFileSystem();
};

TEST_F(DiscoverTest, TrackerWithAnIteration) {
  MakeTracker("1000\n");
  MakeRanks("/ckpt/iter_0001000", {"mp_rank_01", "mp_rank_00"});
  MakeRanks("/ckpt/iter_0000500", {"mp_rank_00"});  // an older save, not chosen
  ASSERT_OK_AND_ASSIGN(LegacyCheckpoint c, DiscoverLegacyCheckpoint(*fs_, "/ckpt"));
  EXPECT_EQ(c.iteration_dir, "/ckpt/iter_0001000");
  EXPECT_EQ(c.iteration, 1000);
  ASSERT_EQ(c.files.size(), 2u);
  EXPECT_EQ(c.files[0].dir_name, "mp_rank_00");
  EXPECT_EQ(c.files[0].path, "/ckpt/iter_0001000/mp_rank_00/model_optim_rng.pt");
  EXPECT_THAT(c.files[0].numbers, ElementsAre(0));
  EXPECT_EQ(c.files[1].dir_name, "mp_rank_01");
  EXPECT_EQ(c.files[1].path, "/ckpt/iter_0001000/mp_rank_01/model_optim_rng.pt");
  EXPECT_THAT(c.files[1].numbers, ElementsAre(1));
}

TEST_F(DiscoverTest, TrackerTextIsTrimmed) {
  MakeTracker("  7 \n\n");
  MakeRanks("/ckpt/iter_0000007", {"mp_rank_00"});
  ASSERT_OK_AND_ASSIGN(LegacyCheckpoint c, DiscoverLegacyCheckpoint(*fs_, "/ckpt/"));
  EXPECT_EQ(c.iteration_dir, "/ckpt/iter_0000007");
  EXPECT_EQ(c.iteration, 7);
}

TEST_F(DiscoverTest, TrackerWithRelease) {
  MakeTracker("release\n");
  MakeRanks("/ckpt/release", {"mp_rank_00_000", "mp_rank_00_001"});
  ASSERT_OK_AND_ASSIGN(LegacyCheckpoint c, DiscoverLegacyCheckpoint(*fs_, "/ckpt"));
  EXPECT_EQ(c.iteration_dir, "/ckpt/release");
  EXPECT_FALSE(c.iteration.has_value());
  EXPECT_THAT(DirNames(c), ElementsAre("mp_rank_00_000", "mp_rank_00_001"));
  EXPECT_THAT(c.files[1].numbers, ElementsAre(0, 1));
}

TEST_F(DiscoverTest, BadTrackerText) {
  for (const char* text : {"abc", "-5", "", "12abc", "iter_0000010", "1.5"}) {
    SCOPED_TRACE(text);
    MakeTracker(text);
    EXPECT_THAT(DiscoverLegacyCheckpoint(*fs_, "/ckpt"),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         AllOf(HasSubstr(kTracker),
                               HasSubstr("expected an iteration number or 'release'"))));
  }
}

TEST_F(DiscoverTest, IterationOverridesTheTracker) {
  MakeTracker("1000");
  MakeRanks("/ckpt/iter_0001000", {"mp_rank_00"});
  MakeRanks("/ckpt/iter_0000500", {"mp_rank_00", "mp_rank_01"});
  ASSERT_OK_AND_ASSIGN(LegacyCheckpoint c, DiscoverLegacyCheckpoint(*fs_, "/ckpt", 500));
  EXPECT_EQ(c.iteration_dir, "/ckpt/iter_0000500");
  EXPECT_EQ(c.iteration, 500);
  EXPECT_THAT(DirNames(c), ElementsAre("mp_rank_00", "mp_rank_01"));
  // Works without a tracker too.
  ASSERT_OK(fs_->Delete(kTracker));
  ASSERT_OK_AND_ASSIGN(LegacyCheckpoint no_tracker, DiscoverLegacyCheckpoint(*fs_, "/ckpt", 1000));
  EXPECT_EQ(no_tracker.iteration_dir, "/ckpt/iter_0001000");
}

TEST_F(DiscoverTest, IterationOverrideOfAMissingIteration) {
  MakeTracker("1000");
  MakeRanks("/ckpt/iter_0001000", {"mp_rank_00"});
  EXPECT_THAT(DiscoverLegacyCheckpoint(*fs_, "/ckpt", 42),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("iteration directory /ckpt/iter_0000042 is missing")));
}

TEST_F(DiscoverTest, TrackerNamesAMissingIteration) {
  MakeTracker("3");
  EXPECT_THAT(DiscoverLegacyCheckpoint(*fs_, "/ckpt"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/ckpt/iter_0000003")));
}

TEST_F(DiscoverTest, IterationDirPassedDirectly) {
  MakeTracker("1000");
  MakeRanks("/ckpt/iter_0000500", {"mp_rank_00_000", "mp_rank_01_000"});
  ASSERT_OK_AND_ASSIGN(LegacyCheckpoint c, DiscoverLegacyCheckpoint(*fs_, "/ckpt/iter_0000500"));
  EXPECT_EQ(c.iteration_dir, "/ckpt/iter_0000500");
  EXPECT_FALSE(c.iteration.has_value());
  EXPECT_THAT(DirNames(c), ElementsAre("mp_rank_00_000", "mp_rank_01_000"));
  EXPECT_EQ(c.files[1].path, "/ckpt/iter_0000500/mp_rank_01_000/model_optim_rng.pt");
}

TEST_F(DiscoverTest, RankDirWithoutModelFile) {
  MakeTracker("10");
  MakeRanks("/ckpt/iter_0000010", {"mp_rank_00"});
  ASSERT_OK(fs_->CreateDirs("/ckpt/iter_0000010/mp_rank_01"));
  ASSERT_OK(WriteString(*fs_, "/ckpt/iter_0000010/mp_rank_01/distrib_optim.pt", "x"));
  EXPECT_THAT(DiscoverLegacyCheckpoint(*fs_, "/ckpt"),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr("rank directory mp_rank_01 has no model_optim_rng.pt"),
                             HasSubstr("/ckpt/iter_0000010/mp_rank_01/model_optim_rng.pt"))));
}

TEST_F(DiscoverTest, IterationDirWithoutRankDirs) {
  MakeTracker("10");
  ASSERT_OK(fs_->CreateDirs("/ckpt/iter_0000010/not_a_rank"));
  ASSERT_OK(WriteString(*fs_, "/ckpt/iter_0000010/metadata.json", "{}"));
  EXPECT_THAT(DiscoverLegacyCheckpoint(*fs_, "/ckpt"),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("/ckpt/iter_0000010: no mp_rank_* rank directories")));
}

TEST_F(DiscoverTest, NotACheckpoint) {
  ASSERT_OK(fs_->CreateDirs("/empty"));
  EXPECT_THAT(DiscoverLegacyCheckpoint(*fs_, "/empty"),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr("not a Megatron checkpoint"),
                             HasSubstr("latest_checkpointed_iteration.txt"))));
  EXPECT_THAT(DiscoverLegacyCheckpoint(*fs_, "/nowhere"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nowhere")));
}

TEST_F(DiscoverTest, NamesThatAreNotRankDirsAreIgnored) {
  MakeTracker("1");
  MakeRanks("/ckpt/iter_0000001",
            {"mp_rank_00", "mp_rank_", "mp_rank_01_", "mp_rank_ab", "mp_rank_00_000_000_000",
             "mp_rank_00__001", "xmp_rank_00", "rank_00"});
  ASSERT_OK_AND_ASSIGN(LegacyCheckpoint c, DiscoverLegacyCheckpoint(*fs_, "/ckpt"));
  EXPECT_THAT(DirNames(c), ElementsAre("mp_rank_00"));
}

TEST_F(DiscoverTest, ThreeNumberRankDirs) {
  MakeTracker("2");
  MakeRanks("/ckpt/iter_0000002", {"mp_rank_01_002_003", "mp_rank_00_000_000"});
  ASSERT_OK_AND_ASSIGN(LegacyCheckpoint c, DiscoverLegacyCheckpoint(*fs_, "/ckpt"));
  ASSERT_EQ(c.files.size(), 2u);
  EXPECT_THAT(c.files[0].numbers, ElementsAre(0, 0, 0));
  EXPECT_THAT(c.files[1].numbers, ElementsAre(1, 2, 3));
}

// ResolveRanks.

ModelConfig Parallel(int64_t tp, int64_t pp, int64_t ep) {
  ModelConfig c;
  c.tp = tp;
  c.pp = pp;
  c.ep = ep;
  return c;
}

LegacyCheckpoint Files(const std::vector<std::pair<std::string, std::vector<int64_t>>>& dirs) {
  LegacyCheckpoint c;
  c.iteration_dir = "/ckpt/iter_0000001";
  for (const auto& [name, numbers] : dirs) {
    RankFile f;
    f.dir_name = name;
    f.path = c.iteration_dir + "/" + name + "/model_optim_rng.pt";
    f.numbers = numbers;
    c.files.push_back(f);
  }
  return c;
}

struct Rank {
  std::string dir;
  int64_t tp, pp, ep;
  bool operator==(const Rank&) const = default;
  friend std::ostream& operator<<(std::ostream& os, const Rank& r) {
    return os << r.dir << "(tp" << r.tp << " pp" << r.pp << " ep" << r.ep << ")";
  }
};

std::vector<Rank> Ranks(const LegacyCheckpoint& c) {
  std::vector<Rank> out;
  for (const RankFile& f : c.files) {
    out.push_back({f.dir_name, f.tp.value(), f.pp.value(), f.ep.value()});
  }
  return out;
}

TEST(ResolveRanksTest, TpOnly) {
  LegacyCheckpoint c = Files({{"mp_rank_00", {0}}, {"mp_rank_01", {1}}});
  ASSERT_OK(ResolveRanks(Parallel(2, 1, 1), c));
  EXPECT_THAT(Ranks(c), ElementsAre(Rank{"mp_rank_00", 0, 0, 0}, Rank{"mp_rank_01", 1, 0, 0}));
}

TEST(ResolveRanksTest, SecondNumberIsPpWithPipelineOnly) {
  LegacyCheckpoint c = Files({{"mp_rank_00_000", {0, 0}}, {"mp_rank_00_001", {0, 1}}});
  ASSERT_OK(ResolveRanks(Parallel(1, 2, 1), c));
  EXPECT_THAT(Ranks(c), ElementsAre(Rank{"mp_rank_00_000", 0, 0, 0},
                                    Rank{"mp_rank_00_001", 0, 1, 0}));
}

TEST(ResolveRanksTest, SecondNumberIsEpWithExpertsOnly) {
  // TP2/PP1/EP4 writes mp_rank_01_003 for tp=1 ep=3.
  LegacyCheckpoint c = Files({{"mp_rank_00_002", {0, 2}}, {"mp_rank_01_003", {1, 3}}});
  ASSERT_OK(ResolveRanks(Parallel(2, 1, 4), c));
  EXPECT_THAT(Ranks(c), ElementsAre(Rank{"mp_rank_00_002", 0, 0, 2},
                                    Rank{"mp_rank_01_003", 1, 0, 3}));
}

TEST(ResolveRanksTest, ThreeNumbersAreTpPpEp) {
  LegacyCheckpoint c = Files({{"mp_rank_01_002_003", {1, 2, 3}}});
  ASSERT_OK(ResolveRanks(Parallel(2, 4, 4), c));
  EXPECT_THAT(Ranks(c), ElementsAre(Rank{"mp_rank_01_002_003", 1, 2, 3}));
}

TEST(ResolveRanksTest, SortsByPpThenEpThenTp) {
  // Listed by name (tp-major), as discovery returns them.
  LegacyCheckpoint c = Files({
      {"mp_rank_00_000_000", {0, 0, 0}}, {"mp_rank_00_000_001", {0, 0, 1}},
      {"mp_rank_00_001_000", {0, 1, 0}}, {"mp_rank_00_001_001", {0, 1, 1}},
      {"mp_rank_01_000_000", {1, 0, 0}}, {"mp_rank_01_000_001", {1, 0, 1}},
      {"mp_rank_01_001_000", {1, 1, 0}}, {"mp_rank_01_001_001", {1, 1, 1}},
  });
  ASSERT_OK(ResolveRanks(Parallel(2, 2, 2), c));
  EXPECT_THAT(Ranks(c), ElementsAreArray({
                            Rank{"mp_rank_00_000_000", 0, 0, 0},
                            Rank{"mp_rank_01_000_000", 1, 0, 0},
                            Rank{"mp_rank_00_000_001", 0, 0, 1},
                            Rank{"mp_rank_01_000_001", 1, 0, 1},
                            Rank{"mp_rank_00_001_000", 0, 1, 0},
                            Rank{"mp_rank_01_001_000", 1, 1, 0},
                            Rank{"mp_rank_00_001_001", 0, 1, 1},
                            Rank{"mp_rank_01_001_001", 1, 1, 1},
                        }));
  // The paths travel with their files.
  EXPECT_EQ(c.files[1].path, "/ckpt/iter_0000001/mp_rank_01_000_000/model_optim_rng.pt");
}

TEST(ResolveRanksTest, WrongNumberCount) {
  struct Case {
    ModelConfig config;
    std::string dir;
    std::vector<int64_t> numbers;
    const char* message;
  };
  const Case cases[] = {
      {Parallel(1, 2, 1), "mp_rank_00", {0}, "has 1 numbers, but TP=1 PP=2 EP=1"},
      {Parallel(1, 1, 1), "mp_rank_00_000", {0, 0}, "names rank directories with 1"},
      {Parallel(2, 2, 2), "mp_rank_00_000", {0, 0}, "names rank directories with 3"},
      {Parallel(2, 1, 4), "mp_rank_00_000_000", {0, 0, 0}, "names rank directories with 2"},
  };
  for (const Case& t : cases) {
    SCOPED_TRACE(t.message);
    LegacyCheckpoint c = Files({{t.dir, t.numbers}});
    EXPECT_THAT(ResolveRanks(t.config, c),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         AllOf(HasSubstr("rank directory " + t.dir), HasSubstr(t.message))));
  }
}

TEST(ResolveRanksTest, RankOutsideTheLayout) {
  struct Case {
    ModelConfig config;
    std::string dir;
    std::vector<int64_t> numbers;
  };
  const Case cases[] = {
      {Parallel(2, 1, 1), "mp_rank_02", {2}},
      {Parallel(1, 2, 1), "mp_rank_00_002", {0, 2}},
      {Parallel(1, 1, 4), "mp_rank_00_004", {0, 4}},
      {Parallel(2, 2, 2), "mp_rank_01_001_002", {1, 1, 2}},
  };
  for (const Case& t : cases) {
    SCOPED_TRACE(t.dir);
    LegacyCheckpoint c = Files({{"first", std::vector<int64_t>(t.numbers.size(), 0)},
                                {t.dir, t.numbers}});
    EXPECT_THAT(ResolveRanks(t.config, c),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         AllOf(HasSubstr("rank directory " + t.dir), HasSubstr("lies outside"))));
  }
}

TEST(ResolveRanksTest, DiscoveredThenResolved) {
  auto fs = fs::NewMemoryFileSystem();
  for (const char* name : {"mp_rank_00_001", "mp_rank_01_000", "mp_rank_00_000", "mp_rank_01_001"}) {
    const std::string dir = std::string("/it/") + name;
    ASSERT_OK(fs->CreateDirs(dir));
    ASSERT_OK(WriteString(*fs, dir + "/model_optim_rng.pt", ""));
  }
  ASSERT_OK_AND_ASSIGN(LegacyCheckpoint c, DiscoverLegacyCheckpoint(*fs, "/it"));
  ASSERT_OK(ResolveRanks(Parallel(2, 1, 2), c));
  EXPECT_THAT(Ranks(c), ElementsAre(Rank{"mp_rank_00_000", 0, 0, 0},
                                    Rank{"mp_rank_01_000", 1, 0, 0},
                                    Rank{"mp_rank_00_001", 0, 0, 1},
                                    Rank{"mp_rank_01_001", 1, 0, 1}));
}

TEST(ModelChunkKeyTest, OnlyVirtualStagesAreNumbered) {
  EXPECT_EQ(ModelChunkKey(1, 0), "model");
  EXPECT_EQ(ModelChunkKey(2, 0), "model0");
  EXPECT_EQ(ModelChunkKey(2, 1), "model1");
  EXPECT_EQ(ModelChunkKey(4, 3), "model3");
}

}  // namespace
}  // namespace mxport::megatron
