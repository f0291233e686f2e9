#include "common/fs/sha256.h"

#include "common/fs/memory_file_system.h"
#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace mxport::fs {
namespace {

using ::mxport::testing::IsOkAndHolds;

// FIPS 180-2 test vectors.
TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256Test, FileHashEqualsBytesHashAcrossChunks) {
  auto fs = NewMemoryFileSystem();
  std::string data(3 * (1 << 20) + 17, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 31 + 7);
  ASSERT_OK(WriteFileAtomically(*fs, "f", data));
  EXPECT_THAT(Sha256File(*fs, "f"), IsOkAndHolds(Sha256Hex(data)));
}

}  // namespace
}  // namespace mxport::fs
