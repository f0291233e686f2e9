#include "common/safetensors/dtype_shape.h"

#include <cstdint>
#include <vector>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mxport::safetensors {
namespace {

using ::mxport::testing::IsOkAndHolds;
using ::mxport::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::Eq;
using ::testing::HasSubstr;

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

TEST(SafetensorsNameTest, EveryNamedDTypeAndNoOther) {
  EXPECT_THAT(SafetensorsName(DType::kBFloat16), IsOkAndHolds(Eq("BF16")));
  EXPECT_THAT(SafetensorsName(DType::kFloat4E2M1FNx2), IsOkAndHolds(Eq("F4")));
  EXPECT_THAT(SafetensorsName(DType::kComplex32), StatusIs(kInvalid, HasSubstr("complex32")));
  EXPECT_THAT(SafetensorsName(DType::kComplex128), StatusIs(kInvalid));
  int named = 0;
  for (const DTypeInfo& info : AllDTypes()) named += SafetensorsName(info.dtype).ok();
  EXPECT_EQ(named, 22);
}

TEST(SafetensorsByteSizeTest, Sizes) {
  EXPECT_THAT(SafetensorsByteSize(DType::kFloat32, {2, 3}), IsOkAndHolds(24u));
  EXPECT_THAT(SafetensorsByteSize(DType::kFloat32, {}), IsOkAndHolds(4u));  // scalar
  EXPECT_THAT(SafetensorsByteSize(DType::kBFloat16, {0, 5}), IsOkAndHolds(0u));
  EXPECT_THAT(SafetensorsByteSize(DType::kFloat4E2M1FNx2, {2, 8}), IsOkAndHolds(8u));
  EXPECT_THAT(SafetensorsByteSize(DType::kFloat6E2M3, {4}), IsOkAndHolds(3u));
  EXPECT_THAT(SafetensorsByteSize(DType::kComplex64, {3}), IsOkAndHolds(24u));
}

TEST(SafetensorsByteSizeTest, Errors) {
  EXPECT_THAT(SafetensorsByteSize(DType::kFloat4E2M1FNx2, {3}),
              StatusIs(kInvalid, HasSubstr("not a whole number of bytes")));
  EXPECT_THAT(SafetensorsByteSize(DType::kFloat6E3M2, {1}), StatusIs(kInvalid));
  EXPECT_THAT(SafetensorsByteSize(DType::kFloat32, {2, -1}),
              StatusIs(kInvalid, HasSubstr("negative")));
  EXPECT_THAT(SafetensorsByteSize(DType::kUInt8, {int64_t{1} << 40, int64_t{1} << 40}),
              StatusIs(kInvalid, HasSubstr("overflows")));
  // Elements fit, bits do not.
  EXPECT_THAT(SafetensorsByteSize(DType::kFloat64, {int64_t{1} << 60}),
              StatusIs(kInvalid, HasSubstr("overflows")));
  EXPECT_THAT(SafetensorsByteSize(DType::kComplex128, {1}), StatusIs(kInvalid));
}

TEST(SafetensorsShapeConversionTest, PackedFp4DoublesTheLastDimension) {
  EXPECT_THAT(ToSafetensorsShape({DType::kFloat4E2M1FNx2, {2, 4}}),
              IsOkAndHolds(ElementsAre(2, 8)));
  ASSERT_OK_AND_ASSIGN(TensorDescriptor torch, ToTorchDescriptor(DType::kFloat4E2M1FNx2, {2, 8}));
  EXPECT_EQ(torch, (TensorDescriptor{DType::kFloat4E2M1FNx2, {2, 4}}));
}

TEST(SafetensorsShapeConversionTest, OtherDTypesKeepTheirShape) {
  for (const DTypeInfo& info : AllDTypes()) {
    if (info.safetensors_bits != info.element_bytes * 8) continue;  // packed or no torch type
    if (info.safetensors_bits == 0) continue;
    SCOPED_TRACE(info.torch_name);
    EXPECT_THAT(ToSafetensorsShape({info.dtype, {3, 0, 2}}), IsOkAndHolds(ElementsAre(3, 0, 2)));
    EXPECT_THAT(ToSafetensorsShape({info.dtype, {}}), IsOkAndHolds(ElementsAre()));
    ASSERT_OK_AND_ASSIGN(TensorDescriptor torch, ToTorchDescriptor(info.dtype, {5}));
    EXPECT_EQ(torch, (TensorDescriptor{info.dtype, {5}}));
  }
}

TEST(SafetensorsShapeConversionTest, Errors) {
  EXPECT_THAT(ToSafetensorsShape({DType::kFloat4E2M1FNx2, {}}),
              StatusIs(kInvalid, HasSubstr("last dimension")));
  EXPECT_THAT(ToTorchDescriptor(DType::kFloat4E2M1FNx2, {}), StatusIs(kInvalid));
  EXPECT_THAT(ToTorchDescriptor(DType::kFloat4E2M1FNx2, {2, 7}),
              StatusIs(kInvalid, HasSubstr("not a multiple of 2")));
  EXPECT_THAT(ToTorchDescriptor(DType::kFloat6E2M3, {4}),
              StatusIs(kInvalid, HasSubstr("no torch equivalent")));
  EXPECT_THAT(ToSafetensorsShape({DType::kComplex32, {2}}), StatusIs(kInvalid));
  EXPECT_THAT(ToSafetensorsShape({DType::kFloat32, {-2}}), StatusIs(kInvalid));
  EXPECT_THAT(ToSafetensorsShape({DType::kFloat4E2M1FNx2, {int64_t{1} << 62}}),
              StatusIs(kInvalid, HasSubstr("overflows")));
}

}  // namespace
}  // namespace mxport::safetensors
