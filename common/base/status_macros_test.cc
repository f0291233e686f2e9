#include "common/base/status_macros.h"

#include <memory>

#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace mxport {
namespace {

using ::mxport::testing::IsOkAndHolds;
using ::mxport::testing::StatusIs;

absl::StatusOr<std::unique_ptr<int>> MakeInt(int v) {
  if (v < 0) return absl::InvalidArgumentError("negative");
  return std::make_unique<int>(v);
}

absl::StatusOr<int> Twice(int v) {
  ASSIGN_OR_RETURN(std::unique_ptr<int> p, MakeInt(v));  // move-only values work
  int out = 0;
  ASSIGN_OR_RETURN(out, absl::StatusOr<int>(*p * 2));  // assignment to an existing lvalue
  return out;
}

absl::Status Check(int v) {
  RETURN_IF_ERROR(MakeInt(v));
  RETURN_IF_ERROR(v == 3 ? absl::NotFoundError("three") : absl::OkStatus());
  return absl::OkStatus();
}

TEST(StatusMacrosTest, PropagatesErrorsAndValues) {
  EXPECT_THAT(Twice(4), IsOkAndHolds(8));
  EXPECT_THAT(Twice(-1), StatusIs(absl::StatusCode::kInvalidArgument, "negative"));
  EXPECT_OK(Check(1));
  EXPECT_THAT(Check(-5), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Check(3), StatusIs(absl::StatusCode::kNotFound, "three"));
}

}  // namespace
}  // namespace mxport
