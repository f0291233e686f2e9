// The one table that decides what each pickle GLOBAL means (see unpickler.h). Internal to the
// unpickler; exposed for tests and for `mxport inspect`.
#ifndef MXPORT_COMMON_TORCH_PICKLE_GLOBALS_H_
#define MXPORT_COMMON_TORCH_PICKLE_GLOBALS_H_

#include "absl/strings/string_view.h"

#include "common/base/dtype.h"

namespace mxport::pickle {

enum class GlobalHandler : int {
  kOpaque = 0,          // inert object (class recorded, never called)
  kAllowedOpaque,       // inert object, and on the strict allow-list
  kDenied,              // fails: exists to run code
  kUnsupportedTensor,   // a torch tensor kind we cannot read (quantized, sparse, meta, ...)
  kRebuildTensor,       // torch._utils._rebuild_tensor (storage, offset, size, stride)
  kRebuildTensorV2,     // (..., requires_grad, hooks[, metadata])
  kRebuildTensorV3,     // (..., requires_grad, hooks, dtype[, metadata])
  kRebuildParameter,    // (data, requires_grad, hooks)
  kRebuildParameterWithState,  // (data, requires_grad, hooks, state)
  kRebuildFromType,     // torch._tensor._rebuild_from_type(_v2)(func, type, args[, state])
  kTypedStorage,        // torch.<X>Storage
  kUntypedStorage,      // torch.UntypedStorage
  kTorchDType,          // torch.<dtype>: resolves to a kDType value
  kTorchSize,           // torch.Size(tuple)
  kTorchDevice,         // torch.device('cuda', 0)
  kOrderedDict,         // collections.OrderedDict
  kCodecsEncode,        // _codecs.encode(str, 'latin1') -> bytes
  kSet,                 // builtins.set
  kFrozenSet,           // builtins.frozenset
  kByteArray,           // builtins.bytearray
  kGetAttr,             // builtins.getattr(inert class, 'name'): how Python 3.11 pickles enums
  kNumpyScalar,         // numpy.core.multiarray.scalar(dtype, bytes): a plain int/float/bool
};

struct GlobalResolution {
  GlobalHandler handler = GlobalHandler::kOpaque;
  DType dtype = DType::kUInt8;  // kTypedStorage, kTorchDType
};

GlobalResolution ResolveGlobal(absl::string_view module, absl::string_view name);

}  // namespace mxport::pickle

#endif  // MXPORT_COMMON_TORCH_PICKLE_GLOBALS_H_
