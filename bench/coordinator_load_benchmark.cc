// Load on one coordinator process: W simulated workers (each a Session stream sending a
// heartbeat every second) plus C REST clients polling job status, for D seconds. Prints the
// number of errors, p50/p99 latencies of heartbeats and REST calls, and the coordinator's CPU
// time and peak RSS (from /proc). Usage:
//   coordinator_load_benchmark BIN_DIR [workers=500] [rest_clients=50] [seconds=60]
// (A load generator: it sleeps between requests on purpose.)
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/fs/file_system.h"
#include "common/json/json.h"
#include "grpcpp/grpcpp.h"
#include "httplib.h"
#include "mxport/v1/worker.grpc.pb.h"

extern char** environ;

namespace {

namespace pb = ::mxport::v1;

struct Latencies {
  absl::Mutex mu;
  std::vector<double> ms;
  std::atomic<int64_t> errors{0};
  void Add(double v) {
    absl::MutexLock lock(&mu);
    ms.push_back(v);
  }
  std::string Summary() {
    absl::MutexLock lock(&mu);
    if (ms.empty()) return "no samples";
    std::sort(ms.begin(), ms.end());
    auto at = [&](double q) { return ms[std::min(ms.size() - 1, size_t(q * ms.size()))]; };
    return absl::StrCat(ms.size(), " calls, errors ", errors.load(), ", p50 ", at(0.5),
                        " ms, p99 ", at(0.99), " ms, max ", ms.back(), " ms");
  }
};

double Ms(absl::Time t0) { return absl::ToDoubleMilliseconds(absl::Now() - t0); }

// utime+stime seconds and VmHWM MiB of `pid`.
std::pair<double, double> ProcessUsage(pid_t pid) {
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  std::getline(stat, line);
  std::istringstream in(line.substr(line.rfind(')') + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::stod(field);
    if (i == 15) stime = std::stod(field);
  }
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  double hwm = 0;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) hwm = std::stod(line.substr(6)) / 1024;
  }
  return {(utime + stime) / sysconf(_SC_CLK_TCK), hwm};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: coordinator_load_benchmark BIN_DIR [workers] [rest] [seconds]\n");
    return 2;
  }
  const std::string bin = argv[1];
  const int workers = argc > 2 ? std::atoi(argv[2]) : 500;
  const int rest_clients = argc > 3 ? std::atoi(argv[3]) : 50;
  const int seconds = argc > 4 ? std::atoi(argv[4]) : 60;
  char templ[] = "/tmp/mxport-load-XXXXXX";
  const std::string tmp = mkdtemp(templ);
  std::vector<std::string> args = {bin + "/mxport-coordinator", "--grpc-address", "127.0.0.1:0",
                                   "--rest-port", "0", "--db", tmp + "/state.db", "--port-file",
                                   tmp + "/ports.json", "--log-level", "warn"};
  std::vector<char*> cargs;
  for (auto& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, cargs[0], nullptr, nullptr, cargs.data(), environ) != 0) return 1;
  int grpc_port = 0, rest_port = 0;
  for (int i = 0; i < 300 && grpc_port == 0; ++i) {
    auto text = mxport::fs::ReadFileToString(*mxport::fs::PosixFileSystem(), tmp + "/ports.json");
    if (text.ok()) {
      auto j = mxport::ParseJson(*text, "ports");
      if (j.ok()) {
        grpc_port = (*j)["grpc"].get<int>();
        rest_port = (*j)["rest"].get<int>();
      }
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  httplib::Client admin("127.0.0.1", rest_port);
  // One more worker than connect: the job waits in PENDING, so the load is pure control plane.
  const std::string spec = absl::StrCat(
      R"({"job_id":"load","source_path":"/data/ckpt","output_path":"/data/out","workers_expected":)",
      workers + 1, "}");
  if (!admin.Post("/v1/jobs", spec, "application/json")) {
    std::fprintf(stderr, "submit failed\n");
    return 1;
  }
  const auto [cpu0, rss0] = ProcessUsage(pid);
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", grpc_port),
                                     grpc::InsecureChannelCredentials());
  auto stub = pb::WorkerService::NewStub(channel);
  Latencies heartbeats, rest;
  std::atomic<bool> stop{false};
  const absl::Time end = absl::Now() + absl::Seconds(seconds);
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      pb::RegisterRequest req;
      req.set_job_id("load");
      req.set_worker_index(w);
      req.set_data_address(absl::StrCat("10.0.0.", w % 250, ":7000"));
      pb::RegisterResponse resp;
      grpc::ClientContext rctx;
      rctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
      if (!stub->Register(&rctx, req, &resp).ok()) {
        ++heartbeats.errors;
        return;
      }
      grpc::ClientContext ctx;
      auto stream = stub->Session(&ctx);
      for (uint64_t i = 0; absl::Now() < end; ++i) {
        pb::WorkerMessage msg;
        msg.set_job_id("load");
        msg.set_worker_index(w);
        msg.set_generation(resp.generation());
        msg.mutable_heartbeat()->set_bytes_done(i * 1000);
        msg.mutable_heartbeat()->set_bytes_total(1000000);
        const absl::Time t0 = absl::Now();
        pb::CoordinatorMessage reply;
        if (!stream->Write(msg) || !stream->Read(&reply)) {
          ++heartbeats.errors;
          break;
        }
        heartbeats.Add(Ms(t0));
        absl::SleepFor(absl::Seconds(1) - (absl::Now() - t0));
      }
      stream->WritesDone();
      stream->Finish();
    });
  }
  for (int c = 0; c < rest_clients; ++c) {
    threads.emplace_back([&, c] {
      httplib::Client client("127.0.0.1", rest_port);
      client.set_read_timeout(30, 0);
      for (int i = 0; absl::Now() < end; ++i) {
        const absl::Time t0 = absl::Now();
        auto r = client.Get((c + i) % 2 ? "/v1/jobs/load" : "/v1/jobs");
        if (!r || r->status != 200) {
          ++rest.errors;
        } else {
          rest.Add(Ms(t0));
        }
        absl::SleepFor(absl::Milliseconds(200));
      }
    });
  }
  for (auto& t : threads) t.join();
  const auto [cpu1, rss1] = ProcessUsage(pid);
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  std::printf("coordinator_load_benchmark: %d workers heartbeating every 1 s + %d REST clients "
              "polling every 200 ms, for %d s\n", workers, rest_clients, seconds);
  std::printf("  heartbeats: %s\n", heartbeats.Summary().c_str());
  std::printf("  REST GETs:  %s\n", rest.Summary().c_str());
  std::printf("  coordinator: CPU %.1f s over %d s (%.0f%% of one core), peak RSS %.0f MiB\n",
              cpu1 - cpu0, seconds, 100 * (cpu1 - cpu0) / seconds, rss1);
  std::printf("  errors: %lld (goal 0: %s)\n",
              static_cast<long long>(heartbeats.errors + rest.errors),
              heartbeats.errors + rest.errors == 0 ? "met" : "MISSED");
  return heartbeats.errors + rest.errors == 0 ? 0 : 1;
}
