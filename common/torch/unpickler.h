// A restricted unpickler: a pickle VM that builds inert values and never runs code.
//
// Supports the opcodes of protocols 2 to 5 that torch.save, DCP metadata and Megatron
// checkpoints use (formats.md §1.4), including the protocol-0 PUT/GET and LIST/DICT forms.
// GLOBAL references are resolved through one table (pickle_globals.cc):
//   - interpreted: torch tensor rebuild functions, storage classes, dtypes, torch.Size,
//     torch.device, OrderedDict, _codecs.encode, set/frozenset/bytearray; these produce real
//     values (TensorRef, StorageRef, dict, bytes, ...);
//   - denied: modules and builtins that exist to run code (os, posix, subprocess, sys,
//     builtins.eval/exec/getattr/__import__, importlib, pickle, ...): referencing one fails with
//     PermissionDenied naming it;
//   - anything else (argparse.Namespace, io.BytesIO, numpy reconstruction, enums, user
//     classes): an inert kObject recording the class and its arguments, or, with
//     `strict_globals`, PermissionDenied unless the global is on the allow-list.
// Persistent ids of the torch form ('storage', type, key, location, numel) become StorageRefs,
// one per key. Limits bound memo size, stack size, value count, lengths (against the bytes
// left) and nesting depth; exceeding one is InvalidArgument or ResourceExhausted. Every error
// names `context` and the byte offset of the opcode.
#ifndef MXPORT_COMMON_TORCH_UNPICKLER_H_
#define MXPORT_COMMON_TORCH_UNPICKLER_H_

#include <memory>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/statusor.h"
#include "common/torch/pickle_value.h"

namespace mxport::pickle {

struct UnpicklerOptions {
  size_t max_memo_entries = size_t{1} << 24;
  size_t max_values = size_t{1} << 26;
  size_t max_stack = size_t{1} << 20;
  uint32_t max_depth = 512;
  // Unknown globals fail instead of becoming inert objects.
  bool strict_globals = false;
};

struct Unpickled {
  std::unique_ptr<ValueArena> arena;
  const Value* root = nullptr;
  // Every storage named by a persistent id, in first-seen order.
  std::vector<const StorageRef*> storages;
};

absl::StatusOr<Unpickled> Unpickle(absl::string_view data, absl::string_view context,
                                   const UnpicklerOptions& options = {});

}  // namespace mxport::pickle

#endif  // MXPORT_COMMON_TORCH_UNPICKLER_H_
