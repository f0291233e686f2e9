// FaultInjectionFileSystem: forwarding, a per-op fault table, and shadow copies at Sync.
#include "common/fs/fault_injection_file_system.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/base/status_macros.h"

namespace mxport::fs {
namespace internal_fs {

class FaultRandomAccessFile final : public RandomAccessFile {
 public:
  FaultRandomAccessFile(FaultInjectionFileSystem* fs, std::unique_ptr<RandomAccessFile> base)
      : fs_(fs), base_(std::move(base)) {}

  absl::Status ReadAt(uint64_t offset, size_t n, char* dst) const override {
    RETURN_IF_ERROR(fs_->MaybeFail(FaultInjectionFileSystem::Op::kRead));
    return base_->ReadAt(offset, n, dst);
  }
  uint64_t size() const override { return base_->size(); }
  const std::string& path() const override { return base_->path(); }

 private:
  FaultInjectionFileSystem* const fs_;
  const std::unique_ptr<RandomAccessFile> base_;
};

class FaultWritableFile final : public WritableFile {
 public:
  using Op = FaultInjectionFileSystem::Op;
  using FileRecord = FaultInjectionFileSystem::FileRecord;

  FaultWritableFile(FaultInjectionFileSystem* fs, std::unique_ptr<WritableFile> base,
                    std::shared_ptr<FileRecord> record)
      : fs_(fs), base_(std::move(base)), record_(std::move(record)) {}

  absl::Status WriteAt(uint64_t offset, absl::string_view data) override {
    RETURN_IF_ERROR(fs_->MaybeFail(Op::kWrite));
    // Marked even if the write fails: a failed write may still have changed some bytes.
    fs_->MarkDirty(*record_);
    return base_->WriteAt(offset, data);
  }
  absl::Status Allocate(uint64_t size) override {
    RETURN_IF_ERROR(fs_->MaybeFail(Op::kAllocate));
    fs_->MarkDirty(*record_);
    return base_->Allocate(size);
  }
  absl::Status Sync() override {
    RETURN_IF_ERROR(fs_->MaybeFail(Op::kSync));
    RETURN_IF_ERROR(base_->Sync());
    return fs_->RecordSync(*record_);
  }
  absl::Status Close() override { return base_->Close(); }
  const std::string& path() const override { return base_->path(); }

 private:
  FaultInjectionFileSystem* const fs_;
  const std::unique_ptr<WritableFile> base_;
  const std::shared_ptr<FileRecord> record_;
};

}  // namespace internal_fs

FaultInjectionFileSystem::FaultInjectionFileSystem(FileSystem* base) : base_(base) {}

void FaultInjectionFileSystem::FailNth(Op op, int n, absl::Status status) {
  absl::MutexLock lock(&mu_);
  Faults& faults = faults_[static_cast<int>(op)];
  faults.nth[faults.calls + std::max(n, 1)] = std::move(status);
}

void FaultInjectionFileSystem::FailAll(Op op, absl::Status status) {
  absl::MutexLock lock(&mu_);
  faults_[static_cast<int>(op)].all = std::move(status);
}

void FaultInjectionFileSystem::ClearFaults() {
  absl::MutexLock lock(&mu_);
  for (Faults& faults : faults_) {
    faults.nth.clear();
    faults.all.reset();
  }
}

int FaultInjectionFileSystem::count(Op op) const {
  absl::MutexLock lock(&mu_);
  return faults_[static_cast<int>(op)].calls;
}

absl::Status FaultInjectionFileSystem::MaybeFail(Op op) {
  absl::MutexLock lock(&mu_);
  Faults& faults = faults_[static_cast<int>(op)];
  ++faults.calls;
  if (faults.all.has_value()) return *faults.all;
  auto it = faults.nth.find(faults.calls);
  if (it == faults.nth.end()) return absl::OkStatus();
  absl::Status status = std::move(it->second);
  faults.nth.erase(it);
  return status;
}

void FaultInjectionFileSystem::MarkDirty(FileRecord& record) {
  absl::MutexLock lock(&mu_);
  record.dirty = true;
}

absl::Status FaultInjectionFileSystem::RecordSync(FileRecord& record) {
  std::string path;
  {
    absl::MutexLock lock(&mu_);
    path = record.path;
  }
  ASSIGN_OR_RETURN(std::string content, ReadFileToString(*base_, path));
  absl::MutexLock lock(&mu_);
  record.durable = std::move(content);
  record.dirty = false;
  return absl::OkStatus();
}

absl::Status FaultInjectionFileSystem::DropUnsyncedData() {
  absl::MutexLock lock(&mu_);
  absl::Status first_error;
  for (auto& [path, record] : records_) {
    if (!record->dirty) continue;
    absl::Status status;
    if (record->durable.has_value()) {
      absl::StatusOr<std::unique_ptr<WritableFile>> file =
          base_->OpenForWrite(path, OpenMode::kCreateOrTruncate);
      status = file.status();
      if (status.ok()) status = (*file)->WriteAt(0, *record->durable);
      if (status.ok()) status = (*file)->Sync();
      if (status.ok()) status = (*file)->Close();
    } else {
      status = base_->Delete(path);
      if (absl::IsNotFound(status)) status = absl::OkStatus();
    }
    if (status.ok()) record->dirty = false;
    first_error.Update(status);
  }
  return first_error;
}

absl::StatusOr<std::unique_ptr<RandomAccessFile>> FaultInjectionFileSystem::OpenForRead(
    const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> file, base_->OpenForRead(path));
  return std::make_unique<internal_fs::FaultRandomAccessFile>(this, std::move(file));
}

absl::StatusOr<std::unique_ptr<WritableFile>> FaultInjectionFileSystem::OpenForWrite(
    const std::string& path, OpenMode mode) {
  RETURN_IF_ERROR(MaybeFail(Op::kOpenForWrite));
  bool known;
  {
    absl::MutexLock lock(&mu_);
    known = records_.contains(path);
  }
  // Before the open (which may truncate): what a crash would bring back for a new record.
  std::optional<std::string> before;
  if (!known && mode != OpenMode::kCreateExclusive) {
    absl::StatusOr<std::string> content = ReadFileToString(*base_, path);
    if (content.ok()) before = *std::move(content);
  }
  ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file, base_->OpenForWrite(path, mode));
  absl::MutexLock lock(&mu_);
  std::shared_ptr<FileRecord>& record = records_[path];
  if (record == nullptr) {
    record = std::make_shared<FileRecord>();
    record->path = path;
    record->durable = std::move(before);
  }
  // Creating or truncating changes the file; opening it as it is does not.
  if (mode != OpenMode::kOpenExisting) record->dirty = true;
  return std::make_unique<internal_fs::FaultWritableFile>(this, std::move(file), record);
}

absl::Status FaultInjectionFileSystem::Exists(const std::string& path) {
  return base_->Exists(path);
}

absl::StatusOr<bool> FaultInjectionFileSystem::IsDirectory(const std::string& path) {
  return base_->IsDirectory(path);
}

absl::StatusOr<uint64_t> FaultInjectionFileSystem::FileSize(const std::string& path) {
  return base_->FileSize(path);
}

absl::Status FaultInjectionFileSystem::CreateDirs(const std::string& path) {
  return base_->CreateDirs(path);
}

absl::StatusOr<std::vector<std::string>> FaultInjectionFileSystem::ListDir(
    const std::string& path) {
  return base_->ListDir(path);
}

absl::Status FaultInjectionFileSystem::Rename(const std::string& from, const std::string& to) {
  RETURN_IF_ERROR(MaybeFail(Op::kRename));
  RETURN_IF_ERROR(base_->Rename(from, to));
  absl::MutexLock lock(&mu_);
  auto it = records_.find(from);
  if (from == to || it == records_.end()) {
    if (from != to) records_.erase(to);  // the replaced file is gone from the name space
    return absl::OkStatus();
  }
  std::shared_ptr<FileRecord> record = std::move(it->second);
  records_.erase(it);
  record->path = to;
  records_.insert_or_assign(to, std::move(record));
  return absl::OkStatus();
}

absl::Status FaultInjectionFileSystem::Delete(const std::string& path) {
  RETURN_IF_ERROR(MaybeFail(Op::kDelete));
  RETURN_IF_ERROR(base_->Delete(path));
  absl::MutexLock lock(&mu_);
  records_.erase(path);
  return absl::OkStatus();
}

absl::Status FaultInjectionFileSystem::SyncDir(const std::string& path) {
  RETURN_IF_ERROR(MaybeFail(Op::kSyncDir));
  return base_->SyncDir(path);
}

}  // namespace mxport::fs
