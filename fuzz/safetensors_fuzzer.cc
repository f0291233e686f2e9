// libFuzzer target for common/safetensors: the input is a whole safetensors file.
//
// Parses it from memory (Header::Parse) and through a Reader on an in-memory file; the two
// must agree. When the header validates, reads every tensor (whole and a sub-range) and checks
// the bytes against the input; then re-lays-out the parsed entries in offset order and checks
// that this canonical encoding parses back to the same entries and metadata. Any disagreement
// aborts. Seed corpus: fuzz/corpus/safetensors (see common/safetensors/make_fuzz_corpus.cc).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "common/fs/file_system.h"
#include "common/safetensors/header.h"
#include "common/safetensors/reader.h"

namespace {

using ::mxport::safetensors::Header;
using ::mxport::safetensors::LayoutOrder;
using ::mxport::safetensors::Reader;
using ::mxport::safetensors::TensorEntry;
using ::mxport::safetensors::TensorSpec;

// A read-only file over a string.
class StringFile : public mxport::fs::RandomAccessFile {
 public:
  explicit StringFile(std::string bytes) : bytes_(std::move(bytes)) {}
  absl::Status ReadAt(uint64_t offset, size_t n, char* dst) const override {
    if (offset > bytes_.size() || n > bytes_.size() - offset) {
      return absl::DataLossError("read past the end of fuzz.safetensors");
    }
    if (n > 0) std::memcpy(dst, bytes_.data() + offset, n);
    return absl::OkStatus();
  }
  uint64_t size() const override { return bytes_.size(); }
  const std::string& path() const override { return path_; }

 private:
  std::string bytes_;
  std::string path_ = "fuzz.safetensors";
};

void Check(bool condition) {
  if (!condition) std::abort();
}

void CheckCanonicalRoundTrip(const Header& header, const std::string& file) {
  std::vector<TensorSpec> specs;
  for (const TensorEntry& e : header.entries()) specs.push_back({e.name, e.dtype, e.shape});
  auto canonical = Header::Layout(std::move(specs), header.metadata(), LayoutOrder::kAsGiven);
  if (!canonical.ok()) return;  // e.g. an empty tensor name, which Layout refuses to write
  Check(canonical->entries() == header.entries());
  const std::string rewritten = canonical->encoded() + file.substr(header.data_start());
  auto reparsed = Header::Parse(rewritten, rewritten.size(), "canonical");
  Check(reparsed.ok());
  Check(reparsed->entries() == header.entries());
  Check(reparsed->metadata() == header.metadata());
  Check(reparsed->encoded() == canonical->encoded());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string file(reinterpret_cast<const char*>(data), size);
  auto header = Header::Parse(file, file.size(), "fuzz.safetensors");
  auto reader = Reader::FromFile(std::make_unique<StringFile>(file));
  Check(header.ok() == reader.ok());
  if (!header.ok()) {
    const absl::StatusCode code = header.status().code();
    Check(code == absl::StatusCode::kInvalidArgument || code == absl::StatusCode::kDataLoss);
    Check(reader.status() == header.status());
    return 0;
  }
  Check(header->file_size() == file.size());
  Check(header->header_length() <= mxport::safetensors::kMaxHeaderLength);
  Check((*reader)->entries() == header->entries());
  for (const TensorEntry& e : header->entries()) {
    auto bytes = (*reader)->ReadTensor(e.name);
    Check(bytes.ok());
    Check(*bytes == file.substr(header->data_start() + e.begin, e.num_bytes()));
    if (e.num_bytes() >= 2) {
      char two[2];
      Check((*reader)->ReadRange(e.name, e.num_bytes() - 2, 2, two).ok());
      Check(std::memcmp(two, bytes->data() + e.num_bytes() - 2, 2) == 0);
    }
    Check((*reader)->ReadRange(e.name, e.num_bytes(), 1, nullptr).code() ==
          absl::StatusCode::kOutOfRange);
  }
  CheckCanonicalRoundTrip(*header, file);
  return 0;
}
