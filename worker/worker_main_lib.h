// The mxport-worker daemon, as a library so main.cc stays thin: binds the TCP data plane once,
// registers with the coordinator under its stable index, follows the job's orders (see
// worker_agent.h) and returns the job's outcome for this worker. Each generation's data plane
// is the one the Assign order names: TCP, or NCCL on this worker's GPU (rank 0 creates the
// unique id and publishes it through the coordinator). Quantized chunks are quantized on the
// worker's GPU or on the CPU (quant_device; the choice is logged to stderr): the same bytes
// either way. Before anything else it opens its scratch dir (scratch_dir.h): created, checked,
// locked against a second daemon of the same job and index, and exported as TMPDIR and CUDA's
// cache. SIGTERM stops it promptly.
#ifndef MXPORT_WORKER_WORKER_MAIN_LIB_H_
#define MXPORT_WORKER_WORKER_MAIN_LIB_H_

#include <atomic>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace mxport::worker {

struct DaemonOptions {
  std::string coordinator;      // host:port of the coordinator's gRPC endpoint
  std::string job_id;
  int64_t index = -1;           // -1: from JOB_COMPLETION_INDEX
  std::string data_host = "127.0.0.1";   // listen address of the data plane
  std::string advertise_host;   // what peers dial (default data_host)
  int data_port = 0;
  int64_t gpu = -1;
  // Node-local directory for temporary files (scratch_dir.h); empty: $TMPDIR or /tmp.
  std::string scratch_dir;
  uint64_t chunk_bytes = uint64_t{4} << 20;  // see PlanExecutor::Options
  uint64_t in_flight_bytes = uint64_t{1} << 30;
  bool self_transfer = false;  // own pieces through the data plane too (NCCL on one GPU)
  uint64_t max_bytes_per_second = 0;
  // "auto" follows the job's data plane; "tcp" or "nccl" refuses a job that uses the other.
  std::string transport = "auto";
  // Where written chunks are quantized: "gpu" (this worker's --gpu; an error without one),
  // "cpu", or "auto": the GPU when --gpu is set and the device can be used, else the CPU.
  std::string quant_device = "auto";
  absl::Duration op_timeout = absl::Minutes(5);  // a data-plane step's deadline
};

// Runs until the job ends for this worker or `stop` becomes true.
absl::Status RunWorkerDaemon(DaemonOptions options, std::atomic<bool>* stop);

}  // namespace mxport::worker

#endif  // MXPORT_WORKER_WORKER_MAIN_LIB_H_
