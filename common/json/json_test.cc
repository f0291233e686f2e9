#include "common/json/json.h"

#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace mxport {
namespace {

using ::mxport::testing::IsOkAndHolds;
using ::mxport::testing::StatusIs;
using ::testing::HasSubstr;

TEST(JsonTest, ParsesAndReadsTypedFields) {
  auto j = ParseJson(R"({"a": "x", "n": 7, "f": 1.5})", "cfg.json");
  ASSERT_TRUE(j.ok());
  EXPECT_THAT(JsonGetString(*j, "a", "cfg.json"), IsOkAndHolds("x"));
  EXPECT_THAT(JsonGetInt(*j, "n", "cfg.json"), IsOkAndHolds(7));
  EXPECT_THAT(JsonGetDouble(*j, "f", "cfg.json"), IsOkAndHolds(1.5));
  EXPECT_THAT(JsonGetDouble(*j, "n", "cfg.json"), IsOkAndHolds(7.0));
}

TEST(JsonTest, ErrorsNameTheContextAndField) {
  EXPECT_THAT(ParseJson("{\"a\": ", "cfg.json"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cfg.json")));
  auto j = ParseJson(R"({"a": 1})", "cfg.json");
  ASSERT_TRUE(j.ok());
  EXPECT_THAT(JsonGetString(*j, "a", "cfg.json"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'a' must be a string")));
  EXPECT_THAT(JsonGetInt(*j, "b", "cfg.json"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("missing field 'b'")));
  EXPECT_THAT(JsonGetInt(Json::array(), "b", "x"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(JsonTest, OrderedParseKeepsKeyOrder) {
  auto j = ParseOrderedJson(R"({"z": 1, "a": 2})", "o");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(j->dump(), R"({"z":1,"a":2})");
}

}  // namespace
}  // namespace mxport
