// The planner behind BuildPlan (plan.h), shared by plan.cc (the run, the file set, the layer map
// and the layout), plan_pieces.cc (a manifest entry to pieces or amax sources) and
// plan_coverage.cc (coverage and the messages naming what is missing). Not part of the module's
// API. A Planner is used once: Run returns the plan or one FailedPrecondition listing every
// problem. Not thread-safe.
#ifndef MXPORT_COMMON_EXPORT_PLAN_INTERNAL_H_
#define MXPORT_COMMON_EXPORT_PLAN_INTERNAL_H_

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/export/expected_tensors.h"
#include "common/export/naming_rules.h"
#include "common/export/plan.h"
#include "common/export/quantizer_keys.h"
#include "common/megatron/expert_map.h"
#include "common/megatron/layer_map.h"
#include "common/megatron/model_config.h"
#include "common/megatron/source.h"

namespace mxport::exporter::plan_internal {

using TensorKey = std::tuple<int, int, int64_t, int64_t>;  // role, output, layer, expert
using RegionKey = std::tuple<int, int64_t, int64_t, int64_t, int64_t>;

// The product of the dims after the first (1 for a 0- or 1-dim shape).
int64_t Cols(const std::vector<int64_t>& shape);

inline bool IsExpertSplit(Split s) { return s == Split::kExpertColumn || s == Split::kExpertRow; }

// The rank directory holding (tp, pp, ep); tp < 0 gives the pattern for any tp.
std::string RankDirName(const megatron::ModelConfig& c, int64_t tp, int64_t pp, int64_t ep);

struct RegionClaim {
  int piece;
  int64_t identity_pp, identity_vp, identity_shard;
};

class Planner {
 public:
  Planner(const megatron::ModelConfig& config, const ArchRules& arch,
          const std::vector<megatron::RankFile>& files,
          const std::vector<megatron::RankManifest>& manifests, const PlanOptions& options)
      : c_(config), arch_(arch), files_(files), manifests_(manifests), options_(options) {}

  absl::StatusOr<ExportPlan> Run();

 private:
  // plan.cc
  // Records a problem; the first options_.max_problems are kept for the message.
  void Problem(std::string text);
  // Every (pp, tp) needs a file for the dense weights, every (pp, ep[, etp]) for the experts.
  absl::Status CheckFileSet();
  absl::Status BuildLayerMap();

  // plan_pieces.cc
  int64_t Degree(Split s) const;
  int64_t ShardOf(Split s, const megatron::RankFile& f) const;
  // The expected tensors `key` (a weight key of `source`, stage `vp`) maps to, with its rule;
  // an empty vector when it is skipped (a tied output layer) or on a Problem.
  std::vector<int> Targets(int source, absl::string_view key, megatron::VpRank vp,
                           const std::string& where, const MegatronRule** rule_out);
  // A ModelOpt quantizer key (plan.h): recorded as an AmaxSource, skipped, or a Problem.
  void AddQuantizerEntry(int source, const megatron::ManifestEntry& entry,
                         const ParsedQuantizerKey& q, const std::string& where);
  void AddEntry(int source, const megatron::ManifestEntry& entry);
  void Claim(const Piece& p, const megatron::RankFile& file, const megatron::ManifestEntry& entry,
             int64_t shard, const std::string& where);

  // plan_coverage.cc
  void CheckCoverage();
  std::string MissingMessage(size_t t, int64_t have, int64_t want);

  // plan.cc
  void Layout();

  const megatron::ModelConfig& c_;
  const ArchRules& arch_;
  const std::vector<megatron::RankFile>& files_;
  const std::vector<megatron::RankManifest>& manifests_;
  const PlanOptions& options_;
  ExportPlan plan_;
  std::optional<megatron::ExpertMap> experts_;
  std::optional<megatron::LayerMap> layers_;
  std::vector<ExpectedTensor> expected_;
  absl::flat_hash_map<TensorKey, int> index_;
  absl::flat_hash_map<RegionKey, RegionClaim> claims_;
  std::vector<std::optional<DType>> dtypes_;
  std::vector<std::set<int64_t>> contributors_;
  std::vector<std::string> problems_;
  int problem_count_ = 0;
};

}  // namespace mxport::exporter::plan_internal

#endif  // MXPORT_COMMON_EXPORT_PLAN_INTERNAL_H_
