#include "worker/rpc/grpc_coordinator_client.h"

#include <grpcpp/grpcpp.h>

#include <deque>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/base/status_macros.h"
#include "mxport/v1/worker.grpc.pb.h"

namespace mxport::worker {
namespace {

namespace pb = ::mxport::v1;
using exporter::Order;

absl::Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

Order FromProto(const pb::CoordinatorMessage& m) {
  Order o;
  o.generation = m.generation();
  switch (m.body_case()) {
    case pb::CoordinatorMessage::kAssignment:
      o.kind = Order::Kind::kAssign;
      o.rank = m.assignment().rank();
      o.world_size = m.assignment().world_size();
      o.peer_addresses.assign(m.assignment().peer_addresses().begin(),
                              m.assignment().peer_addresses().end());
      if (!m.assignment().transport().empty()) o.transport = m.assignment().transport();
      for (const auto& s : m.assignment().shards()) {
        o.shards.push_back({s.path(), s.tp(), s.pp(), s.ep(), s.replica(), s.replicas()});
      }
      break;
    case pb::CoordinatorMessage::kPlan:
      o.kind = Order::Kind::kPlan;
      o.plan = m.plan().plan_json();
      o.committed.assign(m.plan().committed().begin(), m.plan().committed().end());
      o.sidecar_writer = m.plan().sidecar_writer();
      o.output_dir = m.plan().output_dir();
      break;
    case pb::CoordinatorMessage::kFinalize:
      o.kind = Order::Kind::kFinalize;
      o.output_dir = m.finalize().output_dir();
      for (const auto& s : m.finalize().sidecars()) o.sidecars.push_back({s.name(), s.content()});
      break;
    case pb::CoordinatorMessage::kAbort:
      o.kind = Order::Kind::kAbort;
      o.reason = m.abort().reason();
      break;
    default:
      o.kind = Order::Kind::kFinish;
      o.reason = m.finish().message();
      break;
  }
  return o;
}

class GrpcClient : public CoordinatorClient {
 public:
  explicit GrpcClient(GrpcClientOptions options) : options_(std::move(options)) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 15000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    args.SetMaxReceiveMessageSize(1 << 30);
    channel_ = grpc::CreateCustomChannel(options_.coordinator_address,
                                         grpc::InsecureChannelCredentials(), args);
    stub_ = pb::WorkerService::NewStub(channel_);
  }
  ~GrpcClient() override { CloseSession(); }

  absl::StatusOr<int64_t> Register(const std::string& job, int64_t index,
                                   const std::string& address) override {
    CloseSession();
    pb::RegisterRequest req;
    req.set_job_id(job);
    req.set_worker_index(index);
    req.set_data_address(address);
    req.set_host(options_.host);
    req.set_gpu(options_.gpu);
    pb::RegisterResponse resp;
    RETURN_IF_ERROR(Unary([&](grpc::ClientContext* ctx) {
      return stub_->Register(ctx, req, &resp);
    }));
    OpenSession(job, index, resp.generation());
    return resp.generation();
  }

  absl::StatusOr<std::vector<Order>> NextOrders(const std::string&, int64_t,
                                                absl::Time deadline) override {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return !orders_.empty() || session_broken_;
    };
    mu_.AwaitWithDeadline(absl::Condition(&ready), deadline);
    if (orders_.empty() && session_broken_) {
      return absl::UnavailableError("the session with the coordinator broke");
    }
    std::vector<Order> out(orders_.begin(), orders_.end());
    orders_.clear();
    return out;
  }

  absl::Status ReportManifest(const std::string& job, int64_t gen,
                              const megatron::RankManifest& m) override {
    pb::WorkerMessage msg = Header(job, gen);
    auto* r = msg.mutable_manifest();
    r->set_path(m.path);
    r->set_checkpoint_version(m.checkpoint_version);
    for (const auto& e : m.entries) {
      auto* t = r->add_tensors();
      t->set_vp(e.vp.value());
      t->set_key(e.key);
      t->set_dtype(static_cast<pb::DType>(static_cast<int>(e.desc.dtype) + 1));
      for (int64_t d : e.desc.shape) t->add_shape(d);
    }
    return Write(msg);
  }

  absl::Status Heartbeat(const std::string& job, int64_t gen, int64_t, uint64_t done,
                         uint64_t total, const std::string& activity) override {
    pb::WorkerMessage msg = Header(job, gen);
    msg.mutable_heartbeat()->set_bytes_done(done);
    msg.mutable_heartbeat()->set_bytes_total(total);
    msg.mutable_heartbeat()->set_activity(activity);
    return Write(msg);
  }

  absl::StatusOr<int64_t> AcquireLease(const std::string& job, int64_t gen, int64_t index,
                                       const std::string& resource) override {
    pb::LeaseRequest req;
    req.set_job_id(job);
    req.set_generation(gen);
    req.set_worker_index(index);
    req.set_resource(resource);
    pb::LeaseResponse resp;
    RETURN_IF_ERROR(Unary([&](grpc::ClientContext* ctx) {
      return stub_->AcquireLease(ctx, req, &resp);
    }));
    return resp.token();
  }

  absl::Status Commit(const std::string& job, int64_t gen, int64_t index,
                      const std::string& resource, int64_t token, const std::string& staged,
                      const std::string& path, uint64_t size, const std::string& sha) override {
    pb::CommitFileRequest req;
    req.set_job_id(job);
    req.set_generation(gen);
    req.set_worker_index(index);
    req.set_resource(resource);
    req.set_token(token);
    req.set_staged_path(staged);
    req.set_path(path);
    req.set_size(size);
    req.set_content_hash(sha);
    pb::CommitFileResponse resp;
    return Unary([&](grpc::ClientContext* ctx) { return stub_->CommitFile(ctx, req, &resp); });
  }

  absl::Status PublishNcclId(const std::string& job, int64_t gen, int64_t index,
                             const std::string& unique_id) override {
    pb::NcclIdRequest req;
    req.set_job_id(job);
    req.set_generation(gen);
    req.set_worker_index(index);
    req.set_unique_id(unique_id);
    pb::NcclIdResponse resp;
    return Unary(
        [&](grpc::ClientContext* ctx) { return stub_->PublishNcclId(ctx, req, &resp); });
  }

  absl::StatusOr<std::string> GetNcclId(const std::string& job, int64_t gen,
                                        int64_t index) override {
    pb::NcclIdRequest req;
    req.set_job_id(job);
    req.set_generation(gen);
    req.set_worker_index(index);
    pb::NcclIdResponse resp;
    RETURN_IF_ERROR(
        Unary([&](grpc::ClientContext* ctx) { return stub_->GetNcclId(ctx, req, &resp); }));
    return resp.unique_id();
  }

  absl::Status ReportFailure(const std::string& job, int64_t gen, int64_t,
                             const std::string& message) override {
    pb::WorkerMessage msg = Header(job, gen);
    msg.mutable_failure()->set_message(message);
    return Write(msg);
  }

 private:
  pb::WorkerMessage Header(const std::string& job, int64_t gen) {
    pb::WorkerMessage msg;
    msg.set_job_id(job);
    msg.set_worker_index(index_);
    msg.set_generation(gen);
    return msg;
  }

  bool stopping() const { return options_.stop != nullptr && options_.stop->load(); }

  // Retries UNAVAILABLE with backoff; every attempt has its own deadline.
  absl::Status Unary(const std::function<grpc::Status(grpc::ClientContext*)>& call) {
    absl::Duration backoff = absl::Milliseconds(100);
    for (int attempt = 0;; ++attempt) {
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + options_.call_timeout));
      const grpc::Status s = call(&ctx);
      if (s.error_code() != grpc::StatusCode::UNAVAILABLE || attempt >= options_.retries) {
        return FromGrpc(s);
      }
      // Waiting for a coordinator to come back, in slices so a stop is seen promptly.
      for (absl::Time until = absl::Now() + backoff; absl::Now() < until;) {
        if (stopping()) return absl::CancelledError("worker stopping; coordinator call abandoned");
        absl::SleepFor(std::min(absl::Milliseconds(50), until - absl::Now()));
      }
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
  }

  void OpenSession(const std::string& job, int64_t index, int64_t gen) {
    absl::MutexLock lock(&mu_);
    index_ = index;
    session_broken_ = false;
    session_ctx_ = std::make_unique<grpc::ClientContext>();
    stream_ = stub_->Session(session_ctx_.get());
    pb::WorkerMessage hello = Header(job, gen);
    hello.mutable_heartbeat()->set_activity("registered");
    stream_->Write(hello);
    reader_ = std::thread([this, stream = stream_.get()] {
      pb::CoordinatorMessage m;
      while (stream->Read(&m)) {
        if (m.body_case() == pb::CoordinatorMessage::BODY_NOT_SET) continue;  // a heartbeat ack
        absl::MutexLock lock(&mu_);
        orders_.push_back(FromProto(m));
      }
      absl::MutexLock lock(&mu_);
      session_broken_ = true;
    });
  }

  void CloseSession() {
    std::thread reader;
    {
      absl::MutexLock lock(&mu_);
      if (stream_ == nullptr) return;
      stream_->WritesDone();
      session_ctx_->TryCancel();
      reader.swap(reader_);
    }
    reader.join();
    absl::MutexLock lock(&mu_);
    stream_->Finish().IgnoreError();
    stream_.reset();
    session_ctx_.reset();
  }

  absl::Status Write(const pb::WorkerMessage& msg) {
    absl::MutexLock lock(&write_mu_);
    grpc::ClientReaderWriter<pb::WorkerMessage, pb::CoordinatorMessage>* stream;
    {
      absl::MutexLock lock2(&mu_);
      stream = stream_.get();
    }
    if (stream == nullptr || !stream->Write(msg)) {
      return absl::UnavailableError("the session with the coordinator is closed");
    }
    return absl::OkStatus();
  }

  GrpcClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::WorkerService::Stub> stub_;
  absl::Mutex write_mu_;
  absl::Mutex mu_;
  int64_t index_ = 0;
  std::unique_ptr<grpc::ClientContext> session_ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<pb::WorkerMessage, pb::CoordinatorMessage>> stream_;
  std::thread reader_;
  std::deque<Order> orders_ ABSL_GUARDED_BY(mu_);
  bool session_broken_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

std::unique_ptr<CoordinatorClient> NewGrpcCoordinatorClient(GrpcClientOptions options) {
  return std::make_unique<GrpcClient>(std::move(options));
}

}  // namespace mxport::worker
