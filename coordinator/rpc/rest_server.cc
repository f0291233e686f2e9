#include "coordinator/rpc/rest_server.h"

#include <algorithm>
#include <atomic>
#include <csignal>
#include <map>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/json/json.h"
#include "coordinator/rpc/dashboard_html.h"
#include "coordinator/rpc/proto_convert.h"
#include "httplib.h"

namespace mxport::coordinator::rpc {
namespace {

constexpr char kJobId[] = "([A-Za-z0-9._-]+)";
constexpr char kJsonType[] = "application/json";
constexpr char kNdjsonType[] = "application/x-ndjson";

void SendError(httplib::Response& res, const absl::Status& status) {
  res.status = HttpStatusFromCode(status.code());
  const Json body = {{"code", absl::StatusCodeToString(status.code())},
                     {"message", std::string(status.message())}};
  res.set_content(body.dump(-1, ' ', false, Json::error_handler_t::replace), kJsonType);
}

void SendMessage(httplib::Response& res, const google::protobuf::Message& message) {
  absl::StatusOr<std::string> json = MessageToJson(message);
  if (!json.ok()) return SendError(res, json.status());
  res.set_content(*json, kJsonType);
}

// The values of query parameter `key`, split at the first '=' only (httplib's own parsing
// keeps the last '='-separated piece, which loses "label=k=v").
std::vector<std::string> QueryValues(const httplib::Request& req, absl::string_view key) {
  std::vector<std::string> values;
  const size_t question = req.target.find('?');
  if (question == std::string::npos) return values;
  const absl::string_view query = absl::string_view(req.target).substr(question + 1);
  for (absl::string_view pair : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(pair, absl::MaxSplits('=', 1));
    if (httplib::detail::decode_url(kv.first, true) == key) {
      values.push_back(httplib::detail::decode_url(kv.second, true));
    }
  }
  return values;
}

// "label=k=v" query parameters (repeatable, or comma-separated) as a selector.
absl::StatusOr<std::map<std::string, std::string>> LabelSelector(const httplib::Request& req) {
  std::map<std::string, std::string> selector;
  for (const std::string& value : QueryValues(req, "label")) {
    for (absl::string_view term : absl::StrSplit(value, ',', absl::SkipWhitespace())) {
      std::pair<std::string, std::string> kv = absl::StrSplit(term, absl::MaxSplits('=', 1));
      if (kv.first.empty() || !absl::StrContains(term, '=')) {
        return absl::InvalidArgumentError(
            absl::StrCat("label selector '", term, "' is not of the form key=value"));
      }
      selector[kv.first] = kv.second;
    }
  }
  return selector;
}

// A JSON body for errors httplib raises itself (no route: 404, bad request: 400, ...).
httplib::Server::HandlerResponse ErrorPage(const httplib::Request& req, httplib::Response& res) {
  if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;  // ours already
  const int status = res.status;
  const absl::StatusCode code = status == 404  ? absl::StatusCode::kNotFound
                                : status < 500 ? absl::StatusCode::kInvalidArgument
                                               : absl::StatusCode::kInternal;
  SendError(res,
            absl::Status(code, absl::StrCat("HTTP ", status, " for ", req.method, " ", req.path)));
  res.status = status;
  return httplib::Server::HandlerResponse::Handled;
}

}  // namespace

int HttpStatusFromCode(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk: return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange: return 400;
    case absl::StatusCode::kUnauthenticated: return 401;
    case absl::StatusCode::kPermissionDenied: return 403;
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted: return 409;
    case absl::StatusCode::kFailedPrecondition: return 412;
    case absl::StatusCode::kResourceExhausted: return 429;
    case absl::StatusCode::kCancelled: return 499;
    case absl::StatusCode::kUnimplemented: return 501;
    case absl::StatusCode::kUnavailable: return 503;
    case absl::StatusCode::kDeadlineExceeded: return 504;
    default: return 500;
  }
}

struct RestServer::Impl {
  explicit Impl(Options o) : options(std::move(o)) {}

  void Routes();
  bool Authorized(const httplib::Request& req) const;
  void Submit(const httplib::Request& req, httplib::Response& res);
  void List(const httplib::Request& req, httplib::Response& res);
  void Get(const httplib::Request& req, httplib::Response& res);
  void Cancel(const httplib::Request& req, httplib::Response& res);
  void Events(const httplib::Request& req, httplib::Response& res);
  // One step of a follow stream: waits a little for events and writes them; false on error.
  bool FollowStep(const std::string& job_id, int64_t* after, httplib::DataSink& sink);

  const Options options;
  httplib::Server server;
  std::thread thread;
  std::atomic<bool> stopping{false};
  std::atomic<bool> listen_returned{false};
  int port = 0;
};

bool RestServer::Impl::Authorized(const httplib::Request& req) const {
  if (options.bearer_token.empty() || !absl::StartsWith(req.path, "/v1/")) return true;
  const std::string expected = absl::StrCat("Bearer ", options.bearer_token);
  const std::string given = req.get_header_value("Authorization");
  // Compare every byte, so the time taken does not tell how much of the token matched.
  unsigned char diff = given.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < given.size() && i < expected.size(); ++i) diff |= given[i] ^ expected[i];
  return diff == 0;
}

void RestServer::Impl::Routes() {
  server.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (Authorized(req)) return httplib::Server::HandlerResponse::Unhandled;
    res.set_header("WWW-Authenticate", "Bearer");
    SendError(res, absl::UnauthenticatedError("missing or wrong bearer token"));
    return httplib::Server::HandlerResponse::Handled;
  });
  server.set_error_handler(httplib::Server::HandlerWithResponse(&ErrorPage));
  using Req = const httplib::Request&;
  using Res = httplib::Response&;
  server.Post("/v1/jobs", [this](Req req, Res res) { Submit(req, res); });
  server.Get("/v1/jobs", [this](Req req, Res res) { List(req, res); });
  server.Get(absl::StrCat("/v1/jobs/", kJobId), [this](Req req, Res res) { Get(req, res); });
  server.Post(absl::StrCat("/v1/jobs/", kJobId, ":cancel"),
              [this](Req req, Res res) { Cancel(req, res); });
  server.Get(absl::StrCat("/v1/jobs/", kJobId, "/events"),
             [this](Req req, Res res) { Events(req, res); });
  server.Get("/healthz", [](Req, Res res) { res.set_content("ok\n", "text/plain"); });
  server.Get("/metrics", [this](Req, Res res) {
    RpcTimer timer(options.metrics, "GET /metrics");
    res.set_content(options.metrics->Render(options.coordinator->ListJobs(), options.clock->Now()),
                    "text/plain; version=0.0.4; charset=utf-8");
  });
  server.Get("/",
             [](Req, Res res) { res.set_content(kDashboardHtml, "text/html; charset=utf-8"); });
}

void RestServer::Impl::Submit(const httplib::Request& req, httplib::Response& res) {
  RpcTimer timer(options.metrics, "POST /v1/jobs");
  absl::StatusOr<Json> body = ParseJson(req.body, "request body");
  if (!body.ok()) return SendError(res, body.status());
  v1::SubmitJobRequest request;  // the body is a JobSpec, or a SubmitJobRequest {"spec": ...}
  const bool wrapped = body->is_object() && body->contains("spec");
  absl::Status parsed =
      wrapped ? JsonToMessage(req.body, &request) : JsonToMessage(req.body, request.mutable_spec());
  if (!parsed.ok()) return SendError(res, parsed);
  absl::StatusOr<JobView> view = options.coordinator->SubmitJob(JobSpecFromProto(request.spec()));
  if (!view.ok()) return SendError(res, view.status());
  SendMessage(res, JobViewToProto(*view, options.clock->Now()));
}

void RestServer::Impl::List(const httplib::Request& req, httplib::Response& res) {
  RpcTimer timer(options.metrics, "GET /v1/jobs");
  absl::StatusOr<std::map<std::string, std::string>> selector = LabelSelector(req);
  if (!selector.ok()) return SendError(res, selector.status());
  v1::ListJobsResponse response;
  const absl::Time now = options.clock->Now();
  for (const JobView& view : options.coordinator->ListJobs(*selector)) {
    *response.add_jobs() = JobViewToProto(view, now);
  }
  SendMessage(res, response);
}

void RestServer::Impl::Get(const httplib::Request& req, httplib::Response& res) {
  RpcTimer timer(options.metrics, "GET /v1/jobs/{id}");
  absl::StatusOr<JobView> view = options.coordinator->GetJob(req.matches[1]);
  if (!view.ok()) return SendError(res, view.status());
  SendMessage(res, JobViewToProto(*view, options.clock->Now()));
}

void RestServer::Impl::Cancel(const httplib::Request& req, httplib::Response& res) {
  RpcTimer timer(options.metrics, "POST /v1/jobs/{id}:cancel");
  v1::CancelJobRequest request;
  if (!absl::StripAsciiWhitespace(req.body).empty()) {
    absl::Status parsed = JsonToMessage(req.body, &request);
    if (!parsed.ok()) return SendError(res, parsed);
  }
  absl::StatusOr<JobView> view = options.coordinator->CancelJob(req.matches[1], request.reason());
  if (!view.ok()) return SendError(res, view.status());
  SendMessage(res, JobViewToProto(*view, options.clock->Now()));
}

bool RestServer::Impl::FollowStep(const std::string& job_id, int64_t* after,
                                  httplib::DataSink& sink) {
  if (stopping.load()) return false;  // cut off: the client resumes from its last seq
  // Read the phase before the events: once terminal, the final event is already stored.
  absl::StatusOr<JobRecord> job = options.coordinator->jobs().Get(job_id);
  if (!job.ok()) return false;
  const bool terminal = IsTerminal(job->phase);
  absl::StatusOr<std::vector<Event>> events =
      terminal
          ? options.coordinator->Events(job_id, *after)
          : options.coordinator->WaitForEvents(job_id, *after, absl::Now() + options.follow_poll);
  if (!events.ok()) return false;
  for (const Event& event : *events) {
    absl::StatusOr<std::string> line = MessageToJson(EventToProto(event));
    if (!line.ok()) return false;
    line->push_back('\n');
    if (!sink.write(line->data(), line->size())) return false;
    *after = event.seq;
  }
  if (terminal && events->empty()) sink.done();
  return true;
}

void RestServer::Impl::Events(const httplib::Request& req, httplib::Response& res) {
  RpcTimer timer(options.metrics, "GET /v1/jobs/{id}/events");
  const std::string job_id = req.matches[1];
  int64_t after_seq = 0;
  if (req.has_param("after_seq") &&
      !absl::SimpleAtoi(req.get_param_value("after_seq"), &after_seq)) {
    return SendError(res, absl::InvalidArgumentError("after_seq must be an integer"));
  }
  const std::string follow = req.get_param_value("follow");
  if (follow == "1" || follow == "true") {
    absl::StatusOr<JobRecord> job = options.coordinator->jobs().Get(job_id);
    if (!job.ok()) return SendError(res, job.status());
    auto after = std::make_shared<int64_t>(after_seq);
    res.set_chunked_content_provider(kNdjsonType,
                                     [this, job_id, after](size_t, httplib::DataSink& sink) {
                                       return FollowStep(job_id, after.get(), sink);
                                     });
    return;
  }
  std::string body;
  while (true) {
    absl::StatusOr<std::vector<Event>> events = options.coordinator->Events(job_id, after_seq);
    if (!events.ok()) return SendError(res, events.status());
    if (events->empty()) break;
    for (const Event& event : *events) {
      absl::StatusOr<std::string> line = MessageToJson(EventToProto(event));
      if (!line.ok()) return SendError(res, line.status());
      absl::StrAppend(&body, *line, "\n");
      after_seq = event.seq;
    }
  }
  res.set_content(body, kNdjsonType);
}

absl::StatusOr<std::unique_ptr<RestServer>> RestServer::Start(Options options) {
  if (options.coordinator == nullptr || options.metrics == nullptr) {
    return absl::InvalidArgumentError("RestServer needs a coordinator and metrics");
  }
  struct sigaction old_action = {};
  if (sigaction(SIGPIPE, nullptr, &old_action) == 0 && old_action.sa_handler == SIG_DFL) {
    std::signal(SIGPIPE, SIG_IGN);
  }
  auto impl = std::make_unique<Impl>(std::move(options));
  impl->Routes();
  const size_t threads = std::max(impl->options.threads, 2);
  impl->server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  impl->server.set_keep_alive_timeout(2);
  const std::string& host = impl->options.host;
  if (impl->options.port == 0) {
    impl->port = impl->server.bind_to_any_port(host);
  } else {
    impl->port = impl->server.bind_to_port(host, impl->options.port) ? impl->options.port : -1;
  }
  if (impl->port <= 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot bind the REST server to ", host, ":", impl->options.port));
  }
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] {
    raw->server.listen_after_bind();
    raw->listen_returned = true;
  });
  // httplib's stop() is a no-op until the listener runs, so wait for it (it starts at once).
  while (!impl->server.is_running() && !impl->listen_returned.load()) std::this_thread::yield();
  return std::unique_ptr<RestServer>(new RestServer(std::move(impl)));
}

RestServer::RestServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RestServer::~RestServer() { Stop(); }

int RestServer::port() const { return impl_->port; }

void RestServer::Stop() {
  if (impl_->stopping.exchange(true)) return;
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace mxport::coordinator::rpc
