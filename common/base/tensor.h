// TensorDescriptor: the dtype and shape of a dense, row-major tensor, with overflow-checked
// size arithmetic. A value type; no bytes. Shape `{}` is a scalar (one element); a zero
// dimension means zero elements. NumBytes counts torch elements (see dtype.h for sub-byte types).
#ifndef MXPORT_COMMON_BASE_TENSOR_H_
#define MXPORT_COMMON_BASE_TENSOR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/dtype.h"

namespace mxport {

// Product of `dims`, or InvalidArgument on a negative dimension or overflow past 2^63.
absl::StatusOr<uint64_t> CheckedNumElements(const std::vector<int64_t>& dims);
// a * b, or InvalidArgument naming `what` on overflow past 2^63.
absl::StatusOr<uint64_t> CheckedMul(uint64_t a, uint64_t b, const char* what = "size");

// "[2, 3]"
std::string ShapeToString(const std::vector<int64_t>& shape);

struct TensorDescriptor {
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;

  absl::StatusOr<uint64_t> NumElements() const { return CheckedNumElements(shape); }
  absl::StatusOr<uint64_t> NumBytes() const;
  std::string DebugString() const;  // "bfloat16[2, 3]"

  friend bool operator==(const TensorDescriptor&, const TensorDescriptor&) = default;
};

}  // namespace mxport

#endif  // MXPORT_COMMON_BASE_TENSOR_H_
