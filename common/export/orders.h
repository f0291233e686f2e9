// Orders: what the coordinator tells a worker to do next (assign source files, run a plan,
// publish the sidecars, abort a generation, finish). Plain values shared by the coordinator's
// job driver, which produces them, and the worker agent, which follows them; the rpc layers
// carry them as mxport.v1.CoordinatorMessage.
#ifndef MXPORT_COMMON_EXPORT_ORDERS_H_
#define MXPORT_COMMON_EXPORT_ORDERS_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace mxport::exporter {

struct ShardOrder {
  std::string path;
  int64_t tp = 0, pp = 0, ep = 0;
  int64_t replica = 0, replicas = 1;
};

struct Order {
  enum class Kind { kAssign, kPlan, kFinalize, kAbort, kFinish };
  Kind kind = Kind::kAssign;
  int64_t generation = 0;
  // kAssign
  std::vector<ShardOrder> shards;
  int64_t rank = 0;
  int64_t world_size = 0;
  std::vector<std::string> peer_addresses;
  std::string transport = "tcp";  // "tcp" or "nccl": the same for every rank
  // kPlan
  std::string plan;  // EncodePlan form
  std::vector<std::string> committed;
  bool sidecar_writer = false;
  std::string output_dir;
  // kFinalize: the files the sidecar writer publishes before the index (config.json first).
  std::vector<std::pair<std::string, std::string>> sidecars;
  // kAbort / kFinish
  std::string reason;
};

}  // namespace mxport::exporter

#endif  // MXPORT_COMMON_EXPORT_ORDERS_H_
