// One suite for every Transport: loopback and TCP here; NCCL runs the same cases on GPUs.
#include <functional>
#include <numeric>
#include <thread>

#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"
#include "worker/transport/tcp_transport.h"
#include "worker/transport/transport.h"

namespace mxport::transport {
namespace {

using ::mxport::testing::StatusIs;
using Group = std::vector<std::unique_ptr<Transport>>;

struct Factory {
  std::string name;
  std::function<Group(int, absl::Duration)> make;
};

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

// Verifiable payload: a function of (from, to, index, byte).
std::string Payload(int from, int to, int index, size_t size) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) s[i] = static_cast<char>(from * 31 + to * 7 + index * 13 + i);
  return s;
}

class TransportConformanceTest : public ::testing::TestWithParam<Factory> {};

TEST_P(TransportConformanceTest, AllToAllInOrderWithVerifiablePayloads) {
  constexpr int kRanks = 4, kMessages = 20;
  Group g = GetParam().make(kRanks, absl::Seconds(30));
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0}, errors{0};
  for (int r = 0; r < kRanks; ++r) {
    threads.emplace_back([&, r] {  // sender
      for (int i = 0; i < kMessages; ++i) {
        for (int to = 0; to < kRanks; ++to) {
          if (!g[r]->Send(to, Payload(r, to, i, 1000 + i * 37)).ok()) ++errors;
        }
      }
    });
    threads.emplace_back([&, r] {  // receiver
      for (int i = 0; i < kMessages; ++i) {
        for (int from = 0; from < kRanks; ++from) {
          std::string buf(1000 + i * 37, '\0');
          if (!g[r]->Recv(from, absl::MakeSpan(buf)).ok()) ++errors;
          if (buf != Payload(from, r, i, buf.size())) ++mismatches;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
}

TEST_P(TransportConformanceTest, LargeAndEmptyMessages) {
  Group g = GetParam().make(2, absl::Seconds(60));
  const std::string big = Payload(0, 1, 0, 48 << 20);
  std::thread sender([&] {
    EXPECT_OK(g[0]->Send(1, big));
    EXPECT_OK(g[0]->Send(1, ""));
  });
  std::string got(big.size(), '\0');
  EXPECT_OK(g[1]->Recv(0, absl::MakeSpan(got)));
  EXPECT_TRUE(got == big);
  std::string empty;
  EXPECT_OK(g[1]->Recv(0, absl::MakeSpan(empty)));
  sender.join();
}

TEST_P(TransportConformanceTest, SizeMismatchIsInvalidArgument) {
  Group g = GetParam().make(2, absl::Seconds(30));
  ASSERT_OK(g[0]->Send(1, "12345"));
  std::string buf(4, '\0');
  EXPECT_THAT(g[1]->Recv(0, absl::MakeSpan(buf)), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(g[1]->Send(5, "x"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_P(TransportConformanceTest, AbortUnblocksAWaitingReceive) {
  Group g = GetParam().make(2, absl::Minutes(10));
  std::thread waiter([&] {
    std::string buf(8, '\0');
    EXPECT_THAT(g[1]->Recv(0, absl::MakeSpan(buf)), StatusIs(absl::StatusCode::kAborted));
  });
  // The waiter may not have started waiting yet; Abort must work either way.
  g[1]->Abort();
  waiter.join();
  EXPECT_THAT(g[1]->Send(0, "x"), StatusIs(absl::StatusCode::kAborted));
}

TEST_P(TransportConformanceTest, ADeadPeerFailsItsPartnersPromptly) {
  Group g = GetParam().make(3, absl::Minutes(10));
  std::thread waiter([&] {
    std::string buf(8, '\0');
    absl::Status s = g[1]->Recv(2, absl::MakeSpan(buf));
    EXPECT_FALSE(s.ok());
    EXPECT_TRUE(s.code() == absl::StatusCode::kUnavailable ||
                s.code() == absl::StatusCode::kAborted)
        << s;
  });
  g[2]->Abort();
  g[2].reset();  // the peer process is gone
  waiter.join();
  // Unrelated pairs keep working until told to abort.
  ASSERT_OK(g[0]->Send(1, "ok"));
  std::string buf(2, '\0');
  EXPECT_OK(g[1]->Recv(0, absl::MakeSpan(buf)));
}

TEST_P(TransportConformanceTest, ReceiveTimesOut) {
  Group g = GetParam().make(2, absl::Milliseconds(200));
  std::string buf(8, '\0');
  EXPECT_THAT(g[1]->Recv(0, absl::MakeSpan(buf)),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
}

INSTANTIATE_TEST_SUITE_P(
    Transports, TransportConformanceTest,
    ::testing::Values(Factory{"loopback", [](int n, absl::Duration t) {
                                return NewLoopbackGroup(n, t);
                              }},
                      Factory{"tcp", MakeTcpGroup}),
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
