// One FileSystem conformance suite, run against every implementation: POSIX (in a fresh temp
// directory), MemoryFileSystem, and FaultInjectionFileSystem (no faults armed) over memory.
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "common/fs/fault_injection_file_system.h"
#include "common/fs/file_system.h"
#include "common/fs/fs_testutil.h"
#include "common/fs/memory_file_system.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mxport::fs {
namespace {

using ::mxport::fs::testutil::PosixTempDir;
using ::mxport::fs::testutil::WriteString;
using ::mxport::testing::IsOk;
using ::mxport::testing::IsOkAndHolds;
using ::mxport::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// A file system under test and a directory in it that the test owns.
class Harness {
 public:
  virtual ~Harness() = default;
  virtual FileSystem& fs() = 0;
  virtual std::string root() = 0;
};

class PosixHarness : public Harness {
 public:
  FileSystem& fs() override { return *PosixFileSystem(); }
  std::string root() override { return dir_.path(); }

 private:
  PosixTempDir dir_;
};

class MemoryHarness : public Harness {
 public:
  MemoryHarness() { fs_.CreateDirs("/t").IgnoreError(); }
  FileSystem& fs() override { return fs_; }
  std::string root() override { return "/t"; }

 private:
  MemoryFileSystem fs_;
};

class FaultHarness : public MemoryHarness {
 public:
  FileSystem& fs() override { return fault_; }

 private:
  FaultInjectionFileSystem fault_{&MemoryHarness::fs()};
};

struct Impl {
  const char* name;
  std::unique_ptr<Harness> (*make)();
};

class ConformanceTest : public ::testing::TestWithParam<Impl> {
 protected:
  void SetUp() override { ASSERT_FALSE(root_.empty()) << "could not make a temp directory"; }

  std::string P(absl::string_view name) { return JoinPath(root_, name); }
  absl::StatusOr<std::string> Read(const std::string& path) { return ReadFileToString(fs_, path); }

  std::unique_ptr<Harness> harness_ = GetParam().make();
  FileSystem& fs_ = harness_->fs();
  const std::string root_ = harness_->root();
};

TEST_P(ConformanceTest, WriteThenReadBack) {
  ASSERT_OK(WriteString(fs_, P("f"), "hello world"));
  EXPECT_THAT(Read(P("f")), IsOkAndHolds(std::string("hello world")));
  EXPECT_THAT(fs_.FileSize(P("f")), IsOkAndHolds(11u));
  ASSERT_OK_AND_ASSIGN(auto file, fs_.OpenForRead(P("f")));
  EXPECT_EQ(file->size(), 11u);
  EXPECT_EQ(file->path(), P("f"));
  char buf[5];
  ASSERT_OK(file->ReadAt(6, 5, buf));
  EXPECT_EQ(std::string(buf, 5), "world");
  ASSERT_OK(file->ReadAt(11, 0, buf));  // an empty read at the end is fine
}

TEST_P(ConformanceTest, ReadPastEndIsDataLossNamingPathOffsetAndLength) {
  ASSERT_OK(WriteString(fs_, P("short"), "abc"));
  ASSERT_OK_AND_ASSIGN(auto file, fs_.OpenForRead(P("short")));
  char buf[8];
  EXPECT_THAT(file->ReadAt(1, 5, buf),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr(P("short")), HasSubstr("offset 1"), HasSubstr("length 5"))));
  EXPECT_THAT(file->ReadAt(10, 1, buf), StatusIs(absl::StatusCode::kDataLoss));
}

TEST_P(ConformanceTest, MissingFilesAreNotFoundNamingThePath) {
  const std::string missing = P("missing");
  EXPECT_THAT(fs_.OpenForRead(missing), StatusIs(absl::StatusCode::kNotFound, HasSubstr(missing)));
  EXPECT_THAT(fs_.OpenForWrite(missing, OpenMode::kOpenExisting),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(missing)));
  EXPECT_THAT(fs_.Exists(missing), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(fs_.IsDirectory(missing), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(fs_.FileSize(missing), StatusIs(absl::StatusCode::kNotFound, HasSubstr(missing)));
  EXPECT_THAT(fs_.ListDir(missing), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(fs_.Delete(missing), StatusIs(absl::StatusCode::kNotFound, HasSubstr(missing)));
  EXPECT_THAT(fs_.SyncDir(missing), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(fs_.Rename(missing, P("b")), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(ReadFileToString(fs_, missing), StatusIs(absl::StatusCode::kNotFound));
  // Directories are explicit: no file can be created in a missing one.
  EXPECT_THAT(fs_.OpenForWrite(P("nodir/f"), OpenMode::kCreateOrTruncate),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(P("nodir/f"))));
}

TEST_P(ConformanceTest, OpenModes) {
  ASSERT_OK(WriteString(fs_, P("f"), "0123456789"));
  EXPECT_THAT(fs_.OpenForWrite(P("f"), OpenMode::kCreateExclusive),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr(P("f"))));
  {  // kOpenExisting keeps the bytes.
    ASSERT_OK_AND_ASSIGN(auto file, fs_.OpenForWrite(P("f"), OpenMode::kOpenExisting));
    ASSERT_OK(file->WriteAt(3, "xy"));
    ASSERT_OK(file->Close());
  }
  EXPECT_THAT(Read(P("f")), IsOkAndHolds(std::string("012xy56789")));
  {  // kCreateOrTruncate empties it.
    ASSERT_OK_AND_ASSIGN(auto file, fs_.OpenForWrite(P("f"), OpenMode::kCreateOrTruncate));
    ASSERT_OK(file->Close());
  }
  EXPECT_THAT(fs_.FileSize(P("f")), IsOkAndHolds(0u));
  {  // kCreateExclusive creates.
    ASSERT_OK_AND_ASSIGN(auto file, fs_.OpenForWrite(P("g"), OpenMode::kCreateExclusive));
    ASSERT_OK(file->WriteAt(0, "new"));
    ASSERT_OK(file->Close());
  }
  EXPECT_THAT(Read(P("g")), IsOkAndHolds(std::string("new")));
}

TEST_P(ConformanceTest, WritesInAnyOrderWithZeroFilledGaps) {
  ASSERT_OK_AND_ASSIGN(auto file, fs_.OpenForWrite(P("f"), OpenMode::kCreateOrTruncate));
  ASSERT_OK(file->WriteAt(5, "xyz"));
  ASSERT_OK(file->WriteAt(0, "ab"));
  ASSERT_OK(file->WriteAt(6, "Q"));
  ASSERT_OK(file->Sync());
  ASSERT_OK(file->Close());
  EXPECT_THAT(Read(P("f")), IsOkAndHolds(std::string("ab\0\0\0xQz", 8)));
}

TEST_P(ConformanceTest, AllocateSetsSizeZeroFilled) {
  ASSERT_OK_AND_ASSIGN(auto file, fs_.OpenForWrite(P("f"), OpenMode::kCreateOrTruncate));
  ASSERT_OK(file->WriteAt(0, "abc"));
  ASSERT_OK(file->Allocate(8));
  EXPECT_THAT(fs_.FileSize(P("f")), IsOkAndHolds(8u));
  EXPECT_THAT(Read(P("f")), IsOkAndHolds(std::string("abc\0\0\0\0\0", 8)));
  ASSERT_OK(file->WriteAt(6, "zz"));
  ASSERT_OK(file->Allocate(2));  // shrinking truncates
  ASSERT_OK(file->Close());
  EXPECT_THAT(Read(P("f")), IsOkAndHolds(std::string("ab")));
}

TEST_P(ConformanceTest, ClosedFileRefusesEverything) {
  ASSERT_OK_AND_ASSIGN(auto file, fs_.OpenForWrite(P("f"), OpenMode::kCreateOrTruncate));
  ASSERT_OK(file->Close());
  EXPECT_THAT(file->Close(), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr(P("f"))));
  EXPECT_THAT(file->WriteAt(0, "x"), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(file->Allocate(4), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(file->Sync(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(file->path(), P("f"));
}

TEST_P(ConformanceTest, DirectoriesAndKinds) {
  ASSERT_OK(fs_.CreateDirs(P("a/b/c")));
  ASSERT_OK(fs_.CreateDirs(P("a/b/c")));  // already there
  ASSERT_OK(fs_.CreateDirs(P("a/b")));
  ASSERT_OK(WriteString(fs_, P("a/f"), "x"));
  EXPECT_OK(fs_.Exists(P("a/b/c")));
  EXPECT_OK(fs_.Exists(P("a/f")));
  EXPECT_THAT(fs_.IsDirectory(P("a/b")), IsOkAndHolds(true));
  EXPECT_THAT(fs_.IsDirectory(P("a/f")), IsOkAndHolds(false));
  EXPECT_THAT(fs_.FileSize(P("a")), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(fs_.OpenForRead(P("a")), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(fs_.OpenForWrite(P("a"), OpenMode::kCreateOrTruncate),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr(P("a"))));
  // A file in the way of a directory.
  EXPECT_THAT(fs_.CreateDirs(P("a/f/g")), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(fs_.CreateDirs(P("a/f")), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(fs_.OpenForWrite(P("a/f/g"), OpenMode::kCreateOrTruncate),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(fs_.ListDir(P("a/f")), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(fs_.SyncDir(P("a/f")), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_OK(fs_.SyncDir(P("a")));
  EXPECT_OK(fs_.SyncDir(root_));
}

TEST_P(ConformanceTest, ListDirIsSortedWithoutDots) {
  EXPECT_THAT(fs_.ListDir(root_), IsOkAndHolds(IsEmpty()));
  ASSERT_OK(WriteString(fs_, P("zeta"), ""));
  ASSERT_OK(WriteString(fs_, P("alpha"), ""));
  ASSERT_OK(fs_.CreateDirs(P("mid")));
  ASSERT_OK(WriteString(fs_, P("mid/inner"), ""));
  EXPECT_THAT(fs_.ListDir(root_), IsOkAndHolds(ElementsAre("alpha", "mid", "zeta")));
  EXPECT_THAT(fs_.ListDir(P("mid")), IsOkAndHolds(ElementsAre("inner")));
}

TEST_P(ConformanceTest, RenameReplacesTheDestination) {
  ASSERT_OK(WriteString(fs_, P("old"), "old bytes"));
  ASSERT_OK(WriteString(fs_, P("new"), "new bytes"));
  ASSERT_OK(fs_.Rename(P("new"), P("old")));
  EXPECT_THAT(Read(P("old")), IsOkAndHolds(std::string("new bytes")));
  EXPECT_THAT(fs_.Exists(P("new")), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(fs_.CreateDirs(P("d")));
  ASSERT_OK(fs_.Rename(P("old"), P("d/moved")));
  EXPECT_THAT(Read(P("d/moved")), IsOkAndHolds(std::string("new bytes")));
  EXPECT_THAT(fs_.ListDir(root_), IsOkAndHolds(ElementsAre("d")));
  // A file cannot replace a directory.
  ASSERT_OK(fs_.CreateDirs(P("d/sub")));
  EXPECT_THAT(fs_.Rename(P("d/moved"), P("d/sub")),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(Read(P("d/moved")), IsOkAndHolds(std::string("new bytes")));
}

TEST_P(ConformanceTest, OpenFileFollowsRenameAndSurvivesDelete) {
  ASSERT_OK_AND_ASSIGN(auto file, fs_.OpenForWrite(P("a"), OpenMode::kCreateExclusive));
  ASSERT_OK(file->WriteAt(0, "one"));
  ASSERT_OK(fs_.Rename(P("a"), P("b")));
  ASSERT_OK(file->WriteAt(3, "two"));
  ASSERT_OK(file->Close());
  EXPECT_THAT(Read(P("b")), IsOkAndHolds(std::string("onetwo")));
  EXPECT_THAT(fs_.Exists(P("a")), StatusIs(absl::StatusCode::kNotFound));

  ASSERT_OK_AND_ASSIGN(auto reader, fs_.OpenForRead(P("b")));
  ASSERT_OK(fs_.Delete(P("b")));
  char buf[6];
  ASSERT_OK(reader->ReadAt(0, 6, buf));
  EXPECT_EQ(std::string(buf, 6), "onetwo");
  EXPECT_THAT(fs_.ListDir(root_), IsOkAndHolds(IsEmpty()));
}

TEST_P(ConformanceTest, DeleteFilesAndEmptyDirectoriesOnly) {
  ASSERT_OK(fs_.CreateDirs(P("d/e")));
  ASSERT_OK(WriteString(fs_, P("d/f"), "x"));
  EXPECT_THAT(fs_.Delete(P("d")),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr(P("d"))));
  ASSERT_OK(fs_.Delete(P("d/f")));
  ASSERT_OK(fs_.Delete(P("d/e")));
  ASSERT_OK(fs_.Delete(P("d")));
  EXPECT_THAT(fs_.Exists(P("d")), StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(ConformanceTest, WriteFileAtomicallyReplacesAndLeavesNoTempFile) {
  ASSERT_OK(WriteFileAtomically(fs_, P("config.json"), "v1"));
  EXPECT_THAT(Read(P("config.json")), IsOkAndHolds(std::string("v1")));
  ASSERT_OK(WriteFileAtomically(fs_, P("config.json"), "version two"));
  EXPECT_THAT(Read(P("config.json")), IsOkAndHolds(std::string("version two")));
  EXPECT_THAT(fs_.ListDir(root_), IsOkAndHolds(ElementsAre("config.json")));
  EXPECT_THAT(WriteFileAtomically(fs_, P("nodir/x"), "v"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(ConformanceTest, ConcurrentWritesOfDisjointRangesAndConcurrentReads) {
  constexpr int kThreads = 4;
  constexpr int kChunks = 64;
  constexpr size_t kChunk = 1000;
  ASSERT_OK_AND_ASSIGN(auto file, fs_.OpenForWrite(P("f"), OpenMode::kCreateOrTruncate));
  std::vector<std::thread> threads;
  std::vector<absl::Status> results(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Thread t writes chunks t, t + kThreads, ... (interleaved, highest offsets first).
      for (int c = kChunks - kThreads + t; c >= 0 && results[t].ok(); c -= kThreads) {
        results[t] =
            file->WriteAt(c * kChunk, std::string(kChunk, static_cast<char>('a' + c % 26)));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const absl::Status& status : results) ASSERT_OK(status);
  ASSERT_OK(file->Sync());
  ASSERT_OK(file->Close());

  std::string expected;
  for (int c = 0; c < kChunks; ++c) {
    expected += std::string(kChunk, static_cast<char>('a' + c % 26));
  }
  EXPECT_THAT(Read(P("f")), IsOkAndHolds(expected));

  ASSERT_OK_AND_ASSIGN(auto reader, fs_.OpenForRead(P("f")));
  threads.clear();
  std::vector<std::string> chunks(kChunks, std::string(kChunk, '?'));
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int c = t; c < kChunks && results[t].ok(); c += kThreads) {
        results[t] = reader->ReadAt(c * kChunk, kChunk, chunks[c].data());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const absl::Status& status : results) ASSERT_OK(status);
  for (int c = 0; c < kChunks; ++c) EXPECT_EQ(chunks[c], expected.substr(c * kChunk, kChunk));
}

template <typename H>
std::unique_ptr<Harness> Make() {
  return std::make_unique<H>();
}

INSTANTIATE_TEST_SUITE_P(AllFileSystems, ConformanceTest,
                         ::testing::Values(Impl{"Posix", &Make<PosixHarness>},
                                           Impl{"Memory", &Make<MemoryHarness>},
                                           Impl{"FaultInjectionOverMemory", &Make<FaultHarness>}),
                         [](const ::testing::TestParamInfo<Impl>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace mxport::fs
