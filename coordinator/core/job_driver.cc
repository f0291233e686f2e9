#include "coordinator/core/job_driver.h"

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/export/assignment.h"
#include "common/export/checkpoint_planner.h"
#include "common/export/hf_config.h"
#include "common/export/plan_codec.h"
#include "common/export/quantize_plan.h"

namespace mxport::coordinator {

void JobDriver::Push(const std::string& job_id, int64_t index, Order order) {
  orders_[{job_id, index}].push_back(std::move(order));
}

absl::Status JobDriver::FailJob(const std::string& job_id, int64_t generation,
                                const absl::Status& why) {
  RETURN_IF_ERROR(coordinator_->Advance(job_id, generation, JobPhase::kFailed,
                                        std::string(why.message()))
                      .status());
  ASSIGN_OR_RETURN(JobView view, coordinator_->GetJob(job_id));
  for (int64_t w = 0; w < view.job.spec.workers_expected; ++w) {
    Order finish;
    finish.kind = Order::Kind::kFinish;
    finish.generation = generation;
    finish.reason = std::string(why.message());
    Push(job_id, w, std::move(finish));
  }
  return absl::OkStatus();
}

absl::Status JobDriver::OnRegistered(const std::string& job_id, int64_t index) {
  ASSIGN_OR_RETURN(JobView view, coordinator_->GetJob(job_id));
  absl::MutexLock lock(&mu_);
  JobState& state = jobs_[job_id];
  // Orders of an older generation are moot for a worker that registers now.
  std::erase_if(orders_[{job_id, index}], [&](const Order& o) {
    return o.generation < view.job.generation;
  });
  if (state.generation == view.job.generation && state.started &&
      state.registered.contains(index)) {
    // The worker lost its state (a restart, a broken session) in a running generation: its
    // data plane is gone, so the generation ends for everyone.
    ASSIGN_OR_RETURN(JobRecord next,
                     coordinator_->jobs().NewGeneration(
                         job_id, absl::StrCat("worker ", index, " registered again")));
    coordinator_->leases().RevokePrefix(Coordinator::LeaseResource(job_id, ""));
    for (int64_t w = 0; w < view.job.spec.workers_expected; ++w) {
      if (w == index) continue;
      Order abort;
      abort.kind = Order::Kind::kAbort;
      abort.generation = state.generation;
      abort.reason = absl::StrCat("generation ", next.generation, " starts");
      Push(job_id, w, std::move(abort));
    }
    view.job = next;
  }
  if (state.generation != view.job.generation) {
    state.generation = view.job.generation;
    state.started = false;
    state.finalizing = false;
    state.registered.clear();
  }
  state.registered.insert(index);
  if (state.started || view.job.phase != JobPhase::kPending ||
      static_cast<int64_t>(state.registered.size()) < view.job.spec.workers_expected) {
    return absl::OkStatus();
  }
  absl::Status status = Start(job_id, state, view);
  if (!status.ok()) return FailJob(job_id, view.job.generation, status);
  return absl::OkStatus();
}

absl::Status JobDriver::Start(const std::string& job_id, JobState& state, const JobView& view) {
  const JobSpec& spec = view.job.spec;
  const int64_t gen = view.job.generation;
  state.started = true;
  if (state.checkpoint.files.empty()) {
    ASSIGN_OR_RETURN(state.checkpoint,
                     megatron::DiscoverLegacyCheckpoint(*fs_, spec.source_path, spec.iteration));
    ASSIGN_OR_RETURN(state.config,
                     megatron::ReadModelConfig(*fs_, state.checkpoint.files.front().path));
    RETURN_IF_ERROR(megatron::ResolveRanks(state.config, state.checkpoint));
    state.architecture = spec.architecture;
    if (!spec.hf_config_dir.empty()) {
      const std::string path = fs::JoinPath(spec.hf_config_dir, "config.json");
      ASSIGN_OR_RETURN(std::string text, fs::ReadFileToString(*fs_, path));
      ASSIGN_OR_RETURN(Json hf, ParseJson(text, path));
      RETURN_IF_ERROR(exporter::CheckHfConfig(hf, state.config, path));
      if (state.architecture.empty() && hf.contains("architectures") &&
          hf["architectures"].is_array() && !hf["architectures"].empty()) {
        state.architecture = hf["architectures"][0].get<std::string>();
      }
      if (hf.contains("vocab_size") && hf["vocab_size"].is_number_integer()) {
        state.hf_vocab_size = hf["vocab_size"].get<int64_t>();
      }
    }
    RETURN_IF_ERROR(exporter::FindArch(state.architecture).status());
  }
  RETURN_IF_ERROR(coordinator_->Advance(job_id, gen, JobPhase::kScanning).status());
  // Peers in rank order; rank = worker index.
  std::vector<std::string> peers(spec.workers_expected);
  bool all_gpus = true;
  for (const WorkerInfo& w : coordinator_->workers().Workers(job_id)) {
    if (w.index < spec.workers_expected) peers[w.index] = w.address;
    all_gpus = all_gpus && w.gpu >= 0;
  }
  // "auto" is NCCL when every worker has a GPU: every rank must use the same transport.
  const std::string transport =
      spec.transport == "auto" ? (all_gpus ? "nccl" : "tcp") : spec.transport;
  const int64_t sources = static_cast<int64_t>(state.checkpoint.files.size());
  const int64_t last_pp = state.config.pp - 1;
  for (int64_t w = 0; w < spec.workers_expected; ++w) {
    Order order;
    order.kind = Order::Kind::kAssign;
    order.generation = gen;
    order.rank = w;
    order.world_size = spec.workers_expected;
    order.peer_addresses = peers;
    order.transport = transport;
    for (const exporter::ShardAssignment& a :
         exporter::AssignShards(w, spec.workers_expected, sources)) {
      const megatron::RankFile& f = state.checkpoint.files[a.shard];
      order.shards.push_back({f.path, f.tp.value(), f.pp.value(), f.ep.value(), a.replica,
                              a.replicas});
      if (f.pp.value() == last_pp && f.tp.value() == 0 && f.ep.value() == 0 && a.replica == 0) {
        state.sidecar_writer = w;
      }
    }
    std::vector<std::string> coordinates;
    for (const ShardOrder& s : order.shards) {
      coordinates.push_back(absl::StrCat("tp", s.tp, " pp", s.pp, " ep", s.ep,
                                         s.replicas > 1 ? absl::StrCat(" r", s.replica) : ""));
    }
    coordinator_->workers().SetCoordinates(job_id, w, std::move(coordinates));
    Push(job_id, w, std::move(order));
  }
  RETURN_IF_ERROR(coordinator_->jobs()
                      .Record(job_id, "assigned",
                              absl::StrCat(sources, " source files to ",
                                           spec.workers_expected, " workers over ", transport,
                                           "; sidecar writer ", state.sidecar_writer))
                      .status());
  if (state.plan.has_value()) return SendPlan(job_id, state);  // a restart: same plan
  return absl::OkStatus();
}

absl::Status JobDriver::OnManifest(const std::string& job_id, int64_t generation,
                                   const megatron::RankManifest& manifest) {
  ASSIGN_OR_RETURN(JobView view, coordinator_->GetJob(job_id));
  if (view.job.generation != generation) {
    return absl::AbortedError(absl::StrCat("job '", job_id, "' is at generation ",
                                           view.job.generation, ", not ", generation));
  }
  absl::MutexLock lock(&mu_);
  JobState& state = jobs_[job_id];
  if (state.plan.has_value() || view.job.phase != JobPhase::kScanning) return absl::OkStatus();
  state.manifests[manifest.path] = manifest;
  if (state.manifests.size() < state.checkpoint.files.size()) return absl::OkStatus();
  std::vector<megatron::RankManifest> ordered;
  for (const megatron::RankFile& f : state.checkpoint.files) {
    auto it = state.manifests.find(f.path);
    if (it == state.manifests.end()) return absl::OkStatus();
    ordered.push_back(it->second);
  }
  exporter::PlanOptions options;
  options.max_shard_size = view.job.spec.max_shard_size;
  options.expert_map = view.job.spec.expert_map;
  options.hf_vocab_size = state.hf_vocab_size;
  auto arch = exporter::FindArch(state.architecture);
  absl::StatusOr<exporter::ExportPlan> plan =
      arch.ok() ? exporter::BuildPlan(state.config, **arch, state.checkpoint.files, ordered,
                                      options)
                : absl::StatusOr<exporter::ExportPlan>(arch.status());
  if (plan.ok() && view.job.spec.quantization != "none") {
    exporter::QuantRequest quant;
    quant.mode = view.job.spec.quantization;
    quant.max_shard_size = options.max_shard_size;
    plan = exporter::ApplyQuantization(*std::move(plan), quant);
  }
  if (!plan.ok()) return FailJob(job_id, generation, plan.status());
  state.plan = std::move(*plan);
  return SendPlan(job_id, state);
}

absl::Status JobDriver::SendPlan(const std::string& job_id, JobState& state) {
  ASSIGN_OR_RETURN(JobView view, coordinator_->GetJob(job_id));
  const int64_t gen = view.job.generation;
  RETURN_IF_ERROR(coordinator_->Advance(job_id, gen, JobPhase::kPlanned,
                                        absl::StrCat(state.plan->tensors.size(), " tensors in ",
                                                     state.plan->files.size(), " files"))
                      .status());
  std::vector<std::string> committed;
  for (const CommitRecord& c : view.committed) committed.push_back(c.path);
  const std::string encoded = exporter::EncodePlan(*state.plan);
  for (int64_t w = 0; w < view.job.spec.workers_expected; ++w) {
    Order order;
    order.kind = Order::Kind::kPlan;
    order.generation = gen;
    order.plan = encoded;
    order.committed = committed;
    order.sidecar_writer = w == state.sidecar_writer;
    order.output_dir = view.job.spec.output_path;
    Push(job_id, w, std::move(order));
  }
  uint64_t total = state.plan->total_bytes;
  RETURN_IF_ERROR(coordinator_->jobs()
                      .UpdateProgress(job_id, gen, view.job.bytes_done, total,
                                      static_cast<int64_t>(committed.size()),
                                      static_cast<int64_t>(state.plan->files.size()))
                      .status());
  RETURN_IF_ERROR(coordinator_->Advance(job_id, gen, JobPhase::kTransferring).status());
  mu_.Unlock();
  absl::Status status = OnCommitted(job_id, gen);  // a restart may find everything committed
  mu_.Lock();
  return status;
}

absl::Status JobDriver::OnCommitted(const std::string& job_id, int64_t generation) {
  ASSIGN_OR_RETURN(JobView view, coordinator_->GetJob(job_id));
  absl::MutexLock lock(&mu_);
  JobState& state = jobs_[job_id];
  if (!state.plan.has_value() || view.job.generation != generation) return absl::OkStatus();
  std::set<std::string> committed;
  for (const CommitRecord& c : view.committed) committed.insert(c.path);
  if (view.job.phase == JobPhase::kTransferring && !state.finalizing) {
    for (const exporter::OutputFile& f : state.plan->files) {
      if (!committed.contains(f.name)) return absl::OkStatus();
    }
    state.finalizing = true;
    RETURN_IF_ERROR(coordinator_->Advance(job_id, generation, JobPhase::kFinalizing).status());
    Order order;
    order.kind = Order::Kind::kFinalize;
    order.generation = generation;
    order.output_dir = view.job.spec.output_path;
    // config.json first (with quantization_config when quantized), hf_quant_config.json, the
    // user's sidecars; the index last.
    absl::StatusOr<std::vector<exporter::Sidecar>> sidecars = exporter::CollectSidecars(
        *fs_, *state.plan, view.job.spec.hf_config_dir, exporter::Producer{});
    if (!sidecars.ok()) return FailJob(job_id, generation, sidecars.status());
    for (exporter::Sidecar& s : *sidecars) {
      order.sidecars.push_back({std::move(s.name), std::move(s.bytes)});
    }
    order.sidecars.push_back({kIndexFile, state.plan->IndexJson().dump(2) + "\n"});
    // Every weight file is committed: the data plane's work is done, whatever the workers'
    // last heartbeats said before their final one landed.
    RETURN_IF_ERROR(coordinator_->jobs()
                        .UpdateProgress(job_id, generation, view.job.bytes_total,
                                        view.job.bytes_total,
                                        static_cast<int64_t>(committed.size()),
                                        static_cast<int64_t>(state.plan->files.size() +
                                                             order.sidecars.size()))
                        .status());
    Push(job_id, state.sidecar_writer, std::move(order));
    return absl::OkStatus();
  }
  if (view.job.phase == JobPhase::kFinalizing && committed.contains(kIndexFile)) {
    RETURN_IF_ERROR(coordinator_->Advance(job_id, generation, JobPhase::kSucceeded).status());
    // What is left in staging belongs to aborted generations and is never published.
    const std::string staging = fs::JoinPath(view.job.spec.output_path, ".staging");
    if (fs_->Exists(staging).ok()) {
      const absl::Status cleaned = fs::DeleteRecursively(*fs_, staging);
      if (!cleaned.ok()) {
        coordinator_->jobs()
            .Record(job_id, "cleanup", absl::StrCat("could not remove ", staging, ": ",
                                                    cleaned.message()))
            .IgnoreError();
      }
    }
    for (int64_t w = 0; w < view.job.spec.workers_expected; ++w) {
      Order finish;
      finish.kind = Order::Kind::kFinish;
      finish.generation = generation;
      finish.reason = "export complete";
      Push(job_id, w, std::move(finish));
    }
  }
  return absl::OkStatus();
}

absl::Status JobDriver::OnWorkerFailed(const std::string& job_id, int64_t generation,
                                       int64_t index, const std::string& message) {
  absl::MutexLock lock(&mu_);
  return FailJob(job_id, generation,
                 absl::InternalError(absl::StrCat("worker ", index, ": ", message)));
}

void JobDriver::OnTick() {
  absl::MutexLock lock(&mu_);
  for (auto& [job_id, state] : jobs_) {
    auto view = coordinator_->GetJob(job_id);
    if (!view.ok() || state.generation < 0 || view->job.generation == state.generation) continue;
    for (int64_t w = 0; w < view->job.spec.workers_expected; ++w) {
      Order abort;
      abort.kind = Order::Kind::kAbort;
      abort.generation = state.generation;
      abort.reason = absl::StrCat("generation ", view->job.generation, " starts");
      Push(job_id, w, std::move(abort));
    }
    state.generation = view->job.generation;
    state.started = false;
    state.finalizing = false;
    state.registered.clear();
  }
}

void JobDriver::ReturnOrders(const std::string& job_id, int64_t index,
                             std::vector<Order> orders) {
  absl::MutexLock lock(&mu_);
  auto& queue = orders_[{job_id, index}];
  queue.insert(queue.begin(), std::make_move_iterator(orders.begin()),
               std::make_move_iterator(orders.end()));
}

std::vector<Order> JobDriver::TakeOrders(const std::string& job_id, int64_t index,
                                         absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto& queue = orders_[{job_id, index}];
  auto ready = [&queue]() { return !queue.empty(); };
  mu_.AwaitWithDeadline(absl::Condition(&ready), deadline);
  std::vector<Order> out(queue.begin(), queue.end());
  queue.clear();
  return out;
}

}  // namespace mxport::coordinator
