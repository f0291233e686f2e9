#include "coordinator/core/committer.h"

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/base/status_macros.h"
#include "common/fs/content_hash.h"

namespace mxport::coordinator {

absl::Status CheckRelativePath(absl::string_view path) {
  if (path.empty() || path.front() == '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("path '", path, "' must be relative to the output directory"));
  }
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part.empty() || part == "." || part == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat("path '", path, "' has an empty, '.' or '..' component"));
    }
  }
  return absl::OkStatus();
}

std::string Committer::StagingDir(const std::string& output_dir) {
  return fs::JoinPath(output_dir, ".staging");
}

absl::StatusOr<CommitResult> Committer::Commit(const std::string& output_dir,
                                               const CommitRequest& request) {
  RETURN_IF_ERROR(CheckRelativePath(request.path));
  const std::string staging = StagingDir(output_dir) + "/";
  if (!absl::StartsWith(request.staged_path, staging) ||
      !CheckRelativePath(request.staged_path.substr(staging.size())).ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "staged file ", request.staged_path, " is not inside ", staging));
  }
  fs::FileSystem& fs = *options_.fs;
  // Hash before taking the lock (a staged file no longer changes), so commits of different
  // files do not wait on each other's reads. A failure matters only if the commit goes ahead.
  absl::StatusOr<std::string> hash = std::string();
  if (options_.verify_hash) hash = fs::ContentHashFile(fs, request.staged_path);
  absl::MutexLock lock(&mu_);

  ASSIGN_OR_RETURN(std::optional<CommitRecord> existing,
                   options_.store->GetCommit(request.job_id, request.path));
  if (existing.has_value() && existing->size == request.size &&
      existing->content_hash == request.content_hash) {
    fs.Delete(request.staged_path).IgnoreError();  // a retry's copy is not needed
    return CommitResult{*existing, true};
  }
  RETURN_IF_ERROR(options_.leases->Check(request.resource, request.token));
  if (existing.has_value() && existing->token >= request.token) {
    return absl::AbortedError(absl::StrCat(
        request.path, " was committed with token ", existing->token, " and a different hash; ",
        "token ", request.token, " cannot replace it"));
  }

  auto staged_size = fs.FileSize(request.staged_path);
  if (!staged_size.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "staged file ", request.staged_path, " cannot be read: ", staged_size.status().message()));
  }
  if (*staged_size != request.size) {
    return absl::FailedPreconditionError(absl::StrCat(
        "staged file ", request.staged_path, " has ", *staged_size, " bytes, the commit says ",
        request.size));
  }
  if (options_.verify_hash) {
    if (!hash.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "staged file ", request.staged_path, " cannot be read: ", hash.status().message()));
    }
    if (*hash != request.content_hash) {
      return absl::FailedPreconditionError(absl::StrCat(
          "staged file ", request.staged_path, " has content hash ", *hash, ", the commit says ",
          request.content_hash));
    }
  }

  const std::string final_path = fs::JoinPath(output_dir, request.path);
  RETURN_IF_ERROR(fs.CreateDirs(fs::Dirname(final_path)));
  RETURN_IF_ERROR(fs.Rename(request.staged_path, final_path));
  RETURN_IF_ERROR(fs.SyncDir(fs::Dirname(final_path)));
  CommitRecord record{request.job_id, request.path,       request.size,
                      request.content_hash, request.token,      request.generation,
                      options_.clock->Now()};
  RETURN_IF_ERROR(options_.store->PutCommit(record));
  return CommitResult{record, false};
}

}  // namespace mxport::coordinator
