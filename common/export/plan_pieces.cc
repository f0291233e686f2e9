// How the planner (plan_internal.h) maps one manifest entry: the expected tensors a Megatron key
// fills and the pieces that fill them (TP shards, QKV split, SwiGLU halves, vocabulary rows),
// a region claimed once (replicas skipped, conflicting sources a problem), and ModelOpt
// quantizer amax recorded as amax sources.
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/base/tensor.h"
#include "common/export/plan_internal.h"
#include "common/quant/quant.h"

namespace mxport::exporter::plan_internal {

using megatron::GlobalExpert;
using megatron::GlobalLayer;
using megatron::ManifestEntry;
using megatron::RankFile;
using megatron::VpRank;

int64_t Planner::Degree(Split s) const {
  switch (s) {
    case Split::kReplicated: return 1;
    case Split::kExpertColumn:
    case Split::kExpertRow: return c_.etp;
    default: return c_.tp;
  }
}

int64_t Planner::ShardOf(Split s, const RankFile& f) const {
  if (s == Split::kReplicated) return 0;
  if (IsExpertSplit(s)) return c_.etp == 1 ? 0 : f.tp.value();
  return f.tp.value();
}

std::vector<int> Planner::Targets(int source, absl::string_view key, VpRank vp,
                                  const std::string& where, const MegatronRule** rule_out) {
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

void Planner::AddQuantizerEntry(int source, const ManifestEntry& entry,
                                const ParsedQuantizerKey& q, const std::string& where) {
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

void Planner::AddEntry(int source, const ManifestEntry& entry) {
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

void Planner::Claim(const Piece& p, const RankFile& file, const ManifestEntry& entry,
                    int64_t shard, const std::string& where) {
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

}  // namespace mxport::exporter::plan_internal
