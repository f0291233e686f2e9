#include "common/safetensors/writer.h"

#include <iterator>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"

namespace mxport::safetensors {
namespace {

constexpr size_t kMaxNamedIncomplete = 10;

absl::Status Annotate(const absl::Status& status, absl::string_view prefix) {
  return absl::Status(status.code(), absl::StrCat(prefix, status.message()));
}

std::string Range(uint64_t begin, uint64_t end) { return absl::StrCat("[", begin, ", ", end, ")"); }

}  // namespace

absl::StatusOr<std::unique_ptr<Writer>> Writer::Create(fs::FileSystem& fs, const std::string& path,
                                                       Header header) {
  ASSIGN_OR_RETURN(std::unique_ptr<fs::WritableFile> file,
                   fs.OpenForWrite(path, fs::OpenMode::kCreateOrTruncate));
  RETURN_IF_ERROR(file->Allocate(header.file_size()));
  RETURN_IF_ERROR(file->WriteAt(0, header.encoded()));
  return std::unique_ptr<Writer>(new Writer(path, std::move(header), std::move(file)));
}

Writer::Writer(std::string path, Header header, std::unique_ptr<fs::WritableFile> file)
    : path_(std::move(path)), header_(std::move(header)), file_(std::move(file)) {
  coverage_.reserve(header_.entries().size());
  for (size_t i = 0; i < header_.entries().size(); ++i) {
    coverage_.push_back(std::make_unique<Coverage>());
  }
}

Writer::~Writer() = default;

absl::Status Writer::FailedPrecondition(absl::string_view what) const {
  return absl::FailedPreconditionError(absl::StrCat(path_, ": ", what));
}

absl::Status Writer::WritePiece(absl::string_view name, uint64_t offset, absl::string_view bytes) {
  if (finished_.load()) return FailedPrecondition("writer already finished");
  const TensorEntry* entry = header_.Find(name);
  if (entry == nullptr) {
    return absl::NotFoundError(absl::StrCat(path_, ": no tensor named '", name, "'"));
  }
  const std::string where = absl::StrCat(path_, ": tensor '", name, "': ");
  const uint64_t size = entry->num_bytes();
  const uint64_t n = bytes.size();
  if (offset > size || n > size - offset) {
    return absl::OutOfRangeError(absl::StrCat(where, "piece at offset ", offset, " of ", n,
                                              " bytes lies outside its ", size, " bytes"));
  }
  if (n == 0) return absl::OkStatus();
  const uint64_t end = offset + n;
  Coverage& coverage = *coverage_[entry - header_.entries().data()];
  {
    absl::MutexLock lock(&coverage.mu);
    auto next = coverage.spans.upper_bound(offset);
    auto clash = coverage.spans.end();
    if (next != coverage.spans.end() && next->first < end) clash = next;
    if (next != coverage.spans.begin() && std::prev(next)->second.end > offset) {
      clash = std::prev(next);
    }
    if (clash != coverage.spans.end()) {
      return absl::AlreadyExistsError(
          absl::StrCat(where, "piece ", Range(offset, end), " overlaps bytes ",
                       Range(clash->first, clash->second.end),
                       clash->second.done ? " already written" : " being written"));
    }
    coverage.spans.emplace(offset, Span{end, false});
  }
  const absl::Status status =
      file_->WriteAt(header_.data_start() + entry->begin + offset, {bytes.data(), bytes.size()});

  absl::MutexLock lock(&coverage.mu);
  auto it = coverage.spans.find(offset);
  if (!status.ok()) {
    coverage.spans.erase(it);
    return Annotate(status, absl::StrCat("tensor '", name, "': "));  // names the path
  }
  it->second.done = true;
  coverage.bytes_done += n;
  // Merge with finished neighbours so sequential pieces keep the set small. Spans in flight are
  // never merged, so the erase above always finds its own span.
  if (it != coverage.spans.begin()) {
    auto prev = std::prev(it);
    if (prev->second.done && prev->second.end == it->first) {
      prev->second.end = it->second.end;
      coverage.spans.erase(it);
      it = prev;
    }
  }
  auto next = std::next(it);
  if (next != coverage.spans.end() && next->second.done && next->first == it->second.end) {
    it->second.end = next->second.end;
    coverage.spans.erase(next);
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Writer::BytesWritten(absl::string_view name) const {
  const TensorEntry* entry = header_.Find(name);
  if (entry == nullptr) {
    return absl::NotFoundError(absl::StrCat(path_, ": no tensor named '", name, "'"));
  }
  const Coverage& coverage = *coverage_[entry - header_.entries().data()];
  absl::MutexLock lock(&coverage.mu);
  return coverage.bytes_done;
}

absl::Status Writer::Finish() {
  if (finished_.load()) return FailedPrecondition("writer already finished");
  size_t incomplete = 0;
  std::string names;
  for (size_t i = 0; i < coverage_.size(); ++i) {
    const TensorEntry& entry = header_.entries()[i];
    uint64_t done = 0;
    {
      absl::MutexLock lock(&coverage_[i]->mu);
      done = coverage_[i]->bytes_done;
    }
    if (done == entry.num_bytes()) continue;
    if (++incomplete <= kMaxNamedIncomplete) {
      absl::StrAppend(&names, incomplete > 1 ? ", " : "", "'", entry.name, "' (", done, " of ",
                      entry.num_bytes(), " bytes)");
    }
  }
  if (incomplete > 0) {
    return FailedPrecondition(absl::StrCat(incomplete, " tensor(s) not fully written: ", names,
                                           incomplete > kMaxNamedIncomplete ? ", ..." : ""));
  }
  RETURN_IF_ERROR(file_->Sync());
  RETURN_IF_ERROR(file_->Close());
  finished_.store(true);
  return absl::OkStatus();
}

absl::Status WriteTensors(fs::FileSystem& fs, const std::string& path,
                          const std::map<std::string, TensorData>& tensors,
                          const Metadata& metadata, LayoutOrder order) {
  std::vector<TensorSpec> specs;
  specs.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) {
    specs.push_back(TensorSpec{name, tensor.dtype, tensor.shape});
  }
  auto header = Header::Layout(std::move(specs), metadata, order);
  if (!header.ok()) return Annotate(header.status(), absl::StrCat(path, ": "));
  for (const TensorEntry& entry : header->entries()) {
    const uint64_t have = tensors.at(entry.name).data.size();
    if (have != entry.num_bytes()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": tensor '", entry.name, "' has ", have,
                                                     " bytes, its shape needs ",
                                                     entry.num_bytes()));
    }
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Writer> writer, Writer::Create(fs, path, *std::move(header)));
  for (const auto& [name, tensor] : tensors) {
    RETURN_IF_ERROR(writer->WritePiece(name, 0, tensor.data));
  }
  return writer->Finish();
}

}  // namespace mxport::safetensors
