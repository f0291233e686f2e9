#include "common/json/json.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace mxport {
namespace {

template <typename J>
absl::StatusOr<J> Parse(absl::string_view text, absl::string_view context) {
  try {
    return J::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(context, ": invalid JSON: ", e.what()));
  }
}

absl::StatusOr<const Json*> Field(const Json& object, absl::string_view key,
                                  absl::string_view context) {
  if (!object.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(context, ": expected a JSON object"));
  }
  auto it = object.find(std::string(key));
  if (it == object.end()) {
    return absl::InvalidArgumentError(absl::StrCat(context, ": missing field '", key, "'"));
  }
  return &*it;
}

absl::Status WrongType(absl::string_view key, absl::string_view context, absl::string_view want) {
  return absl::InvalidArgumentError(
      absl::StrCat(context, ": field '", key, "' must be ", want));
}

}  // namespace

absl::StatusOr<Json> ParseJson(absl::string_view text, absl::string_view context) {
  return Parse<Json>(text, context);
}

absl::StatusOr<OrderedJson> ParseOrderedJson(absl::string_view text, absl::string_view context) {
  return Parse<OrderedJson>(text, context);
}

absl::StatusOr<std::string> JsonGetString(const Json& object, absl::string_view key,
                                          absl::string_view context) {
  auto field = Field(object, key, context);
  if (!field.ok()) return field.status();
  if (!(*field)->is_string()) return WrongType(key, context, "a string");
  return (*field)->get<std::string>();
}

absl::StatusOr<int64_t> JsonGetInt(const Json& object, absl::string_view key,
                                   absl::string_view context) {
  auto field = Field(object, key, context);
  if (!field.ok()) return field.status();
  if (!(*field)->is_number_integer()) return WrongType(key, context, "an integer");
  return (*field)->get<int64_t>();
}

absl::StatusOr<double> JsonGetDouble(const Json& object, absl::string_view key,
                                     absl::string_view context) {
  auto field = Field(object, key, context);
  if (!field.ok()) return field.status();
  if (!(*field)->is_number()) return WrongType(key, context, "a number");
  return (*field)->get<double>();
}

}  // namespace mxport
