// BuildPlan: the planner's run (plan_internal.h), the rank-file set and layer-map checks, and the
// layout of the HF tensors into files; HfTensor and the file-name helpers of plan.h.
#include "common/export/plan.h"

#include <algorithm>
#include <optional>
#include <set>
#include <tuple>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/base/status_macros.h"
#include "common/export/expected_tensors.h"
#include "common/export/plan_internal.h"

namespace mxport::exporter {
namespace plan_internal {

using megatron::ExpertMap;
using megatron::LayerMap;
using megatron::ManifestEntry;
using megatron::ModelConfig;
using megatron::RankFile;

int64_t Cols(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (size_t i = 1; i < shape.size(); ++i) n *= shape[i];
  return n;
}

std::string RankDirName(const ModelConfig& c, int64_t tp, int64_t pp, int64_t ep) {
  std::string name = tp < 0 ? "mp_rank_??" : absl::StrFormat("mp_rank_%02d", tp);
  if (c.pp > 1) absl::StrAppendFormat(&name, "_%03d", pp);
  if (c.ep > 1) absl::StrAppendFormat(&name, "_%03d", ep);
  return name;
}

absl::StatusOr<ExportPlan> Planner::Run() {
  plan_.config = c_;
  plan_.arch = &arch_;
  if (files_.size() != manifests_.size() || files_.empty()) {
    return absl::InvalidArgumentError("plan needs one manifest per rank file");
  }
  RETURN_IF_ERROR(CheckFileSet());
  if (c_.is_moe()) {
    if (options_.expert_map.empty()) {
      ASSIGN_OR_RETURN(ExpertMap map, ExpertMap::Contiguous(c_.num_experts, c_.ep));
      experts_ = std::move(map);
    } else {
      ASSIGN_OR_RETURN(ExpertMap map, ExpertMap::FromExplicit(options_.expert_map,
                                                              c_.num_experts));
      if (map.ep_size() != c_.ep) {
        return absl::InvalidArgumentError(absl::StrCat(
            "the expert map lists ", map.ep_size(), " EP ranks, the checkpoint has ", c_.ep));
      }
      experts_ = std::move(map);
    }
  }
  RETURN_IF_ERROR(BuildLayerMap());
  const int64_t vocab = options_.hf_vocab_size > 0 ? options_.hf_vocab_size
                        : c_.vocab_size > 0         ? c_.vocab_size
                                                    : c_.padded_vocab_size;
  if (vocab > c_.padded_vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat("vocabulary of ", vocab,
                                                   " exceeds the checkpoint's padded ",
                                                   c_.padded_vocab_size));
  }
  ASSIGN_OR_RETURN(std::vector<ExpectedTensor> expected, ExpectedTensors(c_, arch_, vocab));
  for (const ExpectedTensor& e : expected) {
    index_[{static_cast<int>(e.role), e.output, e.layer ? e.layer->value() : -1,
            e.expert ? e.expert->value() : -1}] = static_cast<int>(expected_.size());
    expected_.push_back(e);
  }
  dtypes_.assign(expected_.size(), std::nullopt);
  contributors_.assign(expected_.size(), {});
  for (size_t i = 0; i < files_.size(); ++i) {
    plan_.sources.push_back(
        {files_[i].path, files_[i].dir_name, files_[i].tp, files_[i].pp, files_[i].ep});
    for (const ManifestEntry& entry : manifests_[i].entries) AddEntry(static_cast<int>(i), entry);
  }
  CheckCoverage();
  if (!problems_.empty()) {
    std::string message = absl::StrCat("the checkpoint cannot be exported completely (",
                                       problem_count_, " problems):\n  ",
                                       absl::StrJoin(problems_, "\n  "));
    if (problem_count_ > static_cast<int>(problems_.size())) {
      absl::StrAppend(&message, "\n  ... and ", problem_count_ - problems_.size(), " more");
    }
    return absl::FailedPreconditionError(message);
  }
  Layout();
  return std::move(plan_);
}

void Planner::Problem(std::string text) {
  ++problem_count_;
  if (static_cast<int>(problems_.size()) < options_.max_problems) {
    problems_.push_back(std::move(text));
  }
}

absl::Status Planner::CheckFileSet() {
  std::set<std::tuple<int64_t, int64_t, int64_t>> have;
  for (const RankFile& f : files_) have.insert({f.pp.value(), f.tp.value(), f.ep.value()});
  auto any = [&](int64_t pp, int64_t tp, int64_t ep) {
    for (const auto& [p, t, e] : have) {
      if (p == pp && (tp < 0 || t == tp) && (ep < 0 || e == ep)) return true;
    }
    return false;
  };
  std::vector<std::string> missing;
  for (int64_t pp = 0; pp < c_.pp; ++pp) {
    for (int64_t tp = 0; tp < c_.tp; ++tp) {
      if (!any(pp, tp, -1)) {
        missing.push_back(absl::StrCat(RankDirName(c_, tp, pp, 0),
                                       c_.ep > 1 ? " (any ep)" : "", " for tp=", tp,
                                       " pp=", pp));
      }
    }
    for (int64_t ep = 0; c_.is_moe() && ep < c_.ep; ++ep) {
      for (int64_t tp = 0; tp < (c_.etp > 1 ? c_.tp : 1); ++tp) {
        if (!any(pp, c_.etp > 1 ? tp : -1, ep)) {
          missing.push_back(absl::StrCat(RankDirName(c_, c_.etp > 1 ? tp : -1, pp, ep),
                                         " for the experts of ep=",
                                         ep, " pp=", pp));
        }
      }
    }
  }
  if (!missing.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "rank directories are missing: ", absl::StrJoin(missing, "; ")));
  }
  return absl::OkStatus();
}

absl::Status Planner::BuildLayerMap() {
  std::vector<int64_t> found(c_.vpp * c_.pp, 0);
  for (size_t i = 0; i < files_.size(); ++i) {
    for (const ManifestEntry& e : manifests_[i].entries) {
      std::optional<MatchedKey> m = MatchMegatronKey(e.key);
      if (!m.has_value() || !m->layer.has_value()) continue;
      int64_t& n = found[e.vp.value() * c_.pp + files_[i].pp.value()];
      n = std::max(n, m->layer->value() + 1);
    }
  }
  ASSIGN_OR_RETURN(LayerMap map, LayerMap::Create(c_, found));
  layers_ = std::move(map);
  return absl::OkStatus();
}

void Planner::Layout() {
  std::vector<int> order(expected_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  auto group = [&](const ExpectedTensor& e) {
    return e.role == Role::kEmbedding ? 0 : e.layer.has_value() ? 1 : 2;
  };
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    const ExpectedTensor& x = expected_[a];
    const ExpectedTensor& y = expected_[b];
    return std::make_tuple(group(x), x.layer ? x.layer->value() : 0, x.name) <
           std::make_tuple(group(y), y.layer ? y.layer->value() : 0, y.name);
  });
  std::vector<int> position(expected_.size());
  for (size_t i = 0; i < order.size(); ++i) {
    const ExpectedTensor& e = expected_[order[i]];
    HfTensor t;
    t.name = e.name;
    t.dtype = dtypes_[order[i]].value_or(c_.params_dtype);
    t.shape = e.shape;
    t.role = e.role;
    t.layer = e.layer ? e.layer->value() : -1;
    t.bytes = static_cast<uint64_t>(t.rows() * t.cols()) * ElementBytes(t.dtype);
    position[order[i]] = static_cast<int>(i);
    plan_.tensors.push_back(std::move(t));
  }
  // Pack into files of at most max_shard_size data bytes (a larger tensor gets its own file).
  std::vector<OutputFile> files;
  for (size_t i = 0; i < plan_.tensors.size(); ++i) {
    HfTensor& t = plan_.tensors[i];
    if (files.empty() || (files.back().data_bytes > 0 &&
                          files.back().data_bytes + t.bytes > options_.max_shard_size)) {
      files.emplace_back();
    }
    t.file = static_cast<int>(files.size() - 1);
    t.offset = files.back().data_bytes;
    files.back().tensors.push_back(static_cast<int>(i));
    files.back().data_bytes += t.bytes;
    plan_.total_bytes += t.bytes;
  }
  for (size_t f = 0; f < files.size(); ++f) {
    files[f].name = ShardFileName(static_cast<int>(f), static_cast<int>(files.size()));
  }
  plan_.files = std::move(files);
  for (Piece& p : plan_.pieces) p.tensor = position[p.tensor];
  std::sort(plan_.pieces.begin(), plan_.pieces.end(), [](const Piece& a, const Piece& b) {
    return std::tie(a.tensor, a.dst_row, a.dst_col) < std::tie(b.tensor, b.dst_row, b.dst_col);
  });
}

}  // namespace plan_internal

int64_t HfTensor::cols() const { return plan_internal::Cols(shape); }

absl::string_view QuantPartName(QuantPart part) {
  static constexpr absl::string_view kNames[] = {"none", "weight", "block_scales",
                                                 "weight_scale_2", "scale_inv"};
  return kNames[static_cast<size_t>(part)];
}

std::string ShardFileName(int i, int n) {
  if (n == 1) return "model.safetensors";
  return absl::StrFormat("model-%05d-of-%05d.safetensors", i + 1, n);
}

absl::StatusOr<ExportPlan> BuildPlan(const megatron::ModelConfig& config, const ArchRules& arch,
                                     const std::vector<megatron::RankFile>& files,
                                     const std::vector<megatron::RankManifest>& manifests,
                                     const PlanOptions& options) {
  plan_internal::Planner planner(config, arch, files, manifests, options);
  return planner.Run();
}

}  // namespace mxport::exporter
