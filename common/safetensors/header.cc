#include "common/safetensors/header.h"

#include <algorithm>
#include <array>
#include <limits>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/safetensors/dtype_shape.h"

namespace mxport::safetensors {
namespace {

// The safetensors crate's Dtype enum, in declaration order. Its serialize() sorts tensors by
// this rank, descending, then by name (tensor.rs `prepare`).
constexpr std::array<absl::string_view, 22> kPythonWriterRank = {
    "BOOL",    "F4",          "F6_E2M3",     "F6_E3M2", "U8",  "I8",  "F8_E5M2", "F8_E4M3",
    "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "I16",     "U16", "F16", "BF16",    "I32",
    "U32",     "F32",         "C64",         "F64",     "I64", "U64"};

int PythonWriterRank(DType dtype) {
  const absl::string_view name = GetDTypeInfo(dtype).safetensors_name;
  auto it = std::find(kPythonWriterRank.begin(), kPythonWriterRank.end(), name);
  return static_cast<int>(it - kPythonWriterRank.begin());  // unknown: ranked highest (Layout rejects it)
}

// True when `s` is well-formed UTF-8 (no overlong forms, surrogates, or code points > U+10FFFF).
bool IsValidUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    int extra = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i <= static_cast<size_t>(extra)) return false;
    for (int k = 1; k <= extra; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    constexpr std::array<uint32_t, 4> kMinForLength = {0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += extra + 1;
  }
  return true;
}

// Appends `s` as a JSON string, escaped as serde_json does: `"` and `\`, the short forms
// \b \t \n \f \r, other control characters as \u00xx (lowercase hex), everything else raw.
void AppendJsonString(std::string& out, absl::string_view s) {
  constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xF]);
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}

void AppendIntArray(std::string& out, const auto& values) {
  out.push_back('[');
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out.push_back(',');
    absl::StrAppend(&out, values[i]);
  }
  out.push_back(']');
}

absl::Status CheckString(absl::string_view s, absl::string_view what) {
  if (!IsValidUtf8(s)) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is not valid UTF-8"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string EncodeHeaderJson(const std::vector<TensorEntry>& entries, const Metadata& metadata) {
  std::string out = "{";
  bool first = true;
  auto separator = [&] {
    if (!first) out.push_back(',');
    first = false;
  };
  if (!metadata.empty()) {
    separator();
    AppendJsonString(out, kMetadataKey);
    out += ":{";
    bool first_pair = true;
    for (const auto& [key, value] : metadata) {
      if (!first_pair) out.push_back(',');
      first_pair = false;
      AppendJsonString(out, key);
      out.push_back(':');
      AppendJsonString(out, value);
    }
    out.push_back('}');
  }
  for (const TensorEntry& entry : entries) {
    separator();
    AppendJsonString(out, entry.name);
    out += ":{\"dtype\":";
    AppendJsonString(out, GetDTypeInfo(entry.dtype).safetensors_name);
    out += ",\"shape\":";
    AppendIntArray(out, entry.shape);
    out += ",\"data_offsets\":";
    AppendIntArray(out, std::array<uint64_t, 2>{entry.begin, entry.end});
    out.push_back('}');
  }
  out.push_back('}');
  return out;
}

absl::StatusOr<Header> Header::Layout(std::vector<TensorSpec> specs, Metadata metadata,
                                      LayoutOrder order) {
  for (const auto& [key, value] : metadata) {
    RETURN_IF_ERROR(CheckString(key, absl::StrCat("metadata key '", key, "'")));
    RETURN_IF_ERROR(CheckString(value, absl::StrCat("metadata value of '", key, "'")));
  }
  if (order == LayoutOrder::kPythonWriter) {
    std::stable_sort(specs.begin(), specs.end(), [](const TensorSpec& a, const TensorSpec& b) {
      const int ra = PythonWriterRank(a.dtype);
      const int rb = PythonWriterRank(b.dtype);
      if (ra != rb) return ra > rb;
      return a.name < b.name;
    });
  }
  absl::flat_hash_set<absl::string_view> seen;
  std::vector<TensorEntry> entries;
  entries.reserve(specs.size());
  uint64_t offset = 0;
  for (TensorSpec& spec : specs) {
    if (spec.name.empty() || spec.name == kMetadataKey) {
      return absl::InvalidArgumentError(absl::StrCat("invalid tensor name '", spec.name, "'"));
    }
    RETURN_IF_ERROR(CheckString(spec.name, absl::StrCat("tensor name '", spec.name, "'")));
    auto size = SafetensorsByteSize(spec.dtype, spec.shape);
    if (!size.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", spec.name, "': ", size.status().message()));
    }
    constexpr uint64_t kLimit = std::numeric_limits<int64_t>::max();
    if (*size > kLimit - offset) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", spec.name, "': data buffer size overflows"));
    }
    entries.push_back(TensorEntry{std::move(spec.name), spec.dtype, std::move(spec.shape), offset,
                                  offset + *size});
    // `entries` never reallocates (reserved above), so views of its names stay valid.
    if (!seen.insert(entries.back().name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("duplicate tensor name '", entries.back().name, "'"));
    }
    offset += *size;
  }
  std::string json = EncodeHeaderJson(entries, metadata);
  json.append((8 - json.size() % 8) % 8, ' ');
  if (json.size() > kMaxHeaderLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("header is ", json.size(), " bytes, over the limit of ", kMaxHeaderLength));
  }
  std::string encoded(kLengthPrefixBytes, '\0');
  uint64_t n = json.size();
  for (size_t i = 0; i < kLengthPrefixBytes; ++i) {
    encoded[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  }
  encoded += json;
  return Header(std::move(entries), std::move(metadata), std::move(encoded));
}

Header::Header(std::vector<TensorEntry> entries, Metadata metadata, std::string encoded)
    : entries_(std::move(entries)), metadata_(std::move(metadata)), encoded_(std::move(encoded)) {
  index_.reserve(entries_.size());
  for (size_t i = 0; i < entries_.size(); ++i) index_.emplace(entries_[i].name, i);
}

const TensorEntry* Header::Find(absl::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

absl::StatusOr<const TensorEntry*> Header::Get(absl::string_view name) const {
  const TensorEntry* entry = Find(name);
  if (entry == nullptr) {
    return absl::NotFoundError(absl::StrCat("no tensor named '", name, "'"));
  }
  return entry;
}

}  // namespace mxport::safetensors
