#include "common/fs/content_hash.h"

#include "common/fs/memory_file_system.h"
#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace mxport::fs {
namespace {

using ::mxport::testing::IsOkAndHolds;

// The bytes below, i * 31 + 7 for i in [0, 3 MiB + 17): spans several 1 MiB reads.
std::string Pattern() {
  std::string data(3 * (1 << 20) + 17, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 31 + 7);
  return data;
}

// Expected digits as printed by `xxh128sum` (xxhash 0.8.1) for the same bytes.
TEST(ContentHashTest, MatchesXxh128sum) {
  EXPECT_EQ(ContentHash(""), "xxh3-128:99aa06d3014798d86001c324468d497f");
  EXPECT_EQ(ContentHash("abc"), "xxh3-128:06b05ab6733a618578af5f94892f3950");
  EXPECT_EQ(ContentHash(Pattern()), "xxh3-128:8413aef4e4cda21fd60b25da5ed5af00");
}

TEST(ContentHashTest, IncrementalEqualsOneShot) {
  const std::string data = Pattern();
  ContentHasher hasher;
  for (size_t at = 0, step = 1; at < data.size(); at += step, step = step * 3 + 1) {
    hasher.Update(absl::string_view(data).substr(at, step));
  }
  EXPECT_EQ(hasher.Finish(), ContentHash(data));
}

TEST(ContentHashTest, FileHashEqualsBytesHash) {
  auto fs = NewMemoryFileSystem();
  const std::string data = Pattern();
  ASSERT_OK(WriteFileAtomically(*fs, "f", data));
  EXPECT_THAT(ContentHashFile(*fs, "f"), IsOkAndHolds(ContentHash(data)));
  EXPECT_FALSE(ContentHashFile(*fs, "missing").ok());
}

}  // namespace
}  // namespace mxport::fs
