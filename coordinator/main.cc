// mxport-coordinator: flags -> CoordinatorServer::Options -> Start -> wait for SIGTERM/SIGINT
// -> Shutdown(deadline) -> exit 0.
#include <pthread.h>
#include <signal.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/fs/file_system.h"
#include "absl/time/time.h"
#include "coordinator/rpc/server.h"
#include "spdlog/spdlog.h"

int main(int argc, char** argv) {
  mxport::coordinator::rpc::CoordinatorServer::Options options;
  options.grpc_address = "0.0.0.0:50051";
  options.rest_port = 8080;
  options.db_path = "mxport-coordinator.db";
  std::string token_file, port_file, log_level = "info";
  double tick_seconds = 1, grace_seconds = 25, ttl_seconds = 15;

  CLI::App app{"mxport coordinator: export jobs, workers, leases and commits"};
  app.add_option("--grpc-address", options.grpc_address, "gRPC listen address (host:port)");
  app.add_option("--rest-port", options.rest_port, "REST/metrics/dashboard port (-1: off)");
  app.add_option("--db", options.db_path, "SQLite database (':memory:' keeps no state)");
  app.add_option("--allowed-root", options.allowed_roots,
                 "a directory job paths must lie under (repeatable)");
  app.add_option("--auth-token-file", token_file, "file holding the REST bearer token");
  app.add_option("--tick-interval", tick_seconds, "seconds between health sweeps");
  app.add_option("--heartbeat-ttl", ttl_seconds, "seconds without a heartbeat before LOST");
  app.add_option("--shutdown-grace", grace_seconds, "seconds running calls get at shutdown");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error");
  app.add_option("--port-file", port_file, "write {\"grpc\": port, \"rest\": port} here");
  app.add_flag("--verify-commit-hash", options.verify_commit_hash,
               "re-read each staged file to check its content hash before committing it");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::from_str(log_level));
  options.tick_interval = absl::Seconds(tick_seconds);
  options.heartbeat_ttl = absl::Seconds(ttl_seconds);

  if (!token_file.empty()) {
    std::ifstream in(token_file);
    std::stringstream buffer;
    buffer << in.rdbuf();
    if (!in) {
      spdlog::error("cannot read the auth token file {}", token_file);
      return EXIT_FAILURE;
    }
    options.bearer_token = std::string(absl::StripAsciiWhitespace(buffer.str()));
  }

  // Block the stop signals before any thread starts, so only the waiting thread takes them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto server = mxport::coordinator::rpc::CoordinatorServer::Start(options);
  if (!server.ok()) {
    spdlog::error("cannot start: {}", server.status().ToString());
    return EXIT_FAILURE;
  }
  spdlog::info("mxport-coordinator serving gRPC on port {}, REST on port {}, state in {}",
               (*server)->grpc_port(), (*server)->rest_port(),
               options.db_path.empty() ? ":memory:" : options.db_path);

  if (!port_file.empty()) {
    const absl::Status written = mxport::fs::WriteFileAtomically(
        *mxport::fs::PosixFileSystem(), port_file,
        absl::StrCat("{\"grpc\": ", (*server)->grpc_port(), ", \"rest\": ",
                     (*server)->rest_port(), "}\n"));
    if (!written.ok()) spdlog::error("cannot write {}: {}", port_file, written.ToString());
  }
  std::thread signal_thread([&] {
    int signal = 0;
    sigwait(&stop_signals, &signal);
    spdlog::info("signal {}: draining for up to {} s", signal, grace_seconds);
    (*server)->Shutdown(absl::Now() + absl::Seconds(grace_seconds));
  });
  (*server)->Wait();
  signal_thread.join();
  spdlog::info("stopped");
  return EXIT_SUCCESS;
}
