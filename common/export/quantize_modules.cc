// The module structure of a plan for quantization (quantize_modules.h): linear-like modules,
// fused-sibling groups and statistics groups, and the relayout of a quantized plan.
#include "common/export/quantize_modules.h"

#include <algorithm>
#include <functional>
#include <map>
#include <tuple>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace mxport::exporter::quant_internal {
namespace {

const LinearRole kLinearRoles[] = {
    {Role::kQkvWeight, true},  {Role::kAttnOut, true},    {Role::kDenseFc1, true},
    {Role::kDenseFc2, true},   {Role::kExpertFc1, true},  {Role::kExpertFc2, true},
    {Role::kSharedFc1, true},  {Role::kSharedFc2, true},  {Role::kEmbedding, false},
    {Role::kOutput, false},    {Role::kRouter, false},    {Role::kSharedGate, false},
};

// Fused siblings: HF weights that a loader fuses into one module (QKVParallelLinear,
// MergedColumnParallelLinear) share one global scale. Same key = same group.
struct FusedSuffix {
  absl::string_view suffix;
  absl::string_view key;
};

const FusedSuffix kFusedSuffixes[] = {
    {".self_attn.q_proj.weight", ".self_attn.qkv"},
    {".self_attn.k_proj.weight", ".self_attn.qkv"},
    {".self_attn.v_proj.weight", ".self_attn.qkv"},
    {".gate_proj.weight", ".gate_up_proj"},
    {".up_proj.weight", ".gate_up_proj"},
    {".w1.weight", ".w13"},
    {".w3.weight", ".w13"},
};

constexpr absl::string_view kWeightSuffix = ".weight";

}  // namespace

const LinearRole* FindLinearRole(Role role) {
  for (const LinearRole& r : kLinearRoles) {
    if (r.role == role) return &r;
  }
  return nullptr;
}

std::string FusionKey(absl::string_view name) {
  for (const FusedSuffix& f : kFusedSuffixes) {
    if (absl::EndsWith(name, f.suffix)) {
      return absl::StrCat(name.substr(0, name.size() - f.suffix.size()), f.key);
    }
  }
  return std::string(name);
}

std::string ModuleOf(const HfTensor& t) {
  if (FindLinearRole(t.role) == nullptr || !absl::EndsWith(t.name, kWeightSuffix)) return "";
  if (t.quant_part != QuantPart::kNone && t.quant_part != QuantPart::kWeight) return "";
  return t.name.substr(0, t.name.size() - kWeightSuffix.size());
}

void Relayout(ExportPlan& plan, uint64_t max_shard_size) {
  const size_t n = plan.tensors.size();
  std::vector<std::string> unit(n);
  for (size_t i = 0; i < n; ++i) {
    const HfTensor& t = plan.tensors[i];
    unit[i] = t.quant_part == QuantPart::kNone ? t.name : plan.tensors[t.quant_weight].name;
  }
  auto key = [&](size_t i) {
    const HfTensor& t = plan.tensors[i];
    const int group = t.role == Role::kEmbedding ? 0 : t.layer >= 0 ? 1 : 2;
    return std::make_tuple(group, t.layer >= 0 ? t.layer : 0, std::cref(unit[i]),
                           std::cref(t.name));
  };
  std::vector<int> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = static_cast<int>(i);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return key(a) < key(b); });
  std::vector<int> position(n);
  for (size_t i = 0; i < n; ++i) position[order[i]] = static_cast<int>(i);

  std::vector<HfTensor> tensors;
  tensors.reserve(n);
  for (int old : order) tensors.push_back(std::move(plan.tensors[old]));
  for (HfTensor& t : tensors) {
    if (t.quant_weight >= 0) t.quant_weight = position[t.quant_weight];
  }
  std::vector<OutputFile> files;
  plan.total_bytes = 0;
  for (size_t i = 0; i < n;) {
    size_t end = i + 1;
    uint64_t unit_bytes = tensors[i].bytes;
    while (end < n && unit[order[end]] == unit[order[i]]) unit_bytes += tensors[end++].bytes;
    if (files.empty() ||
        (files.back().data_bytes > 0 && files.back().data_bytes + unit_bytes > max_shard_size)) {
      files.emplace_back();
    }
    for (; i < end; ++i) {
      HfTensor& t = tensors[i];
      t.file = static_cast<int>(files.size() - 1);
      t.offset = files.back().data_bytes;
      files.back().tensors.push_back(static_cast<int>(i));
      files.back().data_bytes += t.bytes;
      plan.total_bytes += t.bytes;
    }
  }
  for (size_t f = 0; f < files.size(); ++f) {
    files[f].name = ShardFileName(static_cast<int>(f), static_cast<int>(files.size()));
  }
  plan.tensors = std::move(tensors);
  plan.files = std::move(files);
  for (Piece& p : plan.pieces) p.tensor = position[p.tensor];
  std::sort(plan.pieces.begin(), plan.pieces.end(), [](const Piece& a, const Piece& b) {
    return std::tie(a.tensor, a.dst_row, a.dst_col) < std::tie(b.tensor, b.dst_row, b.dst_col);
  });
}

void AssignStatGroups(ExportPlan& plan) {
  std::map<std::pair<std::string, int>, int> first;
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    HfTensor& t = plan.tensors[i];
    if (t.quant_part != QuantPart::kWeight) continue;
    auto [it, inserted] = first.try_emplace({FusionKey(t.name), static_cast<int>(t.quant)},
                                            static_cast<int>(i));
    t.stat_group = it->second;
  }
}

}  // namespace mxport::exporter::quant_internal
