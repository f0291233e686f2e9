// GoogleTest matchers for absl::Status / absl::StatusOr (Abseil 20220623 has none):
//   EXPECT_THAT(s, IsOk());
//   EXPECT_THAT(s, StatusIs(absl::StatusCode::kNotFound));
//   EXPECT_THAT(s, StatusIs(absl::StatusCode::kNotFound, HasSubstr("model.pt")));
//   EXPECT_THAT(v, IsOkAndHolds(Eq(3)));
//   ASSERT_OK(expr); EXPECT_OK(expr); ASSERT_OK_AND_ASSIGN(auto x, expr);
#ifndef MXPORT_COMMON_TESTING_STATUS_MATCHERS_H_
#define MXPORT_COMMON_TESTING_STATUS_MATCHERS_H_

#include <ostream>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mxport::testing {
namespace internal {

inline const absl::Status& ToStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& ToStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

}  // namespace internal

MATCHER(IsOk, "is OK") {
  const absl::Status& s = internal::ToStatus(arg);
  if (!s.ok()) *result_listener << "status is " << s;
  return s.ok();
}

MATCHER_P(StatusIs, code, "has status code " + ::testing::PrintToString(code)) {
  const absl::Status& s = internal::ToStatus(arg);
  *result_listener << "status is " << s;
  return s.code() == code;
}

MATCHER_P2(StatusIs, code, message_matcher,
           "has status code " + ::testing::PrintToString(code) + " and a matching message") {
  const absl::Status& s = internal::ToStatus(arg);
  *result_listener << "status is " << s;
  return s.code() == code &&
         ::testing::ExplainMatchResult(message_matcher, std::string(s.message()),
                                       result_listener);
}

MATCHER_P(IsOkAndHolds, value_matcher, "is OK and holds a matching value") {
  if (!arg.ok()) {
    *result_listener << "status is " << arg.status();
    return false;
  }
  return ::testing::ExplainMatchResult(value_matcher, *arg, result_listener);
}

}  // namespace mxport::testing

#define EXPECT_OK(expr) EXPECT_THAT((expr), ::mxport::testing::IsOk())
#define ASSERT_OK(expr) ASSERT_THAT((expr), ::mxport::testing::IsOk())

#define MXPORT_TESTING_CONCAT_INNER_(a, b) a##b
#define MXPORT_TESTING_CONCAT_(a, b) MXPORT_TESTING_CONCAT_INNER_(a, b)
#define MXPORT_ASSERT_OK_AND_ASSIGN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                      \
  ASSERT_THAT(tmp, ::mxport::testing::IsOk());            \
  lhs = std::move(tmp).value()
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  MXPORT_ASSERT_OK_AND_ASSIGN_IMPL_(MXPORT_TESTING_CONCAT_(mxport_test_statusor_, __LINE__), lhs, expr)

#endif  // MXPORT_COMMON_TESTING_STATUS_MATCHERS_H_
