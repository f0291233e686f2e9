#include "coordinator/rpc/export_service.h"

#include <string>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "coordinator/rpc/proto_convert.h"

namespace mxport::coordinator::rpc {
namespace {

grpc::ServerUnaryReactor* Reply(grpc::CallbackServerContext* context, const absl::Status& s) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(s));
  return reactor;
}

// One WatchJob stream. Its thread runs the waiting loop; the reactions only flip flags.
class WatchReactor final : public grpc::ServerWriteReactor<v1::Event>, public StoppableStream {
 public:
  WatchReactor(const ExportServiceImpl::Options& options, std::string job_id, int64_t after_seq)
      : options_(options), job_id_(std::move(job_id)), after_seq_(after_seq) {}

  void Start() {
    if (!options_.streams->Add(this)) {
      Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the coordinator is shutting down"));
      return;
    }
    registered_ = true;
    absl::MutexLock lock(&mu_);  // held until thread_ is set, so OnDone sees it
    thread_ = std::thread([this] {
      { absl::MutexLock started(&mu_); }
      Finish(Loop());  // nothing touches `this` after Finish
    });
  }

  void Stop() override {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
  }
  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    stopped_ = cancelled_ = true;
  }
  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    write_pending_ = false;
    write_ok_ = ok;
  }
  void OnDone() override {
    if (thread_.joinable()) {
      if (thread_.get_id() == std::this_thread::get_id()) {
        thread_.detach();
      } else {
        thread_.join();
      }
    }
    if (registered_) options_.streams->Remove(this);
    delete this;
  }

 private:
  grpc::Status StoppedStatus(int64_t after) {
    absl::MutexLock lock(&mu_);
    if (cancelled_) return grpc::Status(grpc::StatusCode::CANCELLED, "watch cancelled");
    return grpc::Status(
        grpc::StatusCode::UNAVAILABLE,
        absl::StrCat("the coordinator is shutting down; resume with after_seq=", after));
  }
  bool stopped() {
    absl::MutexLock lock(&mu_);
    return stopped_;
  }

  // Sends one event and waits for its completion; false when the stream broke or stopped.
  bool Write(const Event& event) {
    {
      absl::MutexLock lock(&mu_);
      if (stopped_) return false;
      write_pending_ = true;
    }
    message_ = EventToProto(event);
    StartWrite(&message_);
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](bool* pending) { return !*pending; }, &write_pending_));
    return write_ok_;
  }

  grpc::Status Loop() {
    int64_t after = after_seq_;
    while (!stopped()) {
      // Read the phase before the events: once terminal, the final event is already stored.
      absl::StatusOr<JobRecord> job = options_.coordinator->jobs().Get(job_id_);
      if (!job.ok()) return ToGrpcStatus(job.status());
      const bool terminal = IsTerminal(job->phase);
      absl::StatusOr<std::vector<Event>> events =
          terminal ? options_.coordinator->Events(job_id_, after)
                   : options_.coordinator->WaitForEvents(job_id_, after,
                                                         absl::Now() + options_.watch_poll);
      if (!events.ok()) return ToGrpcStatus(events.status());
      for (const Event& event : *events) {
        if (!Write(event)) return StoppedStatus(after);
        after = event.seq;
      }
      if (terminal && events->empty()) return grpc::Status::OK;
    }
    return StoppedStatus(after);
  }

  const ExportServiceImpl::Options& options_;
  const std::string job_id_;
  const int64_t after_seq_;
  bool registered_ = false;
  std::thread thread_;
  v1::Event message_;  // the write in flight
  absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool write_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool write_ok_ ABSL_GUARDED_BY(mu_) = true;
};

}  // namespace

grpc::ServerUnaryReactor* ExportServiceImpl::SubmitJob(grpc::CallbackServerContext* context,
                                                       const v1::SubmitJobRequest* request,
                                                       v1::Job* response) {
  RpcTimer timer(options_.metrics, "/mxport.v1.ExportService/SubmitJob");
  absl::StatusOr<JobView> view = options_.coordinator->SubmitJob(JobSpecFromProto(request->spec()));
  if (view.ok()) *response = JobViewToProto(*view, options_.clock->Now());
  return Reply(context, view.status());
}

grpc::ServerUnaryReactor* ExportServiceImpl::GetJob(grpc::CallbackServerContext* context,
                                                    const v1::GetJobRequest* request,
                                                    v1::Job* response) {
  RpcTimer timer(options_.metrics, "/mxport.v1.ExportService/GetJob");
  absl::StatusOr<JobView> view = options_.coordinator->GetJob(request->job_id());
  if (view.ok()) *response = JobViewToProto(*view, options_.clock->Now());
  return Reply(context, view.status());
}

grpc::ServerUnaryReactor* ExportServiceImpl::ListJobs(grpc::CallbackServerContext* context,
                                                      const v1::ListJobsRequest* request,
                                                      v1::ListJobsResponse* response) {
  RpcTimer timer(options_.metrics, "/mxport.v1.ExportService/ListJobs");
  const std::map<std::string, std::string> selector(request->label_selector().begin(),
                                                    request->label_selector().end());
  const absl::Time now = options_.clock->Now();
  for (const JobView& view : options_.coordinator->ListJobs(selector)) {
    *response->add_jobs() = JobViewToProto(view, now);
  }
  return Reply(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* ExportServiceImpl::CancelJob(grpc::CallbackServerContext* context,
                                                       const v1::CancelJobRequest* request,
                                                       v1::Job* response) {
  RpcTimer timer(options_.metrics, "/mxport.v1.ExportService/CancelJob");
  absl::StatusOr<JobView> view =
      options_.coordinator->CancelJob(request->job_id(), request->reason());
  if (view.ok()) *response = JobViewToProto(*view, options_.clock->Now());
  return Reply(context, view.status());
}

grpc::ServerWriteReactor<v1::Event>* ExportServiceImpl::WatchJob(
    grpc::CallbackServerContext* context, const v1::WatchJobRequest* request) {
  auto* reactor = new WatchReactor(options_, request->job_id(), request->after_seq());
  reactor->Start();
  return reactor;
}

}  // namespace mxport::coordinator::rpc
