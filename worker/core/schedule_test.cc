// The schedule: every chunk exactly once, per-pair plan order, per-rank step budgets, and
// steps that never go back for any rank.
#include "worker/core/schedule.h"

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
