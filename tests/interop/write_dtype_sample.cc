// Writes one safetensors file holding a tensor of every dtype safetensors and torch share, with
// our Writer (pieces in reverse order), plus `<file>.expected.json` mapping each tensor to its
// dtype, shape and the hex of its bytes. tests/interop/check_safetensors_interop.py reads the
// file with Python safetensors and compares. Usage: write_dtype_sample OUT.safetensors
#include <fstream>
#include <iostream>

#include "common/base/dtype.h"
#include "common/fs/file_system.h"
#include "common/json/json.h"
#include "common/safetensors/dtype_shape.h"
#include "common/safetensors/header.h"
#include "common/safetensors/writer.h"

namespace {

std::string Hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

int Run(const std::string& path) {
  using namespace mxport;
  std::vector<safetensors::TensorSpec> specs;
  std::vector<std::string> data;
  uint32_t seed = 12345;
  for (const DTypeInfo& info : AllDTypes()) {
    if (info.safetensors_name.empty() || info.torch_name.empty()) continue;
    // Byte patterns that are valid for every dtype: bool bytes are 0/1, the rest arbitrary.
    const std::vector<int64_t> shape = {3, 4};
    auto st_shape = safetensors::ToSafetensorsShape(TensorDescriptor{info.dtype, shape});
    if (!st_shape.ok()) return 1;
    specs.push_back({std::string(info.torch_name), info.dtype, *st_shape});
    std::string bytes(12 * info.element_bytes, '\0');
    for (char& c : bytes) {
      seed = seed * 1103515245u + 12345u;
      c = static_cast<char>(seed >> 16);
      if (info.dtype == DType::kBool) c &= 1;
    }
    data.push_back(bytes);
  }
  auto header = safetensors::Header::Layout(specs, {{"format", "pt"}},
                                            safetensors::LayoutOrder::kPythonWriter);
  if (!header.ok()) {
    std::cerr << header.status() << "\n";
    return 1;
  }
  auto writer = safetensors::Writer::Create(*fs::PosixFileSystem(), path, *header);
  if (!writer.ok()) {
    std::cerr << writer.status() << "\n";
    return 1;
  }
  OrderedJson expected;
  for (size_t i = specs.size(); i-- > 0;) {
    const std::string& d = data[i];
    // Second half first, then the first half: the writer takes pieces in any order.
    absl::Status s = (*writer)->WritePiece(specs[i].name, d.size() / 2, d.substr(d.size() / 2));
    if (s.ok()) s = (*writer)->WritePiece(specs[i].name, 0, d.substr(0, d.size() / 2));
    if (!s.ok()) {
      std::cerr << s << "\n";
      return 1;
    }
    expected[specs[i].name] = {{"dtype", std::string(GetDTypeInfo(specs[i].dtype).torch_name)},
                               {"hex", Hex(d)}};
  }
  if (absl::Status s = (*writer)->Finish(); !s.ok()) {
    std::cerr << s << "\n";
    return 1;
  }
  std::ofstream(path + ".expected.json") << expected.dump(1) << "\n";
  std::cout << "wrote " << specs.size() << " tensors to " << path << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: write_dtype_sample OUT.safetensors\n";
    return 2;
  }
  return Run(argv[1]);
}
