#include "coordinator/rpc/server.h"

#include "coordinator/core/job_driver.h"

#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/base/status_macros.h"
#include "coordinator/core/store.h"
#include "coordinator/rpc/export_service.h"
#include "coordinator/rpc/metrics.h"
#include "coordinator/rpc/rest_server.h"
#include "coordinator/rpc/stream_set.h"
#include "coordinator/rpc/worker_service.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"

namespace mxport::coordinator::rpc {
namespace {

int Millis(absl::Duration d) { return static_cast<int>(absl::ToInt64Milliseconds(d)); }

absl::StatusOr<std::unique_ptr<Store>> OpenStore(const std::string& db_path) {
  if (db_path.empty() || db_path == ":memory:") return NewMemoryStore();
  return OpenSqliteStore(db_path);
}

}  // namespace

// Members are destroyed bottom-up: threads and servers before the services they call, the
// services before the coordinator, the coordinator before its store.
struct CoordinatorServer::Impl {
  Options options;
  std::unique_ptr<Store> store;
  std::unique_ptr<Coordinator> coordinator;
  std::unique_ptr<JobDriver> driver;
  Metrics metrics;
  StreamSet streams;
  std::unique_ptr<ExportServiceImpl> export_service;
  std::unique_ptr<WorkerServiceImpl> worker_service;
  std::unique_ptr<grpc::Server> server;
  int grpc_port = 0;
  std::unique_ptr<RestServer> rest;
  absl::Notification stop_ticking;
  std::thread ticker;
  absl::Mutex shutdown_mu;  // one Shutdown at a time
  absl::Notification shut_down;
};

absl::StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Start(Options options) {
  auto impl = std::make_unique<Impl>();
  if (options.fs == nullptr) options.fs = fs::PosixFileSystem();
  if (options.clock == nullptr) options.clock = RealClock();
  std::vector<std::string> roots;
  for (const std::string& root : options.allowed_roots) {
    ASSIGN_OR_RETURN(std::string normal, NormalizeAbsolutePath(root));
    roots.push_back(std::move(normal));
  }
  impl->options = std::move(options);
  const Options& o = impl->options;

  ASSIGN_OR_RETURN(impl->store, OpenStore(o.db_path));
  Coordinator::Options core;
  core.store = impl->store.get();
  core.fs = o.fs;
  core.clock = o.clock;
  core.allowed_roots = std::move(roots);
  core.heartbeat_ttl = o.heartbeat_ttl;
  core.verify_commit_hash = o.verify_commit_hash;
  core.stall_after = o.stall_after;
  core.lease_duration = o.lease_duration;
  ASSIGN_OR_RETURN(impl->coordinator, Coordinator::Create(std::move(core)));
  impl->driver = std::make_unique<JobDriver>(impl->coordinator.get(), o.fs);

  impl->export_service = std::make_unique<ExportServiceImpl>(
      ExportServiceImpl::Options{impl->coordinator.get(), &impl->streams, &impl->metrics, o.clock});
  impl->worker_service = std::make_unique<WorkerServiceImpl>(WorkerServiceImpl::Options{
      impl->coordinator.get(), &impl->streams, &impl->metrics, o.heartbeat_ttl / 3,
      impl->driver.get()});

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(o.grpc_address, grpc::InsecureServerCredentials(), &impl->grpc_port);
  builder.RegisterService(impl->export_service.get());
  builder.RegisterService(impl->worker_service.get());
  builder.SetMaxReceiveMessageSize(o.max_message_size);
  builder.SetMaxSendMessageSize(o.max_message_size);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, Millis(o.keepalive_time));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, Millis(o.keepalive_timeout));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             Millis(o.min_client_ping_interval));
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  impl->server = builder.BuildAndStart();
  if (impl->server == nullptr || impl->grpc_port == 0) {
    if (impl->server != nullptr) impl->server->Shutdown();
    return absl::UnavailableError(absl::StrCat("cannot serve gRPC on ", o.grpc_address));
  }
  grpc::HealthCheckServiceInterface* health = impl->server->GetHealthCheckService();
  health->SetServingStatus(true);
  for (const char* service : {"mxport.v1.ExportService", "mxport.v1.WorkerService"}) {
    health->SetServingStatus(service, true);
  }

  if (o.rest_port >= 0) {
    absl::StatusOr<std::unique_ptr<RestServer>> rest =
        RestServer::Start({o.rest_host, o.rest_port, o.bearer_token, impl->coordinator.get(),
                           &impl->metrics, o.clock});
    if (!rest.ok()) {
      impl->server->Shutdown();
      return rest.status();
    }
    impl->rest = std::move(*rest);
  }
  if (o.tick_interval > absl::ZeroDuration()) {
    Impl* raw = impl.get();
    impl->ticker = std::thread([raw] {
      while (!raw->stop_ticking.WaitForNotificationWithTimeout(raw->options.tick_interval)) {
        raw->coordinator->Tick();
        raw->driver->OnTick();
      }
    });
  }
  return std::unique_ptr<CoordinatorServer>(new CoordinatorServer(std::move(impl)));
}

CoordinatorServer::CoordinatorServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

CoordinatorServer::~CoordinatorServer() { Shutdown(absl::Now() + absl::Seconds(1)); }

int CoordinatorServer::grpc_port() const { return impl_->grpc_port; }

int CoordinatorServer::rest_port() const { return impl_->rest ? impl_->rest->port() : -1; }

Coordinator& CoordinatorServer::coordinator() { return *impl_->coordinator; }

void CoordinatorServer::Drain() { impl_->server->GetHealthCheckService()->Shutdown(); }

void CoordinatorServer::Shutdown(absl::Time deadline) {
  absl::MutexLock lock(&impl_->shutdown_mu);
  if (impl_->shut_down.HasBeenNotified()) return;
  Drain();
  if (impl_->rest) impl_->rest->Stop();
  impl_->streams.StopAll();  // gRPC would otherwise wait for open streams until the deadline
  impl_->server->Shutdown(absl::ToChronoTime(deadline));
  impl_->streams.WaitEmpty(deadline + absl::Seconds(5));
  impl_->server->Wait();
  impl_->stop_ticking.Notify();
  if (impl_->ticker.joinable()) impl_->ticker.join();
  impl_->shut_down.Notify();
}

void CoordinatorServer::Wait() { impl_->shut_down.WaitForNotification(); }

}  // namespace mxport::coordinator::rpc
