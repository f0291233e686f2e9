// The schedule: every chunk exactly once, per-pair plan order, per-rank step budgets, and
// steps that never go back for any rank.
#include "worker/core/schedule.h"

#include <algorithm>
#include <map>

#include "common/export/checkpoint_planner.h"
#include "common/fs/file_system.h"
#include "gtest/gtest.h"

namespace mxport::worker {
namespace {

const std::string kFixtures = std::string(MXPORT_BINARY_DIR) + "/fixtures/megatron";

exporter::ExportPlan Plan(const std::string& layout, const std::string& model) {
  exporter::CheckpointPlanRequest request;
  request.source_dir = kFixtures + "/layouts/" + layout;
  request.hf_config_dir = kFixtures + "/models/" + model + "/hf";
  request.options.max_shard_size = 100 * 1024;
  auto cp = exporter::PlanCheckpoint(*fs::PosixFileSystem(), request);
  EXPECT_TRUE(cp.ok()) << cp.status();
  return std::move(cp->plan);
}

TEST(ScheduleTest, EveryByteOnceInBudgetedStepsThatNeverGoBack) {
  const exporter::ExportPlan plan = Plan("qwen3_moe_tp2_pp2_ep4", "qwen3_moe");
  uint64_t plan_bytes = 0;
  for (const auto& f : plan.files) plan_bytes += f.data_bytes;
  for (int world : {1, 3, 8, 20}) {
    SCOPED_TRACE(world);
    const Roles roles = ComputeRoles(plan, world);
    ScheduleOptions options;
    options.chunk_bytes = 2048;
    options.step_bytes = 8192;
    const Schedule s = BuildSchedule(plan, roles, world, options);
    uint64_t total = 0;
    std::map<int, int64_t> last_send, last_recv;
    std::map<std::pair<int, int64_t>, uint64_t> sent_in_step, received_in_step;
    for (const Message& m : s.messages) {
      total += m.bytes;
      EXPECT_LE(m.bytes, std::max<uint64_t>(options.chunk_bytes,
                                            m.chunk.src_cols * 2 /* one bf16 row */));
      EXPECT_GE(m.step, last_send[m.from]);
      last_send[m.from] = m.step;
      if (m.from == m.to) continue;
      EXPECT_GE(m.step, last_recv[m.to]);
      last_recv[m.to] = m.step;
      sent_in_step[{m.from, m.step}] += m.bytes;
      received_in_step[{m.to, m.step}] += m.bytes;
    }
    EXPECT_EQ(total, plan_bytes);  // every byte of every file, exactly once
    for (const auto& [key, bytes] : sent_in_step) EXPECT_LE(bytes, options.step_bytes);
    for (const auto& [key, bytes] : received_in_step) EXPECT_LE(bytes, options.step_bytes);
    if (world > 1) EXPECT_GT(s.steps, 1);
  }
}

// Writers are chosen where the bytes are: a piece whose source the file's writer reads never
// crosses the transport, fewer bytes cross it over these world sizes than with files and pieces
// dealt out in turn (per world size the gain depends on which sources share a worker), and no
// worker writes much more than an even share.
TEST(ScheduleTest, WritersKeepBytesLocalWithinABalancedLoad) {
  const exporter::ExportPlan plan = Plan("qwen3_moe_tp2_pp2_ep4", "qwen3_moe");
  uint64_t remote_bytes = 0, dealt_remote_bytes = 0;
  for (int world : {2, 3, 4, 8, 16}) {
    SCOPED_TRACE(world);
    const Roles roles = ComputeRoles(plan, world);
    Roles dealt = roles;  // the same source readers; files and pieces dealt out in turn
    for (size_t f = 0; f < plan.files.size(); ++f) dealt.file_writer[f] = f % world;
    std::map<int, int> seen;
    for (size_t i = 0; i < plan.pieces.size(); ++i) {
      const auto& readers = roles.source_readers[plan.pieces[i].source];
      dealt.piece_reader[i] = readers[seen[plan.pieces[i].source]++ % readers.size()];
    }
    for (size_t i = 0; i < plan.pieces.size(); ++i) {
      const auto& readers = roles.source_readers[plan.pieces[i].source];
      const int writer = roles.file_writer[plan.tensors[plan.pieces[i].tensor].file];
      const bool reads = std::find(readers.begin(), readers.end(), writer) != readers.end();
      EXPECT_EQ(roles.piece_reader[i] == writer, reads) << plan.pieces[i].key;
      EXPECT_NE(std::find(readers.begin(), readers.end(), roles.piece_reader[i]), readers.end());
    }
    const auto remote = [&](const Roles& r) {
      uint64_t bytes = 0;
      for (const Message& m : BuildSchedule(plan, r, world, ScheduleOptions()).messages) {
        if (m.from != m.to) bytes += m.bytes;
      }
      return bytes;
    };
    remote_bytes += remote(roles);
    dealt_remote_bytes += remote(dealt);
    std::vector<uint64_t> load(world, 0);
    uint64_t total = 0, largest = 0;
    for (size_t f = 0; f < plan.files.size(); ++f) {
      ASSERT_GE(roles.file_writer[f], 0);
      ASSERT_LT(roles.file_writer[f], world);
      load[roles.file_writer[f]] += plan.files[f].data_bytes;
      total += plan.files[f].data_bytes;
      largest = std::max(largest, plan.files[f].data_bytes);
    }
    for (uint64_t l : load) EXPECT_LE(l, total / world + total / world / 4 + largest);
  }
  EXPECT_LT(remote_bytes, dealt_remote_bytes * 19 / 20);
}

TEST(ScheduleTest, SkippedFilesHaveNoMessages) {
  const exporter::ExportPlan plan = Plan("qwen3_moe_ep4", "qwen3_moe");
  const Roles roles = ComputeRoles(plan, 4);
  ScheduleOptions options;
  options.skip_files = {plan.files[0].name};
  for (const Message& m : BuildSchedule(plan, roles, 4, options).messages) {
    EXPECT_NE(plan.tensors[m.chunk.tensor].file, 0);
  }
}

}  // namespace
}  // namespace mxport::worker
