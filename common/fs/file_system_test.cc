// Path helpers, and POSIX details the conformance suite cannot check on every file system.
#include "common/fs/file_system.h"

#include <sys/stat.h>

#include <string>

#include "absl/status/status.h"
#include "common/fs/fs_testutil.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mxport::fs {
namespace {

using ::mxport::fs::testutil::PosixTempDir;
using ::mxport::fs::testutil::WriteString;
using ::mxport::testing::IsOkAndHolds;
using ::mxport::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(DirnameTest, Table) {
  struct Case {
    const char* path;
    const char* dirname;
  };
  const Case cases[] = {
      {"a/b", "a"},     {"b", "."},      {"/b", "/"},   {"/", "/"},   {"", "."},
      {"a/b/c", "a/b"}, {"/a/b/", "/a"}, {"a//b", "a"}, {"./x", "."}, {"//b", "/"},
  };
  for (const Case& c : cases) EXPECT_EQ(Dirname(c.path), c.dirname) << "path: " << c.path;
}

TEST(JoinPathTest, Table) {
  struct Case {
    const char* a;
    const char* b;
    const char* joined;
  };
  const Case cases[] = {
      {"a", "b", "a/b"}, {"a/", "b", "a/b"}, {"a", "/b", "a/b"},          {"/", "b", "/b"},
      {"", "b", "b"},    {"a", "", "a"},     {"/x/y", "z/w", "/x/y/z/w"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(JoinPath(c.a, c.b), c.joined) << "a: " << c.a << " b: " << c.b;
  }
}

TEST(PosixFileSystemTest, IsOneProcessWideObject) {
  EXPECT_NE(PosixFileSystem(), nullptr);
  EXPECT_EQ(PosixFileSystem(), PosixFileSystem());
}

TEST(PosixFileSystemTest, ErrorsCarryThePathAndStrerror) {
  PosixTempDir dir;
  ASSERT_FALSE(dir.path().empty());
  FileSystem& fs = *PosixFileSystem();
  const std::string missing = JoinPath(dir.path(), "missing");
  EXPECT_THAT(fs.OpenForRead(missing),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr(missing), HasSubstr("No such file or directory"))));
  ASSERT_OK(fs.CreateDirs(JoinPath(dir.path(), "d/e")));
  EXPECT_THAT(fs.Delete(JoinPath(dir.path(), "d")),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not empty")));
  const std::string to = JoinPath(dir.path(), "to");
  EXPECT_THAT(fs.Rename(missing, to),
              StatusIs(absl::StatusCode::kNotFound, AllOf(HasSubstr(missing), HasSubstr(to))));
}

TEST(PosixFileSystemTest, CreateDirsHandlesAbsoluteTrailingAndDoubledSeparators) {
  PosixTempDir dir;
  ASSERT_FALSE(dir.path().empty());
  FileSystem& fs = *PosixFileSystem();
  ASSERT_OK(fs.CreateDirs(dir.path() + "//x///y/"));
  EXPECT_THAT(fs.IsDirectory(JoinPath(dir.path(), "x/y")), IsOkAndHolds(true));
  EXPECT_OK(fs.CreateDirs("/"));
}

TEST(PosixFileSystemTest, CreatedFilesAreReadableRegularFiles) {
  PosixTempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string path = JoinPath(dir.path(), "f");
  ASSERT_OK(WriteString(*PosixFileSystem(), path, "x"));
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_TRUE(st.st_mode & S_IRUSR);
  EXPECT_TRUE(st.st_mode & S_IWUSR);
}

TEST(PosixFileSystemTest, LargeAllocateThenSparseWrites) {
  PosixTempDir dir;
  ASSERT_FALSE(dir.path().empty());
  FileSystem& fs = *PosixFileSystem();
  const std::string path = JoinPath(dir.path(), "big");
  constexpr uint64_t kSize = 8 << 20;
  ASSERT_OK_AND_ASSIGN(auto file, fs.OpenForWrite(path, OpenMode::kCreateExclusive));
  ASSERT_OK(file->Allocate(kSize));
  ASSERT_OK(file->WriteAt(kSize - 4, "tail"));
  ASSERT_OK(file->WriteAt(0, "head"));
  ASSERT_OK(file->Sync());
  ASSERT_OK(file->Close());
  ASSERT_OK(fs.SyncDir(dir.path()));
  ASSERT_OK_AND_ASSIGN(auto reader, fs.OpenForRead(path));
  EXPECT_EQ(reader->size(), kSize);
  std::string buf(8, '?');
  ASSERT_OK(reader->ReadAt(kSize - 6, 6, buf.data()));
  EXPECT_EQ(buf.substr(0, 6), std::string("\0\0tail", 6));
  EXPECT_THAT(fs.ListDir(dir.path()), IsOkAndHolds(ElementsAre("big")));
}

}  // namespace
}  // namespace mxport::fs
