#include "common/base/dtype.h"

#include <set>
#include <string>

#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace mxport {
namespace {

using ::mxport::testing::IsOkAndHolds;
using ::mxport::testing::StatusIs;

TEST(DTypeTest, TableIsInEnumOrderAndNamesAreUnique) {
  std::set<absl::string_view> torch_names, st_names;
  for (size_t i = 0; i < AllDTypes().size(); ++i) {
    const DTypeInfo& info = AllDTypes()[i];
    EXPECT_EQ(static_cast<size_t>(info.dtype), i);
    if (!info.torch_name.empty()) EXPECT_TRUE(torch_names.insert(info.torch_name).second);
    if (!info.safetensors_name.empty()) {
      EXPECT_TRUE(st_names.insert(info.safetensors_name).second);
    }
  }
  EXPECT_EQ(torch_names.size(), 22u);
  EXPECT_EQ(st_names.size(), 22u);
}

TEST(DTypeTest, TorchNamesRoundTrip) {
  struct Case {
    const char* torch;
    const char* st;
    int bytes;
  };
  const Case cases[] = {
      {"bool", "BOOL", 1},          {"uint8", "U8", 1},           {"int8", "I8", 1},
      {"int16", "I16", 2},          {"int32", "I32", 4},          {"int64", "I64", 8},
      {"uint16", "U16", 2},         {"uint32", "U32", 4},         {"uint64", "U64", 8},
      {"float16", "F16", 2},        {"bfloat16", "BF16", 2},      {"float32", "F32", 4},
      {"float64", "F64", 8},        {"complex64", "C64", 8},      {"float8_e4m3fn", "F8_E4M3", 1},
      {"float8_e5m2", "F8_E5M2", 1}, {"float8_e8m0fnu", "F8_E8M0", 1},
      {"float4_e2m1fn_x2", "F4", 1},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.torch);
    auto dtype = DTypeFromTorchName(c.torch);
    ASSERT_TRUE(dtype.ok());
    EXPECT_EQ(GetDTypeInfo(*dtype).safetensors_name, c.st);
    EXPECT_EQ(ElementBytes(*dtype), c.bytes);
    EXPECT_THAT(DTypeFromSafetensorsName(c.st), IsOkAndHolds(*dtype));
  }
}

TEST(DTypeTest, AliasesAndStorages) {
  EXPECT_THAT(DTypeFromTorchName("float"), IsOkAndHolds(DType::kFloat32));
  EXPECT_THAT(DTypeFromTorchName("half"), IsOkAndHolds(DType::kFloat16));
  EXPECT_THAT(DTypeFromTorchName("long"), IsOkAndHolds(DType::kInt64));
  EXPECT_THAT(DTypeFromLegacyStorage("BFloat16Storage"), IsOkAndHolds(DType::kBFloat16));
  EXPECT_THAT(DTypeFromLegacyStorage("ByteStorage"), IsOkAndHolds(DType::kUInt8));
  EXPECT_THAT(DTypeFromLegacyStorage("CharStorage"), IsOkAndHolds(DType::kInt8));
  EXPECT_EQ(GetDTypeInfo(DType::kFloat4E2M1FNx2).safetensors_bits, 4);
}

TEST(DTypeTest, UnknownNamesAreErrorsNamingTheSpelling) {
  EXPECT_THAT(DTypeFromTorchName("float7"),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("float7")));
  EXPECT_THAT(DTypeFromSafetensorsName(""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DTypeFromLegacyStorage("QInt8Storage"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace mxport
