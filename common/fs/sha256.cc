#include "common/fs/sha256.h"

#include <openssl/evp.h>

#include <memory>

#include "absl/status/status.h"
#include "common/base/status_macros.h"

namespace mxport::fs {
namespace {

struct CtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using Ctx = std::unique_ptr<EVP_MD_CTX, CtxDeleter>;

std::string Hex(const unsigned char* digest, unsigned int n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < n; ++i) {
    out += digits[digest[i] >> 4];
    out += digits[digest[i] & 15];
  }
  return out;
}

absl::StatusOr<Ctx> NewCtx() {
  Ctx ctx(EVP_MD_CTX_new());
  if (ctx == nullptr || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    return absl::InternalError("OpenSSL SHA-256 initialisation failed");
  }
  return ctx;
}

std::string Final(EVP_MD_CTX* ctx) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx, digest, &n);
  return Hex(digest, n);
}

}  // namespace

std::string Sha256Hex(absl::string_view bytes) {
  auto ctx = NewCtx();
  if (!ctx.ok()) return "";
  EVP_DigestUpdate(ctx->get(), bytes.data(), bytes.size());
  return Final(ctx->get());
}

absl::StatusOr<std::string> Sha256File(FileSystem& fs, const std::string& path) {
  ASSIGN_OR_RETURN(auto file, fs.OpenForRead(path));
  ASSIGN_OR_RETURN(Ctx ctx, NewCtx());
  std::string buffer(1 << 20, '\0');
  for (uint64_t offset = 0; offset < file->size();) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(buffer.size(), file->size() - offset));
    RETURN_IF_ERROR(file->ReadAt(offset, n, buffer.data()));
    EVP_DigestUpdate(ctx.get(), buffer.data(), n);
    offset += n;
  }
  return Final(ctx.get());
}

}  // namespace mxport::fs
