#include "common/export/local_executor.h"

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/export/quantize_plan.h"
#include "common/megatron/source.h"
#include "common/safetensors/header.h"
#include "common/safetensors/writer.h"

namespace mxport::exporter {

absl::StatusOr<const torch::TorchFile*> SourceReader::File(int source) {
  if (files_.empty()) files_.resize(plan_.sources.size());
  if (files_[source] == nullptr) {
    ASSIGN_OR_RETURN(files_[source], torch::TorchFile::Open(fs_, plan_.sources[source].path));
  }
  return files_[source].get();
}

absl::StatusOr<SourceReader::Located> SourceReader::Locate(const Piece& piece) {
  ASSIGN_OR_RETURN(const torch::TorchFile* file, File(piece.source));
  const std::string chunk = megatron::ModelChunkKey(plan_.config.vpp, piece.vp);
  const pickle::Value* dict = file->root().Get(chunk);
  const pickle::Value* value = dict == nullptr ? nullptr : dict->Get(piece.key);
  if (value == nullptr || value->kind != pickle::Kind::kTensor) {
    return absl::NotFoundError(
        absl::StrCat(file->name(), ": no tensor '", chunk, "/", piece.key, "'"));
  }
  const uint64_t row_bytes =
      static_cast<uint64_t>(piece.src_cols) * ElementBytes(value->tensor->dtype);
  return Located{file, value->tensor, row_bytes, chunk};
}

absl::StatusOr<std::string> SourceReader::ReadRows(const Piece& piece) {
  ASSIGN_OR_RETURN(const Located at, Locate(piece));
  std::string out(piece.rows * at.row_bytes, '\0');
  RETURN_IF_ERROR(Read(piece, at, absl::MakeSpan(out)));
  return out;
}

absl::Status SourceReader::ReadRowsInto(const Piece& piece, absl::Span<char> out) {
  ASSIGN_OR_RETURN(const Located at, Locate(piece));
  if (out.size() != piece.rows * at.row_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        at.file->name(), ": tensor '", at.chunk, "/", piece.key, "' rows [", piece.src_row,
        ", +", piece.rows, ") hold ", piece.rows * at.row_bytes, " bytes, not ", out.size()));
  }
  return Read(piece, at, out);
}

absl::Status SourceReader::Read(const Piece& piece, const Located& at, absl::Span<char> out) {
  const uint64_t begin = piece.src_row * at.row_bytes;
  auto range = at.file->ContiguousRange(*at.tensor);
  if (range.ok()) return at.file->file()->ReadAt(range->offset + begin, out.size(), out.data());
  ASSIGN_OR_RETURN(std::string whole, at.file->ReadTensor(*at.tensor));
  std::memcpy(out.data(), whole.data() + begin, out.size());
  return absl::OkStatus();
}

absl::Status ScatterPiece(const Piece& piece, const HfTensor& tensor, absl::string_view rows,
                          const std::function<absl::Status(uint64_t, absl::string_view)>& write) {
  if (tensor.quant_part != QuantPart::kNone) {
    return absl::FailedPreconditionError(absl::StrCat(
        tensor.name, " is quantized: its pieces go through QuantizeChunk and ScatterQuantized"));
  }
  const uint64_t elem = ElementBytes(tensor.dtype);
  const uint64_t src_row_bytes = piece.src_cols * elem;
  const uint64_t dst_row_bytes = tensor.cols() * elem;
  const uint64_t run = piece.cols * elem;
  if (rows.size() != piece.rows * src_row_bytes) {
    return absl::InternalError(absl::StrCat("piece of ", tensor.name, " has ", rows.size(),
                                            " bytes, expected ", piece.rows * src_row_bytes));
  }
  if (piece.cols == piece.src_cols && piece.cols == tensor.cols()) {
    return write(piece.dst_row * dst_row_bytes, rows);  // whole rows: one contiguous run
  }
  for (int64_t r = 0; r < piece.rows; ++r) {
    RETURN_IF_ERROR(write((piece.dst_row + r) * dst_row_bytes + piece.dst_col * elem,
                          rows.substr(r * src_row_bytes + piece.src_col * elem, run)));
  }
  return absl::OkStatus();
}

namespace {

// The statistics pass: every piece of a quantized weight read once, in plan order.
absl::StatusOr<QuantStats> GatherStats(const ExportPlan& plan, SourceReader& reader) {
  QuantStats stats;
  for (const Piece& piece : plan.pieces) {
    if (plan.tensors[piece.tensor].quant_part != QuantPart::kWeight) continue;
    ASSIGN_OR_RETURN(std::string rows, reader.ReadRows(piece));
    RETURN_IF_ERROR(stats.Accumulate(plan, piece, rows));
  }
  RETURN_IF_ERROR(stats.Finish(plan, &reader));  // reads checkpoint amax when the plan has some
  return stats;
}

absl::Status WriteOne(fs::FileSystem& fs, const ExportPlan& plan, int file_index,
                      SourceReader& reader, const QuantStats& stats, const std::string& staged) {
  const OutputFile& file = plan.files[file_index];
  std::vector<safetensors::TensorSpec> specs;
  for (int ti : file.tensors) {
    const HfTensor& t = plan.tensors[ti];
    specs.push_back({t.name, t.dtype, t.shape});
  }
  ASSIGN_OR_RETURN(safetensors::Header header,
                   safetensors::Header::Layout(std::move(specs), {{"format", "pt"}},
                                               safetensors::LayoutOrder::kAsGiven));
  ASSIGN_OR_RETURN(auto writer, safetensors::Writer::Create(fs, staged, header));
  const TensorWriteFn write = [&](int tensor, uint64_t offset, absl::string_view bytes) {
    return writer->WritePiece(plan.tensors[tensor].name, offset, bytes);
  };
  for (const Piece& piece : plan.pieces) {
    const HfTensor& tensor = plan.tensors[piece.tensor];
    if (tensor.file != file_index) continue;
    ASSIGN_OR_RETURN(std::string rows, reader.ReadRows(piece));
    if (tensor.quant_part == QuantPart::kNone) {
      RETURN_IF_ERROR(ScatterQuantized(plan, piece, rows, write));
      continue;
    }
    ASSIGN_OR_RETURN(std::string bytes, QuantizeChunk(plan, stats, piece, rows));
    RETURN_IF_ERROR(ScatterQuantized(plan, piece, bytes, write));
  }
  for (int ti : file.tensors) {
    const QuantPart part = plan.tensors[ti].quant_part;
    if (part != QuantPart::kWeightScale2 && part != QuantPart::kScaleInv) continue;
    ASSIGN_OR_RETURN(std::string bytes, ScaleTensorBytes(plan, stats, ti));
    RETURN_IF_ERROR(write(ti, 0, bytes));
  }
  return writer->Finish();
}

}  // namespace

absl::Status ExecutePlanLocally(fs::FileSystem& fs, const ExportPlan& plan,
                                const std::string& output_dir,
                                const std::vector<Sidecar>& sidecars) {
  const std::string staging = fs::JoinPath(output_dir, ".staging");
  RETURN_IF_ERROR(fs.CreateDirs(staging));
  SourceReader reader(fs, plan);
  QuantStats stats;
  if (IsQuantized(plan)) {
    ASSIGN_OR_RETURN(stats, GatherStats(plan, reader));
  }
  std::vector<std::string> staged;
  absl::Status status;
  for (size_t f = 0; f < plan.files.size() && status.ok(); ++f) {
    staged.push_back(fs::JoinPath(staging, plan.files[f].name));
    status = WriteOne(fs, plan, static_cast<int>(f), reader, stats, staged.back());
  }
  if (!status.ok()) {
    for (const std::string& path : staged) fs.Delete(path).IgnoreError();
    fs.Delete(staging).IgnoreError();
    return status;
  }
  for (size_t f = 0; f < plan.files.size(); ++f) {
    RETURN_IF_ERROR(fs.Rename(staged[f], fs::JoinPath(output_dir, plan.files[f].name)));
  }
  RETURN_IF_ERROR(fs.SyncDir(output_dir));
  fs.Delete(staging).IgnoreError();
  for (const Sidecar& sidecar : sidecars) {
    RETURN_IF_ERROR(fs::WriteFileAtomically(fs, fs::JoinPath(output_dir, sidecar.name),
                                            sidecar.bytes));
  }
  return fs::WriteFileAtomically(fs, fs::JoinPath(output_dir, "model.safetensors.index.json"),
                                 plan.IndexJson().dump(2) + "\n");
}

}  // namespace mxport::exporter
