// Compares mxport::quant with bytes that real PyTorch (>= 2.1) produced:
// tests/fixtures/quant/torch_expectations.bin, written by tests/fixtures/make_quant_expectations.py
// (its docstring describes the file). Fails, naming the command, when the file is missing.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/json/json.h"
#include "common/quant/quant.h"
#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace mxport::quant {
namespace {

constexpr char kFixture[] = MXPORT_SOURCE_DIR "/tests/fixtures/quant/torch_expectations.bin";
constexpr char kRegenerate[] =
    "python3 tests/fixtures/make_quant_expectations.py --out tests/fixtures/quant";

struct Fixture {
  Json manifest;
  std::string payload;
};

// One array of a case, as bytes.
absl::string_view Array(const Fixture& f, const Json& c, const char* name) {
  const Json& a = c.at("arrays").at(name);
  const size_t offset = a.at(0).get<size_t>(), size = a.at(1).get<size_t>();
  if (offset + size > f.payload.size()) return {};
  return absl::string_view(f.payload).substr(offset, size);
}

template <typename T>
std::vector<T> Values(absl::string_view bytes) {
  std::vector<T> v(bytes.size() / sizeof(T));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(T));
  return v;
}

float FieldFloat(const Json& c, const char* name) {
  return BitsToFloat(c.at(name).get<uint32_t>());
}

DType CaseDType(const Json& c) {
  static const std::map<std::string, DType> kNames = {
      {"bfloat16", DType::kBFloat16}, {"float16", DType::kFloat16}, {"float32", DType::kFloat32}};
  return kNames.at(c.at("dtype").get<std::string>());
}

// Reports the first few differing positions of two byte vectors.
void ExpectSameBytes(const std::vector<uint8_t>& got, absl::string_view want,
                     const std::string& what, absl::string_view input = {}) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int reported = 0, differ = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const uint8_t w = static_cast<uint8_t>(want[i]);
    if (got[i] == w) continue;
    ++differ;
    if (reported++ < 8) {
      std::string in;
      if (input.size() == got.size() * 4) {
        float x;
        std::memcpy(&x, input.data() + 4 * i, 4);
        in = absl::StrCat(" input ", x, " (bits ", absl::Hex(FloatBits(x)), ")");
      }
      ADD_FAILURE() << what << "[" << i << "]: got 0x" << absl::StrCat(absl::Hex(got[i]))
                    << ", torch 0x" << absl::StrCat(absl::Hex(w)) << in;
    }
  }
  EXPECT_EQ(differ, 0) << what;
}

void CheckE4M3Cast(const Fixture& f, const Json& c) {
  const absl::string_view input = Array(f, c, "input");
  const std::vector<float> x = Values<float>(input);
  std::vector<uint8_t> got(x.size());
  for (size_t i = 0; i < x.size(); ++i) got[i] = FloatToE4M3(x[i]);
  ExpectSameBytes(got, Array(f, c, "expected"), "e4m3 cast", input);
}

void CheckE4M3Decode(const Fixture& f, const Json& c) {
  const std::vector<float> want = Values<float>(Array(f, c, "expected"));
  ASSERT_EQ(want.size(), 256u);
  for (int code = 0; code < 256; ++code) {
    const float got = E4M3ToFloat(static_cast<uint8_t>(code));
    if (std::isnan(want[code])) {
      EXPECT_TRUE(std::isnan(got)) << code;
    } else {
      EXPECT_EQ(FloatBits(got), FloatBits(want[code])) << code;
    }
  }
}

void CheckE2M1Cast(const Fixture& f, const Json& c) {
  const absl::string_view input = Array(f, c, "input");
  const std::vector<float> x = Values<float>(input);
  std::vector<uint8_t> got(x.size());
  for (size_t i = 0; i < x.size(); ++i) got[i] = FloatToE2M1(x[i]);
  ExpectSameBytes(got, Array(f, c, "expected"), "e2m1 cast", input);
}

void CheckNvfp4(const Fixture& f, const Json& c) {
  const DType dtype = CaseDType(c);
  const int64_t rows = c.at("rows").get<int64_t>(), cols = c.at("cols").get<int64_t>();
  const float amax = FieldFloat(c, "amax_bits");
  ASSERT_OK_AND_ASSIGN(const float s2, Nvfp4WeightScale2(amax));
  EXPECT_EQ(FloatBits(s2), c.at("weight_scale_2_bits").get<uint32_t>()) << "amax " << amax;
  if (!c.at("weight_scale_2_cuda_bits").is_null()) {
    ASSERT_OK_AND_ASSIGN(const float s2_cuda,
                         Nvfp4WeightScale2(amax, ScalarDivision::kReciprocalMultiply));
    EXPECT_EQ(FloatBits(s2_cuda), c.at("weight_scale_2_cuda_bits").get<uint32_t>())
        << "amax " << amax;
  }
  std::vector<uint8_t> packed(rows * cols / 2), scales(rows * cols / 16);
  ASSERT_OK(QuantizeNvfp4(dtype, Array(f, c, "input"), cols, FieldFloat(c, "weight_scale_2_bits"),
                          absl::MakeSpan(packed), absl::MakeSpan(scales)));
  ExpectSameBytes(scales, Array(f, c, "block_scales"), "block scales");
  ExpectSameBytes(packed, Array(f, c, "packed"), "packed codes");
}

void CheckFp8Tensor(const Fixture& f, const Json& c) {
  const DType dtype = CaseDType(c);
  const float amax = FieldFloat(c, "amax_bits");
  ASSERT_OK_AND_ASSIGN(const float scale, Fp8WeightScale(amax));
  EXPECT_EQ(FloatBits(scale), c.at("weight_scale_bits").get<uint32_t>());
  if (!c.at("weight_scale_cuda_bits").is_null()) {
    ASSERT_OK_AND_ASSIGN(const float scale_cuda,
                         Fp8WeightScale(amax, ScalarDivision::kReciprocalMultiply));
    EXPECT_EQ(FloatBits(scale_cuda), c.at("weight_scale_cuda_bits").get<uint32_t>());
  }
  const absl::string_view input = Array(f, c, "input");
  std::vector<uint8_t> q(Array(f, c, "q_once").size());
  ASSERT_OK(QuantizeFp8(dtype, input, scale, absl::MakeSpan(q)));
  ExpectSameBytes(q, Array(f, c, "q_once"), "fp8 (one rounding)");
  ASSERT_OK(QuantizeFp8(dtype, input, scale, absl::MakeSpan(q), Fp8Rounding::kViaSourceDType));
  ExpectSameBytes(q, Array(f, c, "q_modelopt"), "fp8 (ModelOpt's expression)");
}

void CheckFp8Block(const Fixture& f, const Json& c) {
  const DType dtype = CaseDType(c);
  const Fp8BlockShape shape{c.at("rows").get<int64_t>(), c.at("cols").get<int64_t>()};
  const absl::string_view input = Array(f, c, "input");
  std::vector<float> amax(shape.GridSize(), 0.0f), scale_inv(shape.GridSize());
  ASSERT_OK(TileAbsMax(dtype, input, shape, 0, absl::MakeSpan(amax)));
  ASSERT_OK(Fp8BlockScaleInv(amax, absl::MakeSpan(scale_inv)));
  const std::vector<float> want_scale = Values<float>(Array(f, c, "scale_inv"));
  ASSERT_EQ(want_scale.size(), scale_inv.size());
  for (size_t i = 0; i < scale_inv.size(); ++i) {
    EXPECT_EQ(FloatBits(scale_inv[i]), FloatBits(want_scale[i])) << "tile " << i;
  }
  std::vector<uint8_t> q(shape.rows * shape.cols);
  ASSERT_OK(QuantizeFp8Block(dtype, input, shape, 0, scale_inv, absl::MakeSpan(q)));
  ExpectSameBytes(q, Array(f, c, "q"), "block fp8");
}

const std::map<std::string, std::function<void(const Fixture&, const Json&)>>& Checks() {
  static const auto* checks =
      new std::map<std::string, std::function<void(const Fixture&, const Json&)>>{
          {"e4m3_cast", CheckE4M3Cast}, {"e4m3_decode", CheckE4M3Decode},
          {"e2m1_cast", CheckE2M1Cast}, {"nvfp4", CheckNvfp4},
          {"fp8_tensor", CheckFp8Tensor}, {"fp8_block", CheckFp8Block}};
  return *checks;
}

TEST(TorchExpectationsTest, MatchesPyTorchByteForByte) {
  std::ifstream in(kFixture, std::ios::binary);
  ASSERT_TRUE(in.good()) << kFixture << " is missing. Make it on a machine with PyTorch >= 2.1 "
                         << "(a GPU adds the CUDA scale checks), from the repository root:\n  "
                         << kRegenerate;
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string file = buffer.str();
  ASSERT_GE(file.size(), 16u);
  ASSERT_EQ(file.substr(0, 8), "MXQEXP01") << "not a quant expectations file; regenerate with "
                                           << kRegenerate;
  uint64_t manifest_size;
  std::memcpy(&manifest_size, file.data() + 8, 8);
  ASSERT_LE(16 + manifest_size, file.size());
  Fixture f;
  ASSERT_OK_AND_ASSIGN(f.manifest,
                       ParseJson(absl::string_view(file).substr(16, manifest_size), kFixture));
  f.payload = file.substr(16 + manifest_size);
  std::printf("expectations from torch %s (CUDA: %s)\n",
              f.manifest.value("torch_version", "?").c_str(),
              f.manifest["cuda_device"].is_null()
                  ? "none"
                  : f.manifest["cuda_device"].get<std::string>().c_str());

  std::map<std::string, int> kinds;
  for (const Json& c : f.manifest.at("cases")) {
    const std::string kind = c.at("kind").get<std::string>();
    SCOPED_TRACE(c.at("name").get<std::string>());
    const auto it = Checks().find(kind);
    ASSERT_NE(it, Checks().end()) << "unknown case kind " << kind;
    it->second(f, c);
    ++kinds[kind];
  }
  EXPECT_EQ(kinds.size(), Checks().size()) << "some kinds of case are missing";
}

}  // namespace
}  // namespace mxport::quant
