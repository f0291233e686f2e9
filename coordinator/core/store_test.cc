// One conformance suite run against both stores, then the SQLite store's durability: reopen,
// SIGKILL of a writing process, unusable paths.
#include "coordinator/core/store.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mxport::coordinator {
namespace {

using ::mxport::testing::IsOkAndHolds;
using ::mxport::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::Eq;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Optional;
using ::testing::Property;
using ::testing::SizeIs;

const absl::Time kT0 = absl::FromUnixNanos(1'700'000'000'123'456'789);

// A fresh directory under the test temp dir, removed with the object.
class TempDir {
 public:
  TempDir() {
    std::string pattern = ::testing::TempDir() + "mxport_store_test_XXXXXX";
    char* made = mkdtemp(pattern.data());
    EXPECT_NE(made, nullptr) << "mkdtemp: " << errno;
    path_ = pattern;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

JobRecord Job(const std::string& id, absl::Time created_at) {
  JobRecord job;
  job.spec.job_id = id;
  job.spec.source_path = "/ckpt/" + id;
  job.spec.output_path = "/out/" + id;
  job.spec.iteration = 7;
  job.spec.expert_map = {{0, 1}, {2, 3}};
  job.spec.labels = {{"owner", "test"}};
  job.created_at = created_at;
  job.updated_at = created_at + absl::Nanoseconds(0.25);
  job.bytes_total = ~uint64_t{0};
  return job;
}

Event NewEvent(const std::string& job_id, const std::string& message) {
  Event event;
  event.job_id = job_id;
  event.generation = 2;
  event.time = kT0 + absl::Nanoseconds(17);
  event.type = "phase";
  event.message = message;
  return event;
}

CommitRecord Commit(const std::string& job_id, const std::string& path, int64_t token) {
  return CommitRecord{job_id, path, uint64_t{1} << 63, std::string(64, 'a'), token, 1,
                      kT0 + absl::Microseconds(token)};
}

auto HasId(const std::string& id) {
  return Field(&JobRecord::spec, Field(&JobSpec::job_id, Eq(id)));
}
auto HasSeq(int64_t seq) { return Field(&Event::seq, Eq(seq)); }

enum class Kind { kMemory, kSqlite };

class StoreConformanceTest : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    if (GetParam() == Kind::kMemory) {
      store_ = NewMemoryStore();
    } else {
      ASSERT_OK_AND_ASSIGN(store_, OpenSqliteStore(dir_.path() + "/store.db"));
    }
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_P(StoreConformanceTest, PutGetListJobs) {
  EXPECT_THAT(store_->GetJob("nope"), IsOkAndHolds(Eq(std::nullopt)));
  EXPECT_THAT(store_->ListJobs(), IsOkAndHolds(IsEmpty()));

  const JobRecord c = Job("c", kT0 + absl::Seconds(3));
  const JobRecord a = Job("a", kT0 + absl::Seconds(1));
  const JobRecord b2 = Job("b2", kT0 + absl::Seconds(2));
  const JobRecord b1 = Job("b1", kT0 + absl::Seconds(2));  // same time as b2, put later
  for (const JobRecord& job : {c, a, b2, b1}) ASSERT_OK(store_->PutJob(job));
  EXPECT_THAT(store_->GetJob("a"), IsOkAndHolds(Optional(Eq(a))));
  EXPECT_THAT(store_->ListJobs(), IsOkAndHolds(ElementsAre(Eq(a), Eq(b2), Eq(b1), Eq(c))));

  // Replacing keeps the job's place.
  JobRecord a_done = a;
  a_done.phase = JobPhase::kSucceeded;
  a_done.message = "done";
  a_done.files_committed = 9;
  ASSERT_OK(store_->PutJob(a_done));
  EXPECT_THAT(store_->GetJob("a"), IsOkAndHolds(Optional(Eq(a_done))));
  EXPECT_THAT(store_->ListJobs(),
              IsOkAndHolds(ElementsAre(Eq(a_done), HasId("b2"), HasId("b1"), HasId("c"))));
}

TEST_P(StoreConformanceTest, EventsAreNumberedPerJobFromOne) {
  EXPECT_THAT(store_->AppendEvent(NewEvent("ghost", "x")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("ghost")));
  EXPECT_THAT(store_->Events("ghost", 0, 10), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(store_->PutJob(Job("j1", kT0)));
  ASSERT_OK(store_->PutJob(Job("j2", kT0)));
  EXPECT_THAT(store_->Events("j1", 0, 10), IsOkAndHolds(IsEmpty()));

  std::vector<Event> j1_events;
  for (int i = 0; i < 5; ++i) {
    Event event = NewEvent("j1", absl::StrCat("m", i));
    event.seq = 99;  // ignored: the store assigns it
    ASSERT_OK_AND_ASSIGN(Event stored, store_->AppendEvent(event));
    event.seq = i + 1;
    EXPECT_EQ(stored, event);
    j1_events.push_back(stored);
    if (i < 2) {
      EXPECT_THAT(store_->AppendEvent(NewEvent("j2", "other")), IsOkAndHolds(HasSeq(i + 1)));
    }
  }
  EXPECT_THAT(store_->Events("j1", 0, 0), IsOkAndHolds(Eq(j1_events)));
  EXPECT_THAT(store_->Events("j1", 0, 100), IsOkAndHolds(Eq(j1_events)));
  EXPECT_THAT(store_->Events("j1", 2, 2), IsOkAndHolds(ElementsAre(HasSeq(3), HasSeq(4))));
  EXPECT_THAT(store_->Events("j1", 4, 10), IsOkAndHolds(ElementsAre(Eq(j1_events[4]))));
  EXPECT_THAT(store_->Events("j1", 5, 10), IsOkAndHolds(IsEmpty()));
  EXPECT_THAT(store_->Events("j2", 0, 10), IsOkAndHolds(ElementsAre(HasSeq(1), HasSeq(2))));

  // Paging through with a small limit sees every event once, in order.
  std::vector<Event> paged;
  for (int64_t after = 0;;) {
    ASSERT_OK_AND_ASSIGN(std::vector<Event> page, store_->Events("j1", after, 2));
    if (page.empty()) break;
    EXPECT_LE(page.size(), 2u);
    after = page.back().seq;
    paged.insert(paged.end(), page.begin(), page.end());
  }
  EXPECT_EQ(paged, j1_events);
}

TEST_P(StoreConformanceTest, CommitsUpsertGetList) {
  EXPECT_THAT(store_->GetCommit("j1", "model-00001.safetensors"),
              IsOkAndHolds(Eq(std::nullopt)));
  EXPECT_THAT(store_->Commits("j1"), IsOkAndHolds(IsEmpty()));

  const CommitRecord b = Commit("j1", "model-00002.safetensors", 5);
  const CommitRecord a = Commit("j1", "model-00001.safetensors", 6);
  const CommitRecord other = Commit("j2", "model-00001.safetensors", 7);
  for (const CommitRecord& commit : {b, a, other}) ASSERT_OK(store_->PutCommit(commit));
  EXPECT_THAT(store_->GetCommit("j1", a.path), IsOkAndHolds(Optional(Eq(a))));
  EXPECT_THAT(store_->Commits("j1"), IsOkAndHolds(ElementsAre(Eq(a), Eq(b))));  // by path

  CommitRecord a2 = a;
  a2.content_hash = std::string(64, 'f');
  a2.token = 11;
  a2.generation = 2;
  a2.size = 3;
  ASSERT_OK(store_->PutCommit(a2));
  EXPECT_THAT(store_->GetCommit("j1", a.path), IsOkAndHolds(Optional(Eq(a2))));
  EXPECT_THAT(store_->Commits("j1"), IsOkAndHolds(ElementsAre(Eq(a2), Eq(b))));
  EXPECT_THAT(store_->Commits("j2"), IsOkAndHolds(ElementsAre(Eq(other))));
}

TEST_P(StoreConformanceTest, NextTokenStrictlyIncreases) {
  int64_t last = 0;
  for (int i = 0; i < 50; ++i) {
    ASSERT_OK_AND_ASSIGN(int64_t token, store_->NextToken());
    EXPECT_GT(token, last);
    last = token;
  }
}

TEST_P(StoreConformanceTest, ConcurrentNextTokenCallsGetDistinctTokens) {
  constexpr int kThreads = 8;
  constexpr int kCalls = 200;
  std::vector<std::vector<int64_t>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, &mine = got[t]] {
      for (int i = 0; i < kCalls; ++i) {
        auto token = store_->NextToken();
        EXPECT_OK(token);
        mine.push_back(token.ok() ? *token : -1);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::set<int64_t> all;
  for (const std::vector<int64_t>& mine : got) {
    ASSERT_THAT(mine, SizeIs(kCalls));
    EXPECT_EQ(std::adjacent_find(mine.begin(), mine.end(), std::greater_equal<int64_t>()),
              mine.end());  // strictly increasing within the thread
    all.insert(mine.begin(), mine.end());
  }
  EXPECT_EQ(all.size(), size_t{kThreads * kCalls});
  EXPECT_GT(*all.begin(), 0);
}

TEST_P(StoreConformanceTest, ConcurrentAppendsGetDistinctSeqs) {
  ASSERT_OK(store_->PutJob(Job("j", kT0)));
  constexpr int kThreads = 4;
  constexpr int kCalls = 25;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 0; i < kCalls; ++i) {
        EXPECT_OK(store_->AppendEvent(NewEvent("j", absl::StrCat(t, "/", i))));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  ASSERT_OK_AND_ASSIGN(std::vector<Event> events, store_->Events("j", 0, 0));
  ASSERT_THAT(events, SizeIs(kThreads * kCalls));
  for (size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i].seq, int64_t(i) + 1);
}

INSTANTIATE_TEST_SUITE_P(Stores, StoreConformanceTest,
                         ::testing::Values(Kind::kMemory, Kind::kSqlite),
                         [](const ::testing::TestParamInfo<Kind>& info) {
                           return info.param == Kind::kMemory ? "Memory" : "Sqlite";
                         });

// --- SQLite durability -------------------------------------------------------------------

TEST(SqliteStoreTest, EverythingSurvivesReopen) {
  TempDir dir;
  const std::string path = dir.path() + "/store.db";
  const JobRecord job = Job("j1", kT0);
  const CommitRecord commit = Commit("j1", "model.safetensors", 3);
  std::vector<Event> events;
  int64_t last_token = 0;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenSqliteStore(path));
    ASSERT_OK(store->PutJob(job));
    ASSERT_OK(store->PutJob(Job("j2", kT0 + absl::Seconds(1))));
    for (int i = 0; i < 3; ++i) {
      ASSERT_OK_AND_ASSIGN(events.emplace_back(), store->AppendEvent(NewEvent("j1", "e")));
    }
    ASSERT_OK(store->PutCommit(commit));
    for (int i = 0; i < 10; ++i) {
      ASSERT_OK_AND_ASSIGN(last_token, store->NextToken());
    }
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenSqliteStore(path));
  EXPECT_THAT(store->GetJob("j1"), IsOkAndHolds(Optional(Eq(job))));
  EXPECT_THAT(store->ListJobs(), IsOkAndHolds(ElementsAre(Eq(job), HasId("j2"))));
  EXPECT_THAT(store->Events("j1", 0, 0), IsOkAndHolds(Eq(events)));
  EXPECT_THAT(store->AppendEvent(NewEvent("j1", "after")), IsOkAndHolds(HasSeq(4)));
  EXPECT_THAT(store->Commits("j1"), IsOkAndHolds(ElementsAre(Eq(commit))));
  EXPECT_THAT(store->NextToken(), IsOkAndHolds(Eq(last_token + 1)));
}

bool WriteFull(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool ReadFull(int fd, void* data, size_t size) {
  char* p = static_cast<char*>(data);
  while (size > 0) {
    const ssize_t n = read(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// The forked writer: issues tokens and appends one event per token, forever; reports each token
// on `fd` once both calls returned. Never returns into the test framework.
[[noreturn]] void RunWriter(const std::string& path, int fd) {
  auto store = OpenSqliteStore(path);
  if (!store.ok()) {
    fprintf(stderr, "writer: %s\n", store.status().ToString().c_str());
    _exit(2);
  }
  for (;;) {
    auto token = (*store)->NextToken();
    if (!token.ok()) _exit(3);
    if (!(*store)->AppendEvent(NewEvent("victim", absl::StrCat(*token))).ok()) _exit(4);
    if (!WriteFull(fd, &*token, sizeof(*token))) _exit(5);
  }
}

TEST(SqliteStoreTest, SurvivesSigkillOfTheWriter) {
  TempDir dir;
  const std::string path = dir.path() + "/store.db";
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenSqliteStore(path));
    ASSERT_OK(store->PutJob(Job("victim", kT0)));
  }
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    RunWriter(path, fds[1]);
  }
  close(fds[1]);
  constexpr int kReported = 100;
  std::vector<int64_t> reported;
  int64_t token = 0;
  while (reported.size() < kReported && ReadFull(fds[0], &token, sizeof(token))) {
    reported.push_back(token);
  }
  kill(pid, SIGKILL);  // the writer is mid-loop: possibly inside a transaction
  int wait_status = 0;
  ASSERT_EQ(waitpid(pid, &wait_status, 0), pid);
  close(fds[0]);
  ASSERT_THAT(reported, SizeIs(kReported)) << "the writer exited early, status " << wait_status;
  EXPECT_TRUE(WIFSIGNALED(wait_status) && WTERMSIG(wait_status) == SIGKILL);

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenSqliteStore(path));
  ASSERT_OK_AND_ASSIGN(int64_t next, store->NextToken());
  EXPECT_GT(next, *std::max_element(reported.begin(), reported.end()));
  ASSERT_OK_AND_ASSIGN(std::vector<Event> events, store->Events("victim", 0, 0));
  std::set<std::string> messages;
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].seq, int64_t(i) + 1);
    messages.insert(events[i].message);
  }
  for (int64_t t : reported) EXPECT_TRUE(messages.contains(absl::StrCat(t))) << t;
}

TEST(SqliteStoreTest, UnusablePathsGiveClearErrors) {
  TempDir dir;
  const std::string file = dir.path() + "/plain-file";
  std::ofstream(file) << "not a directory";
  const std::string under_file = file + "/store.db";
  EXPECT_THAT(OpenSqliteStore(under_file),
              StatusIs(absl::StatusCode::kInternal,
                       AllOf(HasSubstr(under_file), HasSubstr("unable to open"))));
  EXPECT_THAT(OpenSqliteStore(dir.path()),  // a directory
              StatusIs(absl::StatusCode::kInternal, HasSubstr(dir.path())));
  EXPECT_THAT(OpenSqliteStore(file),  // not a database
              StatusIs(absl::StatusCode::kInternal,
                       AllOf(HasSubstr(file), HasSubstr("not a database"))));
  EXPECT_THAT(OpenSqliteStore(""), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(SqliteStoreTest, RejectsANewerSchema) {
  TempDir dir;
  const std::string path = dir.path() + "/store.db";
  ASSERT_OK(OpenSqliteStore(path).status());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  EXPECT_EQ(sqlite3_exec(db, "UPDATE schema_version SET version = 99", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  EXPECT_THAT(OpenSqliteStore(path),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr(path), HasSubstr("schema version 99"))));
}

// A database written by schema version 1 (the hash column was `sha256`, bare hex) opens with
// its commits intact, their hashes tagged with the algorithm.
TEST(SqliteStoreTest, MigratesVersion1Commits) {
  TempDir dir;
  const std::string path = dir.path() + "/store.db";
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  const char* v1 = R"sql(
    CREATE TABLE schema_version(version INTEGER NOT NULL);
    INSERT INTO schema_version(version) VALUES(1);
    CREATE TABLE commits(job_id TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL,
      sha256 TEXT NOT NULL, token INTEGER NOT NULL, generation INTEGER NOT NULL,
      time TEXT NOT NULL, PRIMARY KEY(job_id, path)) WITHOUT ROWID;
    INSERT INTO commits VALUES('j', 'config.json', 7, 'ab12', 3, 0, '2026-11-24T21:00:00Z');
  )sql";
  ASSERT_EQ(sqlite3_exec(db, v1, nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  for (int open = 0; open < 2; ++open) {  // the second open finds version 2
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenSqliteStore(path));
    ASSERT_OK_AND_ASSIGN(std::optional<CommitRecord> c, store->GetCommit("j", "config.json"));
    ASSERT_TRUE(c.has_value());
    EXPECT_EQ(c->content_hash, "sha256:ab12");
    EXPECT_EQ(c->size, 7u);
    EXPECT_EQ(c->token, 3);
  }
}

}  // namespace
}  // namespace mxport::coordinator
