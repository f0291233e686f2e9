#include "coordinator/rpc/worker_service.h"

#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "coordinator/rpc/proto_convert.h"

namespace mxport::coordinator::rpc {
namespace {

grpc::ServerUnaryReactor* Reply(grpc::CallbackServerContext* context, const absl::Status& s) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(s));
  return reactor;
}

// One worker Session. Its thread reads a message, handles it, writes the answer, and reads
// again; the reactions only flip flags under mu_.
class SessionReactor final
    : public grpc::ServerBidiReactor<v1::WorkerMessage, v1::CoordinatorMessage>,
      public StoppableStream {
 public:
  SessionReactor(const WorkerServiceImpl::Options& options, grpc::CallbackServerContext* context)
      : options_(options), context_(context) {}

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
    stopped_ = true;
  }
  void OnReadDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    read_pending_ = false;
    read_ok_ = ok;
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
  enum class ReadResult { kMessage, kClosed, kStopped };

  ReadResult Read() {
    {
      absl::MutexLock lock(&mu_);
      if (stopped_) return ReadResult::kStopped;
      read_pending_ = true;
    }
    StartRead(&in_);
    absl::MutexLock lock(&mu_);
    auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !read_pending_ || stopped_; };
    mu_.Await(absl::Condition(&woken));
    if (read_pending_) return ReadResult::kStopped;  // Finish completes the read
    if (read_ok_) return ReadResult::kMessage;
    return stopped_ ? ReadResult::kStopped : ReadResult::kClosed;
  }

  // Sends the driver's orders for this worker as they come (one writer at a time).
  void PumpOrders() {
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        if (stopped_ || pump_stop_) return;
      }
      std::vector<Order> orders =
          options_.driver->TakeOrders(job_id_, index_, absl::Now() + absl::Milliseconds(200));
      for (size_t i = 0; i < orders.size(); ++i) {
        if (!Write(OrderToProto(orders[i])).ok()) {
          // Undelivered: they wait for the worker's next session.
          options_.driver->ReturnOrders(
              job_id_, index_, std::vector<Order>(orders.begin() + i, orders.end()));
          return;
        }
      }
    }
  }

  absl::Status Write(const v1::CoordinatorMessage& message) {
    absl::MutexLock serial(&write_serial_mu_);
    {
      absl::MutexLock lock(&mu_);
      if (stopped_) return absl::CancelledError("session stopped");
      write_pending_ = true;
    }
    out_ = message;
    StartWrite(&out_);
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](bool* pending) { return !*pending; }, &write_pending_));
    return write_ok_ ? absl::OkStatus() : absl::CancelledError("session broken");
  }

  absl::Status Record(const std::string& type, const std::string& message) {
    return options_.coordinator->jobs()
        .Record(job_id_, type, absl::StrCat("worker ", index_, ": ", message))
        .status();
  }

  absl::Status Handle(const v1::WorkerMessage& in) {
    if (job_id_.empty()) {  // the first message names the worker
      job_id_ = in.job_id();
      index_ = in.worker_index();
      if (options_.driver != nullptr) {
        pump_ = std::thread([this] { PumpOrders(); });
      }
    }
    Coordinator& c = *options_.coordinator;
    switch (in.body_case()) {
      case v1::WorkerMessage::kHeartbeat: {
        const v1::Heartbeat& hb = in.heartbeat();
        const absl::Status s = c.Heartbeat(job_id_, in.generation(), index_, hb.bytes_done(),
                                           hb.bytes_total(), hb.activity());
        v1::CoordinatorMessage reply;
        reply.set_generation(in.generation());
        if (s.code() == absl::StatusCode::kAborted) {  // an old generation: tell it to stop
          absl::StatusOr<JobRecord> job = c.jobs().Get(job_id_);
          if (job.ok()) reply.set_generation(job->generation);
          reply.mutable_abort()->set_reason(std::string(s.message()));
        } else if (!s.ok()) {
          return s;
        }
        return Write(reply);
      }
      case v1::WorkerMessage::kFailure:
        if (options_.driver != nullptr) {
          options_.driver
              ->OnWorkerFailed(job_id_, in.generation(), index_, in.failure().message())
              .IgnoreError();
        }
        return Record("worker_failed",
                      absl::StrCat("generation ", in.generation(), ": ", in.failure().message()));
      case v1::WorkerMessage::kDone:
        c.workers().MarkDone(job_id_, index_).IgnoreError();
        return Record("worker_done", absl::StrCat("generation ", in.generation(), " done"));
      case v1::WorkerMessage::kAbortAck:
        return Record("abort_ack",
                      absl::StrCat("aborted generation ", in.abort_ack().aborted_generation()));
      case v1::WorkerMessage::kManifest:
        if (options_.driver == nullptr) return absl::OkStatus();
        return options_.driver->OnManifest(job_id_, in.generation(),
                                           ManifestFromProto(in.manifest()));
      case v1::WorkerMessage::BODY_NOT_SET: return absl::OkStatus();
    }
    return absl::OkStatus();
  }

  grpc::Status Loop() {
    grpc::Status status = ReadLoop();
    {
      absl::MutexLock lock(&mu_);
      pump_stop_ = true;
    }
    if (pump_.joinable()) pump_.join();
    return status;
  }

  grpc::Status ReadLoop() {
    while (true) {
      switch (Read()) {
        case ReadResult::kStopped:
          if (context_->IsCancelled()) return SessionLost();
          return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the coordinator is shutting down");
        case ReadResult::kClosed:
          if (context_->IsCancelled()) return SessionLost();
          return grpc::Status::OK;
        case ReadResult::kMessage: break;
      }
      const absl::Status s = Handle(in_);
      if (s.code() == absl::StatusCode::kCancelled && context_->IsCancelled()) {
        return SessionLost();
      }
      if (!s.ok()) return ToGrpcStatus(s);
    }
  }

  grpc::Status SessionLost() {
    if (!job_id_.empty()) Record("worker_session_lost", "session stream broke").IgnoreError();
    return grpc::Status(grpc::StatusCode::CANCELLED, "session cancelled");
  }

  const WorkerServiceImpl::Options& options_;
  grpc::CallbackServerContext* const context_;
  bool registered_ = false;
  std::thread thread_;
  std::string job_id_;  // set by the first message; used only by the thread
  int64_t index_ = 0;
  v1::WorkerMessage in_;
  v1::CoordinatorMessage out_;
  absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool read_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool read_ok_ ABSL_GUARDED_BY(mu_) = true;
  bool write_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool write_ok_ ABSL_GUARDED_BY(mu_) = true;
  bool pump_stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::Mutex write_serial_mu_;
  std::thread pump_;
};

}  // namespace

grpc::ServerUnaryReactor* WorkerServiceImpl::Register(grpc::CallbackServerContext* context,
                                                      const v1::RegisterRequest* request,
                                                      v1::RegisterResponse* response) {
  RpcTimer timer(options_.metrics, "/mxport.v1.WorkerService/Register");
  absl::StatusOr<Coordinator::Registration> r = options_.coordinator->RegisterWorker(
      request->job_id(), request->worker_index(), request->data_address(), request->host(),
      request->gpu());
  if (r.ok() && options_.driver != nullptr) {
    const absl::Status s = options_.driver->OnRegistered(request->job_id(), request->worker_index());
    if (!s.ok()) return Reply(context, s);
  }
  if (r.ok()) {
    response->set_generation(r->generation);
    response->set_session(r->session);
    response->set_workers_expected(r->workers_expected);
    response->set_heartbeat_interval_seconds(absl::ToDoubleSeconds(options_.heartbeat_interval));
  }
  return Reply(context, r.status());
}

grpc::ServerBidiReactor<v1::WorkerMessage, v1::CoordinatorMessage>* WorkerServiceImpl::Session(
    grpc::CallbackServerContext* context) {
  auto* reactor = new SessionReactor(options_, context);
  reactor->Start();
  return reactor;
}

grpc::ServerUnaryReactor* WorkerServiceImpl::AcquireLease(grpc::CallbackServerContext* context,
                                                          const v1::LeaseRequest* request,
                                                          v1::LeaseResponse* response) {
  RpcTimer timer(options_.metrics, "/mxport.v1.WorkerService/AcquireLease");
  absl::StatusOr<Lease> lease = options_.coordinator->AcquireLease(
      request->job_id(), request->generation(), request->worker_index(), request->resource());
  if (lease.ok()) *response = LeaseToProto(request->job_id(), *lease);
  return Reply(context, lease.status());
}

grpc::ServerUnaryReactor* WorkerServiceImpl::RenewLease(grpc::CallbackServerContext* context,
                                                        const v1::LeaseRequest* request,
                                                        v1::LeaseResponse* response) {
  RpcTimer timer(options_.metrics, "/mxport.v1.WorkerService/RenewLease");
  absl::StatusOr<Lease> lease = options_.coordinator->RenewLease(
      request->job_id(), request->generation(), request->resource(), request->token());
  if (lease.ok()) *response = LeaseToProto(request->job_id(), *lease);
  return Reply(context, lease.status());
}

grpc::ServerUnaryReactor* WorkerServiceImpl::CommitFile(grpc::CallbackServerContext* context,
                                                        const v1::CommitFileRequest* request,
                                                        v1::CommitFileResponse* response) {
  RpcTimer timer(options_.metrics, "/mxport.v1.WorkerService/CommitFile");
  absl::StatusOr<CommitResult> result = options_.coordinator->CommitFile(
      request->job_id(), request->generation(), CommitRequestFromProto(*request));
  if (result.ok()) {
    response->set_already_committed(result->already_committed);
    if (options_.driver != nullptr) {
      const absl::Status s = options_.driver->OnCommitted(request->job_id(), request->generation());
      if (!s.ok()) return Reply(context, s);
    }
  }
  return Reply(context, result.status());
}

grpc::ServerUnaryReactor* WorkerServiceImpl::PublishNcclId(grpc::CallbackServerContext* context,
                                                           const v1::NcclIdRequest* request,
                                                           v1::NcclIdResponse* response) {
  RpcTimer timer(options_.metrics, "/mxport.v1.WorkerService/PublishNcclId");
  const absl::Status s = options_.coordinator->PublishNcclId(
      request->job_id(), request->generation(), request->unique_id());
  if (s.ok()) response->set_unique_id(request->unique_id());
  return Reply(context, s);
}

grpc::ServerUnaryReactor* WorkerServiceImpl::GetNcclId(grpc::CallbackServerContext* context,
                                                       const v1::NcclIdRequest* request,
                                                       v1::NcclIdResponse* response) {
  RpcTimer timer(options_.metrics, "/mxport.v1.WorkerService/GetNcclId");
  absl::StatusOr<std::string> id =
      options_.coordinator->GetNcclId(request->job_id(), request->generation());
  if (id.ok()) response->set_unique_id(*id);
  return Reply(context, id.status());
}

}  // namespace mxport::coordinator::rpc
