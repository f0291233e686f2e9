// Schedule: every message of a distributed export, in steps every worker agrees on.
//
// A message is one chunk of one plan piece (at most chunk_bytes of whole rows), going from the
// piece's reader to the writer of the piece's file. Every worker builds the same schedule from
// (plan, roles, skipped files, sizes) alone, so both ends of every message know its size and
// its step without talking. Steps exist for NCCL, whose point-to-point calls must be posted by
// both ends in matching groups: in step s each worker posts all its sends and receives of step
// s together. Steps are assigned greedily in plan order: a message goes to the earliest step at
// or after its sender's and its receiver's current steps in which neither has used
// `step_bytes` yet (a message alone may exceed it). Per-rank steps never go back, so the
// messages of every (sender, receiver) pair keep plan order, and a worker waits in step s only
// on peers that reach step s after finishing earlier steps, which cannot deadlock. Messages
// whose reader is also the writer stay local (no transport) and are listed in the reader's
// current send step, so they interleave with its transfers — unless self_transfer is set, which
// sends them through the transport like any other (to exercise NCCL on a single GPU).
#ifndef MXPORT_WORKER_CORE_SCHEDULE_H_
#define MXPORT_WORKER_CORE_SCHEDULE_H_

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "common/export/plan.h"

namespace mxport::worker {

// Who reads each source and writes each output file. Sources go to workers by AssignShards
// (DP replicas share one). Each file's single writer is chosen to keep its bytes local: the
// worker reading the most of them, among those whose write share stays within 1.25x of an even
// split; a piece is then read by its file's writer when that worker reads its source (the piece
// never crosses the transport), else by the source's readers in turn.
struct Roles {
  std::vector<std::vector<int>> source_readers;  // per source: the ranks reading it
  std::vector<int> file_writer;                  // per output file
  std::vector<int> piece_reader;                 // per piece of plan.pieces
};
Roles ComputeRoles(const exporter::ExportPlan& plan, int world_size);

struct Message {
  exporter::Piece chunk;  // the piece narrowed to this message's rows
  int from = 0, to = 0;   // reader and writer ranks (equal: a local message)
  uint64_t bytes = 0;
  int64_t step = 0;
};

struct Schedule {
  std::vector<Message> messages;  // in plan order
  int64_t steps = 0;
};

struct ScheduleOptions {
  uint64_t chunk_bytes = uint64_t{64} << 20;
  uint64_t step_bytes = uint64_t{256} << 20;
  std::set<std::string> skip_files;  // committed by an earlier generation
  bool self_transfer = false;
};

Schedule BuildSchedule(const exporter::ExportPlan& plan, const Roles& roles, int world_size,
                       const ScheduleOptions& options);

// Splits `piece` into chunks of whole rows of at most chunk_bytes (one row at least).
std::vector<exporter::Piece> ChunkPiece(const exporter::ExportPlan& plan,
                                        const exporter::Piece& piece, uint64_t chunk_bytes);

}  // namespace mxport::worker

#endif  // MXPORT_WORKER_CORE_SCHEDULE_H_
