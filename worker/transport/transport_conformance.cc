#include "worker/transport/transport_conformance.h"

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/testing/status_matchers.h"

namespace mxport::transport {

namespace {

using ::mxport::testing::StatusIs;

// Verifiable payload: a function of (from, to, index, byte).
std::string Payload(int from, int to, int index, size_t size) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) s[i] = static_cast<char>(from * 31 + to * 7 + index * 13 + i);
  return s;
}

#define MXPORT_GROUP_OR_SKIP(g, world, timeout)                                              \
  if (GetParam().max_world() < (world)) {                                                     \
    GTEST_SKIP() << GetParam().name << " offers " << GetParam().max_world() << " ranks here; " \
                 << "this case needs " << (world);                                            \
  }                                                                                           \
  Group g = GetParam().make((world), (timeout));                                              \
  ASSERT_EQ(g.size(), static_cast<size_t>(world))

#define MXPORT_STREAMING_OR_SKIP(g)                                                       \
  if (!g[0]->streaming()) {                                                               \
    GTEST_SKIP() << GetParam().name << " takes only Exchange steps (no lone Send/Recv)"; \
  }

// --- Exchange: every transport -------------------------------------------------------------

// Sizes vary by (step, from, to) and include empty messages.
size_t StepSize(int step, int from, int to) {
  return (step * 7 + from * 3 + to) % 5 == 0 ? 0 : 1000 + step * 4099 + from * 131 + to * 17;
}

TEST_P(TransportConformanceTest, ExchangeStepsAllToAllWithVerifiablePayloads) {
  const int world = std::min(4, std::max(1, GetParam().max_world()));
  constexpr int kSteps = 6;
  MXPORT_GROUP_OR_SKIP(g, world, absl::Seconds(60));
  std::atomic<int> mismatches{0}, errors{0};
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      for (int step = 0; step < kSteps; ++step) {
        std::vector<std::string> out(world), in(world);
        std::vector<SendOp> sends;
        std::vector<RecvOp> recvs;
        for (int peer = 0; peer < world; ++peer) {
          out[peer] = Payload(r, peer, step, StepSize(step, r, peer));
          sends.push_back({peer, out[peer]});
          in[peer].assign(StepSize(step, peer, r), '\0');
          recvs.push_back({peer, absl::MakeSpan(in[peer])});
        }
        if (!g[r]->Exchange(sends, recvs).ok()) ++errors;
        for (int peer = 0; peer < world; ++peer) {
          if (in[peer] != Payload(peer, r, step, in[peer].size())) ++mismatches;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
}

TEST_P(TransportConformanceTest, ExchangeKeepsOrderOfSeveralMessagesToOnePeer) {
  const int world = std::min(2, std::max(1, GetParam().max_world()));
  MXPORT_GROUP_OR_SKIP(g, world, absl::Seconds(60));
  std::atomic<int> mismatches{0}, errors{0};
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      const int to = (r + 1) % world, from = (r + world - 1) % world;
      std::vector<std::string> out, in;
      for (int i = 0; i < 5; ++i) out.push_back(Payload(r, to, i, 100 + i));
      for (int i = 0; i < 5; ++i) in.emplace_back(100 + i, '\0');
      std::vector<SendOp> sends;
      std::vector<RecvOp> recvs;
      for (int i = 0; i < 5; ++i) {
        sends.push_back({to, out[i]});
        recvs.push_back({from, absl::MakeSpan(in[i])});
      }
      if (!g[r]->Exchange(sends, recvs).ok()) ++errors;
      for (int i = 0; i < 5; ++i) {
        if (in[i] != Payload(from, r, i, in[i].size())) ++mismatches;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
}

TEST_P(TransportConformanceTest, ExchangeMovesLargeMessages) {
  const int world = std::min(2, std::max(1, GetParam().max_world()));
  MXPORT_GROUP_OR_SKIP(g, world, absl::Seconds(120));
  constexpr size_t kBig = size_t{48} << 20;
  std::atomic<int> mismatches{0}, errors{0};
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      const int to = (r + 1) % world, from = (r + world - 1) % world;
      const std::string out = Payload(r, to, 0, kBig);
      std::string in(kBig, '\0');
      const SendOp send{to, out};
      const RecvOp recv{from, absl::MakeSpan(in)};
      if (!g[r]->Exchange(absl::MakeConstSpan(&send, 1), absl::MakeConstSpan(&recv, 1)).ok()) {
        ++errors;
      }
      if (in != Payload(from, r, 0, kBig)) ++mismatches;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
}

// Needs a partner that never sends: on one rank, NCCL's self messages must pair up in one
// step (nccl_transport_test checks that error instead).
TEST_P(TransportConformanceTest, AbortUnblocksAWaitingExchange) {
  constexpr int world = 2;
  MXPORT_GROUP_OR_SKIP(g, world, absl::Minutes(10));
  const int from = world - 1;  // nobody sends it
  std::atomic<bool> returned{false};
  absl::Status status;
  std::thread waiter([&] {
    std::string buf(4096, '\0');
    const RecvOp recv{from, absl::MakeSpan(buf)};
    status = g[0]->Exchange({}, absl::MakeConstSpan(&recv, 1));
    returned = true;
  });
  // The waiter may or may not be waiting yet; Abort must work either way.
  g[0]->Abort();
  waiter.join();
  EXPECT_TRUE(returned.load());
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kAborted));
  const std::string x = "x";
  const SendOp send{from, x};
  EXPECT_THAT(g[0]->Exchange(absl::MakeConstSpan(&send, 1), {}),
              StatusIs(absl::StatusCode::kAborted));
}

TEST_P(TransportConformanceTest, AnUnmatchedExchangeTimesOut) {
  constexpr int world = 2;
  MXPORT_GROUP_OR_SKIP(g, world, absl::Milliseconds(300));
  std::string buf(4096, '\0');
  const RecvOp recv{world - 1, absl::MakeSpan(buf)};
  EXPECT_THAT(g[0]->Exchange({}, absl::MakeConstSpan(&recv, 1)),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST_P(TransportConformanceTest, ExchangeRejectsARankOutsideTheGroup) {
  MXPORT_GROUP_OR_SKIP(g, 1, absl::Seconds(10));
  const std::string x = "x";
  const SendOp send{5, x};
  EXPECT_THAT(g[0]->Exchange(absl::MakeConstSpan(&send, 1), {}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// --- Lone Send/Recv: stream transports -----------------------------------------------------

TEST_P(TransportConformanceTest, AllToAllInOrderWithVerifiablePayloads) {
  constexpr int kRanks = 4, kMessages = 20;
  MXPORT_GROUP_OR_SKIP(g, kRanks, absl::Seconds(30));
  MXPORT_STREAMING_OR_SKIP(g);
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
  MXPORT_GROUP_OR_SKIP(g, 2, absl::Seconds(60));
  MXPORT_STREAMING_OR_SKIP(g);
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
  MXPORT_GROUP_OR_SKIP(g, 2, absl::Seconds(30));
  MXPORT_STREAMING_OR_SKIP(g);
  ASSERT_OK(g[0]->Send(1, "12345"));
  std::string buf(4, '\0');
  EXPECT_THAT(g[1]->Recv(0, absl::MakeSpan(buf)), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(g[1]->Send(5, "x"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_P(TransportConformanceTest, AbortUnblocksAWaitingReceive) {
  MXPORT_GROUP_OR_SKIP(g, 2, absl::Minutes(10));
  MXPORT_STREAMING_OR_SKIP(g);
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
  MXPORT_GROUP_OR_SKIP(g, 3, absl::Minutes(10));
  MXPORT_STREAMING_OR_SKIP(g);
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
  MXPORT_GROUP_OR_SKIP(g, 2, absl::Milliseconds(200));
  MXPORT_STREAMING_OR_SKIP(g);
  std::string buf(8, '\0');
  EXPECT_THAT(g[1]->Recv(0, absl::MakeSpan(buf)),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
}

}  // namespace
}  // namespace mxport::transport
