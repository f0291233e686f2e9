#include "common/base/tensor.h"

#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/status_macros.h"

namespace mxport {

absl::StatusOr<uint64_t> CheckedMul(uint64_t a, uint64_t b, const char* what) {
  constexpr uint64_t kLimit = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  uint64_t product = 0;
  if (__builtin_mul_overflow(a, b, &product) || product > kLimit) {
    return absl::InvalidArgumentError(absl::StrCat(what, " overflows: ", a, " * ", b));
  }
  return product;
}

absl::StatusOr<uint64_t> CheckedNumElements(const std::vector<int64_t>& dims) {
  uint64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("negative dimension in shape ", ShapeToString(dims)));
    }
    ASSIGN_OR_RETURN(n, CheckedMul(n, static_cast<uint64_t>(d), "element count"));
  }
  return n;
}

std::string ShapeToString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

absl::StatusOr<uint64_t> TensorDescriptor::NumBytes() const {
  ASSIGN_OR_RETURN(uint64_t n, NumElements());
  return CheckedMul(n, static_cast<uint64_t>(ElementBytes(dtype)), "byte count");
}

std::string TensorDescriptor::DebugString() const {
  return absl::StrCat(DTypeName(dtype), ShapeToString(shape));
}

}  // namespace mxport
