// Applying an interpreted global to its arguments (REDUCE / NEWOBJ / BUILD), for the
// unpickler. Internal to common/torch.
#ifndef MXPORT_COMMON_TORCH_PICKLE_REDUCE_H_
#define MXPORT_COMMON_TORCH_PICKLE_REDUCE_H_

#include "absl/status/statusor.h"
#include "common/torch/pickle_globals.h"
#include "common/torch/pickle_value.h"

namespace mxport::pickle::internal_pickle {

// `callable(*args)` for REDUCE. `callable` is a kGlobal; `args` a kTuple. Errors are
// InvalidArgument/PermissionDenied/Unimplemented with a message that names the global (the
// caller adds file and offset).
absl::StatusOr<Value*> ApplyReduce(ValueArena& arena, const Value& callable, const Value& args);

// `cls.__new__(cls, *args)` for NEWOBJ / NEWOBJ_EX.
absl::StatusOr<Value*> ApplyNewObj(ValueArena& arena, const Value& cls, const Value& args);

// `obj.__setstate__(state)` for BUILD.
absl::Status ApplyBuild(ValueArena& arena, Value& obj, const Value& state);

}  // namespace mxport::pickle::internal_pickle

#endif  // MXPORT_COMMON_TORCH_PICKLE_REDUCE_H_
