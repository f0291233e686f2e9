#include "common/torch/zip_reader.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"

namespace mxport::torch {
namespace {

constexpr uint32_t kLocalHeaderSig = 0x04034b50;
constexpr uint32_t kCentralHeaderSig = 0x02014b50;
constexpr uint32_t kEndOfDirSig = 0x06054b50;
constexpr uint32_t kZip64EndOfDirSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr size_t kEndOfDirSize = 22;
constexpr size_t kZip64LocatorSize = 20;
constexpr size_t kZip64EndOfDirSize = 56;
constexpr size_t kCentralHeaderSize = 46;
constexpr size_t kLocalHeaderSize = 30;
constexpr uint16_t kZip64ExtraId = 0x0001;

uint16_t U16(const char* p) {
  return static_cast<uint16_t>(static_cast<uint8_t>(p[0]) | static_cast<uint8_t>(p[1]) << 8);
}
uint32_t U32(const char* p) { return U16(p) | static_cast<uint32_t>(U16(p + 2)) << 16; }
uint64_t U64(const char* p) { return U32(p) | static_cast<uint64_t>(U32(p + 4)) << 32; }

class MemoryRandomAccessFile : public fs::RandomAccessFile {
 public:
  MemoryRandomAccessFile(std::string name, std::string bytes)
      : name_(std::move(name)), bytes_(std::move(bytes)) {}
  absl::Status ReadAt(uint64_t offset, size_t n, char* dst) const override {
    if (offset > bytes_.size() || n > bytes_.size() - offset) {
      return absl::DataLossError(absl::StrCat(name_, ": read of ", n, " bytes at ", offset,
                                              " past the end (", bytes_.size(), " bytes)"));
    }
    if (n > 0) std::memcpy(dst, bytes_.data() + offset, n);
    return absl::OkStatus();
  }
  uint64_t size() const override { return bytes_.size(); }
  const std::string& path() const override { return name_; }

 private:
  std::string name_;
  std::string bytes_;
};

// Reads the zip64 extended-information extra field: each value the fixed field saturated
// (0xFFFFFFFF) follows in order usize, csize, offset.
absl::Status ApplyZip64Extra(absl::string_view extra, ZipEntry& entry, bool need_usize,
                             bool need_csize, bool need_offset, absl::string_view where) {
  size_t pos = 0;
  while (pos + 4 <= extra.size()) {
    uint16_t id = U16(extra.data() + pos);
    uint16_t len = U16(extra.data() + pos + 2);
    pos += 4;
    if (len > extra.size() - pos) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": extra field overruns its entry"));
    }
    if (id == kZip64ExtraId) {
      absl::string_view field = extra.substr(pos, len);
      size_t at = 0;
      auto take = [&](uint64_t& value) -> absl::Status {
        if (at + 8 > field.size()) {
          return absl::InvalidArgumentError(absl::StrCat(where, ": zip64 extra field too short"));
        }
        value = U64(field.data() + at);
        at += 8;
        return absl::OkStatus();
      };
      if (need_usize) RETURN_IF_ERROR(take(entry.uncompressed_size));
      if (need_csize) RETURN_IF_ERROR(take(entry.compressed_size));
      if (need_offset) RETURN_IF_ERROR(take(entry.header_offset));
      return absl::OkStatus();
    }
    pos += len;
  }
  if (need_usize || need_csize || need_offset) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": sizes saturated but no zip64 extra field"));
  }
  return absl::OkStatus();
}

}  // namespace

std::shared_ptr<const fs::RandomAccessFile> NewMemoryRandomAccessFile(std::string name,
                                                                      std::string bytes) {
  return std::make_shared<MemoryRandomAccessFile>(std::move(name), std::move(bytes));
}

absl::StatusOr<std::unique_ptr<ZipReader>> ZipReader::Open(
    std::shared_ptr<const fs::RandomAccessFile> file, std::string name, uint64_t base,
    uint64_t length, const ZipReaderOptions& options) {
  const uint64_t file_size = file->size();
  if (base > file_size) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": zip window starts past the end"));
  }
  if (length == UINT64_MAX) length = file_size - base;
  if (length > file_size - base) {
    return absl::DataLossError(absl::StrCat(name, ": zip window of ", length,
                                            " bytes runs past the end of the file"));
  }
  std::unique_ptr<ZipReader> reader(
      new ZipReader(std::move(file), std::move(name), base, length, options));
  RETURN_IF_ERROR(reader->ReadDirectory());
  return reader;
}

absl::Status ZipReader::ReadWindow(uint64_t offset, size_t n, char* dst) const {
  if (offset > length_ || n > length_ - offset) {
    return absl::DataLossError(absl::StrCat(name_, ": read of ", n, " bytes at ", offset,
                                            " past the end of the archive (", length_, ")"));
  }
  return file_->ReadAt(base_ + offset, n, dst);
}

absl::Status ZipReader::ReadDirectory() {
  auto bad = [&](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat(name_, ": ", parts...));
  };
  if (length_ < kEndOfDirSize) return bad("too small to be a zip archive (", length_, " bytes)");

  // Scan back for the end-of-central-directory record (a 22-byte record plus a comment of up to
  // 64 KiB). data.pkl may hold nested zips, so the last match whose comment reaches exactly to
  // the end wins.
  const uint64_t tail_len = std::min<uint64_t>(length_, kEndOfDirSize + 0xFFFF);
  std::string tail(tail_len, '\0');
  RETURN_IF_ERROR(ReadWindow(length_ - tail_len, tail_len, tail.data()));
  int64_t eocd = -1;
  for (int64_t i = static_cast<int64_t>(tail_len - kEndOfDirSize); i >= 0; --i) {
    if (U32(tail.data() + i) == kEndOfDirSig &&
        i + kEndOfDirSize + U16(tail.data() + i + 20) == tail_len) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) return bad("no end-of-central-directory record (not a zip, or truncated)");
  const char* e = tail.data() + eocd;
  const uint64_t eocd_pos = length_ - tail_len + eocd;
  uint64_t count = U16(e + 10);
  uint64_t dir_size = U32(e + 12);
  uint64_t dir_offset = U32(e + 16);
  if (U16(e + 4) != 0 || U16(e + 6) != 0) return bad("multi-disk archives are not supported");
  uint64_t dir_limit = eocd_pos;  // the central directory must end before this

  // Zip64: torch always writes the locator and the zip64 record.
  if (eocd_pos >= kZip64LocatorSize) {
    char loc[kZip64LocatorSize];
    RETURN_IF_ERROR(ReadWindow(eocd_pos - kZip64LocatorSize, kZip64LocatorSize, loc));
    if (U32(loc) == kZip64LocatorSig) {
      uint64_t z64_pos = U64(loc + 8);
      if (z64_pos > eocd_pos - kZip64LocatorSize ||
          eocd_pos - kZip64LocatorSize - z64_pos < kZip64EndOfDirSize) {
        return bad("zip64 end-of-directory offset ", z64_pos, " is out of range");
      }
      char z[kZip64EndOfDirSize];
      RETURN_IF_ERROR(ReadWindow(z64_pos, kZip64EndOfDirSize, z));
      if (U32(z) != kZip64EndOfDirSig) return bad("bad zip64 end-of-directory signature");
      count = U64(z + 32);
      dir_size = U64(z + 40);
      dir_offset = U64(z + 48);
      dir_limit = z64_pos;
    } else if (count == 0xFFFF || dir_size == 0xFFFFFFFF || dir_offset == 0xFFFFFFFF) {
      return bad("end-of-directory fields saturated but no zip64 locator");
    }
  }
  if (dir_offset > dir_limit || dir_size > dir_limit - dir_offset) {
    return bad("central directory [", dir_offset, ", +", dir_size, ") is out of range");
  }
  if (count > options_.max_entries) return bad("too many entries (", count, ")");
  if (count > dir_size / kCentralHeaderSize) {
    return bad("central directory of ", dir_size, " bytes cannot hold ", count, " entries");
  }

  std::string dir(dir_size, '\0');
  RETURN_IF_ERROR(ReadWindow(dir_offset, dir_size, dir.data()));
  entries_.reserve(count);
  size_t pos = 0;
  for (uint64_t i = 0; i < count; ++i) {
    if (dir_size - pos < kCentralHeaderSize || U32(dir.data() + pos) != kCentralHeaderSig) {
      return bad("central directory entry ", i, " is malformed");
    }
    const char* h = dir.data() + pos;
    const uint16_t flags = U16(h + 8);
    ZipEntry entry;
    entry.method = U16(h + 10);
    entry.crc32 = U32(h + 16);
    entry.compressed_size = U32(h + 20);
    entry.uncompressed_size = U32(h + 24);
    const size_t name_len = U16(h + 28), extra_len = U16(h + 30), comment_len = U16(h + 32);
    entry.header_offset = U32(h + 42);
    if (kCentralHeaderSize + name_len + extra_len + comment_len > dir_size - pos) {
      return bad("central directory entry ", i, " overruns the directory");
    }
    entry.name.assign(h + kCentralHeaderSize, name_len);
    const std::string where = absl::StrCat(name_, ": entry '", entry.name, "'");
    RETURN_IF_ERROR(ApplyZip64Extra(
        absl::string_view(h + kCentralHeaderSize + name_len, extra_len), entry,
        entry.uncompressed_size == 0xFFFFFFFF, entry.compressed_size == 0xFFFFFFFF,
        entry.header_offset == 0xFFFFFFFF, where));
    pos += kCentralHeaderSize + name_len + extra_len + comment_len;
    if (flags & 0x1) return absl::InvalidArgumentError(absl::StrCat(where, " is encrypted"));
    if (entry.method != 0 && entry.method != 8) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, " uses compression method ", entry.method,
                       "; only stored (0) and deflate (8) are supported"));
    }
    if (entry.method == 0 && entry.compressed_size != entry.uncompressed_size) {
      return absl::InvalidArgumentError(absl::StrCat(where, " is stored but its sizes differ"));
    }
    // The local header gives only the lengths of its name and extra field.
    if (entry.header_offset > dir_offset ||
        dir_offset - entry.header_offset < kLocalHeaderSize) {
      return absl::InvalidArgumentError(absl::StrCat(where, " has a bad local header offset ",
                                                     entry.header_offset));
    }
    char local[kLocalHeaderSize];
    RETURN_IF_ERROR(ReadWindow(entry.header_offset, kLocalHeaderSize, local));
    if (U32(local) != kLocalHeaderSig) {
      return absl::InvalidArgumentError(absl::StrCat(where, " has a bad local header signature"));
    }
    const uint64_t local_name_len = U16(local + 26), local_extra_len = U16(local + 28);
    if (local_name_len != name_len) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": local header name differs from the central directory"));
    }
    entry.data_offset = entry.header_offset + kLocalHeaderSize + local_name_len + local_extra_len;
    if (entry.data_offset > dir_offset || entry.compressed_size > dir_offset - entry.data_offset) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": payload [", entry.data_offset, ", +", entry.compressed_size,
          ") runs into the central directory at ", dir_offset));
    }
    std::string local_name(name_len, '\0');
    RETURN_IF_ERROR(ReadWindow(entry.header_offset + kLocalHeaderSize, name_len,
                               local_name.data()));
    if (local_name != entry.name) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": local header name differs from the central directory"));
    }
    if (!by_name_.emplace(entry.name, entries_.size()).second) {
      return absl::InvalidArgumentError(absl::StrCat(where, " appears twice"));
    }
    entries_.push_back(std::move(entry));
  }

  // No two entries may share bytes.
  std::vector<const ZipEntry*> sorted;
  sorted.reserve(entries_.size());
  for (const ZipEntry& entry : entries_) sorted.push_back(&entry);
  std::sort(sorted.begin(), sorted.end(), [](const ZipEntry* a, const ZipEntry* b) {
    return a->header_offset < b->header_offset;
  });
  for (size_t i = 1; i < sorted.size(); ++i) {
    const uint64_t prev_end = sorted[i - 1]->data_offset + sorted[i - 1]->compressed_size;
    if (sorted[i]->header_offset < prev_end) {
      return bad("entries '", sorted[i - 1]->name, "' and '", sorted[i]->name, "' overlap");
    }
  }
  return absl::OkStatus();
}

const ZipEntry* ZipReader::Find(absl::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &entries_[it->second];
}

absl::StatusOr<std::string> ZipReader::ReadEntry(const ZipEntry& entry) const {
  if (entry.uncompressed_size > options_.max_read_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        name_, ": entry '", entry.name, "' has ", entry.uncompressed_size,
        " bytes, over the limit of ", options_.max_read_bytes));
  }
  // Deflate expands at most 1032:1, so a larger declared size is a lie that would make us
  // allocate memory for nothing.
  if (entry.method == 8 && entry.uncompressed_size > entry.compressed_size * 1032 + 64) {
    return absl::InvalidArgumentError(absl::StrCat(
        name_, ": deflated entry '", entry.name, "' declares ", entry.uncompressed_size,
        " bytes from ", entry.compressed_size, ", beyond deflate's maximum ratio"));
  }
  std::string raw(entry.compressed_size, '\0');
  RETURN_IF_ERROR(ReadWindow(entry.data_offset, raw.size(), raw.data()));
  std::string out;
  if (entry.method == 0) {
    out = std::move(raw);
  } else {
    if (raw.size() > UINT32_MAX || entry.uncompressed_size > UINT32_MAX) {
      return absl::InvalidArgumentError(
          absl::StrCat(name_, ": deflated entry '", entry.name, "' is over 4 GiB"));
    }
    out.resize(entry.uncompressed_size);
    z_stream zs{};
    if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) {
      return absl::InternalError("zlib inflateInit2 failed");
    }
    zs.next_in = reinterpret_cast<Bytef*>(raw.data());
    zs.avail_in = static_cast<uInt>(raw.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    const int rc = inflate(&zs, Z_FINISH);
    const uint64_t produced = zs.total_out;
    inflateEnd(&zs);
    if (rc != Z_STREAM_END || produced != entry.uncompressed_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          name_, ": deflated entry '", entry.name, "' is corrupt (inflated ", produced, " of ",
          entry.uncompressed_size, " bytes)"));
    }
  }
  if (options_.verify_crc && entry.crc32 != 0) {
    const uLong crc = crc32_z(0L, reinterpret_cast<const Bytef*>(out.data()), out.size());
    if (crc != entry.crc32) {
      return absl::DataLossError(
          absl::StrCat(name_, ": entry '", entry.name, "' fails its CRC-32 check"));
    }
  }
  return out;
}

absl::Status ZipReader::ReadEntryRange(const ZipEntry& entry, uint64_t offset, size_t n,
                                       char* dst) const {
  if (offset > entry.uncompressed_size || n > entry.uncompressed_size - offset) {
    return absl::OutOfRangeError(absl::StrCat(name_, ": read of ", n, " bytes at ", offset,
                                              " past the end of entry '", entry.name, "'"));
  }
  if (entry.method == 0) return ReadWindow(entry.data_offset + offset, n, dst);
  ASSIGN_OR_RETURN(std::string whole, ReadEntry(entry));
  std::memcpy(dst, whole.data() + offset, n);
  return absl::OkStatus();
}

}  // namespace mxport::torch
