#include "coordinator/core/job_manager.h"

#include <algorithm>
#include <array>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"

namespace mxport::coordinator {
namespace {

using P = JobPhase;

struct Edge {
  JobPhase from;
  JobPhase to;
};
// The forward edges; FAILED and CANCELLED are reachable from every non-terminal phase, and
// PENDING (a new generation) only through NewGeneration.
constexpr std::array<Edge, 5> kForward = {{
    {P::kPending, P::kScanning},
    {P::kScanning, P::kPlanned},
    {P::kPlanned, P::kTransferring},
    {P::kTransferring, P::kFinalizing},
    {P::kFinalizing, P::kSucceeded},
}};

}  // namespace

bool JobManager::Allowed(JobPhase from, JobPhase to) {
  if (IsTerminal(from)) return false;
  if (to == P::kFailed || to == P::kCancelled) return true;
  return std::any_of(kForward.begin(), kForward.end(),
                     [&](const Edge& e) { return e.from == from && e.to == to; });
}

absl::StatusOr<std::unique_ptr<JobManager>> JobManager::Create(Options options) {
  std::unique_ptr<JobManager> manager(new JobManager(std::move(options)));
  ASSIGN_OR_RETURN(std::vector<JobRecord> jobs, manager->options_.store->ListJobs());
  absl::MutexLock lock(&manager->mu_);
  for (JobRecord& job : jobs) manager->jobs_[job.spec.job_id] = std::move(job);
  return manager;
}

absl::StatusOr<JobRecord*> JobManager::Find(const std::string& job_id) {
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("no job '", job_id, "'"));
  return &it->second;
}

absl::StatusOr<JobRecord> JobManager::Save(JobRecord job, const std::string& event_type,
                                           const std::string& event_message) {
  job.updated_at = options_.clock->Now();
  RETURN_IF_ERROR(options_.store->PutJob(job));
  jobs_[job.spec.job_id] = job;
  if (!event_type.empty()) {
    Event event;
    event.job_id = job.spec.job_id;
    event.generation = job.generation;
    event.time = job.updated_at;
    event.type = event_type;
    event.message = event_message;
    RETURN_IF_ERROR(options_.store->AppendEvent(std::move(event)).status());
    ++event_counter_;
  }
  return job;
}

absl::StatusOr<JobRecord> JobManager::Submit(const JobSpec& spec) {
  RETURN_IF_ERROR(ValidateJobSpec(spec));
  absl::MutexLock lock(&mu_);
  if (auto it = jobs_.find(spec.job_id); it != jobs_.end()) {
    if (it->second.spec == spec) return it->second;
    return absl::AlreadyExistsError(absl::StrCat(
        "job '", spec.job_id, "' exists with a different spec; choose another job id"));
  }
  JobRecord job;
  job.spec = spec;
  job.created_at = options_.clock->Now();
  return Save(std::move(job), "submitted",
              absl::StrCat("export of ", spec.source_path, " to ", spec.output_path, " with ",
                           spec.workers_expected, " workers"));
}

absl::StatusOr<JobRecord> JobManager::Get(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(JobRecord * job, Find(job_id));
  return *job;
}

std::vector<JobRecord> JobManager::List() {
  absl::MutexLock lock(&mu_);
  std::vector<JobRecord> out;
  for (const auto& [id, job] : jobs_) out.push_back(job);
  std::sort(out.begin(), out.end(), [](const JobRecord& a, const JobRecord& b) {
    return std::tie(a.created_at, a.spec.job_id) < std::tie(b.created_at, b.spec.job_id);
  });
  return out;
}

absl::StatusOr<JobRecord> JobManager::Cancel(const std::string& job_id,
                                             const std::string& reason) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(JobRecord * job, Find(job_id));
  if (IsTerminal(job->phase)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job '", job_id, "' already ended: ", JobPhaseName(job->phase)));
  }
  JobRecord next = *job;
  next.phase = P::kCancelled;
  next.message = reason.empty() ? "cancelled by request" : reason;
  return Save(std::move(next), "phase", absl::StrCat("CANCELLED: ", next.message));
}

absl::StatusOr<JobRecord> JobManager::Transition(const std::string& job_id, int64_t generation,
                                                 JobPhase to, const std::string& message) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(JobRecord * job, Find(job_id));
  if (generation != job->generation) {
    return absl::AbortedError(absl::StrCat("job '", job_id, "' is at generation ",
                                           job->generation, ", not ", generation));
  }
  if (!Allowed(job->phase, to)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job '", job_id, "' cannot go from ", JobPhaseName(job->phase), " to ",
        JobPhaseName(to)));
  }
  JobRecord next = *job;
  next.phase = to;
  // From FINALIZING on every weight file is committed: the data plane's bytes are all done.
  if (to == P::kFinalizing || to == P::kSucceeded) next.bytes_done = next.bytes_total;
  if (to == P::kFailed || !message.empty()) next.message = message;
  return Save(std::move(next), "phase",
              message.empty() ? std::string(JobPhaseName(to))
                              : absl::StrCat(JobPhaseName(to), ": ", message));
}

absl::StatusOr<JobRecord> JobManager::NewGeneration(const std::string& job_id,
                                                    const std::string& reason) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(JobRecord * job, Find(job_id));
  if (IsTerminal(job->phase)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job '", job_id, "' already ended: ", JobPhaseName(job->phase)));
  }
  JobRecord next = *job;
  ++next.generation;
  ++next.restarts;
  next.phase = P::kPending;
  return Save(std::move(next), "generation",
              absl::StrCat("generation ", job->generation + 1, ": ", reason));
}

absl::StatusOr<JobRecord> JobManager::UpdateProgress(const std::string& job_id,
                                                     int64_t generation, uint64_t bytes_done,
                                                     uint64_t bytes_total,
                                                     int64_t files_committed,
                                                     int64_t files_total) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(JobRecord * job, Find(job_id));
  if (generation != job->generation) {
    return absl::AbortedError(absl::StrCat("job '", job_id, "' is at generation ",
                                           job->generation, ", not ", generation));
  }
  JobRecord next = *job;
  next.bytes_done = bytes_done;
  next.bytes_total = bytes_total;
  next.files_committed = files_committed;
  next.files_total = files_total;
  // Reports race (a heartbeat's snapshot may land after a newer one): within a generation
  // commits only grow, and from FINALIZING on the bytes are all done.
  next.files_committed = std::max(files_committed, job->files_committed);
  if (job->phase >= P::kFinalizing) {
    next.bytes_total = std::max(bytes_total, job->bytes_total);
    next.bytes_done = next.bytes_total;
  }
  return Save(std::move(next), "", "");
}

absl::StatusOr<Event> JobManager::Record(const std::string& job_id, const std::string& type,
                                         const std::string& message) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(JobRecord * job, Find(job_id));
  Event event;
  event.job_id = job_id;
  event.generation = job->generation;
  event.time = options_.clock->Now();
  event.type = type;
  event.message = message;
  ASSIGN_OR_RETURN(Event stored, options_.store->AppendEvent(std::move(event)));
  ++event_counter_;
  return stored;
}

absl::StatusOr<std::vector<Event>> JobManager::Events(const std::string& job_id,
                                                      int64_t after_seq, int64_t limit) {
  {
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(Find(job_id).status());
  }
  return options_.store->Events(job_id, after_seq, limit);
}

absl::StatusOr<std::vector<Event>> JobManager::WaitForEvents(const std::string& job_id,
                                                             int64_t after_seq,
                                                             absl::Time deadline) {
  int64_t seen = 0;
  {
    absl::MutexLock lock(&mu_);
    seen = event_counter_;  // read before looking, so no event can slip between
  }
  ASSIGN_OR_RETURN(std::vector<Event> events, Events(job_id, after_seq));
  if (!events.empty()) return events;
  {
    absl::MutexLock lock(&mu_);
    auto changed = [this, seen]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return event_counter_ != seen;
    };
    mu_.AwaitWithDeadline(absl::Condition(&changed), deadline);
  }
  return Events(job_id, after_seq);
}

}  // namespace mxport::coordinator
