// Conversions between the coordinator core's plain types and the mxport.v1 protobuf messages,
// between absl::Status and grpc::Status, and between messages and their JSON form. This is the
// only place where core values and generated types meet; handlers are proto -> core -> proto.
//
// JobSpec: proto3 cannot tell an unset scalar from its zero, so empty/zero proto fields take
// the core defaults (source_format "torch", max_shard_size 5 GiB, quantization "none",
// workers_expected 1, transport "auto"); a spec submitted twice in the same form converts to
// the same core spec, so SubmitJob stays idempotent. Times are RFC 3339 strings (UTC).
//
// JSON uses protobuf's canonical proto3 mapping with one set of options everywhere (REST
// bodies, NDJSON events, tests): field names as in the .proto, primitive fields always printed.
// Parsing ignores unknown fields; a malformed document is InvalidArgument naming the error.
// Stateless; thread-safe.
#ifndef MXPORT_COORDINATOR_RPC_PROTO_CONVERT_H_
#define MXPORT_COORDINATOR_RPC_PROTO_CONVERT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "coordinator/core/coordinator.h"
#include "coordinator/core/job_driver.h"
#include "coordinator/core/types.h"
#include "google/protobuf/message.h"
#include "grpcpp/support/status.h"
#include "mxport/v1/export.pb.h"
#include "mxport/v1/worker.pb.h"

namespace mxport::coordinator::rpc {

// --- job API ---
JobSpec JobSpecFromProto(const v1::JobSpec& proto);
v1::JobSpec JobSpecToProto(const JobSpec& spec);
v1::JobPhase JobPhaseToProto(JobPhase phase);
v1::WorkerState WorkerStateToProto(WorkerState state);
// `now` gives each worker's heartbeat age.
v1::Job JobViewToProto(const JobView& view, absl::Time now);
v1::Event EventToProto(const Event& event);
// "job/<id>/<resource>" -> "<resource>" (lease names as the worker asked for them).
std::string ShortLeaseResource(const std::string& job_id, const std::string& resource);

// --- worker API ---
v1::LeaseResponse LeaseToProto(const std::string& job_id, const Lease& lease);
CommitRequest CommitRequestFromProto(const v1::CommitFileRequest& proto);

// Orders to workers and the manifests they report.
v1::CoordinatorMessage OrderToProto(const Order& order);
megatron::RankManifest ManifestFromProto(const v1::ManifestReport& proto);

// --- status ---
// absl and gRPC codes are the same numbers; messages are kept as they are.
grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

// --- JSON ---
// One line, proto field names, primitive fields always printed.
absl::StatusOr<std::string> MessageToJson(const google::protobuf::Message& message);
// Ignores unknown fields; InvalidArgument "<context>: <parser error>" otherwise.
absl::Status JsonToMessage(absl::string_view json, google::protobuf::Message* message,
                           absl::string_view context = "request body");

}  // namespace mxport::coordinator::rpc

#endif  // MXPORT_COORDINATOR_RPC_PROTO_CONVERT_H_
