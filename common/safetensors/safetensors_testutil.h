// Test helpers for the safetensors tests (header-only, test code only): the formats.md §3
// example file, byte for byte, and a raw-file builder for malformed inputs.
#ifndef MXPORT_COMMON_SAFETENSORS_SAFETENSORS_TESTUTIL_H_
#define MXPORT_COMMON_SAFETENSORS_SAFETENSORS_TESTUTIL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/safetensors/header.h"

namespace mxport::safetensors::testutil {

// u64 little-endian `n`.
inline std::string LengthPrefix(uint64_t n) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return out;
}

// A file whose header is `json` (N = json.size(), unpadded) followed by `data_bytes` bytes.
inline std::string RawFile(absl::string_view json, size_t data_bytes) {
  return LengthPrefix(json.size()) + std::string(json) + std::string(data_bytes, '\x5A');
}

// save({"b": f32[1,2,-.5,3.25], "a": bf16 arange(6)[2,3], "c": u8[1,2,3]},
//      metadata={"format":"pt"}) as observed with safetensors 0.8 (formats.md §3).
inline constexpr absl::string_view kExampleJson =
    R"({"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
    R"("a":{"dtype":"BF16","shape":[2,3],"data_offsets":[16,28]},)"
    R"("c":{"dtype":"U8","shape":[3],"data_offsets":[28,31]}}  )";

// The example's tensor bytes: b = f32 [1, 2, -0.5, 3.25], a = bf16 [0..5], c = u8 [1, 2, 3].
inline std::string ExampleBytes(absl::string_view name) {
  if (name == "b") {
    return std::string("\x00\x00\x80\x3F\x00\x00\x00\x40\x00\x00\x00\xBF\x00\x00\x50\x40", 16);
  }
  if (name == "a") {
    return std::string("\x00\x00\x80\x3F\x00\x40\x40\x40\x80\x40\xA0\x40", 12);
  }
  return std::string("\x01\x02\x03", 3);
}

// The whole example file: C8 00 .. 00, the JSON, then b, a, c.
inline std::string ExampleFile() {
  std::string file = std::string("\xC8\0\0\0\0\0\0\0", 8) + std::string(kExampleJson);
  return file + ExampleBytes("b") + ExampleBytes("a") + ExampleBytes("c");
}

// The example's specs, deliberately not in the writer's order.
inline std::vector<TensorSpec> ExampleSpecs() {
  return {{"a", DType::kBFloat16, {2, 3}}, {"c", DType::kUInt8, {3}}, {"b", DType::kFloat32, {4}}};
}

}  // namespace mxport::safetensors::testutil

#endif  // MXPORT_COMMON_SAFETENSORS_SAFETENSORS_TESTUTIL_H_
