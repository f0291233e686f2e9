// Reads every fixture written by real PyTorch (tests/fixtures/make_torch_fixtures.py) and
// checks each tensor bit for bit, and each plain value, against the expectations the script
// computed with torch itself. Runs over the committed PyTorch 2.11 set and the set CI
// regenerates with Debian's PyTorch 1.13.
#include <filesystem>
#include <map>
#include <string>

#include "common/fs/file_system.h"
#include "common/json/json.h"
#include "common/testing/status_matchers.h"
#include "common/torch/torch_file.h"
#include "gtest/gtest.h"

namespace mxport::torch {
namespace {

using ::mxport::testing::StatusIs;
using pickle::Kind;

struct FixtureSet {
  std::string name;
  std::string dir;
};

void PrintTo(const FixtureSet& set, std::ostream* os) { *os << set.name; }

std::vector<FixtureSet> FixtureSets() {
  return {{"torch211", std::string(MXPORT_SOURCE_DIR) + "/tests/fixtures/torch211"},
          {"torch113", std::string(MXPORT_BINARY_DIR) + "/fixtures/torch113"}};
}

class TorchFixtureTest : public ::testing::TestWithParam<FixtureSet> {
 protected:
  void SetUp() override {
    dir_ = GetParam().dir;
    auto text = fs::ReadFileToString(*fs::PosixFileSystem(), dir_ + "/expected.json");
    ASSERT_TRUE(text.ok()) << text.status()
                           << " (generate with tests/fixtures/make_torch_fixtures.py)";
    auto json = ParseJson(*text, "expected.json");
    ASSERT_TRUE(json.ok()) << json.status();
    expected_ = *json;
    auto bin = fs::ReadFileToString(*fs::PosixFileSystem(), dir_ + "/expected.bin");
    ASSERT_TRUE(bin.ok()) << bin.status();
    bin_ = *bin;
  }

  std::string dir_;
  Json expected_;
  std::string bin_;
};

// Finds the value at `path` by walking from the root.
const pickle::Value* FindPath(const TorchFile& file, const std::string& path) {
  const pickle::Value* found = nullptr;
  absl::Status s = pickle::WalkValues(file.root(), 1000,
                                      [&](const std::string& p, const pickle::Value& v) {
                                        if (p == path && found == nullptr) found = &v;
                                        return found == nullptr;
                                      });
  return found;
}

void ExpectScalar(const pickle::Value& v, const Json& want, const std::string& path) {
  SCOPED_TRACE(path);
  if (want.is_null()) {
    EXPECT_EQ(v.kind, Kind::kNone);
  } else if (want.is_boolean()) {
    ASSERT_EQ(v.kind, Kind::kBool);
    EXPECT_EQ(v.boolean, want.get<bool>());
  } else if (want.is_number_integer()) {
    ASSERT_EQ(v.kind, Kind::kInt);
    EXPECT_EQ(v.integer, want.get<int64_t>());
  } else if (want.is_number_float()) {
    ASSERT_EQ(v.kind, Kind::kFloat);
    EXPECT_EQ(v.number, want.get<double>());
  } else if (want.is_string()) {
    ASSERT_EQ(v.kind, Kind::kString);
    EXPECT_EQ(v.str, want.get<std::string>());
  }
}

TEST_P(TorchFixtureTest, EveryTensorIsReadBitExactly) {
  int tensors_checked = 0;
  for (const auto& [file_name, spec] : expected_["files"].items()) {
    SCOPED_TRACE(file_name);
    auto file = TorchFile::Open(*fs::PosixFileSystem(), dir_ + "/" + file_name);
    ASSERT_TRUE(file.ok()) << file.status();
    std::map<std::string, const pickle::TensorRef*> found;
    for (const TensorEntry& entry : (*file)->tensors()) found.emplace(entry.path, entry.tensor);
    const Json& tensors = spec.contains("tensors") ? spec["tensors"] : Json::object();
    for (const auto& [path, want] : tensors.items()) {
      SCOPED_TRACE(path);
      auto it = found.find(path);
      ASSERT_NE(it, found.end()) << "tensor not found";
      const pickle::TensorRef& t = *it->second;
      EXPECT_EQ(DTypeName(t.dtype), want["dtype"].get<std::string>());
      EXPECT_EQ(t.shape, want["shape"].get<std::vector<int64_t>>());
      EXPECT_EQ(t.stride, want["stride"].get<std::vector<int64_t>>());
      EXPECT_EQ(t.storage_offset, want["storage_offset"].get<int64_t>());
      auto bytes = (*file)->ReadTensor(t);
      ASSERT_TRUE(bytes.ok()) << bytes.status();
      const uint64_t offset = want["offset"].get<uint64_t>();
      const uint64_t nbytes = want["nbytes"].get<uint64_t>();
      ASSERT_LE(offset + nbytes, bin_.size());
      EXPECT_EQ(*bytes, bin_.substr(offset, nbytes)) << "bytes differ";
      ++tensors_checked;
    }
    // Nothing extra: every tensor we found is one torch saved.
    for (const auto& [path, tensor] : found) {
      EXPECT_TRUE(tensors.contains(path)) << "unexpected tensor " << path;
    }
    const Json& values = spec.contains("values") ? spec["values"] : Json::object();
    for (const auto& [path, want] : values.items()) {
      const pickle::Value* v = FindPath(**file, path);
      ASSERT_NE(v, nullptr) << "value not found: " << path;
      ExpectScalar(*v, want, path);
    }
  }
  EXPECT_GT(tensors_checked, 40);
}

TEST_P(TorchFixtureTest, RejectedFilesFailClearlyAndRunNothing) {
  ASSERT_TRUE(expected_.contains("rejected"));
  for (const auto& [file_name, reason] : expected_["rejected"].items()) {
    SCOPED_TRACE(file_name);
    auto file = TorchFile::Open(*fs::PosixFileSystem(), dir_ + "/" + file_name);
    ASSERT_FALSE(file.ok());
    EXPECT_NE(file.status().message().find(file_name), std::string::npos) << file.status();
  }
  for (const auto& entry : std::filesystem::directory_iterator("/tmp")) {
    EXPECT_EQ(entry.path().filename().string().rfind("mxport_pwned", 0), std::string::npos)
        << "a hostile fixture ran code: " << entry.path();
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TorchFixtureTest, ::testing::ValuesIn(FixtureSets()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace mxport::torch
