// PlanExecutor: one worker's part of a distributed export, over a Transport.
//
// Every worker holds the same ExportPlan. Roles follow from (plan, world size) alone:
// - readers: source file s is read by the workers that own it (AssignShards: with more workers
//   than source files, the replicas split the file's pieces round-robin);
// - writers: output file f is written by worker f % world.
// A reader reads each of its pieces with pread (in plan order, split into chunks of at most
// chunk_bytes rows) and sends them to the piece's writer; a writer runs one receive thread per
// sending peer (so no peer can block another), scatters every chunk to its final offset of the
// preallocated, staged safetensors file, then syncs it, hashes it and hands it to `publish`.
// Memory stays bounded by the chunks in flight (about chunk_bytes per peer thread), never by
// the model. Files named in skip_files (committed by an earlier generation) are neither read
// nor written. Errors abort the transport, so every peer stops promptly; the first error is
// returned. Not thread-safe: Run() once.
#ifndef MXPORT_WORKER_CORE_PLAN_EXECUTOR_H_
#define MXPORT_WORKER_CORE_PLAN_EXECUTOR_H_

#include <atomic>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/export/plan.h"
#include "common/fs/file_system.h"
#include "worker/transport/transport.h"

namespace mxport::worker {

struct StagedFile {
  std::string name;         // "model-00001-of-00004.safetensors"
  std::string staged_path;  // where it lies, synced
  uint64_t size = 0;
  std::string sha256;
};

// Who reads each source and writes each output file.
struct Roles {
  std::vector<std::vector<int>> source_readers;  // per source: the ranks reading it
  std::vector<int> file_writer;                  // per output file
  std::vector<int> piece_reader;                 // per piece of plan.pieces
};
Roles ComputeRoles(const exporter::ExportPlan& plan, int world_size);

class PlanExecutor {
 public:
  struct Options {
    fs::FileSystem* fs = nullptr;
    transport::Transport* transport = nullptr;
    const exporter::ExportPlan* plan = nullptr;
    std::string staging_dir;  // created if missing; staged files go here
    uint64_t chunk_bytes = uint64_t{64} << 20;
    // Paces reading to at most this rate (shared storage, or to watch a job); 0: unlimited.
    uint64_t max_bytes_per_second = 0;
    std::set<std::string> skip_files;
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
  absl::Status RunSteps();
  absl::Status ReadAndSend();
  absl::Status ReceiveFrom(int peer);
  absl::Status FinishFiles();
  absl::Status Fail(absl::Status status);
  // Calls `fn(chunk)` for each chunk of `piece`, in order.
  absl::Status ForEachChunk(const exporter::Piece& piece,
                            const std::function<absl::Status(const exporter::Piece&)>& fn) const;
  absl::Status Write(const exporter::Piece& chunk, absl::string_view rows);

  Options options_;
  Roles roles_;
  int rank_;
  std::atomic<uint64_t> bytes_sent_{0};
  std::atomic<uint64_t> bytes_written_{0};
  uint64_t bytes_total_ = 0;
  struct OpenFile;
  std::vector<std::unique_ptr<OpenFile>> files_;  // per output file; null unless mine
  absl::Mutex error_mu_;
  absl::Status first_error_ ABSL_GUARDED_BY(error_mu_);
};

}  // namespace mxport::worker

#endif  // MXPORT_WORKER_CORE_PLAN_EXECUTOR_H_
