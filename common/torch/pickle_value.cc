#include "common/torch/pickle_value.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/tensor.h"

namespace mxport::pickle {
namespace {

const Value* LookupPairs(const std::vector<const Value*>& pairs, absl::string_view key) {
  for (size_t i = 0; i + 1 < pairs.size(); i += 2) {
    if (pairs[i]->kind == Kind::kString && pairs[i]->str == key) return pairs[i + 1];
  }
  return nullptr;
}

std::string QuoteString(absl::string_view s, size_t max_len) {
  std::string out = "'";
  for (char c : s.substr(0, max_len)) {
    if (c == '\'' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppend(&out, "\\x", absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
    } else {
      out += c;
    }
  }
  if (s.size() > max_len) out += "...";
  return out + "'";
}

void AppendRepr(const Value& v, int max_items, int depth, std::string* out);

void AppendSequence(const std::vector<const Value*>& items, size_t stride, int max_items,
                    int depth, absl::string_view sep, std::string* out) {
  const size_t n = items.size() / stride;
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) *out += ", ";
    if (static_cast<int>(i) >= max_items) {
      absl::StrAppend(out, "... (", n, " items)");
      return;
    }
    AppendRepr(*items[i * stride], max_items, depth - 1, out);
    if (stride == 2) {
      absl::StrAppend(out, sep);
      AppendRepr(*items[i * stride + 1], max_items, depth - 1, out);
    }
  }
}

void AppendRepr(const Value& v, int max_items, int depth, std::string* out) {
  if (depth < 0) {
    *out += "...";
    return;
  }
  switch (v.kind) {
    case Kind::kNone: *out += "None"; return;
    case Kind::kBool: *out += v.boolean ? "True" : "False"; return;
    case Kind::kInt: absl::StrAppend(out, v.integer); return;
    case Kind::kBigInt: absl::StrAppend(out, "<int of ", v.str.size(), " bytes>"); return;
    case Kind::kFloat: absl::StrAppend(out, v.number); return;
    case Kind::kString: *out += QuoteString(v.str, 60); return;
    case Kind::kBytes: absl::StrAppend(out, "<", v.str.size(), " bytes>"); return;
    case Kind::kTuple:
      *out += "(";
      AppendSequence(v.items, 1, max_items, depth, "", out);
      *out += v.items.size() == 1 ? ",)" : ")";
      return;
    case Kind::kList:
      *out += "[";
      AppendSequence(v.items, 1, max_items, depth, "", out);
      *out += "]";
      return;
    case Kind::kSet:
      *out += "{";
      AppendSequence(v.items, 1, max_items, depth, "", out);
      *out += "}";
      return;
    case Kind::kDict:
      *out += "{";
      AppendSequence(v.items, 2, max_items, depth, ": ", out);
      *out += "}";
      return;
    case Kind::kGlobal: *out += v.QualifiedName(); return;
    case Kind::kObject:
      *out += v.QualifiedName() + "(";
      AppendSequence(v.items, 1, max_items, depth, "", out);
      *out += ")";
      return;
    case Kind::kStorage:
      absl::StrAppend(out, "<storage ", v.storage->key, ">");
      return;
    case Kind::kTensor:
      absl::StrAppend(out, DTypeName(v.tensor->dtype), ShapeToString(v.tensor->shape));
      return;
    case Kind::kDType: absl::StrAppend(out, "torch.", DTypeName(v.dtype)); return;
  }
}

class Walker {
 public:
  Walker(int max_depth, const std::function<bool(const std::string&, const Value&)>& visit)
      : max_depth_(max_depth), visit_(visit) {}

  absl::Status Walk(const Value& v, const std::string& path, int depth) {
    if (depth > max_depth_) {
      return absl::InvalidArgumentError(
          absl::StrCat("value nesting deeper than ", max_depth_, " levels at '", path, "'"));
    }
    if (!visit_(path, v)) return absl::OkStatus();
    if (!on_path_.insert(&v).second) {
      return absl::InvalidArgumentError(absl::StrCat("reference cycle at '", path, "'"));
    }
    absl::Status status = Children(v, path, depth);
    on_path_.erase(&v);
    return status;
  }

 private:
  std::string Join(const std::string& path, absl::string_view part) {
    return path.empty() ? std::string(part) : absl::StrCat(path, "/", part);
  }

  absl::Status Pairs(const std::vector<const Value*>& pairs, const std::string& path, int depth) {
    for (size_t i = 0; i + 1 < pairs.size(); i += 2) {
      absl::Status s = Walk(*pairs[i + 1], Join(path, KeyToPathComponent(*pairs[i])), depth + 1);
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::Status Items(const std::vector<const Value*>& items, const std::string& path,
                     int depth) {
    for (size_t i = 0; i < items.size(); ++i) {
      absl::Status s = Walk(*items[i], Join(path, absl::StrCat(i)), depth + 1);
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::Status Children(const Value& v, const std::string& path, int depth) {
    switch (v.kind) {
      case Kind::kTuple:
      case Kind::kList:
      case Kind::kSet:
        return Items(v.items, path, depth);
      case Kind::kDict:
        return Pairs(v.items, path, depth);
      case Kind::kObject: {
        if (v.state != nullptr && v.state->kind == Kind::kDict) {
          absl::Status s = Pairs(v.state->items, path, depth);
          if (!s.ok()) return s;
        }
        absl::Status s = Pairs(v.extra, path, depth);
        if (!s.ok()) return s;
        return Items(v.appended, path, depth);
      }
      default:
        return absl::OkStatus();
    }
  }

  int max_depth_;
  const std::function<bool(const std::string&, const Value&)>& visit_;
  absl::flat_hash_set<const Value*> on_path_;
};

}  // namespace

const Value* Value::Get(absl::string_view key) const {
  return kind == Kind::kDict ? LookupPairs(items, key) : nullptr;
}

const Value* Value::Attr(absl::string_view key) const {
  if (kind != Kind::kObject) return nullptr;
  if (state != nullptr && state->kind == Kind::kDict) {
    if (const Value* v = LookupPairs(state->items, key)) return v;
  }
  return LookupPairs(extra, key);
}

std::string ShortRepr(const Value& value, int max_items, int max_depth) {
  std::string out;
  AppendRepr(value, max_items, max_depth, &out);
  return out;
}

std::string KeyToPathComponent(const Value& key) {
  switch (key.kind) {
    case Kind::kString: return key.str;
    case Kind::kInt: return absl::StrCat(key.integer);
    default: return ShortRepr(key, 4, 1);
  }
}

absl::Status WalkValues(const Value& root, int max_depth,
                        const std::function<bool(const std::string&, const Value&)>& visit) {
  Walker walker(max_depth, visit);
  return walker.Walk(root, "", 0);
}

}  // namespace mxport::pickle
