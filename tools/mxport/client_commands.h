// `mxport submit | status | watch | list | cancel | events`: the job API from the command line,
// over gRPC to a coordinator's ExportService (proto/mxport/v1/export.proto).
//
// Every command talks to ClientOptions::coordinator (host:port; empty: $MXPORT_COORDINATOR,
// else 127.0.0.1:50051). Each unary call carries a deadline of timeout_seconds. Event streams
// (watch, events --follow) carry none, since they last as long as the job; the channel sends
// keepalive pings instead, and a stream that breaks with UNAVAILABLE (a coordinator restart or
// drain) is reopened after the last seq printed, at most max_reconnects times in a row, with
// exponential backoff, so no event is printed twice or skipped. With `json`, jobs print in the
// proto3 JSON mapping with the .proto field names (the REST API's form) and events as one JSON
// object per line.
//
// submit builds a JobSpec from `--spec FILE` (JSON with the .proto field names, or the simple
// YAML subset "key: value" lines plus one level of indented "name: value" lines under a key such
// as labels:) and then the flags, which override the file; relative paths given as flags are
// made absolute against the current directory. SubmitJob is idempotent on job_id.
// `events` without follow prints the events stored so far: it stops once none has arrived for
// `quiet` (with after_seq 0 the first event gets the whole call timeout). watch prints the
// events and a progress line (phase, bytes, rate, ETA, files) that it refreshes from GetJob
// every progress_interval, redrawn in place when `tty`, otherwise printed as a new line
// whenever it changed; it exits with the job's outcome.
//
// Each Run function writes its report to `out`, one diagnostic line per problem to `err`, and
// returns the process exit code (ExitCode): 0 success (watch: the job SUCCEEDED), 1 an error
// (unreachable coordinator, unknown job, invalid spec, cancel of an ended job, ...), 2 submit of
// a job id already taken by a different spec (ALREADY_EXISTS), 3 watch: the job FAILED, 4 watch:
// the job was CANCELLED. Commands share no state; each may run on any thread.
#ifndef MXPORT_TOOLS_MXPORT_CLIENT_COMMANDS_H_
#define MXPORT_TOOLS_MXPORT_CLIENT_COMMANDS_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace mxport::cli {

enum ExitCode : int {
  kExitOk = 0,
  kExitError = 1,
  kExitAlreadyExists = 2,
  kExitJobFailed = 3,
  kExitJobCancelled = 4,
};

// OK -> 0, ALREADY_EXISTS -> 2, anything else -> 1.
int ExitCodeForStatus(const absl::Status& status);
// The name of a job's final phase: "SUCCEEDED" -> 0, "FAILED" -> 3, "CANCELLED" -> 4; any
// other phase (the job has not ended) -> 1.
int ExitCodeForJobPhase(absl::string_view phase);

// The flag value if set, else $MXPORT_COORDINATOR if set, else "127.0.0.1:50051".
std::string ResolveCoordinatorAddress(const std::string& flag);

struct ClientOptions {
  std::string coordinator;      // host:port; empty: ResolveCoordinatorAddress("")
  double timeout_seconds = 10;  // deadline of each unary call
  bool json = false;
};

// How an event stream is reopened after UNAVAILABLE.
struct ReconnectOptions {
  int max_reconnects = 8;  // in a row; an event received resets the count
  absl::Duration initial_backoff = absl::Milliseconds(250);
  absl::Duration max_backoff = absl::Seconds(8);
};

struct SubmitOptions {
  ClientOptions client;
  std::string spec_file;
  std::string job_id;
  std::string source;
  std::string output;
  std::string hf_config;
  std::string architecture;
  std::string max_shard_size;  // "5GB", "500MiB", "1000"
  std::string transport;
  std::string quantization;
  std::string output_dtype;
  int64_t workers = 0;              // 0: the file's, else the coordinator's default
  int64_t iteration = -1;           // -1: the file's, else the tracker's
  std::vector<std::string> labels;  // "key=value", added to the file's
};

struct StatusOptions {
  ClientOptions client;
  std::string job_id;
};

struct WatchOptions {
  ClientOptions client;
  std::string job_id;
  ReconnectOptions reconnect;
  absl::Duration progress_interval = absl::Seconds(1);
  bool tty = false;
};

struct ListOptions {
  ClientOptions client;
  std::vector<std::string> labels;  // "key=value": only jobs carrying all of them
};

struct CancelOptions {
  ClientOptions client;
  std::string job_id;
  std::string reason;
};

struct EventsOptions {
  ClientOptions client;
  std::string job_id;
  int64_t after_seq = 0;
  bool follow = false;
  ReconnectOptions reconnect;
  absl::Duration quiet = absl::Milliseconds(800);
};

int RunSubmit(const SubmitOptions& options, std::ostream& out, std::ostream& err);
int RunStatus(const StatusOptions& options, std::ostream& out, std::ostream& err);
int RunWatch(const WatchOptions& options, std::ostream& out, std::ostream& err);
int RunList(const ListOptions& options, std::ostream& out, std::ostream& err);
int RunCancel(const CancelOptions& options, std::ostream& out, std::ostream& err);
int RunEvents(const EventsOptions& options, std::ostream& out, std::ostream& err);

}  // namespace mxport::cli

#endif  // MXPORT_TOOLS_MXPORT_CLIENT_COMMANDS_H_
