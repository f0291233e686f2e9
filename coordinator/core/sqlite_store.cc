// The SQLite Store: one database file in WAL mode with synchronous=FULL, so every mutation is
// in the fsynced write-ahead log when the call returns. One connection, used under a mutex.
//
// Schema (version 2, recorded in schema_version):
//   jobs(job_id PK, json, created_unix_micros)      JobRecordToJson text
//   events(job_id, seq, generation, time, type, message, PK(job_id, seq))
//   tokens(id = 1, value)                            the one fencing-token counter
//   commits(job_id, path, size, content_hash, token, generation, time, PK(job_id, path))
// Version 1 named the hash column sha256 and held bare SHA-256 hex; opening such a database
// renames the column and prefixes its values with "sha256:" (content_hash.h's form is
// "<algorithm>:<hex>"), in the transaction that records version 2.
// Times are RFC 3339 text (FormatTimeRfc3339), so they round-trip exactly; uint64 sizes are
// stored bit-for-bit in INTEGER columns. Only constant SQL is compiled; every value is bound.
//
// Semantics shared with the in-memory store: see memory_store.cc. Errors: Unavailable for
// SQLITE_BUSY/SQLITE_LOCKED (another process holds the database past the busy timeout),
// Internal for the rest of SQLite's errors and for rows that do not decode, FailedPrecondition
// for a database written with a newer schema; messages carry the database path.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <sqlite3.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/base/status_macros.h"
#include "coordinator/core/store.h"

namespace mxport::coordinator {
namespace {

constexpr int64_t kSchemaVersion = 2;
constexpr int kBusyTimeoutMs = 10000;

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS jobs(
  job_id TEXT PRIMARY KEY NOT NULL,
  json TEXT NOT NULL,
  created_unix_micros INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs(created_unix_micros);
CREATE TABLE IF NOT EXISTS events(
  job_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  generation INTEGER NOT NULL,
  time TEXT NOT NULL,
  type TEXT NOT NULL,
  message TEXT NOT NULL,
  PRIMARY KEY(job_id, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tokens(
  id INTEGER PRIMARY KEY CHECK(id = 1),
  value INTEGER NOT NULL);
INSERT OR IGNORE INTO tokens(id, value) VALUES(1, 0);
CREATE TABLE IF NOT EXISTS commits(
  job_id TEXT NOT NULL,
  path TEXT NOT NULL,
  size INTEGER NOT NULL,
  content_hash TEXT NOT NULL,
  token INTEGER NOT NULL,
  generation INTEGER NOT NULL,
  time TEXT NOT NULL,
  PRIMARY KEY(job_id, path)) WITHOUT ROWID;
)sql";

struct StmtDeleter {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtDeleter>;
using Param = std::variant<int64_t, std::string>;

std::string ColumnString(sqlite3_stmt* stmt, int column) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, column));
  if (text == nullptr) return std::string();
  return std::string(text, static_cast<size_t>(sqlite3_column_bytes(stmt, column)));
}

class SqliteStore final : public Store {
 public:
  // Takes ownership of `db`, which is open (possibly in a failed state).
  SqliteStore(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}
  ~SqliteStore() override { sqlite3_close_v2(db_); }

  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  // Sets the pragmas and creates or checks the schema.
  absl::Status Init() {
    absl::MutexLock lock(&mu_);
    sqlite3_extended_result_codes(db_, 1);
    int rc = sqlite3_busy_timeout(db_, kBusyTimeoutMs);
    if (rc != SQLITE_OK) return Error(rc, "setting the busy timeout");
    {
      ASSIGN_OR_RETURN(StmtPtr stmt, Prepare("PRAGMA journal_mode=WAL", {}));
      ASSIGN_OR_RETURN(bool row, Step(stmt.get(), "enabling WAL"));
      const std::string mode = row ? ColumnString(stmt.get(), 0) : "";
      if (mode != "wal") {
        return absl::FailedPreconditionError(absl::StrCat(
            "SQLite store ", path_, ": cannot use WAL journal mode (got '", mode, "')"));
      }
    }
    RETURN_IF_ERROR(Exec("PRAGMA synchronous=FULL"));
    return InTransaction([&]() -> absl::Status {
      RETURN_IF_ERROR(Exec(kSchema));
      ASSIGN_OR_RETURN(StmtPtr select, Prepare("SELECT MAX(version) FROM schema_version", {}));
      ASSIGN_OR_RETURN(bool row, Step(select.get(), "reading the schema version"));
      if (!row || sqlite3_column_type(select.get(), 0) == SQLITE_NULL) {
        ASSIGN_OR_RETURN(StmtPtr insert, Prepare("INSERT INTO schema_version(version) VALUES(?1)",
                                                 {kSchemaVersion}));
        return Step(insert.get(), "writing the schema version").status();
      }
      const int64_t version = sqlite3_column_int64(select.get(), 0);
      if (version == 1) return MigrateFromVersion1();
      if (version != kSchemaVersion) {
        return absl::FailedPreconditionError(
            absl::StrCat("SQLite store ", path_, " has schema version ", version,
                         "; this build reads version ", kSchemaVersion));
      }
      return absl::OkStatus();
    });
  }

  absl::Status PutJob(const JobRecord& job) override {
    std::string json;
    try {
      json = JobRecordToJson(job).dump();
    } catch (const nlohmann::json::exception& e) {
      return absl::InvalidArgumentError(
          absl::StrCat("job '", job.spec.job_id, "' cannot be stored as JSON: ", e.what()));
    }
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(StmtPtr stmt,
                     Prepare("INSERT INTO jobs(job_id, json, created_unix_micros) "
                             "VALUES(?1, ?2, ?3) ON CONFLICT(job_id) DO UPDATE SET "
                             "json = excluded.json, "
                             "created_unix_micros = excluded.created_unix_micros",
                             {job.spec.job_id, std::move(json),
                              absl::ToUnixMicros(job.created_at)}));
    return Step(stmt.get(), "writing a job").status();
  }

  absl::StatusOr<std::optional<JobRecord>> GetJob(const std::string& job_id) override {
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(StmtPtr stmt, Prepare("SELECT json FROM jobs WHERE job_id = ?1", {job_id}));
    ASSIGN_OR_RETURN(bool row, Step(stmt.get(), "reading a job"));
    if (!row) return std::optional<JobRecord>();
    ASSIGN_OR_RETURN(JobRecord job, DecodeJob(stmt.get()));
    return std::optional<JobRecord>(std::move(job));
  }

  absl::StatusOr<std::vector<JobRecord>> ListJobs() override {
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(StmtPtr stmt,
                     Prepare("SELECT json FROM jobs ORDER BY created_unix_micros, rowid", {}));
    std::vector<JobRecord> jobs;
    while (true) {
      ASSIGN_OR_RETURN(bool row, Step(stmt.get(), "listing jobs"));
      if (!row) break;
      ASSIGN_OR_RETURN(jobs.emplace_back(), DecodeJob(stmt.get()));
    }
    return jobs;
  }

  absl::StatusOr<Event> AppendEvent(Event event) override {
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(InTransaction([&]() -> absl::Status {
      RETURN_IF_ERROR(CheckJobExists(event.job_id));
      ASSIGN_OR_RETURN(StmtPtr last, Prepare("SELECT COALESCE(MAX(seq), 0) FROM events "
                                             "WHERE job_id = ?1",
                                             {event.job_id}));
      ASSIGN_OR_RETURN(bool row, Step(last.get(), "reading the last event"));
      event.seq = (row ? sqlite3_column_int64(last.get(), 0) : 0) + 1;
      ASSIGN_OR_RETURN(StmtPtr insert,
                       Prepare("INSERT INTO events(job_id, seq, generation, time, type, message) "
                               "VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                               {event.job_id, event.seq, event.generation,
                                FormatTimeRfc3339(event.time), event.type, event.message}));
      return Step(insert.get(), "appending an event").status();
    }));
    return event;
  }

  absl::StatusOr<std::vector<Event>> Events(const std::string& job_id, int64_t after_seq,
                                            int64_t limit) override {
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(CheckJobExists(job_id));
    ASSIGN_OR_RETURN(StmtPtr stmt,
                     Prepare("SELECT seq, generation, time, type, message FROM events "
                             "WHERE job_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                             {job_id, after_seq, limit > 0 ? limit : int64_t{-1}}));
    std::vector<Event> events;
    while (true) {
      ASSIGN_OR_RETURN(bool row, Step(stmt.get(), "reading events"));
      if (!row) break;
      Event& event = events.emplace_back();
      event.job_id = job_id;
      event.seq = sqlite3_column_int64(stmt.get(), 0);
      event.generation = sqlite3_column_int64(stmt.get(), 1);
      ASSIGN_OR_RETURN(event.time, DecodeTime(stmt.get(), 2, "events"));
      event.type = ColumnString(stmt.get(), 3);
      event.message = ColumnString(stmt.get(), 4);
    }
    return events;
  }

  absl::StatusOr<int64_t> NextToken() override {
    absl::MutexLock lock(&mu_);
    int64_t token = 0;
    RETURN_IF_ERROR(InTransaction([&]() -> absl::Status {
      ASSIGN_OR_RETURN(StmtPtr update,
                       Prepare("UPDATE tokens SET value = value + 1 WHERE id = 1", {}));
      RETURN_IF_ERROR(Step(update.get(), "advancing the token counter").status());
      ASSIGN_OR_RETURN(StmtPtr select, Prepare("SELECT value FROM tokens WHERE id = 1", {}));
      ASSIGN_OR_RETURN(bool row, Step(select.get(), "reading the token counter"));
      if (!row) {
        return absl::InternalError(
            absl::StrCat("SQLite store ", path_, ": the token counter row is missing"));
      }
      token = sqlite3_column_int64(select.get(), 0);
      return absl::OkStatus();
    }));  // committed (and fsynced) before the token is returned
    return token;
  }

  absl::Status PutCommit(const CommitRecord& commit) override {
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(
        StmtPtr stmt,
        Prepare("INSERT OR REPLACE INTO commits(job_id, path, size, content_hash, token, generation, "
                "time) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                {commit.job_id, commit.path, static_cast<int64_t>(commit.size), commit.content_hash,
                 commit.token, commit.generation, FormatTimeRfc3339(commit.time)}));
    return Step(stmt.get(), "writing a commit").status();
  }

  absl::StatusOr<std::optional<CommitRecord>> GetCommit(const std::string& job_id,
                                                        const std::string& path) override {
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(StmtPtr stmt,
                     Prepare("SELECT job_id, path, size, content_hash, token, generation, time "
                             "FROM commits WHERE job_id = ?1 AND path = ?2",
                             {job_id, path}));
    ASSIGN_OR_RETURN(bool row, Step(stmt.get(), "reading a commit"));
    if (!row) return std::optional<CommitRecord>();
    ASSIGN_OR_RETURN(CommitRecord commit, DecodeCommit(stmt.get()));
    return std::optional<CommitRecord>(std::move(commit));
  }

  absl::StatusOr<std::vector<CommitRecord>> Commits(const std::string& job_id) override {
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(StmtPtr stmt,
                     Prepare("SELECT job_id, path, size, content_hash, token, generation, time "
                             "FROM commits WHERE job_id = ?1 ORDER BY path",
                             {job_id}));
    std::vector<CommitRecord> commits;
    while (true) {
      ASSIGN_OR_RETURN(bool row, Step(stmt.get(), "listing commits"));
      if (!row) break;
      ASSIGN_OR_RETURN(commits.emplace_back(), DecodeCommit(stmt.get()));
    }
    return commits;
  }

 private:
  // Version 1 -> 2 (see the schema comment); runs inside Open's transaction.
  absl::Status MigrateFromVersion1() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    RETURN_IF_ERROR(Exec("ALTER TABLE commits RENAME COLUMN sha256 TO content_hash"));
    RETURN_IF_ERROR(Exec("UPDATE commits SET content_hash = 'sha256:' || content_hash"));
    RETURN_IF_ERROR(Exec("UPDATE schema_version SET version = 2"));
    return absl::OkStatus();
  }

  // The status for SQLite result `rc` while doing `what`, with the connection's message.
  absl::Status Error(int rc, absl::string_view what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const std::string message =
        absl::StrCat("SQLite store ", path_, ": ", what, ": ", sqlite3_errmsg(db_), " (",
                     sqlite3_errstr(rc), ", code ", rc, ")");
    const int primary = rc & 0xff;
    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
      return absl::UnavailableError(message);
    }
    return absl::InternalError(message);
  }

  absl::Status Corrupt(absl::string_view table, const absl::Status& status) {
    return absl::InternalError(
        absl::StrCat("SQLite store ", path_, ": undecodable row in ", table, ": ",
                     status.message()));
  }

  // Runs constant SQL (no user data): pragmas, schema, transaction control.
  absl::Status Exec(const char* sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return Error(rc, absl::StrCat("executing '", sql, "'"));
    return absl::OkStatus();
  }

  // Compiles constant `sql` and binds `params` to ?1, ?2, ...
  absl::StatusOr<StmtPtr> Prepare(const char* sql, std::vector<Param> params)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql, -1, &raw, nullptr);
    StmtPtr stmt(raw);
    if (rc != SQLITE_OK) return Error(rc, absl::StrCat("preparing '", sql, "'"));
    for (size_t i = 0; i < params.size(); ++i) {
      const int index = static_cast<int>(i) + 1;
      if (const auto* value = std::get_if<int64_t>(&params[i])) {
        rc = sqlite3_bind_int64(raw, index, *value);
      } else {
        const std::string& text = std::get<std::string>(params[i]);
        rc = sqlite3_bind_text64(raw, index, text.data(), text.size(), SQLITE_TRANSIENT,
                                 SQLITE_UTF8);
      }
      if (rc != SQLITE_OK) return Error(rc, absl::StrCat("binding a value for '", sql, "'"));
    }
    return stmt;
  }

  // One step: true with a row, false when done.
  absl::StatusOr<bool> Step(sqlite3_stmt* stmt, absl::string_view what)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return Error(rc, what);
  }

  // Runs `body` in an IMMEDIATE transaction (the write lock is taken at BEGIN), committing when
  // it returns OK and rolling back otherwise.
  template <typename Body>
  absl::Status InTransaction(Body body) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
    absl::Status status = body();
    if (status.ok()) status = Exec("COMMIT");
    if (!status.ok() && !sqlite3_get_autocommit(db_)) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
    return status;
  }

  absl::Status CheckJobExists(const std::string& job_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ASSIGN_OR_RETURN(StmtPtr stmt, Prepare("SELECT 1 FROM jobs WHERE job_id = ?1", {job_id}));
    ASSIGN_OR_RETURN(bool row, Step(stmt.get(), "looking up a job"));
    if (!row) return absl::NotFoundError(absl::StrCat("no job '", job_id, "' in the store"));
    return absl::OkStatus();
  }

  absl::StatusOr<JobRecord> DecodeJob(sqlite3_stmt* stmt) {
    auto json = ParseJson(ColumnString(stmt, 0), "jobs.json");
    if (!json.ok()) return Corrupt("jobs", json.status());
    auto job = JobRecordFromJson(*json, "jobs.json");
    if (!job.ok()) return Corrupt("jobs", job.status());
    return *std::move(job);
  }

  absl::StatusOr<absl::Time> DecodeTime(sqlite3_stmt* stmt, int column, absl::string_view table) {
    auto time = ParseTimeRfc3339(ColumnString(stmt, column), absl::StrCat(table, ".time"));
    if (!time.ok()) return Corrupt(table, time.status());
    return *time;
  }

  absl::StatusOr<CommitRecord> DecodeCommit(sqlite3_stmt* stmt) {
    CommitRecord commit;
    commit.job_id = ColumnString(stmt, 0);
    commit.path = ColumnString(stmt, 1);
    commit.size = static_cast<uint64_t>(sqlite3_column_int64(stmt, 2));
    commit.content_hash = ColumnString(stmt, 3);
    commit.token = sqlite3_column_int64(stmt, 4);
    commit.generation = sqlite3_column_int64(stmt, 5);
    ASSIGN_OR_RETURN(commit.time, DecodeTime(stmt, 6, "commits"));
    return commit;
  }

  const std::string path_;
  absl::Mutex mu_;
  sqlite3* const db_;  // used only under mu_
};

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path) {
  if (path.empty()) {
    return absl::InvalidArgumentError("SQLite store: the database path is empty");
  }
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 nullptr);
  if (rc != SQLITE_OK) {
    const std::string message =
        absl::StrCat("SQLite store ", path, ": cannot open the database: ",
                     db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc), " (code ", rc, ")");
    sqlite3_close_v2(db);
    return absl::InternalError(message);
  }
  auto store = std::make_unique<SqliteStore>(path, db);
  RETURN_IF_ERROR(store->Init());
  return store;
}

}  // namespace mxport::coordinator
