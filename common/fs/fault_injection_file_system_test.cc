// FaultInjectionFileSystem: armed faults, call counters, WriteFileAtomically under faults, and
// DropUnsyncedData. (Plain forwarding is covered by the conformance suite.)
#include "common/fs/fault_injection_file_system.h"

#include <memory>
#include <string>

#include "absl/status/status.h"
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
using ::mxport::testing::IsOkAndHolds;
using ::mxport::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using Op = FaultInjectionFileSystem::Op;

const absl::Status kBoom = absl::UnavailableError("injected boom");

class FaultInjectionTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(mem_.CreateDirs("/d")); }
  absl::StatusOr<std::string> Read(const std::string& path) { return ReadFileToString(mem_, path); }

  MemoryFileSystem mem_;
  FaultInjectionFileSystem fs_{&mem_};
};

TEST_F(FaultInjectionTest, FailsOnlyTheNthWriteOnce) {
  ASSERT_OK_AND_ASSIGN(auto file, fs_.OpenForWrite("/d/f", OpenMode::kCreateOrTruncate));
  fs_.FailNth(Op::kWrite, 2, kBoom);
  EXPECT_OK(file->WriteAt(0, "a"));
  EXPECT_THAT(file->WriteAt(1, "b"), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("boom")));
  EXPECT_OK(file->WriteAt(2, "c"));
  EXPECT_OK(file->WriteAt(1, "B"));
  EXPECT_EQ(fs_.count(Op::kWrite), 4);
  EXPECT_EQ(fs_.count(Op::kOpenForWrite), 1);
  EXPECT_THAT(Read("/d/f"), IsOkAndHolds(std::string("aBc")));
}

TEST_F(FaultInjectionTest, NthCountsFromWhenTheFaultIsArmed) {
  ASSERT_OK_AND_ASSIGN(auto file, fs_.OpenForWrite("/d/f", OpenMode::kCreateOrTruncate));
  ASSERT_OK(file->WriteAt(0, "a"));
  ASSERT_OK(file->WriteAt(1, "b"));
  fs_.FailNth(Op::kWrite, 1, kBoom);
  EXPECT_THAT(file->WriteAt(2, "c"), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_OK(file->WriteAt(2, "C"));
  EXPECT_THAT(Read("/d/f"), IsOkAndHolds(std::string("abC")));
}

TEST_F(FaultInjectionTest, FailedCallsDoNotReachTheWrappedFileSystem) {
  fs_.FailNth(Op::kOpenForWrite, 1, kBoom);
  EXPECT_THAT(fs_.OpenForWrite("/d/f", OpenMode::kCreateOrTruncate),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(mem_.Exists("/d/f"), StatusIs(absl::StatusCode::kNotFound));

  ASSERT_OK(WriteString(mem_, "/d/a", "A"));
  fs_.FailNth(Op::kRename, 1, kBoom);
  EXPECT_THAT(fs_.Rename("/d/a", "/d/b"), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(mem_.ListDir("/d"), IsOkAndHolds(ElementsAre("a")));
  fs_.FailNth(Op::kDelete, 1, kBoom);
  EXPECT_THAT(fs_.Delete("/d/a"), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(Read("/d/a"), IsOkAndHolds(std::string("A")));
  EXPECT_OK(fs_.Rename("/d/a", "/d/b"));
  EXPECT_EQ(fs_.count(Op::kRename), 2);
  EXPECT_EQ(fs_.count(Op::kDelete), 1);
}

TEST_F(FaultInjectionTest, FailAllUntilCleared) {
  ASSERT_OK_AND_ASSIGN(auto file, fs_.OpenForWrite("/d/f", OpenMode::kCreateOrTruncate));
  fs_.FailAll(Op::kSync, absl::InternalError("disk gone"));
  fs_.FailAll(Op::kSyncDir, kBoom);
  fs_.FailNth(Op::kAllocate, 1, kBoom);
  EXPECT_THAT(file->Sync(), StatusIs(absl::StatusCode::kInternal));
  EXPECT_THAT(file->Sync(), StatusIs(absl::StatusCode::kInternal));
  EXPECT_THAT(fs_.SyncDir("/d"), StatusIs(absl::StatusCode::kUnavailable));
  fs_.ClearFaults();
  EXPECT_OK(file->Sync());
  EXPECT_OK(fs_.SyncDir("/d"));
  EXPECT_OK(file->Allocate(3));  // the armed allocate fault was cleared too
  EXPECT_EQ(fs_.count(Op::kSync), 3);
  EXPECT_EQ(fs_.count(Op::kSyncDir), 2);
  EXPECT_EQ(fs_.count(Op::kAllocate), 1);
}

TEST_F(FaultInjectionTest, FailsReads) {
  ASSERT_OK(WriteString(mem_, "/d/f", "data"));
  fs_.FailNth(Op::kRead, 1, absl::DataLossError("bad sector"));
  EXPECT_THAT(ReadFileToString(fs_, "/d/f"), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(ReadFileToString(fs_, "/d/f"), IsOkAndHolds(std::string("data")));
  EXPECT_EQ(fs_.count(Op::kRead), 2);
}

TEST_F(FaultInjectionTest, WriteFileAtomicallyMakesOneCallOfEachOp) {
  ASSERT_OK(WriteFileAtomically(fs_, "/d/f", "x"));
  for (Op op : {Op::kOpenForWrite, Op::kWrite, Op::kSync, Op::kRename, Op::kSyncDir}) {
    EXPECT_EQ(fs_.count(op), 1) << static_cast<int>(op);
  }
  EXPECT_EQ(fs_.count(Op::kDelete), 0);
}

// Any failure before the rename: the old content stays, no temp file is left, and the
// injected error is what the caller sees.
TEST_F(FaultInjectionTest, WriteFileAtomicallyKeepsOldContentOnAnyFailureBeforeRename) {
  for (Op op : {Op::kOpenForWrite, Op::kWrite, Op::kSync, Op::kRename}) {
    SCOPED_TRACE(static_cast<int>(op));
    ASSERT_OK(WriteString(mem_, "/d/f", "old"));
    fs_.FailNth(op, 1, kBoom);
    EXPECT_THAT(WriteFileAtomically(fs_, "/d/f", "new"),
                StatusIs(absl::StatusCode::kUnavailable, HasSubstr("boom")));
    EXPECT_THAT(Read("/d/f"), IsOkAndHolds(std::string("old")));
    EXPECT_THAT(mem_.ListDir("/d"), IsOkAndHolds(ElementsAre("f")));
  }
}

TEST_F(FaultInjectionTest, WriteFileAtomicallyReportsSyncDirFailureAfterRename) {
  fs_.FailNth(Op::kSyncDir, 1, kBoom);
  EXPECT_THAT(WriteFileAtomically(fs_, "/d/f", "new"), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(Read("/d/f"), IsOkAndHolds(std::string("new")));
  EXPECT_THAT(mem_.ListDir("/d"), IsOkAndHolds(ElementsAre("f")));
}

TEST(FaultInjectionPosixTest, WriteFileAtomicallyKeepsOldContentWhenRenameFails) {
  PosixTempDir dir;
  ASSERT_FALSE(dir.path().empty());
  FaultInjectionFileSystem fs(PosixFileSystem());
  const std::string path = JoinPath(dir.path(), "model.safetensors.index.json");
  ASSERT_OK(WriteFileAtomically(fs, path, "old"));
  fs.FailNth(Op::kRename, 1, kBoom);
  EXPECT_THAT(WriteFileAtomically(fs, path, "new"), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(ReadFileToString(fs, path), IsOkAndHolds(std::string("old")));
  EXPECT_THAT(fs.ListDir(dir.path()), IsOkAndHolds(ElementsAre("model.safetensors.index.json")));
  EXPECT_EQ(fs.count(Op::kDelete), 1);  // the temp file was removed
}

TEST_F(FaultInjectionTest, DropUnsyncedDataRestoresLastSyncedBytes) {
  ASSERT_OK_AND_ASSIGN(auto file, fs_.OpenForWrite("/d/f", OpenMode::kCreateOrTruncate));
  ASSERT_OK(file->WriteAt(0, "synced"));
  ASSERT_OK(file->Sync());
  ASSERT_OK(file->WriteAt(0, "UNSYNCED and longer"));
  ASSERT_OK(fs_.DropUnsyncedData());
  EXPECT_THAT(Read("/d/f"), IsOkAndHolds(std::string("synced")));
  // The handle stays usable, and a second drop with nothing new changes nothing.
  ASSERT_OK(file->WriteAt(6, "+more"));
  ASSERT_OK(file->Sync());
  ASSERT_OK(file->Close());
  ASSERT_OK(fs_.DropUnsyncedData());
  EXPECT_THAT(Read("/d/f"), IsOkAndHolds(std::string("synced+more")));
}

TEST_F(FaultInjectionTest, DropUnsyncedDataDeletesNeverSyncedNewFiles) {
  ASSERT_OK_AND_ASSIGN(auto file, fs_.OpenForWrite("/d/new", OpenMode::kCreateExclusive));
  ASSERT_OK(file->WriteAt(0, "never synced"));
  ASSERT_OK(file->Close());
  ASSERT_OK_AND_ASSIGN(auto empty, fs_.OpenForWrite("/d/empty", OpenMode::kCreateOrTruncate));
  ASSERT_OK(fs_.DropUnsyncedData());
  EXPECT_THAT(mem_.ListDir("/d"), IsOkAndHolds(IsEmpty()));
}

TEST_F(FaultInjectionTest, DropUnsyncedDataRestoresBytesFromBeforeTheWrapperOpenedTheFile) {
  ASSERT_OK(WriteString(mem_, "/d/kept", "original"));
  ASSERT_OK(WriteString(mem_, "/d/truncated", "original too"));
  ASSERT_OK(WriteString(mem_, "/d/untouched", "same"));
  {
    ASSERT_OK_AND_ASSIGN(auto file, fs_.OpenForWrite("/d/kept", OpenMode::kOpenExisting));
    ASSERT_OK(file->WriteAt(0, "OVER"));
    ASSERT_OK_AND_ASSIGN(auto trunc, fs_.OpenForWrite("/d/truncated", OpenMode::kCreateOrTruncate));
    ASSERT_OK_AND_ASSIGN(auto same, fs_.OpenForWrite("/d/untouched", OpenMode::kOpenExisting));
  }
  EXPECT_THAT(Read("/d/kept"), IsOkAndHolds(std::string("OVERinal")));
  EXPECT_THAT(Read("/d/truncated"), IsOkAndHolds(std::string()));
  ASSERT_OK(fs_.DropUnsyncedData());
  EXPECT_THAT(Read("/d/kept"), IsOkAndHolds(std::string("original")));
  EXPECT_THAT(Read("/d/truncated"), IsOkAndHolds(std::string("original too")));
  EXPECT_THAT(Read("/d/untouched"), IsOkAndHolds(std::string("same")));
}

TEST_F(FaultInjectionTest, DropUnsyncedDataFollowsRenamesAndForgetsDeletes) {
  ASSERT_OK_AND_ASSIGN(auto file, fs_.OpenForWrite("/d/tmp", OpenMode::kCreateExclusive));
  ASSERT_OK(file->WriteAt(0, "v1"));
  ASSERT_OK(file->Sync());
  ASSERT_OK(fs_.Rename("/d/tmp", "/d/final"));
  ASSERT_OK(file->WriteAt(0, "v2"));
  ASSERT_OK(file->Sync());  // read back under the new name
  ASSERT_OK(file->WriteAt(0, "v3"));
  ASSERT_OK_AND_ASSIGN(auto gone, fs_.OpenForWrite("/d/gone", OpenMode::kCreateExclusive));
  ASSERT_OK(gone->WriteAt(0, "x"));
  ASSERT_OK(fs_.Delete("/d/gone"));
  ASSERT_OK(fs_.DropUnsyncedData());
  EXPECT_THAT(Read("/d/final"), IsOkAndHolds(std::string("v2")));
  EXPECT_THAT(mem_.ListDir("/d"), IsOkAndHolds(ElementsAre("final")));
}

}  // namespace
}  // namespace mxport::fs
