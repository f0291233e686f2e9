#include "tools/mxport/client_commands.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/base/status_macros.h"
#include "common/fs/file_system.h"
#include "common/json/json.h"
#include "google/protobuf/util/json_util.h"
#include "mxport/v1/export.grpc.pb.h"
#include "tools/mxport/cli_format.h"
#include "tools/mxport/job_spec_builder.h"
#include "tools/mxport/plan_command.h"

namespace mxport::cli {
namespace {

namespace pb = ::mxport::v1;
using Stub = pb::ExportService::Stub;
using Table = std::vector<std::vector<std::string>>;

absl::Status FromGrpc(const grpc::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(what, ": ", s.error_message()));
}

std::unique_ptr<Stub> Connect(const ClientOptions& options) {
  grpc::ChannelArguments args;  // streams have no deadline: keepalive finds a vanished peer
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);  // the server allows one ping per 5 s
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  return pb::ExportService::NewStub(grpc::CreateCustomChannel(
      ResolveCoordinatorAddress(options.coordinator), grpc::InsecureChannelCredentials(), args));
}

// One unary call with the deadline of `options`, e.g. Call<pb::Job>(stub, &Stub::GetJob, ...).
template <typename Response, typename Request, typename Method>
absl::StatusOr<Response> Call(Stub& stub, Method method, const ClientOptions& options,
                              const Request& request, absl::string_view what) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(options.timeout_seconds)));
  Response response;
  RETURN_IF_ERROR(FromGrpc((stub.*method)(&context, request, &response), what));
  return response;
}

absl::StatusOr<pb::Job> GetJob(Stub& stub, const ClientOptions& options, const std::string& id) {
  pb::GetJobRequest request;
  request.set_job_id(id);
  return Call<pb::Job>(stub, &Stub::GetJob, options, request, absl::StrCat("GetJob ", id));
}

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok()) return "{}";
  return out;
}

std::string Percent(const pb::Job& job) {
  if (job.bytes_total() == 0) return "-";
  return absl::StrFormat("%.1f%%", 100.0 * job.bytes_done() / job.bytes_total());
}

std::string Labels(const google::protobuf::Map<std::string, std::string>& labels) {
  const std::map<std::string, std::string> sorted(labels.begin(), labels.end());
  return sorted.empty() ? "-" : absl::StrJoin(sorted, ",", absl::PairFormatter("="));
}

std::string ProgressLine(const pb::Job& job) {
  const int width = 24;
  const int filled =
      job.bytes_total() == 0
          ? 0
          : static_cast<int>(width * std::min(1.0, 1.0 * job.bytes_done() / job.bytes_total()));
  return absl::StrFormat("%-12s [%s%s] %s / %s (%s)  %s/s  ETA %s  files %d/%d",
                         pb::JobPhase_Name(job.phase()), std::string(filled, '#'),
                         std::string(width - filled, '.'), HumanBytes(job.bytes_done()),
                         HumanBytes(job.bytes_total()), Percent(job), HumanBytes(job.bytes_per_second()),
                         HumanDuration(job.eta_seconds()), job.files_committed(), job.files_total());
}

void PrintTable(const Table& rows, std::ostream& out) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      absl::StrAppend(&line, row[i],
                      std::string(i + 1 < row.size() ? width[i] + 2 - row[i].size() : 0, ' '));
    }
    out << line << "\n";
  }
}

void PrintJob(const pb::Job& job, bool json, std::ostream& out) {
  if (json) {
    out << ToJson(job) << std::endl;
    return;
  }
  const pb::JobSpec& spec = job.spec();
  out << "job " << spec.job_id() << "  generation " << job.generation() << "  restarts "
      << job.restarts() << "  labels " << Labels(spec.labels()) << "\n  " << ProgressLine(job)
      << "\n  source " << spec.source_path() << "  output " << spec.output_path() << "  workers "
      << job.workers_size() << "/" << spec.workers_expected() << "  transport " << spec.transport()
      << "\n  created " << job.created_at() << "  updated " << job.updated_at()
      << (job.message().empty() ? "" : "\n  message ") << job.message() << "\n";
  Table rows = {
      {"  WORKER", "STATE", "HOST", "GPU", "HEARTBEAT", "BYTES", "RATE", "ACTIVITY", "SHARDS"}};
  for (const pb::WorkerStatus& w : job.workers()) {
    rows.push_back({absl::StrCat("  ", w.index()), pb::WorkerState_Name(w.state()), w.host(),
                    w.gpu() < 0 ? "cpu" : absl::StrCat(w.gpu()),
                    absl::StrFormat("%.1fs", w.heartbeat_age_seconds()),
                    absl::StrCat(HumanBytes(w.bytes_done()), " / ", HumanBytes(w.bytes_total())),
                    absl::StrCat(HumanBytes(w.bytes_per_second()), "/s"), w.activity(),
                    absl::StrJoin(w.coordinates(), ", ")});
  }
  if (job.workers_size() > 0) PrintTable(rows, out);
}

void PrintEvent(const pb::Event& e, bool json, std::ostream& out) {
  out << (json ? ToJson(e)
               : absl::StrFormat("#%-3d %s  gen %d  %-10s %s", e.seq(), e.time(), e.generation(),
                                 e.type(), e.message()))
      << std::endl;
}

// One WatchJob stream, read on its own thread so that the caller can wait with a timeout.
// Next() gives the next event, or false on a timeout or once the stream has ended().
class EventStream {
 public:
  EventStream(Stub& stub, const std::string& job_id, int64_t after_seq) {
    request_.set_job_id(job_id);
    request_.set_after_seq(after_seq);
    thread_ = std::thread([this, &stub] {
      auto reader = stub.WatchJob(&context_, request_);
      for (pb::Event event; reader->Read(&event);) {
        absl::MutexLock lock(&mu_);
        events_.push_back(event);
      }
      grpc::Status status = reader->Finish();
      absl::MutexLock lock(&mu_);
      status_ = std::move(status);
      ended_ = true;
    });
  }
  ~EventStream() {
    context_.TryCancel();  // a no-op once the stream has ended
    thread_.join();
  }
  bool Next(absl::Duration timeout, pb::Event* event) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(this, &EventStream::Ready), timeout);
    if (events_.empty()) return false;
    *event = std::move(events_.front());
    events_.pop_front();
    return true;
  }
  bool ended() {
    absl::MutexLock lock(&mu_);
    return ended_ && events_.empty();
  }
  grpc::Status status() {
    absl::MutexLock lock(&mu_);
    return status_;
  }

 private:
  bool Ready() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !events_.empty() || ended_; }

  pb::WatchJobRequest request_;
  grpc::ClientContext context_;
  absl::Mutex mu_;
  std::deque<pb::Event> events_ ABSL_GUARDED_BY(mu_);
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// Streams the events after *after_seq to on_event until the job has ended and every event has
// arrived, calling on_idle after each event and at least every `idle`. Reopens the stream after
// UNAVAILABLE as `reconnect` allows; *after_seq is the last seq delivered.
absl::Status FollowEvents(Stub& stub, const std::string& job_id, const ReconnectOptions& reconnect,
                          absl::Duration idle, int64_t* after_seq,
                          const std::function<void(const pb::Event&)>& on_event,
                          const std::function<void()>& on_idle, std::ostream& err) {
  absl::Duration backoff = reconnect.initial_backoff;
  for (int failures = 0;; ++failures) {
    EventStream stream(stub, job_id, *after_seq);
    for (pb::Event event; !stream.ended(); on_idle()) {
      if (!stream.Next(idle, &event)) continue;
      on_event(event);
      *after_seq = event.seq();
      failures = 0;
      backoff = reconnect.initial_backoff;
    }
    const grpc::Status status = stream.status();
    if (status.ok()) return absl::OkStatus();
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE ||
        failures >= reconnect.max_reconnects) {
      return FromGrpc(status, absl::StrCat("WatchJob ", job_id, " after seq ", *after_seq));
    }
    err << "mxport: watch stream: " << status.error_message() << "; reconnecting in "
        << absl::FormatDuration(backoff) << " (attempt " << failures + 1 << "/"
        << reconnect.max_reconnects << ", after seq " << *after_seq << ")" << std::endl;
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, reconnect.max_backoff);
  }
}

// Prints the events and a progress line; returns the phase the job ended in.
absl::StatusOr<pb::JobPhase> Watch(const WatchOptions& options, std::ostream& out,
                                   std::ostream& err) {
  std::unique_ptr<Stub> stub = Connect(options.client);
  ASSIGN_OR_RETURN(pb::Job job, GetJob(*stub, options.client, options.job_id));
  std::string shown;  // the progress line printed last
  bool on_screen = false;
  auto show = [&](const pb::Job& latest) {
    const std::string line = ProgressLine(latest);
    if (options.tty) out << "\r\x1b[K" << line << std::flush;
    if (!options.tty && line != shown) out << "progress: " << line << std::endl;
    on_screen = options.tty;
    shown = line;
  };
  absl::Time next_poll = absl::InfinitePast();
  auto poll = [&] {
    if (options.client.json || absl::Now() < next_poll) return;
    next_poll = absl::Now() + options.progress_interval;
    absl::StatusOr<pb::Job> latest = GetJob(*stub, options.client, options.job_id);
    if (latest.ok()) show(*latest);  // a failed poll waits for the stream's verdict
  };
  auto on_event = [&](const pb::Event& event) {
    if (on_screen) out << "\r\x1b[K";
    on_screen = false;
    PrintEvent(event, options.client.json, out);
    if (event.type() == "phase") next_poll = absl::InfinitePast();
  };
  int64_t after_seq = 0;
  RETURN_IF_ERROR(FollowEvents(*stub, options.job_id, options.reconnect, options.progress_interval,
                               &after_seq, on_event, poll, err));
  ASSIGN_OR_RETURN(job, GetJob(*stub, options.client, options.job_id));
  if (!options.client.json) {
    show(job);
    out << (on_screen ? "\n" : "") << "job " << options.job_id << " "
        << pb::JobPhase_Name(job.phase()) << (job.message().empty() ? "" : ": ") << job.message()
        << std::endl;
  }
  return job.phase();
}

int Finish(std::ostream& err, const absl::Status& status) {
  if (!status.ok()) {
    err << "mxport: " << absl::StatusCodeToString(status.code()) << ": " << status.message()
        << std::endl;
  }
  return ExitCodeForStatus(status);
}

}  // namespace

int ExitCodeForStatus(const absl::Status& status) {
  if (status.ok()) return kExitOk;
  return status.code() == absl::StatusCode::kAlreadyExists ? kExitAlreadyExists : kExitError;
}

int ExitCodeForJobPhase(absl::string_view phase) {
  if (phase == "SUCCEEDED") return kExitOk;
  if (phase == "FAILED") return kExitJobFailed;
  return phase == "CANCELLED" ? kExitJobCancelled : kExitError;
}

std::string ResolveCoordinatorAddress(const std::string& flag) {
  if (!flag.empty()) return flag;
  const char* env = std::getenv("MXPORT_COORDINATOR");
  return env != nullptr && *env != '\0' ? env : "127.0.0.1:50051";
}

int RunSubmit(const SubmitOptions& options, std::ostream& out, std::ostream& err) {
  return Finish(err, [&]() -> absl::Status {
    pb::SubmitJobRequest request;
    ASSIGN_OR_RETURN(*request.mutable_spec(), BuildSpec(options));
    ASSIGN_OR_RETURN(pb::Job job,
                     Call<pb::Job>(*Connect(options.client), &Stub::SubmitJob, options.client,
                                   request, absl::StrCat("SubmitJob ", request.spec().job_id())));
    PrintJob(job, options.client.json, out);
    return absl::OkStatus();
  }());
}

int RunStatus(const StatusOptions& options, std::ostream& out, std::ostream& err) {
  return Finish(err, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(pb::Job job, GetJob(*Connect(options.client), options.client, options.job_id));
    PrintJob(job, options.client.json, out);
    return absl::OkStatus();
  }());
}

int RunWatch(const WatchOptions& options, std::ostream& out, std::ostream& err) {
  absl::StatusOr<pb::JobPhase> phase = Watch(options, out, err);
  if (!phase.ok()) return Finish(err, phase.status());
  const int code = ExitCodeForJobPhase(pb::JobPhase_Name(*phase));
  if (code == kExitError) err << "mxport: the watch ended before the job did" << std::endl;
  return code;
}

int RunList(const ListOptions& options, std::ostream& out, std::ostream& err) {
  return Finish(err, [&]() -> absl::Status {
    pb::ListJobsRequest request;
    RETURN_IF_ERROR(ParseLabels(options.labels, request.mutable_label_selector()));
    ASSIGN_OR_RETURN(pb::ListJobsResponse response,
                     Call<pb::ListJobsResponse>(*Connect(options.client), &Stub::ListJobs,
                                                options.client, request, "ListJobs"));
    if (options.client.json) {
      out << ToJson(response) << std::endl;
      return absl::OkStatus();
    }
    Table rows = {{"JOB", "PHASE", "GEN", "BYTES", "DONE", "RATE", "ETA", "FILES", "WORKERS",
                   "UPDATED", "LABELS"}};
    for (const pb::Job& job : response.jobs()) {
      rows.push_back(
          {job.spec().job_id(), pb::JobPhase_Name(job.phase()), absl::StrCat(job.generation()),
           absl::StrCat(HumanBytes(job.bytes_done()), " / ", HumanBytes(job.bytes_total())), Percent(job),
           absl::StrCat(HumanBytes(job.bytes_per_second()), "/s"), HumanDuration(job.eta_seconds()),
           absl::StrCat(job.files_committed(), "/", job.files_total()),
           absl::StrCat(job.workers_size(), "/", job.spec().workers_expected()), job.updated_at(),
           Labels(job.spec().labels())});
    }
    PrintTable(rows, out);
    return absl::OkStatus();
  }());
}

int RunCancel(const CancelOptions& options, std::ostream& out, std::ostream& err) {
  return Finish(err, [&]() -> absl::Status {
    pb::CancelJobRequest request;
    request.set_job_id(options.job_id);
    request.set_reason(options.reason);
    ASSIGN_OR_RETURN(pb::Job job,
                     Call<pb::Job>(*Connect(options.client), &Stub::CancelJob, options.client,
                                   request, absl::StrCat("CancelJob ", options.job_id)));
    out << (options.client.json
                ? ToJson(job)
                : absl::StrCat("job ", options.job_id, " ", pb::JobPhase_Name(job.phase()),
                               job.message().empty() ? "" : ": ", job.message()))
        << std::endl;
    return absl::OkStatus();
  }());
}

int RunEvents(const EventsOptions& options, std::ostream& out, std::ostream& err) {
  return Finish(err, [&]() -> absl::Status {
    std::unique_ptr<Stub> stub = Connect(options.client);
    auto print = [&](const pb::Event& event) { PrintEvent(event, options.client.json, out); };
    int64_t after_seq = options.after_seq;
    if (options.follow) {
      return FollowEvents(
          *stub, options.job_id, options.reconnect, absl::Seconds(1), &after_seq, print, [] {},
          err);
    }
    // The stored events: the stream sends them at once, then waits for new ones. A job always
    // has a first event, worth the whole call timeout.
    EventStream stream(*stub, options.job_id, after_seq);
    pb::Event event;
    for (absl::Duration wait = after_seq == 0 ? absl::Seconds(options.client.timeout_seconds)
                                              : options.quiet;
         stream.Next(wait, &event); wait = options.quiet) {
      print(event);
    }
    if (!stream.ended()) return absl::OkStatus();  // quiet: all stored events are out
    return FromGrpc(stream.status(), absl::StrCat("WatchJob ", options.job_id));
  }());
}

}  // namespace mxport::cli
