#include "common/export/quantizer_keys.h"

#include <array>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace mxport::exporter {
namespace {

using K = QuantizerKind;
using S = QuantizerState;

constexpr std::array<std::pair<K, absl::string_view>, 6> kKinds = {{
    {K::kWeight, "weight_quantizer"},
    {K::kInput, "input_quantizer"},
    {K::kOutput, "output_quantizer"},
    {K::kQBmm, "q_bmm_quantizer"},
    {K::kKBmm, "k_bmm_quantizer"},
    {K::kVBmm, "v_bmm_quantizer"},
}};

constexpr std::array<std::pair<S, absl::string_view>, 7> kStates = {{
    {S::kAmax, "_amax"},
    {S::kGlobalAmax, "_global_amax"},
    {S::kPreQuantScale, "_pre_quant_scale"},
    {S::kBiasValue, "_bias_value"},
    {S::kScale, "_scale"},
    {S::kDoubleScale, "_double_scale"},
    {S::kScaleZeros, "_scale_zeros"},
}};

constexpr absl::string_view kQkvAmaxK = "self_attention.core_attention.k_bmm_quantizer._amax";
constexpr absl::string_view kQkvAmaxV = "self_attention.core_attention.v_bmm_quantizer._amax";

// Megatron weight key suffix -> quantizer keys. {E} is copied from the weight key.
const std::vector<QuantizerKeyRule>& Rules() {
  static const auto* rules = new std::vector<QuantizerKeyRule>{
      {"self_attention.linear_qkv.weight", "self_attention.linear_qkv.weight_quantizer._amax",
       {"self_attention.linear_qkv.input_quantizer._amax"}, kQkvAmaxK, kQkvAmaxV},
      {"self_attention.linear_proj.weight", "self_attention.linear_proj.weight_quantizer._amax",
       {"self_attention.linear_proj.input_quantizer._amax"}},
      // MLA projections.
      {"self_attention.linear_q_proj.weight",
       "self_attention.linear_q_proj.weight_quantizer._amax",
       {"self_attention.linear_q_proj.input_quantizer._amax"}},
      {"self_attention.linear_q_down_proj.weight",
       "self_attention.linear_q_down_proj.weight_quantizer._amax",
       {"self_attention.linear_q_down_proj.input_quantizer._amax"}},
      {"self_attention.linear_q_up_proj.weight",
       "self_attention.linear_q_up_proj.weight_quantizer._amax",
       {"self_attention.linear_q_up_proj.input_quantizer._amax"}},
      {"self_attention.linear_kv_down_proj.weight",
       "self_attention.linear_kv_down_proj.weight_quantizer._amax",
       {"self_attention.linear_kv_down_proj.input_quantizer._amax"}},
      {"self_attention.linear_kv_up_proj.weight",
       "self_attention.linear_kv_up_proj.weight_quantizer._amax",
       {"self_attention.linear_kv_up_proj.input_quantizer._amax"}},
      // Dense MLP and shared experts.
      {"mlp.linear_fc1.weight", "mlp.linear_fc1.weight_quantizer._amax",
       {"mlp.linear_fc1.input_quantizer._amax"}},
      {"mlp.linear_fc2.weight", "mlp.linear_fc2.weight_quantizer._amax",
       {"mlp.linear_fc2.input_quantizer._amax"}},
      {"mlp.shared_experts.linear_fc1.weight",
       "mlp.shared_experts.linear_fc1.weight_quantizer._amax",
       {"mlp.shared_experts.linear_fc1.input_quantizer._amax"}},
      {"mlp.shared_experts.linear_fc2.weight",
       "mlp.shared_experts.linear_fc2.weight_quantizer._amax",
       {"mlp.shared_experts.linear_fc2.input_quantizer._amax"}},
      // TEGroupedMLP, legacy: one GroupedQuantizer entry per local expert, shared input amax.
      {"mlp.experts.linear_fc1.weight{E}", "mlp.experts.linear_fc1.weight_quantizer.{E}._amax",
       {"mlp.experts.linear_fc1.input_quantizer._amax"}},
      {"mlp.experts.linear_fc2.weight{E}", "mlp.experts.linear_fc2.weight_quantizer.{E}._amax",
       {"mlp.experts.linear_fc2.input_quantizer._amax"}},
      // SequentialMLP, legacy: every local expert is a whole MLP with its own quantizers.
      {"mlp.experts.local_experts.{E}.linear_fc1.weight",
       "mlp.experts.local_experts.{E}.linear_fc1.weight_quantizer._amax",
       {"mlp.experts.local_experts.{E}.linear_fc1.input_quantizer._amax"}},
      {"mlp.experts.local_experts.{E}.linear_fc2.weight",
       "mlp.experts.local_experts.{E}.linear_fc2.weight_quantizer._amax",
       {"mlp.experts.local_experts.{E}.linear_fc2.input_quantizer._amax"}},
      // torch_dist singleton keys (global {E}): SequentialMLP input first, TEGroupedMLP second.
      {"mlp.experts.experts.{E}.linear_fc1.weight",
       "mlp.experts.experts.{E}.linear_fc1.weight_quantizer._amax",
       {"mlp.experts.experts.{E}.linear_fc1.input_quantizer._amax",
        "mlp.experts.experts.linear_fc1.input_quantizer._amax"}},
      {"mlp.experts.experts.{E}.linear_fc2.weight",
       "mlp.experts.experts.{E}.linear_fc2.weight_quantizer._amax",
       {"mlp.experts.experts.{E}.linear_fc2.input_quantizer._amax",
        "mlp.experts.experts.linear_fc2.input_quantizer._amax"}},
      {"output_layer.weight", "output_layer.weight_quantizer._amax",
       {"output_layer.input_quantizer._amax"}, "", "", /*top_level=*/true},
  };
  return *rules;
}

// Matches `key` against `pattern` with at most one {E}; captures its digits.
bool Match(absl::string_view pattern, absl::string_view key, std::string& expert) {
  const size_t brace = pattern.find("{E}");
  if (brace == absl::string_view::npos) return pattern == key;
  if (!absl::ConsumePrefix(&key, pattern.substr(0, brace))) return false;
  size_t digits = 0;
  while (digits < key.size() && absl::ascii_isdigit(key[digits])) ++digits;
  if (digits == 0) return false;
  expert = std::string(key.substr(0, digits));
  return key.substr(digits) == pattern.substr(brace + 3);
}

std::string Render(absl::string_view prefix, absl::string_view tmpl, const std::string& expert) {
  if (tmpl.empty()) return "";
  std::string body = absl::StrReplaceAll(tmpl, {{"{E}", expert}});
  return prefix.empty() ? body : absl::StrCat(prefix, ".", body);
}

bool IsIndex(absl::string_view s, int64_t& value) {
  if (s.empty() || s.size() > 9) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(c)) return false;
  }
  return absl::SimpleAtoi(s, &value);
}

absl::Status Malformed(absl::string_view key, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("quantizer key '", key, "': ", why));
}

// A TEGroupedLinear: "<...>.experts.linear_fc1|2" (legacy) or
// "<...>.experts.experts.linear_fc1|2" (torch_dist shared quantizers).
bool IsGroupedExpertLinear(const std::vector<absl::string_view>& parts) {
  const size_t n = parts.size();
  return n >= 2 && parts[n - 2] == "experts" &&
         (parts[n - 1] == "linear_fc1" || parts[n - 1] == "linear_fc2");
}

}  // namespace

absl::string_view QuantizerAttrName(QuantizerKind kind) {
  return kKinds[static_cast<size_t>(kind)].second;
}

absl::string_view QuantizerStateName(QuantizerState state) {
  return kStates[static_cast<size_t>(state)].second;
}

absl::StatusOr<std::optional<ParsedQuantizerKey>> ParseQuantizerKey(absl::string_view key) {
  const std::vector<absl::string_view> parts = absl::StrSplit(key, '.');
  // The last component that names a quantizer.
  size_t q = parts.size();
  for (size_t i = parts.size(); i-- > 0;) {
    if (absl::EndsWith(parts[i], "_quantizer")) {
      q = i;
      break;
    }
  }
  if (q == parts.size()) return std::nullopt;

  ParsedQuantizerKey out;
  bool known_kind = false;
  for (const auto& [kind, name] : kKinds) {
    if (parts[q] == name) {
      out.kind = kind;
      known_kind = true;
    }
  }
  if (!known_kind) return Malformed(key, absl::StrCat("unknown quantizer '", parts[q], "'"));
  if (q == 0) return Malformed(key, "no module before the quantizer");
  if (q + 1 >= parts.size()) return Malformed(key, "no state after the quantizer");

  bool known_state = false;
  for (const auto& [state, name] : kStates) {
    if (parts.back() == name) {
      out.state = state;
      known_state = true;
    }
  }
  if (!known_state) return Malformed(key, absl::StrCat("unknown state '", parts.back(), "'"));

  const std::vector<absl::string_view> module(parts.begin(), parts.begin() + q);
  std::vector<int64_t> indices;
  for (size_t i = q + 1; i + 1 < parts.size(); ++i) {
    int64_t v = 0;
    if (!IsIndex(parts[i], v)) {
      return Malformed(key, absl::StrCat("'", parts[i], "' is not an index"));
    }
    indices.push_back(v);
  }
  const bool grouped = IsGroupedExpertLinear(module);
  if (!indices.empty() && out.kind != K::kWeight) {
    return Malformed(key, "only weight quantizers are indexed");
  }
  const size_t max_indices = grouped ? 2 : 1;
  if (indices.size() > max_indices) return Malformed(key, "too many indices");
  if (grouped) {
    if (!indices.empty()) {
      out.expert = indices[0];
      out.expert_space = ExpertIndexSpace::kLocal;
      if (indices.size() == 2) out.level = indices[1];
    } else {
      out.shared_by_experts = true;
    }
  } else if (!indices.empty()) {
    out.level = indices[0];
  }

  // An expert id in the module path.
  for (size_t i = 0; i + 1 < module.size(); ++i) {
    int64_t v = 0;
    if (!IsIndex(module[i + 1], v)) continue;
    if (module[i] == "local_experts") {
      out.expert = v;
      out.expert_space = ExpertIndexSpace::kLocal;
    } else if (module[i] == "experts" && i > 0 && module[i - 1] == "experts") {
      out.expert = v;
      out.expert_space = ExpertIndexSpace::kGlobal;
    }
  }
  out.module = absl::StrJoin(module, ".");
  return out;
}

std::span<const QuantizerKeyRule> QuantizerKeyRules() { return Rules(); }

absl::StatusOr<QuantizerKeys> QuantizerKeysForWeight(absl::string_view weight_key) {
  // Singleton torch_dist splits a SwiGLU fc1 into "<...>.weight_w" and "<...>.weight_v".
  absl::string_view key = weight_key;
  if (absl::StrContains(key, "linear_fc1.weight_")) {
    if (!absl::ConsumeSuffix(&key, "_w")) absl::ConsumeSuffix(&key, "_v");
  }
  for (const QuantizerKeyRule& rule : Rules()) {
    std::string expert;
    if (rule.top_level) {
      if (!Match(rule.weight, key, expert)) continue;
      QuantizerKeys out;
      out.weight_amax = Render("", rule.weight_amax, expert);
      for (absl::string_view in : rule.input_amax) out.input_amax.push_back(Render("", in, expert));
      return out;
    }
    // Try every split "<prefix>.<suffix>" with a non-empty prefix.
    for (size_t dot = key.find('.'); dot != absl::string_view::npos;
         dot = key.find('.', dot + 1)) {
      if (!Match(rule.weight, key.substr(dot + 1), expert)) continue;
      const absl::string_view prefix = key.substr(0, dot);
      QuantizerKeys out;
      out.weight_amax = Render(prefix, rule.weight_amax, expert);
      for (absl::string_view in : rule.input_amax) {
        out.input_amax.push_back(Render(prefix, in, expert));
      }
      out.k_bmm_amax = Render(prefix, rule.k_bmm_amax, expert);
      out.v_bmm_amax = Render(prefix, rule.v_bmm_amax, expert);
      return out;
    }
  }
  return absl::NotFoundError(
      absl::StrCat("no quantizer key rule for Megatron weight '", weight_key, "'"));
}

}  // namespace mxport::exporter
