#include "common/torch/unpickler.h"

#include <cstring>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/torch/pickle_globals.h"
#include "common/torch/pickle_reduce.h"

namespace mxport::pickle {
namespace {

using internal_pickle::ApplyBuild;
using internal_pickle::ApplyNewObj;
using internal_pickle::ApplyReduce;

class Vm {
 public:
  Vm(absl::string_view data, absl::string_view context, const UnpicklerOptions& options)
      : data_(data), context_(context), options_(options),
        arena_(std::make_unique<ValueArena>()) {}

  absl::StatusOr<Unpickled> Run() {
    absl::Status status = Loop();
    if (!status.ok()) {
      return absl::Status(status.code(), absl::StrCat(context_, ": ", status.message(),
                                                      " (at byte ", op_pos_, ")"));
    }
    Unpickled out;
    out.root = result_;
    out.storages = std::move(storage_order_);
    out.arena = std::move(arena_);
    return out;
  }

 private:
  // ---- byte reading -------------------------------------------------------------------
  absl::Status Need(uint64_t n) {
    if (n > data_.size() - pos_) {
      return absl::InvalidArgumentError(absl::StrCat(
          "truncated pickle: needs ", n, " bytes, ", data_.size() - pos_, " left"));
    }
    return absl::OkStatus();
  }
  absl::StatusOr<uint64_t> ReadUInt(int bytes) {
    RETURN_IF_ERROR(Need(bytes));
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) {
      v |= static_cast<uint64_t>(static_cast<uint8_t>(data_[pos_ + i])) << (8 * i);
    }
    pos_ += bytes;
    return v;
  }
  absl::StatusOr<absl::string_view> ReadBytes(uint64_t n) {
    RETURN_IF_ERROR(Need(n));
    absl::string_view out = data_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  absl::StatusOr<absl::string_view> ReadLine() {
    const size_t end = data_.find('\n', pos_);
    if (end == absl::string_view::npos || end - pos_ > 4096) {
      return absl::InvalidArgumentError("unterminated or overlong text argument");
    }
    absl::string_view line = data_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return line;
  }

  // ---- stack -------------------------------------------------------------------------
  absl::StatusOr<Value*> New(Kind kind) {
    if (arena_->size() >= options_.max_values) {
      return absl::ResourceExhaustedError(
          absl::StrCat("more than ", options_.max_values, " values"));
    }
    return arena_->New(kind);
  }
  absl::Status Push(Value* v) {
    if (stack_.size() >= options_.max_stack) {
      return absl::ResourceExhaustedError("pickle stack too deep");
    }
    stack_.push_back(v);
    return absl::OkStatus();
  }
  absl::StatusOr<Value*> Pop() {
    if (stack_.size() <= floor()) return absl::InvalidArgumentError("pop from an empty stack");
    Value* v = stack_.back();
    stack_.pop_back();
    return v;
  }
  absl::StatusOr<Value*> Top() {
    if (stack_.size() <= floor()) return absl::InvalidArgumentError("empty stack");
    return stack_.back();
  }
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  // Pops everything above the last MARK.
  absl::StatusOr<std::vector<Value*>> PopMark() {
    if (marks_.empty()) return absl::InvalidArgumentError("no MARK on the stack");
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<Value*> items(stack_.begin() + mark, stack_.end());
    stack_.resize(mark);
    return items;
  }
  // Records that `parent` now holds `child`, enforcing the nesting limit.
  absl::Status Nest(Value* parent, const Value* child) {
    parent->depth = std::max(parent->depth, child->depth + 1);
    if (parent->depth > options_.max_depth) {
      return absl::InvalidArgumentError(
          absl::StrCat("values nested deeper than ", options_.max_depth, " levels"));
    }
    return absl::OkStatus();
  }
  absl::StatusOr<Value*> MakeSequence(Kind kind, const std::vector<Value*>& items) {
    ASSIGN_OR_RETURN(Value* v, New(kind));
    v->items.assign(items.begin(), items.end());
    for (const Value* item : items) RETURN_IF_ERROR(Nest(v, item));
    return v;
  }
  absl::StatusOr<Value*> MakeScalar(Kind kind) { return New(kind); }

  // ---- memo --------------------------------------------------------------------------
  absl::Status Put(uint64_t index) {
    ASSIGN_OR_RETURN(Value* top, Top());
    if (memo_.size() >= options_.max_memo_entries && !memo_.contains(index)) {
      return absl::ResourceExhaustedError("pickle memo too large");
    }
    memo_[index] = top;
    return absl::OkStatus();
  }
  absl::Status Get(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) {
      return absl::InvalidArgumentError(absl::StrCat("memo key ", index, " was never stored"));
    }
    return Push(it->second);
  }

  // ---- opcodes -----------------------------------------------------------------------
  absl::Status PushInt(int64_t v) {
    ASSIGN_OR_RETURN(Value* out, New(Kind::kInt));
    out->integer = v;
    return Push(out);
  }
  absl::Status PushLong(absl::string_view bytes) {
    // Two's complement, little-endian. Fits in int64 when the bytes beyond the 8th are sign.
    if (bytes.size() <= 8) {
      uint64_t u = 0;
      for (size_t i = 0; i < bytes.size(); ++i) {
        u |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
      }
      if (!bytes.empty() && bytes.size() < 8 && (static_cast<uint8_t>(bytes.back()) & 0x80)) {
        u |= ~uint64_t{0} << (8 * bytes.size());
      }
      return PushInt(static_cast<int64_t>(u));
    }
    ASSIGN_OR_RETURN(Value* out, New(Kind::kBigInt));
    out->str.assign(bytes.data(), bytes.size());
    return Push(out);
  }
  absl::Status PushText(Kind kind, uint64_t n) {
    ASSIGN_OR_RETURN(absl::string_view bytes, ReadBytes(n));
    ASSIGN_OR_RETURN(Value* out, New(kind));
    out->str.assign(bytes.data(), bytes.size());
    return Push(out);
  }
  absl::Status PushGlobal(absl::string_view module, absl::string_view name) {
    const GlobalResolution r = ResolveGlobal(module, name);
    if (r.handler == GlobalHandler::kDenied) {
      return absl::PermissionDeniedError(
          absl::StrCat("forbidden global '", module, ".", name, "'"));
    }
    if (options_.strict_globals && r.handler == GlobalHandler::kOpaque) {
      return absl::PermissionDeniedError(
          absl::StrCat("global '", module, ".", name, "' is not on the allow-list"));
    }
    if (r.handler == GlobalHandler::kTorchDType) {
      ASSIGN_OR_RETURN(Value* out, New(Kind::kDType));
      out->dtype = r.dtype;
      return Push(out);
    }
    ASSIGN_OR_RETURN(Value* out, New(Kind::kGlobal));
    out->str.assign(module.data(), module.size());
    out->name.assign(name.data(), name.size());
    out->handler = static_cast<int>(r.handler);
    out->dtype = r.dtype;
    return Push(out);
  }
  absl::Status PersistentLoad(const Value& pid) {
    // ('storage', storage_type, key, location, numel[, view_metadata])
    if (pid.kind != Kind::kTuple || pid.items.size() < 5 ||
        pid.items[0]->kind != Kind::kString || pid.items[0]->str != "storage") {
      return absl::InvalidArgumentError(
          absl::StrCat("unsupported persistent id ", ShortRepr(pid, 3, 1)));
    }
    const Value& type = *pid.items[1];
    const Value& key = *pid.items[2];
    const Value& location = *pid.items[3];
    const Value& numel = *pid.items[4];
    const auto handler = static_cast<GlobalHandler>(type.handler);
    if (type.kind == Kind::kGlobal && handler == GlobalHandler::kUnsupportedTensor) {
      return absl::UnimplementedError(absl::StrCat(
          "quantized storage ", type.QualifiedName(), " cannot be exported"));
    }
    if (type.kind != Kind::kGlobal || (handler != GlobalHandler::kTypedStorage &&
                                       handler != GlobalHandler::kUntypedStorage)) {
      return absl::InvalidArgumentError(
          absl::StrCat("persistent id names no storage class: ", ShortRepr(type, 2, 1)));
    }
    if (key.kind != Kind::kString || numel.kind != Kind::kInt || numel.integer < 0) {
      return absl::InvalidArgumentError("malformed storage persistent id");
    }
    const bool untyped = handler == GlobalHandler::kUntypedStorage;
    StorageRef*& storage = storages_[key.str];
    if (storage == nullptr) {
      storage = arena_->NewStorage();
      storage->key = key.str;
      storage->location = location.kind == Kind::kString ? location.str : "";
      storage->untyped = untyped;
      storage->dtype = untyped ? DType::kUInt8 : type.dtype;
      storage->numel = static_cast<uint64_t>(numel.integer);
      storage_order_.push_back(storage);
    } else if (storage->untyped != untyped || (!untyped && storage->dtype != type.dtype) ||
               storage->numel != static_cast<uint64_t>(numel.integer)) {
      return absl::InvalidArgumentError(
          absl::StrCat("storage '", key.str, "' is declared twice with different types"));
    }
    ASSIGN_OR_RETURN(Value* out, New(Kind::kStorage));
    out->storage = storage;
    return Push(out);
  }
  absl::Status AppendTo(Value& target, const std::vector<Value*>& items) {
    std::vector<const Value*>* dst = nullptr;
    if (target.kind == Kind::kList) dst = &target.items;
    if (target.kind == Kind::kObject) dst = &target.appended;
    if (dst == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("APPEND to a value that is not a list: ", ShortRepr(target, 2, 1)));
    }
    for (Value* item : items) {
      dst->push_back(item);
      RETURN_IF_ERROR(Nest(&target, item));
    }
    return absl::OkStatus();
  }
  absl::Status SetItems(Value& target, const std::vector<Value*>& kv) {
    if (kv.size() % 2 != 0) return absl::InvalidArgumentError("SETITEMS with an odd item count");
    std::vector<const Value*>* dst = nullptr;
    if (target.kind == Kind::kDict) dst = &target.items;
    if (target.kind == Kind::kObject) dst = &target.extra;
    if (dst == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("SETITEM on a value that is not a dict: ", ShortRepr(target, 2, 1)));
    }
    for (Value* item : kv) {
      dst->push_back(item);
      RETURN_IF_ERROR(Nest(&target, item));
    }
    return absl::OkStatus();
  }

  absl::Status Loop();
  absl::Status Step(uint8_t op);

  absl::string_view data_;
  absl::string_view context_;
  const UnpicklerOptions& options_;
  std::unique_ptr<ValueArena> arena_;
  size_t pos_ = 0;
  size_t op_pos_ = 0;
  std::vector<Value*> stack_;
  std::vector<size_t> marks_;
  absl::flat_hash_map<uint64_t, Value*> memo_;
  absl::flat_hash_map<std::string, StorageRef*> storages_;
  std::vector<const StorageRef*> storage_order_;
  const Value* result_ = nullptr;
};

absl::Status Vm::Loop() {
  while (true) {
    op_pos_ = pos_;
    if (pos_ >= data_.size()) return absl::InvalidArgumentError("pickle ends without STOP");
    const uint8_t op = static_cast<uint8_t>(data_[pos_++]);
    if (op == '.') {  // STOP
      if (!marks_.empty()) return absl::InvalidArgumentError("STOP with an open MARK");
      ASSIGN_OR_RETURN(Value* top, Pop());
      result_ = top;
      return absl::OkStatus();
    }
    RETURN_IF_ERROR(Step(op));
  }
}

absl::Status Vm::Step(uint8_t op) {
  switch (op) {
    case 0x80: {  // PROTO
      ASSIGN_OR_RETURN(uint64_t proto, ReadUInt(1));
      if (proto > 5) return absl::InvalidArgumentError(absl::StrCat("pickle protocol ", proto));
      return absl::OkStatus();
    }
    case 0x95:  // FRAME: a length hint only
      return ReadUInt(8).status();
    case '(':  // MARK
      if (marks_.size() >= options_.max_depth) {
        return absl::InvalidArgumentError(
            absl::StrCat("MARKs nested deeper than ", options_.max_depth, " levels"));
      }
      marks_.push_back(stack_.size());
      return absl::OkStatus();
    case '0':  // POP
      return Pop().status();
    case '1':  // POP_MARK
      return PopMark().status();
    case '2': {  // DUP
      ASSIGN_OR_RETURN(Value* top, Top());
      return Push(top);
    }
    case 'N': {
      ASSIGN_OR_RETURN(Value* v, MakeScalar(Kind::kNone));
      return Push(v);
    }
    case 0x88:
    case 0x89: {  // NEWTRUE, NEWFALSE
      ASSIGN_OR_RETURN(Value* v, MakeScalar(Kind::kBool));
      v->boolean = op == 0x88;
      return Push(v);
    }
    case 'J': {  // BININT
      ASSIGN_OR_RETURN(uint64_t v, ReadUInt(4));
      return PushInt(static_cast<int32_t>(static_cast<uint32_t>(v)));
    }
    case 'K': {  // BININT1
      ASSIGN_OR_RETURN(uint64_t v, ReadUInt(1));
      return PushInt(static_cast<int64_t>(v));
    }
    case 'M': {  // BININT2
      ASSIGN_OR_RETURN(uint64_t v, ReadUInt(2));
      return PushInt(static_cast<int64_t>(v));
    }
    case 0x8a:    // LONG1
    case 0x8b: {  // LONG4
      ASSIGN_OR_RETURN(uint64_t n, ReadUInt(op == 0x8a ? 1 : 4));
      ASSIGN_OR_RETURN(absl::string_view bytes, ReadBytes(n));
      return PushLong(bytes);
    }
    case 'G': {  // BINFLOAT, big-endian
      ASSIGN_OR_RETURN(absl::string_view b, ReadBytes(8));
      uint64_t bits = 0;
      for (char c : b) bits = bits << 8 | static_cast<uint8_t>(c);
      ASSIGN_OR_RETURN(Value* v, MakeScalar(Kind::kFloat));
      std::memcpy(&v->number, &bits, sizeof(bits));
      return Push(v);
    }
    case 'X': {  // BINUNICODE
      ASSIGN_OR_RETURN(uint64_t n, ReadUInt(4));
      return PushText(Kind::kString, n);
    }
    case 0x8c: {  // SHORT_BINUNICODE
      ASSIGN_OR_RETURN(uint64_t n, ReadUInt(1));
      return PushText(Kind::kString, n);
    }
    case 0x8d: {  // BINUNICODE8
      ASSIGN_OR_RETURN(uint64_t n, ReadUInt(8));
      return PushText(Kind::kString, n);
    }
    case 'T': {  // BINSTRING (Python 2 str, read as text)
      ASSIGN_OR_RETURN(uint64_t n, ReadUInt(4));
      if (n > INT32_MAX) return absl::InvalidArgumentError("negative BINSTRING length");
      return PushText(Kind::kString, n);
    }
    case 'U': {  // SHORT_BINSTRING
      ASSIGN_OR_RETURN(uint64_t n, ReadUInt(1));
      return PushText(Kind::kString, n);
    }
    case 'B': {  // BINBYTES
      ASSIGN_OR_RETURN(uint64_t n, ReadUInt(4));
      return PushText(Kind::kBytes, n);
    }
    case 'C': {  // SHORT_BINBYTES
      ASSIGN_OR_RETURN(uint64_t n, ReadUInt(1));
      return PushText(Kind::kBytes, n);
    }
    case 0x8e:    // BINBYTES8
    case 0x96: {  // BYTEARRAY8
      ASSIGN_OR_RETURN(uint64_t n, ReadUInt(8));
      return PushText(Kind::kBytes, n);
    }
    case ')':  // EMPTY_TUPLE
    case ']':  // EMPTY_LIST
    case '}':  // EMPTY_DICT
    case 0x8f: {  // EMPTY_SET
      const Kind kind = op == ')' ? Kind::kTuple : op == ']' ? Kind::kList
                      : op == '}' ? Kind::kDict : Kind::kSet;
      ASSIGN_OR_RETURN(Value* v, New(kind));
      return Push(v);
    }
    case 't':     // TUPLE
    case 'l':     // LIST
    case 0x91: {  // FROZENSET
      ASSIGN_OR_RETURN(std::vector<Value*> items, PopMark());
      const Kind kind = op == 't' ? Kind::kTuple : op == 'l' ? Kind::kList : Kind::kSet;
      ASSIGN_OR_RETURN(Value* v, MakeSequence(kind, items));
      return Push(v);
    }
    case 'd': {  // DICT
      ASSIGN_OR_RETURN(std::vector<Value*> items, PopMark());
      ASSIGN_OR_RETURN(Value* v, New(Kind::kDict));
      RETURN_IF_ERROR(SetItems(*v, items));
      return Push(v);
    }
    case 0x85:
    case 0x86:
    case 0x87: {  // TUPLE1..3
      const size_t n = op - 0x84;
      if (stack_.size() < floor() + n) return absl::InvalidArgumentError("stack underflow");
      std::vector<Value*> items(stack_.end() - n, stack_.end());
      stack_.resize(stack_.size() - n);
      ASSIGN_OR_RETURN(Value* v, MakeSequence(Kind::kTuple, items));
      return Push(v);
    }
    case 'a': {  // APPEND
      ASSIGN_OR_RETURN(Value* item, Pop());
      ASSIGN_OR_RETURN(Value* list, Top());
      return AppendTo(*list, {item});
    }
    case 'e': {  // APPENDS
      ASSIGN_OR_RETURN(std::vector<Value*> items, PopMark());
      ASSIGN_OR_RETURN(Value* list, Top());
      return AppendTo(*list, items);
    }
    case 's': {  // SETITEM
      ASSIGN_OR_RETURN(Value* value, Pop());
      ASSIGN_OR_RETURN(Value* key, Pop());
      ASSIGN_OR_RETURN(Value* dict, Top());
      return SetItems(*dict, {key, value});
    }
    case 'u': {  // SETITEMS
      ASSIGN_OR_RETURN(std::vector<Value*> items, PopMark());
      ASSIGN_OR_RETURN(Value* dict, Top());
      return SetItems(*dict, items);
    }
    case 0x90: {  // ADDITEMS
      ASSIGN_OR_RETURN(std::vector<Value*> items, PopMark());
      ASSIGN_OR_RETURN(Value* set, Top());
      if (set->kind != Kind::kSet) return absl::InvalidArgumentError("ADDITEMS to a non-set");
      for (Value* item : items) {
        set->items.push_back(item);
        RETURN_IF_ERROR(Nest(set, item));
      }
      return absl::OkStatus();
    }
    case 'c': {  // GLOBAL
      ASSIGN_OR_RETURN(absl::string_view module, ReadLine());
      ASSIGN_OR_RETURN(absl::string_view name, ReadLine());
      return PushGlobal(module, name);
    }
    case 0x93: {  // STACK_GLOBAL
      ASSIGN_OR_RETURN(Value* name, Pop());
      ASSIGN_OR_RETURN(Value* module, Pop());
      if (!module->IsString() || !name->IsString()) {
        return absl::InvalidArgumentError("STACK_GLOBAL needs two strings");
      }
      return PushGlobal(module->str, name->str);
    }
    case 'R': {  // REDUCE
      ASSIGN_OR_RETURN(Value* args, Pop());
      ASSIGN_OR_RETURN(Value* callable, Pop());
      ASSIGN_OR_RETURN(Value* v, ApplyReduce(*arena_, *callable, *args));
      RETURN_IF_ERROR(Nest(v, args));
      return Push(v);
    }
    case 0x81:    // NEWOBJ
    case 0x92: {  // NEWOBJ_EX (kwargs ignored)
      if (op == 0x92) RETURN_IF_ERROR(Pop().status());
      ASSIGN_OR_RETURN(Value* args, Pop());
      ASSIGN_OR_RETURN(Value* cls, Pop());
      ASSIGN_OR_RETURN(Value* v, ApplyNewObj(*arena_, *cls, *args));
      RETURN_IF_ERROR(Nest(v, args));
      return Push(v);
    }
    case 'b': {  // BUILD
      ASSIGN_OR_RETURN(Value* state, Pop());
      ASSIGN_OR_RETURN(Value* obj, Top());
      RETURN_IF_ERROR(ApplyBuild(*arena_, *obj, *state));
      return Nest(obj, state);
    }
    case 'Q': {  // BINPERSID
      ASSIGN_OR_RETURN(Value* pid, Pop());
      return PersistentLoad(*pid);
    }
    case 'q': {  // BINPUT
      ASSIGN_OR_RETURN(uint64_t i, ReadUInt(1));
      return Put(i);
    }
    case 'r': {  // LONG_BINPUT
      ASSIGN_OR_RETURN(uint64_t i, ReadUInt(4));
      return Put(i);
    }
    case 0x94:  // MEMOIZE
      return Put(memo_.size());
    case 'h': {  // BINGET
      ASSIGN_OR_RETURN(uint64_t i, ReadUInt(1));
      return Get(i);
    }
    case 'j': {  // LONG_BINGET
      ASSIGN_OR_RETURN(uint64_t i, ReadUInt(4));
      return Get(i);
    }
    case 'p':    // PUT (text)
    case 'g': {  // GET (text)
      ASSIGN_OR_RETURN(absl::string_view line, ReadLine());
      uint64_t i = 0;
      if (!absl::SimpleAtoi(line, &i)) return absl::InvalidArgumentError("bad memo index");
      return op == 'p' ? Put(i) : Get(i);
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "unsupported pickle opcode 0x", absl::Hex(op, absl::kZeroPad2)));
  }
}

}  // namespace

absl::StatusOr<Unpickled> Unpickle(absl::string_view data, absl::string_view context,
                                   const UnpicklerOptions& options) {
  Vm vm(data, context, options);
  return vm.Run();
}

}  // namespace mxport::pickle
