#include "tools/mxport/local_run_command.h"

#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/status_macros.h"
#include "common/fs/file_system.h"
#include "common/json/json.h"
#include "mxport/v1/export.grpc.pb.h"
#include "tools/mxport/cli_format.h"
#include "tools/mxport/plan_command.h"

extern char** environ;

namespace mxport::cli {
namespace {

namespace pb = ::mxport::v1;

// Child processes, stopped when this goes out of scope: the ones started last (the workers)
// first, while the first (the coordinator) can still answer them, then the first; SIGTERM, and
// SIGKILL for any still running 5 s later.
class Children {
 public:
  ~Children() {
    if (pids_.empty()) return;
    Stop(std::vector<pid_t>(pids_.begin() + 1, pids_.end()));
    Stop({pids_.front()});
  }
  absl::Status Spawn(const std::vector<std::string>& argv) {
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, args[0], nullptr, nullptr, args.data(), environ);
    if (rc != 0) {
      return absl::InternalError(absl::StrCat("cannot start ", argv[0], ": ", strerror(rc)));
    }
    pids_.push_back(pid);
    return absl::OkStatus();
  }

 private:
  static void Stop(const std::vector<pid_t>& pids) {
    for (pid_t pid : pids) kill(pid, SIGTERM);
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    for (pid_t pid : pids) {
      int status = 0;
      while (waitpid(pid, &status, WNOHANG) == 0 && absl::Now() < deadline) {
        absl::SleepFor(absl::Milliseconds(20));  // waiting for a process to exit
      }
      if (waitpid(pid, &status, WNOHANG) == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
      }
    }
  }
  std::vector<pid_t> pids_;
};

// The coordinator's scratch directory (database, port file), removed when this goes out of
// scope, after the processes using it have stopped.
class ScratchDir {
 public:
  explicit ScratchDir(std::string path) : path_(std::move(path)) {}
  ~ScratchDir() { fs::DeleteRecursively(*fs::PosixFileSystem(), path_).IgnoreError(); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string BinDir() {
  char path[PATH_MAX] = {};
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  return n > 0 ? fs::Dirname(std::string(path, n)) : ".";
}

}  // namespace

absl::Status RunLocal(const LocalRunOptions& options, std::ostream& out) {
  if (options.workers < 1) return absl::InvalidArgumentError("--workers must be at least 1");
  if (options.transport != "tcp" && options.transport != "nccl") {
    return absl::InvalidArgumentError(
        absl::StrCat("--transport must be tcp or nccl; got '", options.transport, "'"));
  }
  char templ[] = "/tmp/mxport-local-XXXXXX";
  if (mkdtemp(templ) == nullptr) return absl::InternalError("mkdtemp failed");
  const ScratchDir scratch(templ);  // declared before `children`: outlives the processes
  const std::string& tmp = scratch.path();
  const std::string bin = BinDir();
  Children children;
  RETURN_IF_ERROR(children.Spawn({bin + "/mxport-coordinator", "--grpc-address", "127.0.0.1:0",
                                  "--rest-port", "0", "--db", tmp + "/state.db", "--port-file",
                                  tmp + "/ports.json", "--tick-interval", "1", "--log-level",
                                  "warn"}));
  // Wait for the coordinator to say where it listens.
  int grpc_port = 0;
  for (int i = 0; i < 300 && grpc_port == 0; ++i) {
    auto text = fs::ReadFileToString(*fs::PosixFileSystem(), tmp + "/ports.json");
    if (text.ok()) {
      auto j = ParseJson(*text, "ports.json");
      if (j.ok()) grpc_port = (*j)["grpc"].get<int>();
    }
    if (grpc_port == 0) absl::SleepFor(absl::Milliseconds(100));
  }
  if (grpc_port == 0) return absl::UnavailableError("the coordinator did not start");
  const std::string address = absl::StrCat("127.0.0.1:", grpc_port);
  auto stub = pb::ExportService::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));

  pb::SubmitJobRequest submit;
  pb::JobSpec* spec = submit.mutable_spec();
  const std::string job_id = options.job_id.empty()
                                 ? absl::StrCat("local-", absl::ToUnixSeconds(absl::Now()))
                                 : options.job_id;
  spec->set_job_id(job_id);
  spec->set_source_path(AbsolutePath(options.source));
  spec->set_output_path(AbsolutePath(options.output));
  spec->set_hf_config_dir(AbsolutePath(options.hf_config));
  spec->set_architecture(options.architecture);
  spec->set_workers_expected(options.workers);
  spec->set_transport(options.transport);
  spec->set_quantization(options.quantization);
  if (!options.max_shard_size.empty()) {
    ASSIGN_OR_RETURN(uint64_t size, ParseByteSize(options.max_shard_size));
    spec->set_max_shard_size(size);
  }
  pb::Job job;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    const grpc::Status s = stub->SubmitJob(&ctx, submit, &job);
    if (!s.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
    }
  }
  for (int w = 0; w < options.workers; ++w) {
    std::vector<std::string> argv = {bin + "/mxport-worker", "--coordinator", address, "--job",
                                     job_id, "--index", absl::StrCat(w)};
    if (options.transport == "nccl") {  // one GPU per worker
      argv.insert(argv.end(), {"--gpu", absl::StrCat(w), "--transport", "nccl"});
    }
    argv.insert(argv.end(), options.worker_args.begin(), options.worker_args.end());
    RETURN_IF_ERROR(children.Spawn(argv));
  }
  out << "job " << job_id << ": " << options.workers << " workers, coordinator " << address
      << "\n";
  const absl::Time deadline = absl::Now() + absl::Seconds(options.timeout_seconds);
  while (absl::Now() < deadline) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    pb::GetJobRequest get;
    get.set_job_id(job_id);
    if (stub->GetJob(&ctx, get, &job).ok()) {
      const double total = static_cast<double>(job.bytes_total());
      const double done = static_cast<double>(job.bytes_done());
      const int width = 30;
      const int filled = total > 0 ? static_cast<int>(width * std::min(1.0, done / total)) : 0;
      out << "\r" << absl::StrFormat("%-12s [%s%s] %s / %s  %s/s  files %d/%d",
                                     pb::JobPhase_Name(job.phase()), std::string(filled, '#'),
                                     std::string(width - filled, '.'), HumanBytes(done),
                                     HumanBytes(total), HumanBytes(job.bytes_per_second()),
                                     job.files_committed(), job.files_total())
          << std::flush;
      if (job.phase() == pb::SUCCEEDED || job.phase() == pb::FAILED ||
          job.phase() == pb::CANCELLED) {
        break;
      }
    }
    absl::SleepFor(absl::Milliseconds(200));  // a progress display refresh, not a test timing
  }
  out << "\n";
  if (job.phase() != pb::SUCCEEDED) {
    return absl::AbortedError(absl::StrCat("job ", job_id, " ended ",
                                           pb::JobPhase_Name(job.phase()), ": ", job.message()));
  }
  out << "exported to " << options.output << " (" << job.committed_size() << " files committed)\n";
  return absl::OkStatus();
}

}  // namespace mxport::cli
