// PlanExecutor: one worker's part of a distributed export, over a Transport.
//
// Every worker holds the same ExportPlan. Roles follow from (plan, world size) alone (see
// schedule.h): readers of each source, the single writer of each output file (chosen so that
// most of its bytes are read where they are written), and the schedule of messages in steps.
// A worker walks its steps in order: a read-ahead thread reads the pieces it sends in the next
// step (pread, whole rows, at most chunk_bytes per message) and writes its local messages
// directly; the main thread posts the step's sends and receives as one Transport::Exchange and
// scatters every received chunk to its final offset in the preallocated, staged safetensors
// file. A file is finished (synced, hashed and handed to `publish`, on a finisher thread) as
// soon as its last message is written, so commits follow the transfer rather than the end of
// the plan. Read and receive buffers come from a BufferPool, so steady state allocates nothing.
//
// Host memory stays bounded by in_flight_bytes: two steps of sends (read ahead and in flight)
// plus one step of receives, with step_bytes = min(in_flight_bytes / 4, 4 * chunk_bytes), and
// idle pooled buffers up to the last quarter; a single row larger than a step is the only
// excess. Files named in skip_files (committed by an
// earlier generation) are neither read nor written. A quantized plan first reads every piece of
// a quantized weight its worker reads, all-gathers the statistics (amax, tile maxima) with every
// peer over the transport, then quantizes at the writer, so the scales are those of the whole
// tensor and its fused siblings, identical whoever read what. Errors abort the transport, so
// every peer stops promptly; the first error is returned. Not thread-safe: Run() once.
#ifndef MXPORT_WORKER_CORE_PLAN_EXECUTOR_H_
#define MXPORT_WORKER_CORE_PLAN_EXECUTOR_H_

#include <atomic>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/export/local_executor.h"
#include "common/export/plan.h"
#include "common/export/quantize_plan.h"
#include "common/fs/file_system.h"
#include "worker/core/buffer_pool.h"
#include "worker/core/schedule.h"
#include "worker/transport/transport.h"

namespace mxport::worker {

struct StagedFile {
  std::string name;         // "model-00001-of-00004.safetensors"
  std::string staged_path;  // where it lies, synced
  uint64_t size = 0;
  std::string content_hash;
};

class PlanExecutor {
 public:
  struct Options {
    fs::FileSystem* fs = nullptr;
    transport::Transport* transport = nullptr;
    const exporter::ExportPlan* plan = nullptr;
    std::string staging_dir;  // created if missing; staged files go here
    // Largest message. A few MiB keeps each chunk in the CPU caches between the copies it takes
    // (pread, send or receive, pwrite): 64 MiB chunks cost half again as much CPU time.
    uint64_t chunk_bytes = uint64_t{4} << 20;
    // Bound on host bytes held for the data plane (see above); chunk_bytes is capped to a step.
    uint64_t in_flight_bytes = uint64_t{1} << 30;
    // Paces reading to at most this rate (shared storage, or to watch a job); 0: unlimited.
    uint64_t max_bytes_per_second = 0;
    std::set<std::string> skip_files;
    // Send this worker's own pieces through the transport too (exercises NCCL on one GPU).
    bool self_transfer = false;
    // Where writers quantize chunks (a GPU worker's device); nullptr: quant::CpuBackend().
    quant::Backend* quant_backend = nullptr;
    // Called for each finished, synced file (on a writer thread); an error fails the run.
    std::function<absl::Status(const StagedFile&)> publish;
  };
  explicit PlanExecutor(Options options);
  ~PlanExecutor();

  absl::Status Run();

  // Bytes this worker has read and sent, and received and written (for heartbeats).
  uint64_t bytes_sent() const { return bytes_sent_; }
  uint64_t bytes_written() const { return bytes_written_; }
  // Bytes this worker will send plus write in total.
  uint64_t bytes_total() const { return bytes_total_; }

 private:
  struct Step;
  absl::Status RunSteps();
  // The read-ahead thread: reads each of this worker's steps in turn and queues its sends.
  void ReadAhead(const std::vector<int64_t>& steps);
  absl::StatusOr<std::unique_ptr<Step>> ReadStep(int64_t step);
  absl::Status ExchangeStep(Step& step);
  // Quantized plans: reads this worker's pieces of quantized weights, all-gathers the
  // statistics with every peer over the transport and keeps the merged result in stats_.
  absl::Status GatherStats(exporter::SourceReader& reader);
  // Writes the statistics-only scales, finishes, hashes and publishes file f.
  absl::Status FinishFile(int f);
  void QueueFinish(int f);
  // The finisher thread: publishes files as their last message lands, in that order.
  void Finisher();
  absl::Status Fail(absl::Status status);
  absl::Status Write(const exporter::Piece& chunk, absl::string_view rows);
  bool failed();

  Options options_;
  BufferPool buffers_;  // read, send and receive buffers, reused
  Roles roles_;
  Schedule schedule_;
  std::vector<std::vector<int>> my_messages_;  // per step: indices into schedule_.messages
  int rank_;
  uint64_t chunk_bytes_ = 0;
  exporter::QuantStats stats_;
  exporter::SourceReader* reader_ = nullptr;
  absl::Time read_start_;
  uint64_t read_bytes_ = 0;
  absl::Mutex queue_mu_;
  std::vector<std::unique_ptr<Step>> queue_ ABSL_GUARDED_BY(queue_mu_);  // read, not yet sent
  bool stopped_ ABSL_GUARDED_BY(queue_mu_) = false;  // set by Fail
  std::atomic<uint64_t> bytes_sent_{0};
  std::atomic<uint64_t> bytes_written_{0};
  uint64_t bytes_total_ = 0;
  struct OpenFile;
  std::vector<std::unique_ptr<OpenFile>> files_;  // per output file; null unless mine
  absl::Mutex finish_mu_;
  std::vector<int> finish_queue_ ABSL_GUARDED_BY(finish_mu_);
  bool finish_closed_ ABSL_GUARDED_BY(finish_mu_) = false;
  absl::Mutex error_mu_;
  absl::Status first_error_ ABSL_GUARDED_BY(error_mu_);
};

}  // namespace mxport::worker

#endif  // MXPORT_WORKER_CORE_PLAN_EXECUTOR_H_
