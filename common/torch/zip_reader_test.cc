// ZipReader on real torch.save archives (tests/fixtures/torch211), on container variants made
// from them by tests/fixtures/make_zip_variants.py (deflate, Python zipfile, zip64 placeholders),
// and on byte-level mutations of them: every malformed archive must fail with InvalidArgument or
// DataLoss naming the archive, never crash or read out of bounds.
#include "common/torch/zip_reader.h"

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/fs/file_system.h"
#include "common/testing/status_matchers.h"
#include "common/torch/torch_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mxport::torch {
namespace {

using ::mxport::testing::IsOk;
using ::mxport::testing::StatusIs;
using ::testing::AllOf;
using ::testing::AnyOf;
using ::testing::HasSubstr;

constexpr char kName[] = "mutated.pt";

std::string FixturePath(const std::string& relative) {
  return absl::StrCat(MXPORT_SOURCE_DIR, "/tests/fixtures/", relative);
}

std::string ReadFixture(const std::string& relative) {
  absl::StatusOr<std::string> bytes =
      fs::ReadFileToString(*fs::PosixFileSystem(), FixturePath(relative));
  EXPECT_THAT(bytes, IsOk());
  return bytes.ok() ? *bytes : std::string();
}

uint64_t GetLe(const std::string& b, size_t pos, int width) {
  uint64_t v = 0;
  for (int i = width - 1; i >= 0; --i) v = v << 8 | static_cast<uint8_t>(b.at(pos + i));
  return v;
}
void PutLe(std::string& b, size_t pos, int width, uint64_t v) {
  for (int i = 0; i < width; ++i) b.at(pos + i) = static_cast<char>(v >> (8 * i));
}

// The layout of an archive as parsed here, independently of ZipReader (no comment assumed).
struct CentralRecord {
  size_t pos = 0;  // of the central header in the file
  std::string name;
  uint16_t flags = 0;
  uint16_t method = 0;
  uint32_t crc = 0;
  uint64_t csize = 0;
  uint64_t usize = 0;
  uint64_t header_offset = 0;
  size_t extra_pos = 0;  // of the central extra field in the file
  size_t extra_len = 0;
};
struct Layout {
  size_t eocd = 0;
  bool zip64 = false;
  size_t locator = 0;
  size_t z64_eocd = 0;
  uint64_t cd_offset = 0;
  uint64_t cd_size = 0;
  std::vector<CentralRecord> records;

  const CentralRecord& Record(const std::string& suffix) const {
    for (const CentralRecord& r : records) {
      if (r.name.size() >= suffix.size() &&
          r.name.compare(r.name.size() - suffix.size(), suffix.size(), suffix) == 0) {
        return r;
      }
    }
    ADD_FAILURE() << "no record ending in " << suffix;
    return records.front();
  }
  // Offset in the file of an entry's payload, from its local header.
  static size_t DataOffset(const std::string& bytes, const CentralRecord& r) {
    return r.header_offset + 30 + GetLe(bytes, r.header_offset + 26, 2) +
           GetLe(bytes, r.header_offset + 28, 2);
  }
};

Layout ParseLayout(const std::string& b) {
  Layout l;
  l.eocd = b.size() - 22;
  EXPECT_EQ(GetLe(b, l.eocd, 4), 0x06054b50u);
  l.cd_offset = GetLe(b, l.eocd + 16, 4);
  l.cd_size = GetLe(b, l.eocd + 12, 4);
  uint64_t count = GetLe(b, l.eocd + 10, 2);
  if (l.eocd >= 20 && GetLe(b, l.eocd - 20, 4) == 0x07064b50u) {
    l.zip64 = true;
    l.locator = l.eocd - 20;
    l.z64_eocd = GetLe(b, l.locator + 8, 8);
    EXPECT_EQ(GetLe(b, l.z64_eocd, 4), 0x06064b50u);
    count = GetLe(b, l.z64_eocd + 32, 8);
    l.cd_size = GetLe(b, l.z64_eocd + 40, 8);
    l.cd_offset = GetLe(b, l.z64_eocd + 48, 8);
  }
  size_t pos = l.cd_offset;
  for (uint64_t i = 0; i < count; ++i) {
    EXPECT_EQ(GetLe(b, pos, 4), 0x02014b50u);
    CentralRecord r;
    r.pos = pos;
    r.flags = GetLe(b, pos + 8, 2);
    r.method = GetLe(b, pos + 10, 2);
    r.crc = GetLe(b, pos + 16, 4);
    r.csize = GetLe(b, pos + 20, 4);
    r.usize = GetLe(b, pos + 24, 4);
    const size_t name_len = GetLe(b, pos + 28, 2);
    r.extra_len = GetLe(b, pos + 30, 2);
    const size_t comment_len = GetLe(b, pos + 32, 2);
    r.header_offset = GetLe(b, pos + 42, 4);
    r.name = b.substr(pos + 46, name_len);
    r.extra_pos = pos + 46 + name_len;
    // Zip64 extra: the saturated fields in order usize, csize, offset.
    for (size_t e = r.extra_pos; e + 4 <= r.extra_pos + r.extra_len;) {
      const uint64_t id = GetLe(b, e, 2), len = GetLe(b, e + 2, 2);
      if (id == 1) {
        size_t at = e + 4;
        if (r.usize == 0xFFFFFFFF) r.usize = GetLe(b, at, 8), at += 8;
        if (r.csize == 0xFFFFFFFF) r.csize = GetLe(b, at, 8), at += 8;
        if (r.header_offset == 0xFFFFFFFF) r.header_offset = GetLe(b, at, 8);
      }
      e += 4 + len;
    }
    l.records.push_back(r);
    pos += 46 + name_len + r.extra_len + comment_len;
  }
  return l;
}

absl::StatusOr<std::unique_ptr<ZipReader>> OpenBytes(std::string bytes,
                                                     const ZipReaderOptions& options = {}) {
  return ZipReader::Open(NewMemoryRandomAccessFile(kName, std::move(bytes)), kName, 0,
                         UINT64_MAX, options);
}

// A clean failure: InvalidArgument or DataLoss, naming the archive.
#define EXPECT_CLEAN_ZIP_ERROR(status_or, message_matcher)                                   \
  EXPECT_THAT(status_or,                                                                     \
              AnyOf(StatusIs(absl::StatusCode::kInvalidArgument,                             \
                             ::testing::AllOf(HasSubstr(kName), message_matcher)),           \
                    StatusIs(absl::StatusCode::kDataLoss,                                    \
                             ::testing::AllOf(HasSubstr(kName), message_matcher))))

// Opening and reading every entry of `bytes` fails cleanly somewhere, or succeeds; never crashes.
// Returns the first error (OK when everything read).
absl::Status OpenAndReadAll(const std::string& bytes, const ZipReaderOptions& options = {}) {
  absl::StatusOr<std::unique_ptr<ZipReader>> zip = OpenBytes(bytes, options);
  if (!zip.ok()) return zip.status();
  for (const ZipEntry& entry : (*zip)->entries()) {
    absl::StatusOr<std::string> data = (*zip)->ReadEntry(entry);
    if (!data.ok()) return data.status();
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Real archives.

TEST(ZipReaderTest, ReadsRealTorchArchive) {
  const std::string bytes = ReadFixture("torch211/dtypes.pt");
  const Layout layout = ParseLayout(bytes);
  ASSERT_TRUE(layout.zip64);  // torch always writes the zip64 records
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ZipReader> zip, OpenBytes(bytes));
  EXPECT_EQ(zip->name(), kName);

  const std::vector<ZipEntry>& entries = zip->entries();
  ASSERT_EQ(entries.size(), layout.records.size());
  ASSERT_GE(entries.size(), 8u);
  EXPECT_EQ(entries[0].name, "dtypes/data.pkl");
  int data_records = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const ZipEntry& e = entries[i];
    const CentralRecord& r = layout.records[i];
    SCOPED_TRACE(e.name);
    EXPECT_EQ(e.name.rfind("dtypes/", 0), 0u);
    EXPECT_EQ(e.name, r.name);
    EXPECT_EQ(e.method, 0);
    if (e.uncompressed_size > 0) {
      EXPECT_NE(e.crc32, 0u);  // torch writes CRCs
    }
    EXPECT_EQ(e.crc32, r.crc);
    // Sizes come from the central directory: torch's local headers hold zeros.
    EXPECT_EQ(e.compressed_size, r.csize);
    EXPECT_EQ(e.uncompressed_size, r.usize);
    EXPECT_EQ(GetLe(bytes, r.header_offset + 18, 4), 0u);
    EXPECT_EQ(e.header_offset, r.header_offset);
    EXPECT_EQ(e.data_offset, Layout::DataOffset(bytes, r));
    EXPECT_EQ(e.data_offset % 64, 0u) << "payloads are 64-byte aligned";
    EXPECT_EQ(zip->AbsoluteDataOffset(e), e.data_offset);
    EXPECT_EQ(zip->Find(e.name), &e);
    ASSERT_OK_AND_ASSIGN(std::string payload, zip->ReadEntry(e));
    EXPECT_EQ(payload, bytes.substr(e.data_offset, e.compressed_size));
    if (e.name.rfind("dtypes/data/", 0) == 0) ++data_records;
  }
  EXPECT_GE(data_records, 5);
  EXPECT_EQ(zip->Find("dtypes/data"), nullptr);
  EXPECT_EQ(zip->Find("data.pkl"), nullptr);

  auto read = [&](const std::string& name) -> std::string {
    const ZipEntry* e = zip->Find(name);
    if (e == nullptr) return "<missing>";
    absl::StatusOr<std::string> s = zip->ReadEntry(*e);
    return s.ok() ? *s : s.status().ToString();
  };
  EXPECT_EQ(read("dtypes/.format_version"), "1");
  EXPECT_EQ(read("dtypes/.storage_alignment"), "64");
  EXPECT_EQ(read("dtypes/byteorder"), "little");
  EXPECT_EQ(read("dtypes/version"), "3\n");
  EXPECT_EQ(read("dtypes/.data/serialization_id").size(), 40u);
  const std::string pkl = read("dtypes/data.pkl");
  ASSERT_GE(pkl.size(), 3u);
  EXPECT_EQ(pkl.substr(0, 2), "\x80\x02");
  EXPECT_EQ(pkl.back(), '.');

  // ReadEntryRange reads inside the payload and refuses to run past it.
  const ZipEntry& d0 = *zip->Find("dtypes/data/0");
  char buf[4];
  ASSERT_OK(zip->ReadEntryRange(d0, 1, 4, buf));
  EXPECT_EQ(std::string(buf, 4), bytes.substr(d0.data_offset + 1, 4));
  EXPECT_THAT(zip->ReadEntryRange(d0, d0.uncompressed_size - 1, 2, buf),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr(kName)));
  EXPECT_THAT(zip->ReadEntryRange(d0, UINT64_MAX, 1, buf),
              StatusIs(absl::StatusCode::kOutOfRange));
}

TEST(ZipReaderTest, ReadsEveryRealFixture) {
  for (const char* file : {"state_dict.pt", "views.pt", "conj.pt", "nested_archive.pt",
                           "model_optim_rng.pt", "quantized.pt", "sparse.pt", "torchscript.pt"}) {
    SCOPED_TRACE(file);
    const std::string bytes = ReadFixture(absl::StrCat("torch211/", file));
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<ZipReader> zip,
                         OpenBytes(bytes, ZipReaderOptions{.verify_crc = true}));
    EXPECT_EQ(zip->entries().size(), ParseLayout(bytes).records.size());
    for (const ZipEntry& e : zip->entries()) {
      EXPECT_THAT(zip->ReadEntry(e), IsOk()) << e.name;
      if (e.compressed_size > 0) {
        EXPECT_EQ(e.data_offset % 64, 0u) << e.name;
      }
    }
  }
}

TEST(ZipReaderTest, OpensThroughAFileSystem) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<fs::RandomAccessFile> file,
                       fs::PosixFileSystem()->OpenForRead(FixturePath("torch211/views.pt")));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ZipReader> zip,
                       ZipReader::Open(std::move(file), "views.pt"));
  EXPECT_EQ(zip->entries().front().name, "views/data.pkl");
  EXPECT_NE(zip->Find("views/data/0"), nullptr);
}

// ---------------------------------------------------------------------------------------------
// Truncation.

TEST(ZipReaderTest, EveryTruncationFailsCleanly) {
  for (const char* file : {"dtypes.pt", "state_dict.pt", "model_optim_rng.pt"}) {
    const std::string bytes = ReadFixture(absl::StrCat("torch211/", file));
    std::vector<size_t> cuts;
    for (size_t k = 0; k < 20; ++k) cuts.push_back(bytes.size() * k / 20);
    for (size_t k = 1; k <= 100; ++k) cuts.push_back(bytes.size() - k);
    for (size_t cut : cuts) {
      SCOPED_TRACE(absl::StrCat(file, " cut to ", cut, " of ", bytes.size()));
      EXPECT_CLEAN_ZIP_ERROR(OpenBytes(bytes.substr(0, cut)), HasSubstr(""));
      // The same through a window of the whole file, and through TorchFile.
      auto file_obj = NewMemoryRandomAccessFile(kName, bytes);
      EXPECT_CLEAN_ZIP_ERROR(ZipReader::Open(file_obj, kName, 0, cut), HasSubstr(""));
      EXPECT_CLEAN_ZIP_ERROR(TorchFile::OpenFrom(file_obj, kName, 0, cut), HasSubstr(""));
    }
  }
}

TEST(ZipReaderTest, TooSmallAndEmptyInputs) {
  EXPECT_CLEAN_ZIP_ERROR(OpenBytes(""), HasSubstr("too small"));
  EXPECT_CLEAN_ZIP_ERROR(OpenBytes("PK\x05\x06"), HasSubstr("too small"));
  EXPECT_CLEAN_ZIP_ERROR(OpenBytes(std::string(4096, '\0')),
                         HasSubstr("no end-of-central-directory"));
  // A lone, empty end record is a valid empty archive.
  std::string empty_zip(22, '\0');
  PutLe(empty_zip, 0, 4, 0x06054b50);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ZipReader> zip, OpenBytes(empty_zip));
  EXPECT_TRUE(zip->entries().empty());
  // TorchFile refuses it.
  EXPECT_THAT(TorchFile::OpenFrom(NewMemoryRandomAccessFile(kName, empty_zip), kName, 0, 22),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(kName)));
}

// ---------------------------------------------------------------------------------------------
// End records.

class MutationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    original_ = ReadFixture("torch211/dtypes.pt");
    layout_ = ParseLayout(original_);
    ASSERT_TRUE(layout_.zip64);
    ASSERT_GE(layout_.records.size(), 8u);
    bytes_ = original_;
  }
  std::string original_;
  std::string bytes_;
  Layout layout_;
};

TEST_F(MutationTest, UnmutatedOpens) { EXPECT_OK(OpenAndReadAll(bytes_)); }

TEST_F(MutationTest, EndRecordSignatureDestroyed) {
  bytes_[layout_.eocd] = 'X';
  EXPECT_CLEAN_ZIP_ERROR(OpenBytes(bytes_), HasSubstr("no end-of-central-directory record"));
}

TEST_F(MutationTest, EndRecordCommentLengthTooLong) {
  PutLe(bytes_, layout_.eocd + 20, 2, 1);
  EXPECT_CLEAN_ZIP_ERROR(OpenBytes(bytes_), HasSubstr("no end-of-central-directory record"));
}

TEST_F(MutationTest, MultiDiskRejected) {
  PutLe(bytes_, layout_.eocd + 4, 2, 1);
  EXPECT_CLEAN_ZIP_ERROR(OpenBytes(bytes_), HasSubstr("multi-disk"));
}

TEST_F(MutationTest, CentralDirectoryOffsetPastTheEnd) {
  for (uint64_t offset : {uint64_t{bytes_.size()}, uint64_t{bytes_.size()} + 1000,
                          uint64_t{0xFFFFFFFF}, uint64_t{1} << 62, UINT64_MAX}) {
    SCOPED_TRACE(offset);
    std::string b = bytes_;
    PutLe(b, layout_.z64_eocd + 48, 8, offset);
    EXPECT_CLEAN_ZIP_ERROR(OpenBytes(b), HasSubstr("central directory"));
  }
}

TEST_F(MutationTest, CentralDirectorySizePastTheEnd) {
  for (uint64_t size : {layout_.cd_size + 1, uint64_t{1} << 40, UINT64_MAX}) {
    SCOPED_TRACE(size);
    std::string b = bytes_;
    PutLe(b, layout_.z64_eocd + 40, 8, size);
    EXPECT_CLEAN_ZIP_ERROR(OpenBytes(b), HasSubstr("out of range"));
  }
}

TEST_F(MutationTest, CentralDirectoryOffsetIntoAPayload) {
  const CentralRecord& pkl = layout_.records[0];
  PutLe(bytes_, layout_.z64_eocd + 48, 8, Layout::DataOffset(bytes_, pkl));
  EXPECT_CLEAN_ZIP_ERROR(OpenBytes(bytes_), HasSubstr("central directory entry 0 is malformed"));
}

TEST_F(MutationTest, EntryCountHuge) {
  for (uint64_t count : {uint64_t{1} << 22 | 1, uint64_t{1} << 40, UINT64_MAX}) {
    SCOPED_TRACE(count);
    std::string b = bytes_;
    PutLe(b, layout_.z64_eocd + 32, 8, count);
    EXPECT_CLEAN_ZIP_ERROR(OpenBytes(b), HasSubstr("too many entries"));
  }
  // Within max_entries but more than the directory can hold.
  PutLe(bytes_, layout_.z64_eocd + 32, 8, layout_.records.size() + 1000);
  EXPECT_CLEAN_ZIP_ERROR(OpenBytes(bytes_), HasSubstr("cannot hold"));
}

TEST_F(MutationTest, EntryCountOneTooMany) {
  // The directory has room (count*46 <= size) but the extra entry is not there.
  PutLe(bytes_, layout_.z64_eocd + 32, 8, layout_.records.size() + 1);
  EXPECT_CLEAN_ZIP_ERROR(OpenBytes(bytes_), HasSubstr("is malformed"));
}

// With max_entries raised to the type's limit, an entry count whose product with the 46-byte
// header size wraps around 2^64 must still be rejected before anything is allocated for it.
TEST_F(MutationTest, EntryCountWrappingTheDirectorySizeCheck) {
  // 46 * count == 2^64 + r with r <= the directory size, so count * 46 wraps to r.
  const uint64_t count = UINT64_MAX / 46 + 1;
  ASSERT_LE(count * 46, layout_.cd_size);  // wraps (unsigned arithmetic)
  PutLe(bytes_, layout_.z64_eocd + 32, 8, count);
  ZipReaderOptions options;
  options.max_entries = UINT64_MAX;
  EXPECT_CLEAN_ZIP_ERROR(OpenBytes(bytes_, options), HasSubstr("cannot hold"));
}

TEST_F(MutationTest, Zip64LocatorOutOfRange) {
  for (uint64_t offset : {uint64_t{layout_.locator}, uint64_t{layout_.locator} - 55,
                          uint64_t{bytes_.size()}, uint64_t{1} << 50, UINT64_MAX}) {
    SCOPED_TRACE(offset);
    std::string b = bytes_;
    PutLe(b, layout_.locator + 8, 8, offset);
    EXPECT_CLEAN_ZIP_ERROR(OpenBytes(b), HasSubstr("zip64 end-of-directory offset"));
  }
  // In range but not at a zip64 end record.
  PutLe(bytes_, layout_.locator + 8, 8, 0);
  EXPECT_CLEAN_ZIP_ERROR(OpenBytes(bytes_), HasSubstr("bad zip64 end-of-directory signature"));
}

TEST_F(MutationTest, Zip64EndRecordSignatureDestroyed) {
  bytes_[layout_.z64_eocd + 1] = 'X';
  EXPECT_CLEAN_ZIP_ERROR(OpenBytes(bytes_), HasSubstr("bad zip64 end-of-directory signature"));
}

TEST_F(MutationTest, LocatorDestroyedFallsBackToTheClassicRecord) {
  // Without the locator the classic record's own fields are used; in a small torch archive
  // they are exact (not saturated), so the archive still opens.
  bytes_[layout_.locator] = 'X';
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ZipReader> zip, OpenBytes(bytes_));
  EXPECT_EQ(zip->entries().size(), layout_.records.size());
  // With saturated classic fields and no locator, it is an error.
  PutLe(bytes_, layout_.eocd + 16, 4, 0xFFFFFFFF);
  EXPECT_CLEAN_ZIP_ERROR(OpenBytes(bytes_), HasSubstr("saturated but no zip64 locator"));
}

// ---------------------------------------------------------------------------------------------
// Central directory entries.

TEST_F(MutationTest, CentralHeaderSignatureDestroyed) {
  bytes_[layout_.records[3].pos] = 'X';
  EXPECT_CLEAN_ZIP_ERROR(OpenBytes(bytes_), HasSubstr("central directory entry 3 is malformed"));
}

TEST_F(MutationTest, CentralNameLengthOverrunsTheDirectory) {
  PutLe(bytes_, layout_.records.back().pos + 28, 2, 0xFFFF);
  EXPECT_CLEAN_ZIP_ERROR(OpenBytes(bytes_), HasSubstr("overruns the directory"));
}

TEST_F(MutationTest, EncryptedFlagSet) {
  const CentralRecord& r = layout_.Record("/data/1");
  PutLe(bytes_, r.pos + 8, 2, r.flags | 1);
  EXPECT_CLEAN_ZIP_ERROR(OpenBytes(bytes_), AllOf(HasSubstr(r.name), HasSubstr("encrypted")));
}

TEST_F(MutationTest, UnknownCompressionMethod) {
  for (uint16_t method : {1, 9, 12, 14, 93, 99, 0xFFFF}) {
    SCOPED_TRACE(method);
    std::string b = bytes_;
    const CentralRecord& r = layout_.Record("/data/2");
    PutLe(b, r.pos + 10, 2, method);
    EXPECT_CLEAN_ZIP_ERROR(OpenBytes(b), AllOf(HasSubstr(r.name),
                                               HasSubstr(absl::StrCat("method ", method))));
  }
}

TEST_F(MutationTest, StoredEntryWithDifferentSizes) {
  const CentralRecord& r = layout_.Record("/data/0");
  PutLe(bytes_, r.pos + 20, 4, r.csize + 1);
  EXPECT_CLEAN_ZIP_ERROR(OpenBytes(bytes_), HasSubstr("stored but its sizes differ"));
}

TEST_F(MutationTest, CompressedSizeHuge) {
  for (uint64_t size : {uint64_t{0xFFFFFFFE}, uint64_t{0x80000000},
                        uint64_t{layout_.cd_offset}}) {
    SCOPED_TRACE(size);
    std::string b = bytes_;
    const CentralRecord& r = layout_.Record("/data/3");
    PutLe(b, r.pos + 20, 4, size);
    PutLe(b, r.pos + 24, 4, size);
    EXPECT_CLEAN_ZIP_ERROR(OpenBytes(b), AllOf(HasSubstr(r.name),
                                               HasSubstr("runs into the central directory")));
  }
}

TEST_F(MutationTest, SaturatedSizeWithoutZip64Extra) {
  const CentralRecord& r = layout_.Record("/data/3");
  PutLe(bytes_, r.pos + 20, 4, 0xFFFFFFFF);
  PutLe(bytes_, r.pos + 24, 4, 0xFFFFFFFF);
  EXPECT_CLEAN_ZIP_ERROR(OpenBytes(bytes_), HasSubstr("no zip64 extra field"));
}

TEST_F(MutationTest, EntryGrownOverTheNextLocalHeader) {
  // data.pkl's payload grown by 100 bytes covers the next entry's local header.
  const CentralRecord& r = layout_.records[0];
  PutLe(bytes_, r.pos + 20, 4, r.csize + 100);
  PutLe(bytes_, r.pos + 24, 4, r.usize + 100);
  EXPECT_CLEAN_ZIP_ERROR(OpenBytes(bytes_),
                         AllOf(HasSubstr("overlap"), HasSubstr(layout_.records[0].name),
                               HasSubstr(layout_.records[1].name)));
}

TEST_F(MutationTest, SelfOverlappingArchive) {
  // A copy of entry 1's local header (name included, no extra field) is planted inside
  // data.pkl's payload, and entry 1's directory record points at it: every header check
  // passes, but entry 1's bytes now lie inside entry 0's.
  const CentralRecord& victim = layout_.records[1];
  const size_t planted = Layout::DataOffset(bytes_, layout_.records[0]) + 128;
  ASSERT_LT(planted + 30 + victim.name.size() + victim.csize,
            Layout::DataOffset(bytes_, layout_.records[0]) + layout_.records[0].csize);
  bytes_.replace(planted, 30, original_, victim.header_offset, 30);
  PutLe(bytes_, planted + 28, 2, 0);  // no extra field
  bytes_.replace(planted + 30, victim.name.size(), victim.name);
  PutLe(bytes_, victim.pos + 42, 4, planted);
  EXPECT_CLEAN_ZIP_ERROR(OpenBytes(bytes_),
                         AllOf(HasSubstr("overlap"), HasSubstr(layout_.records[0].name),
                               HasSubstr(victim.name)));
}

TEST_F(MutationTest, TwoEntriesSharingOneLocalHeader) {
  // Directory record 2 points at record 1's local header; the names differ.
  PutLe(bytes_, layout_.records[2].pos + 42, 4, layout_.records[1].header_offset);
  EXPECT_CLEAN_ZIP_ERROR(OpenBytes(bytes_),
                         AllOf(HasSubstr(layout_.records[2].name),
                               HasSubstr("local header name differs")));
}

TEST_F(MutationTest, DuplicateEntryName) {
  // data/1 renamed to data/2 (same length) in both its headers.
  const CentralRecord& r = layout_.Record("/data/1");
  const std::string twin = layout_.Record("/data/2").name;
  ASSERT_EQ(r.name.size(), twin.size());
  bytes_.replace(r.pos + 46, twin.size(), twin);
  bytes_.replace(r.header_offset + 30, twin.size(), twin);
  EXPECT_CLEAN_ZIP_ERROR(OpenBytes(bytes_), AllOf(HasSubstr(twin), HasSubstr("appears twice")));
}

TEST_F(MutationTest, LocalHeaderOffsetOutOfRange) {
  for (uint64_t offset : {uint64_t{layout_.cd_offset}, uint64_t{layout_.cd_offset} - 29,
                          uint64_t{bytes_.size()}, uint64_t{0xFFFFFFFE}}) {
    SCOPED_TRACE(offset);
    std::string b = bytes_;
    PutLe(b, layout_.records[4].pos + 42, 4, offset);
    EXPECT_CLEAN_ZIP_ERROR(OpenBytes(b), HasSubstr("bad local header offset"));
  }
}

TEST_F(MutationTest, LocalHeaderSignatureDestroyed) {
  bytes_[layout_.records[4].header_offset + 2] = 'X';
  EXPECT_CLEAN_ZIP_ERROR(OpenBytes(bytes_), AllOf(HasSubstr(layout_.records[4].name),
                                                  HasSubstr("bad local header signature")));
}

TEST_F(MutationTest, LocalHeaderNameMismatch) {
  const CentralRecord& r = layout_.Record("/data/0");
  bytes_[r.header_offset + 30 + r.name.size() - 1] = 'X';
  EXPECT_CLEAN_ZIP_ERROR(OpenBytes(bytes_), AllOf(HasSubstr(r.name),
                                                  HasSubstr("local header name differs")));
}

TEST_F(MutationTest, LocalHeaderNameLengthMismatch) {
  const CentralRecord& r = layout_.Record("/data/0");
  PutLe(bytes_, r.header_offset + 26, 2, r.name.size() + 1);
  EXPECT_CLEAN_ZIP_ERROR(OpenBytes(bytes_), HasSubstr("local header name differs"));
}

TEST_F(MutationTest, LocalExtraLengthPushesPayloadIntoTheDirectory) {
  const CentralRecord& last = layout_.records.back();
  PutLe(bytes_, last.header_offset + 28, 2, 0xFFFF);
  EXPECT_CLEAN_ZIP_ERROR(OpenBytes(bytes_), AllOf(HasSubstr(last.name),
                                                  HasSubstr("runs into the central directory")));
}

TEST_F(MutationTest, CorruptPayloadFailsOnlyWithVerifyCrc) {
  const CentralRecord& r = layout_.Record("/data/4");
  const size_t at = Layout::DataOffset(bytes_, r) + 7;
  bytes_[at] = static_cast<char>(bytes_[at] ^ 0x20);

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ZipReader> lenient, OpenBytes(bytes_));
  ASSERT_OK_AND_ASSIGN(std::string data, lenient->ReadEntry(*lenient->Find(r.name)));
  EXPECT_EQ(data, bytes_.substr(Layout::DataOffset(bytes_, r), r.csize));
  EXPECT_NE(data, original_.substr(Layout::DataOffset(bytes_, r), r.csize));

  ZipReaderOptions options;
  options.verify_crc = true;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ZipReader> strict, OpenBytes(bytes_, options));
  EXPECT_THAT(strict->ReadEntry(*strict->Find(r.name)),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr(kName), HasSubstr(r.name), HasSubstr("CRC-32"))));
  // The other entries still verify.
  for (const ZipEntry& e : strict->entries()) {
    if (e.name != r.name) {
      EXPECT_THAT(strict->ReadEntry(e), IsOk()) << e.name;
    }
  }
}

TEST_F(MutationTest, CorruptCrcFieldFailsWithVerifyCrc) {
  const CentralRecord& r = layout_.Record("/data/5");
  PutLe(bytes_, r.pos + 16, 4, r.crc ^ 1);
  ZipReaderOptions options;
  options.verify_crc = true;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ZipReader> zip, OpenBytes(bytes_, options));
  EXPECT_THAT(zip->ReadEntry(*zip->Find(r.name)), StatusIs(absl::StatusCode::kDataLoss));
  // A zero CRC means "absent" and is not checked.
  PutLe(bytes_, r.pos + 16, 4, 0);
  ASSERT_OK_AND_ASSIGN(zip, OpenBytes(bytes_, options));
  EXPECT_THAT(zip->ReadEntry(*zip->Find(r.name)), IsOk());
}

TEST_F(MutationTest, MaxReadBytesBoundsReadEntry) {
  ZipReaderOptions options;
  options.max_read_bytes = 16;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ZipReader> zip, OpenBytes(bytes_, options));
  const ZipEntry& pkl = zip->entries().front();
  EXPECT_THAT(zip->ReadEntry(pkl), StatusIs(absl::StatusCode::kResourceExhausted,
                                           AllOf(HasSubstr(kName), HasSubstr(pkl.name))));
  EXPECT_THAT(zip->ReadEntry(*zip->Find("dtypes/.storage_alignment")), IsOk());
}

TEST_F(MutationTest, MaxEntriesOption) {
  ZipReaderOptions options;
  options.max_entries = layout_.records.size() - 1;
  EXPECT_CLEAN_ZIP_ERROR(OpenBytes(bytes_, options), HasSubstr("too many entries"));
  options.max_entries = layout_.records.size();
  EXPECT_THAT(OpenBytes(bytes_, options), IsOk());
}

// Every single-byte change of the end records and of the central directory fails cleanly or
// opens; whatever opens reads back only in-bounds bytes (checked by ASan in sanitizer builds).
TEST_F(MutationTest, EveryByteOfTheDirectoryFlipped) {
  int failures = 0, opened = 0;
  for (size_t pos = layout_.cd_offset; pos < bytes_.size(); ++pos) {
    for (uint8_t mask : {0x01, 0x80, 0xFF}) {
      std::string b = bytes_;
      b[pos] = static_cast<char>(b[pos] ^ mask);
      absl::Status s = OpenAndReadAll(b);
      if (s.ok()) {
        ++opened;
        continue;
      }
      ++failures;
      EXPECT_THAT(s, AnyOf(StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(kName)),
                           StatusIs(absl::StatusCode::kDataLoss, HasSubstr(kName))))
          << "byte " << pos << " ^ " << int{mask};
    }
  }
  EXPECT_GT(failures, 0);
  EXPECT_GT(opened, 0);  // e.g. timestamps and attributes are not checked
}

// ---------------------------------------------------------------------------------------------
// Python zipfile's layout (no zip64 records, no alignment): classic end record mutations.

class ClassicZipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bytes_ = ReadFixture("zip_variants/zipfile_state_dict.pt");
    layout_ = ParseLayout(bytes_);
    ASSERT_FALSE(layout_.zip64);
  }
  std::string bytes_;
  Layout layout_;
};

TEST_F(ClassicZipTest, OpensWithTheSameRecordsAsTheTorchLayout) {
  const std::string torch_bytes = ReadFixture("torch211/state_dict.pt");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ZipReader> zip, OpenBytes(bytes_));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ZipReader> torch_zip, OpenBytes(torch_bytes));
  ASSERT_EQ(zip->entries().size(), torch_zip->entries().size());
  for (size_t i = 0; i < zip->entries().size(); ++i) {
    const ZipEntry& e = zip->entries()[i];
    EXPECT_EQ(e.name, torch_zip->entries()[i].name);
    EXPECT_EQ(e.crc32, torch_zip->entries()[i].crc32);
    EXPECT_EQ(zip->ReadEntry(e).value(), torch_zip->ReadEntry(torch_zip->entries()[i]).value());
  }
}

TEST_F(ClassicZipTest, DirectoryOffsetPastTheEnd) {
  for (uint32_t offset : {static_cast<uint32_t>(bytes_.size()), 0xFFFFFFF0u}) {
    std::string b = bytes_;
    PutLe(b, layout_.eocd + 16, 4, offset);
    EXPECT_CLEAN_ZIP_ERROR(OpenBytes(b), HasSubstr("central directory"));
  }
  PutLe(bytes_, layout_.eocd + 12, 4, layout_.cd_size + 1);
  EXPECT_CLEAN_ZIP_ERROR(OpenBytes(bytes_), HasSubstr("out of range"));
}

TEST_F(ClassicZipTest, SaturatedFieldsWithoutLocator) {
  PutLe(bytes_, layout_.eocd + 10, 2, 0xFFFF);
  EXPECT_CLEAN_ZIP_ERROR(OpenBytes(bytes_), HasSubstr("saturated but no zip64 locator"));
}

TEST_F(ClassicZipTest, EntryCountLargerThanTheDirectory) {
  PutLe(bytes_, layout_.eocd + 10, 2, 0xFFFE);
  EXPECT_CLEAN_ZIP_ERROR(OpenBytes(bytes_), HasSubstr("cannot hold"));
}

// ---------------------------------------------------------------------------------------------
// Comments and windows.

TEST(ZipReaderTest, TrailingComment) {
  const std::string original = ReadFixture("torch211/views.pt");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ZipReader> plain, OpenBytes(original));
  for (const std::string& comment :
       {std::string("x"), std::string("made by a test"), std::string(0xFFFF, 'c'),
        // A comment that looks like an end record whose own comment does not reach the end.
        std::string("PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x7f\0 tail", 27)}) {
    SCOPED_TRACE(comment.size());
    std::string b = original;
    PutLe(b, b.size() - 2, 2, comment.size());
    b += comment;
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<ZipReader> zip, OpenBytes(b));
    ASSERT_EQ(zip->entries().size(), plain->entries().size());
    for (size_t i = 0; i < zip->entries().size(); ++i) {
      EXPECT_EQ(zip->entries()[i].name, plain->entries()[i].name);
      EXPECT_EQ(zip->entries()[i].data_offset, plain->entries()[i].data_offset);
      EXPECT_EQ(zip->ReadEntry(zip->entries()[i]).value(),
                plain->ReadEntry(plain->entries()[i]).value());
    }
    // TorchFile reads through the comment too.
    EXPECT_THAT(TorchFile::OpenFrom(NewMemoryRandomAccessFile(kName, b), kName, 0, b.size()),
                IsOk());
  }
}

TEST(ZipReaderTest, ArchiveEmbeddedInABiggerBuffer) {
  const std::string zip_bytes = ReadFixture("torch211/views.pt");
  // Junk around it, including zip signatures, so only the window's bounds can find the archive.
  std::string prefix = "PK\x03\x04 not a zip ";
  prefix.resize(1000, '\xAB');
  std::string suffix = "trailing PK\x05\x06 junk ";
  suffix.resize(517, '\xCD');
  const std::string buffer = prefix + zip_bytes + suffix;
  auto file = NewMemoryRandomAccessFile(kName, buffer);

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ZipReader> plain, OpenBytes(zip_bytes));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ZipReader> zip,
                       ZipReader::Open(file, kName, prefix.size(), zip_bytes.size()));
  ASSERT_EQ(zip->entries().size(), plain->entries().size());
  for (size_t i = 0; i < zip->entries().size(); ++i) {
    const ZipEntry& e = zip->entries()[i];
    SCOPED_TRACE(e.name);
    EXPECT_EQ(e.name, plain->entries()[i].name);
    EXPECT_EQ(e.header_offset, plain->entries()[i].header_offset);  // window-relative
    EXPECT_EQ(e.data_offset, plain->entries()[i].data_offset);
    EXPECT_EQ(zip->AbsoluteDataOffset(e), prefix.size() + e.data_offset);
    ASSERT_OK_AND_ASSIGN(std::string data, zip->ReadEntry(e));
    EXPECT_EQ(data, buffer.substr(zip->AbsoluteDataOffset(e), e.compressed_size));
    EXPECT_EQ(data, plain->ReadEntry(plain->entries()[i]).value());
  }

  // TorchFile over the same window: every tensor matches the standalone file, and contiguous
  // ranges are absolute offsets in the bigger buffer.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TorchFile> embedded,
                       TorchFile::OpenFrom(file, kName, prefix.size(), zip_bytes.size()));
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<TorchFile> standalone,
      TorchFile::OpenFrom(NewMemoryRandomAccessFile("views.pt", zip_bytes), "views.pt", 0,
                          zip_bytes.size()));
  ASSERT_EQ(embedded->tensors().size(), standalone->tensors().size());
  int ranges = 0;
  for (size_t i = 0; i < embedded->tensors().size(); ++i) {
    const pickle::TensorRef& t = *embedded->tensors()[i].tensor;
    ASSERT_OK_AND_ASSIGN(std::string got, embedded->ReadTensor(t));
    EXPECT_EQ(got, standalone->ReadTensor(*standalone->tensors()[i].tensor).value());
    absl::StatusOr<FileRange> range = embedded->ContiguousRange(t);
    if (range.ok()) {
      EXPECT_GE(range->offset, prefix.size());
      EXPECT_EQ(buffer.substr(range->offset, range->length), got);
      ++ranges;
    }
  }
  EXPECT_GT(ranges, 3);

  // The whole buffer is not an archive (junk after the end record), nor a window cut short.
  EXPECT_CLEAN_ZIP_ERROR(ZipReader::Open(file, kName), HasSubstr("no end-of-central-directory"));
  EXPECT_CLEAN_ZIP_ERROR(ZipReader::Open(file, kName, prefix.size(), zip_bytes.size() - 1),
                         HasSubstr(""));
  // Windows outside the file.
  EXPECT_CLEAN_ZIP_ERROR(ZipReader::Open(file, kName, buffer.size() + 1, 0),
                         HasSubstr("past the end"));
  EXPECT_CLEAN_ZIP_ERROR(ZipReader::Open(file, kName, prefix.size(), buffer.size()),
                         HasSubstr("past the end"));
  EXPECT_CLEAN_ZIP_ERROR(TorchFile::OpenFrom(file, kName, prefix.size(), buffer.size()),
                         HasSubstr("past the file's end"));
  EXPECT_CLEAN_ZIP_ERROR(TorchFile::OpenFrom(file, kName, UINT64_MAX, 1), HasSubstr(""));
}

// ---------------------------------------------------------------------------------------------
// Deflate.

// Opens a fixture (path relative to tests/fixtures) as a TorchFile over its bytes in memory.
absl::StatusOr<std::unique_ptr<TorchFile>> OpenTorch(const std::string& relative) {
  const std::string bytes = ReadFixture(relative);
  return TorchFile::OpenFrom(NewMemoryRandomAccessFile(relative, bytes), relative, 0,
                             bytes.size());
}

void ExpectSameTensors(const TorchFile& got, const TorchFile& want) {
  ASSERT_EQ(got.tensors().size(), want.tensors().size());
  ASSERT_FALSE(want.tensors().empty());
  for (size_t i = 0; i < want.tensors().size(); ++i) {
    const TensorEntry& g = got.tensors()[i];
    const TensorEntry& w = want.tensors()[i];
    SCOPED_TRACE(w.path);
    EXPECT_EQ(g.path, w.path);
    EXPECT_EQ(g.tensor->dtype, w.tensor->dtype);
    EXPECT_EQ(g.tensor->shape, w.tensor->shape);
    EXPECT_EQ(g.tensor->stride, w.tensor->stride);
    EXPECT_EQ(g.tensor->storage_offset, w.tensor->storage_offset);
    ASSERT_OK_AND_ASSIGN(std::string want_bytes, want.ReadTensor(*w.tensor));
    ASSERT_OK_AND_ASSIGN(std::string got_bytes, got.ReadTensor(*g.tensor));
    EXPECT_EQ(got_bytes, want_bytes);
  }
}

TEST(ZipReaderTest, DeflatedArchivesReadLikeTheStoredOriginals) {
  for (const char* stem : {"state_dict", "views", "dtypes"}) {
    SCOPED_TRACE(stem);
    const std::string deflated_bytes =
        ReadFixture(absl::StrCat("zip_variants/deflated_", stem, ".pt"));
    const std::string stored_bytes = ReadFixture(absl::StrCat("torch211/", stem, ".pt"));
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<ZipReader> deflated,
                         OpenBytes(deflated_bytes, ZipReaderOptions{.verify_crc = true}));
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<ZipReader> stored, OpenBytes(stored_bytes));
    ASSERT_EQ(deflated->entries().size(), stored->entries().size());
    int shrunk = 0;
    for (size_t i = 0; i < stored->entries().size(); ++i) {
      const ZipEntry& d = deflated->entries()[i];
      const ZipEntry& s = stored->entries()[i];
      SCOPED_TRACE(s.name);
      EXPECT_EQ(d.name, s.name);
      EXPECT_EQ(d.method, 8);
      EXPECT_EQ(d.uncompressed_size, s.uncompressed_size);
      EXPECT_EQ(d.crc32, s.crc32);
      if (d.compressed_size < d.uncompressed_size) ++shrunk;
      ASSERT_OK_AND_ASSIGN(std::string got, deflated->ReadEntry(d));
      EXPECT_EQ(got, stored->ReadEntry(s).value());
      // Ranges of a deflated entry inflate the entry, then copy.
      if (s.uncompressed_size >= 3) {
        char buf[2];
        ASSERT_OK(deflated->ReadEntryRange(d, 1, 2, buf));
        EXPECT_EQ(std::string(buf, 2), got.substr(1, 2));
      }
    }
    EXPECT_GT(shrunk, 0);

    ASSERT_OK_AND_ASSIGN(std::unique_ptr<TorchFile> got,
                         OpenTorch(absl::StrCat("zip_variants/deflated_", stem, ".pt")));
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<TorchFile> want,
                         OpenTorch(absl::StrCat("torch211/", stem, ".pt")));
    EXPECT_EQ(got->archive_prefix(), stem);
    ExpectSameTensors(*got, *want);
    // No tensor of a deflated record is a plain file range.
    for (const TensorEntry& t : got->tensors()) {
      EXPECT_THAT(got->ContiguousRange(*t.tensor),
                  StatusIs(absl::StatusCode::kFailedPrecondition))
          << t.path;
    }
  }
}

TEST(ZipReaderTest, CorruptDeflateStreamFailsCleanly) {
  const std::string original = ReadFixture("zip_variants/deflated_state_dict.pt");
  const Layout layout = ParseLayout(original);
  const CentralRecord& pkl = layout.records[0];
  ASSERT_EQ(pkl.method, 8);
  {
    // 0xFF starts a final block of the reserved type 3.
    std::string b = original;
    const size_t data = Layout::DataOffset(b, pkl);
    for (size_t i = 0; i < pkl.csize; ++i) b[data + i] = '\xFF';
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<ZipReader> zip, OpenBytes(b));
    EXPECT_THAT(zip->ReadEntry(zip->entries()[0]),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         AllOf(HasSubstr(kName), HasSubstr(pkl.name), HasSubstr("corrupt"))));
    EXPECT_CLEAN_ZIP_ERROR(TorchFile::OpenFrom(NewMemoryRandomAccessFile(kName, b), kName, 0,
                                               b.size()),
                           HasSubstr("corrupt"));
  }
  for (int64_t delta : {-1, 1, 1000}) {
    // The declared uncompressed size disagrees with the stream.
    SCOPED_TRACE(delta);
    std::string b = original;
    PutLe(b, pkl.pos + 24, 4, pkl.usize + delta);
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<ZipReader> zip, OpenBytes(b));
    EXPECT_THAT(zip->ReadEntry(zip->entries()[0]),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("corrupt")));
  }
  {
    // A huge declared size is refused before inflating.
    std::string b = original;
    PutLe(b, pkl.pos + 24, 4, 0xFFFFFFF0);
    ZipReaderOptions options;
    options.max_read_bytes = 1 << 20;
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<ZipReader> zip, OpenBytes(b, options));
    EXPECT_THAT(zip->ReadEntry(zip->entries()[0]),
                StatusIs(absl::StatusCode::kResourceExhausted));
  }
  {
    // Every single-byte corruption of the deflated pickle is caught by inflate or by the CRC
    // (except in the last byte, whose high bits may be padding after the final block).
    const size_t data = Layout::DataOffset(original, pkl);
    ZipReaderOptions options;
    options.verify_crc = true;
    for (size_t i = 0; i + 1 < pkl.csize; ++i) {
      std::string b = original;
      b[data + i] = static_cast<char>(b[data + i] ^ 0x04);
      ASSERT_OK_AND_ASSIGN(std::unique_ptr<ZipReader> zip, OpenBytes(b, options));
      EXPECT_CLEAN_ZIP_ERROR(zip->ReadEntry(zip->entries()[0]), HasSubstr(pkl.name))
          << "byte " << i;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Zip64 placeholders.

TEST(ZipReaderTest, Zip64PlaceholdersInTheCentralDirectory) {
  for (const char* stem : {"state_dict", "views"}) {
    SCOPED_TRACE(stem);
    const std::string bytes = ReadFixture(absl::StrCat("zip_variants/zip64_", stem, ".pt"));
    const Layout layout = ParseLayout(bytes);
    ASSERT_TRUE(layout.zip64);
    // The fixture really saturates everything.
    EXPECT_EQ(GetLe(bytes, layout.eocd + 16, 4), 0xFFFFFFFFu);
    EXPECT_EQ(GetLe(bytes, layout.eocd + 10, 2), 0xFFFFu);
    for (const CentralRecord& r : layout.records) {
      EXPECT_EQ(GetLe(bytes, r.pos + 20, 4), 0xFFFFFFFFu);
      EXPECT_EQ(GetLe(bytes, r.pos + 24, 4), 0xFFFFFFFFu);
      EXPECT_EQ(GetLe(bytes, r.pos + 42, 4), 0xFFFFFFFFu);
    }

    const std::string stored_bytes = ReadFixture(absl::StrCat("torch211/", stem, ".pt"));
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<ZipReader> zip,
                         OpenBytes(bytes, ZipReaderOptions{.verify_crc = true}));
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<ZipReader> stored, OpenBytes(stored_bytes));
    ASSERT_EQ(zip->entries().size(), stored->entries().size());
    for (size_t i = 0; i < zip->entries().size(); ++i) {
      const ZipEntry& e = zip->entries()[i];
      SCOPED_TRACE(e.name);
      EXPECT_EQ(e.name, stored->entries()[i].name);
      EXPECT_EQ(e.compressed_size, stored->entries()[i].compressed_size);
      EXPECT_EQ(e.uncompressed_size, stored->entries()[i].uncompressed_size);
      EXPECT_EQ(e.header_offset, layout.records[i].header_offset);
      EXPECT_EQ(e.data_offset % 64, 0u);
      EXPECT_EQ(zip->ReadEntry(e).value(), stored->ReadEntry(stored->entries()[i]).value());
    }
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<TorchFile> got,
                         OpenTorch(absl::StrCat("zip_variants/zip64_", stem, ".pt")));
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<TorchFile> want,
                         OpenTorch(absl::StrCat("torch211/", stem, ".pt")));
    ExpectSameTensors(*got, *want);
  }
}

TEST(ZipReaderTest, Zip64ExtraFieldMutations) {
  const std::string original = ReadFixture("zip_variants/zip64_state_dict.pt");
  const Layout layout = ParseLayout(original);
  const CentralRecord& r = layout.records[2];
  ASSERT_EQ(r.extra_len, 28u);
  ASSERT_EQ(GetLe(original, r.extra_pos, 2), 1u);
  {
    std::string b = original;  // too short for the three saturated values
    PutLe(b, r.extra_pos + 2, 2, 16);
    EXPECT_CLEAN_ZIP_ERROR(OpenBytes(b), AllOf(HasSubstr(r.name), HasSubstr("too short")));
  }
  {
    std::string b = original;  // longer than the extra area
    PutLe(b, r.extra_pos + 2, 2, 25);
    EXPECT_CLEAN_ZIP_ERROR(OpenBytes(b), AllOf(HasSubstr(r.name), HasSubstr("overruns")));
  }
  {
    std::string b = original;  // a different id: the placeholders have no values
    PutLe(b, r.extra_pos, 2, 0x5455);
    EXPECT_CLEAN_ZIP_ERROR(OpenBytes(b), HasSubstr("no zip64 extra field"));
  }
  for (uint64_t huge : {uint64_t{1} << 32, uint64_t{1} << 63, UINT64_MAX}) {
    SCOPED_TRACE(huge);
    std::string b = original;  // huge 64-bit sizes, then a huge 64-bit header offset
    PutLe(b, r.extra_pos + 4, 8, huge);
    PutLe(b, r.extra_pos + 12, 8, huge);
    EXPECT_CLEAN_ZIP_ERROR(OpenBytes(b), HasSubstr(r.name));
    b = original;
    PutLe(b, r.extra_pos + 20, 8, huge);
    EXPECT_CLEAN_ZIP_ERROR(OpenBytes(b), HasSubstr("bad local header offset"));
  }
}

}  // namespace
}  // namespace mxport::torch
