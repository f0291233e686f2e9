// Plans a synthetic Nemotron-Ultra-sized MoE checkpoint (108 layers x 512 experts, PP=9 EP=8,
// grouped experts) from manifests alone (no tensor bytes) and prints wall time and peak RSS.
// Goal: under 5 s and 2 GiB on a 2-core CI machine. Usage: plan_benchmark [layers] [experts]
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/export/plan.h"

namespace {

using namespace mxport;

int Run(int64_t layers, int64_t experts) {
  megatron::ModelConfig c;
  c.num_layers = layers;
  c.hidden_size = 8192;
  c.num_attention_heads = 64;
  c.num_query_groups = 8;
  c.kv_channels = 128;
  c.ffn_hidden_size = 16384;
  c.num_experts = experts;
  c.moe_ffn_hidden_size = 2048;
  c.moe_router_topk = 8;
  c.padded_vocab_size = 131072;
  c.vocab_size = 131072;
  c.qk_layernorm = true;
  c.moe_grouped_gemm = true;
  c.tp = 1;
  c.pp = 9;
  c.ep = 8;
  c.etp = 1;
  const int64_t h = c.hidden_size, d = c.kv_channels;
  const int64_t per_stage = layers / c.pp, per_rank = experts / c.ep;
  const DType bf16 = DType::kBFloat16;

  const auto start = std::chrono::steady_clock::now();
  std::vector<megatron::RankFile> files;
  std::vector<megatron::RankManifest> manifests;
  for (int64_t pp = 0; pp < c.pp; ++pp) {
    for (int64_t ep = 0; ep < c.ep; ++ep) {
      megatron::RankFile f;
      f.dir_name = absl::StrFormat("mp_rank_00_%03d_%03d", pp, ep);
      f.path = f.dir_name + "/model_optim_rng.pt";
      f.pp = megatron::PpRank(pp);
      f.ep = megatron::EpRank(ep);
      megatron::RankManifest m;
      m.path = f.path;
      m.checkpoint_version = 3.0;
      auto add = [&](std::string key, std::vector<int64_t> shape) {
        m.entries.push_back({megatron::VpRank(0), std::move(key), {bf16, std::move(shape)}});
      };
      if (pp == 0) add("embedding.word_embeddings.weight", {c.padded_vocab_size, h});
      for (int64_t l = 0; l < per_stage; ++l) {
        const std::string p = absl::StrCat("decoder.layers.", l, ".");
        add(p + "self_attention.linear_qkv.layer_norm_weight", {h});
        add(p + "self_attention.linear_qkv.weight", {(64 + 16) * d, h});
        add(p + "self_attention.q_layernorm.weight", {d});
        add(p + "self_attention.k_layernorm.weight", {d});
        add(p + "self_attention.linear_proj.weight", {h, 64 * d});
        add(p + "pre_mlp_layernorm.weight", {h});
        add(p + "mlp.router.weight", {experts, h});
        for (int64_t j = 0; j < per_rank; ++j) {
          add(absl::StrCat(p, "mlp.experts.linear_fc1.weight", j), {2 * c.moe_ffn_hidden_size, h});
          add(absl::StrCat(p, "mlp.experts.linear_fc2.weight", j), {h, c.moe_ffn_hidden_size});
        }
      }
      if (pp == c.pp - 1) {
        add("decoder.final_layernorm.weight", {h});
        add("output_layer.weight", {c.padded_vocab_size, h});
      }
      files.push_back(std::move(f));
      manifests.push_back(std::move(m));
    }
  }
  const auto built = std::chrono::steady_clock::now();
  auto arch = exporter::FindArch("Qwen3MoeForCausalLM");
  auto plan = exporter::BuildPlan(c, **arch, files, manifests, {});
  const auto done = std::chrono::steady_clock::now();
  if (!plan.ok()) {
    std::fprintf(stderr, "plan failed: %s\n", std::string(plan.status().message()).c_str());
    return 1;
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const double plan_s = std::chrono::duration<double>(done - built).count();
  const double peak_mib = usage.ru_maxrss / 1024.0;
  size_t entries = 0;
  for (const auto& m : manifests) entries += m.entries.size();
  std::printf("plan_benchmark: %lld layers x %lld experts, %zu rank files, %zu manifest entries\n",
              static_cast<long long>(layers), static_cast<long long>(experts), files.size(),
              entries);
  std::printf("  HF tensors %zu, pieces %zu, output files %zu (5 GiB shards), %.1f GiB\n",
              plan->tensors.size(), plan->pieces.size(), plan->files.size(),
              plan->total_bytes / double(1ull << 30));
  std::printf("  manifests built in %.2f s; plan in %.2f s (goal < 5 s: %s)\n",
              std::chrono::duration<double>(built - start).count(), plan_s,
              plan_s < 5 ? "met" : "MISSED");
  std::printf("  peak RSS %.0f MiB (goal < 2048 MiB: %s)\n", peak_mib,
              peak_mib < 2048 ? "met" : "MISSED");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t layers = argc > 1 ? std::atoll(argv[1]) : 108;
  const int64_t experts = argc > 2 ? std::atoll(argv[2]) : 512;
  return Run(layers, experts);
}
