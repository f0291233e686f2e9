#include "common/safetensors/header.h"

#include <string>
#include <utility>
#include <vector>

#include "common/safetensors/safetensors_testutil.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mxport::safetensors {
namespace {

using ::mxport::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

std::vector<std::string> Names(const Header& header) {
  std::vector<std::string> names;
  for (const TensorEntry& e : header.entries()) names.push_back(e.name);
  return names;
}

std::string Json(const Header& header) { return header.encoded().substr(8); }

TEST(SafetensorsLayoutTest, FormatsExampleIsByteExact) {
  ASSERT_OK_AND_ASSIGN(Header header, Header::Layout(testutil::ExampleSpecs(), {{"format", "pt"}},
                                                     LayoutOrder::kPythonWriter));
  EXPECT_EQ(header.header_length(), 0xC8u);
  EXPECT_EQ(header.data_start(), 208u);
  EXPECT_EQ(header.data_size(), 31u);
  EXPECT_EQ(header.file_size(), 239u);
  std::string file = header.encoded();
  for (const TensorEntry& entry : header.entries()) {
    ASSERT_EQ(file.size(), header.data_start() + entry.begin);
    file += testutil::ExampleBytes(entry.name);
  }
  const std::string expected = testutil::ExampleFile();
  ASSERT_EQ(file.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(file[i], expected[i]) << "byte " << i;
  }
}

TEST(SafetensorsLayoutTest, MatchesTheReferenceCrateTests) {
  // tensor.rs test_serialization: one F32 [1,2,3] tensor, a 64-byte header needing no padding.
  ASSERT_OK_AND_ASSIGN(Header one, Header::Layout({{"attn.0", DType::kFloat32, {1, 2, 3}}}, {},
                                                  LayoutOrder::kPythonWriter));
  EXPECT_EQ(one.encoded(),
            testutil::LengthPrefix(64) +
                R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})");
  // test_empty: "{}" padded to 8, and with metadata padded to 40.
  ASSERT_OK_AND_ASSIGN(Header empty, Header::Layout({}, {}, LayoutOrder::kPythonWriter));
  EXPECT_EQ(empty.encoded(), testutil::LengthPrefix(8) + "{}      ");
  ASSERT_OK_AND_ASSIGN(Header meta,
                       Header::Layout({}, {{"framework", "pt"}}, LayoutOrder::kPythonWriter));
  EXPECT_EQ(meta.encoded(),
            testutil::LengthPrefix(40) + R"({"__metadata__":{"framework":"pt"}})" + "     ");
}

TEST(SafetensorsLayoutTest, PythonWriterOrderIsDescendingDTypeRankThenName) {
  std::vector<TensorSpec> specs;
  for (const DTypeInfo& info : AllDTypes()) {
    if (info.safetensors_bits == 0) continue;
    specs.push_back({std::string(info.safetensors_name), info.dtype, {8}});
  }
  specs.push_back({"BF16_b", DType::kBFloat16, {1}});
  specs.push_back({"BF16_a", DType::kBFloat16, {1}});
  ASSERT_OK_AND_ASSIGN(Header header, Header::Layout(specs, {}, LayoutOrder::kPythonWriter));
  EXPECT_THAT(Names(header),
              ElementsAre("U64", "I64", "F64", "C64", "F32", "U32", "I32", "BF16", "BF16_a",
                          "BF16_b", "F16", "U16", "I16", "F8_E5M2FNUZ", "F8_E4M3FNUZ", "F8_E8M0",
                          "F8_E4M3", "F8_E5M2", "I8", "U8", "F6_E3M2", "F6_E2M3", "F4", "BOOL"));
  uint64_t offset = 0;
  for (const TensorEntry& e : header.entries()) {
    EXPECT_EQ(e.begin, offset) << e.name;
    offset = e.end;
  }
}

TEST(SafetensorsLayoutTest, AsGivenKeepsTheCallersOrder) {
  ASSERT_OK_AND_ASSIGN(Header header,
                       Header::Layout(testutil::ExampleSpecs(), {}, LayoutOrder::kAsGiven));
  EXPECT_THAT(Names(header), ElementsAre("a", "c", "b"));
  EXPECT_EQ(header.entries()[1], (TensorEntry{"c", DType::kUInt8, {3}, 12, 15}));
  EXPECT_EQ(Json(header).find("__metadata__"), std::string::npos);
}

TEST(SafetensorsLayoutTest, ScalarZeroSizeAndF4Entries) {
  ASSERT_OK_AND_ASSIGN(Header header, Header::Layout({{"s", DType::kFloat32, {}},
                                                      {"z", DType::kBFloat16, {0, 3}},
                                                      {"q", DType::kFloat4E2M1FNx2, {2, 8}}},
                                                     {}, LayoutOrder::kAsGiven));
  EXPECT_EQ(Json(header), R"({"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]},)"
                          R"("z":{"dtype":"BF16","shape":[0,3],"data_offsets":[4,4]},)"
                          R"("q":{"dtype":"F4","shape":[2,8],"data_offsets":[4,12]}}    )");
}

TEST(SafetensorsLayoutTest, PadsWithSpacesToAMultipleOfEight) {
  for (int len = 1; len <= 16; ++len) {
    ASSERT_OK_AND_ASSIGN(
        Header header,
        Header::Layout({{std::string(len, 'x'), DType::kUInt8, {1}}}, {}, LayoutOrder::kAsGiven));
    EXPECT_EQ(header.header_length() % 8, 0u);
    const std::string json = Json(header);
    const size_t close = json.rfind('}');
    EXPECT_LT(json.size() - close - 1, 8u);
    EXPECT_EQ(json.find_first_not_of(' ', close + 1), std::string::npos);
  }
}

TEST(SafetensorsLayoutTest, EscapesStringsLikeSerdeJson) {
  ASSERT_OK_AND_ASSIGN(Header header,
                       Header::Layout({{"q\"b\\n\n\t\x01\x1f\x7f/\xC3\xA9", DType::kUInt8, {0}}},
                                      {{"k\r", "v\b\f"}}, LayoutOrder::kAsGiven));
  EXPECT_THAT(Json(header), HasSubstr(R"({"__metadata__":{"k\r":"v\b\f"},)"
                                      R"("q\"b\\n\n\t\u0001\u001f)"
                                      "\x7f/\xC3\xA9\":{"));
  // The escaped header parses back to the same names.
  ASSERT_OK_AND_ASSIGN(Header parsed, Header::Parse(header.encoded(), header.file_size(), "f"));
  EXPECT_EQ(parsed.entries(), header.entries());
  EXPECT_EQ(parsed.metadata(), header.metadata());
}

TEST(SafetensorsLayoutTest, Errors) {
  const auto order = LayoutOrder::kAsGiven;
  EXPECT_THAT(Header::Layout({{"a", DType::kUInt8, {1}}, {"a", DType::kUInt8, {1}}}, {}, order),
              StatusIs(kInvalid, HasSubstr("duplicate tensor name 'a'")));
  EXPECT_THAT(Header::Layout({{"", DType::kUInt8, {1}}}, {}, order),
              StatusIs(kInvalid, HasSubstr("invalid tensor name")));
  EXPECT_THAT(Header::Layout({{"__metadata__", DType::kUInt8, {1}}}, {}, order),
              StatusIs(kInvalid, HasSubstr("__metadata__")));
  EXPECT_THAT(Header::Layout({{"bad\xFF", DType::kUInt8, {1}}}, {}, order),
              StatusIs(kInvalid, HasSubstr("not valid UTF-8")));
  EXPECT_THAT(Header::Layout({{"\xED\xA0\x80", DType::kUInt8, {1}}}, {}, order),  // surrogate
              StatusIs(kInvalid, HasSubstr("not valid UTF-8")));
  EXPECT_THAT(Header::Layout({{"\xC0\xAF", DType::kUInt8, {1}}}, {}, order),  // overlong '/'
              StatusIs(kInvalid, HasSubstr("not valid UTF-8")));
  EXPECT_THAT(Header::Layout({}, {{"k", "\xE2\x82"}}, order),
              StatusIs(kInvalid, HasSubstr("metadata value of 'k'")));
  EXPECT_THAT(Header::Layout({{"c", DType::kComplex32, {1}}}, {}, order),
              StatusIs(kInvalid, HasSubstr("tensor 'c'")));
  EXPECT_THAT(Header::Layout({{"f", DType::kFloat4E2M1FNx2, {3}}}, {}, order),
              StatusIs(kInvalid, HasSubstr("tensor 'f'")));
  EXPECT_THAT(Header::Layout({{"n", DType::kFloat32, {-1}}}, {}, order),
              StatusIs(kInvalid, HasSubstr("negative")));
  EXPECT_THAT(Header::Layout({{"x", DType::kUInt8, {int64_t{1} << 62}},
                              {"y", DType::kUInt8, {int64_t{1} << 62}}},
                             {}, order),
              StatusIs(kInvalid, HasSubstr("overflows")));
}

TEST(SafetensorsHeaderTest, FindAndGet) {
  ASSERT_OK_AND_ASSIGN(Header header,
                       Header::Layout(testutil::ExampleSpecs(), {}, LayoutOrder::kPythonWriter));
  ASSERT_NE(header.Find("c"), nullptr);
  EXPECT_EQ(header.Find("c")->begin, 28u);
  EXPECT_EQ(header.Find("zz"), nullptr);
  EXPECT_THAT(header.Get("zz"), StatusIs(absl::StatusCode::kNotFound, HasSubstr("'zz'")));
  Header copy = header;  // a value: copies keep a working index
  ASSERT_OK_AND_ASSIGN(const TensorEntry* a, copy.Get("a"));
  EXPECT_EQ(a, &copy.entries()[1]);
}

}  // namespace
}  // namespace mxport::safetensors
