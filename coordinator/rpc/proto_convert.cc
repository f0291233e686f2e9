#include "coordinator/rpc/proto_convert.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"

namespace mxport::coordinator::rpc {

JobSpec JobSpecFromProto(const v1::JobSpec& proto) {
  JobSpec spec;  // its defaults stand for fields the proto leaves empty
  spec.job_id = proto.job_id();
  spec.source_path = proto.source_path();
  if (!proto.source_format().empty()) spec.source_format = proto.source_format();
  if (proto.has_iteration()) spec.iteration = proto.iteration();
  spec.architecture = proto.architecture();
  spec.hf_config_dir = proto.hf_config_dir();
  for (const v1::ExpertList& list : proto.expert_map()) {
    spec.expert_map.emplace_back(list.global_ids().begin(), list.global_ids().end());
  }
  spec.output_path = proto.output_path();
  if (proto.max_shard_size() != 0) spec.max_shard_size = proto.max_shard_size();
  spec.output_dtype = proto.output_dtype();
  if (!proto.quantization().empty()) spec.quantization = proto.quantization();
  if (proto.workers_expected() != 0) spec.workers_expected = proto.workers_expected();
  if (!proto.transport().empty()) spec.transport = proto.transport();
  spec.labels.insert(proto.labels().begin(), proto.labels().end());
  return spec;
}

v1::JobSpec JobSpecToProto(const JobSpec& spec) {
  v1::JobSpec proto;
  proto.set_job_id(spec.job_id);
  proto.set_source_path(spec.source_path);
  proto.set_source_format(spec.source_format);
  if (spec.iteration.has_value()) proto.set_iteration(*spec.iteration);
  proto.set_architecture(spec.architecture);
  proto.set_hf_config_dir(spec.hf_config_dir);
  for (const std::vector<int64_t>& ids : spec.expert_map) {
    proto.add_expert_map()->mutable_global_ids()->Add(ids.begin(), ids.end());
  }
  proto.set_output_path(spec.output_path);
  proto.set_max_shard_size(spec.max_shard_size);
  proto.set_output_dtype(spec.output_dtype);
  proto.set_quantization(spec.quantization);
  proto.set_workers_expected(spec.workers_expected);
  proto.set_transport(spec.transport);
  proto.mutable_labels()->insert(spec.labels.begin(), spec.labels.end());
  return proto;
}

v1::JobPhase JobPhaseToProto(JobPhase phase) {
  switch (phase) {
    case JobPhase::kPending: return v1::PENDING;
    case JobPhase::kScanning: return v1::SCANNING;
    case JobPhase::kPlanned: return v1::PLANNED;
    case JobPhase::kTransferring: return v1::TRANSFERRING;
    case JobPhase::kFinalizing: return v1::FINALIZING;
    case JobPhase::kSucceeded: return v1::SUCCEEDED;
    case JobPhase::kFailed: return v1::FAILED;
    case JobPhase::kCancelled: return v1::CANCELLED;
  }
  return v1::JOB_PHASE_UNSPECIFIED;
}

v1::WorkerState WorkerStateToProto(WorkerState state) {
  switch (state) {
    case WorkerState::kHealthy: return v1::HEALTHY;
    case WorkerState::kStuck: return v1::STUCK;
    case WorkerState::kLost: return v1::LOST;
    case WorkerState::kDone: return v1::DONE;
  }
  return v1::WORKER_STATE_UNSPECIFIED;
}

std::string ShortLeaseResource(const std::string& job_id, const std::string& resource) {
  const std::string prefix = Coordinator::LeaseResource(job_id, "");
  if (absl::StartsWith(resource, prefix)) return resource.substr(prefix.size());
  return resource;
}

v1::Job JobViewToProto(const JobView& view, absl::Time now) {
  const JobRecord& job = view.job;
  const std::string& job_id = job.spec.job_id;
  v1::Job proto;
  *proto.mutable_spec() = JobSpecToProto(job.spec);
  proto.set_phase(JobPhaseToProto(job.phase));
  proto.set_generation(job.generation);
  proto.set_restarts(job.restarts);
  proto.set_created_at(FormatTimeRfc3339(job.created_at));
  proto.set_updated_at(FormatTimeRfc3339(job.updated_at));
  proto.set_message(job.message);
  proto.set_bytes_done(job.bytes_done);
  proto.set_bytes_total(job.bytes_total);
  proto.set_files_committed(job.files_committed);
  proto.set_files_total(job.files_total);
  proto.set_bytes_per_second(view.bytes_per_second);
  proto.set_eta_seconds(view.eta_seconds);
  for (const WorkerInfo& w : view.workers) {
    v1::WorkerStatus* out = proto.add_workers();
    out->set_index(w.index);
    out->set_address(w.address);
    out->set_host(w.host);
    out->set_gpu(w.gpu);
    out->set_state(WorkerStateToProto(w.state));
    out->set_heartbeat_age_seconds(
        std::max(0.0, absl::ToDoubleSeconds(now - std::max(w.last_heartbeat, w.registered_at))));
    out->set_bytes_done(w.bytes_done);
    out->set_bytes_total(w.bytes_total);
    out->set_activity(w.activity);
    out->set_bytes_per_second(w.bytes_per_second);
    for (const std::string& c : w.coordinates) out->add_coordinates(c);
  }
  for (const Lease& lease : view.leases) {
    v1::LeaseStatus* out = proto.add_leases();
    out->set_resource(ShortLeaseResource(job_id, lease.resource));
    out->set_holder(lease.holder);
    out->set_token(lease.token);
    out->set_expires_at(FormatTimeRfc3339(lease.expires_at));
  }
  for (const CommitRecord& c : view.committed) {
    v1::CommittedFile* out = proto.add_committed();
    out->set_path(c.path);
    out->set_size(c.size);
    out->set_content_hash(c.content_hash);
    out->set_token(c.token);
    out->set_generation(c.generation);
    out->set_committed_at(FormatTimeRfc3339(c.time));
  }
  return proto;
}

v1::Event EventToProto(const Event& event) {
  v1::Event proto;
  proto.set_seq(event.seq);
  proto.set_job_id(event.job_id);
  proto.set_generation(event.generation);
  proto.set_time(FormatTimeRfc3339(event.time));
  proto.set_type(event.type);
  proto.set_message(event.message);
  return proto;
}

v1::LeaseResponse LeaseToProto(const std::string& job_id, const Lease& lease) {
  v1::LeaseResponse proto;
  proto.set_resource(ShortLeaseResource(job_id, lease.resource));
  proto.set_token(lease.token);
  proto.set_expires_at(FormatTimeRfc3339(lease.expires_at));
  return proto;
}

CommitRequest CommitRequestFromProto(const v1::CommitFileRequest& proto) {
  CommitRequest request;
  request.job_id = proto.job_id();
  request.generation = proto.generation();
  request.resource = proto.resource();
  request.token = proto.token();
  request.staged_path = proto.staged_path();
  request.path = proto.path();
  request.size = proto.size();
  request.content_hash = proto.content_hash();
  return request;
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

absl::StatusOr<std::string> MessageToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  const auto status = google::protobuf::util::MessageToJsonString(message, &out, options);
  if (!status.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot print ", message.GetTypeName(), " as JSON: ", status.ToString()));
  }
  return out;
}

absl::Status JsonToMessage(absl::string_view json, google::protobuf::Message* message,
                           absl::string_view context) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  const std::string input(json);
  const auto status = google::protobuf::util::JsonStringToMessage(input, message, options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(context, ": not a valid ",
                                                   message->GetTypeName(),
                                                   " JSON: ", std::string(status.message())));
  }
  return absl::OkStatus();
}

v1::CoordinatorMessage OrderToProto(const Order& order) {
  v1::CoordinatorMessage m;
  m.set_generation(order.generation);
  switch (order.kind) {
    case Order::Kind::kAssign: {
      v1::Assignment* a = m.mutable_assignment();
      a->set_rank(order.rank);
      a->set_world_size(order.world_size);
      a->set_transport(order.transport);
      for (const std::string& p : order.peer_addresses) a->add_peer_addresses(p);
      for (const ShardOrder& s : order.shards) {
        v1::ShardRef* r = a->add_shards();
        r->set_path(s.path);
        r->set_tp(s.tp);
        r->set_pp(s.pp);
        r->set_ep(s.ep);
        r->set_replica(s.replica);
        r->set_replicas(s.replicas);
      }
      break;
    }
    case Order::Kind::kPlan: {
      v1::PlanMessage* p = m.mutable_plan();
      p->set_plan_json(order.plan);
      for (const std::string& c : order.committed) p->add_committed(c);
      p->set_sidecar_writer(order.sidecar_writer);
      p->set_output_dir(order.output_dir);
      break;
    }
    case Order::Kind::kFinalize: {
      v1::Finalize* f = m.mutable_finalize();
      f->set_output_dir(order.output_dir);
      for (const auto& [name, bytes] : order.sidecars) {
        v1::Sidecar* s = f->add_sidecars();
        s->set_name(name);
        s->set_content(bytes);
      }
      break;
    }
    case Order::Kind::kAbort:
      m.mutable_abort()->set_reason(order.reason);
      break;
    case Order::Kind::kFinish:
      m.mutable_finish()->set_message(order.reason);
      break;
  }
  return m;
}

megatron::RankManifest ManifestFromProto(const v1::ManifestReport& proto) {
  megatron::RankManifest m;
  m.path = proto.path();
  m.checkpoint_version = proto.checkpoint_version();
  for (const v1::ManifestTensor& t : proto.tensors()) {
    megatron::ManifestEntry e;
    e.vp = megatron::VpRank(t.vp());
    e.key = t.key();
    // The proto enum is the DType table's order shifted by one (0 is UNSPECIFIED).
    e.desc.dtype = static_cast<DType>(std::max(0, static_cast<int>(t.dtype()) - 1));
    e.desc.shape.assign(t.shape().begin(), t.shape().end());
    m.entries.push_back(std::move(e));
  }
  return m;
}

}  // namespace mxport::coordinator::rpc
