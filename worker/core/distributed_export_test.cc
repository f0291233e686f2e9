// Coordinator core, job driver and worker agents in one process (no network, loopback data
// plane): a whole export from submit to SUCCEEDED, with fewer and more workers than source
// files, single commits of every shared file, and a worker dying mid-transfer.
#include <map>
#include <thread>

#include "absl/synchronization/notification.h"

#include "common/export/checkpoint_planner.h"
#include "common/export/hf_config.h"
#include "common/export/local_executor.h"
#include "common/export/quantize_plan.h"
#include "common/fs/fs_testutil.h"
#include "common/base/status_macros.h"
#include "common/testing/status_matchers.h"
#include "coordinator/core/job_driver.h"
#include "gtest/gtest.h"
#include "worker/core/worker_agent.h"

namespace mxport::worker {
namespace {

using coordinator::Coordinator;
using coordinator::JobDriver;
using coordinator::JobPhase;
const std::string kFixtures = std::string(MXPORT_BINARY_DIR) + "/fixtures/megatron";

class InProcessClient : public CoordinatorClient {
 public:
  InProcessClient(Coordinator* c, JobDriver* d) : c_(c), d_(d) {}
  absl::StatusOr<int64_t> Register(const std::string& job, int64_t index,
                                   const std::string& address) override {
    ASSIGN_OR_RETURN(auto r, c_->RegisterWorker(job, index, address, "localhost", -1));
    RETURN_IF_ERROR(d_->OnRegistered(job, index));
    return r.generation;
  }
  absl::StatusOr<std::vector<exporter::Order>> NextOrders(const std::string& job,
                                                             int64_t index,
                                                             absl::Time deadline) override {
    return d_->TakeOrders(job, index, deadline);
  }
  absl::Status ReportManifest(const std::string& job, int64_t gen,
                              const megatron::RankManifest& m) override {
    return d_->OnManifest(job, gen, m);
  }
  absl::Status Heartbeat(const std::string& job, int64_t gen, int64_t index, uint64_t done,
                         uint64_t total, const std::string& activity) override {
    return c_->Heartbeat(job, gen, index, done, total, activity);
  }
  absl::StatusOr<int64_t> AcquireLease(const std::string& job, int64_t gen, int64_t index,
                                       const std::string& resource) override {
    ASSIGN_OR_RETURN(auto lease, c_->AcquireLease(job, gen, index, resource));
    return lease.token;
  }
  absl::Status Commit(const std::string& job, int64_t gen, int64_t index,
                      const std::string& resource, int64_t token, const std::string& staged,
                      const std::string& path, uint64_t size, const std::string& sha) override {
    coordinator::CommitRequest r;
    r.resource = resource;
    r.token = token;
    r.staged_path = staged;
    r.path = path;
    r.size = size;
    r.content_hash = sha;
    RETURN_IF_ERROR(c_->CommitFile(job, gen, r).status());
    return d_->OnCommitted(job, gen);
  }
  absl::Status ReportFailure(const std::string& job, int64_t gen, int64_t index,
                             const std::string& message) override {
    return d_->OnWorkerFailed(job, gen, index, message);
  }
  absl::Status PublishNcclId(const std::string& job, int64_t gen, int64_t,
                             const std::string& id) override {
    return c_->PublishNcclId(job, gen, id);
  }
  absl::StatusOr<std::string> GetNcclId(const std::string& job, int64_t gen,
                                        int64_t) override {
    return c_->GetNcclId(job, gen);
  }

 private:
  Coordinator* c_;
  JobDriver* d_;
};

// One group per generation, handed out rank by rank: loopback when the job says "tcp", the
// rendezvous group (NCCL's semantics) when it says "nccl", after the same id hand-off through
// the coordinator that NCCL workers do (rank 0 publishes, the others wait for it).
class LoopbackFabric {
 public:
  explicit LoopbackFabric(int world) : world_(world) {}
  TransportFactory Factory(CoordinatorClient* client = nullptr, std::string job = "",
                           int64_t index = 0) {
    return [this, client, job, index](const exporter::Order& order)
               -> absl::StatusOr<std::unique_ptr<transport::Transport>> {
      std::string id = absl::StrCat("group-", order.generation);
      if (order.transport == "nccl") {
        if (order.rank == 0) {
          RETURN_IF_ERROR(client->PublishNcclId(job, order.generation, index, id));
        } else {
          absl::StatusOr<std::string> got;
          do {
            got = client->GetNcclId(job, order.generation, index);
          } while (got.status().code() == absl::StatusCode::kUnavailable);
          RETURN_IF_ERROR(got.status());
          id = *got;
        }
      }
      absl::MutexLock lock(&mu_);
      auto& group = groups_[id];
      if (group.empty()) {
        group = order.transport == "nccl" ? transport::NewRendezvousGroup(world_, absl::Minutes(2))
                                          : transport::NewLoopbackGroup(world_, absl::Minutes(2));
      }
      return std::move(group[order.rank]);
    };
  }

 private:
  int world_;
  absl::Mutex mu_;
  std::map<std::string, std::vector<std::unique_ptr<transport::Transport>>> groups_;
};

class DistributedExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Coordinator::Options o;
    o.store = store_.get();
    o.fs = fs::PosixFileSystem();
    o.clock = &clock_;
    coordinator_ = std::move(Coordinator::Create(o).value());
    driver_ = std::make_unique<JobDriver>(coordinator_.get(), fs::PosixFileSystem());
    client_ = std::make_unique<InProcessClient>(coordinator_.get(), driver_.get());
  }

  coordinator::JobSpec Spec(const std::string& layout, const std::string& model, int workers) {
    coordinator::JobSpec spec;
    spec.job_id = layout + "-w" + std::to_string(workers);
    spec.source_path = kFixtures + "/layouts/" + layout;
    spec.hf_config_dir = kFixtures + "/models/" + model + "/hf";
    spec.output_path = dir_.path() + "/" + spec.job_id;
    spec.max_shard_size = 100 * 1024;
    spec.workers_expected = workers;
    return spec;
  }

  std::unique_ptr<WorkerAgent> Agent(const coordinator::JobSpec& spec, int index,
                                     LoopbackFabric& fabric) {
    WorkerAgent::Options o;
    o.job_id = spec.job_id;
    o.index = index;
    o.data_address = "loopback:" + std::to_string(index);
    o.fs = fs::PosixFileSystem();
    o.client = client_.get();
    o.make_transport = fabric.Factory(client_.get(), spec.job_id, index);
    o.chunk_bytes = 8192;
    o.poll = absl::Milliseconds(50);
    return std::make_unique<WorkerAgent>(o);
  }

  // The files the single-process executor writes for the same layout.
  std::map<std::string, std::string> Reference(const coordinator::JobSpec& spec) {
    exporter::CheckpointPlanRequest request;
    request.source_dir = spec.source_path;
    request.hf_config_dir = spec.hf_config_dir;
    request.options.max_shard_size = spec.max_shard_size;
    auto cp = exporter::PlanCheckpoint(*fs::PosixFileSystem(), request);
    EXPECT_TRUE(cp.ok()) << cp.status();
    const std::string out = spec.output_path + "-reference";
    EXPECT_OK(fs::PosixFileSystem()->CreateDirs(out));
    EXPECT_OK(exporter::ExecutePlanLocally(*fs::PosixFileSystem(), cp->plan, out));
    std::map<std::string, std::string> files;
    for (const auto& f : cp->plan.files) files[f.name] = Read(out + "/" + f.name);
    files["model.safetensors.index.json"] = Read(out + "/model.safetensors.index.json");
    return files;
  }
  static std::string Read(const std::string& path) {
    auto s = fs::ReadFileToString(*fs::PosixFileSystem(), path);
    return s.ok() ? *s : "<missing>";
  }
  void ExpectSameFiles(const coordinator::JobSpec& spec,
                       const std::map<std::string, std::string>& want) {
    for (const auto& [name, bytes] : want) {
      EXPECT_TRUE(Read(spec.output_path + "/" + name) == bytes) << name << " differs";
    }
    for (const char* sidecar : {"config.json", "generation_config.json", "tokenizer_config.json"}) {
      EXPECT_EQ(Read(spec.output_path + "/" + sidecar),
                Read(spec.hf_config_dir + "/" + sidecar));
    }
  }

  // Runs a quantized job and compares it with the single-process export of the same request.
  void ExpectQuantizedJobEqualsLocal(const std::string& layout, const std::string& mode,
                                     const std::string& algo);

  FakeClock clock_;
  std::unique_ptr<coordinator::Store> store_ = coordinator::NewMemoryStore();
  std::unique_ptr<Coordinator> coordinator_;
  std::unique_ptr<JobDriver> driver_;
  std::unique_ptr<InProcessClient> client_;
  fs::testutil::PosixTempDir dir_;
};

TEST_F(DistributedExportTest, FewerAndMoreWorkersThanSourceFiles) {
  struct Case {
    int workers;
    const char* transport;
  };
  // qwen3_moe_tp2_pp2_ep4 has 8 rank files.
  for (const Case& c : {Case{3, "tcp"}, Case{11, "tcp"}, Case{3, "nccl"}, Case{11, "nccl"}}) {
    const int workers = c.workers;
    auto spec = Spec("qwen3_moe_tp2_pp2_ep4", "qwen3_moe", workers);
    spec.transport = c.transport;
    spec.job_id += std::string("-") + c.transport;
    spec.output_path += std::string("-") + c.transport;
    SCOPED_TRACE(spec.job_id);
    const auto want = Reference(spec);
    ASSERT_OK(coordinator_->SubmitJob(spec).status());
    LoopbackFabric fabric(workers);
    std::vector<std::unique_ptr<WorkerAgent>> agents;
    std::vector<std::thread> threads;
    for (int w = 0; w < workers; ++w) agents.push_back(Agent(spec, w, fabric));
    for (int w = 0; w < workers; ++w) {
      threads.emplace_back([&, w] { EXPECT_OK(agents[w]->Run()); });
    }
    for (auto& t : threads) t.join();
    ASSERT_OK_AND_ASSIGN(auto view, coordinator_->GetJob(spec.job_id));
    EXPECT_EQ(view.job.phase, JobPhase::kSucceeded) << view.job.message;
    EXPECT_GT(view.job.bytes_total, 0u);
    EXPECT_EQ(view.job.bytes_done, view.job.bytes_total);  // a finished job shows all of it
    ExpectSameFiles(spec, want);
    EXPECT_FALSE(fs::PosixFileSystem()->Exists(spec.output_path + "/.staging").ok())
        << "staging left behind";
    // Exactly one commit per published path (DP replicas never publish twice).
    std::set<std::string> paths;
    for (const auto& c : view.committed) EXPECT_TRUE(paths.insert(c.path).second) << c.path;
    auto sidecars = exporter::SidecarFiles(*fs::PosixFileSystem(), spec.hf_config_dir);
    ASSERT_TRUE(sidecars.ok());
    EXPECT_EQ(paths.size(), want.size() + sidecars->size());
  }
}

// A quantized job: the coordinator plans the quantized tensors, the workers all-gather their
// statistics and quantize; the files equal the single-process quantized export, and the sidecar
// writer publishes config.json with quantization_config and hf_quant_config.json.
TEST_F(DistributedExportTest, QuantizedJobEqualsTheSingleProcessExport) {
  struct Case {
    const char* layout;
    const char* mode;
    const char* algo;
  };
  for (const Case& c : {Case{"qwen3_moe_tp2_pp2_ep4", "nvfp4", "W4A16_NVFP4"},
                        Case{"qwen3_moe_tp2_ep2_modelopt", "checkpoint", "\"NVFP4\""},
                        Case{"qwen3_moe_tp2_ep2_modelopt", "fp8", "\"FP8\""},
                        Case{"qwen3_moe_tp2_ep2_modelopt", "checkpoint_fp8", "\"FP8\""}}) {
    SCOPED_TRACE(absl::StrCat(c.layout, " ", c.mode));
    ExpectQuantizedJobEqualsLocal(c.layout, c.mode, c.algo);
  }
}

void DistributedExportTest::ExpectQuantizedJobEqualsLocal(const std::string& layout,
                                                          const std::string& mode,
                                                          const std::string& algo) {
  constexpr int kWorkers = 5;
  auto spec = Spec(layout, "qwen3_moe", kWorkers);
  spec.quantization = mode;
  spec.job_id += "-" + mode;
  spec.output_path += "-" + mode;
  exporter::CheckpointPlanRequest request;
  request.source_dir = spec.source_path;
  request.hf_config_dir = spec.hf_config_dir;
  request.options.max_shard_size = spec.max_shard_size;
  request.quantization.mode = mode;
  request.quantization.max_shard_size = spec.max_shard_size;
  ASSERT_OK_AND_ASSIGN(auto cp, exporter::PlanCheckpoint(*fs::PosixFileSystem(), request));
  ASSERT_OK_AND_ASSIGN(auto sidecars, exporter::CollectSidecars(*fs::PosixFileSystem(), cp.plan,
                                                                spec.hf_config_dir, {}));
  const std::string ref = spec.output_path + "-reference";
  ASSERT_OK(fs::PosixFileSystem()->CreateDirs(ref));
  ASSERT_OK(exporter::ExecutePlanLocally(*fs::PosixFileSystem(), cp.plan, ref, sidecars));

  ASSERT_OK(coordinator_->SubmitJob(spec).status());
  LoopbackFabric fabric(kWorkers);
  std::vector<std::unique_ptr<WorkerAgent>> agents;
  std::vector<std::thread> threads;
  for (int w = 0; w < kWorkers; ++w) agents.push_back(Agent(spec, w, fabric));
  for (int w = 0; w < kWorkers; ++w) {
    threads.emplace_back([&, w] { EXPECT_OK(agents[w]->Run()); });
  }
  for (auto& t : threads) t.join();
  ASSERT_OK_AND_ASSIGN(auto view, coordinator_->GetJob(spec.job_id));
  EXPECT_EQ(view.job.phase, JobPhase::kSucceeded) << view.job.message;
  for (const auto& f : cp.plan.files) {
    EXPECT_TRUE(Read(spec.output_path + "/" + f.name) == Read(ref + "/" + f.name)) << f.name;
  }
  for (const char* name : {"config.json", "hf_quant_config.json",
                           "model.safetensors.index.json"}) {
    EXPECT_EQ(Read(spec.output_path + "/" + name), Read(ref + "/" + name)) << name;
  }
  EXPECT_NE(Read(spec.output_path + "/config.json").find("\"quantization_config\""),
            std::string::npos);
  EXPECT_NE(Read(spec.output_path + "/hf_quant_config.json").find(algo), std::string::npos);
}

TEST_F(DistributedExportTest, AWorkerDyingMidTransferCostsOneGeneration) {
  constexpr int kWorkers = 3;
  const auto spec = Spec("qwen3_moe_tp2_ep2_etp2", "qwen3_moe", kWorkers);
  const auto want = Reference(spec);
  ASSERT_OK(coordinator_->SubmitJob(spec).status());
  LoopbackFabric fabric(kWorkers);
  std::vector<std::unique_ptr<WorkerAgent>> agents;
  for (int w = 0; w < kWorkers; ++w) agents.push_back(Agent(spec, w, fabric));
  // Worker 1 dies when it is about to commit its second file.
  absl::Notification died;
  int commits_by_1 = 0;
  {
    WorkerAgent::Options o;
    o.job_id = spec.job_id;
    o.index = 1;
    o.fs = fs::PosixFileSystem();
    o.client = client_.get();
    o.make_transport = fabric.Factory();
    o.chunk_bytes = 8192;
    o.poll = absl::Milliseconds(50);
    o.before_commit = [&](const std::string&) -> absl::Status {
      if (++commits_by_1 < 2) return absl::OkStatus();
      died.Notify();
      return absl::CancelledError("killed");
    };
    agents[1] = std::make_unique<WorkerAgent>(o);
  }
  std::vector<std::thread> threads;
  for (int w = 0; w < kWorkers; ++w) {
    threads.emplace_back([&, w] {
      absl::Status s = agents[w]->Run();
      if (w != 1) EXPECT_OK(s);
    });
  }
  died.WaitForNotification();
  threads[1].join();
  ASSERT_OK_AND_ASSIGN(auto before, coordinator_->GetJob(spec.job_id));
  // Mid-job the job's progress is a share of the plan's bytes, though workers count a byte
  // that crosses the data plane twice (as sent and as written).
  EXPECT_GT(before.job.bytes_total, 0u);
  EXPECT_LE(before.job.bytes_done, before.job.bytes_total);
  std::map<std::string, coordinator::CommitRecord> committed_before;
  for (const auto& c : before.committed) committed_before[c.path] = c;
  ASSERT_FALSE(committed_before.empty());
  // The dead worker stops heartbeating; the others are alive.
  clock_.Advance(absl::Seconds(20));
  for (int w : {0, 2}) {
    coordinator_->workers().Heartbeat(spec.job_id, w, 0, 1, "alive").IgnoreError();
  }
  auto changes = coordinator_->Tick();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].worker.index, 1);
  driver_->OnTick();
  ASSERT_OK_AND_ASSIGN(auto next, coordinator_->GetJob(spec.job_id));
  EXPECT_EQ(next.job.generation, 1);
  // The worker comes back (a restarted pod with the same index).
  auto back = Agent(spec, 1, fabric);
  threads[1] = std::thread([&] { EXPECT_OK(back->Run()); });
  for (auto& t : threads) t.join();
  ASSERT_OK_AND_ASSIGN(auto view, coordinator_->GetJob(spec.job_id));
  EXPECT_EQ(view.job.phase, JobPhase::kSucceeded) << view.job.message;
  EXPECT_EQ(view.job.restarts, 1);
  EXPECT_EQ(view.job.bytes_total, before.job.bytes_total);  // the plan's, not inflated
  ExpectSameFiles(spec, want);
  // Files committed before the death were not rewritten.
  for (const auto& c : view.committed) {
    if (committed_before.contains(c.path)) EXPECT_EQ(c, committed_before[c.path]) << c.path;
  }
}

}  // namespace
}  // namespace mxport::worker
