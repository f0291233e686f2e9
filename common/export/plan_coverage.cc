// The planner's validation (plan_internal.h): every expected tensor fully covered by
// non-overlapping pieces inside it, and for a missing one the Megatron key, stage and rank
// directory that should have held it.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "common/export/plan_internal.h"

namespace mxport::exporter::plan_internal {

void Planner::CheckCoverage() {
  std::vector<std::vector<const Piece*>> by_tensor(expected_.size());
  for (const Piece& p : plan_.pieces) by_tensor[p.tensor].push_back(&p);
  for (size_t t = 0; t < expected_.size(); ++t) {
    const ExpectedTensor& e = expected_[t];
    const int64_t rows = e.shape.empty() ? 1 : e.shape[0], cols = Cols(e.shape);
    int64_t area = 0;
    const auto& pieces = by_tensor[t];
    for (size_t i = 0; i < pieces.size(); ++i) {
      const Piece& a = *pieces[i];
      area += a.rows * a.cols;
      if (a.dst_row + a.rows > rows || a.dst_col + a.cols > cols) {
        Problem(absl::StrCat(e.name, ": a piece from ", files_[a.source].dir_name,
                             " lies outside the tensor"));
      }
      for (size_t j = 0; j < i; ++j) {
        const Piece& b = *pieces[j];
        if (a.dst_row < b.dst_row + b.rows && b.dst_row < a.dst_row + a.rows &&
            a.dst_col < b.dst_col + b.cols && b.dst_col < a.dst_col + a.cols) {
          Problem(absl::StrCat(e.name, ": pieces from ", files_[a.source].dir_name, " '",
                               a.key, "' and ", files_[b.source].dir_name, " '", b.key,
                               "' overlap"));
        }
      }
    }
    if (area < rows * cols) Problem(MissingMessage(t, area, rows * cols));
  }
}

std::string Planner::MissingMessage(size_t t, int64_t have, int64_t want) {
  const ExpectedTensor& e = expected_[t];
  std::string msg = absl::StrCat(e.name, ": missing (", have, " of ", want, " elements found)");
  // Which source should have held it.
  const MegatronRule* rule = nullptr;
  for (const MegatronRule& r : MegatronRules()) {
    if (r.role != e.role) continue;
    const bool sequential = absl::StrContains(r.pattern, "local_experts");
    if ((e.role == Role::kExpertFc1 || e.role == Role::kExpertFc2) &&
        sequential == c_.moe_grouped_gemm) {
      continue;
    }
    const bool dense_norm = absl::StrContains(r.pattern, "linear_fc1.layer_norm");
    if (e.role == Role::kPostAttnNorm && e.layer && dense_norm == c_.IsMoeLayer(e.layer->value())) {
      continue;
    }
    if (e.role == Role::kInputNorm && absl::StrContains(r.pattern, "input_layernorm")) continue;
    rule = &r;
    break;
  }
  if (rule == nullptr) return msg;
  int64_t pp = 0, vp = 0, local_layer = -1, ep = -1, local_expert = -1;
  if (e.layer.has_value()) {
    auto loc = layers_->ToLocal(*e.layer);
    if (!loc.ok()) return msg;
    pp = loc->pp.value();
    vp = loc->vp.value();
    local_layer = loc->local.value();
  } else if (e.role == Role::kFinalNorm || e.role == Role::kOutput) {
    pp = c_.pp - 1;
    vp = c_.vpp - 1;
  }
  if (e.expert.has_value()) {
    auto owner = experts_->Owner(*e.expert);
    if (owner.ok()) {
      ep = owner->first.value();
      local_expert = owner->second.value();
    }
  }
  std::string key(rule->pattern);
  key = absl::StrReplaceAll(key, {{"{L}", absl::StrCat(local_layer)},
                                  {"{E}", absl::StrCat(local_expert)}});
  const int64_t degree = Degree(rule->split);
  std::vector<std::string> shards;
  for (int64_t s = 0; s < degree; ++s) {
    if (!contributors_[t].contains(s)) shards.push_back(absl::StrCat(s));
  }
  absl::StrAppend(&msg, "; expected key '", key, "'",
                  c_.vpp > 1 ? absl::StrCat(" in model", vp) : "",
                  " in the rank files with pp=", pp, ep >= 0 ? absl::StrCat(" ep=", ep) : "",
                  degree > 1 ? absl::StrCat(" tp=", absl::StrJoin(shards, ",")) : " (any tp)");
  if (degree > 1 && !shards.empty()) {
    const int64_t tp = std::stoll(shards[0]);
    absl::StrAppend(&msg, ", e.g. ", RankDirName(c_, tp, pp, std::max<int64_t>(ep, 0)));
  }
  return msg;
}

}  // namespace mxport::exporter::plan_internal
