// Header::ParseLength and Header::Parse: validation of an existing file's header.
#include <algorithm>
#include <limits>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/base/tensor.h"
#include "common/json/json.h"
#include "common/safetensors/dtype_shape.h"
#include "common/safetensors/header.h"

namespace mxport::safetensors {
namespace {

// SAX handler that stops at the first key repeated within one object, at any depth.
// (nlohmann's DOM parser silently keeps the last duplicate.)
class DuplicateKeyFinder {
 public:
  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(Json::number_integer_t) { return true; }
  bool number_unsigned(Json::number_unsigned_t) { return true; }
  bool number_float(Json::number_float_t, const Json::string_t&) { return true; }
  bool string(Json::string_t&) { return true; }
  bool binary(Json::binary_t&) { return true; }
  bool start_object(std::size_t) {
    keys_.emplace_back();
    return true;
  }
  bool key(Json::string_t& key) {
    if (keys_.size() == 1) top_level_key_ = key;
    if (!keys_.back().insert(key).second) {
      duplicate_ = key;
      return false;
    }
    return true;
  }
  bool end_object() {
    keys_.pop_back();
    return true;
  }
  bool start_array(std::size_t) { return true; }
  bool end_array() { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) {
    return false;
  }

  // Empty when no key repeats; else "'k'" or "'k' in 'entry'".
  std::string Describe() const {
    if (!duplicate_) return "";
    if (keys_.size() <= 1) return absl::StrCat("'", *duplicate_, "'");
    return absl::StrCat("'", *duplicate_, "' in '", top_level_key_, "'");
  }

 private:
  std::vector<absl::flat_hash_set<std::string>> keys_;
  std::string top_level_key_;
  std::optional<std::string> duplicate_;
};

absl::StatusOr<std::string> FindDuplicateKey(absl::string_view text) {
  DuplicateKeyFinder finder;
  try {
    Json::sax_parse(text.begin(), text.end(), &finder);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("invalid JSON: ", e.what()));
  }
  return finder.Describe();
}

// A JSON integer >= 0 ("-0" included), or nullopt.
std::optional<uint64_t> NonNegativeInteger(const Json& value) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer() && value.get<int64_t>() >= 0) {
    return static_cast<uint64_t>(value.get<int64_t>());
  }
  return std::nullopt;
}

// A short description of a JSON value for messages: numbers as written, others by type.
std::string Describe(const Json& value) {
  if (value.is_number() || value.is_boolean() || value.is_null()) return value.dump();
  return std::string(value.type_name());
}

const Json* Field(const Json& object, const char* key) {
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

absl::Status EntryError(absl::string_view where, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
}

// One tensor entry; `where` is "<file>: tensor '<name>'".
absl::StatusOr<TensorEntry> ParseEntry(const std::string& name, const Json& value,
                                       absl::string_view where) {
  if (!value.is_object()) return EntryError(where, "entry is not a JSON object");
  TensorEntry entry;
  entry.name = name;

  const Json* dtype = Field(value, "dtype");
  if (dtype == nullptr) return EntryError(where, "missing 'dtype'");
  if (!dtype->is_string()) return EntryError(where, "'dtype' is not a string");
  auto parsed_dtype = DTypeFromSafetensorsName(dtype->get_ref<const std::string&>());
  if (!parsed_dtype.ok()) return EntryError(where, parsed_dtype.status().message());
  entry.dtype = *parsed_dtype;

  const Json* shape = Field(value, "shape");
  if (shape == nullptr) return EntryError(where, "missing 'shape'");
  if (!shape->is_array()) return EntryError(where, "'shape' is not an array");
  for (const Json& dim : *shape) {
    std::optional<uint64_t> d = NonNegativeInteger(dim);
    if (!d || *d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return EntryError(where, absl::StrCat("shape dimension ", Describe(dim),
                                            " is not a non-negative 64-bit integer"));
    }
    entry.shape.push_back(static_cast<int64_t>(*d));
  }

  const Json* offsets = Field(value, "data_offsets");
  if (offsets == nullptr) return EntryError(where, "missing 'data_offsets'");
  if (!offsets->is_array() || offsets->size() != 2) {
    return EntryError(where, "'data_offsets' is not an array of two integers");
  }
  std::optional<uint64_t> begin = NonNegativeInteger((*offsets)[0]);
  std::optional<uint64_t> end = NonNegativeInteger((*offsets)[1]);
  if (!begin || !end) {
    return EntryError(where,
                      absl::StrCat("data_offsets [", Describe((*offsets)[0]), ", ",
                                   Describe((*offsets)[1]), "] are not non-negative integers"));
  }
  entry.begin = *begin;
  entry.end = *end;
  return entry;
}

absl::StatusOr<Metadata> ParseMetadata(const Json& value, absl::string_view file_name) {
  Metadata metadata;
  if (value.is_null()) return metadata;  // the reference reader treats null as absent
  if (!value.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file_name, ": '", kMetadataKey, "' is not a JSON object"));
  }
  for (const auto& [key, item] : value.items()) {
    if (!item.is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(file_name, ": '", kMetadataKey, "' value of '",
                                                     key, "' is not a string but ",
                                                     Describe(item)));
    }
    metadata.emplace(key, item.get<std::string>());
  }
  return metadata;
}

// Offsets sorted, contiguous from 0, each span equal to the size from dtype and shape.
absl::Status ValidateOffsets(const std::vector<TensorEntry>& entries, absl::string_view file_name) {
  uint64_t expected_begin = 0;
  const TensorEntry* previous = nullptr;
  for (const TensorEntry& entry : entries) {
    const std::string where = absl::StrCat(file_name, ": tensor '", entry.name, "'");
    const std::string offsets = absl::StrCat("data_offsets [", entry.begin, ", ", entry.end, "]");
    if (entry.end < entry.begin)
      return EntryError(where, absl::StrCat(offsets, " end before begin"));
    if (entry.begin > expected_begin) {
      return EntryError(
          where, absl::StrCat(offsets, " leave a hole: the data before ends at ", expected_begin));
    }
    if (entry.begin < expected_begin) {
      return EntryError(where, absl::StrCat(offsets, " overlap tensor '", previous->name,
                                            "', which ends at ", expected_begin));
    }
    auto size = SafetensorsByteSize(entry.dtype, entry.shape);
    if (!size.ok()) return EntryError(where, size.status().message());
    if (entry.num_bytes() != *size) {
      return EntryError(where, absl::StrCat(offsets, " span ", entry.num_bytes(), " bytes but ",
                                            GetDTypeInfo(entry.dtype).safetensors_name,
                                            ShapeToString(entry.shape), " needs ", *size));
    }
    expected_begin = entry.end;
    previous = &entry;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<uint64_t> Header::ParseLength(absl::string_view first_bytes, uint64_t file_size,
                                             absl::string_view file_name) {
  if (file_size < kLengthPrefixBytes) {
    return absl::DataLossError(absl::StrCat(file_name, ": file is ", file_size,
                                            " bytes, too short for the 8-byte header length"));
  }
  if (first_bytes.size() < kLengthPrefixBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(file_name, ": need the first 8 bytes to read the header length"));
  }
  uint64_t n = 0;
  for (size_t i = 0; i < kLengthPrefixBytes; ++i) {
    n |= static_cast<uint64_t>(static_cast<unsigned char>(first_bytes[i])) << (8 * i);
  }
  if (n > kMaxHeaderLength) {
    return absl::InvalidArgumentError(
        absl::StrCat(file_name, ": header length ", n, " exceeds the limit of ", kMaxHeaderLength));
  }
  if (n > file_size - kLengthPrefixBytes) {
    return absl::DataLossError(absl::StrCat(file_name, ": header length ", n, " exceeds the file (",
                                            file_size, " bytes)"));
  }
  return n;
}

absl::StatusOr<Header> Header::Parse(absl::string_view prefix, uint64_t file_size,
                                     absl::string_view file_name) {
  ASSIGN_OR_RETURN(uint64_t n, ParseLength(prefix, file_size, file_name));
  if (prefix.size() - kLengthPrefixBytes < n) {
    return absl::InvalidArgumentError(absl::StrCat(file_name, ": need ", kLengthPrefixBytes + n,
                                                   " bytes to parse the header, got ",
                                                   prefix.size()));
  }
  const absl::string_view text = prefix.substr(kLengthPrefixBytes, n);
  if (text.empty() || text.front() != '{') {
    return absl::InvalidArgumentError(absl::StrCat(file_name, ": header does not start with '{'"));
  }
  ASSIGN_OR_RETURN(Json json, ParseJson(text, absl::StrCat(file_name, ": header")));
  ASSIGN_OR_RETURN(std::string duplicate, FindDuplicateKey(text));
  if (!duplicate.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file_name, ": header has duplicate key ", duplicate));
  }
  if (!json.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(file_name, ": header is not a JSON object"));
  }

  Metadata metadata;
  std::vector<TensorEntry> entries;
  entries.reserve(json.size());
  for (const auto& [key, value] : json.items()) {
    if (key == kMetadataKey) {
      ASSIGN_OR_RETURN(metadata, ParseMetadata(value, file_name));
      continue;
    }
    ASSIGN_OR_RETURN(TensorEntry entry,
                     ParseEntry(key, value, absl::StrCat(file_name, ": tensor '", key, "'")));
    entries.push_back(std::move(entry));
  }
  std::sort(entries.begin(), entries.end(), [](const TensorEntry& a, const TensorEntry& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  RETURN_IF_ERROR(ValidateOffsets(entries, file_name));

  const uint64_t data_size = entries.empty() ? 0 : entries.back().end;
  const uint64_t available = file_size - kLengthPrefixBytes - n;
  if (data_size > available) {
    return absl::DataLossError(absl::StrCat(
        file_name, ": data buffer of ", data_size, " bytes (tensor '", entries.back().name,
        "' ends there) exceeds the ", available, " bytes after the header; file truncated?"));
  }
  if (data_size < available) {
    return absl::InvalidArgumentError(absl::StrCat(file_name, ": ", available - data_size,
                                                   " trailing bytes after the data buffer (",
                                                   data_size, " bytes)"));
  }
  return Header(std::move(entries), std::move(metadata),
                std::string(prefix.substr(0, kLengthPrefixBytes + n)));
}

}  // namespace mxport::safetensors
