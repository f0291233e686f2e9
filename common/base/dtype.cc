#include "common/base/dtype.h"

#include <array>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace mxport {
namespace {

constexpr std::array<DTypeInfo, 24> kDTypes = {{
    // dtype                   torch name           legacy storage          st name        B  bits
    {DType::kBool, "bool", "BoolStorage", "BOOL", 1, 8},
    {DType::kUInt8, "uint8", "ByteStorage", "U8", 1, 8},
    {DType::kInt8, "int8", "CharStorage", "I8", 1, 8},
    {DType::kInt16, "int16", "ShortStorage", "I16", 2, 16},
    {DType::kInt32, "int32", "IntStorage", "I32", 4, 32},
    {DType::kInt64, "int64", "LongStorage", "I64", 8, 64},
    {DType::kUInt16, "uint16", "", "U16", 2, 16},
    {DType::kUInt32, "uint32", "", "U32", 4, 32},
    {DType::kUInt64, "uint64", "", "U64", 8, 64},
    {DType::kFloat16, "float16", "HalfStorage", "F16", 2, 16},
    {DType::kBFloat16, "bfloat16", "BFloat16Storage", "BF16", 2, 16},
    {DType::kFloat32, "float32", "FloatStorage", "F32", 4, 32},
    {DType::kFloat64, "float64", "DoubleStorage", "F64", 8, 64},
    {DType::kComplex32, "complex32", "ComplexHalfStorage", "", 4, 0},
    {DType::kComplex64, "complex64", "ComplexFloatStorage", "C64", 8, 64},
    {DType::kComplex128, "complex128", "ComplexDoubleStorage", "", 16, 0},
    {DType::kFloat8E4M3FN, "float8_e4m3fn", "", "F8_E4M3", 1, 8},
    {DType::kFloat8E5M2, "float8_e5m2", "", "F8_E5M2", 1, 8},
    {DType::kFloat8E4M3FNUZ, "float8_e4m3fnuz", "", "F8_E4M3FNUZ", 1, 8},
    {DType::kFloat8E5M2FNUZ, "float8_e5m2fnuz", "", "F8_E5M2FNUZ", 1, 8},
    {DType::kFloat8E8M0FNU, "float8_e8m0fnu", "", "F8_E8M0", 1, 8},
    {DType::kFloat4E2M1FNx2, "float4_e2m1fn_x2", "", "F4", 1, 4},
    {DType::kFloat6E2M3, "", "", "F6_E2M3", 0, 6},
    {DType::kFloat6E3M2, "", "", "F6_E3M2", 0, 6},
}};

// Torch spellings that name the same dtype as a canonical entry (torch.float is float32...).
struct Alias {
  absl::string_view name;
  DType dtype;
};
constexpr std::array<Alias, 9> kTorchAliases = {{
    {"float", DType::kFloat32},
    {"double", DType::kFloat64},
    {"half", DType::kFloat16},
    {"long", DType::kInt64},
    {"int", DType::kInt32},
    {"short", DType::kInt16},
    {"cfloat", DType::kComplex64},
    {"cdouble", DType::kComplex128},
    {"chalf", DType::kComplex32},
}};

template <typename Field>
absl::StatusOr<DType> Find(absl::string_view name, Field field, absl::string_view what) {
  if (!name.empty()) {
    for (const DTypeInfo& info : kDTypes) {
      if (info.*field == name) return info.dtype;
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown ", what, " '", name, "'"));
}

}  // namespace

std::span<const DTypeInfo> AllDTypes() { return kDTypes; }

const DTypeInfo& GetDTypeInfo(DType dtype) { return kDTypes[static_cast<size_t>(dtype)]; }

absl::string_view DTypeName(DType dtype) {
  const DTypeInfo& info = GetDTypeInfo(dtype);
  return info.torch_name.empty() ? info.safetensors_name : info.torch_name;
}

absl::StatusOr<DType> DTypeFromTorchName(absl::string_view name) {
  for (const Alias& alias : kTorchAliases) {
    if (alias.name == name) return alias.dtype;
  }
  return Find(name, &DTypeInfo::torch_name, "torch dtype");
}

absl::StatusOr<DType> DTypeFromLegacyStorage(absl::string_view name) {
  return Find(name, &DTypeInfo::legacy_storage, "torch storage class");
}

absl::StatusOr<DType> DTypeFromSafetensorsName(absl::string_view name) {
  return Find(name, &DTypeInfo::safetensors_name, "safetensors dtype");
}

}  // namespace mxport
