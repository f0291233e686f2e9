#include "common/torch/unpickler.h"

#include <string>

#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace mxport::pickle {
namespace {

using namespace std::string_literals;

using ::mxport::testing::StatusIs;
using ::testing::HasSubstr;

std::string Bytes(std::initializer_list<int> bytes) {
  std::string out;
  for (int b : bytes) out.push_back(static_cast<char>(b));
  return out;
}

// The data.pkl of torch.save({"w": torch.tensor([1.0, 2.0])}) (formats.md §1.5).
std::string WorkedExamplePickle() {
  std::string p = Bytes({0x80, 0x02, '}', 'q', 0x00, 'X', 1, 0, 0, 0, 'w', 'q', 0x01});
  p += "ctorch._utils\n_rebuild_tensor_v2\nq\x02((X\x07\x00\x00\x00storageq\x03"s;
  p += "ctorch\nFloatStorage\nq\x04X\x01\x00\x00\x00" "0q\x05X\x03\x00\x00\x00" "cpuq\x06"s;
  p += Bytes({'K', 2, 't', 'q', 7, 'Q', 'K', 0, 'K', 2, 0x85, 'q', 8, 'K', 1, 0x85, 'q', 9, 0x89});
  p += "ccollections\nOrderedDict\nq\x0a)Rq\x0btq\x0cRq\x0dsq\x0e.";
  return p;
}

TEST(UnpicklerTest, WorkedExampleGivesOneLazyTensor) {
  auto result = Unpickle(WorkedExamplePickle(), "w.pt");
  ASSERT_TRUE(result.ok()) << result.status();
  const Value& root = *result->root;
  ASSERT_EQ(root.kind, Kind::kDict);
  const Value* w = root.Get("w");
  ASSERT_NE(w, nullptr);
  ASSERT_EQ(w->kind, Kind::kTensor);
  EXPECT_EQ(w->tensor->dtype, DType::kFloat32);
  EXPECT_EQ(w->tensor->shape, std::vector<int64_t>{2});
  EXPECT_EQ(w->tensor->stride, std::vector<int64_t>{1});
  EXPECT_EQ(w->tensor->storage->key, "0");
  EXPECT_EQ(w->tensor->storage->numel, 2u);
  EXPECT_EQ(w->tensor->storage->location, "cpu");
  ASSERT_EQ(result->storages.size(), 1u);
}

TEST(UnpicklerTest, ScalarsAndContainers) {
  // [None, True, -1 (BININT), 300 (BININT2), 2**70 (LONG1), 1.5, b'ab', 'é', (1,), {'k': 2}]
  std::string p = Bytes({0x80, 2, ']', '(', 'N', 0x88, 'J', 0xff, 0xff, 0xff, 0xff, 'M', 0x2c,
                         0x01, 0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 'G', 0x3f, 0xf8, 0, 0, 0,
                         0, 0, 0, 'C', 2, 'a', 'b', 0x8c, 2, 0xc3, 0xa9, 'K', 1, 0x85, '}', 'X',
                         1, 0, 0, 0, 'k', 'K', 2, 's', 'e', '.'});
  auto result = Unpickle(p, "t");
  ASSERT_TRUE(result.ok()) << result.status();
  const auto& items = result->root->items;
  ASSERT_EQ(items.size(), 10u);
  EXPECT_EQ(items[0]->kind, Kind::kNone);
  EXPECT_TRUE(items[1]->boolean);
  EXPECT_EQ(items[2]->integer, -1);
  EXPECT_EQ(items[3]->integer, 300);
  EXPECT_EQ(items[4]->kind, Kind::kBigInt);
  EXPECT_EQ(items[5]->number, 1.5);
  EXPECT_EQ(items[6]->str, "ab");
  EXPECT_EQ(items[7]->str, "\xc3\xa9");
  EXPECT_EQ(items[8]->items[0]->integer, 1);
  EXPECT_EQ(items[9]->Get("k")->integer, 2);
}

TEST(UnpicklerTest, Long1SignExtension) {
  // LONG1 of 2 bytes 0xff 0x7f = 32767; of 0x00 0x80 = -32768; of 0 bytes = 0.
  auto a = Unpickle(Bytes({0x80, 2, 0x8a, 2, 0xff, 0x7f, '.'}), "t");
  auto b = Unpickle(Bytes({0x80, 2, 0x8a, 2, 0x00, 0x80, '.'}), "t");
  auto c = Unpickle(Bytes({0x80, 2, 0x8a, 0, '.'}), "t");
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->root->integer, 32767);
  EXPECT_EQ(b->root->integer, -32768);
  EXPECT_EQ(c->root->integer, 0);
}

TEST(UnpicklerTest, CodecsEncodeGivesLatin1Bytes) {
  // _codecs.encode('\xff\x00A', 'latin1') as protocol 2 writes bytes.
  std::string p = "\x80\x02" "c_codecs\nencode\nX\x04\x00\x00\x00\xc3\xbf"s;
  p += std::string(1, '\0') + "AX\x06\x00\x00\x00latin1\x86R."s;
  auto result = Unpickle(p, "t");
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->root->kind, Kind::kBytes);
  EXPECT_EQ(result->root->str, "\xff\x00" "A"s);
}

struct HostileCase {
  const char* name;
  std::string pickle;
  absl::StatusCode code;
  const char* message;
};

std::vector<HostileCase> HostileCases() {
  return {
      {"os_system", "\x80\x02" "cos\nsystem\nX\x02\x00\x00\x00id\x85R."s,
       absl::StatusCode::kPermissionDenied, "os.system"},
      {"posix_system", "\x80\x02" "cposix\nsystem\nX\x02\x00\x00\x00id\x85R."s,
       absl::StatusCode::kPermissionDenied, "posix.system"},
      {"builtins_eval", "\x80\x02" "c__builtin__\neval\nX\x01\x00\x00\x00" "1\x85R."s,
       absl::StatusCode::kPermissionDenied, "__builtin__.eval"},
      {"getattr_of_import", "\x80\x02" "c__builtin__\ngetattr\nc__builtin__\n__import__\n.",
       absl::StatusCode::kPermissionDenied, "__builtin__.__import__"},
      {"getattr_of_tensor_fn", "\x80\x02" "c__builtin__\ngetattr\nctorch._utils\n_rebuild_tensor\n"
       "X\x01\x00\x00\x00x\x86R."s, absl::StatusCode::kPermissionDenied, "getattr"},
      {"subprocess", "\x80\x02" "csubprocess\nPopen\n]\x85R.",
       absl::StatusCode::kPermissionDenied, "subprocess.Popen"},
      {"os_path_submodule", "\x80\x02" "cos.path\njoin\n.", absl::StatusCode::kPermissionDenied,
       "os.path.join"},
      {"huge_binunicode", "\x80\x02X\xff\xff\xff\x7f" "abc.", absl::StatusCode::kInvalidArgument,
       "truncated"},
      {"huge_binbytes8", "\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\xff.",
       absl::StatusCode::kInvalidArgument, "truncated"},
      {"missing_memo", "\x80\x02j\x10\x00\x00\x00."s, absl::StatusCode::kInvalidArgument,
       "memo key 16"},
      {"no_stop", "\x80\x02N", absl::StatusCode::kInvalidArgument, "without STOP"},
      {"empty_stack", "\x80\x02.", absl::StatusCode::kInvalidArgument, "empty stack"},
      {"bad_opcode", "\x80\x02\xff.", absl::StatusCode::kInvalidArgument, "opcode 0xff"},
      {"reduce_non_callable", "\x80\x02K\x01)R.", absl::StatusCode::kInvalidArgument,
       "non-callable"},
      {"append_to_int", "\x80\x02K\x01K\x02" "a.", absl::StatusCode::kInvalidArgument,
       "not a list"},
      {"protocol_9", "\x80\x09N.", absl::StatusCode::kInvalidArgument, "protocol 9"},
      {"qtensor", "\x80\x02" "ctorch._utils\n_rebuild_qtensor\n)R.",
       absl::StatusCode::kUnimplemented, "_rebuild_qtensor"},
      {"bad_persistent_id", "\x80\x02X\x01\x00\x00\x00xQ."s, absl::StatusCode::kInvalidArgument,
       "persistent id"},
  };
}

TEST(UnpicklerTest, HostilePicklesFailWithoutRunningAnything) {
  for (const HostileCase& c : HostileCases()) {
    SCOPED_TRACE(c.name);
    EXPECT_THAT(Unpickle(c.pickle, "evil.pt:data.pkl"),
                StatusIs(c.code, ::testing::AllOf(HasSubstr(c.message),
                                                  HasSubstr("evil.pt:data.pkl"))));
  }
}

TEST(UnpicklerTest, DeepNestingIsRejected) {
  // 100000 nested one-element lists: ']' then (']' ... 'a') pairs.
  std::string p = "\x80\x02]";
  for (int i = 0; i < 100000; ++i) p += "]";
  for (int i = 0; i < 100000; ++i) p += "a";
  p += ".";
  EXPECT_THAT(Unpickle(p, "deep"), StatusIs(absl::StatusCode::kInvalidArgument,
                                            HasSubstr("nested deeper")));
  // Many MARKs are bounded too.
  EXPECT_THAT(Unpickle(std::string(2000, '('), "marks"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("MARKs nested")));
  EXPECT_THAT(Unpickle("\x80\x02(N."s, "open mark"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("open MARK")));
}

TEST(UnpicklerTest, MemoLimitAndCyclesAreSafe) {
  UnpicklerOptions small;
  small.max_memo_entries = 2;
  EXPECT_THAT(Unpickle("\x80\x02Nq\x01q\x02q\x03.", "memo", small),
              StatusIs(absl::StatusCode::kResourceExhausted));
  // l = []; l.append(l): a cycle. Unpickling succeeds; walking reports the cycle.
  auto cyclic = Unpickle("\x80\x02]q\x00h\x00" "a."s, "cycle");
  ASSERT_TRUE(cyclic.ok()) << cyclic.status();
  EXPECT_THAT(WalkValues(*cyclic->root, 100, [](const std::string&, const Value&) {
                return true;
              }),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cycle")));
}

TEST(UnpicklerTest, EnumThroughGetattrIsAnInertReference) {
  // Python 3.11: getattr(megatron...AttnBackend, 'auto').
  const std::string p =
      "\x80\x02" "c__builtin__\ngetattr\ncmegatron.core.transformer.enums\nAttnBackend\n"
      "X\x04\x00\x00\x00" "auto\x86R."s;
  auto result = Unpickle(p, "t");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->root->kind, Kind::kGlobal);
  EXPECT_EQ(result->root->QualifiedName(), "megatron.core.transformer.enums.AttnBackend.auto");
}

TEST(UnpicklerTest, StrictModeRejectsUnknownGlobals) {
  const std::string p = "\x80\x02" "cmegatron.core.enums\nModelType\nK\x01\x85R.";
  auto lenient = Unpickle(p, "t");
  ASSERT_TRUE(lenient.ok());
  EXPECT_EQ(lenient->root->kind, Kind::kObject);
  EXPECT_EQ(lenient->root->QualifiedName(), "megatron.core.enums.ModelType");
  UnpicklerOptions strict;
  strict.strict_globals = true;
  EXPECT_THAT(Unpickle(p, "t", strict), StatusIs(absl::StatusCode::kPermissionDenied,
                                                 HasSubstr("allow-list")));
}

}  // namespace
}  // namespace mxport::pickle
