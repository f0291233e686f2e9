// Status propagation macros for Abseil 20220623, which predates ABSL_RETURN_IF_ERROR.
//
// RETURN_IF_ERROR(expr): evaluates `expr` (an absl::Status or absl::StatusOr<T>) and returns its
// status from the enclosing function when it is not OK.
// ASSIGN_OR_RETURN(lhs, expr): evaluates `expr` (an absl::StatusOr<T>); on error returns its
// status, otherwise moves the value into `lhs`, which may be a declaration (`auto x`) or an
// existing lvalue. Both work in functions returning absl::Status or any absl::StatusOr<U>.
#ifndef MXPORT_COMMON_BASE_STATUS_MACROS_H_
#define MXPORT_COMMON_BASE_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace mxport::internal_status {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

}  // namespace mxport::internal_status

#define MXPORT_STATUS_CONCAT_INNER_(a, b) a##b
#define MXPORT_STATUS_CONCAT_(a, b) MXPORT_STATUS_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                                                   \
  do {                                                                          \
    auto&& mxport_status_ = (expr);                                             \
    if (!mxport_status_.ok()) {                                                 \
      return ::mxport::internal_status::GetStatus(mxport_status_);              \
    }                                                                           \
  } while (false)

#define MXPORT_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return std::move(tmp).status();      \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, expr) \
  MXPORT_ASSIGN_OR_RETURN_IMPL_(MXPORT_STATUS_CONCAT_(mxport_statusor_, __LINE__), lhs, expr)

#endif  // MXPORT_COMMON_BASE_STATUS_MACROS_H_
