// MemoryFileSystem: a tree of shared directory and file nodes under one mutex.
#include "common/fs/memory_file_system.h"

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include "absl/strings/string_view.h"
#include <utility>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/base/status_macros.h"

namespace mxport::fs {
namespace internal_fs {

// Nodes carry no lock of their own: every field of every node is guarded by MemoryState::mu.
struct FileNode {
  std::string data;    // current bytes
  std::string synced;  // bytes as of the last Sync()
};
struct DirNode;
using Node = std::variant<std::shared_ptr<FileNode>, std::shared_ptr<DirNode>>;
struct DirNode {
  std::map<std::string, Node> entries;  // current entries
  std::map<std::string, Node> durable;  // entries as of the last SyncDir()
};

namespace {

// Largest file the memory file system will hold; larger writes are ResourceExhausted.
constexpr uint64_t kMaxFileSize = uint64_t{1} << 36;

bool IsDir(const Node& node) { return std::holds_alternative<std::shared_ptr<DirNode>>(node); }
DirNode& AsDir(const Node& node) { return *std::get<std::shared_ptr<DirNode>>(node); }

absl::Status Error(absl::StatusCode code, absl::string_view op, absl::string_view path,
                   absl::string_view what) {
  return absl::Status(code, absl::StrCat(op, " '", path, "': ", what));
}
absl::Status NotFound(absl::string_view op, absl::string_view path) {
  return Error(absl::StatusCode::kNotFound, op, path, "no such file or directory");
}
absl::Status IsADirectory(absl::string_view op, absl::string_view path) {
  return Error(absl::StatusCode::kFailedPrecondition, op, path, "is a directory");
}
absl::Status NotADirectory(absl::string_view op, absl::string_view path) {
  return Error(absl::StatusCode::kFailedPrecondition, op, path, "not a directory");
}
absl::Status Closed(absl::string_view op, absl::string_view path) {
  return Error(absl::StatusCode::kFailedPrecondition, op, path, "file is closed");
}

absl::StatusOr<std::vector<std::string>> SplitPath(absl::string_view op, absl::string_view path) {
  std::vector<std::string> parts;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (part == ".") continue;
    if (part == "..") {
      return Error(absl::StatusCode::kInvalidArgument, op, path, "'..' is not supported");
    }
    parts.emplace_back(part);
  }
  return parts;
}

void CrashDir(DirNode& dir) {
  dir.entries = dir.durable;
  for (auto& [name, node] : dir.entries) {
    if (IsDir(node)) {
      CrashDir(AsDir(node));
    } else {
      FileNode& file = *std::get<std::shared_ptr<FileNode>>(node);
      file.data = file.synced;
    }
  }
}

void SyncDirTree(DirNode& dir) {
  dir.durable = dir.entries;
  for (auto& [name, node] : dir.entries) {
    if (IsDir(node)) {
      SyncDirTree(AsDir(node));
    } else {
      FileNode& file = *std::get<std::shared_ptr<FileNode>>(node);
      file.synced = file.data;
    }
  }
}

}  // namespace

struct MemoryState {
  // A directory and the name of an entry in it (which may or may not exist).
  struct Slot {
    DirNode* dir;
    std::string name;
  };

  absl::Mutex mu;
  // Never reassigned; the tree under it is guarded by `mu` (ABSL_PT_GUARDED_BY does not apply
  // to smart pointers).
  const std::shared_ptr<DirNode> root = std::make_shared<DirNode>();

  // The node at `path`: NotFound when missing, FailedPrecondition when a parent is a file.
  absl::StatusOr<Node> Lookup(absl::string_view op, const std::string& path)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    ASSIGN_OR_RETURN(std::vector<std::string> parts, SplitPath(op, path));
    Node node = root;
    for (const std::string& part : parts) {
      if (!IsDir(node)) return NotADirectory(op, path);
      DirNode& dir = AsDir(node);
      auto it = dir.entries.find(part);
      if (it == dir.entries.end()) return NotFound(op, path);
      node = it->second;
    }
    return node;
  }

  // The parent directory of `path` (which must exist) and the last component of `path`.
  absl::StatusOr<Slot> LookupSlot(absl::string_view op, const std::string& path)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    ASSIGN_OR_RETURN(std::vector<std::string> parts, SplitPath(op, path));
    if (parts.empty()) return IsADirectory(op, path);  // the root
    DirNode* dir = root.get();
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      auto it = dir->entries.find(parts[i]);
      if (it == dir->entries.end()) return NotFound(op, path);
      if (!IsDir(it->second)) return NotADirectory(op, path);
      dir = &AsDir(it->second);
    }
    return Slot{dir, parts.back()};
  }
};

namespace {

class MemoryRandomAccessFile final : public RandomAccessFile {
 public:
  MemoryRandomAccessFile(std::shared_ptr<MemoryState> state, std::shared_ptr<FileNode> file,
                         std::string path, uint64_t size)
      : state_(std::move(state)), file_(std::move(file)), path_(std::move(path)), size_(size) {}

  absl::Status ReadAt(uint64_t offset, size_t n, char* dst) const override {
    absl::MutexLock lock(&state_->mu);
    const uint64_t available = file_->data.size();
    if (offset > available || n > available - offset) {
      return absl::DataLossError(absl::StrCat("read '", path_, "': offset ", offset, " length ", n,
                                              " is past the end of the file (", available,
                                              " bytes)"));
    }
    if (n > 0) std::memcpy(dst, file_->data.data() + offset, n);
    return absl::OkStatus();
  }
  uint64_t size() const override { return size_; }
  const std::string& path() const override { return path_; }

 private:
  const std::shared_ptr<MemoryState> state_;
  const std::shared_ptr<FileNode> file_;
  const std::string path_;
  const uint64_t size_;
};

class MemoryWritableFile final : public WritableFile {
 public:
  MemoryWritableFile(std::shared_ptr<MemoryState> state, std::shared_ptr<FileNode> file,
                     std::string path)
      : state_(std::move(state)), file_(std::move(file)), path_(std::move(path)) {}

  absl::Status WriteAt(uint64_t offset, absl::string_view data) override {
    absl::MutexLock lock(&state_->mu);
    if (closed_) return Closed("write", path_);
    if (offset > kMaxFileSize || data.size() > kMaxFileSize - offset) {
      return Error(absl::StatusCode::kResourceExhausted, "write", path_,
                   "file too large for the memory file system");
    }
    if (offset + data.size() > file_->data.size()) file_->data.resize(offset + data.size());
    file_->data.replace(offset, data.size(), data.data(), data.size());
    return absl::OkStatus();
  }
  absl::Status Allocate(uint64_t size) override {
    absl::MutexLock lock(&state_->mu);
    if (closed_) return Closed("allocate", path_);
    if (size > kMaxFileSize) {
      return Error(absl::StatusCode::kResourceExhausted, "allocate", path_,
                   "file too large for the memory file system");
    }
    file_->data.resize(size);
    return absl::OkStatus();
  }
  absl::Status Sync() override {
    absl::MutexLock lock(&state_->mu);
    if (closed_) return Closed("sync", path_);
    file_->synced = file_->data;
    return absl::OkStatus();
  }
  absl::Status Close() override {
    absl::MutexLock lock(&state_->mu);
    if (closed_) return Closed("close", path_);
    closed_ = true;
    return absl::OkStatus();
  }
  const std::string& path() const override { return path_; }

 private:
  const std::shared_ptr<MemoryState> state_;
  const std::shared_ptr<FileNode> file_;
  const std::string path_;
  bool closed_ ABSL_GUARDED_BY(state_->mu) = false;
};

}  // namespace
}  // namespace internal_fs

using internal_fs::DirNode;
using internal_fs::FileNode;
using internal_fs::MemoryState;
using internal_fs::Node;

MemoryFileSystem::MemoryFileSystem() : state_(std::make_shared<MemoryState>()) {}
MemoryFileSystem::~MemoryFileSystem() = default;

std::unique_ptr<MemoryFileSystem> NewMemoryFileSystem() {
  return std::make_unique<MemoryFileSystem>();
}

absl::StatusOr<std::unique_ptr<RandomAccessFile>> MemoryFileSystem::OpenForRead(
    const std::string& path) {
  absl::MutexLock lock(&state_->mu);
  ASSIGN_OR_RETURN(Node node, state_->Lookup("open", path));
  if (internal_fs::IsDir(node)) return internal_fs::IsADirectory("open", path);
  auto file = std::get<std::shared_ptr<FileNode>>(std::move(node));
  const uint64_t size = file->data.size();
  return std::make_unique<internal_fs::MemoryRandomAccessFile>(state_, std::move(file), path, size);
}

absl::StatusOr<std::unique_ptr<WritableFile>> MemoryFileSystem::OpenForWrite(
    const std::string& path, OpenMode mode) {
  absl::MutexLock lock(&state_->mu);
  ASSIGN_OR_RETURN(MemoryState::Slot slot, state_->LookupSlot("open", path));
  std::shared_ptr<FileNode> file;
  auto it = slot.dir->entries.find(slot.name);
  if (it != slot.dir->entries.end()) {
    if (internal_fs::IsDir(it->second)) return internal_fs::IsADirectory("open", path);
    if (mode == OpenMode::kCreateExclusive) {
      return internal_fs::Error(absl::StatusCode::kAlreadyExists, "open", path, "file exists");
    }
    file = std::get<std::shared_ptr<FileNode>>(it->second);
    if (mode == OpenMode::kCreateOrTruncate) file->data.clear();
  } else {
    if (mode == OpenMode::kOpenExisting) return internal_fs::NotFound("open", path);
    file = std::make_shared<FileNode>();
    slot.dir->entries.emplace(slot.name, file);
  }
  return std::make_unique<internal_fs::MemoryWritableFile>(state_, std::move(file), path);
}

absl::Status MemoryFileSystem::Exists(const std::string& path) {
  absl::MutexLock lock(&state_->mu);
  return state_->Lookup("stat", path).status();
}

absl::StatusOr<bool> MemoryFileSystem::IsDirectory(const std::string& path) {
  absl::MutexLock lock(&state_->mu);
  ASSIGN_OR_RETURN(Node node, state_->Lookup("stat", path));
  return internal_fs::IsDir(node);
}

absl::StatusOr<uint64_t> MemoryFileSystem::FileSize(const std::string& path) {
  absl::MutexLock lock(&state_->mu);
  ASSIGN_OR_RETURN(Node node, state_->Lookup("size of", path));
  if (internal_fs::IsDir(node)) return internal_fs::IsADirectory("size of", path);
  return std::get<std::shared_ptr<FileNode>>(node)->data.size();
}

absl::Status MemoryFileSystem::CreateDirs(const std::string& path) {
  absl::MutexLock lock(&state_->mu);
  ASSIGN_OR_RETURN(std::vector<std::string> parts, internal_fs::SplitPath("mkdir", path));
  DirNode* dir = state_->root.get();
  for (const std::string& part : parts) {
    auto it = dir->entries.find(part);
    if (it == dir->entries.end()) {
      it = dir->entries.emplace(part, std::make_shared<DirNode>()).first;
    } else if (!internal_fs::IsDir(it->second)) {
      return internal_fs::NotADirectory("mkdir", path);
    }
    dir = &internal_fs::AsDir(it->second);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> MemoryFileSystem::ListDir(const std::string& path) {
  absl::MutexLock lock(&state_->mu);
  ASSIGN_OR_RETURN(Node node, state_->Lookup("list", path));
  if (!internal_fs::IsDir(node)) return internal_fs::NotADirectory("list", path);
  std::vector<std::string> names;
  for (const auto& [name, child] : internal_fs::AsDir(node).entries) names.push_back(name);
  return names;  // std::map keeps them sorted
}

absl::Status MemoryFileSystem::Rename(const std::string& from, const std::string& to) {
  const std::string both = absl::StrCat(from, "' to '", to);
  absl::MutexLock lock(&state_->mu);
  ASSIGN_OR_RETURN(MemoryState::Slot src, state_->LookupSlot("rename", from));
  ASSIGN_OR_RETURN(MemoryState::Slot dst, state_->LookupSlot("rename", to));
  auto it = src.dir->entries.find(src.name);
  if (it == src.dir->entries.end()) return internal_fs::NotFound("rename", both);
  if (internal_fs::IsDir(it->second)) {
    return internal_fs::Error(absl::StatusCode::kFailedPrecondition, "rename", both,
                              "renaming directories is not supported");
  }
  if (src.dir == dst.dir && src.name == dst.name) return absl::OkStatus();
  auto target = dst.dir->entries.find(dst.name);
  if (target != dst.dir->entries.end() && internal_fs::IsDir(target->second)) {
    return internal_fs::IsADirectory("rename", both);
  }
  Node node = std::move(it->second);
  src.dir->entries.erase(it);
  dst.dir->entries.insert_or_assign(dst.name, std::move(node));
  return absl::OkStatus();
}

absl::Status MemoryFileSystem::Delete(const std::string& path) {
  absl::MutexLock lock(&state_->mu);
  ASSIGN_OR_RETURN(MemoryState::Slot slot, state_->LookupSlot("delete", path));
  auto it = slot.dir->entries.find(slot.name);
  if (it == slot.dir->entries.end()) return internal_fs::NotFound("delete", path);
  if (internal_fs::IsDir(it->second) && !internal_fs::AsDir(it->second).entries.empty()) {
    return internal_fs::Error(absl::StatusCode::kFailedPrecondition, "delete", path,
                              "directory not empty");
  }
  slot.dir->entries.erase(it);
  return absl::OkStatus();
}

absl::Status MemoryFileSystem::SyncDir(const std::string& path) {
  absl::MutexLock lock(&state_->mu);
  ASSIGN_OR_RETURN(Node node, state_->Lookup("open directory", path));
  if (!internal_fs::IsDir(node)) return internal_fs::NotADirectory("open directory", path);
  DirNode& dir = internal_fs::AsDir(node);
  dir.durable = dir.entries;
  return absl::OkStatus();
}

void MemoryFileSystem::SimulateCrash() {
  absl::MutexLock lock(&state_->mu);
  internal_fs::CrashDir(*state_->root);
}

void MemoryFileSystem::SyncEverything() {
  absl::MutexLock lock(&state_->mu);
  internal_fs::SyncDirTree(*state_->root);
}

}  // namespace mxport::fs
