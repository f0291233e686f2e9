// Header::Parse: valid inputs, and a table of malformed files.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/safetensors/header.h"
#include "common/safetensors/safetensors_testutil.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mxport::safetensors {
namespace {

using ::mxport::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testutil::LengthPrefix;
using testutil::RawFile;

constexpr char kFile[] = "t.safetensors";

absl::StatusOr<Header> ParseFile(const std::string& file) {
  return Header::Parse(file, file.size(), kFile);
}

// An entry's JSON: "name":{"dtype":...,"shape":...,"data_offsets":...}.
std::string Entry(absl::string_view name, absl::string_view dtype, absl::string_view shape,
                  absl::string_view offsets) {
  return absl::StrCat("\"", name, "\":{\"dtype\":", dtype, ",\"shape\":", shape,
                      ",\"data_offsets\":", offsets, "}");
}

TEST(SafetensorsParseTest, FormatsExample) {
  ASSERT_OK_AND_ASSIGN(Header header, ParseFile(testutil::ExampleFile()));
  ASSERT_EQ(header.entries().size(), 3u);
  EXPECT_EQ(header.entries()[0], (TensorEntry{"b", DType::kFloat32, {4}, 0, 16}));
  EXPECT_EQ(header.entries()[1], (TensorEntry{"a", DType::kBFloat16, {2, 3}, 16, 28}));
  EXPECT_EQ(header.entries()[2], (TensorEntry{"c", DType::kUInt8, {3}, 28, 31}));
  EXPECT_EQ(header.metadata(), (Metadata{{"format", "pt"}}));
  EXPECT_EQ(header.header_length(), 200u);
  EXPECT_EQ(header.data_start(), 208u);
  EXPECT_EQ(header.file_size(), 239u);
  EXPECT_EQ(header.encoded(), testutil::ExampleFile().substr(0, 208));
}

TEST(SafetensorsParseTest, AcceptsWhatTheReferenceReaderAccepts) {
  // Unpadded N (tensor.rs doc example), entries out of offset order, whitespace, a null
  // __metadata__, unknown fields, zero-size tensors sharing an offset, a scalar, F4.
  const std::string json = absl::StrCat(
      "{ \"__metadata__\" : null,\n", Entry("late", "\"I32\"", "[2,2]", "[6,22]"), ",",
      Entry("z2", "\"U8\"", "[0]", "[0,0]"), ",", Entry("z1", "\"F64\"", "[3,0]", "[0,0]"), ",",
      Entry("q", "\"F4\"", "[1,4]", "[0,2]"), ",",
      "\"s\":{\"extra\":[1],\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[2,6]}}\n");
  ASSERT_OK_AND_ASSIGN(Header header, ParseFile(RawFile(json, 22)));
  std::vector<std::string> names;
  for (const TensorEntry& e : header.entries()) names.push_back(e.name);
  EXPECT_THAT(names, ElementsAre("z1", "z2", "q", "s", "late"));
  EXPECT_TRUE(header.metadata().empty());
  EXPECT_EQ(header.header_length(), json.size());
  EXPECT_EQ(header.data_size(), 22u);
}

TEST(SafetensorsParseTest, EmptyHeader) {
  ASSERT_OK_AND_ASSIGN(Header header, ParseFile(LengthPrefix(8) + "{}      "));
  EXPECT_TRUE(header.entries().empty());
  EXPECT_EQ(header.file_size(), 16u);
}

TEST(SafetensorsParseTest, PrefixMayStopAfterTheHeader) {
  const std::string file = testutil::ExampleFile();
  EXPECT_OK(Header::Parse(file.substr(0, 208), file.size(), kFile));
  EXPECT_THAT(Header::Parse(file.substr(0, 207), file.size(), kFile),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("need 208 bytes")));
  EXPECT_THAT(Header::Parse(file.substr(0, 4), file.size(), kFile),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

struct BadCase {
  const char* name;
  std::string file;
  absl::StatusCode code;
  std::string message;  // expected substring, besides the file name
};

std::vector<BadCase> BadCases() {
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  const auto kDataLoss = absl::StatusCode::kDataLoss;
  const std::string a4 = Entry("a", "\"U8\"", "[4]", "[0,4]");
  auto one = [](absl::string_view entry) { return absl::StrCat("{", entry, "}"); };
  return {
      {"overlap", RawFile(absl::StrCat("{", a4, ",", Entry("b", "\"U8\"", "[4]", "[2,6]"), "}"), 6),
       kInvalid, "tensor 'b': data_offsets [2, 6] overlap tensor 'a'"},
      {"hole", RawFile(absl::StrCat("{", a4, ",", Entry("b", "\"U8\"", "[4]", "[6,10]"), "}"), 10),
       kInvalid, "tensor 'b': data_offsets [6, 10] leave a hole"},
      {"first_not_at_zero", RawFile(one(Entry("a", "\"U8\"", "[4]", "[2,6]")), 6), kInvalid,
       "tensor 'a': data_offsets [2, 6] leave a hole"},
      {"short_data", RawFile(one(a4), 3), kDataLoss, "tensor 'a' ends there"},
      {"trailing_bytes", RawFile(one(a4), 5), kInvalid, "1 trailing bytes"},
      {"n_too_large", LengthPrefix(100'000'001) + "{}", kInvalid, "exceeds the limit"},
      {"n_past_file", LengthPrefix(100) + "{}      ", kDataLoss,
       "header length 100 exceeds the file"},
      {"file_shorter_than_8", std::string("\x02\0\0", 3), kDataLoss, "too short"},
      {"n_zero", LengthPrefix(0), kInvalid, "does not start with '{'"},
      {"not_an_object", RawFile("[1,2]", 0), kInvalid, "does not start with '{'"},
      {"leading_space", RawFile(" {}", 0), kInvalid, "does not start with '{'"},
      {"truncated_json", RawFile("{\"a\":{\"dtype\":\"U8\"", 0), kInvalid, "invalid JSON"},
      {"garbage_after_json", RawFile("{} x", 0), kInvalid, "invalid JSON"},
      {"invalid_utf8", RawFile("{\"\xFF\":1}", 0), kInvalid, "invalid JSON"},
      {"metadata_int_value", RawFile(R"({"__metadata__":{"format":1}})", 0), kInvalid,
       "'__metadata__' value of 'format' is not a string but 1"},
      {"metadata_null_value", RawFile(R"({"__metadata__":{"format":null}})", 0), kInvalid,
       "value of 'format' is not a string"},
      {"metadata_not_object", RawFile(R"({"__metadata__":["pt"]})", 0), kInvalid,
       "'__metadata__' is not a JSON object"},
      {"duplicate_tensor", RawFile(absl::StrCat("{", a4, ",", a4, "}"), 4), kInvalid,
       "duplicate key 'a'"},
      {"duplicate_field",
       RawFile(R"({"a":{"dtype":"U8","dtype":"I8","shape":[4],)"
               R"("data_offsets":[0,4]}})",
               4),
       kInvalid, "duplicate key 'dtype' in 'a'"},
      {"duplicate_metadata", RawFile(R"({"__metadata__":{"k":"1","k":"2"}})", 0), kInvalid,
       "duplicate key 'k' in '__metadata__'"},
      {"bad_dtype", RawFile(one(Entry("a", "\"F17\"", "[4]", "[0,4]")), 4), kInvalid,
       "tensor 'a': unknown safetensors dtype 'F17'"},
      {"dtype_not_string", RawFile(one(Entry("a", "8", "[4]", "[0,4]")), 4), kInvalid,
       "tensor 'a': 'dtype' is not a string"},
      {"negative_dim", RawFile(one(Entry("a", "\"U8\"", "[-4]", "[0,4]")), 4), kInvalid,
       "tensor 'a': shape dimension -4 is not a non-negative"},
      {"float_dim", RawFile(one(Entry("a", "\"U8\"", "[4.0]", "[0,4]")), 4), kInvalid,
       "tensor 'a': shape dimension 4.0 is not"},
      {"string_dim", RawFile(one(Entry("a", "\"U8\"", "[\"4\"]", "[0,4]")), 4), kInvalid,
       "tensor 'a': shape dimension string is not"},
      {"dim_past_int64", RawFile(one(Entry("a", "\"U8\"", "[9223372036854775808]", "[0,4]")), 4),
       kInvalid, "tensor 'a': shape dimension 9223372036854775808"},
      {"shape_not_array", RawFile(one(Entry("a", "\"U8\"", "4", "[0,4]")), 4), kInvalid,
       "tensor 'a': 'shape' is not an array"},
      {"end_before_begin", RawFile(one(Entry("a", "\"U8\"", "[4]", "[4,0]")), 4), kInvalid,
       "tensor 'a': data_offsets [4, 0] end before begin"},
      {"offsets_one_value", RawFile(one(Entry("a", "\"U8\"", "[4]", "[4]")), 4), kInvalid,
       "tensor 'a': 'data_offsets' is not an array of two integers"},
      {"offsets_negative", RawFile(one(Entry("a", "\"U8\"", "[4]", "[-1,3]")), 4), kInvalid,
       "tensor 'a': data_offsets [-1, 3] are not non-negative integers"},
      {"offsets_object", RawFile(one(Entry("a", "\"U8\"", "[4]", "{}")), 4), kInvalid,
       "tensor 'a': 'data_offsets' is not an array"},
      {"huge_shape_overflow",
       RawFile(one(Entry("a", "\"U8\"", "[4294967296,4294967296,4]", "[0,0]")), 0), kInvalid,
       "tensor 'a': element count overflows"},
      {"bits_overflow", RawFile(one(Entry("a", "\"F64\"", "[1152921504606846976]", "[0,0]")), 0),
       kInvalid, "tensor 'a': bit count overflows"},
      {"size_mismatch", RawFile(one(Entry("a", "\"U8\"", "[4]", "[0,3]")), 3), kInvalid,
       "tensor 'a': data_offsets [0, 3] span 3 bytes but U8[4] needs 4"},
      {"odd_f4", RawFile(one(Entry("a", "\"F4\"", "[3]", "[0,2]")), 2), kInvalid,
       "tensor 'a': F4[3] holds 12 bits, not a whole number of bytes"},
      {"missing_dtype", RawFile(R"({"a":{"shape":[4],"data_offsets":[0,4]}})", 4), kInvalid,
       "tensor 'a': missing 'dtype'"},
      {"missing_shape", RawFile(R"({"a":{"dtype":"U8","data_offsets":[0,4]}})", 4), kInvalid,
       "tensor 'a': missing 'shape'"},
      {"missing_offsets", RawFile(R"({"a":{"dtype":"U8","shape":[4]}})", 4), kInvalid,
       "tensor 'a': missing 'data_offsets'"},
      {"entry_not_object", RawFile(R"({"a":5})", 0), kInvalid,
       "tensor 'a': entry is not a JSON object"},
  };
}

TEST(SafetensorsParseTest, RejectsMalformedFiles) {
  for (const BadCase& c : BadCases()) {
    SCOPED_TRACE(c.name);
    EXPECT_THAT(ParseFile(c.file), StatusIs(c.code, AllOf(HasSubstr(kFile), HasSubstr(c.message))));
  }
}

}  // namespace
}  // namespace mxport::safetensors
