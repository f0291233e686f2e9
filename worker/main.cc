// mxport-worker: one worker of an export job. Flags -> DaemonOptions -> RunWorkerDaemon.
#include <csignal>
#include <iostream>
#include <thread>

#include "CLI/CLI.hpp"
#include "worker/worker_main_lib.h"

namespace {
std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mxport-worker: reads its Megatron shards and writes its share of the export"};
  mxport::worker::DaemonOptions o;
  app.add_option("--coordinator", o.coordinator, "Coordinator gRPC address host:port")
      ->required();
  app.add_option("--job", o.job_id, "Job id")->required();
  app.add_option("--index", o.index, "Worker index (default: $JOB_COMPLETION_INDEX)");
  app.add_option("--data-host", o.data_host, "Listen address of the data plane");
  app.add_option("--advertise-host", o.advertise_host, "Address peers dial (default: data host)");
  app.add_option("--data-port", o.data_port, "Data-plane port (0: any)");
  app.add_option("--gpu", o.gpu, "GPU id (-1: CPU)");
  app.add_option("--scratch-dir", o.scratch_dir,
                 "Node-local dir for temporary files and the worker's lock (default: $TMPDIR "
                 "or /tmp)");
  app.add_option("--chunk-bytes", o.chunk_bytes, "Largest message on the data plane");
  app.add_option("--in-flight-bytes", o.in_flight_bytes,
                 "Host memory for data-plane buffers (bounds peak use)");
  app.add_option("--transport", o.transport, "auto (the job's) | tcp | nccl");
  app.add_option("--quant-device", o.quant_device,
                 "Where to quantize: auto (the GPU when --gpu is set) | cpu | gpu");
  app.add_flag("--self-transfer", o.self_transfer,
               "Send own pieces through the data plane too (checks NCCL on one GPU)");
  double op_timeout_s = absl::ToDoubleSeconds(o.op_timeout);
  app.add_option("--op-timeout", op_timeout_s, "Seconds a data-plane step may take");
  app.add_option("--max-read-rate", o.max_bytes_per_second, "Read pacing in bytes/s (0: none)");
  CLI11_PARSE(app, argc, argv);
  o.op_timeout = absl::Seconds(op_timeout_s);
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  const absl::Status status = mxport::worker::RunWorkerDaemon(o, &g_stop);
  if (!status.ok()) {
    std::cerr << "mxport-worker " << o.index << ": " << status.message() << "\n";
    return 1;
  }
  return 0;
}
