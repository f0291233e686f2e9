// Small text helpers the mxport subcommands share: byte counts and durations for people, and
// paths made absolute before they go into a job spec (the coordinator may run elsewhere).
// Stateless; thread-safe.
#ifndef MXPORT_TOOLS_MXPORT_CLI_FORMAT_H_
#define MXPORT_TOOLS_MXPORT_CLI_FORMAT_H_

#include <string>

namespace mxport::cli {

// "512 B", "1.5 MiB", ... (binary units).
std::string HumanBytes(double bytes);
// "42s", "3m05s", "2h10m"; "-" when unknown (negative).
std::string HumanDuration(double seconds);
// `path` joined to the working directory unless it is absolute or empty.
std::string AbsolutePath(const std::string& path);

}  // namespace mxport::cli

#endif  // MXPORT_TOOLS_MXPORT_CLI_FORMAT_H_
