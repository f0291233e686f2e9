#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/fs/fault_injection_file_system.h"
#include "common/fs/file_system.h"
#include "common/fs/fs_testutil.h"
#include "common/fs/memory_file_system.h"
#include "common/safetensors/dtype_shape.h"
#include "common/safetensors/reader.h"
#include "common/safetensors/safetensors_testutil.h"
#include "common/safetensors/writer.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mxport::safetensors {
namespace {

using ::mxport::testing::IsOk;
using ::mxport::testing::IsOkAndHolds;
using ::mxport::testing::StatusIs;
using ::testing::AllOf;
using ::testing::Eq;
using ::testing::HasSubstr;

std::string Pattern(size_t n, int seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + seed * 7 + 1) & 0xFF);
  return s;
}

Header ExampleHeader() {
  return *Header::Layout(testutil::ExampleSpecs(), {{"format", "pt"}}, LayoutOrder::kPythonWriter);
}

class SafetensorsPosixTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(dir_.path().empty()); }
  std::string Path(const std::string& name) const { return fs::JoinPath(dir_.path(), name); }
  fs::FileSystem& posix_ = *fs::PosixFileSystem();
  fs::testutil::PosixTempDir dir_;
};

TEST_F(SafetensorsPosixTest, ExampleWrittenInPiecesOutOfOrderIsByteExact) {
  const std::string path = Path("example.safetensors");
  ASSERT_OK_AND_ASSIGN(auto writer, Writer::Create(posix_, path, ExampleHeader()));
  const std::string a = testutil::ExampleBytes("a"), b = testutil::ExampleBytes("b");
  ASSERT_OK(writer->WritePiece("c", 0, testutil::ExampleBytes("c")));
  ASSERT_OK(writer->WritePiece("a", 6, a.substr(6)));
  ASSERT_OK(writer->WritePiece("b", 12, b.substr(12)));
  ASSERT_OK(writer->WritePiece("a", 0, a.substr(0, 6)));
  ASSERT_OK(writer->WritePiece("b", 0, b.substr(0, 12)));
  ASSERT_OK(writer->Finish());
  EXPECT_THAT(fs::ReadFileToString(posix_, path), IsOkAndHolds(Eq(testutil::ExampleFile())));
}

TEST_F(SafetensorsPosixTest, RoundTripsEveryDTypeAScalarAndAnEmptyTensor) {
  std::map<std::string, std::string> bytes;
  std::map<std::string, TensorData> tensors;
  int seed = 0;
  for (const DTypeInfo& info : AllDTypes()) {
    if (info.safetensors_bits == 0) continue;
    std::vector<int64_t> shape = info.safetensors_bits == 4   ? std::vector<int64_t>{2, 8}
                                 : info.safetensors_bits == 6 ? std::vector<int64_t>{2, 4}
                                                              : std::vector<int64_t>{2, 3};
    const std::string name = absl::StrCat("t.", info.safetensors_name);
    bytes[name] = Pattern(*SafetensorsByteSize(info.dtype, shape), ++seed);
    tensors[name] = {info.dtype, shape, bytes[name]};
  }
  bytes["scalar"] = Pattern(4, 99);
  tensors["scalar"] = {DType::kFloat32, {}, bytes["scalar"]};
  tensors["empty"] = {DType::kBFloat16, {0, 3}, ""};
  const Metadata metadata = {{"format", "pt"}, {"note", "round trip"}};
  const std::string path = Path("all.safetensors");
  ASSERT_OK(WriteTensors(posix_, path, tensors, metadata));

  ASSERT_OK_AND_ASSIGN(auto reader, Reader::Open(posix_, path));
  EXPECT_EQ(reader->metadata(), metadata);
  ASSERT_EQ(reader->entries().size(), tensors.size());
  EXPECT_EQ(reader->header().header_length() % 8, 0u);
  for (const TensorEntry& entry : reader->entries()) {
    SCOPED_TRACE(entry.name);
    const TensorData& want = tensors.at(entry.name);
    EXPECT_EQ(entry.dtype, want.dtype);
    EXPECT_EQ(entry.shape, want.shape);
    EXPECT_THAT(reader->ReadTensor(entry.name), IsOkAndHolds(Eq(std::string(want.data))));
    if (entry.num_bytes() >= 3) {
      char two[2];
      ASSERT_OK(reader->ReadRange(entry.name, 1, 2, two));
      EXPECT_EQ(std::string(two, 2), want.data.substr(1, 2));
    }
  }
  ASSERT_OK_AND_ASSIGN(const TensorEntry* f4, reader->header().Get("t.F4"));
  ASSERT_OK_AND_ASSIGN(TensorDescriptor torch, ToTorchDescriptor(f4->dtype, f4->shape));
  EXPECT_EQ(torch, (TensorDescriptor{DType::kFloat4E2M1FNx2, {2, 4}}));
}

TEST_F(SafetensorsPosixTest, ManyThreadsWritePiecesInShuffledOrder) {
  const std::vector<TensorSpec> specs = {{"w", DType::kFloat32, {256, 64}},
                                         {"x", DType::kBFloat16, {1000}},
                                         {"y", DType::kUInt8, {1}}};
  ASSERT_OK_AND_ASSIGN(Header header, Header::Layout(specs, {}, LayoutOrder::kAsGiven));
  std::map<std::string, std::string> data;
  struct Piece {
    std::string name;
    uint64_t offset;
    uint64_t size;
  };
  std::vector<Piece> pieces;
  int seed = 0;
  for (const TensorEntry& e : header.entries()) {
    data[e.name] = Pattern(e.num_bytes(), ++seed);
    for (uint64_t off = 0, step = 1; off < e.num_bytes(); off += step, step = step % 97 + 1) {
      pieces.push_back({e.name, off, std::min(step, e.num_bytes() - off)});
    }
  }
  std::shuffle(pieces.begin(), pieces.end(), std::mt19937(42));

  const std::string path = Path("threads.safetensors");
  ASSERT_OK_AND_ASSIGN(auto writer, Writer::Create(posix_, path, header));
  std::atomic<size_t> next{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (size_t i; (i = next.fetch_add(1)) < pieces.size();) {
        const Piece& p = pieces[i];
        if (!writer
                 ->WritePiece(p.name, p.offset,
                              absl::string_view(data.at(p.name)).substr(p.offset, p.size))
                 .ok()) {
          failures.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_THAT(writer->BytesWritten("w"), IsOkAndHolds(65536u));
  ASSERT_OK(writer->Finish());

  ASSERT_OK_AND_ASSIGN(auto reader, Reader::Open(posix_, path));
  for (const auto& [name, bytes] : data) {
    EXPECT_THAT(reader->ReadTensor(name), IsOkAndHolds(Eq(bytes))) << name;
  }
}

TEST(SafetensorsWriterTest, RejectsUnknownOutOfBoundsAndOverlappingPieces) {
  fs::MemoryFileSystem mem;
  ASSERT_OK_AND_ASSIGN(auto writer, Writer::Create(mem, "f.safetensors", ExampleHeader()));
  EXPECT_THAT(
      writer->WritePiece("zz", 0, "x"),
      StatusIs(absl::StatusCode::kNotFound, AllOf(HasSubstr("f.safetensors"), HasSubstr("'zz'"))));
  EXPECT_THAT(writer->BytesWritten("zz"), StatusIs(absl::StatusCode::kNotFound));
  const auto kOutOfRange = absl::StatusCode::kOutOfRange;
  EXPECT_THAT(writer->WritePiece("c", 4, ""), StatusIs(kOutOfRange, HasSubstr("tensor 'c'")));
  EXPECT_THAT(writer->WritePiece("c", 2, "xy"), StatusIs(kOutOfRange));
  EXPECT_THAT(writer->WritePiece("c", ~uint64_t{0}, "x"), StatusIs(kOutOfRange));
  EXPECT_OK(writer->WritePiece("c", 3, ""));  // empty piece at the end: a no-op

  ASSERT_OK(writer->WritePiece("b", 4, "12345678"));  // [4, 12)
  const auto kExists = absl::StatusCode::kAlreadyExists;
  EXPECT_THAT(writer->WritePiece("b", 4, "12345678"),
              StatusIs(kExists, AllOf(HasSubstr("tensor 'b'"), HasSubstr("[4, 12)"),
                                      HasSubstr("already written"))));
  EXPECT_THAT(writer->WritePiece("b", 0, "12345"), StatusIs(kExists));               // [0, 5)
  EXPECT_THAT(writer->WritePiece("b", 11, "12"), StatusIs(kExists));                 // [11, 13)
  EXPECT_THAT(writer->WritePiece("b", 6, "12"), StatusIs(kExists));                  // inside
  EXPECT_THAT(writer->WritePiece("b", 2, std::string(12, 'x')), StatusIs(kExists));  // around
  EXPECT_OK(writer->WritePiece("b", 0, "1234"));   // touching on the left
  EXPECT_OK(writer->WritePiece("b", 12, "1234"));  // touching on the right
  EXPECT_THAT(writer->BytesWritten("b"), IsOkAndHolds(16u));
  EXPECT_THAT(writer->WritePiece("b", 7, "1"), StatusIs(kExists));  // after merging
}

TEST(SafetensorsWriterTest, FinishNamesTensorsNotFullyWritten) {
  fs::MemoryFileSystem mem;
  ASSERT_OK_AND_ASSIGN(auto writer, Writer::Create(mem, "f.safetensors", ExampleHeader()));
  ASSERT_OK(writer->WritePiece("b", 0, testutil::ExampleBytes("b")));
  ASSERT_OK(writer->WritePiece("a", 0, "abc"));
  EXPECT_THAT(writer->Finish(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("f.safetensors"), HasSubstr("2 tensor(s)"),
                             HasSubstr("'a' (3 of 12 bytes)"), HasSubstr("'c' (0 of 3 bytes)"))));
  ASSERT_OK(writer->WritePiece("a", 3, testutil::ExampleBytes("a").substr(3)));
  EXPECT_THAT(writer->WritePiece("a", 0, testutil::ExampleBytes("a").substr(0, 3)),
              StatusIs(absl::StatusCode::kAlreadyExists));
  ASSERT_OK(writer->WritePiece("c", 0, testutil::ExampleBytes("c")));
  ASSERT_OK(writer->Finish());
  EXPECT_THAT(writer->Finish(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(writer->WritePiece("c", 0, "x"), StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK_AND_ASSIGN(auto reader, Reader::Open(mem, "f.safetensors"));
  EXPECT_THAT(reader->ReadTensor("a"),
              IsOkAndHolds(Eq(std::string("abc") + testutil::ExampleBytes("a").substr(3))));
}

TEST(SafetensorsWriterTest, AFailedWriteIsForgottenAndMayBeRetried) {
  fs::MemoryFileSystem mem;
  fs::FaultInjectionFileSystem faulty(&mem);
  ASSERT_OK_AND_ASSIGN(auto writer, Writer::Create(faulty, "f.safetensors", ExampleHeader()));
  faulty.FailNth(fs::FaultInjectionFileSystem::Op::kWrite, 1, absl::UnavailableError("disk"));
  EXPECT_THAT(
      writer->WritePiece("c", 0, "\x01\x02\x03"),
      StatusIs(absl::StatusCode::kUnavailable, AllOf(HasSubstr("tensor 'c'"), HasSubstr("disk"))));
  EXPECT_THAT(writer->BytesWritten("c"), IsOkAndHolds(0u));
  EXPECT_OK(writer->WritePiece("c", 0, "\x01\x02\x03"));
  faulty.FailNth(fs::FaultInjectionFileSystem::Op::kSync, 1, absl::InternalError("sync"));
  ASSERT_OK(writer->WritePiece("a", 0, testutil::ExampleBytes("a")));
  ASSERT_OK(writer->WritePiece("b", 0, testutil::ExampleBytes("b")));
  EXPECT_THAT(writer->Finish(), StatusIs(absl::StatusCode::kInternal, HasSubstr("sync")));
  EXPECT_OK(writer->Finish());
  EXPECT_THAT(fs::ReadFileToString(mem, "f.safetensors"),
              IsOkAndHolds(Eq(testutil::ExampleFile())));
}

TEST(SafetensorsWriterTest, RacingWritesOfOneRangeHaveOneWinner) {
  fs::MemoryFileSystem mem;
  ASSERT_OK_AND_ASSIGN(Header header,
                       Header::Layout({{"t", DType::kUInt8, {4096}}}, {}, LayoutOrder::kAsGiven));
  ASSERT_OK_AND_ASSIGN(auto writer, Writer::Create(mem, "f.safetensors", header));
  const std::string bytes = Pattern(4096, 1);
  std::atomic<int> ok{0}, exists{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      absl::Status s = writer->WritePiece("t", 0, bytes);
      if (s.ok()) ok.fetch_add(1);
      if (s.code() == absl::StatusCode::kAlreadyExists) exists.fetch_add(1);
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(exists.load(), 7);
  EXPECT_OK(writer->Finish());
}

TEST(SafetensorsWriterTest, CreateAndWriteTensorsErrors) {
  fs::MemoryFileSystem mem;
  EXPECT_THAT(Writer::Create(mem, "missing/f.safetensors", ExampleHeader()),
              StatusIs(absl::StatusCode::kNotFound));
  const std::string three = "abc";
  EXPECT_THAT(WriteTensors(mem, "f.safetensors", {{"t", {DType::kFloat32, {1}, three}}}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("tensor 't' has 3 bytes"), HasSubstr("needs 4"))));
  EXPECT_THAT(WriteTensors(mem, "f.safetensors", {{"t", {DType::kComplex32, {1}, three}}}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("f.safetensors")));
}

// Records the furthest byte any ReadAt reached.
class RecordingFile : public fs::RandomAccessFile {
 public:
  explicit RecordingFile(std::unique_ptr<fs::RandomAccessFile> base) : base_(std::move(base)) {}
  absl::Status ReadAt(uint64_t offset, size_t n, char* dst) const override {
    *furthest_ = std::max(*furthest_, offset + n);
    return base_->ReadAt(offset, n, dst);
  }
  uint64_t size() const override { return base_->size(); }
  const std::string& path() const override { return base_->path(); }
  std::shared_ptr<uint64_t> furthest_ = std::make_shared<uint64_t>(0);

 private:
  std::unique_ptr<fs::RandomAccessFile> base_;
};

TEST(SafetensorsReaderTest, ReadsOnlyTheHeaderWhenOpening) {
  fs::MemoryFileSystem mem;
  ASSERT_OK(fs::testutil::WriteString(mem, "f.safetensors", testutil::ExampleFile()));
  ASSERT_OK_AND_ASSIGN(auto base, mem.OpenForRead("f.safetensors"));
  auto file = std::make_unique<RecordingFile>(std::move(base));
  std::shared_ptr<uint64_t> furthest = file->furthest_;
  ASSERT_OK_AND_ASSIGN(auto reader, Reader::FromFile(std::move(file)));
  EXPECT_EQ(*furthest, 208u);
  EXPECT_THAT(reader->ReadTensor("c"), IsOkAndHolds(Eq(std::string("\x01\x02\x03"))));
  EXPECT_EQ(*furthest, 239u);
}

TEST(SafetensorsReaderTest, Errors) {
  fs::MemoryFileSystem mem;
  EXPECT_THAT(Reader::Open(mem, "none.safetensors"), StatusIs(absl::StatusCode::kNotFound));
  const std::string file = testutil::ExampleFile();
  ASSERT_OK(fs::testutil::WriteString(mem, "short.safetensors", file.substr(0, file.size() - 1)));
  EXPECT_THAT(Reader::Open(mem, "short.safetensors"),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("short.safetensors"), HasSubstr("tensor 'c'"))));
  ASSERT_OK(fs::testutil::WriteString(mem, "tiny.safetensors", std::string("\x08\0\0", 3)));
  EXPECT_THAT(Reader::Open(mem, "tiny.safetensors"), StatusIs(absl::StatusCode::kDataLoss));

  ASSERT_OK(fs::testutil::WriteString(mem, "f.safetensors", file));
  ASSERT_OK_AND_ASSIGN(auto reader, Reader::Open(mem, "f.safetensors"));
  char buf[16];
  EXPECT_THAT(reader->ReadTensor("zz"), StatusIs(absl::StatusCode::kNotFound, HasSubstr("'zz'")));
  EXPECT_THAT(reader->ReadRange("c", 2, 2, buf),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("tensor 'c'")));
  EXPECT_THAT(reader->ReadRange("c", 4, 0, buf), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(reader->ReadRange("c", 3, 0, buf), IsOk());
}

}  // namespace
}  // namespace mxport::safetensors
