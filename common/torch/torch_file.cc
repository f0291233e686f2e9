#include "common/torch/torch_file.h"

#include <array>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/base/status_macros.h"

namespace mxport::torch {
namespace {

using pickle::Kind;
using pickle::StorageRef;
using pickle::TensorRef;

// The pickle that opens a legacy (pre-1.6) torch.save file: PROTO 2, LONG1 of the magic number.
constexpr std::array<uint8_t, 4> kLegacyMagicPrefix = {0x80, 0x02, 0x8a, 0x0a};

uint64_t StorageBytes(const StorageRef& storage) {
  return storage.untyped ? storage.numel
                         : storage.numel * static_cast<uint64_t>(ElementBytes(storage.dtype));
}

absl::Status ClassifyNonZip(const fs::RandomAccessFile& file, const std::string& name,
                            uint64_t base, uint64_t length) {
  char head[264] = {};
  const size_t n = static_cast<size_t>(std::min<uint64_t>(length, sizeof(head)));
  RETURN_IF_ERROR(file.ReadAt(base, n, head));
  if (n >= 4 && std::memcmp(head, "PK\x03\x04", 4) == 0) return absl::OkStatus();
  if (n >= kLegacyMagicPrefix.size() &&
      std::memcmp(head, kLegacyMagicPrefix.data(), kLegacyMagicPrefix.size()) == 0) {
    return absl::UnimplementedError(absl::StrCat(
        name, ": legacy torch.save format (before PyTorch 1.6, or "
              "_use_new_zipfile_serialization=False) is not supported; re-save it with "
              "torch.save's default zip format"));
  }
  if (n >= 262 && std::memcmp(head + 257, "ustar", 5) == 0) {
    return absl::UnimplementedError(
        absl::StrCat(name, ": tar-format torch checkpoint (PyTorch < 0.4) is not supported"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(name, ": not a torch.save zip archive (bad magic bytes)"));
}

// How torch's lazy neg/conj bits act on the bytes of a dtype: both flip IEEE sign bits, conj
// only those of the imaginary halves. `unit` is the size of one real component.
struct SignFlipRule {
  DType dtype;
  int unit;
  bool is_complex;
};
constexpr SignFlipRule kSignFlipRules[] = {
    {DType::kFloat16, 2, false},      {DType::kBFloat16, 2, false},
    {DType::kFloat32, 4, false},      {DType::kFloat64, 8, false},
    {DType::kFloat8E4M3FN, 1, false}, {DType::kFloat8E5M2, 1, false},
    {DType::kComplex32, 2, true},     {DType::kComplex64, 4, true},
    {DType::kComplex128, 8, true},
};

// True when a tensor's neg/conj view bits make its values differ from its stored bytes.
bool ChangesBytes(const TensorRef& tensor) {
  if (tensor.neg) return true;
  if (!tensor.conj) return false;
  for (const SignFlipRule& r : kSignFlipRules) {
    if (r.dtype == tensor.dtype) return r.is_complex;
  }
  return false;
}

// Applies a tensor's neg/conj view bits to its row-major bytes.
absl::Status ApplyViewBits(const TensorRef& tensor, char* data, size_t size,
                           const std::string& name) {
  if (!tensor.conj && !tensor.neg) return absl::OkStatus();
  const SignFlipRule* rule = nullptr;
  for (const SignFlipRule& r : kSignFlipRules) {
    if (r.dtype == tensor.dtype) rule = &r;
  }
  if (rule == nullptr || (!rule->is_complex && tensor.neg == false)) {
    if (rule == nullptr && tensor.neg) {
      return absl::UnimplementedError(absl::StrCat(
          name, ": a lazy negative view of ", DTypeName(tensor.dtype), " is not supported"));
    }
    return absl::OkStatus();  // conj of a real tensor is the identity
  }
  // Component i's sign bit is the top bit of its last (little-endian) byte.
  const size_t units = size / rule->unit;
  for (size_t i = 0; i < units; ++i) {
    const bool imaginary = rule->is_complex && (i % 2 == 1);
    if (tensor.neg != (tensor.conj && imaginary)) {
      data[i * rule->unit + rule->unit - 1] ^= static_cast<char>(0x80);
    }
  }
  return absl::OkStatus();
}

}  // namespace

bool IsRowMajorContiguous(const std::vector<int64_t>& shape, const std::vector<int64_t>& stride) {
  int64_t expected = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    if (shape[i] == 0) return true;
    if (shape[i] != 1 && stride[i] != expected) return false;
    expected *= shape[i];
  }
  return true;
}

absl::StatusOr<std::unique_ptr<TorchFile>> TorchFile::Open(fs::FileSystem& fs,
                                                           const std::string& path,
                                                           const TorchFileOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<fs::RandomAccessFile> file, fs.OpenForRead(path));
  const uint64_t size = file->size();
  return OpenFrom(std::shared_ptr<const fs::RandomAccessFile>(std::move(file)), path, 0, size,
                  options);
}

absl::StatusOr<std::unique_ptr<TorchFile>> TorchFile::OpenFrom(
    std::shared_ptr<const fs::RandomAccessFile> file, std::string name, uint64_t base,
    uint64_t length, const TorchFileOptions& options) {
  if (base > file->size() || length > file->size() - base) {
    return absl::DataLossError(absl::StrCat(name, ": archive window runs past the file's end"));
  }
  RETURN_IF_ERROR(ClassifyNonZip(*file, name, base, length));
  std::unique_ptr<TorchFile> out(new TorchFile());
  out->name_ = name;
  ASSIGN_OR_RETURN(out->zip_, ZipReader::Open(std::move(file), std::move(name), base, length,
                                              options.zip));
  RETURN_IF_ERROR(out->Load(options));
  return out;
}

absl::Status TorchFile::Load(const TorchFileOptions& options) {
  if (zip_->entries().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(name_, ": empty zip archive"));
  }
  const std::string& first = zip_->entries().front().name;
  const size_t slash = first.find('/');
  if (slash == std::string::npos || slash == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(name_, ": first record '", first, "' is not inside an archive folder"));
  }
  prefix_ = first.substr(0, slash);
  const std::string dir = prefix_ + "/";
  if (zip_->Find(dir + "constants.pkl") != nullptr) {
    return absl::UnimplementedError(absl::StrCat(
        name_, ": TorchScript archive (torch.jit.save) is not a torch.save checkpoint"));
  }
  if (const ZipEntry* byteorder = zip_->Find(dir + "byteorder")) {
    ASSIGN_OR_RETURN(std::string order, zip_->ReadEntry(*byteorder));
    if (order != "little") {
      return absl::UnimplementedError(
          absl::StrCat(name_, ": byte order '", order, "' is not supported"));
    }
  }
  if (const ZipEntry* version = zip_->Find(dir + "version")) {
    if (version->uncompressed_size <= 64) {
      ASSIGN_OR_RETURN(version_, zip_->ReadEntry(*version));
      version_ = std::string(absl::StripAsciiWhitespace(version_));
    }
  }
  const ZipEntry* pkl = zip_->Find(dir + "data.pkl");
  if (pkl == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(name_, ": no ", dir, "data.pkl record"));
  }
  if (pkl->uncompressed_size > options.max_pickle_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        name_, ": data.pkl has ", pkl->uncompressed_size, " bytes, over the limit of ",
        options.max_pickle_bytes));
  }
  ASSIGN_OR_RETURN(std::string pickle_bytes, zip_->ReadEntry(*pkl));
  ASSIGN_OR_RETURN(unpickled_, pickle::Unpickle(pickle_bytes, absl::StrCat(name_, ":data.pkl"),
                                                options.unpickler));

  for (const StorageRef* storage : unpickled_.storages) {
    ASSIGN_OR_RETURN(const ZipEntry* record, StorageRecord(*storage));
    const uint64_t elem = storage->untyped ? 1 : ElementBytes(storage->dtype);
    uint64_t declared = 0;
    if (__builtin_mul_overflow(storage->numel, elem, &declared) ||
        declared != record->uncompressed_size) {
      return absl::DataLossError(absl::StrCat(
          name_, ": storage '", storage->key, "' declares ", storage->numel, " elements of ",
          elem, " bytes but record ", record->name, " holds ", record->uncompressed_size,
          " bytes"));
    }
  }

  // Shared references (the memo) make a DAG whose paths can grow exponentially with its size:
  // bound the visits by the number of values, generously.
  absl::Status check = absl::OkStatus();
  const uint64_t budget = std::max<uint64_t>(uint64_t{1} << 20, 4 * unpickled_.arena->size());
  uint64_t visits = 0;
  RETURN_IF_ERROR(pickle::WalkValues(
      root(), options.max_walk_depth, [&](const std::string& path, const pickle::Value& v) {
        if (check.ok() && ++visits > budget) {
          check = absl::ResourceExhaustedError(absl::StrCat(
              name_, ": data.pkl: too many value paths (", budget,
              "): shared references nest exponentially"));
        }
        if (v.kind == Kind::kTensor && check.ok()) {
          check = CheckTensor(path, *v.tensor);
          tensors_.push_back({path, v.tensor});
        }
        return check.ok();
      }));
  return check;
}

absl::StatusOr<const ZipEntry*> TorchFile::StorageRecord(const StorageRef& storage) const {
  const std::string record = absl::StrCat(prefix_, "/data/", storage.key);
  const ZipEntry* entry = zip_->Find(record);
  if (entry == nullptr) {
    return absl::DataLossError(absl::StrCat(name_, ": storage '", storage.key,
                                            "' has no record ", record));
  }
  return entry;
}

absl::Status TorchFile::CheckTensor(const std::string& path, const TensorRef& tensor) const {
  auto bad = [&](auto&&... parts) {
    return absl::InvalidArgumentError(
        absl::StrCat(name_, ": tensor '", path, "' ", parts...));
  };
  absl::StatusOr<uint64_t> numel = CheckedNumElements(tensor.shape);
  if (!numel.ok()) return bad("has an invalid shape: ", numel.status().message());
  if (*numel == 0) return absl::OkStatus();
  // Highest element index touched: offset + sum((size - 1) * stride).
  uint64_t last = static_cast<uint64_t>(tensor.storage_offset);
  for (size_t i = 0; i < tensor.shape.size(); ++i) {
    uint64_t span = 0;
    if (__builtin_mul_overflow(static_cast<uint64_t>(tensor.shape[i] - 1),
                               static_cast<uint64_t>(tensor.stride[i]), &span) ||
        __builtin_add_overflow(last, span, &last)) {
      return bad("has strides that overflow");
    }
  }
  const uint64_t elem = ElementBytes(tensor.dtype);
  uint64_t end = 0;
  if (__builtin_add_overflow(last, 1, &end) || __builtin_mul_overflow(end, elem, &end) ||
      end > StorageBytes(*tensor.storage)) {
    return bad("reaches past the end of storage '", tensor.storage->key, "' (",
               StorageBytes(*tensor.storage), " bytes)");
  }
  return absl::OkStatus();
}

absl::StatusOr<FileRange> TorchFile::ContiguousRange(const TensorRef& tensor) const {
  ASSIGN_OR_RETURN(const ZipEntry* record, StorageRecord(*tensor.storage));
  if (ChangesBytes(tensor)) {
    return absl::FailedPreconditionError(absl::StrCat(
        name_, ": tensor is a lazy neg/conj view; its values are not the stored bytes"));
  }
  if (record->method != 0 || !IsRowMajorContiguous(tensor.shape, tensor.stride)) {
    return absl::FailedPreconditionError(
        absl::StrCat(name_, ": tensor is not a contiguous range of a stored record"));
  }
  ASSIGN_OR_RETURN(uint64_t numel, CheckedNumElements(tensor.shape));
  if (numel == 0) return FileRange{zip_->AbsoluteDataOffset(*record), 0};
  ASSIGN_OR_RETURN(uint64_t nbytes, Describe(tensor).NumBytes());
  const uint64_t elem = ElementBytes(tensor.dtype);
  // Bounds were checked at Open for non-empty tensors, so this cannot overflow.
  return FileRange{zip_->AbsoluteDataOffset(*record) + tensor.storage_offset * elem, nbytes};
}

absl::StatusOr<std::string> TorchFile::ReadTensor(const TensorRef& tensor) const {
  ASSIGN_OR_RETURN(uint64_t nbytes, Describe(tensor).NumBytes());
  std::string out(nbytes, '\0');
  RETURN_IF_ERROR(ReadTensorInto(tensor, out.data(), out.size()));
  return out;
}

absl::Status TorchFile::ReadTensorInto(const TensorRef& tensor, char* dst, size_t size) const {
  ASSIGN_OR_RETURN(uint64_t numel, CheckedNumElements(tensor.shape));
  const uint64_t elem = ElementBytes(tensor.dtype);
  if (numel * elem != size) {
    return absl::InvalidArgumentError(absl::StrCat(name_, ": destination holds ", size,
                                                   " bytes, tensor has ", numel * elem));
  }
  if (numel == 0) return absl::OkStatus();
  ASSIGN_OR_RETURN(const ZipEntry* record, StorageRecord(*tensor.storage));
  const uint64_t first = static_cast<uint64_t>(tensor.storage_offset);
  if (IsRowMajorContiguous(tensor.shape, tensor.stride)) {
    RETURN_IF_ERROR(zip_->ReadEntryRange(*record, first * elem, size, dst));
    return ApplyViewBits(tensor, dst, size, name_);
  }
  // Strided view: read the span it touches once (bounds were checked at Open), then gather.
  uint64_t last = first;
  for (size_t i = 0; i < tensor.shape.size(); ++i) last += (tensor.shape[i] - 1) * tensor.stride[i];
  std::string span((last - first + 1) * elem, '\0');
  RETURN_IF_ERROR(zip_->ReadEntryRange(*record, first * elem, span.size(), span.data()));
  const size_t rank = tensor.shape.size();
  std::vector<int64_t> index(rank, 0);
  uint64_t src = 0;  // element offset within span
  for (uint64_t n = 0; n < numel; ++n) {
    std::memcpy(dst + n * elem, span.data() + src * elem, elem);
    for (size_t d = rank; d-- > 0;) {  // odometer increment
      src += tensor.stride[d];
      if (++index[d] < tensor.shape[d]) break;
      src -= tensor.stride[d] * tensor.shape[d];
      index[d] = 0;
    }
  }
  return ApplyViewBits(tensor, dst, size, name_);
}

}  // namespace mxport::torch
