// libFuzzer target for common/torch: the input is a whole torch.save file, or a bare pickle.
//
// Opens it from memory with TorchFile::OpenFrom and, when that succeeds, reads every tensor
// (ReadTensor; tensors over 16 MiB are skipped) and walks every value with pickle::WalkValues
// and ShortRepr. Independently runs pickle::Unpickle on the raw bytes, lenient and with
// strict_globals, and walks what it returns. Errors are expected; crashes, sanitizer reports,
// leaks, timeouts and running out of memory are the findings. Limits keep memory bounded:
// 1 MiB of pickle, 1e6 values, 16 MiB per zip read.
// Seed corpus: fuzz/corpus/torch_file (small real torch.save files from tests/fixtures/torch211,
// hostile fixtures, zip variants from tests/fixtures/zip_variants, bare data.pkl pickles).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/base/tensor.h"
#include "common/torch/pickle_value.h"
#include "common/torch/torch_file.h"
#include "common/torch/unpickler.h"
#include "common/torch/zip_reader.h"

namespace {

using ::mxport::pickle::Kind;
using ::mxport::pickle::UnpicklerOptions;
using ::mxport::pickle::Value;
using ::mxport::torch::TensorEntry;
using ::mxport::torch::TorchFile;
using ::mxport::torch::TorchFileOptions;

constexpr uint64_t kMaxTensorBytes = uint64_t{16} << 20;
constexpr int kMaxWalkDepth = 200;
// Values visited per walk. Shared references make the number of paths exponential in the
// number of values; past this budget the walk stops descending.
constexpr uint64_t kMaxVisits = uint64_t{1} << 18;

void Check(bool condition) {
  if (!condition) std::abort();
}

UnpicklerOptions SmallUnpicklerOptions(bool strict) {
  UnpicklerOptions options;
  options.max_memo_entries = 1 << 20;
  options.max_values = 1'000'000;
  options.max_stack = 1 << 16;
  options.max_depth = 256;
  options.strict_globals = strict;
  return options;
}

TorchFileOptions SmallTorchFileOptions(bool strict) {
  TorchFileOptions options;
  options.unpickler = SmallUnpicklerOptions(strict);
  options.zip.max_entries = 1 << 16;
  options.zip.max_read_bytes = uint64_t{16} << 20;
  options.max_pickle_bytes = uint64_t{1} << 20;
  options.max_walk_depth = kMaxWalkDepth;
  return options;
}

// Visits values (bounded), rendering each; checks the invariants of what a walk may report.
void WalkAll(const Value& root) {
  uint64_t visits = 0;
  absl::Status s = mxport::pickle::WalkValues(
      root, kMaxWalkDepth, [&](const std::string& path, const Value& v) {
        if (++visits > kMaxVisits) return false;
        const std::string repr = mxport::pickle::ShortRepr(v);
        Check(!repr.empty());
        if (v.kind == Kind::kTensor) {
          Check(v.tensor != nullptr);
          Check(v.tensor->shape.size() == v.tensor->stride.size());
        }
        if (v.kind == Kind::kStorage) Check(v.storage != nullptr);
        if (v.kind == Kind::kDict) Check(v.items.size() % 2 == 0);
        if (v.kind == Kind::kObject) Check(v.extra.size() % 2 == 0);
        return true;
      });
  (void)s;  // depth and cycle errors are expected
}

void FuzzTorchFile(const std::string& bytes, bool strict) {
  auto file = mxport::torch::NewMemoryRandomAccessFile("fuzz.pt", bytes);
  absl::StatusOr<std::unique_ptr<TorchFile>> torch =
      TorchFile::OpenFrom(file, "fuzz.pt", 0, bytes.size(), SmallTorchFileOptions(strict));
  if (!torch.ok()) {
    Check(torch.status().message().find("fuzz.pt") != absl::string_view::npos);
    return;
  }
  const TorchFile& t = **torch;
  for (const TensorEntry& entry : t.tensors()) {
    const mxport::pickle::TensorRef& tensor = *entry.tensor;
    absl::StatusOr<uint64_t> nbytes = TorchFile::Describe(tensor).NumBytes();
    Check(nbytes.ok());  // Open validated the shape
    if (*nbytes > kMaxTensorBytes) continue;
    absl::StatusOr<std::string> data = t.ReadTensor(tensor);
    if (!data.ok()) continue;  // e.g. a deflated record over max_read_bytes, corrupt deflate
    Check(data->size() == *nbytes);
    absl::StatusOr<mxport::torch::FileRange> range = t.ContiguousRange(tensor);
    if (range.ok()) {
      Check(range->length == *nbytes);
      Check(range->offset <= bytes.size() && range->length <= bytes.size() - range->offset);
    }
  }
  WalkAll(t.root());
}

void FuzzPickle(absl::string_view bytes, bool strict) {
  absl::StatusOr<mxport::pickle::Unpickled> unpickled =
      mxport::pickle::Unpickle(bytes, "fuzz.pkl", SmallUnpicklerOptions(strict));
  if (!unpickled.ok()) {
    Check(unpickled.status().message().find("fuzz.pkl") != absl::string_view::npos);
    return;
  }
  Check(unpickled->root != nullptr);
  for (const mxport::pickle::StorageRef* storage : unpickled->storages) Check(storage != nullptr);
  WalkAll(*unpickled->root);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  FuzzTorchFile(bytes, /*strict=*/false);
  FuzzPickle(bytes, /*strict=*/false);
  FuzzPickle(bytes, /*strict=*/true);
  return 0;
}
