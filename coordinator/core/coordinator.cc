#include "coordinator/core/coordinator.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/base/status_macros.h"

namespace mxport::coordinator {

absl::StatusOr<std::string> NormalizeAbsolutePath(absl::string_view path) {
  if (path.empty() || path.front() != '/') {
    return absl::InvalidArgumentError(absl::StrCat("path '", path, "' must be absolute"));
  }
  std::vector<std::string> parts;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (part == ".") continue;
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.emplace_back(part);
  }
  return absl::StrCat("/", absl::StrJoin(parts, "/"));
}

std::string Coordinator::LeaseResource(const std::string& job_id, const std::string& resource) {
  return absl::StrCat("job/", job_id, "/", resource);
}

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::Create(Options options) {
  if (options.store == nullptr || options.fs == nullptr) {
    return absl::InvalidArgumentError("Coordinator needs a store and a file system");
  }
  std::unique_ptr<Coordinator> c(new Coordinator(std::move(options)));
  const Options& o = c->options_;
  ASSIGN_OR_RETURN(c->jobs_, JobManager::Create({o.store, o.clock}));
  c->leases_ = std::make_unique<LeaseManager>(LeaseManager::Options{
      o.lease_duration, std::max(o.lease_duration, absl::Minutes(10)), o.clock, o.store});
  c->workers_ = std::make_unique<WorkerRegistry>(
      WorkerRegistry::Options{o.clock, o.heartbeat_ttl, o.stall_after});
  c->committer_ = std::make_unique<Committer>(
      Committer::Options{o.fs, o.store, c->leases_.get(), o.clock, o.verify_commit_hash});
  // A restarted coordinator has no sessions, leases or plans in memory: every running job
  // starts a new generation, so its workers register again and skip what was committed.
  for (const JobRecord& job : c->jobs_->List()) {
    if (IsTerminal(job.phase) || job.phase == JobPhase::kPending) continue;
    RETURN_IF_ERROR(
        c->jobs_->NewGeneration(job.spec.job_id, "the coordinator restarted").status());
  }
  return c;
}

absl::Status Coordinator::CheckPaths(const JobSpec& spec) const {
  struct Field {
    const char* name;
    const std::string* value;
  };
  const Field fields[] = {{"source_path", &spec.source_path},
                          {"output_path", &spec.output_path},
                          {"hf_config_dir", &spec.hf_config_dir}};
  for (const Field& f : fields) {
    if (f.value->empty()) continue;
    auto normal = NormalizeAbsolutePath(*f.value);
    if (!normal.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(f.name, ": ", normal.status().message()));
    }
    if (options_.allowed_roots.empty()) continue;
    bool inside = false;
    for (const std::string& root : options_.allowed_roots) {
      inside |= *normal == root || absl::StartsWith(*normal, root == "/" ? root : root + "/");
    }
    if (!inside) {
      return absl::InvalidArgumentError(absl::StrCat(
          f.name, " '", *f.value, "' is outside the allowed roots (",
          absl::StrJoin(options_.allowed_roots, ", "), ")"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<JobView> Coordinator::View(const JobRecord& job) {
  JobView view;
  view.job = job;
  view.workers = workers_->Workers(job.spec.job_id);
  for (const Lease& lease : leases_->Snapshot()) {
    if (absl::StartsWith(lease.resource, LeaseResource(job.spec.job_id, ""))) {
      view.leases.push_back(lease);
    }
  }
  ASSIGN_OR_RETURN(view.committed, options_.store->Commits(job.spec.job_id));
  absl::MutexLock lock(&mu_);
  if (auto it = live_progress_.find(job.spec.job_id);
      it != live_progress_.end() && job.phase < JobPhase::kFinalizing) {
    view.job.bytes_done = it->second.first;
    view.job.bytes_total = std::max(it->second.second, view.job.bytes_total);
  }
  if (auto it = meters_.find(job.spec.job_id); it != meters_.end()) {
    view.bytes_per_second = it->second.bytes_per_second();
    const absl::Duration eta = it->second.Eta(job.bytes_total);
    view.eta_seconds = eta == absl::InfiniteDuration() ? -1 : absl::ToDoubleSeconds(eta);
  }
  return view;
}

absl::StatusOr<JobView> Coordinator::SubmitJob(const JobSpec& spec) {
  RETURN_IF_ERROR(CheckPaths(spec));
  ASSIGN_OR_RETURN(JobRecord job, jobs_->Submit(spec));
  return View(job);
}

absl::StatusOr<JobView> Coordinator::GetJob(const std::string& job_id) {
  ASSIGN_OR_RETURN(JobRecord job, jobs_->Get(job_id));
  return View(job);
}

std::vector<JobView> Coordinator::ListJobs(
    const std::map<std::string, std::string>& label_selector) {
  std::vector<JobView> out;
  for (const JobRecord& job : jobs_->List()) {
    bool match = true;
    for (const auto& [k, v] : label_selector) {
      auto it = job.spec.labels.find(k);
      match &= it != job.spec.labels.end() && it->second == v;
    }
    if (!match) continue;
    auto view = View(job);
    if (view.ok()) out.push_back(std::move(*view));
  }
  return out;
}

absl::StatusOr<JobView> Coordinator::CancelJob(const std::string& job_id,
                                               const std::string& reason) {
  ASSIGN_OR_RETURN(JobRecord job, jobs_->Cancel(job_id, reason));
  leases_->RevokePrefix(LeaseResource(job_id, ""));
  return View(job);
}

absl::StatusOr<std::vector<Event>> Coordinator::Events(const std::string& job_id,
                                                       int64_t after_seq) {
  return jobs_->Events(job_id, after_seq);
}

absl::StatusOr<std::vector<Event>> Coordinator::WaitForEvents(const std::string& job_id,
                                                              int64_t after_seq,
                                                              absl::Time deadline) {
  return jobs_->WaitForEvents(job_id, after_seq, deadline);
}

absl::StatusOr<JobRecord> Coordinator::CurrentGeneration(const std::string& job_id,
                                                         int64_t generation) {
  ASSIGN_OR_RETURN(JobRecord job, jobs_->Get(job_id));
  if (IsTerminal(job.phase)) {
    return absl::FailedPreconditionError(
        absl::StrCat("job '", job_id, "' already ended: ", JobPhaseName(job.phase)));
  }
  if (generation != job.generation) {
    return absl::AbortedError(absl::StrCat("job '", job_id, "' is at generation ",
                                           job.generation, ", not ", generation));
  }
  return job;
}

absl::StatusOr<Coordinator::Registration> Coordinator::RegisterWorker(
    const std::string& job_id, int64_t index, const std::string& address,
    const std::string& host, int64_t gpu) {
  ASSIGN_OR_RETURN(JobRecord job, jobs_->Get(job_id));
  if (IsTerminal(job.phase)) {
    return absl::FailedPreconditionError(
        absl::StrCat("job '", job_id, "' already ended: ", JobPhaseName(job.phase)));
  }
  if (index < 0 || index >= job.spec.workers_expected) {
    return absl::InvalidArgumentError(absl::StrCat("worker index ", index, " is outside [0, ",
                                                   job.spec.workers_expected, ")"));
  }
  const WorkerInfo info = workers_->Register(job_id, index, address, host, gpu);
  RETURN_IF_ERROR(jobs_->Record(job_id, "worker_registered",
                                absl::StrCat("worker ", index, " at ", address, " (", host,
                                             gpu >= 0 ? absl::StrCat(", gpu ", gpu) : "", ")"))
                      .status());
  return Registration{job.generation, info.session, job.spec.workers_expected};
}

absl::Status Coordinator::Heartbeat(const std::string& job_id, int64_t generation,
                                    int64_t index, uint64_t bytes_done, uint64_t bytes_total,
                                    const std::string& activity) {
  ASSIGN_OR_RETURN(const JobRecord current, CurrentGeneration(job_id, generation));
  RETURN_IF_ERROR(workers_->Heartbeat(job_id, index, bytes_done, bytes_total, activity));
  // Once every weight file is committed the job's progress is complete (JobDriver records
  // it); workers' last heartbeats, which land in any order, must not take it back.
  if (current.phase >= JobPhase::kFinalizing) return absl::OkStatus();
  uint64_t done = 0, total = 0;
  for (const WorkerInfo& w : workers_->Workers(job_id)) {
    done += w.bytes_done;
    total += w.bytes_total;
  }
  // Workers count their own work (bytes read and sent, received and written), so a byte that
  // crosses the data plane counts twice. The job shows the same fraction of the plan's bytes.
  if (current.bytes_total > 0 && total > 0) {
    done = static_cast<uint64_t>(static_cast<long double>(current.bytes_total) * done / total);
    total = current.bytes_total;
  }
  // Progress lives in memory; the store gets it at most every progress_persist_interval, so
  // heartbeats never wait for a disk flush.
  bool persist = false;
  const absl::Time now = options_.clock->Now();
  {
    absl::MutexLock lock(&mu_);
    meters_[job_id].Observe(now, done);
    live_progress_[job_id] = {done, total};
    absl::Time& last = persisted_at_[job_id];
    if (now - last >= options_.progress_persist_interval) {
      last = now;
      persist = true;
    }
  }
  if (!persist) return absl::OkStatus();
  ASSIGN_OR_RETURN(JobRecord job, jobs_->Get(job_id));
  return jobs_->UpdateProgress(job_id, generation, done, total, job.files_committed,
                               job.files_total)
      .status();
}

absl::StatusOr<Lease> Coordinator::AcquireLease(const std::string& job_id, int64_t generation,
                                                int64_t index, const std::string& resource) {
  RETURN_IF_ERROR(CurrentGeneration(job_id, generation).status());
  ASSIGN_OR_RETURN(Lease lease, leases_->Acquire(LeaseResource(job_id, resource),
                                                 absl::StrCat("worker-", index)));
  RETURN_IF_ERROR(jobs_->Record(job_id, "lease_granted",
                                absl::StrCat(resource, " to worker ", index, " with token ",
                                             lease.token))
                      .status());
  return lease;
}

absl::StatusOr<Lease> Coordinator::RenewLease(const std::string& job_id, int64_t generation,
                                              const std::string& resource, int64_t token) {
  RETURN_IF_ERROR(CurrentGeneration(job_id, generation).status());
  return leases_->Renew(LeaseResource(job_id, resource), token);
}

absl::StatusOr<CommitResult> Coordinator::CommitFile(const std::string& job_id,
                                                     int64_t generation,
                                                     const CommitRequest& request) {
  ASSIGN_OR_RETURN(JobRecord job, CurrentGeneration(job_id, generation));
  CommitRequest r = request;
  r.job_id = job_id;
  r.generation = generation;
  r.resource = LeaseResource(job_id, request.resource);
  ASSIGN_OR_RETURN(CommitResult result, committer_->Commit(job.spec.output_path, r));
  if (!result.already_committed) {
    ASSIGN_OR_RETURN(std::vector<CommitRecord> commits, options_.store->Commits(job_id));
    RETURN_IF_ERROR(jobs_->UpdateProgress(job_id, generation, job.bytes_done, job.bytes_total,
                                          static_cast<int64_t>(commits.size()), job.files_total)
                        .status());
    RETURN_IF_ERROR(jobs_->Record(job_id, "commit",
                                  absl::StrCat(r.path, " (", r.size, " bytes, token ", r.token,
                                               ")"))
                        .status());
  }
  return result;
}

absl::Status Coordinator::PublishNcclId(const std::string& job_id, int64_t generation,
                                        const std::string& unique_id) {
  RETURN_IF_ERROR(CurrentGeneration(job_id, generation).status());
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = nccl_ids_.try_emplace({job_id, generation}, unique_id);
  if (!inserted && it->second != unique_id) {
    return absl::AlreadyExistsError(absl::StrCat(
        "an NCCL id was already published for job '", job_id, "' generation ", generation));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Coordinator::GetNcclId(const std::string& job_id,
                                                   int64_t generation) {
  RETURN_IF_ERROR(CurrentGeneration(job_id, generation).status());
  absl::MutexLock lock(&mu_);
  auto it = nccl_ids_.find({job_id, generation});
  if (it == nccl_ids_.end()) {
    return absl::UnavailableError(absl::StrCat("rank 0 of job '", job_id, "' generation ",
                                               generation, " has not published its NCCL id"));
  }
  return it->second;
}

absl::StatusOr<JobRecord> Coordinator::Advance(const std::string& job_id, int64_t generation,
                                               JobPhase to, const std::string& message) {
  ASSIGN_OR_RETURN(JobRecord job, jobs_->Transition(job_id, generation, to, message));
  if (IsTerminal(to)) {
    leases_->RevokePrefix(LeaseResource(job_id, ""));
    for (const WorkerInfo& w : workers_->Workers(job_id)) {
      workers_->MarkDone(job_id, w.index).IgnoreError();  // they leave; that is not a loss
    }
  }
  return job;
}

std::vector<WorkerChange> Coordinator::Tick() {
  std::vector<WorkerChange> changes = workers_->Sweep();
  for (const WorkerChange& change : changes) {
    const std::string& job_id = change.worker.job_id;
    jobs_
        ->Record(job_id, absl::StrCat("worker_", absl::AsciiStrToLower(WorkerStateName(change.to))),
                 absl::StrCat("worker ", change.worker.index, " is ", WorkerStateName(change.to),
                              " (was ", WorkerStateName(change.from), ")"))
        .IgnoreError();
    if (change.to != WorkerState::kLost) continue;
    // Fence first: every lease of the job goes, then the generation moves on.
    leases_->RevokePrefix(LeaseResource(job_id, ""));
    jobs_->NewGeneration(job_id, absl::StrCat("worker ", change.worker.index, " lost"))
        .IgnoreError();
  }
  return changes;
}

}  // namespace mxport::coordinator
