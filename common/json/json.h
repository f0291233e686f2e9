// JSON through nlohmann::json without exceptions crossing our boundary: ParseJson catches the
// library's exceptions and returns InvalidArgument with its diagnostic (byte position and
// reason) prefixed by `context` (usually the file name). Typed getters return InvalidArgument
// naming the missing or mistyped field. Stateless; thread-safe.
#ifndef MXPORT_COMMON_JSON_JSON_H_
#define MXPORT_COMMON_JSON_JSON_H_

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace mxport {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

absl::StatusOr<Json> ParseJson(absl::string_view text, absl::string_view context);
absl::StatusOr<OrderedJson> ParseOrderedJson(absl::string_view text, absl::string_view context);

// Field access on an object: NotFound-free, InvalidArgument naming `context`.`key`.
absl::StatusOr<std::string> JsonGetString(const Json& object, absl::string_view key,
                                          absl::string_view context);
absl::StatusOr<int64_t> JsonGetInt(const Json& object, absl::string_view key,
                                   absl::string_view context);
absl::StatusOr<double> JsonGetDouble(const Json& object, absl::string_view key,
                                     absl::string_view context);

}  // namespace mxport

#endif  // MXPORT_COMMON_JSON_JSON_H_
