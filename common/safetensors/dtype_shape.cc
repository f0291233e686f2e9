#include "common/safetensors/dtype_shape.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"

namespace mxport::safetensors {
namespace {

// How many safetensors elements one torch element holds (2 for float4_e2m1fn_x2, else 1).
absl::StatusOr<uint64_t> PackingFactor(DType dtype) {
  const DTypeInfo& info = GetDTypeInfo(dtype);
  ASSIGN_OR_RETURN(absl::string_view name, SafetensorsName(dtype));
  const int torch_bits = info.element_bytes * 8;
  if (torch_bits == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("safetensors dtype ", name, " has no torch equivalent"));
  }
  if (torch_bits % info.safetensors_bits != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("torch dtype ", DTypeName(dtype), " does not pack whole ", name, " elements"));
  }
  return static_cast<uint64_t>(torch_bits / info.safetensors_bits);
}

absl::Status PackedScalarError(DType dtype, const std::vector<int64_t>& shape) {
  return absl::InvalidArgumentError(absl::StrCat("a packed ", DTypeName(dtype),
                                                 " tensor needs a last dimension, got shape ",
                                                 ShapeToString(shape)));
}

}  // namespace

absl::StatusOr<absl::string_view> SafetensorsName(DType dtype) {
  const DTypeInfo& info = GetDTypeInfo(dtype);
  if (info.safetensors_name.empty() || info.safetensors_bits <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("dtype ", DTypeName(dtype), " has no safetensors equivalent"));
  }
  return info.safetensors_name;
}

absl::StatusOr<uint64_t> SafetensorsByteSize(DType dtype, const std::vector<int64_t>& shape) {
  ASSIGN_OR_RETURN(absl::string_view name, SafetensorsName(dtype));
  ASSIGN_OR_RETURN(uint64_t elements, CheckedNumElements(shape));
  const uint64_t bits_per_element = static_cast<uint64_t>(GetDTypeInfo(dtype).safetensors_bits);
  ASSIGN_OR_RETURN(uint64_t bits, CheckedMul(elements, bits_per_element, "bit count"));
  if (bits % 8 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(name, ShapeToString(shape), " holds ", bits,
                                                   " bits, not a whole number of bytes"));
  }
  return bits / 8;
}

absl::StatusOr<std::vector<int64_t>> ToSafetensorsShape(const TensorDescriptor& torch) {
  ASSIGN_OR_RETURN(uint64_t factor, PackingFactor(torch.dtype));
  RETURN_IF_ERROR(torch.NumElements());  // rejects negative dimensions and overflow
  std::vector<int64_t> shape = torch.shape;
  if (factor == 1) return shape;
  if (shape.empty()) return PackedScalarError(torch.dtype, torch.shape);
  ASSIGN_OR_RETURN(uint64_t last,
                   CheckedMul(static_cast<uint64_t>(shape.back()), factor, "last dimension"));
  shape.back() = static_cast<int64_t>(last);
  return shape;
}

absl::StatusOr<TensorDescriptor> ToTorchDescriptor(DType dtype,
                                                   const std::vector<int64_t>& safetensors_shape) {
  ASSIGN_OR_RETURN(uint64_t factor, PackingFactor(dtype));
  RETURN_IF_ERROR(CheckedNumElements(safetensors_shape));
  TensorDescriptor torch{dtype, safetensors_shape};
  if (factor == 1) return torch;
  if (torch.shape.empty()) return PackedScalarError(dtype, safetensors_shape);
  const uint64_t last = static_cast<uint64_t>(torch.shape.back());
  if (last % factor != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("last dimension of ", GetDTypeInfo(dtype).safetensors_name,
                     ShapeToString(safetensors_shape), " is not a multiple of ", factor));
  }
  torch.shape.back() = static_cast<int64_t>(last / factor);
  return torch;
}

}  // namespace mxport::safetensors
