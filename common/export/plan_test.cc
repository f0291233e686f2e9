// BuildPlan on hand-made manifests (keys, dtypes, shapes; no files): the pieces of QKV, SwiGLU,
// row-parallel and vocab-padded tensors, the file packing, the index, and the errors.
#include "common/export/plan.h"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <map>
#include <ostream>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/dtype.h"
#include "common/export/naming_rules.h"
#include "common/export/plan_codec.h"
#include "common/megatron/ids.h"
#include "common/megatron/model_config.h"
#include "common/megatron/source.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mxport::exporter {
namespace {

using megatron::EpRank;
using megatron::ManifestEntry;
using megatron::ModelConfig;
using megatron::PpRank;
using megatron::RankFile;
using megatron::RankManifest;
using megatron::TpRank;
using megatron::VpRank;
using ::mxport::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// A tiny dense Llama: h=16, 8 heads of d=2 in 2 query groups (q rows 16, k/v rows 4 each),
// ffn 8, vocabulary 30 padded to 32.
ModelConfig Llama(int64_t tp) {
  ModelConfig c;
  c.num_layers = 1;
  c.hidden_size = 16;
  c.num_attention_heads = 8;
  c.num_query_groups = 2;
  c.kv_channels = 2;
  c.ffn_hidden_size = 8;
  c.padded_vocab_size = 32;
  c.vocab_size = 30;
  c.swiglu = true;
  c.untied_embeddings = true;
  c.normalization = "RMSNorm";
  c.params_dtype = DType::kBFloat16;
  c.tp = tp;
  return c;
}

// One rank file's manifest and its identity.
struct Rank {
  RankFile file;
  RankManifest manifest;

  Rank& Add(const std::string& key, std::vector<int64_t> shape, DType dtype = DType::kBFloat16,
            int64_t vp = 0) {
    manifest.entries.push_back({VpRank(vp), key, {dtype, std::move(shape)}});
    return *this;
  }
  Rank& Remove(const std::string& key) {
    std::erase_if(manifest.entries, [&](const ManifestEntry& e) { return e.key == key; });
    return *this;
  }
  ManifestEntry& Entry(const std::string& key) {
    for (ManifestEntry& e : manifest.entries) {
      if (e.key == key) return e;
    }
    ADD_FAILURE() << "no entry " << key;
    return manifest.entries.front();
  }
};

std::string DirName(const ModelConfig& c, int64_t tp, int64_t pp, int64_t ep) {
  std::string name = absl::StrFormat("mp_rank_%02d", tp);
  if (c.pp > 1) absl::StrAppendFormat(&name, "_%03d", pp);
  if (c.ep > 1) absl::StrAppendFormat(&name, "_%03d", ep);
  return name;
}

Rank EmptyRank(const ModelConfig& c, int64_t tp, int64_t pp = 0, int64_t ep = 0) {
  Rank r;
  r.file.dir_name = DirName(c, tp, pp, ep);
  r.file.path = "/ckpt/iter_0000001/" + r.file.dir_name + "/model_optim_rng.pt";
  r.file.tp = TpRank(tp);
  r.file.pp = PpRank(pp);
  r.file.ep = EpRank(ep);
  r.manifest.path = r.file.path;
  r.manifest.checkpoint_version = 3.0;
  return r;
}

// What Megatron (TE spec, legacy format) saves for a dense model on TP rank `tp` with PP=1.
Rank DenseRank(const ModelConfig& c, int64_t tp) {
  Rank r = EmptyRank(c, tp);
  const int64_t h = c.hidden_size, t = c.tp;
  const int64_t q = c.num_attention_heads * c.kv_channels;
  const int64_t kv = c.num_query_groups * c.kv_channels;
  r.Add("embedding.word_embeddings.weight", {c.padded_vocab_size / t, h});
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const std::string p = absl::StrCat("decoder.layers.", l, ".");
    r.Add(p + "self_attention.linear_qkv.layer_norm_weight", {h});
    r.Add(p + "self_attention.linear_qkv.weight", {(q + 2 * kv) / t, h});
    r.Add(p + "self_attention.linear_proj.weight", {h, q / t});
    r.Add(p + "mlp.linear_fc1.layer_norm_weight", {h});
    r.Add(p + "mlp.linear_fc1.weight", {2 * c.ffn_hidden_size / t, h});
    r.Add(p + "mlp.linear_fc2.weight", {h, c.ffn_hidden_size / t});
  }
  r.Add("decoder.final_layernorm.weight", {h});
  if (c.untied_embeddings) r.Add("output_layer.weight", {c.padded_vocab_size / t, h});
  return r;
}

std::vector<Rank> DenseRanks(const ModelConfig& c) {
  std::vector<Rank> ranks;
  for (int64_t tp = 0; tp < c.tp; ++tp) ranks.push_back(DenseRank(c, tp));
  return ranks;
}

const ArchRules& Arch(const char* name) {
  absl::StatusOr<const ArchRules*> arch = FindArch(name);
  EXPECT_OK(arch);
  return **arch;
}

absl::StatusOr<ExportPlan> Plan(const ModelConfig& c, const std::vector<Rank>& ranks,
                                const char* arch = "LlamaForCausalLM",
                                const PlanOptions& options = {}) {
  std::vector<RankFile> files;
  std::vector<RankManifest> manifests;
  for (const Rank& r : ranks) {
    files.push_back(r.file);
    manifests.push_back(r.manifest);
  }
  return BuildPlan(c, Arch(arch), files, manifests, options);
}

// A piece, with its source named by rank directory.
struct P {
  std::string dir;
  std::string key;
  int64_t src_row, src_col, rows, cols, dst_row, dst_col;
  bool operator==(const P&) const = default;
  friend std::ostream& operator<<(std::ostream& os, const P& p) {
    return os << "{" << p.dir << " '" << p.key << "' src (" << p.src_row << ", " << p.src_col
              << ") " << p.rows << "x" << p.cols << " -> dst (" << p.dst_row << ", "
              << p.dst_col << ")}";
  }
};

int TensorIndex(const ExportPlan& plan, const std::string& name) {
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    if (plan.tensors[i].name == name) return static_cast<int>(i);
  }
  ADD_FAILURE() << "no tensor " << name;
  return -1;
}

// The pieces of tensor `name`, in plan order (by destination).
std::vector<P> PiecesOf(const ExportPlan& plan, const std::string& name) {
  const int t = TensorIndex(plan, name);
  std::vector<P> out;
  for (const Piece& p : plan.pieces) {
    if (p.tensor != t) continue;
    out.push_back({plan.sources[p.source].dir_name, p.key, p.src_row, p.src_col, p.rows, p.cols,
                   p.dst_row, p.dst_col});
  }
  return out;
}

constexpr char kQkv[] = "decoder.layers.0.self_attention.linear_qkv.weight";
constexpr char kProj[] = "decoder.layers.0.self_attention.linear_proj.weight";
constexpr char kFc1[] = "decoder.layers.0.mlp.linear_fc1.weight";
constexpr char kFc2[] = "decoder.layers.0.mlp.linear_fc2.weight";
constexpr char kEmbedding[] = "embedding.word_embeddings.weight";
constexpr char kOutput[] = "output_layer.weight";

TEST(BuildPlanTest, QkvWithOneGroupPerRank) {
  // TP=2, 2 groups: each rank holds one whole group [q(4 heads) = 8 rows, k 2, v 2].
  const ModelConfig c = Llama(2);
  ASSERT_OK_AND_ASSIGN(ExportPlan plan, Plan(c, DenseRanks(c)));
  EXPECT_THAT(PiecesOf(plan, "model.layers.0.self_attn.q_proj.weight"),
              ElementsAre(P{"mp_rank_00", kQkv, 0, 0, 8, 16, 0, 0},
                          P{"mp_rank_01", kQkv, 0, 0, 8, 16, 8, 0}));
  EXPECT_THAT(PiecesOf(plan, "model.layers.0.self_attn.k_proj.weight"),
              ElementsAre(P{"mp_rank_00", kQkv, 8, 0, 2, 16, 0, 0},
                          P{"mp_rank_01", kQkv, 8, 0, 2, 16, 2, 0}));
  EXPECT_THAT(PiecesOf(plan, "model.layers.0.self_attn.v_proj.weight"),
              ElementsAre(P{"mp_rank_00", kQkv, 10, 0, 2, 16, 0, 0},
                          P{"mp_rank_01", kQkv, 10, 0, 2, 16, 2, 0}));
  const Piece& first = plan.pieces[0];
  EXPECT_EQ(plan.tensors[first.tensor].name, "model.embed_tokens.weight");
  for (const Piece& p : plan.pieces) {
    if (p.key != kQkv) continue;
    EXPECT_EQ(p.src_rows, 12);
    EXPECT_EQ(p.src_cols, 16);
    EXPECT_EQ(p.vp, 0);
  }
}

TEST(BuildPlanTest, QkvWithSeveralGroupsPerRank) {
  // TP=1, 2 groups: rows [q0 8, k0 2, v0 2, q1 8, k1 2, v1 2], split per group.
  const ModelConfig c = Llama(1);
  ASSERT_OK_AND_ASSIGN(ExportPlan plan, Plan(c, DenseRanks(c)));
  EXPECT_THAT(PiecesOf(plan, "model.layers.0.self_attn.q_proj.weight"),
              ElementsAre(P{"mp_rank_00", kQkv, 0, 0, 8, 16, 0, 0},
                          P{"mp_rank_00", kQkv, 12, 0, 8, 16, 8, 0}));
  EXPECT_THAT(PiecesOf(plan, "model.layers.0.self_attn.k_proj.weight"),
              ElementsAre(P{"mp_rank_00", kQkv, 8, 0, 2, 16, 0, 0},
                          P{"mp_rank_00", kQkv, 20, 0, 2, 16, 2, 0}));
  EXPECT_THAT(PiecesOf(plan, "model.layers.0.self_attn.v_proj.weight"),
              ElementsAre(P{"mp_rank_00", kQkv, 10, 0, 2, 16, 0, 0},
                          P{"mp_rank_00", kQkv, 22, 0, 2, 16, 2, 0}));
}

TEST(BuildPlanTest, QkvWithFewerGroupsThanRanks) {
  // TP=4, 2 groups: the 24 grouped rows are cut into 4 slices of 6, so group boundaries fall
  // inside ranks. Rank 0: q0[0,6); rank 1: q0[6,8) k0 v0; rank 2: q1[0,6); rank 3: q1[6,8) k1
  // v1. (Megatron itself requires num_query_groups % TP == 0; see model_config_test.cc.)
  const ModelConfig c = Llama(4);
  ASSERT_OK_AND_ASSIGN(ExportPlan plan, Plan(c, DenseRanks(c)));
  EXPECT_THAT(PiecesOf(plan, "model.layers.0.self_attn.q_proj.weight"),
              ElementsAre(P{"mp_rank_00", kQkv, 0, 0, 6, 16, 0, 0},
                          P{"mp_rank_01", kQkv, 0, 0, 2, 16, 6, 0},
                          P{"mp_rank_02", kQkv, 0, 0, 6, 16, 8, 0},
                          P{"mp_rank_03", kQkv, 0, 0, 2, 16, 14, 0}));
  EXPECT_THAT(PiecesOf(plan, "model.layers.0.self_attn.k_proj.weight"),
              ElementsAre(P{"mp_rank_01", kQkv, 2, 0, 2, 16, 0, 0},
                          P{"mp_rank_03", kQkv, 2, 0, 2, 16, 2, 0}));
  EXPECT_THAT(PiecesOf(plan, "model.layers.0.self_attn.v_proj.weight"),
              ElementsAre(P{"mp_rank_01", kQkv, 4, 0, 2, 16, 0, 0},
                          P{"mp_rank_03", kQkv, 4, 0, 2, 16, 2, 0}));
}

TEST(BuildPlanTest, SwiGluDeinterleavesEachRank) {
  // TP=2, ffn 8: each rank's fc1 is [gate_r (4 rows); up_r (4 rows)].
  const ModelConfig c = Llama(2);
  ASSERT_OK_AND_ASSIGN(ExportPlan plan, Plan(c, DenseRanks(c)));
  EXPECT_THAT(PiecesOf(plan, "model.layers.0.mlp.gate_proj.weight"),
              ElementsAre(P{"mp_rank_00", kFc1, 0, 0, 4, 16, 0, 0},
                          P{"mp_rank_01", kFc1, 0, 0, 4, 16, 4, 0}));
  EXPECT_THAT(PiecesOf(plan, "model.layers.0.mlp.up_proj.weight"),
              ElementsAre(P{"mp_rank_00", kFc1, 4, 0, 4, 16, 0, 0},
                          P{"mp_rank_01", kFc1, 4, 0, 4, 16, 4, 0}));
  // TP=4: 2 rows of each per rank.
  const ModelConfig c4 = Llama(4);
  ASSERT_OK_AND_ASSIGN(ExportPlan plan4, Plan(c4, DenseRanks(c4)));
  EXPECT_THAT(PiecesOf(plan4, "model.layers.0.mlp.up_proj.weight"),
              ElementsAre(P{"mp_rank_00", kFc1, 2, 0, 2, 16, 0, 0},
                          P{"mp_rank_01", kFc1, 2, 0, 2, 16, 2, 0},
                          P{"mp_rank_02", kFc1, 2, 0, 2, 16, 4, 0},
                          P{"mp_rank_03", kFc1, 2, 0, 2, 16, 6, 0}));
}

TEST(BuildPlanTest, RowParallelGoesToColumns) {
  const ModelConfig c = Llama(2);
  ASSERT_OK_AND_ASSIGN(ExportPlan plan, Plan(c, DenseRanks(c)));
  EXPECT_THAT(PiecesOf(plan, "model.layers.0.self_attn.o_proj.weight"),
              ElementsAre(P{"mp_rank_00", kProj, 0, 0, 16, 8, 0, 0},
                          P{"mp_rank_01", kProj, 0, 0, 16, 8, 0, 8}));
  EXPECT_THAT(PiecesOf(plan, "model.layers.0.mlp.down_proj.weight"),
              ElementsAre(P{"mp_rank_00", kFc2, 0, 0, 16, 4, 0, 0},
                          P{"mp_rank_01", kFc2, 0, 0, 16, 4, 0, 4}));
}

TEST(BuildPlanTest, ReplicatedTensorsAreReadOnceFromTheFirstRank) {
  const ModelConfig c = Llama(2);
  ASSERT_OK_AND_ASSIGN(ExportPlan plan, Plan(c, DenseRanks(c)));
  EXPECT_THAT(PiecesOf(plan, "model.norm.weight"),
              ElementsAre(P{"mp_rank_00", "decoder.final_layernorm.weight", 0, 0, 16, 1, 0, 0}));
  EXPECT_THAT(PiecesOf(plan, "model.layers.0.input_layernorm.weight"),
              ElementsAre(P{"mp_rank_00", "decoder.layers.0.self_attention.linear_qkv.layer_norm_weight",
                            0, 0, 16, 1, 0, 0}));
  EXPECT_THAT(PiecesOf(plan, "model.layers.0.post_attention_layernorm.weight"),
              ElementsAre(P{"mp_rank_00", "decoder.layers.0.mlp.linear_fc1.layer_norm_weight", 0,
                            0, 16, 1, 0, 0}));
}

TEST(BuildPlanTest, VocabPaddingIsDropped) {
  // TP=2, 30 of 32 rows: rank 1 gives only 14 of its 16 rows.
  const ModelConfig c = Llama(2);
  ASSERT_OK_AND_ASSIGN(ExportPlan plan, Plan(c, DenseRanks(c)));
  EXPECT_EQ(plan.tensors[TensorIndex(plan, "model.embed_tokens.weight")].shape,
            (std::vector<int64_t>{30, 16}));
  EXPECT_THAT(PiecesOf(plan, "model.embed_tokens.weight"),
              ElementsAre(P{"mp_rank_00", kEmbedding, 0, 0, 16, 16, 0, 0},
                          P{"mp_rank_01", kEmbedding, 0, 0, 14, 16, 16, 0}));
  EXPECT_THAT(PiecesOf(plan, "lm_head.weight"),
              ElementsAre(P{"mp_rank_00", kOutput, 0, 0, 16, 16, 0, 0},
                          P{"mp_rank_01", kOutput, 0, 0, 14, 16, 16, 0}));
}

TEST(BuildPlanTest, ARankWhollyInThePaddingGivesNoPiece) {
  // TP=4, 8 rows per rank, 20 rows kept: ranks 0, 1 whole, rank 2 four rows, rank 3 none.
  ModelConfig c = Llama(4);
  c.vocab_size = 20;
  ASSERT_OK_AND_ASSIGN(ExportPlan plan, Plan(c, DenseRanks(c)));
  EXPECT_EQ(plan.tensors[TensorIndex(plan, "model.embed_tokens.weight")].shape,
            (std::vector<int64_t>{20, 16}));
  EXPECT_THAT(PiecesOf(plan, "model.embed_tokens.weight"),
              ElementsAre(P{"mp_rank_00", kEmbedding, 0, 0, 8, 16, 0, 0},
                          P{"mp_rank_01", kEmbedding, 0, 0, 8, 16, 8, 0},
                          P{"mp_rank_02", kEmbedding, 0, 0, 4, 16, 16, 0}));
  EXPECT_THAT(PiecesOf(plan, "lm_head.weight"),
              ElementsAre(P{"mp_rank_00", kOutput, 0, 0, 8, 16, 0, 0},
                          P{"mp_rank_01", kOutput, 0, 0, 8, 16, 8, 0},
                          P{"mp_rank_02", kOutput, 0, 0, 4, 16, 16, 0}));
}

TEST(BuildPlanTest, VocabSizeOptionOverridesTheArgs) {
  const ModelConfig c = Llama(2);
  PlanOptions options;
  options.hf_vocab_size = 16;  // exactly rank 0's rows
  ASSERT_OK_AND_ASSIGN(ExportPlan plan, Plan(c, DenseRanks(c), "llama", options));
  EXPECT_THAT(PiecesOf(plan, "model.embed_tokens.weight"),
              ElementsAre(P{"mp_rank_00", kEmbedding, 0, 0, 16, 16, 0, 0}));
  options.hf_vocab_size = 33;
  EXPECT_THAT(Plan(c, DenseRanks(c), "llama", options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("vocabulary of 33 exceeds the checkpoint's padded 32")));
}

TEST(BuildPlanTest, TiedEmbeddingsSkipTheOutputLayer) {
  ModelConfig c = Llama(2);
  c.untied_embeddings = false;
  std::vector<Rank> ranks = DenseRanks(c);
  // With PP>1 the last stage keeps a copy of the embedding as output_layer; even with PP=1 a
  // stray copy is ignored when the embeddings are tied.
  for (Rank& r : ranks) r.Add(kOutput, {16, 16});
  ASSERT_OK_AND_ASSIGN(ExportPlan plan, Plan(c, ranks));
  for (const HfTensor& t : plan.tensors) EXPECT_NE(t.name, "lm_head.weight");
  for (const Piece& p : plan.pieces) EXPECT_NE(p.key, kOutput);
}

// The 12 tensors of Llama(2) in file order, with their data bytes (bfloat16).
const std::vector<std::pair<std::string, uint64_t>> kLlamaTensors = {
    {"model.embed_tokens.weight", 30 * 16 * 2},
    {"model.layers.0.input_layernorm.weight", 16 * 2},
    {"model.layers.0.mlp.down_proj.weight", 16 * 8 * 2},
    {"model.layers.0.mlp.gate_proj.weight", 8 * 16 * 2},
    {"model.layers.0.mlp.up_proj.weight", 8 * 16 * 2},
    {"model.layers.0.post_attention_layernorm.weight", 16 * 2},
    {"model.layers.0.self_attn.k_proj.weight", 4 * 16 * 2},
    {"model.layers.0.self_attn.o_proj.weight", 16 * 16 * 2},
    {"model.layers.0.self_attn.q_proj.weight", 16 * 16 * 2},
    {"model.layers.0.self_attn.v_proj.weight", 4 * 16 * 2},
    {"lm_head.weight", 30 * 16 * 2},
    {"model.norm.weight", 16 * 2},
};

TEST(BuildPlanTest, TensorOrderAndOneFile) {
  const ModelConfig c = Llama(2);
  ASSERT_OK_AND_ASSIGN(ExportPlan plan, Plan(c, DenseRanks(c)));
  ASSERT_EQ(plan.tensors.size(), kLlamaTensors.size());
  uint64_t offset = 0;
  for (size_t i = 0; i < kLlamaTensors.size(); ++i) {
    SCOPED_TRACE(kLlamaTensors[i].first);
    const HfTensor& t = plan.tensors[i];
    EXPECT_EQ(t.name, kLlamaTensors[i].first);
    EXPECT_EQ(t.bytes, kLlamaTensors[i].second);
    EXPECT_EQ(t.dtype, DType::kBFloat16);
    EXPECT_EQ(t.file, 0);
    EXPECT_EQ(t.offset, offset);
    offset += t.bytes;
  }
  EXPECT_EQ(plan.total_bytes, 4064u);
  ASSERT_EQ(plan.files.size(), 1u);
  EXPECT_EQ(plan.files[0].name, "model.safetensors");
  EXPECT_EQ(plan.files[0].data_bytes, 4064u);
  EXPECT_EQ(plan.files[0].tensors.size(), 12u);
  // Tensor metadata.
  const HfTensor& k = plan.tensors[TensorIndex(plan, "model.layers.0.self_attn.k_proj.weight")];
  EXPECT_EQ(k.shape, (std::vector<int64_t>{4, 16}));
  EXPECT_EQ(k.role, Role::kQkvWeight);
  EXPECT_EQ(k.layer, 0);
  EXPECT_EQ(k.rows(), 4);
  EXPECT_EQ(k.cols(), 16);
  EXPECT_EQ(plan.tensors[0].layer, -1);
  // Pieces are grouped by tensor, in file order.
  for (size_t i = 1; i < plan.pieces.size(); ++i) {
    EXPECT_LE(plan.pieces[i - 1].tensor, plan.pieces[i].tensor);
  }
  EXPECT_EQ(plan.sources.size(), 2u);
  EXPECT_EQ(plan.sources[1].dir_name, "mp_rank_01");
  EXPECT_EQ(plan.sources[1].tp, TpRank(1));
}

TEST(BuildPlanTest, PacksFilesUpToMaxShardSize) {
  const ModelConfig c = Llama(2);
  PlanOptions options;
  options.max_shard_size = 1024;
  ASSERT_OK_AND_ASSIGN(ExportPlan plan, Plan(c, DenseRanks(c), "llama", options));
  // Bytes: embed 960 + norm 32 | down 256, gate 256, up 256, norm 32, k 128 | o 512, q 512
  // (exactly 1024 fits) | v 128 | lm_head 960, norm 32.
  struct Want {
    const char* name;
    int file;
    uint64_t offset;
  };
  const Want want[] = {
      {"model.embed_tokens.weight", 0, 0},
      {"model.layers.0.input_layernorm.weight", 0, 960},
      {"model.layers.0.mlp.down_proj.weight", 1, 0},
      {"model.layers.0.mlp.gate_proj.weight", 1, 256},
      {"model.layers.0.mlp.up_proj.weight", 1, 512},
      {"model.layers.0.post_attention_layernorm.weight", 1, 768},
      {"model.layers.0.self_attn.k_proj.weight", 1, 800},
      {"model.layers.0.self_attn.o_proj.weight", 2, 0},
      {"model.layers.0.self_attn.q_proj.weight", 2, 512},
      {"model.layers.0.self_attn.v_proj.weight", 3, 0},
      {"lm_head.weight", 4, 0},
      {"model.norm.weight", 4, 960},
  };
  ASSERT_EQ(plan.tensors.size(), std::size(want));
  for (size_t i = 0; i < std::size(want); ++i) {
    SCOPED_TRACE(want[i].name);
    EXPECT_EQ(plan.tensors[i].name, want[i].name);
    EXPECT_EQ(plan.tensors[i].file, want[i].file);
    EXPECT_EQ(plan.tensors[i].offset, want[i].offset);
  }
  ASSERT_EQ(plan.files.size(), 5u);
  EXPECT_EQ(plan.files[0].name, "model-00001-of-00005.safetensors");
  EXPECT_EQ(plan.files[4].name, "model-00005-of-00005.safetensors");
  EXPECT_THAT(plan.files[0].tensors, ElementsAre(0, 1));
  EXPECT_THAT(plan.files[1].tensors, ElementsAre(2, 3, 4, 5, 6));
  EXPECT_THAT(plan.files[2].tensors, ElementsAre(7, 8));
  EXPECT_THAT(plan.files[3].tensors, ElementsAre(9));
  EXPECT_THAT(plan.files[4].tensors, ElementsAre(10, 11));
  uint64_t total = 0;
  for (const OutputFile& f : plan.files) {
    EXPECT_LE(f.data_bytes, options.max_shard_size) << f.name;
    total += f.data_bytes;
  }
  EXPECT_EQ(total, plan.total_bytes);
  EXPECT_EQ(plan.files[1].data_bytes, 928u);
  EXPECT_EQ(plan.files[2].data_bytes, 1024u);
}

TEST(BuildPlanTest, ATensorLargerThanTheShardSizeGetsItsOwnFile) {
  const ModelConfig c = Llama(2);
  PlanOptions options;
  options.max_shard_size = 100;
  ASSERT_OK_AND_ASSIGN(ExportPlan plan, Plan(c, DenseRanks(c), "llama", options));
  ASSERT_EQ(plan.files.size(), 12u);
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    EXPECT_EQ(plan.tensors[i].file, static_cast<int>(i));
    EXPECT_EQ(plan.tensors[i].offset, 0u);
  }
  EXPECT_EQ(plan.files[11].name, "model-00012-of-00012.safetensors");
}

TEST(ShardFileNameTest, Names) {
  EXPECT_EQ(ShardFileName(0, 1), "model.safetensors");
  EXPECT_EQ(ShardFileName(0, 2), "model-00001-of-00002.safetensors");
  EXPECT_EQ(ShardFileName(1, 2), "model-00002-of-00002.safetensors");
  EXPECT_EQ(ShardFileName(41, 163), "model-00042-of-00163.safetensors");
}

TEST(BuildPlanTest, IndexJson) {
  const ModelConfig c = Llama(2);
  PlanOptions options;
  options.max_shard_size = 1024;
  ASSERT_OK_AND_ASSIGN(ExportPlan plan, Plan(c, DenseRanks(c), "llama", options));
  const OrderedJson index = plan.IndexJson();
  EXPECT_EQ(index["metadata"]["total_size"].get<uint64_t>(), 4064u);
  const OrderedJson& map = index["weight_map"];
  ASSERT_EQ(map.size(), 12u);
  EXPECT_EQ(map["model.embed_tokens.weight"], "model-00001-of-00005.safetensors");
  EXPECT_EQ(map["model.layers.0.self_attn.k_proj.weight"], "model-00002-of-00005.safetensors");
  EXPECT_EQ(map["model.layers.0.self_attn.q_proj.weight"], "model-00003-of-00005.safetensors");
  EXPECT_EQ(map["model.layers.0.self_attn.v_proj.weight"], "model-00004-of-00005.safetensors");
  EXPECT_EQ(map["lm_head.weight"], "model-00005-of-00005.safetensors");
  EXPECT_EQ(map["model.norm.weight"], "model-00005-of-00005.safetensors");
  // weight_map keys are sorted.
  std::vector<std::string> keys;
  for (const auto& [name, file] : map.items()) keys.push_back(name);
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  EXPECT_EQ(keys.front(), "lm_head.weight");
}

TEST(BuildPlanTest, UnknownKey) {
  const ModelConfig c = Llama(2);
  std::vector<Rank> ranks = DenseRanks(c);
  ranks[1].Add("decoder.layers.0.self_attention.rotary.inv_freq", {4});
  EXPECT_THAT(Plan(c, ranks),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("cannot be exported completely (1 problems)"),
                             HasSubstr("mp_rank_01: 'decoder.layers.0.self_attention.rotary."
                                       "inv_freq' matches no export rule"))));
}

TEST(BuildPlanTest, ModelOptAmaxBecomeAmaxSources) {
  const ModelConfig c = Llama(2);
  std::vector<Rank> ranks = DenseRanks(c);
  for (Rank& r : ranks) {
    r.Add("decoder.layers.0.self_attention.linear_qkv.weight_quantizer._amax", {},
          DType::kFloat32);
    r.Add("decoder.layers.0.mlp.linear_fc1.input_quantizer._amax", {}, DType::kBFloat16);
    r.Add("decoder.layers.0.mlp.linear_fc2.output_quantizer._amax", {}, DType::kFloat32);
  }
  absl::StatusOr<ExportPlan> plan = Plan(c, ranks);
  ASSERT_OK(plan);
  ASSERT_EQ(plan->amax_sources.size(), 4u);  // two keys x two TP replicas; output skipped
  const AmaxSource& qkv = plan->amax_sources[0];
  EXPECT_FALSE(qkv.input);
  EXPECT_EQ(qkv.source, 0);
  EXPECT_EQ(qkv.dtype, DType::kFloat32);
  EXPECT_THAT(qkv.weights, ElementsAre("model.layers.0.self_attn.q_proj.weight",
                                       "model.layers.0.self_attn.k_proj.weight",
                                       "model.layers.0.self_attn.v_proj.weight"));
  const AmaxSource& fc1 = plan->amax_sources[1];
  EXPECT_TRUE(fc1.input);
  EXPECT_EQ(fc1.dtype, DType::kBFloat16);
  EXPECT_EQ(fc1.key, "decoder.layers.0.mlp.linear_fc1.input_quantizer._amax");
  EXPECT_THAT(fc1.weights, ElementsAre("model.layers.0.mlp.gate_proj.weight",
                                       "model.layers.0.mlp.up_proj.weight"));
  EXPECT_EQ(plan->amax_sources[3].source, 1);
  // The same plan without them: the tensors do not change.
  absl::StatusOr<ExportPlan> plain = Plan(c, DenseRanks(c));
  ASSERT_OK(plain);
  EXPECT_EQ(plain->ToJson()["files"], plan->ToJson()["files"]);
  // The wire form carries them.
  absl::StatusOr<ExportPlan> decoded = DecodePlan(EncodePlan(*plan));
  ASSERT_OK(decoded);
  ASSERT_EQ(decoded->amax_sources.size(), 4u);
  EXPECT_EQ(decoded->amax_sources[1].weights, fc1.weights);
  EXPECT_EQ(decoded->amax_sources[1].dtype, DType::kBFloat16);
  EXPECT_EQ(EncodePlan(*decoded), EncodePlan(*plan));
}

TEST(BuildPlanTest, QuantizerStateThatCannotBeUsedIsAProblem) {
  const ModelConfig c = Llama(2);
  std::vector<Rank> ranks = DenseRanks(c);
  ranks[0].Add("decoder.layers.7.mlp.linear_fc1.weight_quantizer._amax", {}, DType::kFloat32);
  ranks[0].Add("decoder.layers.0.mlp.linear_fc2.weight_quantizer._amax", {64, 1},
               DType::kFloat32);
  ranks[1].Add("decoder.layers.0.mlp.linear_fc2.input_quantizer._pre_quant_scale", {8},
               DType::kFloat32);
  ranks[1].Add("decoder.layers.0.mlp.linear_fc2.input_quantizer.3._amax", {}, DType::kFloat32);
  EXPECT_THAT(Plan(c, ranks),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("(4 problems)"),
                             HasSubstr("mp_rank_00: 'decoder.layers.7.mlp.linear_fc1."
                                       "weight_quantizer._amax'"),
                             HasSubstr("has 64 elements; only per-tensor amax is supported"),
                             HasSubstr("_pre_quant_scale': this quantizer state is not supported"),
                             HasSubstr("input_quantizer.3._amax'"))));
}

TEST(BuildPlanTest, KeyTheArchitectureLacks) {
  const ModelConfig c = Llama(2);
  std::vector<Rank> ranks = DenseRanks(c);
  ranks[0].Add("decoder.layers.0.self_attention.q_layernorm.weight", {2});
  EXPECT_THAT(Plan(c, ranks),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("mp_rank_00: 'decoder.layers.0.self_attention.q_layernorm."
                                 "weight' has no counterpart in LlamaForCausalLM")));
}

TEST(BuildPlanTest, ShapeMismatch) {
  const ModelConfig c = Llama(2);
  std::vector<Rank> ranks = DenseRanks(c);
  ranks[1].Entry(kProj).desc.shape = {16, 9};
  ranks[0].Entry(kQkv).desc.shape = {24, 16};  // the whole, unsplit QKV
  ranks[1].Entry(kEmbedding).desc.shape = {15, 16};
  EXPECT_THAT(Plan(c, ranks),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("mp_rank_01: '" + std::string(kProj) +
                                       "' has shape [16, 9], expected [16, 8]"),
                             HasSubstr("mp_rank_00: '" + std::string(kQkv) +
                                       "' has shape [24, 16], expected [12, 16]"),
                             HasSubstr("mp_rank_01: '" + std::string(kEmbedding) +
                                       "' has shape [15, 16], expected [16, 16]"))));
}

TEST(BuildPlanTest, DtypeMismatch) {
  const ModelConfig c = Llama(2);
  std::vector<Rank> ranks = DenseRanks(c);
  ranks[1].Entry(kFc2).desc.dtype = DType::kFloat32;
  EXPECT_THAT(Plan(c, ranks),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("mp_rank_01: '" + std::string(kFc2) +
                                 "' is float32 but other pieces of "
                                 "model.layers.0.mlp.down_proj.weight are bfloat16")));
}

TEST(BuildPlanTest, AnotherDtypeThroughoutIsKept) {
  const ModelConfig c = Llama(2);
  std::vector<Rank> ranks = DenseRanks(c);
  for (Rank& r : ranks) r.Entry(kFc2).desc.dtype = DType::kFloat32;
  ASSERT_OK_AND_ASSIGN(ExportPlan plan, Plan(c, ranks));
  const HfTensor& down = plan.tensors[TensorIndex(plan, "model.layers.0.mlp.down_proj.weight")];
  EXPECT_EQ(down.dtype, DType::kFloat32);
  EXPECT_EQ(down.bytes, 16u * 8 * 4);
}

TEST(BuildPlanTest, MissingTensorNamesTheKeyAndRank) {
  const ModelConfig c = Llama(2);
  std::vector<Rank> ranks = DenseRanks(c);
  ranks[1].Remove(kFc2);
  EXPECT_THAT(Plan(c, ranks),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("model.layers.0.mlp.down_proj.weight: missing (64 of "
                                       "128 elements found)"),
                             HasSubstr("expected key '" + std::string(kFc2) +
                                       "' in the rank files with pp=0 tp=1, e.g. mp_rank_01"))));
}

TEST(BuildPlanTest, MissingRankFile) {
  const ModelConfig c = Llama(2);
  std::vector<Rank> ranks = DenseRanks(c);
  ranks.pop_back();
  EXPECT_THAT(Plan(c, ranks),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("rank directories are missing: mp_rank_01 for tp=1 pp=0")));
}

TEST(BuildPlanTest, ManifestCountMustMatchFiles) {
  const ModelConfig c = Llama(1);
  std::vector<RankFile> files = {DenseRank(c, 0).file};
  EXPECT_THAT(BuildPlan(c, Arch("llama"), files, {}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(BuildPlan(c, Arch("llama"), {}, {}), StatusIs(absl::StatusCode::kInvalidArgument));
}

// BUG: in a dense config (num_experts == 0) the planner holds no ExpertMap, yet AddEntry calls
// experts_->ToGlobal(...) for any key with an {E} capture, dereferencing an empty
// std::optional<ExpertMap> (undefined behaviour; this test dies with SIGSEGV when run). A
// checkpoint whose args lost num_experts, or a manifest with a stray expert key, should be
// reported like any other unexpected key. Proposed fix in plan_pieces.cc (Planner::Targets):
//   if (m->expert.has_value()) {
//     if (!experts_.has_value()) {
//       Problem(absl::StrCat(where, " is an expert weight, but the args describe a dense "
//                                   "model (num_experts = 0)"));
//       return;
//     }
//     ...
TEST(BuildPlanTest, ExpertKeyInADenseModelIsAProblem) {
  const ModelConfig c = Llama(2);
  std::vector<Rank> ranks = DenseRanks(c);
  ranks[0].Add("decoder.layers.0.mlp.experts.linear_fc1.weight0", {8, 16});
  EXPECT_THAT(Plan(c, ranks),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("mp_rank_00: 'decoder.layers.0.mlp.experts.linear_fc1.weight0'")));
}

// A small Qwen3-MoE: TP=1, EP=2, 4 experts (2 per rank), grouped GEMM keys.
ModelConfig Qwen3Moe() {
  ModelConfig c = Llama(1);
  c.num_attention_heads = 8;
  c.qk_layernorm = true;
  c.num_experts = 4;
  c.moe_ffn_hidden_size = 4;
  c.moe_grouped_gemm = true;
  c.ep = 2;
  return c;
}

Rank MoeRank(const ModelConfig& c, int64_t ep) {
  Rank r = EmptyRank(c, 0, 0, ep);
  const int64_t h = c.hidden_size, d = c.kv_channels;
  const int64_t q = c.num_attention_heads * d, kv = c.num_query_groups * d;
  r.Add(kEmbedding, {c.padded_vocab_size, h});
  r.Add("decoder.layers.0.self_attention.linear_qkv.layer_norm_weight", {h});
  r.Add(kQkv, {q + 2 * kv, h});
  r.Add("decoder.layers.0.self_attention.q_layernorm.weight", {d});
  r.Add("decoder.layers.0.self_attention.k_layernorm.weight", {d});
  r.Add(kProj, {h, q});
  r.Add("decoder.layers.0.pre_mlp_layernorm.weight", {h});
  r.Add("decoder.layers.0.mlp.router.weight", {c.num_experts, h});
  for (int64_t j = 0; j < c.experts_per_rank(); ++j) {
    r.Add(absl::StrCat("decoder.layers.0.mlp.experts.linear_fc1.weight", j),
          {2 * c.moe_ffn_hidden_size, h});
    r.Add(absl::StrCat("decoder.layers.0.mlp.experts.linear_fc2.weight", j),
          {h, c.moe_ffn_hidden_size});
  }
  r.Add("decoder.final_layernorm.weight", {h});
  r.Add(kOutput, {c.padded_vocab_size, h});
  return r;
}

TEST(BuildPlanTest, ExpertsGetGlobalIdsAndDenseReplicasAreReadOnce) {
  const ModelConfig c = Qwen3Moe();
  ASSERT_OK_AND_ASSIGN(ExportPlan plan, Plan(c, {MoeRank(c, 0), MoeRank(c, 1)}, "qwen3_moe"));
  EXPECT_EQ(plan.tensors.size(), 3u + 1 + 3 + 2 + 1 + 1 + 1 + 4 * 3);
  EXPECT_THAT(PiecesOf(plan, "model.layers.0.mlp.experts.0.gate_proj.weight"),
              ElementsAre(P{"mp_rank_00_000", "decoder.layers.0.mlp.experts.linear_fc1.weight0",
                            0, 0, 4, 16, 0, 0}));
  EXPECT_THAT(PiecesOf(plan, "model.layers.0.mlp.experts.1.up_proj.weight"),
              ElementsAre(P{"mp_rank_00_000", "decoder.layers.0.mlp.experts.linear_fc1.weight1",
                            4, 0, 4, 16, 0, 0}));
  EXPECT_THAT(PiecesOf(plan, "model.layers.0.mlp.experts.2.gate_proj.weight"),
              ElementsAre(P{"mp_rank_00_001", "decoder.layers.0.mlp.experts.linear_fc1.weight0",
                            0, 0, 4, 16, 0, 0}));
  EXPECT_THAT(PiecesOf(plan, "model.layers.0.mlp.experts.3.down_proj.weight"),
              ElementsAre(P{"mp_rank_00_001", "decoder.layers.0.mlp.experts.linear_fc2.weight1",
                            0, 0, 16, 4, 0, 0}));
  // Dense weights repeat in both EP files and are read from the first.
  for (const char* name : {"model.layers.0.mlp.gate.weight", "model.layers.0.self_attn.q_proj.weight",
                           "model.embed_tokens.weight", "model.norm.weight"}) {
    SCOPED_TRACE(name);
    const std::vector<P> pieces = PiecesOf(plan, name);
    ASSERT_THAT(pieces, Not(IsEmpty()));
    for (const P& p : pieces) EXPECT_EQ(p.dir, "mp_rank_00_000");
  }
}

TEST(BuildPlanTest, ExplicitExpertPlacement) {
  const ModelConfig c = Qwen3Moe();
  PlanOptions options;
  options.expert_map = {{0, 2}, {1, 3}};
  ASSERT_OK_AND_ASSIGN(ExportPlan plan,
                       Plan(c, {MoeRank(c, 0), MoeRank(c, 1)}, "qwen3_moe", options));
  EXPECT_THAT(PiecesOf(plan, "model.layers.0.mlp.experts.1.down_proj.weight"),
              ElementsAre(P{"mp_rank_00_001", "decoder.layers.0.mlp.experts.linear_fc2.weight0",
                            0, 0, 16, 4, 0, 0}));
  EXPECT_THAT(PiecesOf(plan, "model.layers.0.mlp.experts.2.down_proj.weight"),
              ElementsAre(P{"mp_rank_00_000", "decoder.layers.0.mlp.experts.linear_fc2.weight1",
                            0, 0, 16, 4, 0, 0}));
  options.expert_map = {{0, 1, 2, 3}};
  EXPECT_THAT(Plan(c, {MoeRank(c, 0), MoeRank(c, 1)}, "qwen3_moe", options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("the expert map lists 1 EP ranks, the checkpoint has 2")));
}

TEST(BuildPlanTest, AnExpertSlotBeyondTheRankIsAProblem) {
  const ModelConfig c = Qwen3Moe();
  Rank extra = MoeRank(c, 1);
  extra.Add("decoder.layers.0.mlp.experts.linear_fc1.weight2", {8, 16});
  EXPECT_THAT(Plan(c, {MoeRank(c, 0), extra}, "qwen3_moe"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("mp_rank_00_001: 'decoder.layers.0.mlp.experts.linear_fc1."
                                       "weight2'"),
                             HasSubstr("no expert at EP rank 1 local slot 2"))));
}

}  // namespace
}  // namespace mxport::exporter
