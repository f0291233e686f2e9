// Deterministic assignment of source shards (rank files) to workers, from the worker's stable
// index only: the coordinator hands it out and every worker can recompute it. Stateless.
#ifndef MXPORT_COMMON_EXPORT_ASSIGNMENT_H_
#define MXPORT_COMMON_EXPORT_ASSIGNMENT_H_

#include <cstdint>
#include <vector>

namespace mxport::exporter {

// Which source shards each worker owns: worker w of W over S shards. With W >= S every worker
// takes shard w % S as replica w / S of that shard's replicas (DP replicas split its tensors);
// with W < S worker w takes every shard s with s % W == w. Deterministic in (w, W, S).
struct ShardAssignment {
  int64_t shard = 0;
  int64_t replica = 0;   // which of the shard's replicas this worker is
  int64_t replicas = 1;  // how many workers share the shard
};
std::vector<ShardAssignment> AssignShards(int64_t worker, int64_t num_workers,
                                          int64_t num_shards);

}  // namespace mxport::exporter

#endif  // MXPORT_COMMON_EXPORT_ASSIGNMENT_H_
