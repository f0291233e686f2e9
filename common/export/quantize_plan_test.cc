// ApplyQuantization, QuantStats, QuantizeChunk and ScatterQuantized on synthetic plans held in
// memory: chunked, column-split and merged execution must give exactly the bytes of the
// whole-tensor quantization of common/quant (QuantizeNvfp4, QuantizeFp8Block), and every error
// names what is wrong. The fixture exports are in quantize_export_test.cc.
#include "common/export/quantize_plan.h"

#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/export/local_executor.h"
#include "common/export/plan_codec.h"
#include "common/quant/quant.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mxport::exporter {
namespace {

using ::mxport::testing::IsOk;
using ::mxport::testing::IsOkAndHolds;
using ::mxport::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

// A bf16 weight [rows, cols] of the given name, split on dim 1 over sources at `splits`
// (row-parallel TP), as BuildPlan would plan it.
struct Weight {
  std::string name;
  Role role;
  int64_t rows, cols;
  std::vector<int64_t> splits;  // column boundaries, e.g. {24, 48, 72} for TP4 of 96
};

struct Synthetic {
  ExportPlan plan;
  std::vector<std::string> source_bytes;  // per source: its [rows, cols_k] bf16 matrix
  std::vector<std::string> full;          // per weight: [rows, cols] bf16
};

std::string RandomBf16(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::string out(rows * cols * 2, '\0');
  for (int64_t i = 0; i < rows * cols; ++i) {
    float v = normal(rng);
    const int64_t r = i / cols, c = i % cols;
    if (r == 0 && c < 16) v = 0.0f;                       // an all-zero block
    if (r == 1 && c < 16) v *= 1e-30f;                    // a tiny block
    if (r == 2 && c == 5) v = 0.25f + 0.01f * (seed % 8);  // an outlier
    const uint16_t h = quant::FloatToBFloat16Bits(v);
    std::memcpy(out.data() + 2 * i, &h, 2);
  }
  return out;
}

Synthetic MakeSynthetic(const std::vector<Weight>& weights) {
  Synthetic s;
  s.plan.arch = *FindArch("LlamaForCausalLM");
  for (size_t w = 0; w < weights.size(); ++w) {
    const Weight& spec = weights[w];
    HfTensor t;
    t.name = spec.name;
    t.shape = {spec.rows, spec.cols};
    t.role = spec.role;
    t.layer = 0;
    t.bytes = spec.rows * spec.cols * 2;
    s.plan.tensors.push_back(t);
    s.full.push_back(RandomBf16(spec.rows, spec.cols, 17 + w));
    std::vector<int64_t> bounds = {0};
    bounds.insert(bounds.end(), spec.splits.begin(), spec.splits.end());
    bounds.push_back(spec.cols);
    for (size_t k = 0; k + 1 < bounds.size(); ++k) {
      const int64_t c0 = bounds[k], width = bounds[k + 1] - bounds[k];
      std::string bytes;
      for (int64_t r = 0; r < spec.rows; ++r) {
        bytes += s.full.back().substr((r * spec.cols + c0) * 2, width * 2);
      }
      Piece p;
      p.tensor = static_cast<int>(w);
      p.source = static_cast<int>(s.source_bytes.size());
      p.key = absl::StrCat("key", p.source);
      p.src_rows = p.rows = spec.rows;
      p.src_cols = p.cols = width;
      p.dst_col = c0;
      s.plan.pieces.push_back(p);
      s.plan.sources.push_back({absl::StrCat("/src", p.source), absl::StrCat("mp_rank_0", k),
                                megatron::TpRank(k), megatron::PpRank(0), megatron::EpRank(0)});
      s.source_bytes.push_back(std::move(bytes));
    }
  }
  return s;
}

// What SourceReader::ReadRows returns for `chunk`.
std::string RowsOf(const Synthetic& s, const Piece& chunk) {
  const size_t row = chunk.src_cols * 2;
  return s.source_bytes[chunk.source].substr(chunk.src_row * row, chunk.rows * row);
}

// Splits every piece into chunks of `rows_per_chunk` rows.
std::vector<Piece> Chunks(const ExportPlan& plan, int64_t rows_per_chunk) {
  std::vector<Piece> out;
  for (const Piece& p : plan.pieces) {
    for (int64_t r = 0; r < p.rows; r += rows_per_chunk) {
      out.push_back(RowChunk(p, r, std::min(rows_per_chunk, p.rows - r)));
    }
  }
  return out;
}

// Executes `plan` in memory over `chunks`; returns every tensor's bytes.
absl::StatusOr<std::vector<std::string>> Execute(const Synthetic& s, const ExportPlan& plan,
                                                 const std::vector<Piece>& chunks) {
  QuantStats stats;
  for (const Piece& c : chunks) RETURN_IF_ERROR(stats.Accumulate(plan, c, RowsOf(s, c)));
  RETURN_IF_ERROR(stats.Finish(plan));
  std::vector<std::string> out;
  for (const HfTensor& t : plan.tensors) out.emplace_back(t.bytes, '\xAA');
  std::vector<std::vector<bool>> written(plan.tensors.size());
  for (size_t i = 0; i < out.size(); ++i) written[i].assign(out[i].size(), false);
  const TensorWriteFn write = [&](int t, uint64_t offset, absl::string_view bytes) {
    for (size_t i = 0; i < bytes.size(); ++i) {
      if (written[t][offset + i]) return absl::AlreadyExistsError("written twice");
      written[t][offset + i] = true;
    }
    out[t].replace(offset, bytes.size(), bytes.data(), bytes.size());
    return absl::OkStatus();
  };
  for (const Piece& c : chunks) {
    ASSIGN_OR_RETURN(std::string q, QuantizeChunk(plan, stats, c, RowsOf(s, c)));
    RETURN_IF_ERROR(ScatterQuantized(plan, c, q, write));
  }
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    const QuantPart part = plan.tensors[i].quant_part;
    if (part != QuantPart::kWeightScale2 && part != QuantPart::kScaleInv) continue;
    ASSIGN_OR_RETURN(std::string bytes, ScaleTensorBytes(plan, stats, i));
    RETURN_IF_ERROR(write(i, 0, bytes));
  }
  for (size_t i = 0; i < written.size(); ++i) {
    for (bool w : written[i]) {
      if (!w) return absl::InternalError(plan.tensors[i].name + " not fully written");
    }
  }
  return out;
}

int Find(const ExportPlan& plan, const std::string& name) {
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    if (plan.tensors[i].name == name) return static_cast<int>(i);
  }
  ADD_FAILURE() << "no tensor " << name;
  return 0;
}

std::string F32(float v) { return std::string(reinterpret_cast<const char*>(&v), 4); }

const Weight kDown = {"model.layers.0.mlp.down_proj.weight", Role::kDenseFc2, 40, 96,
                      {24, 48, 72}};

TEST(QuantizePlanTest, Nvfp4ChunksWithCutBlocksEqualTheWholeTensor) {
  Synthetic s = MakeSynthetic({kDown});
  ASSERT_OK_AND_ASSIGN(ExportPlan plan, ApplyQuantization(s.plan, {"nvfp4", {}}));
  ASSERT_EQ(plan.tensors.size(), 3u);
  const int w = Find(plan, "model.layers.0.mlp.down_proj.weight");
  const int bs = Find(plan, "model.layers.0.mlp.down_proj.weight_scale");
  const int s2 = Find(plan, "model.layers.0.mlp.down_proj.weight_scale_2");
  EXPECT_EQ(plan.tensors[w].dtype, DType::kUInt8);
  EXPECT_EQ(plan.tensors[w].shape, (std::vector<int64_t>{40, 48}));
  EXPECT_EQ(plan.tensors[bs].dtype, DType::kFloat8E4M3FN);
  EXPECT_EQ(plan.tensors[bs].shape, (std::vector<int64_t>{40, 6}));
  EXPECT_EQ(plan.tensors[s2].shape, std::vector<int64_t>{});
  EXPECT_EQ(plan.tensors[w].source_cols, 96);
  EXPECT_EQ(plan.tensors[bs].quant_weight, w);

  // The reference: common/quant on the whole tensor.
  ASSERT_OK_AND_ASSIGN(const float amax, quant::AbsMax(DType::kBFloat16, s.full[0]));
  ASSERT_OK_AND_ASSIGN(const float scale2, quant::Nvfp4WeightScale2(amax));
  std::vector<uint8_t> packed(40 * 48), scales(40 * 6);
  ASSERT_OK(quant::QuantizeNvfp4(DType::kBFloat16, s.full[0], 96, scale2,
                                 absl::MakeSpan(packed), absl::MakeSpan(scales)));
  for (int64_t rows_per_chunk : {40, 7, 1}) {
    SCOPED_TRACE(rows_per_chunk);
    ASSERT_OK_AND_ASSIGN(auto out, Execute(s, plan, Chunks(plan, rows_per_chunk)));
    EXPECT_EQ(out[w], std::string(packed.begin(), packed.end()));
    EXPECT_EQ(out[bs], std::string(scales.begin(), scales.end()));
    EXPECT_EQ(out[s2], F32(scale2));
  }
}

TEST(QuantizePlanTest, Fp8BlockColumnSplitChunksEqualTheWholeTensor) {
  const Weight big = {"model.layers.0.self_attn.o_proj.weight", Role::kAttnOut, 300, 260,
                      {100, 130}};
  Synthetic s = MakeSynthetic({big});
  ASSERT_OK_AND_ASSIGN(ExportPlan plan, ApplyQuantization(s.plan, {"fp8_block", {}}));
  ASSERT_EQ(plan.tensors.size(), 2u);
  const int w = Find(plan, "model.layers.0.self_attn.o_proj.weight");
  const int inv = Find(plan, "model.layers.0.self_attn.o_proj.weight_scale_inv");
  EXPECT_EQ(plan.tensors[w].dtype, DType::kFloat8E4M3FN);
  EXPECT_EQ(plan.tensors[inv].shape, (std::vector<int64_t>{3, 3}));

  const quant::Fp8BlockShape shape{300, 260};
  std::vector<float> tiles(shape.GridSize(), 0.0f), grid(shape.GridSize());
  ASSERT_OK(quant::TileAbsMax(DType::kBFloat16, s.full[0], shape, 0, absl::MakeSpan(tiles)));
  ASSERT_OK(quant::Fp8BlockScaleInv(tiles, absl::MakeSpan(grid)));
  std::vector<uint8_t> q(300 * 260);
  ASSERT_OK(quant::QuantizeFp8Block(DType::kBFloat16, s.full[0], shape, 0, grid,
                                    absl::MakeSpan(q)));
  for (int64_t rows_per_chunk : {300, 129, 64}) {
    SCOPED_TRACE(rows_per_chunk);
    ASSERT_OK_AND_ASSIGN(auto out, Execute(s, plan, Chunks(plan, rows_per_chunk)));
    EXPECT_EQ(out[w], std::string(q.begin(), q.end()));
    EXPECT_EQ(out[inv], std::string(reinterpret_cast<const char*>(grid.data()), 9 * 4));
  }
}

TEST(QuantizePlanTest, StatsMergeInAnyOrderToTheSameBytes) {
  Synthetic s = MakeSynthetic({kDown});
  ASSERT_OK_AND_ASSIGN(ExportPlan plan, ApplyQuantization(s.plan, {"nvfp4", {}}));
  const std::vector<Piece> chunks = Chunks(plan, 3);
  // Three workers, chunks dealt round-robin; their stats travel serialized.
  std::vector<std::string> wire(3);
  for (int k = 0; k < 3; ++k) {
    QuantStats mine;
    for (size_t i = k; i < chunks.size(); i += 3) {
      ASSERT_OK(mine.Accumulate(plan, chunks[i], RowsOf(s, chunks[i])));
    }
    wire[k] = mine.Serialize();
  }
  std::string reference;
  for (const std::vector<int>& order : {std::vector<int>{0, 1, 2}, {2, 0, 1}, {1, 2, 0}}) {
    QuantStats all;
    for (int k : order) {
      ASSERT_OK_AND_ASSIGN(QuantStats part, QuantStats::Parse(wire[k]));
      ASSERT_OK(all.Merge(part));
    }
    ASSERT_OK(all.Finish(plan));
    if (reference.empty()) reference = all.Serialize();
    EXPECT_EQ(all.Serialize(), reference);
  }
  // One worker reading everything agrees.
  QuantStats one;
  for (const Piece& p : plan.pieces) ASSERT_OK(one.Accumulate(plan, p, RowsOf(s, p)));
  ASSERT_OK(one.Finish(plan));
  EXPECT_EQ(one.Serialize(), reference);
  ASSERT_OK_AND_ASSIGN(QuantStats parsed, QuantStats::Parse(reference));
  EXPECT_TRUE(parsed.finished());
  EXPECT_EQ(parsed.weights().begin()->second.cut_blocks.size(), 2u);  // blocks 1 and 4
  EXPECT_THAT(QuantStats::Parse(reference.substr(0, reference.size() - 1)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("truncated")));
  EXPECT_THAT(QuantStats::Parse("nope"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(QuantizePlanTest, FinishNamesMissingAndDuplicatedChunks) {
  Synthetic s = MakeSynthetic({kDown});
  ASSERT_OK_AND_ASSIGN(ExportPlan plan, ApplyQuantization(s.plan, {"nvfp4", {}}));
  QuantStats stats;
  for (size_t i = 1; i < plan.pieces.size(); ++i) {
    ASSERT_OK(stats.Accumulate(plan, plan.pieces[i], RowsOf(s, plan.pieces[i])));
  }
  EXPECT_THAT(stats.Finish(plan), StatusIs(absl::StatusCode::kFailedPrecondition,
                                           AllOf(HasSubstr("down_proj.weight"),
                                                 HasSubstr("never accumulated"))));
  ASSERT_OK(stats.Accumulate(plan, plan.pieces[0], RowsOf(s, plan.pieces[0])));
  ASSERT_OK(stats.Accumulate(plan, plan.pieces[0], RowsOf(s, plan.pieces[0])));
  EXPECT_THAT(stats.Finish(plan), StatusIs(absl::StatusCode::kFailedPrecondition,
                                           HasSubstr("accumulated twice")));
  // Unfinished stats cannot quantize.
  EXPECT_THAT(QuantizeChunk(plan, stats, plan.pieces[0], RowsOf(s, plan.pieces[0])),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not finished")));
}

TEST(QuantizePlanTest, FusedSiblingsShareTheGlobalScale) {
  const std::vector<Weight> qkv = {
      {"model.layers.0.self_attn.q_proj.weight", Role::kQkvWeight, 32, 64, {}},
      {"model.layers.0.self_attn.k_proj.weight", Role::kQkvWeight, 16, 64, {}},
      {"model.layers.0.self_attn.v_proj.weight", Role::kQkvWeight, 16, 64, {}},
      {"model.layers.0.self_attn.o_proj.weight", Role::kAttnOut, 64, 32, {}}};
  Synthetic s = MakeSynthetic(qkv);
  ASSERT_OK_AND_ASSIGN(ExportPlan plan, ApplyQuantization(s.plan, {"nvfp4", {}}));
  ASSERT_OK_AND_ASSIGN(auto out, Execute(s, plan, plan.pieces));
  float amax = 0.0f;
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK_AND_ASSIGN(const float a, quant::AbsMax(DType::kBFloat16, s.full[i]));
    amax = std::max(amax, a);
  }
  ASSERT_OK_AND_ASSIGN(const float shared, quant::Nvfp4WeightScale2(amax));
  for (const char* p : {"q", "k", "v"}) {
    const int w = Find(plan, absl::StrCat("model.layers.0.self_attn.", p, "_proj.weight"));
    EXPECT_EQ(plan.tensors[w].stat_group, Find(plan, "model.layers.0.self_attn.k_proj.weight"));
    EXPECT_EQ(out[Find(plan, absl::StrCat("model.layers.0.self_attn.", p,
                                          "_proj.weight_scale_2"))],
              F32(shared));
  }
  ASSERT_OK_AND_ASSIGN(const float o_amax, quant::AbsMax(DType::kBFloat16, s.full[3]));
  ASSERT_OK_AND_ASSIGN(const float o_scale, quant::Nvfp4WeightScale2(o_amax));
  EXPECT_NE(o_scale, shared);
  EXPECT_EQ(out[Find(plan, "model.layers.0.self_attn.o_proj.weight_scale_2")], F32(o_scale));

  EXPECT_THAT(ApplyQuantization(s.plan, {"nvfp4", {"*.q_proj"}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("fused modules must be quantized alike"),
                             HasSubstr("q_proj"))));
}

TEST(QuantizePlanTest, ModuleTensorsStayInOneFileAndThePlanRoundTrips) {
  Synthetic s = MakeSynthetic({kDown, {"model.layers.0.mlp.up_proj.weight", Role::kDenseFc1,
                                       96, 64, {}}});
  QuantRequest request{"nvfp4", {}, 3000};  // smaller than a module: one module per file
  ASSERT_OK_AND_ASSIGN(ExportPlan plan, ApplyQuantization(s.plan, request));
  ASSERT_EQ(plan.files.size(), 2u);
  uint64_t total = 0;
  for (const HfTensor& t : plan.tensors) {
    EXPECT_EQ(t.file, plan.tensors[t.quant_weight].file) << t.name;
    total += t.bytes;
  }
  EXPECT_EQ(plan.total_bytes, total);
  EXPECT_EQ(plan.files[0].tensors, (std::vector<int>{0, 1, 2}));  // down_proj, then scales
  EXPECT_EQ(plan.files[0].data_bytes, 40u * 48 + 40 * 6 + 4);
  EXPECT_EQ(plan.tensors[1].offset, 40u * 48);

  const std::string wire = EncodePlan(plan);
  ASSERT_OK_AND_ASSIGN(ExportPlan decoded, DecodePlan(wire));
  EXPECT_EQ(EncodePlan(decoded), wire);
  EXPECT_EQ(decoded.tensors[0].quant_part, QuantPart::kWeight);
  EXPECT_EQ(decoded.tensors[0].source_cols, 96);
  EXPECT_EQ(decoded.tensors[2].quant_part, QuantPart::kWeightScale2);
  EXPECT_EQ(decoded.tensors[2].quant_weight, 0);
  // An unquantized plan encodes as before (8 fields per tensor) and is not touched by "none".
  const std::string plain = EncodePlan(s.plan);
  EXPECT_THAT(plain, HasSubstr("[\"model.layers.0.mlp.down_proj.weight\",\"bfloat16\",[40,96],"
                               "-1,0,7680,11,0]"));
  ASSERT_OK_AND_ASSIGN(ExportPlan same, ApplyQuantization(s.plan, {"none", {}}));
  EXPECT_EQ(EncodePlan(same), plain);
  EXPECT_FALSE(IsQuantized(same));
}

TEST(QuantizePlanTest, UnquantizedTensorsAreCopiedAsToday) {
  Synthetic s = MakeSynthetic({kDown, {"model.layers.0.mlp.gate.weight", Role::kRouter, 8, 64,
                                       {}}});
  ASSERT_OK_AND_ASSIGN(ExportPlan plan, ApplyQuantization(s.plan, {"fp8_block", {}}));
  const int router = Find(plan, "model.layers.0.mlp.gate.weight");
  EXPECT_EQ(plan.tensors[router].quant_part, QuantPart::kNone);
  EXPECT_EQ(plan.tensors[router].dtype, DType::kBFloat16);
  ASSERT_OK_AND_ASSIGN(auto out, Execute(s, plan, Chunks(plan, 3)));
  EXPECT_EQ(out[router], s.full[1]);
  for (const Piece& p : plan.pieces) {
    if (p.tensor != router) continue;
    QuantStats empty;  // an unquantized tensor needs no statistics
    EXPECT_THAT(QuantizeChunk(plan, empty, p, RowsOf(s, p)), IsOkAndHolds(RowsOf(s, p)));
    std::string via_scatter_piece, via_quantized;
    ASSERT_OK(ScatterPiece(p, plan.tensors[router], RowsOf(s, p),
                           [&](uint64_t offset, absl::string_view b) {
                             via_scatter_piece += absl::StrCat(offset, ":", b.size(), ";");
                             return absl::OkStatus();
                           }));
    ASSERT_OK(ScatterQuantized(plan, p, RowsOf(s, p),
                               [&](int t, uint64_t offset, absl::string_view b) {
                                 EXPECT_EQ(t, router);
                                 via_quantized += absl::StrCat(offset, ":", b.size(), ";");
                                 return absl::OkStatus();
                               }));
    EXPECT_EQ(via_quantized, via_scatter_piece);
  }
  ASSERT_OK_AND_ASSIGN(QuantSidecarFiles side, QuantSidecars(plan, "{\"model_type\": \"llama\"}"));
  EXPECT_FALSE(side.hf_quant_config_json.has_value());  // block FP8: config.json only
  EXPECT_THAT(side.config_json, HasSubstr("\"modules_to_not_convert\": [\n      "
                                          "\"model.layers.0.mlp.gate\"\n    ]"));
  // An unquantized plan leaves config.json alone, or drops a stale quantization_config.
  ASSERT_OK_AND_ASSIGN(side, QuantSidecars(s.plan, "{\"a\": 1}"));
  EXPECT_EQ(side.config_json, "{\"a\": 1}");
  ASSERT_OK_AND_ASSIGN(side, QuantSidecars(s.plan, "{\"a\": 1, \"quantization_config\": {}}"));
  EXPECT_EQ(side.config_json, "{\n  \"a\": 1\n}\n");
}

TEST(QuantizePlanTest, CheckpointModesSelectTheCalibratedModules) {
  Synthetic s = MakeSynthetic({{"model.layers.0.mlp.up_proj.weight", Role::kDenseFc1, 8, 32, {}},
                               {"model.layers.0.mlp.down_proj.weight", Role::kDenseFc2, 8, 32,
                                {}}});
  s.plan.amax_sources.push_back(
      {false, {"model.layers.0.mlp.down_proj.weight"}, 0, 0, "w", DType::kFloat32});
  // Weight amax only: checkpoint is weight-only NVFP4, checkpoint_fp8 cannot set its
  // input_scale.
  ASSERT_OK_AND_ASSIGN(ExportPlan w4a16, ApplyQuantization(s.plan, {"checkpoint", {}}));
  std::map<std::string, QuantAlgo> algo;
  for (const HfTensor& t : w4a16.tensors) algo[t.name] = t.quant;
  EXPECT_EQ(algo["model.layers.0.mlp.down_proj.weight"], QuantAlgo::kW4A16Nvfp4);
  EXPECT_EQ(algo["model.layers.0.mlp.up_proj.weight"], QuantAlgo::kNone);  // not calibrated
  EXPECT_FALSE(algo.contains("model.layers.0.mlp.down_proj.input_scale"));
  EXPECT_THAT(ApplyQuantization(s.plan, {"checkpoint_fp8", {}}),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("'checkpoint_fp8' needs activation amax "
                                       "(<module>.input_quantizer._amax)"),
                             HasSubstr("use 'checkpoint' or 'fp8_block'"))));
  // With an input amax: NVFP4 and FP8 with input_scale.
  s.plan.amax_sources.push_back(
      {true, {"model.layers.0.mlp.down_proj.weight"}, 0, 0, "i", DType::kFloat32});
  for (const auto& [mode, want] : std::vector<std::pair<std::string, QuantAlgo>>{
           {"checkpoint", QuantAlgo::kNvfp4}, {"checkpoint_fp8", QuantAlgo::kFp8}}) {
    ASSERT_OK_AND_ASSIGN(ExportPlan plan, ApplyQuantization(s.plan, {mode, {}}));
    std::map<std::string, const HfTensor*> by_name;
    for (const HfTensor& t : plan.tensors) by_name[t.name] = &t;
    ASSERT_TRUE(by_name.contains("model.layers.0.mlp.down_proj.input_scale")) << mode;
    const HfTensor& in = *by_name["model.layers.0.mlp.down_proj.input_scale"];
    EXPECT_EQ(in.quant, want);
    EXPECT_EQ(in.scalar, ScalarScale::kInputScale);
    EXPECT_EQ(in.shape, want == QuantAlgo::kFp8 ? std::vector<int64_t>{1}
                                                : std::vector<int64_t>{});
    EXPECT_EQ(plan.amax_sources.size(), 2u);
  }
  // nvfp4 quantizes every module from its weights and reads only the activation amax: input
  // scales where there is one, weight-only NVFP4 elsewhere, declared per layer.
  ASSERT_OK_AND_ASSIGN(ExportPlan nvfp4, ApplyQuantization(s.plan, {"nvfp4", {}}));
  algo.clear();
  for (const HfTensor& t : nvfp4.tensors) algo[t.name] = t.quant;
  EXPECT_EQ(algo["model.layers.0.mlp.down_proj.input_scale"], QuantAlgo::kNvfp4);
  EXPECT_EQ(algo["model.layers.0.mlp.up_proj.weight"], QuantAlgo::kW4A16Nvfp4);
  EXPECT_FALSE(algo.contains("model.layers.0.mlp.up_proj.input_scale"));
  ASSERT_EQ(nvfp4.amax_sources.size(), 1u);
  EXPECT_TRUE(nvfp4.amax_sources[0].input);
  ASSERT_OK_AND_ASSIGN(QuantSidecarFiles side, QuantSidecars(nvfp4, "{}", {"mxport", "t"}));
  EXPECT_THAT(*side.hf_quant_config_json,
              HasSubstr("\"quant_algo\": \"MIXED_PRECISION\",\n    \"kv_cache_quant_algo\": "
                        "null,\n    \"quantized_layers\": {\n      \"model.layers.0.mlp."
                        "down_proj\": {\n        \"quant_algo\": \"NVFP4\",\n        "
                        "\"group_size\": 16\n      },\n      \"model.layers.0.mlp.up_proj\": {"
                        "\n        \"quant_algo\": \"W4A16_NVFP4\","));
  // Weight amax alone: every module weight-only, nothing read from the checkpoint.
  s.plan.amax_sources.pop_back();
  ASSERT_OK_AND_ASSIGN(nvfp4, ApplyQuantization(s.plan, {"nvfp4", {}}));
  for (const HfTensor& t : nvfp4.tensors) EXPECT_EQ(t.quant, QuantAlgo::kW4A16Nvfp4) << t.name;
  EXPECT_TRUE(nvfp4.amax_sources.empty());
}

TEST(QuantizePlanTest, ErrorsNameTheTensorAndTheAllowedModes) {
  Synthetic s = MakeSynthetic({{"model.layers.0.mlp.down_proj.weight", Role::kDenseFc2, 8, 24,
                                {}}});
  EXPECT_THAT(ApplyQuantization(s.plan, {"nvfp4", {}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("model.layers.0.mlp.down_proj.weight"),
                             HasSubstr("input dimension of 24, not a multiple of 16"))));
  EXPECT_THAT(ApplyQuantization(s.plan, {"fp8_block", {}}), IsOk());
  EXPECT_THAT(ApplyQuantization(s.plan, {"int4", {}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("unknown quantization 'int4'; accepted: none, nvfp4, fp8, "
                                 "fp8_block, checkpoint, checkpoint_fp8")));
  // No quantizer state in the checkpoint.
  EXPECT_THAT(ApplyQuantization(s.plan, {"checkpoint_fp8", {}}),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("has no quantizer amax (<module>.weight_quantizer._amax)")));
  EXPECT_THAT(ApplyQuantization(s.plan, {"fp8", {}}),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("has none for model.layers.0.mlp.down_proj;"),
                             HasSubstr("'fp8_block' (dynamic activations, no calibration)"))));
  EXPECT_THAT(ApplyQuantization(s.plan, {"checkpoint", {}}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("ModelOpt calibration")));
  EXPECT_THAT(ApplyQuantization(s.plan, {"fp8_block", {"*.nothing"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'*.nothing'")));
  EXPECT_THAT(ApplyQuantization(s.plan, {"none", {"*"}}),
              StatusIs(absl::StatusCode::kInvalidArgument));

  Synthetic odd = MakeSynthetic({{"model.layers.0.mlp.down_proj.weight", Role::kDenseFc2, 8, 32,
                                  {15}}});
  EXPECT_THAT(ApplyQuantization(odd.plan, {"nvfp4", {}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("model.layers.0.mlp.down_proj.weight"),
                             HasSubstr("columns [0, 15)"))));
  odd.plan.tensors[0].dtype = DType::kInt32;
  EXPECT_THAT(ApplyQuantization(odd.plan, {"fp8_block", {}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("down_proj.weight is int32"), HasSubstr("bfloat16"))));
  ASSERT_OK_AND_ASSIGN(ExportPlan quantized, ApplyQuantization(s.plan, {"fp8_block", {}}));
  EXPECT_THAT(ApplyQuantization(quantized, {"fp8_block", {}}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("already quantized")));
  // The copy path refuses a quantized tensor.
  EXPECT_THAT(ScatterPiece(quantized.pieces[0], quantized.tensors[0], "",
                           [](uint64_t, absl::string_view) { return absl::OkStatus(); }),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("ScatterQuantized")));
}

}  // namespace
}  // namespace mxport::exporter
