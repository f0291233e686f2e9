#include "common/base/tensor.h"

#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace mxport {
namespace {

using ::mxport::testing::IsOkAndHolds;
using ::mxport::testing::StatusIs;

TEST(TensorTest, SizesOfShapes) {
  EXPECT_THAT((TensorDescriptor{DType::kBFloat16, {2, 3}}.NumBytes()), IsOkAndHolds(12u));
  EXPECT_THAT((TensorDescriptor{DType::kFloat32, {}}.NumBytes()), IsOkAndHolds(4u));
  EXPECT_THAT((TensorDescriptor{DType::kFloat32, {0, 7}}.NumBytes()), IsOkAndHolds(0u));
  EXPECT_EQ((TensorDescriptor{DType::kBFloat16, {2, 3}}.DebugString()), "bfloat16[2, 3]");
}

TEST(TensorTest, OverflowAndNegativeDimsAreErrors) {
  EXPECT_THAT(CheckedNumElements({int64_t{1} << 40, int64_t{1} << 30}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT((TensorDescriptor{DType::kFloat64, {int64_t{1} << 61}}.NumBytes()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CheckedNumElements({2, -1}), StatusIs(absl::StatusCode::kInvalidArgument,
                                                    ::testing::HasSubstr("[2, -1]")));
}

}  // namespace
}  // namespace mxport
