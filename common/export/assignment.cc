#include "common/export/assignment.h"

namespace mxport::exporter {

std::vector<ShardAssignment> AssignShards(int64_t worker, int64_t num_workers,
                                          int64_t num_shards) {
  std::vector<ShardAssignment> out;
  if (worker < 0 || worker >= num_workers || num_shards <= 0) return out;
  if (num_workers >= num_shards) {
    const int64_t shard = worker % num_shards;
    // Workers shard, shard + S, shard + 2S, ... share it.
    const int64_t replicas = (num_workers - shard + num_shards - 1) / num_shards;
    out.push_back({shard, worker / num_shards, replicas});
  } else {
    for (int64_t s = worker; s < num_shards; s += num_workers) out.push_back({s, 0, 1});
  }
  return out;
}

}  // namespace mxport::exporter
