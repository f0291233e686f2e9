#include "common/export/plan.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "common/base/status_macros.h"
#include "common/base/tensor.h"
#include "common/export/expected_tensors.h"
#include "common/export/quantizer_keys.h"
#include "common/megatron/layer_map.h"
#include "common/quant/quant.h"

namespace mxport::exporter {
namespace {

using megatron::EpRank;
using megatron::ExpertMap;
using megatron::GlobalExpert;
using megatron::GlobalLayer;
using megatron::LayerMap;
using megatron::LocalExpert;
using megatron::ManifestEntry;
using megatron::ModelConfig;
using megatron::PpRank;
using megatron::RankFile;
using megatron::RankManifest;
using megatron::TpRank;
using megatron::VpRank;

using TensorKey = std::tuple<int, int, int64_t, int64_t>;  // role, output, layer, expert
using RegionKey = std::tuple<int, int64_t, int64_t, int64_t, int64_t>;

int64_t Cols(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (size_t i = 1; i < shape.size(); ++i) n *= shape[i];
  return n;
}

bool IsExpertSplit(Split s) { return s == Split::kExpertColumn || s == Split::kExpertRow; }

// The rank directory holding (tp, pp, ep); tp < 0 gives the pattern for any tp.
std::string RankDirName(const ModelConfig& c, int64_t tp, int64_t pp, int64_t ep) {
  std::string name = tp < 0 ? "mp_rank_??" : absl::StrFormat("mp_rank_%02d", tp);
  if (c.pp > 1) absl::StrAppendFormat(&name, "_%03d", pp);
  if (c.ep > 1) absl::StrAppendFormat(&name, "_%03d", ep);
  return name;
}

struct RegionClaim {
  int piece;
  int64_t identity_pp, identity_vp, identity_shard;
};

class Planner {
 public:
  Planner(const ModelConfig& config, const ArchRules& arch, const std::vector<RankFile>& files,
          const std::vector<RankManifest>& manifests, const PlanOptions& options)
      : c_(config), arch_(arch), files_(files), manifests_(manifests), options_(options) {}

  absl::StatusOr<ExportPlan> Run() {
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

 private:
  void Problem(std::string text) {
    ++problem_count_;
    if (static_cast<int>(problems_.size()) < options_.max_problems) {
      problems_.push_back(std::move(text));
    }
  }

  // Every (pp, tp) needs a file for the dense weights, every (pp, ep[, etp]) for the experts.
  absl::Status CheckFileSet() {
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

  absl::Status BuildLayerMap() {
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

  int64_t Degree(Split s) const {
    switch (s) {
      case Split::kReplicated: return 1;
      case Split::kExpertColumn:
      case Split::kExpertRow: return c_.etp;
      default: return c_.tp;
    }
  }
  int64_t ShardOf(Split s, const RankFile& f) const {
    if (s == Split::kReplicated) return 0;
    if (IsExpertSplit(s)) return c_.etp == 1 ? 0 : f.tp.value();
    return f.tp.value();
  }

  // The expected tensors `key` (a weight key of `source`, stage `vp`) maps to, with its rule;
  // an empty vector when it is skipped (a tied output layer) or on a Problem.
  std::vector<int> Targets(int source, absl::string_view key, VpRank vp, const std::string& where,
                           const MegatronRule** rule_out) {
    const RankFile& file = files_[source];
    std::optional<MatchedKey> m = MatchMegatronKey(key);
    if (!m.has_value()) {
      Problem(absl::StrCat(where, " matches no export rule"));
      return {};
    }
    const MegatronRule& rule = *m->rule;
    *rule_out = &rule;
    if (rule.role == Role::kOutput && !c_.untied_embeddings) return {};  // tied: a replica
    std::optional<GlobalLayer> layer;
    if (m->layer.has_value()) {
      auto g = layers_->ToGlobal(vp, file.pp, *m->layer);
      if (!g.ok()) {
        Problem(absl::StrCat(where, ": ", g.status().message()));
        return {};
      }
      layer = *g;
    }
    std::optional<GlobalExpert> expert;
    if (m->expert.has_value()) {
      if (!experts_.has_value()) {
        Problem(absl::StrCat(where, " is an expert weight, but the args describe a dense model"));
        return {};
      }
      auto g = experts_->ToGlobal(file.ep, *m->expert);
      if (!g.ok()) {
        Problem(absl::StrCat(where, ": ", g.status().message()));
        return {};
      }
      expert = *g;
    }
    const size_t outputs = rule.transform == Transform::kQkv      ? 3
                           : rule.transform == Transform::kSwiGlu ? 2
                                                                  : 1;
    std::vector<int> targets;
    for (size_t o = 0; o < outputs; ++o) {
      auto it = index_.find(TensorKey{static_cast<int>(rule.role), static_cast<int>(o),
                                      layer ? layer->value() : -1,
                                      expert ? expert->value() : -1});
      if (it == index_.end()) {
        Problem(absl::StrCat(where, " has no counterpart in ", arch_.architecture,
                             " for this config (unexpected tensor)"));
        return {};
      }
      targets.push_back(it->second);
    }
    return targets;
  }

  // A ModelOpt quantizer key (plan.h): recorded as an AmaxSource, skipped, or a Problem.
  void AddQuantizerEntry(int source, const ManifestEntry& entry, const ParsedQuantizerKey& q,
                         const std::string& where) {
    if (q.kind != QuantizerKind::kWeight && q.kind != QuantizerKind::kInput) return;
    if (q.state != QuantizerState::kAmax || q.level.has_value()) {
      Problem(absl::StrCat(where, ": this quantizer state is not supported (only per-tensor "
                           "weight and input amax are read)"));
      return;
    }
    int64_t numel = 1;
    for (int64_t d : entry.desc.shape) numel *= d;
    if (!quant::IsQuantizableSource(entry.desc.dtype)) {
      Problem(absl::StrCat(where, " is ", DTypeName(entry.desc.dtype),
                           "; amax is read as float32, bfloat16 or float16"));
      return;
    }
    if (numel != 1) {
      Problem(absl::StrCat(where, " has ", numel, " elements; only per-tensor amax is supported"));
      return;
    }
    // The weight keys this quantizer calibrates: a grouped linear's weight{i}, all local
    // experts for one shared by them, else <module>.weight.
    const bool grouped = absl::EndsWith(q.module, ".experts.linear_fc1") ||
                         absl::EndsWith(q.module, ".experts.linear_fc2");
    std::vector<std::string> weight_keys;
    if (grouped && q.expert.has_value()) {
      weight_keys.push_back(absl::StrCat(q.module, ".weight", *q.expert));
    } else if (grouped && experts_.has_value()) {
      const size_t n = experts_->LocalExperts(files_[source].ep).size();
      for (size_t i = 0; i < n; ++i) weight_keys.push_back(absl::StrCat(q.module, ".weight", i));
    } else {
      weight_keys.push_back(absl::StrCat(q.module, ".weight"));
    }
    for (const std::string& key : weight_keys) {
      const MegatronRule* rule = nullptr;
      std::vector<int> targets = Targets(source, key, entry.vp, where, &rule);
      if (targets.empty()) return;  // a Problem, or a tied output layer (not exported)
      AmaxSource a;
      a.input = q.kind == QuantizerKind::kInput;
      for (int t : targets) a.weights.push_back(expected_[t].name);
      a.source = source;
      a.vp = entry.vp.value();
      a.key = entry.key;
      a.dtype = entry.desc.dtype;
      plan_.amax_sources.push_back(std::move(a));
    }
  }

  void AddEntry(int source, const ManifestEntry& entry) {
    const RankFile& file = files_[source];
    const std::string where = absl::StrCat(file.dir_name, ": '", entry.key, "'");
    auto parsed = ParseQuantizerKey(entry.key);
    if (!parsed.ok()) {
      Problem(absl::StrCat(where, ": ", parsed.status().message()));
      return;
    }
    if (parsed->has_value()) {
      AddQuantizerEntry(source, entry, **parsed, where);
      return;
    }
    const MegatronRule* rule_ptr = nullptr;
    const std::vector<int> targets = Targets(source, entry.key, entry.vp, where, &rule_ptr);
    if (targets.empty()) return;
    const MegatronRule& rule = *rule_ptr;
    const int64_t degree = Degree(rule.split);
    const int64_t shard = ShardOf(rule.split, file);
    const std::vector<int64_t>& src_shape = entry.desc.shape;
    const int64_t src_rows = src_shape.empty() ? 1 : src_shape[0];
    const int64_t src_cols = Cols(src_shape);
    // The source shape this rank must hold.
    std::vector<int64_t> want = expected_[targets[0]].shape;
    int64_t global_rows = 0;
    for (int t : targets) global_rows += expected_[t].rows();
    if (rule.split == Split::kVocabRows) global_rows = c_.padded_vocab_size;
    if (rule.split == Split::kRow || rule.split == Split::kExpertRow) {
      want[1] /= degree;
    } else if (!want.empty()) {
      want[0] = global_rows / degree;
    }
    if (src_shape != want) {
      Problem(absl::StrCat(where, " has shape ", ShapeToString(src_shape), ", expected ",
                           ShapeToString(want)));
      return;
    }
    auto add = [&](int out, int64_t src_row, int64_t src_col, int64_t rows, int64_t cols,
                   int64_t dst_row, int64_t dst_col) {
      if (rows <= 0 || cols <= 0) return;
      Piece p;
      p.tensor = targets[out];
      p.source = source;
      p.vp = entry.vp.value();
      p.key = entry.key;
      p.src_rows = src_rows;
      p.src_cols = src_cols;
      p.src_row = src_row;
      p.src_col = src_col;
      p.rows = rows;
      p.cols = cols;
      p.dst_row = dst_row;
      p.dst_col = dst_col;
      Claim(p, file, entry, shard, where);
    };
    switch (rule.transform) {
      case Transform::kNone:
        if (rule.split == Split::kRow || rule.split == Split::kExpertRow) {
          add(0, 0, 0, src_rows, src_cols, 0, shard * src_cols);
        } else if (rule.split == Split::kVocabRows) {
          const int64_t keep = expected_[targets[0]].rows();
          const int64_t begin = shard * src_rows;
          add(0, 0, 0, std::min(src_rows, keep - begin), src_cols, begin, 0);
        } else {
          add(0, 0, 0, src_rows, src_cols, shard * src_rows, 0);
        }
        break;
      case Transform::kSwiGlu: {
        const int64_t half = src_rows / 2;
        add(0, 0, 0, half, src_cols, shard * half, 0);
        add(1, half, 0, half, src_cols, shard * half, 0);
        break;
      }
      case Transform::kQkv: {
        // Global grouped rows: per query group [q x p, k, v] x head_dim; this rank holds
        // [shard * src_rows, (shard + 1) * src_rows).
        const int64_t d = c_.kv_channels, p = c_.heads_per_group();
        const int64_t lo = shard * src_rows, hi = lo + src_rows;
        for (int64_t g = 0; g < c_.num_query_groups; ++g) {
          const int64_t base = g * (p + 2) * d;
          const int64_t seg_start[3] = {base, base + p * d, base + (p + 1) * d};
          const int64_t seg_len[3] = {p * d, d, d};
          const int64_t dst_start[3] = {g * p * d, g * d, g * d};
          for (int o = 0; o < 3; ++o) {
            const int64_t a = std::max(lo, seg_start[o]);
            const int64_t b = std::min(hi, seg_start[o] + seg_len[o]);
            add(o, a - lo, 0, b - a, src_cols, dst_start[o] + (a - seg_start[o]), 0);
          }
        }
        break;
      }
    }
  }

  void Claim(const Piece& p, const RankFile& file, const ManifestEntry& entry, int64_t shard,
             const std::string& where) {
    std::optional<DType>& dtype = dtypes_[p.tensor];
    if (dtype.has_value() && *dtype != entry.desc.dtype) {
      Problem(absl::StrCat(where, " is ", DTypeName(entry.desc.dtype), " but other pieces of ",
                           expected_[p.tensor].name, " are ", DTypeName(*dtype)));
      return;
    }
    dtype = entry.desc.dtype;
    const RegionKey region{p.tensor, p.dst_row, p.dst_col, p.rows, p.cols};
    auto [it, inserted] = claims_.try_emplace(
        region, RegionClaim{static_cast<int>(plan_.pieces.size()),
                                          file.pp.value(), entry.vp.value(), shard});
    if (!inserted) {
      const RegionClaim& first = it->second;
      if (first.identity_pp != file.pp.value() || first.identity_vp != entry.vp.value() ||
          first.identity_shard != shard) {
        const Piece& other = plan_.pieces[first.piece];
        Problem(absl::StrCat(expected_[p.tensor].name, " is given twice: by ",
                             files_[other.source].dir_name, " '", other.key, "' and by ", where));
      }
      return;  // a replica of data already planned
    }
    contributors_[p.tensor].insert(shard);
    plan_.pieces.push_back(p);
  }

  void CheckCoverage() {
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

  std::string MissingMessage(size_t t, int64_t have, int64_t want) {
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
    absl::StrAppend(&msg, "; expected key '", key, "'", c_.vpp > 1 ? absl::StrCat(" in model", vp) : "",
                    " in the rank files with pp=", pp, ep >= 0 ? absl::StrCat(" ep=", ep) : "",
                    degree > 1 ? absl::StrCat(" tp=", absl::StrJoin(shards, ",")) : " (any tp)");
    if (degree > 1 && !shards.empty()) {
      const int64_t tp = std::stoll(shards[0]);
      absl::StrAppend(&msg, ", e.g. ", RankDirName(c_, tp, pp, std::max<int64_t>(ep, 0)));
    }
    return msg;
  }

  void Layout() {
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

  const ModelConfig& c_;
  const ArchRules& arch_;
  const std::vector<RankFile>& files_;
  const std::vector<RankManifest>& manifests_;
  const PlanOptions& options_;
  ExportPlan plan_;
  std::optional<ExpertMap> experts_;
  std::optional<LayerMap> layers_;
  std::vector<ExpectedTensor> expected_;
  absl::flat_hash_map<TensorKey, int> index_;
  absl::flat_hash_map<RegionKey, RegionClaim> claims_;
  std::vector<std::optional<DType>> dtypes_;
  std::vector<std::set<int64_t>> contributors_;
  std::vector<std::string> problems_;
  int problem_count_ = 0;
};

}  // namespace

int64_t HfTensor::cols() const { return Cols(shape); }

absl::string_view QuantPartName(QuantPart part) {
  static constexpr absl::string_view kNames[] = {"none", "weight", "block_scales",
                                                 "weight_scale_2", "scale_inv"};
  return kNames[static_cast<size_t>(part)];
}

std::string ShardFileName(int i, int n) {
  if (n == 1) return "model.safetensors";
  return absl::StrFormat("model-%05d-of-%05d.safetensors", i + 1, n);
}

absl::StatusOr<ExportPlan> BuildPlan(const ModelConfig& config, const ArchRules& arch,
                                     const std::vector<RankFile>& files,
                                     const std::vector<RankManifest>& manifests,
                                     const PlanOptions& options) {
  Planner planner(config, arch, files, manifests, options);
  return planner.Run();
}

}  // namespace mxport::exporter
