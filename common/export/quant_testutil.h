// Helpers the quantized-export tests share: every tensor of a torch.save file (an HF original
// or a rank file) read with the project's torch reader, element values as floats, and f32
// scalars. Tests only.
#ifndef MXPORT_COMMON_EXPORT_QUANT_TESTUTIL_H_
#define MXPORT_COMMON_EXPORT_QUANT_TESTUTIL_H_

#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "common/base/dtype.h"
#include "common/fs/file_system.h"
#include "common/quant/quant.h"
#include "common/testing/status_matchers.h"
#include "common/torch/torch_file.h"
#include "gtest/gtest.h"

namespace mxport::exporter::testutil {

struct Tensor {
  DType dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};
using Tensors = std::map<std::string, Tensor>;

// Every tensor of the torch.save file at `path`, by path ("model/decoder.layers.0...." in a
// rank file, the state-dict key in an HF model.pt).
inline Tensors ReadTorchTensors(const std::string& path) {
  Tensors out;
  auto file = torch::TorchFile::Open(*fs::PosixFileSystem(), path);
  EXPECT_TRUE(file.ok()) << file.status();
  if (!file.ok()) return out;
  for (const torch::TensorEntry& e : (*file)->tensors()) {
    auto bytes = (*file)->ReadTensor(*e.tensor);
    EXPECT_TRUE(bytes.ok()) << path << ": " << e.path;
    if (bytes.ok()) out[e.path] = {e.tensor->dtype, e.tensor->shape, *bytes};
  }
  return out;
}

inline std::vector<float> Floats(const Tensor& t) {
  std::vector<float> v(t.bytes.size() / ElementBytes(t.dtype));
  EXPECT_OK(quant::ToFloat(t.dtype, t.bytes, absl::MakeSpan(v)));
  return v;
}

inline float Scalar(const Tensor& t) {
  float f = 0.0f;
  if (t.bytes.size() >= sizeof(f)) std::memcpy(&f, t.bytes.data(), sizeof(f));
  return f;
}

}  // namespace mxport::exporter::testutil

#endif  // MXPORT_COMMON_EXPORT_QUANT_TESTUTIL_H_
