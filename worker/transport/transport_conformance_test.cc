// The conformance suite on loopback and TCP (nccl_transport_test runs it on GPUs), and cases
// particular to TCP.
#include <thread>

#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"
#include "worker/transport/tcp_transport.h"
#include "worker/transport/transport.h"
#include "worker/transport/transport_conformance.h"

namespace mxport::transport {
namespace {

using ::mxport::testing::StatusIs;
Group MakeTcpGroup(int n, absl::Duration timeout) {
  std::vector<std::unique_ptr<TcpListener>> listeners;
  std::vector<std::string> addresses;
  for (int r = 0; r < n; ++r) {
    auto l = TcpListener::Bind("127.0.0.1", 0);
    EXPECT_TRUE(l.ok()) << l.status();
    addresses.push_back((*l)->address());
    listeners.push_back(std::move(*l));
  }
  Group group(n);
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r) {
    threads.emplace_back([&, r] {
      auto t = ConnectTcpGroup({r, n, timeout}, *listeners[r], addresses, 7);
      EXPECT_TRUE(t.ok()) << t.status();
      if (t.ok()) group[r] = std::move(*t);
    });
  }
  for (auto& t : threads) t.join();
  return group;
}

INSTANTIATE_TEST_SUITE_P(
    Transports, TransportConformanceTest,
    ::testing::Values(ConformanceFactory{"loopback", [] { return 16; },
                                         [](int n, absl::Duration t) {
                                           return NewLoopbackGroup(n, t);
                                         }},
                      ConformanceFactory{"tcp", [] { return 16; }, MakeTcpGroup},
                      ConformanceFactory{"rendezvous", [] { return 16; },
                                         [](int n, absl::Duration t) {
                                           return NewRendezvousGroup(n, t);
                                         }}),
    [](const auto& info) { return info.param.name; });

TEST(TcpTransportTest, AConnectionFromAnotherGenerationIsRefused) {
  auto l0 = TcpListener::Bind("127.0.0.1", 0);
  auto l1 = TcpListener::Bind("127.0.0.1", 0);
  ASSERT_TRUE(l0.ok() && l1.ok());
  const std::vector<std::string> addresses = {(*l0)->address(), (*l1)->address()};
  std::thread stale([&] {
    // Rank 1 of generation 3 connects to rank 0 of generation 4: rank 0 must not accept it.
    auto t = ConnectTcpGroup({1, 2, absl::Seconds(2)}, **l1, addresses, 3);
    EXPECT_TRUE(t.ok());  // its side completes (it only connects)
  });
  auto t0 = ConnectTcpGroup({0, 2, absl::Milliseconds(500)}, **l0, addresses, 4);
  stale.join();
  EXPECT_THAT(t0, StatusIs(absl::StatusCode::kDeadlineExceeded));
}

}  // namespace
}  // namespace mxport::transport
