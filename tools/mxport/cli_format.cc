#include "tools/mxport/cli_format.h"

#include <unistd.h>

#include <climits>
#include <cstdint>

#include "absl/strings/str_format.h"
#include "common/fs/file_system.h"

namespace mxport::cli {

std::string HumanBytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int u = 0;
  for (; bytes >= 1024 && u < 5; ++u) bytes /= 1024;
  return absl::StrFormat(u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
}

std::string HumanDuration(double seconds) {
  if (seconds < 0) return "-";
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  if (s < 60) return absl::StrFormat("%ds", s);
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%dh%02dm", s / 3600, (s % 3600) / 60);
}

std::string AbsolutePath(const std::string& path) {
  char cwd[PATH_MAX] = {};
  if (path.empty() || path[0] == '/' || getcwd(cwd, sizeof(cwd)) == nullptr) return path;
  return fs::JoinPath(cwd, path);
}

}  // namespace mxport::cli
