#include "worker/core/worker_agent.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/export/plan_codec.h"
#include "common/fs/content_hash.h"
#include "worker/core/plan_executor.h"

namespace mxport::worker {

using exporter::Order;

void WorkerAgent::Stop() {
  stop_ = true;
  AbortTransport();
}

void WorkerAgent::MaybeHeartbeat(uint64_t done, uint64_t total, const std::string& activity) {
  {
    absl::MutexLock lock(&heartbeat_mu_);
    const absl::Time now = absl::Now();
    if (now - last_heartbeat_ < options_.heartbeat_interval) return;
    last_heartbeat_ = now;
  }
  options_.client->Heartbeat(options_.job_id, generation_, options_.index, done, total, activity)
      .IgnoreError();  // a stale generation shows up as an Abort order
}

void WorkerAgent::AbortTransport() {
  absl::MutexLock lock(&mu_);
  if (transport_ != nullptr) transport_->Abort();
}

absl::Status WorkerAgent::Run() {
  ASSIGN_OR_RETURN(int64_t generation, options_.client->Register(
                                          options_.job_id, options_.index,
                                          options_.data_address));
  generation_ = generation;
  while (!stop_) {
    std::vector<Order> orders;
    {
      absl::MutexLock lock(&mu_);
      orders.swap(pending_);
    }
    if (orders.empty()) {
      MaybeHeartbeat(0, 0, "waiting");
      absl::StatusOr<std::vector<Order>> next = options_.client->NextOrders(
          options_.job_id, options_.index, absl::Now() + options_.poll);
      if (next.status().code() == absl::StatusCode::kUnavailable) {
        // The coordinator went away (restarting?): drop this generation and register again;
        // the client retries until it answers.
        AbortTransport();
        {
          absl::MutexLock lock(&mu_);
          transport_.reset();
        }
        ASSIGN_OR_RETURN(int64_t generation, options_.client->Register(
                                                options_.job_id, options_.index,
                                                options_.data_address));
        generation_ = generation;
        continue;
      }
      if (!next.ok()) return next.status();
      orders = std::move(*next);
    }
    for (const Order& order : orders) {
      if (stop_) break;
      absl::Status status;
      switch (order.kind) {
        case Order::Kind::kAssign:
          generation_ = order.generation;
          status = Assign(order);
          break;
        case Order::Kind::kPlan:
          status = Execute(order);
          break;
        case Order::Kind::kFinalize:
          status = Finalize(order);
          break;
        case Order::Kind::kAbort: {
          if (order.generation < generation_) continue;  // meant for a generation now over
          Log(absl::StrCat("generation ", order.generation, " aborted by the coordinator"));
          AbortTransport();
          {
            absl::MutexLock lock(&mu_);
            transport_.reset();
          }
          ASSIGN_OR_RETURN(int64_t generation, options_.client->Register(
                                                  options_.job_id, options_.index,
                                                  options_.data_address));
          generation_ = generation;
          continue;
        }
        case Order::Kind::kFinish:
          return absl::OkStatus();
      }
      if (stop_ || status.code() == absl::StatusCode::kCancelled) return status;
      if (status.code() == absl::StatusCode::kAborted ||
          status.code() == absl::StatusCode::kUnavailable) {
        Log(absl::StrCat("generation ", generation_.load(), " stopped: ", status.ToString()));
        continue;  // the generation is ending: an Abort order follows
      }
      if (!status.ok()) {
        options_.client->ReportFailure(options_.job_id, generation_, options_.index,
                                       std::string(status.message()))
            .IgnoreError();
        return status;
      }
    }
  }
  return absl::CancelledError(absl::StrCat("worker ", options_.index, " stopped"));
}

void WorkerAgent::Log(const std::string& line) {
  if (options_.log) options_.log(line);
}

absl::Status WorkerAgent::Assign(const Order& order) {
  ASSIGN_OR_RETURN(std::unique_ptr<transport::Transport> t,
                   options_.make_transport(order));
  {
    absl::MutexLock lock(&mu_);
    transport_ = std::move(t);
  }
  // The first replica of each source file scans it (pickle only, no tensor bytes).
  int64_t vpp = 0;
  for (const exporter::ShardOrder& shard : order.shards) {
    if (shard.replica != 0) continue;
    if (vpp == 0) {
      ASSIGN_OR_RETURN(megatron::ModelConfig config,
                       megatron::ReadModelConfig(*options_.fs, shard.path));
      vpp = config.vpp;
    }
    ASSIGN_OR_RETURN(megatron::RankManifest manifest,
                     megatron::ScanRankFile(*options_.fs, shard.path, vpp));
    RETURN_IF_ERROR(options_.client->ReportManifest(options_.job_id, order.generation, manifest));
  }
  return options_.client->Heartbeat(options_.job_id, order.generation, options_.index, 0, 0,
                                    "scanned");
}

absl::Status WorkerAgent::StageAndCommit(int64_t generation, const std::string& resource,
                                         const std::string& output_dir,
                                         const std::string& staged, const std::string& path,
                                         const StagedFile* known) {
  ASSIGN_OR_RETURN(int64_t token, options_.client->AcquireLease(options_.job_id, generation,
                                                                options_.index, resource));
  uint64_t size = 0;
  std::string sha;
  if (known != nullptr) {  // the executor hashed it when it finished the file
    size = known->size;
    sha = known->content_hash;
  } else {
    ASSIGN_OR_RETURN(size, options_.fs->FileSize(staged));
    ASSIGN_OR_RETURN(sha, fs::ContentHashFile(*options_.fs, staged));
  }
  if (options_.before_commit) RETURN_IF_ERROR(options_.before_commit(path));
  return options_.client->Commit(options_.job_id, generation, options_.index, resource, token,
                                 staged, path, size, sha);
}

absl::Status WorkerAgent::Execute(const Order& order) {
  ASSIGN_OR_RETURN(exporter::ExportPlan plan, exporter::DecodePlan(order.plan));
  transport::Transport* t = nullptr;
  {
    absl::MutexLock lock(&mu_);
    t = transport_.get();
  }
  if (t == nullptr) return absl::FailedPreconditionError("plan before assignment");
  PlanExecutor::Options o;
  o.fs = options_.fs;
  o.transport = t;
  o.plan = &plan;
  o.staging_dir = fs::JoinPath(order.output_dir, absl::StrCat(".staging/g", order.generation,
                                                              "-w", options_.index));
  o.chunk_bytes = options_.chunk_bytes;
  o.in_flight_bytes = options_.in_flight_bytes;
  o.self_transfer = options_.self_transfer;
  o.quant_backend = options_.quant_backend;
  o.max_bytes_per_second = options_.max_bytes_per_second;
  o.skip_files.insert(order.committed.begin(), order.committed.end());
  o.publish = [&](const StagedFile& f) {
    return StageAndCommit(order.generation, absl::StrCat("files/", f.name), order.output_dir,
                          f.staged_path, f.name, &f);
  };
  PlanExecutor executor(o);
  // Orders keep coming while the plan runs: an Abort must stop the transport at once.
  std::atomic<bool> done{false};
  std::thread watcher([&] {
    while (!done && !stop_) {
      MaybeHeartbeat(executor.bytes_sent() + executor.bytes_written(), executor.bytes_total(),
                     "transferring");
      auto orders = options_.client->NextOrders(options_.job_id, options_.index,
                                                absl::Now() + absl::Milliseconds(50));
      if (!orders.ok()) continue;
      for (Order& next : *orders) {
        if (next.kind == Order::Kind::kAbort) AbortTransport();
        absl::MutexLock lock(&mu_);
        pending_.push_back(std::move(next));
      }
    }
  });
  absl::Status status = executor.Run();
  done = true;
  watcher.join();
  options_.client
      ->Heartbeat(options_.job_id, order.generation, options_.index,
                  executor.bytes_sent() + executor.bytes_written(), executor.bytes_total(),
                  status.ok() ? "written" : "failed")
      .IgnoreError();
  return status;
}

absl::Status WorkerAgent::Finalize(const Order& order) {
  const std::string staging = fs::JoinPath(
      order.output_dir, absl::StrCat(".staging/g", order.generation, "-sidecars"));
  RETURN_IF_ERROR(options_.fs->CreateDirs(staging));
  for (const auto& [name, bytes] : order.sidecars) {  // the index comes last
    const std::string staged = fs::JoinPath(staging, name);
    RETURN_IF_ERROR(fs::WriteFileAtomically(*options_.fs, staged, bytes));
    RETURN_IF_ERROR(StageAndCommit(order.generation, "sidecars", order.output_dir, staged, name));
  }
  return absl::OkStatus();
}

}  // namespace mxport::worker
