#include "common/torch/pickle_reduce.h"

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"

namespace mxport::pickle::internal_pickle {
namespace {

using H = GlobalHandler;

absl::Status ArgError(const Value& callable, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("bad arguments to ", callable.QualifiedName(), ": ", what));
}

bool IsSequence(const Value* v) {
  return v != nullptr && (v->kind == Kind::kTuple || v->kind == Kind::kList);
}

absl::StatusOr<std::vector<int64_t>> IntTuple(const Value& callable, const Value* v,
                                              absl::string_view what) {
  if (!IsSequence(v)) return ArgError(callable, absl::StrCat(what, " is not a tuple"));
  std::vector<int64_t> out;
  out.reserve(v->items.size());
  for (const Value* item : v->items) {
    if (item->kind != Kind::kInt) {
      return ArgError(callable, absl::StrCat(what, " holds a non-integer"));
    }
    out.push_back(item->integer);
  }
  return out;
}

bool Truthy(const Value* v) {
  return v != nullptr && ((v->kind == Kind::kBool && v->boolean) ||
                          (v->kind == Kind::kInt && v->integer != 0));
}

// Decodes UTF-8 `s` into code points, each of which must fit a byte (latin-1 round trip):
// U+0000..U+007F are one byte, U+0080..U+00FF are 0xC2/0xC3 plus one continuation byte.
absl::StatusOr<std::string> Latin1Bytes(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      i += 1;
    } else if ((c == 0xC2 || c == 0xC3) && i + 1 < s.size() &&
               (static_cast<unsigned char>(s[i + 1]) & 0xC0) == 0x80) {
      out.push_back(static_cast<char>((c & 0x03) << 6 | (static_cast<unsigned char>(s[i + 1]) & 0x3F)));
      i += 2;
    } else {
      return absl::InvalidArgumentError("_codecs.encode: code point above U+00FF for latin-1");
    }
  }
  return out;
}

// _rebuild_tensor[_v2|_v3]: (storage, offset, size, stride[, requires_grad, hooks[, dtype]]
// [, metadata]).
absl::StatusOr<Value*> RebuildTensor(ValueArena& arena, const Value& callable, const Value& args,
                                     H handler) {
  const auto& a = args.items;
  const size_t required = handler == H::kRebuildTensor ? 4 : handler == H::kRebuildTensorV2 ? 6 : 7;
  if (a.size() < required || a.size() > required + 1) {
    return ArgError(callable, absl::StrCat("expected ", required, " arguments, got ", a.size()));
  }
  if (a[0]->kind != Kind::kStorage) return ArgError(callable, "first argument is not a storage");
  if (a[1]->kind != Kind::kInt || a[1]->integer < 0) {
    return ArgError(callable, "storage offset is not a non-negative integer");
  }
  TensorRef* t = arena.NewTensor();
  t->storage = a[0]->storage;
  t->storage_offset = a[1]->integer;
  ASSIGN_OR_RETURN(t->shape, IntTuple(callable, a[2], "size"));
  ASSIGN_OR_RETURN(t->stride, IntTuple(callable, a[3], "stride"));
  if (t->shape.size() != t->stride.size()) {
    return ArgError(callable, "size and stride differ in length");
  }
  for (size_t i = 0; i < t->shape.size(); ++i) {
    if (t->shape[i] < 0 || t->stride[i] < 0) {
      return ArgError(callable, "negative size or stride");
    }
  }
  if (handler != H::kRebuildTensor) t->requires_grad = Truthy(a[4]);
  if (handler == H::kRebuildTensorV3) {
    if (a[6]->kind != Kind::kDType) return ArgError(callable, "dtype is not a torch dtype");
    t->dtype = a[6]->dtype;
  } else {
    if (t->storage->untyped) {
      return ArgError(callable, "an untyped storage needs _rebuild_tensor_v3 and a dtype");
    }
    t->dtype = t->storage->dtype;
  }
  if (a.size() == required + 1) {
    const Value* metadata = a[required];
    if (metadata->kind == Kind::kDict) {
      t->conj = Truthy(metadata->Get("conj"));
      t->neg = Truthy(metadata->Get("neg"));
    }
  }
  Value* v = arena.New(Kind::kTensor);
  v->tensor = t;
  return v;
}

absl::StatusOr<Value*> RebuildParameter(ValueArena& arena, const Value& callable,
                                        const Value& args) {
  if (args.items.size() < 3 || args.items[0]->kind != Kind::kTensor) {
    return ArgError(callable, "expected (tensor, requires_grad, hooks[, state])");
  }
  TensorRef* t = arena.NewTensor();
  *t = *args.items[0]->tensor;
  t->is_parameter = true;
  t->requires_grad = Truthy(args.items[1]);
  Value* v = arena.New(Kind::kTensor);
  v->tensor = t;
  return v;
}

Value* NewObject(ValueArena& arena, const Value& cls, const Value& args) {
  Value* v = arena.New(Kind::kObject);
  v->str = cls.str;
  v->name = cls.name;
  v->items = args.items;
  return v;
}

// Items of the single iterable argument of set()/frozenset()/OrderedDict(), if any.
absl::StatusOr<std::vector<const Value*>> IterableArg(const Value& callable, const Value& args) {
  if (args.items.empty()) return std::vector<const Value*>{};
  if (args.items.size() != 1 || (args.items[0]->kind != Kind::kList &&
                                 args.items[0]->kind != Kind::kTuple &&
                                 args.items[0]->kind != Kind::kSet)) {
    return ArgError(callable, "expected one list or tuple");
  }
  return args.items[0]->items;
}

// numpy type codes that decode to a plain Python scalar.
struct NumpyScalarType {
  absl::string_view code;
  Kind kind;
  int bytes;
  bool is_signed;
};
constexpr NumpyScalarType kNumpyScalars[] = {
    {"b1", Kind::kBool, 1, false}, {"i1", Kind::kInt, 1, true},  {"i2", Kind::kInt, 2, true},
    {"i4", Kind::kInt, 4, true},   {"i8", Kind::kInt, 8, true},  {"u1", Kind::kInt, 1, false},
    {"u2", Kind::kInt, 2, false},  {"u4", Kind::kInt, 4, false}, {"f4", Kind::kFloat, 4, true},
    {"f8", Kind::kFloat, 8, true},
};

// numpy.core.multiarray.scalar(dtype, bytes), where dtype is the inert numpy.dtype('f4', ...)
// with BUILD state (3, '<', ...). Unknown or big-endian types stay inert objects.
Value* NumpyScalar(ValueArena& arena, const Value& callable, const Value& args) {
  const auto& a = args.items;
  if (a.size() != 2 || a[0]->kind != Kind::kObject || a[1]->kind != Kind::kBytes ||
      a[0]->items.empty() || a[0]->items[0]->kind != Kind::kString) {
    return NewObject(arena, callable, args);
  }
  const Value& dtype = *a[0];
  const std::string& bytes = a[1]->str;
  const bool little = dtype.state == nullptr || dtype.state->kind != Kind::kTuple ||
                      dtype.state->items.size() < 2 || dtype.state->items[1]->str != ">";
  for (const NumpyScalarType& t : kNumpyScalars) {
    if (t.code != dtype.items[0]->str || static_cast<int>(bytes.size()) != t.bytes || !little) {
      continue;
    }
    uint64_t raw = 0;
    for (int i = 0; i < t.bytes; ++i) raw |= uint64_t{static_cast<uint8_t>(bytes[i])} << (8 * i);
    Value* v = arena.New(t.kind);
    if (t.kind == Kind::kFloat && t.bytes == 4) {
      float f;
      const uint32_t r32 = static_cast<uint32_t>(raw);
      std::memcpy(&f, &r32, 4);
      v->number = f;
    } else if (t.kind == Kind::kFloat) {
      std::memcpy(&v->number, &raw, 8);
    } else if (t.kind == Kind::kBool) {
      v->boolean = raw != 0;
    } else if (t.is_signed && t.bytes < 8 && (raw >> (8 * t.bytes - 1)) & 1) {
      v->integer = static_cast<int64_t>(raw | (~uint64_t{0} << (8 * t.bytes)));
    } else {
      v->integer = static_cast<int64_t>(raw);
    }
    return v;
  }
  return NewObject(arena, callable, args);
}

}  // namespace

absl::StatusOr<Value*> ApplyReduce(ValueArena& arena, const Value& callable, const Value& args) {
  if (callable.kind != Kind::kGlobal) {
    return absl::InvalidArgumentError(
        absl::StrCat("REDUCE of a non-callable ", ShortRepr(callable, 2, 1)));
  }
  if (args.kind != Kind::kTuple) {
    return ArgError(callable, "arguments are not a tuple");
  }
  const H handler = static_cast<H>(callable.handler);
  switch (handler) {
    case H::kRebuildTensor:
    case H::kRebuildTensorV2:
    case H::kRebuildTensorV3:
      return RebuildTensor(arena, callable, args, handler);
    case H::kRebuildParameter:
    case H::kRebuildParameterWithState:
      return RebuildParameter(arena, callable, args);
    case H::kRebuildFromType: {
      // (func, type, args[, state]): the tensor is func(*args); type and state are ignored.
      if (args.items.size() < 3 || args.items[0]->kind != Kind::kGlobal ||
          args.items[2]->kind != Kind::kTuple) {
        return ArgError(callable, "expected (func, type, args, state)");
      }
      const Value& func = *args.items[0];
      const H inner = static_cast<H>(func.handler);
      if (inner == H::kRebuildFromType) return ArgError(callable, "nested _rebuild_from_type");
      return ApplyReduce(arena, func, *args.items[2]);
    }
    case H::kTorchSize: {
      std::vector<const Value*> dims;
      ASSIGN_OR_RETURN(dims, IterableArg(callable, args));
      for (const Value* d : dims) {
        if (d->kind != Kind::kInt) return ArgError(callable, "dimension is not an integer");
      }
      Value* v = arena.New(Kind::kTuple);
      v->items = std::move(dims);
      return v;
    }
    case H::kTorchDevice: {
      if (args.items.empty() || args.items[0]->kind != Kind::kString) {
        return ArgError(callable, "expected (type[, index])");
      }
      Value* v = arena.New(Kind::kString);
      v->str = args.items[0]->str;
      if (args.items.size() > 1 && args.items[1]->kind == Kind::kInt) {
        absl::StrAppend(&v->str, ":", args.items[1]->integer);
      }
      return v;
    }
    case H::kOrderedDict: {
      std::vector<const Value*> pairs;
      ASSIGN_OR_RETURN(pairs, IterableArg(callable, args));
      Value* v = arena.New(Kind::kDict);
      for (const Value* pair : pairs) {
        if (!IsSequence(pair) || pair->items.size() != 2) {
          return ArgError(callable, "items are not (key, value) pairs");
        }
        v->items.push_back(pair->items[0]);
        v->items.push_back(pair->items[1]);
      }
      return v;
    }
    case H::kCodecsEncode: {
      if (args.items.size() != 2 || args.items[0]->kind != Kind::kString ||
          args.items[1]->kind != Kind::kString) {
        return ArgError(callable, "expected (str, encoding)");
      }
      const std::string& encoding = args.items[1]->str;
      Value* v = arena.New(Kind::kBytes);
      if (encoding == "latin1" || encoding == "latin-1" || encoding == "iso-8859-1") {
        ASSIGN_OR_RETURN(v->str, Latin1Bytes(args.items[0]->str));
      } else if (encoding == "utf-8" || encoding == "utf8" || encoding == "ascii") {
        v->str = args.items[0]->str;
      } else {
        return ArgError(callable, absl::StrCat("unsupported encoding '", encoding, "'"));
      }
      return v;
    }
    case H::kSet:
    case H::kFrozenSet: {
      Value* v = arena.New(Kind::kSet);
      ASSIGN_OR_RETURN(v->items, IterableArg(callable, args));
      return v;
    }
    case H::kByteArray: {
      Value* v = arena.New(Kind::kBytes);
      if (!args.items.empty()) {
        const Value* src = args.items[0];
        if (src->kind == Kind::kBytes) {
          v->str = src->str;
        } else if (src->kind == Kind::kString && args.items.size() == 2) {
          ASSIGN_OR_RETURN(v->str, Latin1Bytes(src->str));
        } else {
          return ArgError(callable, "expected bytes or (str, encoding)");
        }
      }
      return v;
    }
    case H::kGetAttr: {
      // Python 3.11 pickles an enum member as getattr(EnumClass, 'member'). Only an attribute
      // of an inert class is allowed; the result is another inert reference, never a lookup.
      if (args.items.size() != 2 || args.items[1]->kind != Kind::kString) {
        return ArgError(callable, "expected (class, name)");
      }
      const Value& owner = *args.items[0];
      const H owner_handler = static_cast<H>(owner.handler);
      if (owner.kind != Kind::kGlobal ||
          (owner_handler != H::kOpaque && owner_handler != H::kAllowedOpaque)) {
        return absl::PermissionDeniedError(absl::StrCat(
            "forbidden global ", callable.QualifiedName(), " on ", ShortRepr(owner, 2, 1)));
      }
      Value* v = arena.New(Kind::kGlobal);
      v->str = owner.str;
      v->name = absl::StrCat(owner.name, ".", args.items[1]->str);
      v->handler = static_cast<int>(H::kOpaque);
      return v;
    }
    case H::kNumpyScalar:
      return NumpyScalar(arena, callable, args);
    case H::kUnsupportedTensor:
      return absl::UnimplementedError(absl::StrCat(
          "unsupported tensor kind ", callable.QualifiedName(),
          " (quantized, sparse, meta and subclass tensors cannot be exported)"));
    case H::kTypedStorage:
    case H::kUntypedStorage:
      return absl::InvalidArgumentError(
          absl::StrCat("storage class ", callable.QualifiedName(), " called directly"));
    case H::kDenied:
      return absl::PermissionDeniedError(
          absl::StrCat("forbidden global ", callable.QualifiedName()));
    case H::kTorchDType:
    case H::kOpaque:
    case H::kAllowedOpaque:
      return NewObject(arena, callable, args);
  }
  return absl::InternalError("unhandled global handler");
}

absl::StatusOr<Value*> ApplyNewObj(ValueArena& arena, const Value& cls, const Value& args) {
  if (cls.kind != Kind::kGlobal || args.kind != Kind::kTuple) {
    return absl::InvalidArgumentError("NEWOBJ needs a class and a tuple");
  }
  switch (static_cast<H>(cls.handler)) {
    case H::kOpaque:
    case H::kAllowedOpaque:
      return NewObject(arena, cls, args);
    case H::kOrderedDict:
    case H::kSet:
    case H::kFrozenSet:
    case H::kByteArray:
      return ApplyReduce(arena, cls, args);
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("NEWOBJ of ", cls.QualifiedName(), " is not supported"));
  }
}

absl::Status ApplyBuild(ValueArena& arena, Value& obj, const Value& state) {
  switch (obj.kind) {
    case Kind::kObject:
      if (obj.state != nullptr && obj.state->kind == Kind::kDict &&
          state.kind == Kind::kDict) {
        Value* merged = arena.New(Kind::kDict);
        merged->items = obj.state->items;
        merged->items.insert(merged->items.end(), state.items.begin(), state.items.end());
        obj.state = merged;
      } else {
        obj.state = &state;
      }
      return absl::OkStatus();
    case Kind::kDict:  // state_dict() attaches {'_metadata': ...}; kept, not walked
      obj.state = &state;
      return absl::OkStatus();
    case Kind::kTensor:  // Parameter / tensor attribute state: not needed for the bytes
      return absl::OkStatus();
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("BUILD on a value that takes no state: ", ShortRepr(obj, 2, 1)));
  }
}

}  // namespace mxport::pickle::internal_pickle
