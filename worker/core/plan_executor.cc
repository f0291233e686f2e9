#include "worker/core/plan_executor.h"

#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/export/local_executor.h"
#include "common/export/quantize_plan.h"
#include "common/fs/content_hash.h"
#include "common/safetensors/header.h"
#include "common/safetensors/writer.h"

namespace mxport::worker {

using exporter::ExportPlan;
using exporter::HfTensor;
using exporter::Piece;

struct PlanExecutor::OpenFile {
  std::string staged_path;
  std::unique_ptr<safetensors::Writer> writer;
  std::atomic<int64_t> remaining{0};  // messages still to be written into it
  bool queued = false;                // handed to the finisher (guarded by finish_mu_)
};

struct PlanExecutor::Step {
  int64_t step = 0;
  std::vector<int> sends;                      // message indices, in order
  std::vector<BufferPool::Buffer> payloads;    // per send
};

PlanExecutor::PlanExecutor(Options options)
    : options_(std::move(options)),
      // Idle buffers kept for reuse: the fourth quarter of the in-flight budget (steps use
      // three), so buffers in use plus kept ones stay within it.
      buffers_(BufferPool::Options{
          .retain_bytes = std::max<uint64_t>(1, options_.in_flight_bytes / 4),
          // The transport's fastest host memory (page-locked for NCCL).
          .allocate = [t = options_.transport](size_t n) { return t->AllocateHost(n); },
          .free = [t = options_.transport](char* p) { t->FreeHost(p); }}) {
  rank_ = options_.transport->rank();
  const int world = options_.transport->world_size();
  roles_ = ComputeRoles(*options_.plan, world);
  ScheduleOptions schedule;
  // A step holds at most a quarter of the in-flight budget and four chunks per direction, so
  // small jobs still take several steps and files commit as they complete.
  schedule.step_bytes = std::max<uint64_t>(
      1, std::min(options_.in_flight_bytes / 4, 4 * std::max<uint64_t>(1, options_.chunk_bytes)));
  schedule.chunk_bytes = std::min(options_.chunk_bytes, schedule.step_bytes);
  chunk_bytes_ = schedule.chunk_bytes;
  schedule.skip_files = options_.skip_files;
  schedule.self_transfer = options_.self_transfer;
  schedule_ = BuildSchedule(*options_.plan, roles_, world, schedule);
}

PlanExecutor::~PlanExecutor() = default;

absl::Status PlanExecutor::Fail(absl::Status status) {
  if (status.ok()) return status;
  {
    absl::MutexLock lock(&error_mu_);
    // Keep the cause, not the Aborted that the abort below makes every other thread see.
    if (first_error_.ok() || (first_error_.code() == absl::StatusCode::kAborted &&
                              status.code() != absl::StatusCode::kAborted)) {
      first_error_ = status;
    }
  }
  options_.transport->Abort();
  absl::MutexLock lock(&queue_mu_);  // wakes both threads' waits
  stopped_ = true;
  return status;
}

bool PlanExecutor::failed() {
  absl::MutexLock lock(&error_mu_);
  return !first_error_.ok();
}

absl::Status PlanExecutor::Write(const Piece& chunk, absl::string_view rows) {
  const ExportPlan& plan = *options_.plan;
  const HfTensor& t = plan.tensors[chunk.tensor];
  OpenFile& file = *files_[t.file];
  if (t.quant_part == exporter::QuantPart::kWeight) {
    // The writer quantizes: the statistics of every reader are known by now.
    ASSIGN_OR_RETURN(std::string q, exporter::QuantizeChunk(plan, stats_, chunk, rows,
                                                            options_.quant_backend));
    RETURN_IF_ERROR(exporter::ScatterQuantized(
        plan, chunk, q, [&](int tensor, uint64_t offset, absl::string_view bytes) {
          return file.writer->WritePiece(plan.tensors[tensor].name, offset, bytes);
        }));
  } else {
    RETURN_IF_ERROR(exporter::ScatterPiece(
        chunk, t, rows, [&](uint64_t offset, absl::string_view bytes) {
          return file.writer->WritePiece(t.name, offset, bytes);
        }));
  }
  bytes_written_ += rows.size();
  // The file's last message: publish it now (on the finisher thread), not at the end of the plan.
  if (--file.remaining == 0) QueueFinish(t.file);
  return absl::OkStatus();
}

absl::Status PlanExecutor::GatherStats(exporter::SourceReader& reader) {
  const ExportPlan& plan = *options_.plan;
  // This worker's share: every piece of a quantized weight it reads, committed files included
  // (a fused sibling's scale depends on them).
  exporter::QuantStats mine;
  for (size_t i = 0; i < plan.pieces.size(); ++i) {
    const Piece& piece = plan.pieces[i];
    if (roles_.piece_reader[i] != rank_ ||
        plan.tensors[piece.tensor].quant_part != exporter::QuantPart::kWeight) {
      continue;
    }
    for (const Piece& chunk : ChunkPiece(plan, piece, chunk_bytes_)) {
      const uint64_t bytes = static_cast<uint64_t>(chunk.rows) * chunk.src_cols *
                             ElementBytes(plan.tensors[chunk.tensor].piece_dtype());
      BufferPool::Buffer rows = buffers_.Acquire(bytes);
      RETURN_IF_ERROR(reader.ReadRowsInto(chunk, rows.span()));
      RETURN_IF_ERROR(mine.Accumulate(plan, chunk, rows.view()));
    }
  }
  // All-gather over the data plane: the sizes first (a receive must know its size), then the
  // statistics. Every rank merges the same set, so every rank holds the same result.
  const int world = options_.transport->world_size();
  const std::string own = mine.Serialize();
  const uint64_t own_size = own.size();
  const absl::string_view own_size_bytes(reinterpret_cast<const char*>(&own_size),
                                         sizeof(own_size));
  std::vector<uint64_t> sizes(world, 0);
  std::vector<transport::SendOp> sends;
  std::vector<transport::RecvOp> recvs;
  for (int peer = 0; peer < world; ++peer) {
    if (peer == rank_) continue;
    sends.push_back({peer, own_size_bytes});
    recvs.push_back({peer, absl::MakeSpan(reinterpret_cast<char*>(&sizes[peer]),
                                          sizeof(uint64_t))});
  }
  RETURN_IF_ERROR(options_.transport->Exchange(sends, recvs));
  std::vector<std::string> theirs(world);
  sends.clear();
  recvs.clear();
  for (int peer = 0; peer < world; ++peer) {
    if (peer == rank_) continue;
    theirs[peer].assign(sizes[peer], '\0');
    sends.push_back({peer, own});
    recvs.push_back({peer, absl::MakeSpan(theirs[peer])});
  }
  RETURN_IF_ERROR(options_.transport->Exchange(sends, recvs));
  exporter::QuantStats all;
  for (int r = 0; r < world; ++r) {
    ASSIGN_OR_RETURN(exporter::QuantStats part,
                     exporter::QuantStats::Parse(r == rank_ ? own : theirs[r]));
    RETURN_IF_ERROR(all.Merge(part));
  }
  RETURN_IF_ERROR(all.Finish(plan, &reader));  // reads checkpoint amax where the plan has some
  stats_ = std::move(all);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<PlanExecutor::Step>> PlanExecutor::ReadStep(int64_t step) {
  auto out = std::make_unique<Step>();
  out->step = step;
  for (int i : my_messages_[step]) {
    const Message& m = schedule_.messages[i];
    if (m.from != rank_) continue;
    BufferPool::Buffer rows = buffers_.Acquire(m.bytes);
    RETURN_IF_ERROR(reader_->ReadRowsInto(m.chunk, rows.span()));
    read_bytes_ += rows.size();
    if (options_.max_bytes_per_second > 0) {  // pacing: wait until the budget allows
      const absl::Time due = read_start_ + absl::Seconds(static_cast<double>(read_bytes_) /
                                                         options_.max_bytes_per_second);
      if (due > absl::Now()) absl::SleepFor(due - absl::Now());
    }
    if (m.to == rank_ && !options_.self_transfer) {
      RETURN_IF_ERROR(Write(m.chunk, rows.view()));  // local: no copy through the transport
      continue;
    }
    out->sends.push_back(i);
    out->payloads.push_back(std::move(rows));
  }
  return out;
}

void PlanExecutor::ReadAhead(const std::vector<int64_t>& steps) {
  for (int64_t step : steps) {
    absl::StatusOr<std::unique_ptr<Step>> read = ReadStep(step);
    if (!read.ok()) {
      Fail(read.status()).IgnoreError();
      return;
    }
    absl::MutexLock lock(&queue_mu_);
    // One step read ahead of the one in flight, no more.
    queue_mu_.Await(absl::Condition(
        +[](PlanExecutor* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->queue_mu_) {
          return self->queue_.empty() || self->stopped_;
        },
        this));
    if (stopped_) return;  // failed
    queue_.push_back(std::move(*read));
  }
}

absl::Status PlanExecutor::ExchangeStep(Step& step) {
  std::vector<transport::SendOp> sends;
  for (size_t k = 0; k < step.sends.size(); ++k) {
    sends.push_back({schedule_.messages[step.sends[k]].to, step.payloads[k].view()});
  }
  std::vector<int> received;
  std::vector<BufferPool::Buffer> buffers;
  for (int i : my_messages_[step.step]) {
    const Message& m = schedule_.messages[i];
    if (m.to != rank_ || (m.from == rank_ && !options_.self_transfer)) continue;
    received.push_back(i);
    buffers.push_back(buffers_.Acquire(m.bytes));
  }
  std::vector<transport::RecvOp> recvs;
  for (size_t k = 0; k < received.size(); ++k) {
    recvs.push_back({schedule_.messages[received[k]].from, buffers[k].span()});
  }
  RETURN_IF_ERROR(options_.transport->Exchange(sends, recvs));
  for (const auto& p : step.payloads) bytes_sent_ += p.size();
  step.payloads.clear();
  for (size_t k = 0; k < received.size(); ++k) {
    RETURN_IF_ERROR(Write(schedule_.messages[received[k]].chunk, buffers[k].view()));
    buffers[k] = BufferPool::Buffer();  // back to the pool for the next receive
  }
  return absl::OkStatus();
}

absl::Status PlanExecutor::FinishFile(int f) {
  const ExportPlan& plan = *options_.plan;
  for (int ti : plan.files[f].tensors) {  // scales that follow from the statistics alone
    const exporter::QuantPart part = plan.tensors[ti].quant_part;
    if (part != exporter::QuantPart::kWeightScale2 && part != exporter::QuantPart::kScaleInv) {
      continue;
    }
    ASSIGN_OR_RETURN(std::string bytes, exporter::ScaleTensorBytes(plan, stats_, ti));
    RETURN_IF_ERROR(files_[f]->writer->WritePiece(plan.tensors[ti].name, 0, bytes));
  }
  RETURN_IF_ERROR(files_[f]->writer->Finish());
  StagedFile staged;
  staged.name = plan.files[f].name;
  staged.staged_path = files_[f]->staged_path;
  ASSIGN_OR_RETURN(staged.size, options_.fs->FileSize(staged.staged_path));
  ASSIGN_OR_RETURN(staged.content_hash, fs::ContentHashFile(*options_.fs, staged.staged_path));
  if (options_.publish) RETURN_IF_ERROR(options_.publish(staged));
  return absl::OkStatus();
}

void PlanExecutor::QueueFinish(int f) {
  absl::MutexLock lock(&finish_mu_);
  if (files_[f]->queued) return;
  files_[f]->queued = true;
  finish_queue_.push_back(f);
}

void PlanExecutor::Finisher() {
  while (true) {
    int f = -1;
    {
      absl::MutexLock lock(&finish_mu_);
      finish_mu_.Await(absl::Condition(
          +[](PlanExecutor* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->finish_mu_) {
            return !self->finish_queue_.empty() || self->finish_closed_;
          },
          this));
      if (finish_queue_.empty()) return;  // closed and drained
      f = finish_queue_.front();
      finish_queue_.erase(finish_queue_.begin());
    }
    if (failed()) continue;  // drain without publishing
    const absl::Status status = FinishFile(f);
    if (!status.ok()) Fail(status).IgnoreError();
  }
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
    files_[f] = std::move(file);
  }
  my_messages_.assign(schedule_.steps, {});
  std::vector<int64_t> my_steps;
  for (size_t i = 0; i < schedule_.messages.size(); ++i) {
    const Message& m = schedule_.messages[i];
    if (m.from != rank_ && m.to != rank_) continue;
    // Progress counts bytes as read: sent by this reader, and written by this writer.
    if (m.from == rank_ && (m.to != rank_ || options_.self_transfer)) bytes_total_ += m.bytes;
    if (m.to == rank_) {
      bytes_total_ += m.bytes;
      ++files_[plan.tensors[m.chunk.tensor].file]->remaining;
    }
    my_messages_[m.step].push_back(static_cast<int>(i));
  }
  for (int64_t s = 0; s < schedule_.steps; ++s) {
    if (!my_messages_[s].empty()) my_steps.push_back(s);
  }

  exporter::SourceReader reader(*options_.fs, plan);
  if (exporter::IsQuantized(plan)) RETURN_IF_ERROR(GatherStats(reader));
  reader_ = &reader;
  read_start_ = absl::Now();
  std::thread finisher([this] { Finisher(); });
  std::thread read_ahead([this, &my_steps] { ReadAhead(my_steps); });
  for (size_t k = 0; k < my_steps.size(); ++k) {
    std::unique_ptr<Step> step;
    {
      absl::MutexLock lock(&queue_mu_);
      queue_mu_.Await(absl::Condition(
          +[](PlanExecutor* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->queue_mu_) {
            return !self->queue_.empty() || self->stopped_;
          },
          this));
      if (queue_.empty()) break;  // failed
      step = std::move(queue_.front());
      queue_.erase(queue_.begin());
    }
    absl::Status status = ExchangeStep(*step);
    if (!status.ok()) {
      Fail(status).IgnoreError();
      break;
    }
  }
  read_ahead.join();
  reader_ = nullptr;
  // Files that needed no message (only scales from the statistics) finish now.
  for (size_t f = 0; f < files_.size(); ++f) {
    if (files_[f] != nullptr && files_[f]->remaining == 0) QueueFinish(static_cast<int>(f));
  }
  {
    absl::MutexLock lock(&finish_mu_);
    finish_closed_ = true;
  }
  finisher.join();
  absl::MutexLock lock(&error_mu_);
  return first_error_;
}

}  // namespace mxport::worker
