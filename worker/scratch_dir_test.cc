// The scratch dir is created, checked and locked per (job, index) for the life of the object.
#include "worker/scratch_dir.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "common/testing/status_matchers.h"
#include "common/fs/fs_testutil.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mxport::worker {
namespace {

using ::mxport::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

TEST(ScratchDirTest, CreatesTheDirectoryAndLocksItsJobAndIndex) {
  fs::testutil::PosixTempDir tmp;
  const std::string dir = tmp.path() + "/a/b";
  {
    ASSERT_OK_AND_ASSIGN(auto scratch, ScratchDir::Open(dir, "job1", 3));
    EXPECT_EQ(scratch->path(), dir);
    struct stat st;
    ASSERT_EQ(stat(dir.c_str(), &st), 0);
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_EQ(access((dir + "/mxport-job1-worker-3.lock").c_str(), F_OK), 0);
    // A second daemon of the same job and index is refused, naming the lock.
    EXPECT_THAT(ScratchDir::Open(dir, "job1", 3),
                StatusIs(absl::StatusCode::kFailedPrecondition,
                         AllOf(HasSubstr(dir), HasSubstr("mxport-job1-worker-3.lock"),
                               HasSubstr("index 3"))));
    // Other indices and other jobs share the directory.
    EXPECT_OK(ScratchDir::Open(dir, "job1", 4).status());
    EXPECT_OK(ScratchDir::Open(dir, "job2", 3).status());
  }
  // Released with the object.
  EXPECT_NE(access((dir + "/mxport-job1-worker-3.lock").c_str(), F_OK), 0);
  EXPECT_OK(ScratchDir::Open(dir, "job1", 3).status());
}

TEST(ScratchDirTest, BadPathsNameTheDirectory) {
  fs::testutil::PosixTempDir tmp;
  const std::string file = tmp.path() + "/file";
  std::ofstream(file) << "x";
  EXPECT_THAT(ScratchDir::Open(file, "j", 0),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr(file), HasSubstr("not a directory"))));
  EXPECT_THAT(ScratchDir::Open(file + "/sub", "j", 0),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr(file)));
  EXPECT_THAT(ScratchDir::Open("", "j", 0), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ScratchDirTest, ExportsTmpdirAndKeepsACudaCachePathAlreadySet) {
  fs::testutil::PosixTempDir tmp;
  ASSERT_OK_AND_ASSIGN(auto scratch, ScratchDir::Open(tmp.path(), "j", 0));
  const char* old_tmpdir = std::getenv("TMPDIR");
  const std::string saved = old_tmpdir == nullptr ? "" : old_tmpdir;
  unsetenv("CUDA_CACHE_PATH");
  scratch->ExportEnvironment();
  EXPECT_STREQ(std::getenv("TMPDIR"), tmp.path().c_str());
  EXPECT_EQ(std::string(std::getenv("CUDA_CACHE_PATH")), tmp.path() + "/cuda-cache");
  setenv("CUDA_CACHE_PATH", "/elsewhere", 1);
  scratch->ExportEnvironment();
  EXPECT_STREQ(std::getenv("CUDA_CACHE_PATH"), "/elsewhere");
  if (saved.empty()) {
    unsetenv("TMPDIR");
  } else {
    setenv("TMPDIR", saved.c_str(), 1);
  }
}

}  // namespace
}  // namespace mxport::worker
