#include "worker/core/plan_executor.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/export/local_executor.h"
#include "common/fs/sha256.h"
#include "common/safetensors/header.h"
#include "common/safetensors/writer.h"
#include "common/export/assignment.h"

namespace mxport::worker {

using exporter::ExportPlan;
using exporter::HfTensor;
using exporter::Piece;

Roles ComputeRoles(const ExportPlan& plan, int world_size) {
  Roles roles;
  const int64_t sources = static_cast<int64_t>(plan.sources.size());
  roles.source_readers.resize(sources);
  for (int w = 0; w < world_size; ++w) {
    for (const auto& a : exporter::AssignShards(w, world_size, sources)) {
      roles.source_readers[a.shard].push_back(w);
    }
  }
  std::vector<int64_t> seen(sources, 0);
  for (const Piece& p : plan.pieces) {
    const auto& readers = roles.source_readers[p.source];
    roles.piece_reader.push_back(readers[seen[p.source]++ % readers.size()]);
  }
  for (size_t f = 0; f < plan.files.size(); ++f) {
    roles.file_writer.push_back(static_cast<int>(f % world_size));
  }
  return roles;
}

struct PlanExecutor::OpenFile {
  std::string staged_path;
  std::unique_ptr<safetensors::Writer> writer;
};

PlanExecutor::PlanExecutor(Options options) : options_(std::move(options)) {
  rank_ = options_.transport->rank();
  roles_ = ComputeRoles(*options_.plan, options_.transport->world_size());
}

PlanExecutor::~PlanExecutor() = default;

absl::Status PlanExecutor::Fail(absl::Status status) {
  if (status.ok()) return status;
  absl::MutexLock lock(&error_mu_);
  // Keep the cause, not the Aborted that the abort below makes every other thread see.
  if (first_error_.ok() || (first_error_.code() == absl::StatusCode::kAborted &&
                            status.code() != absl::StatusCode::kAborted)) {
    first_error_ = status;
  }
  options_.transport->Abort();
  return status;
}

absl::Status PlanExecutor::ForEachChunk(
    const Piece& piece, const std::function<absl::Status(const Piece&)>& fn) const {
  const HfTensor& t = options_.plan->tensors[piece.tensor];
  const uint64_t row_bytes = static_cast<uint64_t>(piece.src_cols) * ElementBytes(t.dtype);
  const int64_t rows_per_chunk =
      std::max<int64_t>(1, static_cast<int64_t>(options_.chunk_bytes / std::max<uint64_t>(1, row_bytes)));
  for (int64_t r = 0; r < piece.rows; r += rows_per_chunk) {
    Piece chunk = piece;
    chunk.src_row += r;
    chunk.dst_row += r;
    chunk.rows = std::min(rows_per_chunk, piece.rows - r);
    RETURN_IF_ERROR(fn(chunk));
  }
  return absl::OkStatus();
}

absl::Status PlanExecutor::Write(const Piece& chunk, absl::string_view rows) {
  const HfTensor& t = options_.plan->tensors[chunk.tensor];
  OpenFile& file = *files_[t.file];
  RETURN_IF_ERROR(exporter::ScatterPiece(chunk, t, rows,
                                         [&](uint64_t offset, absl::string_view bytes) {
                                           return file.writer->WritePiece(t.name, offset, bytes);
                                         }));
  bytes_written_ += chunk.rows * chunk.cols * ElementBytes(t.dtype);
  return absl::OkStatus();
}

absl::Status PlanExecutor::ReadAndSend() {
  const ExportPlan& plan = *options_.plan;
  exporter::SourceReader reader(*options_.fs, plan);
  const absl::Time start = absl::Now();
  uint64_t read = 0;
  for (size_t i = 0; i < plan.pieces.size(); ++i) {
    if (roles_.piece_reader[i] != rank_) continue;
    const Piece& piece = plan.pieces[i];
    const HfTensor& t = plan.tensors[piece.tensor];
    if (options_.skip_files.contains(plan.files[t.file].name)) continue;
    const int writer = roles_.file_writer[t.file];
    RETURN_IF_ERROR(ForEachChunk(piece, [&](const Piece& chunk) -> absl::Status {
      ASSIGN_OR_RETURN(std::string rows, reader.ReadRows(chunk));
      read += rows.size();
      if (options_.max_bytes_per_second > 0) {  // pacing: wait until the budget allows
        const absl::Time due =
            start + absl::Seconds(static_cast<double>(read) / options_.max_bytes_per_second);
        if (due > absl::Now()) absl::SleepFor(due - absl::Now());
      }
      if (writer == rank_) return Write(chunk, rows);  // local: no copy through the transport
      RETURN_IF_ERROR(options_.transport->Send(writer, rows));
      bytes_sent_ += rows.size();
      return absl::OkStatus();
    }));
  }
  return absl::OkStatus();
}

absl::Status PlanExecutor::ReceiveFrom(int peer) {
  const ExportPlan& plan = *options_.plan;
  std::string buffer;
  for (size_t i = 0; i < plan.pieces.size(); ++i) {
    if (roles_.piece_reader[i] != peer) continue;
    const Piece& piece = plan.pieces[i];
    const HfTensor& t = plan.tensors[piece.tensor];
    if (roles_.file_writer[t.file] != rank_ || options_.skip_files.contains(plan.files[t.file].name)) {
      continue;
    }
    RETURN_IF_ERROR(ForEachChunk(piece, [&](const Piece& chunk) -> absl::Status {
      buffer.resize(chunk.rows * chunk.src_cols * ElementBytes(t.dtype));
      RETURN_IF_ERROR(options_.transport->Recv(peer, absl::MakeSpan(buffer)));
      return Write(chunk, buffer);
    }));
  }
  return absl::OkStatus();
}

absl::Status PlanExecutor::FinishFiles() {
  const ExportPlan& plan = *options_.plan;
  for (size_t f = 0; f < files_.size(); ++f) {
    if (files_[f] == nullptr) continue;
    RETURN_IF_ERROR(files_[f]->writer->Finish());
    StagedFile staged;
    staged.name = plan.files[f].name;
    staged.staged_path = files_[f]->staged_path;
    ASSIGN_OR_RETURN(staged.size, options_.fs->FileSize(staged.staged_path));
    ASSIGN_OR_RETURN(staged.sha256, fs::Sha256File(*options_.fs, staged.staged_path));
    if (options_.publish) RETURN_IF_ERROR(options_.publish(staged));
  }
  return absl::OkStatus();
}

absl::Status PlanExecutor::Run() {
  absl::Status status = RunSteps();
  if (status.ok()) return status;
  Fail(status).IgnoreError();  // peers must not wait for a worker that stopped
  absl::MutexLock lock(&error_mu_);
  return first_error_;
}

absl::Status PlanExecutor::RunSteps() {
  const ExportPlan& plan = *options_.plan;
  const int world = options_.transport->world_size();
  RETURN_IF_ERROR(options_.fs->CreateDirs(options_.staging_dir));
  // Open (preallocate) every file this worker writes, and total the work.
  files_.resize(plan.files.size());
  for (size_t f = 0; f < plan.files.size(); ++f) {
    if (roles_.file_writer[f] != rank_ || options_.skip_files.contains(plan.files[f].name)) {
      continue;
    }
    std::vector<safetensors::TensorSpec> specs;
    for (int ti : plan.files[f].tensors) {
      specs.push_back({plan.tensors[ti].name, plan.tensors[ti].dtype, plan.tensors[ti].shape});
    }
    ASSIGN_OR_RETURN(safetensors::Header header,
                     safetensors::Header::Layout(std::move(specs), {{"format", "pt"}},
                                                 safetensors::LayoutOrder::kAsGiven));
    auto file = std::make_unique<OpenFile>();
    file->staged_path = fs::JoinPath(options_.staging_dir, plan.files[f].name);
    ASSIGN_OR_RETURN(file->writer,
                     safetensors::Writer::Create(*options_.fs, file->staged_path, header));
    bytes_total_ += plan.files[f].data_bytes;
    files_[f] = std::move(file);
  }
  for (size_t i = 0; i < plan.pieces.size(); ++i) {
    const HfTensor& t = plan.tensors[plan.pieces[i].tensor];
    if (roles_.piece_reader[i] == rank_ && roles_.file_writer[t.file] != rank_ &&
        !options_.skip_files.contains(plan.files[t.file].name)) {
      bytes_total_ += plan.pieces[i].rows * plan.pieces[i].src_cols * ElementBytes(t.dtype);
    }
  }

  std::vector<std::thread> receivers;
  for (int peer = 0; peer < world; ++peer) {
    if (peer == rank_) continue;
    receivers.emplace_back([this, peer] { Fail(ReceiveFrom(peer)).IgnoreError(); });
  }
  Fail(ReadAndSend()).IgnoreError();
  for (std::thread& t : receivers) t.join();
  {
    absl::MutexLock lock(&error_mu_);
    if (!first_error_.ok()) return first_error_;
  }
  return Fail(FinishFiles());
}

}  // namespace mxport::worker
