// TorchFile behaviour beyond the fixture comparisons of torch_file_fixture_test.cc: nested
// archives held in BytesIO values, contiguous file ranges, container-level rejections (byte
// order, missing data.pkl, records outside a folder), limits and strict globals.
// Variants come from tests/fixtures/make_zip_variants.py.
#include "common/torch/torch_file.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/fs/file_system.h"
#include "common/testing/status_matchers.h"
#include "common/torch/pickle_value.h"
#include "common/torch/zip_reader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mxport::torch {
namespace {

using ::mxport::testing::IsOk;
using ::mxport::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using pickle::Kind;

std::string FixturePath(const std::string& relative) {
  return absl::StrCat(MXPORT_SOURCE_DIR, "/tests/fixtures/", relative);
}

absl::StatusOr<std::unique_ptr<TorchFile>> OpenFixture(const std::string& relative,
                                                       const TorchFileOptions& options = {}) {
  return TorchFile::Open(*fs::PosixFileSystem(), FixturePath(relative), options);
}

std::string ReadFixture(const std::string& relative) {
  absl::StatusOr<std::string> bytes =
      fs::ReadFileToString(*fs::PosixFileSystem(), FixturePath(relative));
  EXPECT_THAT(bytes, IsOk());
  return bytes.ok() ? *bytes : std::string();
}

// The bytes a BytesIO object holds: NEWOBJ () then BUILD (bytes, pos, dict-or-None).
struct BytesIOValue {
  std::string path;
  const pickle::Value* bytes;
};

std::vector<BytesIOValue> FindBytesIO(const pickle::Value& root) {
  std::vector<BytesIOValue> found;
  absl::Status s = pickle::WalkValues(root, 1000, [&](const std::string& path,
                                                      const pickle::Value& v) {
    if (v.kind == Kind::kObject &&
        (v.QualifiedName() == "_io.BytesIO" || v.QualifiedName() == "io.BytesIO")) {
      EXPECT_NE(v.state, nullptr) << path;
      if (v.state != nullptr && v.state->kind == Kind::kTuple && !v.state->items.empty() &&
          v.state->items[0]->kind == Kind::kBytes) {
        found.push_back({path, v.state->items[0]});
      } else {
        ADD_FAILURE() << path << ": unexpected BytesIO state";
      }
    }
    return true;
  });
  EXPECT_OK(s);
  return found;
}

// Opens every non-empty BytesIO archive under `file`, recursively; returns the deepest level
// reached (1 = the file's own BytesIO values) and counts archives and tensors read.
int OpenNested(const TorchFile& file, int level, int* archives, int* tensors) {
  int deepest = level - 1;
  for (const BytesIOValue& nested : FindBytesIO(file.root())) {
    SCOPED_TRACE(absl::StrCat(file.name(), " / ", nested.path));
    const std::string& bytes = nested.bytes->str;
    if (bytes.empty() || bytes.compare(0, 4, "PK\x03\x04") != 0) continue;
    const std::string name = absl::StrCat(file.name(), ":", nested.path);
    absl::StatusOr<std::unique_ptr<TorchFile>> inner = TorchFile::OpenFrom(
        NewMemoryRandomAccessFile(name, bytes), name, 0, bytes.size());
    EXPECT_THAT(inner, IsOk());
    if (!inner.ok()) continue;
    ++*archives;
    EXPECT_EQ((*inner)->name(), name);
    EXPECT_EQ((*inner)->archive_prefix(), "archive");  // torch.save to a buffer
    for (const TensorEntry& t : (*inner)->tensors()) {
      absl::StatusOr<std::string> data = (*inner)->ReadTensor(*t.tensor);
      EXPECT_THAT(data, IsOk()) << t.path;
      ++*tensors;
    }
    deepest = std::max(deepest, OpenNested(**inner, level + 1, archives, tensors));
  }
  return deepest;
}

TEST(TorchFileTest, NestedBytesIOArchivesInMegatronExtraState) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TorchFile> file, OpenFixture("torch211/model_optim_rng.pt"));
  const std::vector<BytesIOValue> bytes_io = FindBytesIO(file->root());
  ASSERT_FALSE(bytes_io.empty());
  bool found_extra_state = false;
  for (const BytesIOValue& b : bytes_io) {
    if (b.path.find("_extra_state") != std::string::npos) found_extra_state = true;
  }
  EXPECT_TRUE(found_extra_state);
  int archives = 0, tensors = 0;
  EXPECT_GE(OpenNested(*file, 1, &archives, &tensors), 1);
  EXPECT_GE(archives, 1);
}

TEST(TorchFileTest, NestedArchivesTwoDeep) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TorchFile> file, OpenFixture("torch211/nested_archive.pt"));
  int archives = 0, tensors = 0;
  EXPECT_EQ(OpenNested(*file, 1, &archives, &tensors), 2);
  EXPECT_GE(archives, 3);  // two at the top level (one rewound), one inside
  EXPECT_GE(tensors, 2);
}

TEST(TorchFileTest, NestedArchiveFromABytesIOReadsTheSameAsAStandaloneWindow) {
  // The BytesIO bytes placed inside a bigger buffer and opened through a window.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TorchFile> file, OpenFixture("torch211/nested_archive.pt"));
  const std::vector<BytesIOValue> bytes_io = FindBytesIO(file->root());
  ASSERT_FALSE(bytes_io.empty());
  const std::string& inner = bytes_io[0].bytes->str;
  const std::string buffer = std::string(333, 'P') + inner + std::string(77, 'K');
  auto mem = NewMemoryRandomAccessFile("buffer", buffer);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TorchFile> windowed,
                       TorchFile::OpenFrom(mem, "buffer", 333, inner.size()));
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<TorchFile> alone,
      TorchFile::OpenFrom(NewMemoryRandomAccessFile("alone", inner), "alone", 0, inner.size()));
  ASSERT_EQ(windowed->tensors().size(), alone->tensors().size());
  ASSERT_FALSE(alone->tensors().empty());
  for (size_t i = 0; i < alone->tensors().size(); ++i) {
    EXPECT_EQ(windowed->tensors()[i].path, alone->tensors()[i].path);
    EXPECT_EQ(windowed->ReadTensor(*windowed->tensors()[i].tensor).value(),
              alone->ReadTensor(*alone->tensors()[i].tensor).value());
  }
}

TEST(TorchFileTest, ContiguousRangeIsTheBytesReadTensorReturns) {
  for (const char* fixture : {"torch211/views.pt", "torch211/dtypes.pt", "torch211/conj.pt",
                              "torch211/state_dict.pt", "torch211/model_optim_rng.pt"}) {
    SCOPED_TRACE(fixture);
    const std::string bytes = ReadFixture(fixture);
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<TorchFile> file, OpenFixture(fixture));
    int contiguous = 0, strided = 0;
    for (const TensorEntry& t : file->tensors()) {
      SCOPED_TRACE(t.path);
      ASSERT_OK_AND_ASSIGN(std::string data, file->ReadTensor(*t.tensor));
      absl::StatusOr<FileRange> range = file->ContiguousRange(*t.tensor);
      if (IsRowMajorContiguous(t.tensor->shape, t.tensor->stride)) {
        if (!range.ok()) {
          // Refusing a range (e.g. for a tensor with a lazy conj/neg bit) is fine.
          EXPECT_THAT(range, StatusIs(absl::StatusCode::kFailedPrecondition));
          ++strided;
          continue;
        }
        EXPECT_EQ(range->length, data.size());
        ASSERT_LE(range->offset + range->length, bytes.size());
        // A range is only useful if its bytes are the tensor's values. conj.pt's "conj"
        // shares its storage with "plain" and carries the conj bit, which ReadTensor applies.
        EXPECT_EQ(bytes.substr(range->offset, range->length), data)
            << "conj=" << t.tensor->conj << " neg=" << t.tensor->neg;
        // And through the file handle the TorchFile reads from.
        std::string direct(range->length, '\0');
        ASSERT_OK(file->file()->ReadAt(range->offset, direct.size(), direct.data()));
        EXPECT_EQ(direct, bytes.substr(range->offset, range->length));
        ++contiguous;
      } else {
        EXPECT_THAT(range, StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr(fixture)));
        ++strided;
      }
    }
    EXPECT_GT(contiguous, 0);
    if (std::string(fixture) == "torch211/views.pt") {
      EXPECT_GE(strided, 4);
    }
  }
}

TEST(TorchFileTest, TransposedViewHasNoContiguousRange) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TorchFile> file, OpenFixture("torch211/views.pt"));
  const pickle::TensorRef* transpose = nullptr;
  const pickle::TensorRef* base = nullptr;
  for (const TensorEntry& t : file->tensors()) {
    if (t.path == "transpose") transpose = t.tensor;
    if (t.path == "base") base = t.tensor;
  }
  ASSERT_NE(transpose, nullptr);
  ASSERT_NE(base, nullptr);
  ASSERT_EQ(transpose->shape, (std::vector<int64_t>{8, 6}));
  ASSERT_EQ(transpose->stride, (std::vector<int64_t>{1, 8}));
  EXPECT_THAT(file->ContiguousRange(*transpose),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("views.pt")));
  // The gathered transpose is base's f32 elements in column order.
  ASSERT_EQ(base->storage, transpose->storage);
  ASSERT_EQ(base->dtype, DType::kFloat32);
  ASSERT_OK_AND_ASSIGN(std::string t_bytes, file->ReadTensor(*transpose));
  ASSERT_OK_AND_ASSIGN(std::string b_bytes, file->ReadTensor(*base));
  ASSERT_EQ(t_bytes.size(), 48u * 4);
  for (int i = 0; i < 8; ++i) {
    for (int j = 0; j < 6; ++j) {
      EXPECT_EQ(t_bytes.substr((i * 6 + j) * 4, 4), b_bytes.substr((j * 8 + i) * 4, 4))
          << i << "," << j;
    }
  }
  // ReadTensorInto wants exactly the tensor's byte count.
  std::string small(t_bytes.size() - 1, '\0');
  EXPECT_THAT(file->ReadTensorInto(*transpose, small.data(), small.size()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("views.pt")));
}

TEST(TorchFileTest, BigEndianByteOrderIsUnimplemented) {
  EXPECT_THAT(OpenFixture("zip_variants/big_endian.pt"),
              StatusIs(absl::StatusCode::kUnimplemented,
                       AllOf(HasSubstr("big_endian.pt"), HasSubstr("'big'"))));
}

TEST(TorchFileTest, MissingDataPklIsInvalid) {
  EXPECT_THAT(OpenFixture("zip_variants/no_data_pkl.pt"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("no_data_pkl.pt"), HasSubstr("state_dict/data.pkl"))));
}

TEST(TorchFileTest, FirstRecordOutsideAFolderIsInvalid) {
  EXPECT_THAT(OpenFixture("zip_variants/no_folder.pt"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("no_folder.pt"),
                             HasSubstr("is not inside an archive folder"))));
}

TEST(TorchFileTest, ZipfileWrittenArchiveOpens) {
  // Python's zipfile layout (no alignment, no zip64, no descriptors) with torch's records.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TorchFile> got,
                       OpenFixture("zip_variants/zipfile_state_dict.pt"));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TorchFile> want, OpenFixture("torch211/state_dict.pt"));
  EXPECT_EQ(got->archive_prefix(), "state_dict");
  EXPECT_EQ(got->format_version(), "3");
  ASSERT_EQ(got->tensors().size(), want->tensors().size());
  for (size_t i = 0; i < got->tensors().size(); ++i) {
    EXPECT_EQ(got->tensors()[i].path, want->tensors()[i].path);
    EXPECT_EQ(got->ReadTensor(*got->tensors()[i].tensor).value(),
              want->ReadTensor(*want->tensors()[i].tensor).value());
    // Stored but unaligned: still a contiguous file range.
    EXPECT_THAT(got->ContiguousRange(*got->tensors()[i].tensor), IsOk());
  }
}

TEST(TorchFileTest, PickleOverMaxPickleBytesIsResourceExhausted) {
  TorchFileOptions options;
  options.max_pickle_bytes = 100;
  EXPECT_THAT(OpenFixture("torch211/dtypes.pt", options),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       AllOf(HasSubstr("dtypes.pt"), HasSubstr("data.pkl"),
                             HasSubstr("limit of 100"))));
  // The limit is inclusive of the pickle's exact size.
  const std::string bytes = ReadFixture("torch211/dtypes.pt");
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<ZipReader> zip,
      ZipReader::Open(NewMemoryRandomAccessFile("dtypes.pt", bytes), "dtypes.pt"));
  options.max_pickle_bytes = zip->Find("dtypes/data.pkl")->uncompressed_size;
  EXPECT_THAT(OpenFixture("torch211/dtypes.pt", options), IsOk());
  options.max_pickle_bytes -= 1;
  EXPECT_THAT(OpenFixture("torch211/dtypes.pt", options),
              StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST(TorchFileTest, StrictGlobalsRejectTheMegatronEnumButAcceptPlainTensors) {
  TorchFileOptions strict;
  strict.unpickler.strict_globals = true;
  EXPECT_THAT(OpenFixture("torch211/model_optim_rng.pt", strict),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       AllOf(HasSubstr("model_optim_rng.pt"),
                             HasSubstr("megatron.core.transformer.enums.AttnBackend"),
                             HasSubstr("allow-list"))));
  EXPECT_THAT(OpenFixture("torch211/model_optim_rng.pt"), IsOk());  // lenient by default
  for (const char* fixture : {"torch211/dtypes.pt", "torch211/state_dict.pt"}) {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<TorchFile> file, OpenFixture(fixture, strict));
    EXPECT_FALSE(file->tensors().empty()) << fixture;
  }
}

TEST(TorchFileTest, UnpicklerLimitsApply) {
  TorchFileOptions options;
  options.unpickler.max_values = 50;
  absl::StatusOr<std::unique_ptr<TorchFile>> file =
      OpenFixture("torch211/model_optim_rng.pt", options);
  ASSERT_FALSE(file.ok());
  EXPECT_THAT(file.status().message(), HasSubstr("model_optim_rng.pt"));
  options = {};
  options.max_walk_depth = 1;  // the views fixture nests tensors deeper than that
  file = OpenFixture("torch211/views.pt", options);
  EXPECT_THAT(file, StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(TorchFileTest, TorchFileZipLimitsApply) {
  TorchFileOptions options;
  options.zip.max_entries = 3;
  EXPECT_THAT(OpenFixture("torch211/dtypes.pt", options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("too many entries")));
  options = {};
  options.zip.max_read_bytes = 100;  // data.pkl is larger: ReadEntry refuses it
  EXPECT_THAT(OpenFixture("torch211/dtypes.pt", options),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("dtypes.pt")));
}

// data.pkl is 154 bytes: x = 1, then 21 times x = (x, x) through the memo. That is 22 values
// but 2^22 - 1 paths from the root; walking paths (WalkValues) instead of values costs 4M visits
// here and 2^N for N levels, so a few hundred bytes can stall Open forever (and, with a tensor
// at the bottom, fill tensors() with 2^N entries). Open must refuse it quickly.
TEST(TorchFileTest, SharedReferenceDagDoesNotExplode) {
  absl::StatusOr<std::unique_ptr<TorchFile>> file = OpenFixture("zip_variants/shared_dag.pt");
  EXPECT_THAT(file, ::testing::AnyOf(StatusIs(absl::StatusCode::kResourceExhausted,
                                              HasSubstr("shared_dag.pt")),
                                     StatusIs(absl::StatusCode::kInvalidArgument,
                                              HasSubstr("shared_dag.pt"))));
}

// Every single-byte change anywhere in a real file: Open and ReadTensor fail with a status
// naming the file, or succeed; nothing crashes (run under ASan/UBSan in sanitizer builds).
TEST(TorchFileTest, EveryByteFlippedFailsCleanlyOrReads) {
  const std::string original = ReadFixture("torch211/state_dict.pt");
  int opened = 0, failed = 0;
  for (size_t pos = 0; pos < original.size(); ++pos) {
    for (uint8_t mask : {0x01, 0x10, 0xFF}) {
      std::string bytes = original;
      bytes[pos] = static_cast<char>(bytes[pos] ^ mask);
      absl::StatusOr<std::unique_ptr<TorchFile>> file = TorchFile::OpenFrom(
          NewMemoryRandomAccessFile("flipped.pt", bytes), "flipped.pt", 0, bytes.size());
      if (!file.ok()) {
        ++failed;
        EXPECT_THAT(file.status().message(), HasSubstr("flipped.pt"))
            << "byte " << pos << " ^ " << int{mask} << ": " << file.status();
        EXPECT_NE(file.status().code(), absl::StatusCode::kInternal);
        EXPECT_NE(file.status().code(), absl::StatusCode::kUnknown);
        continue;
      }
      ++opened;
      for (const TensorEntry& t : (*file)->tensors()) {
        absl::StatusOr<std::string> data = (*file)->ReadTensor(*t.tensor);
        if (!data.ok()) {
          EXPECT_THAT(data.status().message(), HasSubstr("flipped.pt")) << data.status();
        }
      }
    }
  }
  EXPECT_GT(failed, 1000);
  EXPECT_GT(opened, 1000);  // payload bytes, padding, timestamps, serialization id
}

// An empty tensor at storage_offset 2^40 of an empty storage (torch.load accepts it): there is
// nothing to read, and any range reported for it must still lie inside the file.
TEST(TorchFileTest, EmptyTensorFarOffsetStaysInsideTheFile) {
  const std::string bytes = ReadFixture("zip_variants/empty_far_offset.pt");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TorchFile> file,
                       OpenFixture("zip_variants/empty_far_offset.pt"));
  ASSERT_EQ(file->tensors().size(), 1u);
  const pickle::TensorRef& t = *file->tensors()[0].tensor;
  EXPECT_EQ(t.storage_offset, int64_t{1} << 40);
  EXPECT_THAT(file->ReadTensor(t), ::mxport::testing::IsOkAndHolds(""));
  absl::StatusOr<FileRange> range = file->ContiguousRange(t);
  if (range.ok()) {
    EXPECT_EQ(range->length, 0u);
    EXPECT_LE(range->offset, bytes.size()) << "range of an empty tensor points outside the file";
  } else {
    EXPECT_THAT(range, StatusIs(absl::StatusCode::kFailedPrecondition));
  }
}

// torch.load refuses a negative storage offset ("invalid storage offset -16"), even for an
// empty tensor; so must Open.
TEST(TorchFileTest, NegativeStorageOffsetIsRejected) {
  EXPECT_THAT(OpenFixture("zip_variants/empty_negative_offset.pt"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty_negative_offset.pt")));
}

TEST(TorchFileTest, NotAZipArchive) {
  for (const std::string& bytes :
       {std::string("hello, world"), std::string(""), std::string("PK"),
        std::string("PK\x03\x04", 4) + std::string(100, '\0')}) {
    SCOPED_TRACE(bytes.size());
    EXPECT_THAT(TorchFile::OpenFrom(NewMemoryRandomAccessFile("x.pt", bytes), "x.pt", 0,
                                    bytes.size()),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("x.pt")));
  }
}

}  // namespace
}  // namespace mxport::torch
