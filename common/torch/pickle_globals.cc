#include "common/torch/pickle_globals.h"

#include <array>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace mxport::pickle {
namespace {

using H = GlobalHandler;

struct Rule {
  absl::string_view module;
  absl::string_view name;  // "*" matches every name in the module
  GlobalHandler handler;
};

// Exact globals. Checked before the module-wide rules below.
constexpr std::array<Rule, 57> kRules = {{
    {"torch._utils", "_rebuild_tensor", H::kRebuildTensor},
    {"torch._utils", "_rebuild_tensor_v2", H::kRebuildTensorV2},
    {"torch._utils", "_rebuild_tensor_v3", H::kRebuildTensorV3},
    {"torch._utils", "_rebuild_parameter", H::kRebuildParameter},
    {"torch._utils", "_rebuild_parameter_with_state", H::kRebuildParameterWithState},
    {"torch._utils", "_rebuild_qtensor", H::kUnsupportedTensor},
    {"torch._utils", "_rebuild_sparse_tensor", H::kUnsupportedTensor},
    {"torch._utils", "_rebuild_sparse_csr_tensor", H::kUnsupportedTensor},
    {"torch._utils", "_rebuild_meta_tensor_no_storage", H::kUnsupportedTensor},
    {"torch._utils", "_rebuild_wrapper_subclass", H::kUnsupportedTensor},
    {"torch._utils", "_rebuild_device_tensor_from_numpy", H::kUnsupportedTensor},
    {"torch._utils", "_rebuild_device_tensor_from_cpu_tensor", H::kUnsupportedTensor},
    {"torch._utils", "_rebuild_nested_tensor", H::kUnsupportedTensor},
    {"torch._utils", "_rebuild_xla_tensor", H::kUnsupportedTensor},
    {"torch._utils", "_rebuild_mlc_tensor", H::kUnsupportedTensor},
    {"torch._tensor", "_rebuild_from_type", H::kRebuildFromType},
    {"torch._tensor", "_rebuild_from_type_v2", H::kRebuildFromType},
    {"torch", "QInt8Storage", H::kUnsupportedTensor},
    {"torch", "QUInt8Storage", H::kUnsupportedTensor},
    {"torch", "QInt32Storage", H::kUnsupportedTensor},
    {"torch", "QUInt4x2Storage", H::kUnsupportedTensor},
    {"torch", "QUInt2x4Storage", H::kUnsupportedTensor},
    {"torch", "UntypedStorage", H::kUntypedStorage},
    {"torch.storage", "UntypedStorage", H::kUntypedStorage},
    {"torch", "Size", H::kTorchSize},
    {"torch", "device", H::kTorchDevice},
    {"torch", "load", H::kDenied},
    {"torch.serialization", "load", H::kDenied},
    {"torch.serialization", "_get_layout", H::kAllowedOpaque},
    {"torch", "Tensor", H::kAllowedOpaque},
    {"torch.nn.parameter", "Parameter", H::kAllowedOpaque},
    {"collections", "OrderedDict", H::kOrderedDict},
    {"_codecs", "encode", H::kCodecsEncode},
    {"builtins", "set", H::kSet},
    {"__builtin__", "set", H::kSet},
    {"builtins", "frozenset", H::kFrozenSet},
    {"__builtin__", "frozenset", H::kFrozenSet},
    {"builtins", "bytearray", H::kByteArray},
    {"__builtin__", "bytearray", H::kByteArray},
    {"builtins", "getattr", H::kGetAttr},
    {"__builtin__", "getattr", H::kGetAttr},
    {"builtins", "complex", H::kAllowedOpaque},
    {"__builtin__", "complex", H::kAllowedOpaque},
    {"builtins", "slice", H::kAllowedOpaque},
    {"builtins", "object", H::kAllowedOpaque},
    {"argparse", "Namespace", H::kAllowedOpaque},
    {"_io", "BytesIO", H::kAllowedOpaque},
    {"io", "BytesIO", H::kAllowedOpaque},
    {"numpy", "dtype", H::kAllowedOpaque},
    {"numpy", "ndarray", H::kAllowedOpaque},
    {"numpy.core.multiarray", "_reconstruct", H::kAllowedOpaque},
    {"numpy._core.multiarray", "_reconstruct", H::kAllowedOpaque},
    {"numpy.core.multiarray", "scalar", H::kNumpyScalar},
    {"numpy._core.multiarray", "scalar", H::kNumpyScalar},
    {"pathlib", "PosixPath", H::kAllowedOpaque},
    {"pathlib", "PurePosixPath", H::kAllowedOpaque},
    {"collections", "defaultdict", H::kAllowedOpaque},
}};

// Modules whose globals exist to run code, touch the system or load more pickles. Denied with
// every submodule ("os" covers "os.path").
constexpr std::array<absl::string_view, 44> kDeniedModules = {
    "os",          "posix",      "nt",          "subprocess", "sys",        "shutil",
    "importlib",   "runpy",      "pickle",      "_pickle",    "cPickle",    "marshal",
    "socket",      "ctypes",     "code",        "codeop",     "pty",        "commands",
    "webbrowser",  "types",      "functools",   "operator",   "multiprocessing",
    "signal",      "threading",  "_thread",     "asyncio",    "pdb",        "timeit",
    "platform",    "tempfile",   "glob",        "builtins",   "__builtin__", "io",
    "_io",         "torch.hub",  "torch.jit",   "torch._C",   "torch.ops",  "torch._ops",
    "torch.package", "torch.utils.cpp_extension", "torch.cuda",
};

bool InModule(absl::string_view module, absl::string_view root) {
  return module == root ||
         (absl::StartsWith(module, root) && module.size() > root.size() &&
          module[root.size()] == '.');
}

}  // namespace

GlobalResolution ResolveGlobal(absl::string_view module, absl::string_view name) {
  for (const Rule& rule : kRules) {
    if (rule.module == module && (rule.name == name || rule.name == "*")) {
      return {rule.handler};
    }
  }
  if (module == "torch") {
    if (auto dtype = DTypeFromTorchName(name); dtype.ok()) {
      return {H::kTorchDType, *dtype};
    }
    if (auto dtype = DTypeFromLegacyStorage(name); dtype.ok()) {
      return {H::kTypedStorage, *dtype};
    }
  }
  for (absl::string_view denied : kDeniedModules) {
    if (InModule(module, denied)) return {H::kDenied};
  }
  return {H::kOpaque};
}

}  // namespace mxport::pickle
