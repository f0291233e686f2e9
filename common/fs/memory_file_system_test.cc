// MemoryFileSystem beyond the conformance suite: path forms and the crash model.
#include "common/fs/memory_file_system.h"

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "common/fs/file_system.h"
#include "common/fs/fs_testutil.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mxport::fs {
namespace {

using ::mxport::fs::testutil::WriteString;
using ::mxport::testing::IsOkAndHolds;
using ::mxport::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

class MemoryFileSystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(fs_->CreateDirs("/d"));
    fs_->SyncEverything();
  }
  absl::StatusOr<std::string> Read(const std::string& path) { return ReadFileToString(*fs_, path); }
  // Creates `path` holding `data`, with its bytes synced but its directory entry not.
  void WriteSynced(const std::string& path, const std::string& data) {
    ASSERT_OK(WriteString(*fs_, path, data));
  }

  std::unique_ptr<MemoryFileSystem> fs_ = NewMemoryFileSystem();
};

TEST_F(MemoryFileSystemTest, RelativeAbsoluteAndDotPathsNameTheSameEntries) {
  ASSERT_OK(WriteString(*fs_, "d/f", "x"));
  EXPECT_THAT(Read("/d/f"), IsOkAndHolds(std::string("x")));
  EXPECT_THAT(Read("./d//f"), IsOkAndHolds(std::string("x")));
  EXPECT_THAT(fs_->ListDir("."), IsOkAndHolds(ElementsAre("d")));
  EXPECT_THAT(fs_->ListDir("/"), IsOkAndHolds(ElementsAre("d")));
  EXPECT_THAT(fs_->IsDirectory("/"), IsOkAndHolds(true));
  EXPECT_OK(fs_->SyncDir("."));
  EXPECT_THAT(fs_->Exists("/d/../d"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(fs_->OpenForWrite("/", OpenMode::kCreateOrTruncate),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(MemoryFileSystemTest, RenamingDirectoriesIsNotSupported) {
  EXPECT_THAT(fs_->Rename("/d", "/e"), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(fs_->IsDirectory("/d"), IsOkAndHolds(true));
}

TEST_F(MemoryFileSystemTest, FilesOutliveTheFileSystemObject) {
  ASSERT_OK_AND_ASSIGN(auto writer, fs_->OpenForWrite("/d/f", OpenMode::kCreateOrTruncate));
  fs_.reset();
  ASSERT_OK(writer->WriteAt(0, "still here"));
  ASSERT_OK(writer->Close());
}

TEST_F(MemoryFileSystemTest, CrashKeepsSyncedBytesOfSyncedEntries) {
  ASSERT_OK_AND_ASSIGN(auto file, fs_->OpenForWrite("/d/f", OpenMode::kCreateOrTruncate));
  ASSERT_OK(file->WriteAt(0, "hello"));
  ASSERT_OK(file->Sync());
  ASSERT_OK(fs_->SyncDir("/d"));
  ASSERT_OK(file->WriteAt(5, " world"));  // never synced
  ASSERT_OK(file->Allocate(100));         // never synced
  EXPECT_THAT(fs_->FileSize("/d/f"), IsOkAndHolds(100u));
  fs_->SimulateCrash();
  EXPECT_THAT(Read("/d/f"), IsOkAndHolds(std::string("hello")));
}

TEST_F(MemoryFileSystemTest, CrashLosesFileWhoseDirectoryWasNotSynced) {
  WriteSynced("/d/f", "synced bytes");
  fs_->SimulateCrash();
  EXPECT_THAT(fs_->Exists("/d/f"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(fs_->ListDir("/d"), IsOkAndHolds(IsEmpty()));
}

TEST_F(MemoryFileSystemTest, CrashLosesUnsyncedBytesOfDurableEntry) {
  ASSERT_OK_AND_ASSIGN(auto file, fs_->OpenForWrite("/d/f", OpenMode::kCreateOrTruncate));
  ASSERT_OK(file->WriteAt(0, "never synced"));
  ASSERT_OK(fs_->SyncDir("/d"));
  fs_->SimulateCrash();
  EXPECT_THAT(Read("/d/f"), IsOkAndHolds(std::string()));
}

TEST_F(MemoryFileSystemTest, CrashUndoesUnsyncedRename) {
  WriteSynced("/d/a", "old");
  ASSERT_OK(fs_->SyncDir("/d"));
  WriteSynced("/d/tmp", "new");
  ASSERT_OK(fs_->Rename("/d/tmp", "/d/a"));
  EXPECT_THAT(Read("/d/a"), IsOkAndHolds(std::string("new")));
  fs_->SimulateCrash();
  EXPECT_THAT(Read("/d/a"), IsOkAndHolds(std::string("old")));
  EXPECT_THAT(fs_->ListDir("/d"), IsOkAndHolds(ElementsAre("a")));
}

TEST_F(MemoryFileSystemTest, CrashKeepsSyncedRename) {
  WriteSynced("/d/a", "old");
  ASSERT_OK(fs_->SyncDir("/d"));
  WriteSynced("/d/tmp", "new");
  ASSERT_OK(fs_->Rename("/d/tmp", "/d/a"));
  ASSERT_OK(fs_->SyncDir("/d"));
  fs_->SimulateCrash();
  EXPECT_THAT(Read("/d/a"), IsOkAndHolds(std::string("new")));
  EXPECT_THAT(fs_->ListDir("/d"), IsOkAndHolds(ElementsAre("a")));
}

TEST_F(MemoryFileSystemTest, RenameAcrossDirectoriesSyncedOnlyAtTargetLeavesBothNames) {
  ASSERT_OK(fs_->CreateDirs("/e"));
  WriteSynced("/d/a", "bytes");
  ASSERT_OK(fs_->SyncDir("/d"));
  ASSERT_OK(fs_->SyncDir("/"));
  ASSERT_OK(fs_->Rename("/d/a", "/e/b"));
  ASSERT_OK(fs_->SyncDir("/e"));
  fs_->SimulateCrash();
  EXPECT_THAT(Read("/d/a"), IsOkAndHolds(std::string("bytes")));
  EXPECT_THAT(Read("/e/b"), IsOkAndHolds(std::string("bytes")));
}

TEST_F(MemoryFileSystemTest, CrashUndoesUnsyncedDeleteAndKeepsSyncedOne) {
  WriteSynced("/d/a", "a");
  WriteSynced("/d/b", "b");
  ASSERT_OK(fs_->SyncDir("/d"));
  ASSERT_OK(fs_->Delete("/d/a"));
  ASSERT_OK(fs_->Delete("/d/b"));
  EXPECT_THAT(fs_->ListDir("/d"), IsOkAndHolds(IsEmpty()));
  fs_->SimulateCrash();
  EXPECT_THAT(fs_->ListDir("/d"), IsOkAndHolds(ElementsAre("a", "b")));
  EXPECT_THAT(Read("/d/b"), IsOkAndHolds(std::string("b")));
  ASSERT_OK(fs_->Delete("/d/b"));
  ASSERT_OK(fs_->SyncDir("/d"));
  fs_->SimulateCrash();
  EXPECT_THAT(fs_->ListDir("/d"), IsOkAndHolds(ElementsAre("a")));
}

TEST_F(MemoryFileSystemTest, CreatedDirectoriesNeedTheirParentSynced) {
  ASSERT_OK(fs_->CreateDirs("/d/x/y"));
  ASSERT_OK(fs_->CreateDirs("/d/kept"));
  ASSERT_OK(fs_->SyncDir("/d"));  // makes /d/x and /d/kept durable, not /d/x/y
  fs_->SimulateCrash();
  EXPECT_THAT(fs_->ListDir("/d"), IsOkAndHolds(ElementsAre("kept", "x")));
  EXPECT_THAT(fs_->ListDir("/d/x"), IsOkAndHolds(IsEmpty()));
}

TEST_F(MemoryFileSystemTest, WriteFileAtomicallySurvivesCrash) {
  ASSERT_OK(WriteFileAtomically(*fs_, "/d/config.json", "{}"));
  fs_->SimulateCrash();
  EXPECT_THAT(Read("/d/config.json"), IsOkAndHolds(std::string("{}")));
  EXPECT_THAT(fs_->ListDir("/d"), IsOkAndHolds(ElementsAre("config.json")));
}

TEST_F(MemoryFileSystemTest, SyncEverythingMakesCurrentStateDurable) {
  ASSERT_OK(fs_->CreateDirs("/e/f"));
  ASSERT_OK_AND_ASSIGN(auto file, fs_->OpenForWrite("/e/f/g", OpenMode::kCreateOrTruncate));
  ASSERT_OK(file->WriteAt(0, "unsynced"));
  fs_->SyncEverything();
  fs_->SimulateCrash();
  EXPECT_THAT(Read("/e/f/g"), IsOkAndHolds(std::string("unsynced")));
}

TEST_F(MemoryFileSystemTest, OpenHandleKeepsWorkingAfterCrash) {
  ASSERT_OK_AND_ASSIGN(auto file, fs_->OpenForWrite("/d/f", OpenMode::kCreateOrTruncate));
  ASSERT_OK(file->WriteAt(0, "v1"));
  ASSERT_OK(file->Sync());
  ASSERT_OK(fs_->SyncDir("/d"));
  ASSERT_OK(file->WriteAt(0, "v2"));
  fs_->SimulateCrash();
  EXPECT_THAT(Read("/d/f"), IsOkAndHolds(std::string("v1")));
  ASSERT_OK(file->WriteAt(0, "v3"));
  ASSERT_OK(file->Close());
  EXPECT_THAT(Read("/d/f"), IsOkAndHolds(std::string("v3")));
}

}  // namespace
}  // namespace mxport::fs
