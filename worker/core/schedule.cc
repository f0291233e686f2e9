#include "worker/core/schedule.h"

#include <algorithm>

#include "common/export/assignment.h"

namespace mxport::worker {

using exporter::ExportPlan;
using exporter::HfTensor;
using exporter::Piece;

namespace {

uint64_t PieceBytes(const ExportPlan& plan, const Piece& p) {
  return static_cast<uint64_t>(p.rows) * p.src_cols *
         ElementBytes(plan.tensors[p.tensor].piece_dtype());
}

// Writers, largest file first: the worker that reads the most of the file's bytes among those
// whose write share stays within a quarter above an even split (else the least loaded one);
// ties go to the lighter load, then the lower rank. Deterministic in (plan, world_size).
std::vector<int> AssignWriters(const ExportPlan& plan, const Roles& roles, int world_size) {
  const size_t files = plan.files.size();
  // local[f][w]: bytes of file f in sources worker w reads.
  std::vector<std::vector<uint64_t>> local(files, std::vector<uint64_t>(world_size, 0));
  std::vector<uint64_t> file_bytes(files, 0);
  uint64_t total = 0;
  for (const Piece& p : plan.pieces) {
    const int f = plan.tensors[p.tensor].file;
    const uint64_t bytes = PieceBytes(plan, p);
    file_bytes[f] += bytes;
    total += bytes;
    for (int w : roles.source_readers[p.source]) local[f][w] += bytes;
  }
  std::vector<size_t> order(files);
  for (size_t f = 0; f < files; ++f) order[f] = f;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return file_bytes[a] > file_bytes[b]; });
  const uint64_t even = total / std::max(1, world_size);
  const uint64_t cap = even + even / 4;
  std::vector<uint64_t> load(world_size, 0);
  std::vector<int> writer(files, 0);
  for (size_t f : order) {
    int best = -1;
    for (int w = 0; w < world_size; ++w) {
      if (load[w] > 0 && load[w] + file_bytes[f] > cap) continue;
      if (best < 0 || local[f][w] > local[f][best] ||
          (local[f][w] == local[f][best] && load[w] < load[best])) {
        best = w;
      }
    }
    if (best < 0) {
      best = static_cast<int>(std::min_element(load.begin(), load.end()) - load.begin());
    }
    writer[f] = best;
    load[best] += file_bytes[f];
  }
  return writer;
}

}  // namespace

Roles ComputeRoles(const ExportPlan& plan, int world_size) {
  Roles roles;
  const int64_t sources = static_cast<int64_t>(plan.sources.size());
  roles.source_readers.resize(sources);
  for (int w = 0; w < world_size; ++w) {
    for (const auto& a : exporter::AssignShards(w, world_size, sources)) {
      roles.source_readers[a.shard].push_back(w);
    }
  }
  roles.file_writer = AssignWriters(plan, roles, world_size);
  // A piece is read by its file's writer when that worker reads the source (no transfer),
  // otherwise by the source's readers in turn.
  std::vector<int64_t> seen(sources, 0);
  for (const Piece& p : plan.pieces) {
    const auto& readers = roles.source_readers[p.source];
    const int writer = roles.file_writer[plan.tensors[p.tensor].file];
    if (std::find(readers.begin(), readers.end(), writer) != readers.end()) {
      roles.piece_reader.push_back(writer);
    } else {
      roles.piece_reader.push_back(readers[seen[p.source]++ % readers.size()]);
    }
  }
  return roles;
}

std::vector<Piece> ChunkPiece(const ExportPlan& plan, const Piece& piece, uint64_t chunk_bytes) {
  const HfTensor& t = plan.tensors[piece.tensor];
  const uint64_t row_bytes =
      static_cast<uint64_t>(piece.src_cols) * ElementBytes(t.piece_dtype());
  const int64_t rows_per_chunk = std::max<int64_t>(
      1, static_cast<int64_t>(chunk_bytes / std::max<uint64_t>(1, row_bytes)));
  std::vector<Piece> chunks;
  for (int64_t r = 0; r < piece.rows; r += rows_per_chunk) {
    Piece chunk = piece;
    chunk.src_row += r;
    chunk.dst_row += r;
    chunk.rows = std::min(rows_per_chunk, piece.rows - r);
    chunks.push_back(chunk);
  }
  return chunks;
}

namespace {

// One direction (sending or receiving) of one rank: its current step and the bytes used in it.
struct Cursor {
  int64_t step = 0;
  uint64_t used = 0;
  bool Fits(int64_t s, uint64_t bytes, uint64_t budget) const {
    return s > step || used == 0 || used + bytes <= budget;
  }
  void Take(int64_t s, uint64_t bytes) {
    if (s > step) {
      step = s;
      used = 0;
    }
    used += bytes;
  }
};

}  // namespace

Schedule BuildSchedule(const ExportPlan& plan, const Roles& roles, int world_size,
                       const ScheduleOptions& options) {
  Schedule schedule;
  std::vector<Cursor> send(world_size), recv(world_size);
  for (size_t i = 0; i < plan.pieces.size(); ++i) {
    const Piece& piece = plan.pieces[i];
    const HfTensor& t = plan.tensors[piece.tensor];
    if (options.skip_files.contains(plan.files[t.file].name)) continue;
    const int from = roles.piece_reader[i];
    const int to = roles.file_writer[t.file];
    for (const Piece& chunk : ChunkPiece(plan, piece, options.chunk_bytes)) {
      Message m;
      m.chunk = chunk;
      m.from = from;
      m.to = to;
      m.bytes =
          static_cast<uint64_t>(chunk.rows) * chunk.src_cols * ElementBytes(t.piece_dtype());
      if (from == to && !options.self_transfer) {
        m.step = send[from].step;  // local: no budget, no partner
      } else {
        int64_t s = std::max(send[from].step, recv[to].step);
        while (!send[from].Fits(s, m.bytes, options.step_bytes) ||
               !recv[to].Fits(s, m.bytes, options.step_bytes)) {
          ++s;
        }
        send[from].Take(s, m.bytes);
        recv[to].Take(s, m.bytes);
        m.step = s;
      }
      schedule.steps = std::max(schedule.steps, m.step + 1);
      schedule.messages.push_back(std::move(m));
    }
  }
  return schedule;
}

}  // namespace mxport::worker
