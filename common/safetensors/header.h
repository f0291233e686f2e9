// Header: the model of a safetensors file's header (formats.md §3), built either by laying out
// tensors to write (Layout) or by parsing and validating an existing file (Parse).
//
// File layout: u64 little-endian N, then N bytes of JSON (padded with spaces so N % 8 == 0 when
// we write it), then the data buffer, which starts at 8 + N. Each entry's [begin, end) offsets
// are relative to the data buffer. `__metadata__` is a string -> string map.
//
// Encoding (Layout) matches the Python writer byte for byte: compact JSON, `__metadata__` first
// (omitted when empty; keys sorted, where Python's order for several keys is a hash order),
// then the entries in offset order, strings escaped as serde_json does. Two orders are offered:
// the caller's order (deterministic, for the exporter) or the Python writer's order: descending
// position in the crate's Dtype enum (U64 I64 F64 C64 F32 U32 I32 BF16 F16 U16 I16 F8_E5M2FNUZ
// F8_E4M3FNUZ F8_E8M0 F8_E4M3 F8_E5M2 I8 U8 F6_E3M2 F6_E2M3 F4 BOOL), then name by bytes.
//
// Parse enforces every rule of the reference reader (safetensors tensor.rs), and more: N ≤
// 100,000,000, 8 + N within the file, header starts with '{', valid JSON without duplicate keys
// at any level, entries with a known dtype, a shape of non-negative integers and two
// non-negative integer data_offsets, `__metadata__` (object or null) with string values only,
// offsets sorted and contiguous from 0, end - begin == byte size from shape and dtype, and
// last end + 8 + N == file size. Errors are InvalidArgument, or DataLoss when the file is
// shorter than its header says; every message names the file and, where there is one, the
// tensor key.
//
// A Header is an immutable value; thread-safe for concurrent reads.
#ifndef MXPORT_COMMON_SAFETENSORS_HEADER_H_
#define MXPORT_COMMON_SAFETENSORS_HEADER_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/base/dtype.h"

namespace mxport::safetensors {

inline constexpr uint64_t kMaxHeaderLength = 100'000'000;
inline constexpr uint64_t kLengthPrefixBytes = 8;
inline constexpr absl::string_view kMetadataKey = "__metadata__";

using Metadata = std::map<std::string, std::string>;

// A tensor to lay out. `shape` is the safetensors shape (see dtype_shape.h for F4).
struct TensorSpec {
  std::string name;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
};

// One header entry. Offsets are relative to the data buffer (file offset 8 + N).
struct TensorEntry {
  std::string name;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;  // safetensors shape
  uint64_t begin = 0;
  uint64_t end = 0;

  uint64_t num_bytes() const { return end - begin; }
  friend bool operator==(const TensorEntry&, const TensorEntry&) = default;
};

enum class LayoutOrder {
  kAsGiven,       // the order of the specs passed in
  kPythonWriter,  // safetensors' serialize(): descending dtype rank, then name
};

class Header {
 public:
  // Assigns contiguous offsets from 0 in `order` and encodes the header. InvalidArgument on an
  // empty, duplicate or reserved (`__metadata__`) name, a name or metadata string that is not
  // valid UTF-8, a dtype without a safetensors name, a bad shape (see SafetensorsByteSize), or
  // a header longer than kMaxHeaderLength.
  static absl::StatusOr<Header> Layout(std::vector<TensorSpec> specs, Metadata metadata,
                                       LayoutOrder order);

  // Reads N from the first 8 bytes of a file of `file_size` bytes: DataLoss when the file is
  // shorter than 8 + N bytes, InvalidArgument when N > kMaxHeaderLength. `file_name` is used in
  // messages only.
  static absl::StatusOr<uint64_t> ParseLength(absl::string_view first_bytes, uint64_t file_size,
                                              absl::string_view file_name);

  // Parses and validates the header of a file of `file_size` bytes. `prefix` holds the file's
  // first bytes: at least 8 + N of them (the whole file is fine). InvalidArgument when `prefix`
  // is too short; otherwise see the file comment.
  static absl::StatusOr<Header> Parse(absl::string_view prefix, uint64_t file_size,
                                      absl::string_view file_name);

  // Entries in offset order.
  const std::vector<TensorEntry>& entries() const { return entries_; }
  const Metadata& metadata() const { return metadata_; }
  // N: the JSON length including padding.
  uint64_t header_length() const { return encoded_.size() - kLengthPrefixBytes; }
  // File offset of the data buffer: 8 + N.
  uint64_t data_start() const { return encoded_.size(); }
  // Bytes in the data buffer (the last entry's end, or 0).
  uint64_t data_size() const { return entries_.empty() ? 0 : entries_.back().end; }
  uint64_t file_size() const { return data_start() + data_size(); }
  // The file's first data_start() bytes: the length prefix and the JSON. For a parsed header,
  // the bytes read from the file.
  const std::string& encoded() const { return encoded_; }

  // The entry named `name`, or nullptr.
  const TensorEntry* Find(absl::string_view name) const;
  // The entry named `name`, or NotFound naming it.
  absl::StatusOr<const TensorEntry*> Get(absl::string_view name) const;

 private:
  Header(std::vector<TensorEntry> entries, Metadata metadata, std::string encoded);

  std::vector<TensorEntry> entries_;
  Metadata metadata_;
  std::string encoded_;
  absl::flat_hash_map<std::string, size_t> index_;
};

// The compact JSON of a header with these entries (in the given order) and metadata, unpadded.
// Does not validate; Layout does.
std::string EncodeHeaderJson(const std::vector<TensorEntry>& entries, const Metadata& metadata);

}  // namespace mxport::safetensors

#endif  // MXPORT_COMMON_SAFETENSORS_HEADER_H_
