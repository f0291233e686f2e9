#include "common/safetensors/reader.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"

namespace mxport::safetensors {

absl::StatusOr<std::unique_ptr<Reader>> Reader::Open(fs::FileSystem& fs, const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<fs::RandomAccessFile> file, fs.OpenForRead(path));
  return FromFile(std::move(file));
}

absl::StatusOr<std::unique_ptr<Reader>> Reader::FromFile(
    std::unique_ptr<fs::RandomAccessFile> file) {
  const std::string& name = file->path();
  const uint64_t file_size = file->size();
  std::string prefix(file_size < kLengthPrefixBytes ? 0 : kLengthPrefixBytes, '\0');
  if (!prefix.empty()) RETURN_IF_ERROR(file->ReadAt(0, prefix.size(), prefix.data()));
  ASSIGN_OR_RETURN(uint64_t n, Header::ParseLength(prefix, file_size, name));
  prefix.resize(kLengthPrefixBytes + n);
  RETURN_IF_ERROR(file->ReadAt(kLengthPrefixBytes, n, prefix.data() + kLengthPrefixBytes));
  ASSIGN_OR_RETURN(Header header, Header::Parse(prefix, file_size, name));
  return std::unique_ptr<Reader>(new Reader(std::move(file), std::move(header)));
}

Reader::Reader(std::unique_ptr<fs::RandomAccessFile> file, Header header)
    : file_(std::move(file)), header_(std::move(header)) {}

absl::StatusOr<const TensorEntry*> Reader::Lookup(absl::string_view name) const {
  const TensorEntry* entry = header_.Find(name);
  if (entry == nullptr) {
    return absl::NotFoundError(absl::StrCat(path(), ": no tensor named '", name, "'"));
  }
  return entry;
}

absl::StatusOr<std::string> Reader::ReadTensor(absl::string_view name) const {
  ASSIGN_OR_RETURN(const TensorEntry* entry, Lookup(name));
  std::string bytes(entry->num_bytes(), '\0');
  RETURN_IF_ERROR(ReadRange(name, 0, bytes.size(), bytes.data()));
  return bytes;
}

absl::Status Reader::ReadRange(absl::string_view name, uint64_t offset, uint64_t n,
                               char* dst) const {
  ASSIGN_OR_RETURN(const TensorEntry* entry, Lookup(name));
  const uint64_t size = entry->num_bytes();
  if (offset > size || n > size - offset) {
    return absl::OutOfRangeError(absl::StrCat(path(), ": tensor '", name, "': range at offset ",
                                              offset, " of ", n, " bytes lies outside its ", size,
                                              " bytes"));
  }
  if (n == 0) return absl::OkStatus();
  const absl::Status status = file_->ReadAt(header_.data_start() + entry->begin + offset, n, dst);
  if (!status.ok()) {
    return absl::Status(status.code(), absl::StrCat("tensor '", name, "': ", status.message()));
  }
  return absl::OkStatus();
}

}  // namespace mxport::safetensors
