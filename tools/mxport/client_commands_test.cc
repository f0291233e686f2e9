// The job commands (submit, status, list, cancel, watch, events) against an in-process
// coordinator over a real gRPC channel: memory store, no tick thread, an in-memory file system
// (job paths are not read before workers scan), ports picked by the kernel.
#include "tools/mxport/client_commands.h"

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/fs/memory_file_system.h"
#include "common/json/json.h"
#include "common/testing/status_matchers.h"
#include "coordinator/rpc/server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mxport::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct Output {
  int code = -1;
  std::string out;
  std::string err;
};

// Runs one command with fresh output streams.
template <typename Options>
Output Exec(int (*command)(const Options&, std::ostream&, std::ostream&), const Options& options) {
  std::ostringstream out, err;
  Output result;
  result.code = command(options, out, err);
  result.out = out.str();
  result.err = err.str();
  return result;
}

int Count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

class ClientCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer("", "127.0.0.1:0"); }
  void TearDown() override { StopServer(); }

  void StartServer(const std::string& db_path, const std::string& address) {
    coordinator::rpc::CoordinatorServer::Options options;
    options.grpc_address = address;
    options.rest_port = -1;
    options.db_path = db_path;
    options.allowed_roots = {"/data"};
    options.tick_interval = absl::ZeroDuration();
    options.fs = &fs_;
    auto server = coordinator::rpc::CoordinatorServer::Start(options);
    ASSERT_OK(server);
    server_ = std::move(*server);
  }
  void StopServer() {
    if (server_ != nullptr) server_->Shutdown(absl::Now() + absl::Seconds(10));
    server_.reset();
  }

  ClientOptions Client() const {
    ClientOptions client;
    client.coordinator = absl::StrCat("127.0.0.1:", server_->grpc_port());
    client.timeout_seconds = 20;
    return client;
  }
  SubmitOptions Spec(const std::string& job_id, const std::string& team = "export") const {
    SubmitOptions submit;
    submit.client = Client();
    submit.job_id = job_id;
    submit.source = "/data/ckpt/" + job_id;
    submit.output = "/data/out/" + job_id;
    submit.workers = 2;
    submit.max_shard_size = "1GiB";
    submit.labels = {"team=" + team};
    return submit;
  }
  WatchOptions Watch(const std::string& job_id) const {
    WatchOptions watch;
    watch.client = Client();
    watch.job_id = job_id;
    watch.progress_interval = absl::Milliseconds(50);
    watch.reconnect.initial_backoff = absl::Milliseconds(50);
    watch.reconnect.max_backoff = absl::Milliseconds(200);
    watch.reconnect.max_reconnects = 100;
    return watch;
  }
  std::string WriteFile(const std::string& name, const std::string& text) {
    const std::string path = ::testing::TempDir() + "/client_commands_test_" + name;
    std::ofstream(path) << text;
    return path;
  }

  fs::MemoryFileSystem fs_;
  std::unique_ptr<coordinator::rpc::CoordinatorServer> server_;
};

TEST(ExitCodesTest, MapStatusesAndPhases) {
  EXPECT_EQ(ExitCodeForStatus(absl::OkStatus()), 0);
  EXPECT_EQ(ExitCodeForStatus(absl::AlreadyExistsError("x")), 2);
  EXPECT_EQ(ExitCodeForStatus(absl::NotFoundError("x")), 1);
  EXPECT_EQ(ExitCodeForJobPhase("SUCCEEDED"), 0);
  EXPECT_EQ(ExitCodeForJobPhase("FAILED"), 3);
  EXPECT_EQ(ExitCodeForJobPhase("CANCELLED"), 4);
  EXPECT_EQ(ExitCodeForJobPhase("TRANSFERRING"), 1);
  EXPECT_EQ(ResolveCoordinatorAddress("h:1"), "h:1");
}

TEST_F(ClientCommandsTest, SubmitIsIdempotentAndReportsAConflictingSpec) {
  Output first = Exec(RunSubmit, Spec("a"));
  EXPECT_EQ(first.code, 0) << first.err;
  EXPECT_THAT(first.out, HasSubstr("job a "));
  EXPECT_THAT(first.out, HasSubstr("PENDING"));
  EXPECT_THAT(first.out, HasSubstr("team=export"));

  EXPECT_EQ(Exec(RunSubmit, Spec("a")).code, 0);  // the same spec again: the same job
  SubmitOptions different = Spec("a");
  different.output = "/data/out/elsewhere";
  Output conflict = Exec(RunSubmit, different);
  EXPECT_EQ(conflict.code, 2);
  EXPECT_THAT(conflict.err, HasSubstr("ALREADY_EXISTS"));

  SubmitOptions outside = Spec("b");
  outside.output = "/etc/out";
  EXPECT_EQ(Exec(RunSubmit, outside).code, 1);
  SubmitOptions no_id = Spec("");
  EXPECT_EQ(Exec(RunSubmit, no_id).code, 1);
  SubmitOptions bad_label = Spec("c");
  bad_label.labels = {"novalue"};
  EXPECT_THAT(Exec(RunSubmit, bad_label).err, HasSubstr("key=value"));
}

TEST_F(ClientCommandsTest, SubmitReadsJsonAndYamlSpecFilesThatFlagsOverride) {
  SubmitOptions json;
  json.client = Client();
  json.client.json = true;
  json.spec_file = WriteFile("spec.json", R"({"job_id": "j", "source_path": "/data/ckpt/j",
      "output_path": "/data/out/j", "workers_expected": 3, "labels": {"team": "x"}})");
  json.labels = {"owner=me"};
  Output submitted = Exec(RunSubmit, json);
  ASSERT_EQ(submitted.code, 0) << submitted.err;
  ASSERT_OK_AND_ASSIGN(Json job, ParseJson(submitted.out, "submit --json"));
  EXPECT_EQ(job["spec"]["workers_expected"], "3");
  EXPECT_EQ(job["spec"]["labels"]["team"], "x");
  EXPECT_EQ(job["spec"]["labels"]["owner"], "me");
  EXPECT_EQ(job["phase"], "PENDING");

  SubmitOptions yaml;
  yaml.client = Client();
  yaml.spec_file = WriteFile("spec.yaml",
                             "# a job\njob_id: y\nsource_path: /data/ckpt/y\n"
                             "output_path: '/data/out/y'  # quoted\nmax_shard_size: 1000\n"
                             "labels:\n  team: yaml\n  tier: \"gold\"\nworkers_expected: 2\n");
  yaml.workers = 4;
  yaml.client.json = true;
  submitted = Exec(RunSubmit, yaml);
  ASSERT_EQ(submitted.code, 0) << submitted.err;
  ASSERT_OK_AND_ASSIGN(job, ParseJson(submitted.out, "submit --json"));
  EXPECT_EQ(job["spec"]["output_path"], "/data/out/y");
  EXPECT_EQ(job["spec"]["max_shard_size"], "1000");
  EXPECT_EQ(job["spec"]["workers_expected"], "4");
  EXPECT_EQ(job["spec"]["labels"]["tier"], "gold");

  SubmitOptions broken;
  broken.client = Client();
  broken.spec_file = WriteFile("broken.json", R"({"job_id": "z", "no_such_field": 1})");
  Output rejected = Exec(RunSubmit, broken);
  EXPECT_EQ(rejected.code, 1);
  EXPECT_THAT(rejected.err, HasSubstr("not a JobSpec"));
}

TEST_F(ClientCommandsTest, StatusShowsTheJobAndFailsForAnUnknownOne) {
  ASSERT_EQ(Exec(RunSubmit, Spec("a")).code, 0);
  StatusOptions status;
  status.client = Client();
  status.job_id = "a";
  Output shown = Exec(RunStatus, status);
  EXPECT_EQ(shown.code, 0) << shown.err;
  EXPECT_THAT(shown.out, HasSubstr("job a  generation 0"));
  EXPECT_THAT(shown.out, HasSubstr("PENDING"));
  EXPECT_THAT(shown.out, HasSubstr("ETA -"));
  EXPECT_THAT(shown.out, HasSubstr("files 0/0"));
  EXPECT_THAT(shown.out, HasSubstr("/data/out/a"));

  status.client.json = true;
  shown = Exec(RunStatus, status);
  ASSERT_OK_AND_ASSIGN(Json job, ParseJson(shown.out, "status --json"));
  EXPECT_EQ(job["spec"]["job_id"], "a");
  EXPECT_EQ(job["eta_seconds"], -1);

  status.job_id = "nope";
  Output missing = Exec(RunStatus, status);
  EXPECT_EQ(missing.code, 1);
  EXPECT_THAT(missing.err, HasSubstr("NOT_FOUND"));
}

TEST_F(ClientCommandsTest, ListFiltersByLabel) {
  ASSERT_EQ(Exec(RunSubmit, Spec("a", "export")).code, 0);
  ASSERT_EQ(Exec(RunSubmit, Spec("b", "other")).code, 0);
  ListOptions list;
  list.client = Client();
  Output all = Exec(RunList, list);
  EXPECT_EQ(all.code, 0) << all.err;
  EXPECT_THAT(all.out, HasSubstr("JOB"));
  EXPECT_THAT(all.out, HasSubstr("\na "));
  EXPECT_THAT(all.out, HasSubstr("\nb "));

  list.labels = {"team=other"};
  Output other = Exec(RunList, list);
  EXPECT_EQ(other.code, 0) << other.err;
  EXPECT_THAT(other.out, HasSubstr("\nb "));
  EXPECT_THAT(other.out, Not(HasSubstr("\na ")));

  list.client.json = true;
  ASSERT_OK_AND_ASSIGN(Json listed, ParseJson(Exec(RunList, list).out, "list --json"));
  ASSERT_EQ(listed["jobs"].size(), 1u);
  EXPECT_EQ(listed["jobs"][0]["spec"]["job_id"], "b");
}

TEST_F(ClientCommandsTest, CancelThenWatchExitsCancelledWithTheEvents) {
  ASSERT_EQ(Exec(RunSubmit, Spec("a")).code, 0);
  CancelOptions cancel;
  cancel.client = Client();
  cancel.job_id = "a";
  cancel.reason = "not needed";
  Output cancelled = Exec(RunCancel, cancel);
  EXPECT_EQ(cancelled.code, 0) << cancelled.err;
  EXPECT_THAT(cancelled.out, HasSubstr("job a CANCELLED: not needed"));
  EXPECT_EQ(Exec(RunCancel, cancel).code, 1) << "a second cancel of an ended job";

  Output watched = Exec(RunWatch, Watch("a"));
  EXPECT_EQ(watched.code, 4) << watched.err;
  EXPECT_THAT(watched.out, HasSubstr("#1 "));
  EXPECT_THAT(watched.out, HasSubstr("submitted"));
  EXPECT_THAT(watched.out, HasSubstr("#2 "));
  EXPECT_THAT(watched.out, HasSubstr("phase      CANCELLED: not needed"));
  EXPECT_THAT(watched.out, HasSubstr("job a CANCELLED"));

  EventsOptions events;
  events.client = Client();
  events.job_id = "a";
  events.after_seq = 1;
  Output later = Exec(RunEvents, events);
  EXPECT_EQ(later.code, 0) << later.err;
  EXPECT_THAT(later.out, Not(HasSubstr("#1 ")));
  EXPECT_THAT(later.out, HasSubstr("#2 "));

  events.job_id = "nope";
  EXPECT_EQ(Exec(RunEvents, events).code, 1);
}

TEST_F(ClientCommandsTest, WatchFollowsARunningJobUntilItIsCancelled) {
  ASSERT_EQ(Exec(RunSubmit, Spec("a")).code, 0);
  // `events` on a running job prints what is stored and returns.
  EventsOptions events;
  events.client = Client();
  events.job_id = "a";
  events.quiet = absl::Milliseconds(300);
  Output stored = Exec(RunEvents, events);
  EXPECT_EQ(stored.code, 0) << stored.err;
  EXPECT_THAT(stored.out, HasSubstr("#1 "));

  Output watched;
  std::thread watcher([&] { watched = Exec(RunWatch, Watch("a")); });
  absl::SleepFor(absl::Milliseconds(300));  // lets the watch open first; passes either way
  CancelOptions cancel;
  cancel.client = Client();
  cancel.job_id = "a";
  EXPECT_EQ(Exec(RunCancel, cancel).code, 0);
  watcher.join();
  EXPECT_EQ(watched.code, 4) << watched.err;
  EXPECT_THAT(watched.out, HasSubstr("progress: PENDING"));
  EXPECT_EQ(Count(watched.out, "#1 "), 1);
  EXPECT_EQ(Count(watched.out, "#2 "), 1);
  EXPECT_THAT(watched.out, HasSubstr("CANCELLED"));
}

TEST_F(ClientCommandsTest, WatchResumesAfterTheCoordinatorRestarts) {
  StopServer();
  const std::string db = ::testing::TempDir() + "/client_commands_test_restart.db";
  std::remove(db.c_str());
  StartServer(db, "127.0.0.1:0");
  const std::string address = absl::StrCat("127.0.0.1:", server_->grpc_port());
  ASSERT_EQ(Exec(RunSubmit, Spec("a")).code, 0);

  Output watched;
  std::thread watcher([&] { watched = Exec(RunWatch, Watch("a")); });
  absl::SleepFor(absl::Milliseconds(300));  // lets the watch read event 1; passes either way
  StopServer();                             // ends the stream with UNAVAILABLE
  absl::SleepFor(absl::Milliseconds(200));
  StartServer(db, address);
  CancelOptions cancel;
  cancel.client = Client();
  cancel.job_id = "a";
  EXPECT_EQ(Exec(RunCancel, cancel).code, 0);
  watcher.join();
  EXPECT_EQ(watched.code, 4) << watched.err;
  EXPECT_THAT(watched.err, HasSubstr("reconnecting"));
  EXPECT_EQ(Count(watched.out, "#1 "), 1) << watched.out;
  EXPECT_EQ(Count(watched.out, "#2 "), 1) << watched.out;
  std::remove(db.c_str());
}

TEST(ClientCommandsNoServerTest, AnUnreachableCoordinatorIsAnError) {
  StatusOptions status;
  status.client.coordinator = "127.0.0.1:1";
  status.client.timeout_seconds = 5;
  status.job_id = "a";
  Output output = Exec(RunStatus, status);
  EXPECT_EQ(output.code, 1);
  EXPECT_THAT(output.err, HasSubstr("UNAVAILABLE"));
}

}  // namespace
}  // namespace mxport::cli
