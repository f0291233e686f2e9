#include "worker/worker_main_lib.h"

#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/fs/file_system.h"
#include "common/quant/backend.h"
#include "worker/core/worker_agent.h"
#include "worker/rpc/grpc_coordinator_client.h"
#include "worker/scratch_dir.h"
#include "worker/transport/tcp_transport.h"
#ifdef MXPORT_WITH_NCCL
#include "worker/transport/nccl_transport.h"
#endif
#ifdef MXPORT_WITH_CUDA_QUANT
#include "worker/cuda/quant_backend.h"
#endif

namespace mxport::worker {
namespace {

// NCCL bootstrap of one generation: rank 0 makes the unique id and publishes it through the
// coordinator; the others wait for it there. Then every rank joins on its GPU.
absl::StatusOr<std::unique_ptr<transport::Transport>> ConnectNccl(
    const DaemonOptions& options, const exporter::Order& order,
    const transport::TransportOptions& t, CoordinatorClient& client, std::atomic<bool>* stop) {
#ifdef MXPORT_WITH_NCCL
  if (options.gpu < 0) {
    return absl::FailedPreconditionError(
        "the job's data plane is nccl but this worker has no GPU (--gpu -1)");
  }
  std::string id;
  if (order.rank == 0) {
    ASSIGN_OR_RETURN(id, transport::NewNcclUniqueId());
    RETURN_IF_ERROR(client.PublishNcclId(options.job_id, order.generation, options.index, id));
  } else {
    const absl::Time deadline = absl::Now() + t.op_timeout;
    while (true) {
      absl::StatusOr<std::string> got =
          client.GetNcclId(options.job_id, order.generation, options.index);
      if (got.ok()) {
        id = *std::move(got);
        break;
      }
      if (got.status().code() != absl::StatusCode::kUnavailable) return got.status();
      if (absl::Now() >= deadline || (stop != nullptr && *stop)) {
        return absl::DeadlineExceededError(absl::StrCat(
            "rank 0 of generation ", order.generation, " never published its NCCL id"));
      }
      absl::SleepFor(absl::Milliseconds(50));  // polling the coordinator, not timing
    }
  }
  transport::NcclOptions nccl;
  nccl.transport = t;
  nccl.device = static_cast<int>(options.gpu);
  return transport::ConnectNcclGroup(nccl, id);
#else
  return absl::FailedPreconditionError(
      "the job's data plane is nccl but this worker was built without CUDA");
#endif
}

// The backend this worker's writers quantize with (see DaemonOptions::quant_device). A device
// backend is kept in `owned`.
absl::StatusOr<quant::Backend*> ChooseQuantBackend(const DaemonOptions& options,
                                                   std::unique_ptr<quant::Backend>& owned) {
  const bool want_gpu = options.quant_device == "gpu";
  if (options.quant_device == "cpu") return &quant::CpuBackend();
  if (options.gpu < 0) {
    if (want_gpu) {
      return absl::InvalidArgumentError("--quant-device gpu needs a GPU (--gpu N)");
    }
    return &quant::CpuBackend();
  }
#ifdef MXPORT_WITH_CUDA_QUANT
  absl::StatusOr<std::unique_ptr<cuda::CudaQuantBackend>> gpu =
      cuda::CudaQuantBackend::Create({.device = static_cast<int>(options.gpu)});
  if (gpu.ok()) {
    owned = *std::move(gpu);
    return owned.get();
  }
  if (want_gpu) return gpu.status();
  std::cerr << "mxport-worker " << options.index << ": GPU " << options.gpu
            << " cannot quantize (" << gpu.status().message() << "); using the CPU\n";
  return &quant::CpuBackend();
#else
  if (want_gpu) {
    return absl::FailedPreconditionError(
        "--quant-device gpu: this worker was built without CUDA");
  }
  return &quant::CpuBackend();
#endif
}

}  // namespace

absl::Status RunWorkerDaemon(DaemonOptions options, std::atomic<bool>* stop) {
  if (options.index < 0) {
    const char* env = std::getenv("JOB_COMPLETION_INDEX");
    if (env == nullptr || !absl::SimpleAtoi(env, &options.index) || options.index < 0) {
      return absl::InvalidArgumentError(
          "no worker index: pass --index or set JOB_COMPLETION_INDEX");
    }
  }
  ASSIGN_OR_RETURN(
      std::unique_ptr<ScratchDir> scratch,
      ScratchDir::Open(options.scratch_dir.empty() ? DefaultScratchDir() : options.scratch_dir,
                       options.job_id, options.index));
  scratch->ExportEnvironment();
  if (options.transport != "tcp" && options.transport != "nccl" && options.transport != "auto") {
    return absl::InvalidArgumentError(absl::StrCat("--transport must be tcp, nccl or auto; got '",
                                                   options.transport, "'"));
  }
  if (options.quant_device != "auto" && options.quant_device != "cpu" &&
      options.quant_device != "gpu") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--quant-device must be auto, cpu or gpu; got '", options.quant_device, "'"));
  }
  std::unique_ptr<quant::Backend> device_backend;
  ASSIGN_OR_RETURN(quant::Backend* const quant_backend,
                   ChooseQuantBackend(options, device_backend));
  std::cerr << "mxport-worker " << options.index << ": quantizing on " << quant_backend->name()
            << "\n";
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
  client_options.stop = stop;
  std::unique_ptr<CoordinatorClient> client = NewGrpcCoordinatorClient(client_options);

  WorkerAgent::Options agent_options;
  agent_options.job_id = options.job_id;
  agent_options.index = options.index;
  agent_options.data_address = advertise;
  agent_options.fs = fs::PosixFileSystem();
  agent_options.client = client.get();
  agent_options.chunk_bytes = options.chunk_bytes;
  agent_options.in_flight_bytes = options.in_flight_bytes;
  agent_options.self_transfer = options.self_transfer;
  agent_options.max_bytes_per_second = options.max_bytes_per_second;
  agent_options.quant_backend = quant_backend;
  agent_options.log = [index = options.index](const std::string& line) {
    std::cerr << "mxport-worker " << index << ": " << line << "\n";
  };
  agent_options.make_transport = [&options, &listener, &client, stop](const exporter::Order& order)
      -> absl::StatusOr<std::unique_ptr<transport::Transport>> {
    if (options.transport != "auto" && options.transport != order.transport) {
      return absl::FailedPreconditionError(
          absl::StrCat("the job's data plane is ", order.transport, " but this worker runs with "
                       "--transport ", options.transport));
    }
    const transport::TransportOptions t{static_cast<int>(order.rank),
                                        static_cast<int>(order.world_size), options.op_timeout};
    if (order.transport == "nccl") {
      return ConnectNccl(options, order, t, *client, stop);
    }
    return transport::ConnectTcpGroup(t, *listener, order.peer_addresses,
                                      static_cast<uint64_t>(order.generation));
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
