#include "worker/worker_main_lib.h"

#include <unistd.h>

#include <cstdlib>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/fs/file_system.h"
#include "worker/core/worker_agent.h"
#include "worker/rpc/grpc_coordinator_client.h"
#include "worker/transport/tcp_transport.h"

namespace mxport::worker {

absl::Status RunWorkerDaemon(DaemonOptions options, std::atomic<bool>* stop) {
  if (options.index < 0) {
    const char* env = std::getenv("JOB_COMPLETION_INDEX");
    if (env == nullptr || !absl::SimpleAtoi(env, &options.index) || options.index < 0) {
      return absl::InvalidArgumentError(
          "no worker index: pass --index or set JOB_COMPLETION_INDEX");
    }
  }
  if (options.transport != "tcp" && options.transport != "auto") {
    return absl::UnimplementedError(absl::StrCat("transport '", options.transport,
                                                 "' is not available in this build"));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<transport::TcpListener> listener,
                   transport::TcpListener::Bind(options.data_host, options.data_port));
  const std::string advertise =
      absl::StrCat(options.advertise_host.empty() ? (options.data_host == "0.0.0.0"
                                                         ? "127.0.0.1"
                                                         : options.data_host)
                                                  : options.advertise_host,
                   ":", listener->port());
  char hostname[256] = {};
  gethostname(hostname, sizeof(hostname) - 1);
  GrpcClientOptions client_options;
  client_options.coordinator_address = options.coordinator;
  client_options.host = hostname;
  client_options.gpu = options.gpu;
  std::unique_ptr<CoordinatorClient> client = NewGrpcCoordinatorClient(client_options);

  WorkerAgent::Options agent_options;
  agent_options.job_id = options.job_id;
  agent_options.index = options.index;
  agent_options.data_address = advertise;
  agent_options.fs = fs::PosixFileSystem();
  agent_options.client = client.get();
  agent_options.chunk_bytes = options.chunk_bytes;
  agent_options.max_bytes_per_second = options.max_bytes_per_second;
  transport::TcpListener* l = listener.get();
  agent_options.make_transport = [l](int64_t generation, int rank,
                                     const std::vector<std::string>& peers)
      -> absl::StatusOr<std::unique_ptr<transport::Transport>> {
    return transport::ConnectTcpGroup({rank, static_cast<int>(peers.size()), absl::Minutes(5)},
                                      *l, peers, static_cast<uint64_t>(generation));
  };
  WorkerAgent agent(agent_options);
  std::atomic<bool> done{false};
  std::thread watcher([&] {  // turns SIGTERM (the flag) into a prompt stop of the agent
    while (!done) {
      if (stop != nullptr && *stop) {
        agent.Stop();
        return;
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
  });
  absl::Status status = agent.Run();
  done = true;
  watcher.join();
  return status;
}

}  // namespace mxport::worker
