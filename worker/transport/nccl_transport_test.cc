// The conformance suite on NCCL, with as many ranks as this machine has GPUs (one rank per GPU,
// one thread per rank). Labelled gpu: on a machine without one every case skips, saying so.
#include <thread>

#include "gtest/gtest.h"
#include "worker/transport/nccl_transport.h"
#include "worker/transport/transport_conformance.h"

namespace mxport::transport {
namespace {

Group MakeNcclGroup(int n, absl::Duration timeout) {
  Group group(n);
  absl::StatusOr<std::string> id = NewNcclUniqueId();
  EXPECT_TRUE(id.ok()) << id.status();
  if (!id.ok()) return {};
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r) {
    threads.emplace_back([&, r] {
      NcclOptions options;
      options.transport = {r, n, timeout};
      options.device = r;
      auto t = ConnectNcclGroup(options, *id);
      EXPECT_TRUE(t.ok()) << t.status();
      if (t.ok()) group[r] = std::move(*t);
    });
  }
  for (auto& t : threads) t.join();
  return group;
}

INSTANTIATE_TEST_SUITE_P(Gpus, TransportConformanceTest,
                         ::testing::Values(ConformanceFactory{"nccl", NcclDeviceCount,
                                                              MakeNcclGroup}),
                         [](const auto& info) { return info.param.name; });

TEST(NcclTransportTest, ABadUniqueIdIsRejected) {
  NcclOptions options;
  EXPECT_EQ(ConnectNcclGroup(options, "short").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(NcclTransportTest, UnpairedSelfMessagesAreRejectedNotHung) {
  if (NcclDeviceCount() < 1) GTEST_SKIP() << "no GPU here";
  Group g = MakeNcclGroup(1, absl::Seconds(30));
  ASSERT_EQ(g.size(), 1u);
  std::string buf(64, '\0');
  const RecvOp recv{0, absl::MakeSpan(buf)};
  EXPECT_EQ(g[0]->Exchange({}, absl::MakeConstSpan(&recv, 1)).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(NcclTransportTest, AbortBeforeAStepMakesItAborted) {
  if (NcclDeviceCount() < 1) GTEST_SKIP() << "no GPU here";
  Group g = MakeNcclGroup(1, absl::Seconds(30));
  ASSERT_EQ(g.size(), 1u);
  g[0]->Abort();
  const std::string out(64, 'x');
  std::string in(64, '\0');
  const SendOp send{0, out};
  const RecvOp recv{0, absl::MakeSpan(in)};
  EXPECT_EQ(g[0]->Exchange(absl::MakeConstSpan(&send, 1), absl::MakeConstSpan(&recv, 1)).code(),
            absl::StatusCode::kAborted);
}

TEST(NcclTransportTest, NoGpuIsAClearError) {
  if (NcclDeviceCount() > 0) GTEST_SKIP() << "this machine has a GPU";
  NcclOptions options;
  auto t = ConnectNcclGroup(options, std::string(128, '\0'));
  EXPECT_EQ(t.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(t.status().message().find("needs a GPU"), std::string::npos) << t.status();
}

}  // namespace
}  // namespace mxport::transport
