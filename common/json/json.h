// JSON through nlohmann::json without exceptions crossing our boundary: ParseJson catches the
// library's exceptions and returns InvalidArgument with its diagnostic (byte position and
// reason) prefixed by `context` (usually the file name). Typed getters return InvalidArgument
// naming the missing or mistyped field. Stateless; thread-safe.
#ifndef MXPORT_COMMON_JSON_JSON_H_
#define MXPORT_COMMON_JSON_JSON_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace mxport {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

absl::StatusOr<Json> ParseJson(std::string_view text, std::string_view context);
absl::StatusOr<OrderedJson> ParseOrderedJson(std::string_view text, std::string_view context);

// Field access on an object: NotFound-free, InvalidArgument naming `context`.`key`.
absl::StatusOr<std::string> JsonGetString(const Json& object, std::string_view key,
                                          std::string_view context);
absl::StatusOr<int64_t> JsonGetInt(const Json& object, std::string_view key,
                                   std::string_view context);
absl::StatusOr<double> JsonGetDouble(const Json& object, std::string_view key,
                                     std::string_view context);

}  // namespace mxport

#endif  // MXPORT_COMMON_JSON_JSON_H_
