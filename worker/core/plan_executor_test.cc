// The distributed execution of a plan by W in-process workers over loopback and TCP transports
// must produce exactly the files of the single-process executor, for fewer and more workers
// than source files, with chunking, and must skip files committed earlier.
#include <map>
#include <thread>

#include "common/export/checkpoint_planner.h"
#include "common/export/local_executor.h"
#include "common/export/quantize_plan.h"
#include "common/fs/fs_testutil.h"
#include "common/fs/content_hash.h"
#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"
#include "worker/core/plan_executor.h"

#include <atomic>
#include "worker/transport/tcp_transport.h"

namespace mxport::worker {
namespace {

using ::mxport::testing::StatusIs;
const std::string kFixtures = std::string(MXPORT_BINARY_DIR) + "/fixtures/megatron";

exporter::ExportPlan Plan(const std::string& layout, const std::string& model) {
  exporter::CheckpointPlanRequest request;
  request.source_dir = kFixtures + "/layouts/" + layout;
  request.hf_config_dir = kFixtures + "/models/" + model + "/hf";
  request.options.max_shard_size = 100 * 1024;  // several files
  auto cp = exporter::PlanCheckpoint(*fs::PosixFileSystem(), request);
  EXPECT_TRUE(cp.ok()) << cp.status();
  return std::move(cp->plan);
}

std::map<std::string, std::string> Files(const std::string& dir,
                                         const exporter::ExportPlan& plan) {
  std::map<std::string, std::string> out;
  for (const auto& f : plan.files) {
    auto bytes = fs::ReadFileToString(*fs::PosixFileSystem(), dir + "/" + f.name);
    out[f.name] = bytes.ok() ? *bytes : "<missing>";
  }
  return out;
}

std::vector<std::unique_ptr<transport::Transport>> TcpGroup(int n) {
  std::vector<std::unique_ptr<transport::TcpListener>> listeners;
  std::vector<std::string> addresses;
  for (int r = 0; r < n; ++r) {
    auto l = transport::TcpListener::Bind("127.0.0.1", 0);
    addresses.push_back((*l)->address());
    listeners.push_back(std::move(*l));
  }
  std::vector<std::unique_ptr<transport::Transport>> group(n);
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r) {
    threads.emplace_back([&, r] {
      auto t = transport::ConnectTcpGroup({r, n, absl::Seconds(30)}, *listeners[r],
                                          addresses, 1);
      EXPECT_TRUE(t.ok()) << t.status();
      group[r] = std::move(*t);
    });
  }
  for (auto& t : threads) t.join();
  return group;
}

// Runs the plan on `group`, publishing into `out`; returns each rank's status.
std::vector<absl::Status> RunAll(const exporter::ExportPlan& plan,
                                 std::vector<std::unique_ptr<transport::Transport>>& group,
                                 const std::string& out, uint64_t chunk_bytes,
                                 std::set<std::string> skip = {},
                                 uint64_t in_flight_bytes = uint64_t{1} << 30,
                                 bool self_transfer = false) {
  std::vector<absl::Status> status(group.size());
  std::vector<std::thread> threads;
  absl::Mutex mu;
  std::set<std::string> published;
  std::atomic<uint64_t> written{0};
  std::atomic<int> succeeded{0};
  for (size_t r = 0; r < group.size(); ++r) {
    threads.emplace_back([&, r] {
      PlanExecutor::Options o;
      o.fs = fs::PosixFileSystem();
      o.transport = group[r].get();
      o.plan = &plan;
      o.staging_dir = absl::StrCat(out, "/.staging/w", r);
      o.chunk_bytes = chunk_bytes;
      o.in_flight_bytes = in_flight_bytes;
      o.self_transfer = self_transfer;
      o.skip_files = skip;
      o.publish = [&](const StagedFile& f) -> absl::Status {
        EXPECT_EQ(fs::ContentHashFile(*fs::PosixFileSystem(), f.staged_path).value(), f.content_hash);
        absl::MutexLock lock(&mu);
        EXPECT_TRUE(published.insert(f.name).second) << f.name << " published twice";
        return fs::PosixFileSystem()->Rename(f.staged_path, out + "/" + f.name);
      };
      PlanExecutor executor(o);
      status[r] = executor.Run();
      if (status[r].ok()) {
        EXPECT_EQ(executor.bytes_sent() + executor.bytes_written(), executor.bytes_total());
        written += executor.bytes_written();
        ++succeeded;
      }
    });
  }
  for (auto& t : threads) t.join();
  if (succeeded == static_cast<int>(group.size())) {
    // The writers wrote the bytes of the pieces this run writes (as read: a quantized
    // weight's in its source dtype), whoever wrote them.
    uint64_t want = 0;
    for (const auto& p : plan.pieces) {
      const auto& t = plan.tensors[p.tensor];
      if (skip.contains(plan.files[t.file].name)) continue;
      want += static_cast<uint64_t>(p.rows) * p.src_cols * ElementBytes(t.piece_dtype());
    }
    EXPECT_EQ(written, want);
  }
  return status;
}

class PlanExecutorTest : public ::testing::Test {
 protected:
  std::map<std::string, std::string> Reference(const exporter::ExportPlan& plan) {
    const std::string out = dir_.path() + "/reference";
    EXPECT_OK(fs::PosixFileSystem()->CreateDirs(out));
    EXPECT_OK(exporter::ExecutePlanLocally(*fs::PosixFileSystem(), plan, out));
    return Files(out, plan);
  }
  fs::testutil::PosixTempDir dir_;
};

TEST_F(PlanExecutorTest, AnyNumberOfWorkersGivesTheSameFiles) {
  struct Case {
    const char* layout;
    const char* model;
  };
  for (const Case& c : {Case{"qwen3_moe_tp2_pp2_ep4", "qwen3_moe"},
                        Case{"qwen3_moe_tp2_ep2_etp2", "qwen3_moe"},
                        Case{"mixtral_tp2_pp2_ep2", "mixtral"}}) {
    const exporter::ExportPlan plan = Plan(c.layout, c.model);
    const auto want = Reference(plan);
    ASSERT_GT(plan.files.size(), 2u);
    for (int workers : {1, 2, 3, 9}) {
      SCOPED_TRACE(absl::StrCat(c.layout, " with ", workers, " workers (", plan.sources.size(),
                                " source files)"));
      const std::string out = absl::StrCat(dir_.path(), "/", c.layout, "_w", workers);
      ASSERT_OK(fs::PosixFileSystem()->CreateDirs(out));
      auto group = transport::NewLoopbackGroup(workers, absl::Seconds(30));
      for (const absl::Status& s : RunAll(plan, group, out, 4096)) EXPECT_OK(s);
      EXPECT_EQ(Files(out, plan), want);
    }
  }
}

// NCCL's semantics (Exchange steps that must pair up) on the CPU: the schedule must neither
// hang nor mismatch, with small steps so there are many of them.
TEST_F(PlanExecutorTest, RendezvousStepsLikeNccl) {
  const exporter::ExportPlan plan = Plan("qwen3_moe_tp2_pp2_ep4", "qwen3_moe");
  const auto want = Reference(plan);
  for (int workers : {1, 2, 5, 16}) {
    SCOPED_TRACE(absl::StrCat(workers, " workers"));
    const std::string out = absl::StrCat(dir_.path(), "/rendezvous_w", workers);
    ASSERT_OK(fs::PosixFileSystem()->CreateDirs(out));
    auto group = transport::NewRendezvousGroup(workers, absl::Seconds(60));
    for (const absl::Status& s : RunAll(plan, group, out, 4096, {}, 3 * 4096, workers == 1)) {
      EXPECT_OK(s);
    }
    EXPECT_EQ(Files(out, plan), want);
  }
}

// Quantized plans: statistics all-gathered over the transport, quantization at the writer. The
// files must equal the single-process export of the same plan for any number of workers, over
// stream and rendezvous transports, also when some files were committed earlier (their pieces
// still count towards the fused siblings' scales).
TEST_F(PlanExecutorTest, QuantizedPlansGiveTheSingleProcessFiles) {
  for (const char* mode : {"nvfp4", "fp8_block"}) {
    for (const char* layout : {"qwen3_moe_tp2_pp2_ep4", "qwen3_moe_tp2_ep2_etp2"}) {
      SCOPED_TRACE(absl::StrCat(mode, " ", layout));
      exporter::QuantRequest request;
      request.mode = mode;
      request.max_shard_size = 100 * 1024;
      ASSERT_OK_AND_ASSIGN(exporter::ExportPlan plan,
                           exporter::ApplyQuantization(Plan(layout, "qwen3_moe"), request));
      ASSERT_TRUE(exporter::IsQuantized(plan));
      const auto want = Reference(plan);
      for (int workers : {1, 3, 11}) {
        const std::string out = absl::StrCat(dir_.path(), "/q-", mode, "-", layout, "-", workers);
        ASSERT_OK(fs::PosixFileSystem()->CreateDirs(out));
        auto group = workers == 3 ? transport::NewRendezvousGroup(workers, absl::Seconds(60))
                                  : transport::NewLoopbackGroup(workers, absl::Seconds(60));
        for (const absl::Status& s : RunAll(plan, group, out, 4096)) EXPECT_OK(s);
        EXPECT_EQ(Files(out, plan), want) << workers << " workers";
      }
      // A later generation that writes only some files gives the same bytes for them.
      const std::string out = absl::StrCat(dir_.path(), "/q-resume-", mode, "-", layout);
      ASSERT_OK(fs::PosixFileSystem()->CreateDirs(out));
      std::set<std::string> skip = {plan.files[0].name};
      auto group = transport::NewLoopbackGroup(4, absl::Seconds(60));
      for (const absl::Status& s : RunAll(plan, group, out, 4096, skip)) EXPECT_OK(s);
      for (const auto& [name, bytes] : Files(out, plan)) {
        if (!skip.contains(name)) EXPECT_TRUE(bytes == want.at(name)) << name;
      }
    }
  }
}

TEST_F(PlanExecutorTest, OverTcp) {
  const exporter::ExportPlan plan = Plan("qwen3_moe_tp2_pp2_ep4_seq", "qwen3_moe");
  const auto want = Reference(plan);
  const std::string out = dir_.path() + "/tcp";
  ASSERT_OK(fs::PosixFileSystem()->CreateDirs(out));
  auto group = TcpGroup(5);
  for (const absl::Status& s : RunAll(plan, group, out, 1 << 20)) EXPECT_OK(s);
  EXPECT_EQ(Files(out, plan), want);
}

TEST_F(PlanExecutorTest, CommittedFilesAreNeitherReadNorWritten) {
  const exporter::ExportPlan plan = Plan("qwen3_moe_ep4", "qwen3_moe");
  const auto want = Reference(plan);
  const std::string out = dir_.path() + "/resume";
  ASSERT_OK(fs::PosixFileSystem()->CreateDirs(out));
  std::set<std::string> skip = {plan.files[0].name, plan.files[2].name};
  auto group = transport::NewLoopbackGroup(3, absl::Seconds(30));
  for (const absl::Status& s : RunAll(plan, group, out, 1 << 20, skip)) EXPECT_OK(s);
  auto got = Files(out, plan);
  for (const auto& [name, bytes] : got) {
    if (skip.contains(name)) {
      EXPECT_EQ(bytes, "<missing>") << name;
    } else {
      EXPECT_EQ(bytes, want.at(name)) << name;
    }
  }
}

TEST_F(PlanExecutorTest, OneFailingWorkerStopsEveryone) {
  const exporter::ExportPlan plan = Plan("qwen3_moe_ep4", "qwen3_moe");
  const std::string out = dir_.path() + "/fail";
  ASSERT_OK(fs::PosixFileSystem()->CreateDirs(out));
  auto group = transport::NewLoopbackGroup(4, absl::Minutes(10));
  // Worker 2's staging directory cannot be created: a file stands in its way.
  ASSERT_OK(fs::PosixFileSystem()->CreateDirs(out + "/.staging"));
  ASSERT_OK(fs::WriteFileAtomically(*fs::PosixFileSystem(), out + "/.staging/w2", "x"));
  auto status = RunAll(plan, group, out, 1 << 20);
  EXPECT_FALSE(status[2].ok());
  // The others do not hang for the 10-minute timeout: they see the abort.
  int failed = 0;
  for (const absl::Status& s : status) failed += !s.ok();
  EXPECT_GE(failed, 1);
}

}  // namespace
}  // namespace mxport::worker
