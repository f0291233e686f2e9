// Writes the seed corpus of fuzz/safetensors_fuzzer.cc: a handful of small valid files (made
// with Writer) and malformed ones (raw bytes), each under 4 KB.
//
//   build/common/safetensors/safetensors_make_fuzz_corpus fuzz/corpus/safetensors
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/fs/file_system.h"
#include "common/safetensors/header.h"
#include "common/safetensors/writer.h"

namespace mxport::safetensors {
namespace {

std::string Pattern(size_t n, int seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 37 + seed) & 0xFF);
  return s;
}

// Lays out `specs`, then writes each tensor's pattern bytes.
absl::Status WriteValid(fs::FileSystem& fs, const std::string& path, std::vector<TensorSpec> specs,
                        Metadata metadata, LayoutOrder order) {
  ASSIGN_OR_RETURN(Header header, Header::Layout(std::move(specs), std::move(metadata), order));
  ASSIGN_OR_RETURN(auto writer, Writer::Create(fs, path, header));
  int seed = 0;
  for (const TensorEntry& e : header.entries()) {
    RETURN_IF_ERROR(writer->WritePiece(e.name, 0, Pattern(e.num_bytes(), ++seed)));
  }
  return writer->Finish();
}

std::string Raw(const std::string& json, size_t data_bytes) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((json.size() >> (8 * i)) & 0xFF);
  return out + json + std::string(data_bytes, '\x11');
}

absl::Status Run(const std::string& dir) {
  fs::FileSystem& fs = *fs::PosixFileSystem();
  RETURN_IF_ERROR(fs.CreateDirs(dir));
  auto path = [&](const char* name) {
    return fs::JoinPath(dir, absl::StrCat(name, ".safetensors"));
  };
  const auto python = LayoutOrder::kPythonWriter;

  RETURN_IF_ERROR(WriteValid(
      fs, path("valid_example"),
      {{"a", DType::kBFloat16, {2, 3}}, {"c", DType::kUInt8, {3}}, {"b", DType::kFloat32, {4}}},
      {{"format", "pt"}}, python));
  std::vector<TensorSpec> all;
  for (const DTypeInfo& info : AllDTypes()) {
    if (info.safetensors_bits == 0) continue;
    all.push_back({absl::StrCat("t.", info.safetensors_name),
                   info.dtype,
                   {info.safetensors_bits == 6 ? 4 : 2}});
  }
  RETURN_IF_ERROR(WriteValid(fs, path("valid_all_dtypes"), all, {{"format", "pt"}}, python));
  RETURN_IF_ERROR(WriteValid(fs, path("valid_empty"), {}, {}, python));
  RETURN_IF_ERROR(WriteValid(fs, path("valid_scalar_zero_f4"),
                             {{"s", DType::kFloat32, {}},
                              {"z", DType::kBFloat16, {0, 3}},
                              {"q", DType::kFloat4E2M1FNx2, {2, 8}}},
                             {}, LayoutOrder::kAsGiven));
  RETURN_IF_ERROR(WriteValid(fs, path("valid_escaped_names"),
                             {{"q\"\\\n\x01/\xC3\xA9", DType::kInt64, {1}}},
                             {{"k\t", "v"}, {"format", "pt"}}, python));

  const std::string a4 = R"("a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]})";
  const std::vector<std::pair<const char*, std::string>> raw = {
      {"valid_unpadded", Raw(R"({"t":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}})", 16)},
      {"bad_overlap",
       Raw("{" + a4 + R"(,"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})", 6)},
      {"bad_hole", Raw("{" + a4 + R"(,"b":{"dtype":"U8","shape":[4],"data_offsets":[6,10]}})", 10)},
      {"bad_duplicate", Raw("{" + a4 + "," + a4 + "}", 4)},
      {"bad_dtype", Raw(R"({"a":{"dtype":"F17","shape":[4],"data_offsets":[0,4]}})", 4)},
      {"bad_metadata", Raw(R"({"__metadata__":{"format":1}})", 0)},
      {"bad_truncated_data", Raw("{" + a4 + "}", 3)},
      {"bad_trailing", Raw("{" + a4 + "}", 5)},
      {"bad_overflow",
       Raw(R"({"a":{"dtype":"U8","shape":[4294967296,4294967296,4],"data_offsets":[0,0]}})", 0)},
      {"bad_truncated_json", Raw(R"({"a":{"dtype":"U8")", 0)},
      {"bad_odd_f4", Raw(R"({"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}})", 2)},
  };
  for (const auto& [name, bytes] : raw) {
    ASSIGN_OR_RETURN(auto file, fs.OpenForWrite(path(name), fs::OpenMode::kCreateOrTruncate));
    RETURN_IF_ERROR(file->WriteAt(0, bytes));
    RETURN_IF_ERROR(file->Close());
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace mxport::safetensors

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
    return 2;
  }
  const absl::Status status = mxport::safetensors::Run(argv[1]);
  if (!status.ok()) {
    std::fprintf(stderr, "%s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
