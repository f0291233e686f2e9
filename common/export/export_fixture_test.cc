// The engine against real-PyTorch fixtures (tests/fixtures/make_megatron_fixtures.py): every
// layout of every model is planned and executed in-process, and every exported tensor must
// equal the HF original (read from the torch.save'd model.pt by the torch reader, not by our
// writer) bit for bit; the same model exported from different layouts must give byte-identical
// files.
#include <map>
#include <string>

#include "common/export/checkpoint_planner.h"
#include "common/export/local_executor.h"
#include "common/fs/fs_testutil.h"
#include "common/json/json.h"
#include "common/safetensors/reader.h"
#include "common/testing/status_matchers.h"
#include "common/torch/torch_file.h"
#include "gtest/gtest.h"

namespace mxport::exporter {
namespace {

using ::mxport::testing::StatusIs;
using ::testing::HasSubstr;

const std::string kFixtures = std::string(MXPORT_BINARY_DIR) + "/fixtures/megatron";

Json Catalog() {
  auto text = fs::ReadFileToString(*fs::PosixFileSystem(), kFixtures + "/catalog.json");
  EXPECT_TRUE(text.ok()) << text.status() << " (run ctest, or make_megatron_fixtures.py)";
  if (!text.ok()) return Json::array();
  auto json = ParseJson(*text, "catalog.json");
  return json.ok() ? *json : Json::array();
}

// All files of an export directory, by name.
std::map<std::string, std::string> ReadDir(const std::string& dir) {
  std::map<std::string, std::string> out;
  fs::FileSystem& fs = *fs::PosixFileSystem();
  auto names = fs.ListDir(dir);
  EXPECT_TRUE(names.ok());
  for (const std::string& name : *names) {
    if (name == ".staging") continue;
    auto bytes = fs::ReadFileToString(fs, dir + "/" + name);
    EXPECT_TRUE(bytes.ok()) << bytes.status();
    out[name] = *bytes;
  }
  return out;
}

class ExportFixtureTest : public ::testing::Test {
 protected:
  // Plans and exports `layout` into a fresh directory; returns its files.
  std::map<std::string, std::string> Export(const Json& layout, uint64_t max_shard_size) {
    CheckpointPlanRequest request;
    request.source_dir = kFixtures + "/" + layout["dir"].get<std::string>();
    request.hf_config_dir = kFixtures + "/" + layout["expected"].get<std::string>();
    request.options.max_shard_size = max_shard_size;
    auto cp = PlanCheckpoint(*fs::PosixFileSystem(), request);
    EXPECT_TRUE(cp.ok()) << cp.status();
    if (!cp.ok()) return {};
    const std::string out = dir_.path() + "/" + layout["name"].get<std::string>();
    EXPECT_OK(fs::PosixFileSystem()->CreateDirs(out));
    EXPECT_OK(ExecutePlanLocally(*fs::PosixFileSystem(), cp->plan, out));
    return ReadDir(out);
  }

  fs::testutil::PosixTempDir dir_;
};

TEST_F(ExportFixtureTest, EveryLayoutReproducesTheHfTensorsBitForBit) {
  const Json catalog = Catalog();
  ASSERT_GE(catalog.size(), 30u);
  std::map<std::string, std::map<std::string, std::string>> reference;  // model -> files
  int tensors_checked = 0;
  for (const Json& layout : catalog) {
    const std::string name = layout["name"].get<std::string>();
    SCOPED_TRACE(name);
    // A small shard size so that every model spans several files.
    std::map<std::string, std::string> files = Export(layout, 200 * 1024);
    ASSERT_TRUE(files.contains("model.safetensors.index.json"));
    auto index = ParseJson(files["model.safetensors.index.json"], "index");
    ASSERT_TRUE(index.ok());
    const Json& weight_map = (*index)["weight_map"];

    auto original = torch::TorchFile::Open(
        *fs::PosixFileSystem(),
        kFixtures + "/" + layout["expected"].get<std::string>() + "/model.pt");
    ASSERT_TRUE(original.ok()) << original.status();
    std::map<std::string, std::unique_ptr<safetensors::Reader>> readers;
    uint64_t total = 0;
    for (const torch::TensorEntry& entry : (*original)->tensors()) {
      SCOPED_TRACE(entry.path);
      ASSERT_TRUE(weight_map.contains(entry.path)) << "missing from the export";
      const std::string file = weight_map[entry.path].get<std::string>();
      if (!readers.contains(file)) {
        auto reader = safetensors::Reader::Open(*fs::PosixFileSystem(),
                                                dir_.path() + "/" + name + "/" + file);
        ASSERT_TRUE(reader.ok()) << reader.status();
        readers[file] = std::move(*reader);
      }
      auto want = (*original)->ReadTensor(*entry.tensor);
      ASSERT_TRUE(want.ok());
      auto got = readers[file]->ReadTensor(entry.path);
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_TRUE(*got == *want) << "bytes differ";
      const safetensors::TensorEntry* e = readers[file]->header().Find(entry.path);
      EXPECT_EQ(e->shape, entry.tensor->shape);
      EXPECT_EQ(e->dtype, entry.tensor->dtype);
      total += want->size();
      ++tensors_checked;
    }
    EXPECT_EQ(weight_map.size(), (*original)->tensors().size()) << "extra tensors exported";
    EXPECT_EQ((*index)["metadata"]["total_size"].get<uint64_t>(), total);
    EXPECT_GT(files.size(), 2u) << "expected several shards";

    // Same model, any layout: byte-identical files.
    const std::string model = layout["model"].get<std::string>();
    if (!reference.contains(model)) {
      reference[model] = files;
    } else {
      ASSERT_EQ(files.size(), reference[model].size());
      for (const auto& [file, bytes] : files) {
        EXPECT_TRUE(bytes == reference[model][file]) << file << " differs from the first layout";
      }
    }
  }
  EXPECT_GT(tensors_checked, 3000);
  EXPECT_GE(reference.size(), 6u);
}

// Scans one layout into manifests so a test can damage them.
struct Scanned {
  megatron::ModelConfig config;
  megatron::LegacyCheckpoint checkpoint;
  std::vector<megatron::RankManifest> manifests;
};

Scanned Scan(const std::string& layout) {
  Scanned s;
  fs::FileSystem& fs = *fs::PosixFileSystem();
  auto ckpt = megatron::DiscoverLegacyCheckpoint(fs, kFixtures + "/layouts/" + layout);
  EXPECT_TRUE(ckpt.ok()) << ckpt.status();
  s.checkpoint = *ckpt;
  auto config = megatron::ReadModelConfig(fs, s.checkpoint.files[0].path);
  EXPECT_TRUE(config.ok()) << config.status();
  s.config = *config;
  EXPECT_OK(megatron::ResolveRanks(s.config, s.checkpoint));
  for (const auto& f : s.checkpoint.files) {
    auto m = megatron::ScanRankFile(fs, f.path, s.config.vpp);
    EXPECT_TRUE(m.ok()) << m.status();
    s.manifests.push_back(*m);
  }
  return s;
}

absl::StatusOr<ExportPlan> Plan(const Scanned& s, const PlanOptions& options = {}) {
  auto arch = FindArch("Qwen3MoeForCausalLM");
  EXPECT_TRUE(arch.ok());
  return BuildPlan(s.config, **arch, s.checkpoint.files, s.manifests, options);
}

TEST(ExportValidationTest, MissingExpertKeyIsNamed) {
  Scanned s = Scan("qwen3_moe_tp2_pp2_ep4");
  ASSERT_TRUE(Plan(s).ok());
  // Drop local expert 1 of layer 0 from every file of pp 1, ep 2.
  for (size_t i = 0; i < s.manifests.size(); ++i) {
    if (s.checkpoint.files[i].pp.value() != 1 || s.checkpoint.files[i].ep.value() != 2) continue;
    auto& entries = s.manifests[i].entries;
    std::erase_if(entries, [](const megatron::ManifestEntry& e) {
      return e.key == "decoder.layers.0.mlp.experts.linear_fc2.weight1";
    });
  }
  // pp 1 starts at global layer 3; ep 2 owns experts 4 and 5.
  EXPECT_THAT(Plan(s), StatusIs(absl::StatusCode::kFailedPrecondition,
                                ::testing::AllOf(
                                    HasSubstr("model.layers.3.mlp.experts.5.down_proj.weight: "
                                              "missing"),
                                    HasSubstr("decoder.layers.0.mlp.experts.linear_fc2.weight1"),
                                    HasSubstr("pp=1 ep=2"))));
}

TEST(ExportValidationTest, TwoRanksGivingTheSameExpertIsAnError) {
  Scanned s = Scan("qwen3_moe_ep2");
  PlanOptions options;
  options.expert_map = {{0, 1, 2, 3}, {3, 4, 5, 6}};
  EXPECT_THAT(Plan(s, options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("global expert 3 is claimed by EP rank 0 (local 3) and EP rank "
                                 "1 (local 0)")));
  // A valid non-contiguous placement plans fine and names experts by the map.
  options.expert_map = {{7, 5, 3, 1}, {6, 4, 2, 0}};
  auto plan = Plan(s, options);
  ASSERT_TRUE(plan.ok()) << plan.status();
  bool found = false;
  for (const Piece& p : plan->pieces) {
    if (plan->tensors[p.tensor].name == "model.layers.0.mlp.experts.7.down_proj.weight") {
      EXPECT_EQ(plan->sources[p.source].ep.value(), 0);
      EXPECT_EQ(p.key, "decoder.layers.0.mlp.experts.linear_fc2.weight0");
      found = true;
    }
  }
  EXPECT_TRUE(found);
}

TEST(ExportValidationTest, ReplicaFilesAreReadOnce) {
  Scanned s = Scan("qwen3_moe_ep2");
  // A second copy of a rank file (a DP replica) holds the same data: it is planned, never read.
  s.checkpoint.files.push_back(s.checkpoint.files[0]);
  s.manifests.push_back(s.manifests[0]);
  s.checkpoint.files.back().dir_name = "mp_rank_00_001_copy";
  auto plan = Plan(s);
  EXPECT_TRUE(plan.ok()) << plan.status();  // replicas are read once
  EXPECT_EQ(plan->sources.size(), 3u);
  for (const Piece& p : plan->pieces) EXPECT_NE(p.source, 2);
}

TEST(ExportValidationTest, MisShapedPieceIsNamed) {
  Scanned s = Scan("qwen3_moe_tp2");
  for (auto& e : s.manifests[1].entries) {
    if (e.key == "decoder.layers.2.self_attention.linear_proj.weight") e.desc.shape[1] += 1;
  }
  EXPECT_THAT(Plan(s), StatusIs(absl::StatusCode::kFailedPrecondition,
                                ::testing::AllOf(HasSubstr("mp_rank_01"),
                                                 HasSubstr("linear_proj.weight' has shape"))));
}

TEST(ExportValidationTest, MissingRankDirectoryIsNamed) {
  Scanned s = Scan("qwen3_moe_tp2_pp2_ep4");
  for (size_t i = 0; i < s.checkpoint.files.size(); ++i) {
    if (s.checkpoint.files[i].dir_name == "mp_rank_01_001_003") {
      s.checkpoint.files.erase(s.checkpoint.files.begin() + i);
      s.manifests.erase(s.manifests.begin() + i);
      break;
    }
  }
  // This ETP=1 layout writes the experts of ep 3, pp 1 only into mp_rank_01_001_003.
  EXPECT_THAT(Plan(s), StatusIs(absl::StatusCode::kFailedPrecondition,
                                HasSubstr("mp_rank_??_001_003 for the experts of ep=3 pp=1")));
}

}  // namespace
}  // namespace mxport::exporter
