// GPU-labelled: CudaQuantBackend against the CPU backend, byte for byte, through the
// quant::Backend interface (three source dtypes, strided regions, block FP8 regions starting
// inside a tile, values that reach every regime), through QuantizeChunk on the chunks of real
// quantized plans (a synthetic weight whose TP splits cut NVFP4 blocks and FP8 tiles, and the
// Megatron fixtures in modes nvfp4, fp8_block, checkpoint, fp8 and checkpoint_fp8), and
// through a whole distributed export by in-process workers, which must write the files of the
// CPU export.
// Skips, saying so, where no GPU is visible. The fixtures are read from $MXPORT_FIXTURES_DIR
// when set (a device machine), else from the build tree.
#include "worker/cuda/quant_backend.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/export/checkpoint_planner.h"
#include "common/export/local_executor.h"
#include "common/export/quantize_plan.h"
#include "common/fs/fs_testutil.h"
#include "common/quant/quant.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/core/plan_executor.h"
#include "worker/core/schedule.h"
#include "worker/cuda/device.h"

namespace mxport::cuda {
namespace {

using exporter::ExportPlan;
using exporter::Piece;

bool HaveGpu() {
  auto devices = ListDevices();
  return devices.ok() && !devices->empty();
}

std::string Fixtures() {
  const char* env = std::getenv("MXPORT_FIXTURES_DIR");
  return env != nullptr ? env : std::string(MXPORT_BINARY_DIR) + "/fixtures/megatron";
}

// Elements of `dtype`: mostly normal values of varied scale, with zeros, tiny and huge values
// and (where `bits`) random bit patterns (NaN, Inf, subnormals).
std::string RandomElements(DType dtype, size_t n, uint32_t seed, bool bits) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int elem = ElementBytes(dtype);
  std::string out(n * elem, '\0');
  float scale = 1.0f;
  for (size_t i = 0; i < n; ++i) {
    if (i % 16 == 0) scale = std::ldexp(1.0f, static_cast<int>(rng() % 60) - 40);
    float v = normal(rng) * scale;
    const uint64_t pick = rng() % 1000;
    if (pick < 20) v = 0.0f;
    if (bits && pick >= 995) {
      const uint32_t b = static_cast<uint32_t>(rng());
      std::memcpy(&v, &b, 4);
    }
    if (dtype == DType::kFloat32) {
      std::memcpy(out.data() + i * elem, &v, 4);
    } else {
      const uint16_t h = dtype == DType::kBFloat16 ? quant::FloatToBFloat16Bits(v)
                                                   : quant::FloatToHalfBits(v);
      std::memcpy(out.data() + i * elem, &h, 2);
    }
  }
  return out;
}

class CudaQuantBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveGpu()) GTEST_SKIP() << "no GPU visible: the CUDA quantization backend not exercised";
    auto backend = CudaQuantBackend::Create({});
    ASSERT_OK(backend.status());
    owned_ = *std::move(backend);
    gpu_ = owned_.get();
    EXPECT_EQ(gpu_->name(), "cuda:0");
  }
  std::unique_ptr<CudaQuantBackend> owned_;
  quant::Backend* gpu_ = nullptr;
};

struct Region {
  int64_t rows, cols, stride, c0, row_begin;  // c0: first column within the source rows
};

TEST_F(CudaQuantBackendTest, RegionsEqualTheCpuBackend) {
  quant::Backend& cpu = quant::CpuBackend();
  const Region regions[] = {{1, 16, 16, 0, 0},       {37, 208, 336, 48, 3},
                            {256, 4096, 4096, 0, 0}, {129, 1040, 2080, 520, 130},
                            {3, 96, 200, 8, 255},    {512, 2048, 7168, 2560, 0}};
  int calls = 0;
  for (const DType dtype : {DType::kBFloat16, DType::kFloat16, DType::kFloat32}) {
    const int elem = ElementBytes(dtype);
    for (const Region& g : regions) {
      SCOPED_TRACE(absl::StrCat(DTypeName(dtype), " ", g.rows, "x", g.cols, " stride ", g.stride,
                                " at column ", g.c0));
      const std::string m =
          RandomElements(dtype, g.rows * g.stride, g.rows * 31 + g.cols, /*bits=*/true);
      const quant::SourceRows src{dtype, absl::string_view(m).substr(g.c0 * elem), g.rows,
                                  g.cols, g.stride};
      // Outputs one byte wider per row than written, pre-filled: untouched bytes must agree too.
      auto run = [&](quant::Backend& b, int what) {
        const int64_t pw = g.cols / 2 + 1, sw = g.cols / 16 + 1, w = g.cols + 1;
        std::vector<uint8_t> a(g.rows * (what == 0 ? pw : w), 0x5A), s(g.rows * sw, 0x5A);
        absl::Status st;
        if (what == 0) {
          st = b.QuantizeNvfp4(src, 3.7e-5f, {absl::MakeSpan(a), pw}, {absl::MakeSpan(s), sw});
        } else if (what == 1) {
          st = b.QuantizeFp8(src, 0.0123f, {absl::MakeSpan(a), w});
        } else {
          // A tensor whose columns [c0, c0 + cols) the region is, tiles of varied scale.
          const quant::Fp8BlockShape shape{g.row_begin + g.rows + 5, g.stride};
          std::vector<float> grid(shape.GridSize());
          for (size_t i = 0; i < grid.size(); ++i) grid[i] = std::ldexp(1.0f + i % 7, i % 23 - 11);
          st = b.QuantizeFp8Block(src, shape, g.row_begin, g.c0, grid, {absl::MakeSpan(a), w});
        }
        EXPECT_OK(st) << b.name();
        a.insert(a.end(), s.begin(), s.end());
        return a;
      };
      for (int what = 0; what < 3; ++what) {
        EXPECT_TRUE(run(cpu, what) == run(*gpu_, what)) << "format " << what;
        ++calls;
      }
    }
  }
  EXPECT_EQ(calls, 54);
  // Bad arguments: the same error on both, nothing written.
  const std::string m = RandomElements(DType::kBFloat16, 64, 1, false);
  std::vector<uint8_t> out(64, 0);
  for (quant::Backend* b : {&cpu, gpu_}) {
    EXPECT_THAT(b->QuantizeNvfp4({DType::kBFloat16, m, 2, 24, 32}, 1.0f,
                                 {absl::MakeSpan(out), 12}, {absl::MakeSpan(out), 2}),
                testing::StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_THAT(b->QuantizeFp8({DType::kBFloat16, m, 3, 32, 32}, 1.0f, {absl::MakeSpan(out), 32}),
                testing::StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_THAT(b->QuantizeFp8({DType::kInt8, m, 1, 32, 32}, 1.0f, {absl::MakeSpan(out), 32}),
                testing::StatusIs(absl::StatusCode::kInvalidArgument));
  }
  for (uint8_t b : out) EXPECT_EQ(b, 0);
}

// ---- Quantized plans.

// A bf16 weight [rows, cols] split on its columns at `splits` over source files (row-parallel
// TP), planned as BuildPlan would, then quantized in `mode`. `sources` gets each file's rows.
ExportPlan SyntheticPlan(const std::string& mode, int64_t rows, int64_t cols,
                         const std::vector<int64_t>& splits, std::vector<std::string>& sources) {
  ExportPlan plan;
  plan.arch = *exporter::FindArch("LlamaForCausalLM");
  exporter::HfTensor t;
  t.name = "model.layers.0.self_attn.o_proj.weight";
  t.shape = {rows, cols};
  t.role = exporter::Role::kAttnOut;
  t.layer = 0;
  t.bytes = rows * cols * 2;
  plan.tensors.push_back(t);
  const std::string full = RandomElements(DType::kBFloat16, rows * cols, 99, false);
  std::vector<int64_t> bounds = {0};
  bounds.insert(bounds.end(), splits.begin(), splits.end());
  bounds.push_back(cols);
  for (size_t k = 0; k + 1 < bounds.size(); ++k) {
    const int64_t c0 = bounds[k], width = bounds[k + 1] - c0;
    std::string bytes;
    for (int64_t r = 0; r < rows; ++r) bytes += full.substr((r * cols + c0) * 2, width * 2);
    Piece p;
    p.tensor = 0;
    p.source = static_cast<int>(k);
    p.key = absl::StrCat("key", k);
    p.src_rows = p.rows = rows;
    p.src_cols = p.cols = width;
    p.dst_col = c0;
    plan.pieces.push_back(p);
    plan.sources.push_back({absl::StrCat("/src", k), absl::StrCat("mp_rank_0", k),
                            megatron::TpRank(k), megatron::PpRank(0), megatron::EpRank(0)});
    sources.push_back(std::move(bytes));
  }
  exporter::QuantRequest request;
  request.mode = mode;
  auto quantized = exporter::ApplyQuantization(std::move(plan), request);
  EXPECT_OK(quantized.status());
  return quantized.ok() ? *std::move(quantized) : ExportPlan{};
}

ExportPlan FixturePlan(const std::string& layout, const std::string& mode) {
  exporter::CheckpointPlanRequest request;
  request.source_dir = Fixtures() + "/layouts/" + layout;
  request.hf_config_dir = Fixtures() + "/models/qwen3_moe/hf";
  request.options.max_shard_size = 100 * 1024;
  request.quantization.mode = mode;
  auto cp = exporter::PlanCheckpoint(*fs::PosixFileSystem(), request);
  EXPECT_OK(cp.status()) << layout << " " << mode;
  return cp.ok() ? std::move(cp->plan) : ExportPlan{};
}

struct Counts {
  int chunks = 0;      // quantized chunks compared
  int cut_blocks = 0;  // of them, NVFP4 chunks whose edges cut a block
};

// Every chunk of a quantized weight (pieces cut into `chunk_bytes`): QuantizeChunk on the GPU
// gives the bytes it gives on the CPU.
void ExpectChunksEqual(const ExportPlan& plan, quant::Backend& gpu, uint64_t chunk_bytes,
                       const std::function<absl::StatusOr<std::string>(const Piece&)>& read,
                       exporter::SourceReader* reader, Counts& counts) {
  std::vector<Piece> chunks;
  for (const Piece& p : plan.pieces) {
    if (plan.tensors[p.tensor].quant_part != exporter::QuantPart::kWeight) continue;
    for (const Piece& c : worker::ChunkPiece(plan, p, chunk_bytes)) chunks.push_back(c);
  }
  ASSERT_FALSE(chunks.empty());
  exporter::QuantStats stats;
  for (const Piece& c : chunks) {
    ASSERT_OK_AND_ASSIGN(const std::string rows, read(c));
    ASSERT_OK(stats.Accumulate(plan, c, rows));
  }
  ASSERT_OK(stats.Finish(plan, reader));
  for (const Piece& c : chunks) {
    ASSERT_OK_AND_ASSIGN(const std::string rows, read(c));
    ASSERT_OK_AND_ASSIGN(const std::string want, exporter::QuantizeChunk(plan, stats, c, rows));
    ASSERT_OK_AND_ASSIGN(const std::string got,
                         exporter::QuantizeChunk(plan, stats, c, rows, &gpu));
    EXPECT_TRUE(got == want) << plan.tensors[c.tensor].name << " rows " << c.dst_row << "+"
                             << c.rows << " cols " << c.dst_col << "+" << c.cols;
    ++counts.chunks;
    const exporter::QuantAlgo algo = plan.tensors[c.tensor].quant;
    if ((algo == exporter::QuantAlgo::kNvfp4 || algo == exporter::QuantAlgo::kW4A16Nvfp4) &&
        (c.dst_col % 16 != 0 || (c.dst_col + c.cols) % 16 != 0)) {
      ++counts.cut_blocks;
    }
  }
}

TEST_F(CudaQuantBackendTest, ChunksOfSyntheticPlansEqualTheCpu) {
  for (const char* mode : {"nvfp4", "fp8_block"}) {
    SCOPED_TRACE(mode);
    std::vector<std::string> sources;
    // Splits at 200, 520, 776: every one cuts an NVFP4 block; 200 and 776 cut FP8 tiles.
    const ExportPlan plan = SyntheticPlan(mode, 300, 1040, {200, 520, 776}, sources);
    ASSERT_FALSE(plan.tensors.empty());
    for (const uint64_t chunk_bytes : {uint64_t{1} << 20, uint64_t{7} * 1040, uint64_t{1}}) {
      Counts counts;
      ExpectChunksEqual(
          plan, *gpu_, chunk_bytes,
          [&](const Piece& c) -> absl::StatusOr<std::string> {
            const size_t row = c.src_cols * 2;
            return sources[c.source].substr(c.src_row * row, c.rows * row);
          },
          nullptr, counts);
      EXPECT_GE(counts.chunks, 4);
      if (std::string(mode) == "nvfp4") {
        EXPECT_EQ(counts.cut_blocks, counts.chunks);
      }
    }
  }
}

TEST_F(CudaQuantBackendTest, ChunksOfFixturePlansEqualTheCpu) {
  struct Case {
    const char* layout;
    const char* mode;
  };
  Counts total;
  for (const Case& c : {Case{"qwen3_moe_tp2_ep2_etp2", "nvfp4"},
                        Case{"qwen3_moe_tp2_ep2_etp2", "fp8_block"},
                        Case{"qwen3_moe_tp2_ep2_modelopt", "checkpoint"},
                        Case{"qwen3_moe_tp2_ep2_modelopt", "fp8"},
                        Case{"qwen3_moe_tp2_ep2_modelopt", "checkpoint_fp8"}}) {
    SCOPED_TRACE(absl::StrCat(c.layout, " ", c.mode));
    const ExportPlan plan = FixturePlan(c.layout, c.mode);
    ASSERT_TRUE(exporter::IsQuantized(plan));
    exporter::SourceReader reader(*fs::PosixFileSystem(), plan);
    ExpectChunksEqual(
        plan, *gpu_, 1024, [&](const Piece& p) { return reader.ReadRows(p); }, &reader, total);
  }
  std::printf("compared %d fixture chunks on the GPU, %d with cut NVFP4 blocks\n", total.chunks,
              total.cut_blocks);
  EXPECT_GT(total.cut_blocks, 0);
}

// ---- A whole export: in-process workers quantizing on the GPU write the CPU export's files.

std::map<std::string, std::string> Files(const std::string& dir, const ExportPlan& plan) {
  std::map<std::string, std::string> out;
  for (const auto& f : plan.files) {
    auto bytes = fs::ReadFileToString(*fs::PosixFileSystem(), dir + "/" + f.name);
    out[f.name] = bytes.ok() ? *bytes : "<missing>";
  }
  return out;
}

TEST_F(CudaQuantBackendTest, DistributedExportEqualsTheCpuExport) {
  fs::testutil::PosixTempDir dir;
  for (const char* mode : {"nvfp4", "fp8_block", "checkpoint"}) {
    const char* layout =
        std::string(mode) == "checkpoint" ? "qwen3_moe_tp2_ep2_modelopt" : "qwen3_moe_tp2_ep2_etp2";
    SCOPED_TRACE(absl::StrCat(layout, " ", mode));
    const ExportPlan plan = FixturePlan(layout, mode);
    ASSERT_TRUE(exporter::IsQuantized(plan));
    const std::string ref = absl::StrCat(dir.path(), "/cpu-", mode);
    const std::string out = absl::StrCat(dir.path(), "/gpu-", mode);
    ASSERT_OK(fs::PosixFileSystem()->CreateDirs(ref));
    ASSERT_OK(fs::PosixFileSystem()->CreateDirs(out));
    ASSERT_OK(exporter::ExecutePlanLocally(*fs::PosixFileSystem(), plan, ref));
    const int workers = 3;
    auto group = transport::NewLoopbackGroup(workers, absl::Seconds(60));
    std::vector<absl::Status> status(workers);
    std::vector<std::thread> threads;
    for (int r = 0; r < workers; ++r) {
      threads.emplace_back([&, r] {
        worker::PlanExecutor::Options o;
        o.fs = fs::PosixFileSystem();
        o.transport = group[r].get();
        o.plan = &plan;
        o.staging_dir = absl::StrCat(out, "/.staging/w", r);
        o.chunk_bytes = 4096;
        o.quant_backend = gpu_;  // one device backend shared by every writer thread
        o.publish = [&](const worker::StagedFile& f) {
          return fs::PosixFileSystem()->Rename(f.staged_path, out + "/" + f.name);
        };
        worker::PlanExecutor executor(o);
        status[r] = executor.Run();
      });
    }
    for (auto& t : threads) t.join();
    for (const absl::Status& s : status) EXPECT_OK(s);
    const auto want = Files(ref, plan);
    EXPECT_EQ(want.size(), plan.files.size());
    EXPECT_TRUE(Files(out, plan) == want);
  }
}

}  // namespace
}  // namespace mxport::cuda
