// The values a restricted unpickle produces, held in an arena.
//
// Every Value is owned by a ValueArena and refers to its children by raw pointer, so graphs
// with shared or even cyclic references (possible through the pickle memo) cost nothing to
// destroy and never recurse. Code that walks values must bound its depth and guard against
// cycles; WalkValues below does both. Values are immutable once the unpickler returns; the
// arena and its values are then safe to read from several threads.
//
// Interpreted Python objects map onto kinds: None/bool/int/float/str/bytes; tuple, list, dict
// (insertion-ordered pairs; OrderedDict too), set/frozenset; torch storages, tensors and
// dtypes; kGlobal, a reference to `module.name` that was not called; and kObject, an inert
// record of any other object (class module/name, constructor args, BUILD state, and items
// added by SETITEM/APPEND). Nothing is ever executed.
#ifndef MXPORT_COMMON_TORCH_PICKLE_VALUE_H_
#define MXPORT_COMMON_TORCH_PICKLE_VALUE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/base/dtype.h"

namespace mxport::pickle {

enum class Kind : uint8_t {
  kNone,
  kBool,
  kInt,     // fits in int64
  kBigInt,  // little-endian two's complement bytes in `str`
  kFloat,
  kString,  // UTF-8
  kBytes,
  kTuple,
  kList,
  kDict,    // items = k0, v0, k1, v1, ...
  kSet,     // set or frozenset
  kGlobal,  // module.name, not called
  kObject,  // inert instance of module.name
  kStorage,
  kTensor,
  kDType,
};

// A torch storage named by a persistent id: record `data/<key>` of the archive.
struct StorageRef {
  std::string key;
  std::string location;  // "cpu", "cuda:0", ...
  bool untyped = false;  // UntypedStorage: numel counts bytes, dtype comes from the tensor
  DType dtype = DType::kUInt8;
  uint64_t numel = 0;    // elements of dtype (bytes when untyped)
};

struct TensorRef {
  const StorageRef* storage = nullptr;
  DType dtype = DType::kFloat32;
  int64_t storage_offset = 0;  // elements
  std::vector<int64_t> shape;
  std::vector<int64_t> stride;  // elements
  bool requires_grad = false;
  bool is_parameter = false;
  bool conj = false;  // metadata {'conj': True}: values are the conjugate of the storage
  bool neg = false;   // metadata {'neg': True}: values are the negation of the storage
};

struct Value {
  Kind kind = Kind::kNone;
  bool boolean = false;
  int64_t integer = 0;
  double number = 0;
  std::string str;     // kString/kBytes/kBigInt payload; kGlobal/kObject: module
  std::string name;    // kGlobal/kObject: qualified name within the module
  std::vector<const Value*> items;  // tuple/list/set elements, dict pairs, object args
  std::vector<const Value*> extra;     // kObject: pairs added by SETITEM(S)
  std::vector<const Value*> appended;  // kObject: items added by APPEND(S)
  const Value* state = nullptr;     // kObject / kDict: BUILD state
  const StorageRef* storage = nullptr;  // kStorage
  const TensorRef* tensor = nullptr;    // kTensor
  DType dtype = DType::kFloat32;        // kDType
  int handler = 0;  // kGlobal: the interpreting handler (unpickler-internal)
  uint32_t depth = 0;  // container nesting below this value, as built

  bool IsString() const { return kind == Kind::kString; }
  // For kDict: the value under string key `key`, or nullptr.
  const Value* Get(absl::string_view key) const;
  // For kObject with a dict state (argparse.Namespace and most classes): attribute `key`.
  const Value* Attr(absl::string_view key) const;
  // "module.name" for kGlobal/kObject.
  std::string QualifiedName() const { return str + "." + name; }
};

// Owns values, storages and tensors. Not copyable; moving keeps every pointer valid.
class ValueArena {
 public:
  ValueArena() = default;
  ValueArena(ValueArena&&) = default;
  ValueArena& operator=(ValueArena&&) = default;
  ValueArena(const ValueArena&) = delete;
  ValueArena& operator=(const ValueArena&) = delete;

  Value* New(Kind kind) {
    Value& v = values_.emplace_back();
    v.kind = kind;
    return &v;
  }
  StorageRef* NewStorage() { return &storages_.emplace_back(); }
  TensorRef* NewTensor() { return &tensors_.emplace_back(); }
  size_t size() const { return values_.size(); }

 private:
  std::deque<Value> values_;
  std::deque<StorageRef> storages_;
  std::deque<TensorRef> tensors_;
};

// A short, one-line rendering: ints, floats, strings, "bfloat16[2, 3]" for tensors,
// "module.name(args)" for objects; containers abbreviated past `max_items`.
std::string ShortRepr(const Value& value, int max_items = 8, int max_depth = 3);

// A path component for a dict key: the string itself, an int in decimal, else a short repr.
std::string KeyToPathComponent(const Value& key);

// Calls `visit(path, value)` for every value reachable from `root`, parents before children.
// Paths join components with '/': dict keys (KeyToPathComponent), list/tuple/set indices, and
// the attributes of objects whose BUILD state is a dict. Tensors are leaves. `visit` returns
// false to skip a value's children. Fails with InvalidArgument past `max_depth` levels or on a
// cycle.
absl::Status WalkValues(const Value& root, int max_depth,
                        const std::function<bool(const std::string& path, const Value&)>& visit);

}  // namespace mxport::pickle

#endif  // MXPORT_COMMON_TORCH_PICKLE_VALUE_H_
