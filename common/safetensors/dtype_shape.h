// Sizes of safetensors entries, and conversion between torch and safetensors shapes.
//
// safetensors counts elements of its own dtype: an F4 element is 4 bits, while torch's
// float4_e2m1fn_x2 packs two fp4 values into one element (common/base/dtype.h). So a packed
// torch tensor [2, 4] is the safetensors entry F4 [2, 8]: the last dimension is multiplied by
// (torch element bits / safetensors bits). The rule is derived from the dtype table, never from
// a per-dtype switch.
//
// All arithmetic is overflow-checked (CheckedMul, limit 2^63). Errors are InvalidArgument and
// name the dtype and shape. Stateless; thread-safe.
#ifndef MXPORT_COMMON_SAFETENSORS_DTYPE_SHAPE_H_
#define MXPORT_COMMON_SAFETENSORS_DTYPE_SHAPE_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/base/dtype.h"
#include "common/base/tensor.h"

namespace mxport::safetensors {

// The safetensors spelling of `dtype` ("BF16"), or InvalidArgument when safetensors has none
// (complex32, complex128).
absl::StatusOr<absl::string_view> SafetensorsName(DType dtype);

// prod(shape) * bits / 8 for a safetensors entry. InvalidArgument on a negative dimension, on
// overflow, for a dtype without a safetensors name, or when the bit count is not a whole number
// of bytes (an odd number of F4 values).
absl::StatusOr<uint64_t> SafetensorsByteSize(DType dtype, const std::vector<int64_t>& shape);

// The safetensors shape of a torch tensor: equal to the torch shape, except for packed sub-byte
// dtypes, whose last dimension is scaled (float4_e2m1fn_x2 [2, 4] -> [2, 8]). InvalidArgument
// for a packed scalar (no last dimension to scale) or a dtype without a safetensors name.
absl::StatusOr<std::vector<int64_t>> ToSafetensorsShape(const TensorDescriptor& torch);

// The inverse: the torch descriptor of a safetensors entry (F4 [2, 8] -> float4_e2m1fn_x2
// [2, 4]). InvalidArgument for dtypes torch lacks (F6_*), a packed scalar, or a last dimension
// that does not divide evenly.
absl::StatusOr<TensorDescriptor> ToTorchDescriptor(DType dtype,
                                                   const std::vector<int64_t>& safetensors_shape);

}  // namespace mxport::safetensors

#endif  // MXPORT_COMMON_SAFETENSORS_DTYPE_SHAPE_H_
