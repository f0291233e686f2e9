// `mxport inspect` against the expectations torch itself recorded for the committed fixtures.
#include "tools/mxport/inspect_command.h"

#include <map>
#include <sstream>

#include "common/fs/file_system.h"
#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace mxport::cli {
namespace {

const std::string kDir = std::string(MXPORT_SOURCE_DIR) + "/tests/fixtures/torch211";

Json Expected() {
  auto text = fs::ReadFileToString(*fs::PosixFileSystem(), kDir + "/expected.json");
  EXPECT_TRUE(text.ok());
  return ParseJson(*text, "expected.json").value();
}

TEST(InspectCommandTest, ListsEveryTensorWithDtypeShapeAndBytes) {
  const Json expected = Expected();
  for (const char* file : {"dtypes.pt", "views.pt", "model_optim_rng.pt", "state_dict.pt"}) {
    SCOPED_TRACE(file);
    ASSERT_OK_AND_ASSIGN(OrderedJson report, InspectFile({kDir + "/" + file, true, nullptr}));
    EXPECT_EQ(report["format"], "torch.save");
    const Json& want = expected["files"][file]["tensors"];
    ASSERT_EQ(report["tensors"].size(), want.size());
    uint64_t total = 0;
    for (const auto& t : report["tensors"]) {
      const std::string name = t["name"].get<std::string>();
      ASSERT_TRUE(want.contains(name)) << name;
      EXPECT_EQ(t["dtype"].get<std::string>(), want[name]["dtype"].get<std::string>()) << name;
      EXPECT_EQ(t["shape"].get<std::vector<int64_t>>(),
                want[name]["shape"].get<std::vector<int64_t>>()) << name;
      EXPECT_EQ(t["bytes"].get<uint64_t>(), want[name]["nbytes"].get<uint64_t>()) << name;
      total += t["bytes"].get<uint64_t>();
    }
    EXPECT_EQ(report["total_bytes"].get<uint64_t>(), total);
  }
}

TEST(InspectCommandTest, ShowsMegatronEntries) {
  ASSERT_OK_AND_ASSIGN(OrderedJson report,
                       InspectFile({kDir + "/model_optim_rng.pt", true, nullptr}));
  const auto& entries = report["entries"];
  EXPECT_EQ(entries["iteration"], "1000");
  EXPECT_EQ(entries["checkpoint_version"], "3");
  EXPECT_EQ(entries["args.hidden_size"], "64");
  EXPECT_EQ(entries["args.params_dtype"], "torch.bfloat16");
  EXPECT_EQ(entries["args.normalization"], "'RMSNorm'");
  // The text form lists the same tensors.
  std::ostringstream text;
  ASSERT_OK(RunInspect({kDir + "/model_optim_rng.pt", false, nullptr}, text));
  EXPECT_NE(text.str().find("decoder.layers.0.mlp.experts.linear_fc1.weight0"), std::string::npos);
  EXPECT_NE(text.str().find("args.num_experts = 4"), std::string::npos);
}

TEST(InspectCommandTest, SafetensorsAndBadFiles) {
  const std::string path = ::testing::TempDir() + "/inspect.safetensors";
  // A real file written by hand: 8-byte length, header padded to 8, data.
  std::string header = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  while (header.size() % 8) header += ' ';
  std::string file(8, '\0');
  file[0] = static_cast<char>(header.size());
  file += header + std::string(8, '\0');
  ASSERT_OK(fs::WriteFileAtomically(*fs::PosixFileSystem(), path, file));
  ASSERT_OK_AND_ASSIGN(OrderedJson report, InspectFile({path, true, nullptr}));
  EXPECT_EQ(report["format"], "safetensors");
  ASSERT_EQ(report["tensors"].size(), 1u);
  EXPECT_EQ(report["tensors"][0]["dtype"], "float32");
  EXPECT_THAT(InspectFile({kDir + "/legacy_format.pt", true, nullptr}),
              ::mxport::testing::StatusIs(absl::StatusCode::kUnimplemented,
                                          ::testing::HasSubstr("legacy")));
}

}  // namespace
}  // namespace mxport::cli
