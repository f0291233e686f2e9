// Element types: every torch dtype a checkpoint can hold, with its safetensors spelling.
//
// One table (dtype.cc) maps each DType to its torch name (`torch.<name>`), its legacy typed
// storage class (`torch.FloatStorage`), its safetensors name, and its size. All lookups go
// through that table; there is no per-dtype switch anywhere else. Lookups by name return
// InvalidArgument naming the unknown spelling. Everything here is immutable and thread-safe.
//
// Sub-byte types: torch's float4_e2m1fn_x2 packs two fp4 values in one byte (element_bytes 1),
// while safetensors' F4 counts logical fp4 values (bits 4), so a torch [2,4] tensor is an F4
// [2,8] entry. The F6 types exist only in safetensors and have no torch name.
#ifndef MXPORT_COMMON_BASE_DTYPE_H_
#define MXPORT_COMMON_BASE_DTYPE_H_

#include <cstdint>
#include <span>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace mxport {

enum class DType : uint8_t {
  kBool,
  kUInt8,
  kInt8,
  kInt16,
  kInt32,
  kInt64,
  kUInt16,
  kUInt32,
  kUInt64,
  kFloat16,
  kBFloat16,
  kFloat32,
  kFloat64,
  kComplex32,
  kComplex64,
  kComplex128,
  kFloat8E4M3FN,
  kFloat8E5M2,
  kFloat8E4M3FNUZ,
  kFloat8E5M2FNUZ,
  kFloat8E8M0FNU,
  kFloat4E2M1FNx2,
  kFloat6E2M3,  // safetensors only
  kFloat6E3M2,  // safetensors only
};

struct DTypeInfo {
  DType dtype;
  absl::string_view torch_name;        // "bfloat16"; empty when torch has no such dtype
  absl::string_view legacy_storage;    // "BFloat16Storage"; empty when only UntypedStorage holds it
  absl::string_view safetensors_name;  // "BF16"; empty when safetensors has no such dtype
  int element_bytes;                  // bytes of one torch element (0 for safetensors-only types)
  int safetensors_bits;               // bits of one safetensors element (0 when no name)
};

// The whole table, in enum order.
std::span<const DTypeInfo> AllDTypes();
const DTypeInfo& GetDTypeInfo(DType dtype);

// Bytes of one torch element.
inline int ElementBytes(DType dtype) { return GetDTypeInfo(dtype).element_bytes; }
// A printable name: the torch name, else the safetensors name.
absl::string_view DTypeName(DType dtype);

absl::StatusOr<DType> DTypeFromTorchName(absl::string_view name);        // "float8_e4m3fn"
absl::StatusOr<DType> DTypeFromLegacyStorage(absl::string_view name);    // "HalfStorage"
absl::StatusOr<DType> DTypeFromSafetensorsName(absl::string_view name);  // "F8_E4M3"

}  // namespace mxport

#endif  // MXPORT_COMMON_BASE_DTYPE_H_
