// The in-memory Store: the same contract as the SQLite store (see store_test.cc, which runs one
// conformance suite against both), with nothing surviving the object. For tests.
//
// Semantics shared with the SQLite store:
//  - ListJobs orders by created_at at microsecond resolution, ties by first insertion.
//  - AppendEvent and Events are NotFound for a job that was never put; commits are keyed by
//    (job_id, path) alone and need no job record.
//  - Events with limit <= 0 returns every event after after_seq.
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/core/store.h"

namespace mxport::coordinator {
namespace {

class MemoryStore final : public Store {
 public:
  absl::Status PutJob(const JobRecord& job) override {
    absl::MutexLock lock(&mu_);
    auto [it, inserted] = jobs_.try_emplace(job.spec.job_id);
    if (inserted) it->second.insert_order = next_insert_order_++;
    it->second.record = job;
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<JobRecord>> GetJob(const std::string& job_id) override {
    absl::MutexLock lock(&mu_);
    auto it = jobs_.find(job_id);
    if (it == jobs_.end()) return std::optional<JobRecord>();
    return std::optional<JobRecord>(it->second.record);
  }

  absl::StatusOr<std::vector<JobRecord>> ListJobs() override {
    absl::MutexLock lock(&mu_);
    std::vector<const StoredJob*> order;
    order.reserve(jobs_.size());
    for (const auto& [id, stored] : jobs_) order.push_back(&stored);
    std::sort(order.begin(), order.end(), [](const StoredJob* a, const StoredJob* b) {
      const int64_t a_micros = absl::ToUnixMicros(a->record.created_at);
      const int64_t b_micros = absl::ToUnixMicros(b->record.created_at);
      if (a_micros != b_micros) return a_micros < b_micros;
      return a->insert_order < b->insert_order;
    });
    std::vector<JobRecord> jobs;
    jobs.reserve(order.size());
    for (const StoredJob* stored : order) jobs.push_back(stored->record);
    return jobs;
  }

  absl::StatusOr<Event> AppendEvent(Event event) override {
    absl::MutexLock lock(&mu_);
    if (!jobs_.contains(event.job_id)) return UnknownJob(event.job_id);
    std::vector<Event>& events = events_[event.job_id];
    event.seq = static_cast<int64_t>(events.size()) + 1;
    events.push_back(event);
    return event;
  }

  absl::StatusOr<std::vector<Event>> Events(const std::string& job_id, int64_t after_seq,
                                            int64_t limit) override {
    absl::MutexLock lock(&mu_);
    if (!jobs_.contains(job_id)) return UnknownJob(job_id);
    std::vector<Event> result;
    auto it = events_.find(job_id);
    if (it == events_.end()) return result;
    // Events are stored in seq order, seq == index + 1.
    const std::vector<Event>& events = it->second;
    const int64_t size = static_cast<int64_t>(events.size());
    for (int64_t i = std::max<int64_t>(after_seq, 0); i < size; ++i) {
      if (limit > 0 && static_cast<int64_t>(result.size()) >= limit) break;
      result.push_back(events[i]);
    }
    return result;
  }

  absl::StatusOr<int64_t> NextToken() override {
    absl::MutexLock lock(&mu_);
    return ++last_token_;
  }

  absl::Status PutCommit(const CommitRecord& commit) override {
    absl::MutexLock lock(&mu_);
    commits_[{commit.job_id, commit.path}] = commit;
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<CommitRecord>> GetCommit(const std::string& job_id,
                                                        const std::string& path) override {
    absl::MutexLock lock(&mu_);
    auto it = commits_.find({job_id, path});
    if (it == commits_.end()) return std::optional<CommitRecord>();
    return std::optional<CommitRecord>(it->second);
  }

  // Ordered by path.
  absl::StatusOr<std::vector<CommitRecord>> Commits(const std::string& job_id) override {
    absl::MutexLock lock(&mu_);
    std::vector<CommitRecord> result;
    for (auto it = commits_.lower_bound({job_id, ""});
         it != commits_.end() && it->first.first == job_id; ++it) {
      result.push_back(it->second);
    }
    return result;
  }

 private:
  struct StoredJob {
    int64_t insert_order = 0;
    JobRecord record;
  };

  static absl::Status UnknownJob(const std::string& job_id) {
    return absl::NotFoundError(absl::StrCat("no job '", job_id, "' in the store"));
  }

  absl::Mutex mu_;
  std::map<std::string, StoredJob> jobs_ ABSL_GUARDED_BY(mu_);
  int64_t next_insert_order_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, std::vector<Event>> events_ ABSL_GUARDED_BY(mu_);
  int64_t last_token_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::pair<std::string, std::string>, CommitRecord> commits_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::unique_ptr<Store> NewMemoryStore() { return std::make_unique<MemoryStore>(); }

}  // namespace mxport::coordinator
