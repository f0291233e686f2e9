// `mxport local-run --source DIR --output DIR --workers N [--hf-config DIR] [--arch NAME]
//  [--max-shard-size SIZE] [--transport tcp]`: the whole system on this machine. Starts an
// mxport-coordinator (state in a temporary SQLite database, ports picked by the OS) and N
// mxport-worker processes on loopback, submits the job over gRPC, shows a progress line
// (phase, bytes, rate, ETA) until the job ends, stops every process, and exits with the job's
// outcome. The binaries are taken from the directory of this mxport binary.
#ifndef MXPORT_TOOLS_MXPORT_LOCAL_RUN_COMMAND_H_
#define MXPORT_TOOLS_MXPORT_LOCAL_RUN_COMMAND_H_

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace mxport::cli {

struct LocalRunOptions {
  std::string source;
  std::string output;
  std::string hf_config;
  std::string architecture;
  std::string max_shard_size;
  int workers = 2;
  std::string transport = "tcp";  // or "nccl": worker i uses GPU i
  std::vector<std::string> worker_args;
  std::string quantization = "none";  // a mode of quantize_plan.h, passed to every worker as given
  std::string job_id;  // default: local-<time>
  int timeout_seconds = 3600;
};

absl::Status RunLocal(const LocalRunOptions& options, std::ostream& out);

}  // namespace mxport::cli

#endif  // MXPORT_TOOLS_MXPORT_LOCAL_RUN_COMMAND_H_
