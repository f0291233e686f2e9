// The pool reuses what comes back, within its bound, and never hands out one buffer twice.
#include "worker/core/buffer_pool.h"

#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace mxport::worker {
namespace {

TEST(BufferPoolTest, ReusesReturnedBuffersOfNearlyTheSameSize) {
  BufferPool pool(BufferPool::Options{.retain_bytes = 64 << 20, .granularity = 1 << 20});
  const char* first = nullptr;
  {
    BufferPool::Buffer b = pool.Acquire((8 << 20) - 100);
    ASSERT_EQ(b.size(), (8u << 20) - 100);
    EXPECT_EQ(b.capacity(), 8u << 20);
    std::memset(b.data(), 7, b.size());
    first = b.data();
  }
  EXPECT_EQ(pool.retained_bytes(), 8u << 20);
  BufferPool::Buffer again = pool.Acquire(8 << 20);  // same capacity class: reused
  EXPECT_EQ(again.data(), first);
  EXPECT_EQ(again.size(), 8u << 20);
  EXPECT_EQ(pool.allocations(), 1u);
  EXPECT_EQ(pool.retained_bytes(), 0u);
}

TEST(BufferPoolTest, DoesNotServeSmallRequestsFromLargeBuffers) {
  BufferPool pool(BufferPool::Options{.retain_bytes = 64 << 20, .granularity = 1 << 20});
  { BufferPool::Buffer big = pool.Acquire(32 << 20); }
  BufferPool::Buffer small = pool.Acquire(4 << 20);  // would waste 28 MiB: allocated
  EXPECT_EQ(small.capacity(), 4u << 20);
  EXPECT_EQ(pool.allocations(), 2u);
  EXPECT_EQ(pool.retained_bytes(), 32u << 20);
  BufferPool::Buffer tiny = pool.Acquire(100);  // below the granularity: a power of two
  EXPECT_EQ(tiny.capacity(), 128u);
}

TEST(BufferPoolTest, KeepsAtMostRetainBytes) {
  BufferPool pool(BufferPool::Options{.retain_bytes = 10 << 20, .granularity = 1 << 20});
  {
    std::vector<BufferPool::Buffer> held;
    for (int i = 0; i < 6; ++i) held.push_back(pool.Acquire(4 << 20));
  }
  EXPECT_EQ(pool.retained_bytes(), 8u << 20);  // two of the six 4 MiB buffers fit in 10 MiB
  EXPECT_EQ(pool.allocations(), 6u);
}

TEST(BufferPoolTest, MovedBuffersReturnOnce) {
  BufferPool pool;
  BufferPool::Buffer a = pool.Acquire(1000);
  BufferPool::Buffer b = std::move(a);
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_EQ(a.size(), 0u);
  a = std::move(b);
  b = BufferPool::Buffer();
  EXPECT_EQ(pool.retained_bytes(), 0u);
  a = BufferPool::Buffer();
  EXPECT_EQ(pool.retained_bytes(), 1024u);
}

TEST(BufferPoolTest, ConcurrentUsersNeverShareABuffer) {
  BufferPool pool(BufferPool::Options{.retain_bytes = 1 << 20, .granularity = 4096});
  std::vector<std::thread> threads;
  std::vector<int> bad(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&pool, &bad, t] {
      for (int i = 0; i < 2000; ++i) {
        BufferPool::Buffer b = pool.Acquire(4096 + (i % 3) * 512);
        std::memset(b.data(), t, b.size());
        for (size_t k = 0; k < b.size(); k += 511) bad[t] += b.data()[k] != t;
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(bad[t], 0) << t;
  EXPECT_LE(pool.retained_bytes(), 1u << 20);
}

// Memory comes from Options::allocate and goes back through Options::free exactly once, kept
// buffers included when the pool goes; a failed allocate falls back to the heap.
TEST(BufferPoolTest, UsesTheGivenAllocatorAndFallsBackToTheHeap) {
  std::set<char*> live;
  int allocations = 0, frees = 0;
  bool fail = false;
  {
    BufferPool::Options o;
    o.retain_bytes = 8 << 20;
    o.allocate = [&](size_t n) -> char* {
      if (fail) return nullptr;
      ++allocations;
      char* p = new char[n];
      live.insert(p);
      return p;
    };
    o.free = [&](char* p) {
      ++frees;
      EXPECT_EQ(live.erase(p), 1u);
      delete[] p;
    };
    BufferPool pool(o);
    BufferPool::Buffer a = pool.Acquire(4 << 20);
    EXPECT_TRUE(live.contains(a.data()));
    fail = true;
    BufferPool::Buffer b = pool.Acquire(4 << 20);  // the heap: not in `live`
    EXPECT_FALSE(live.contains(b.data()));
    std::memset(b.data(), 1, b.size());
    a = BufferPool::Buffer();  // kept
    b = BufferPool::Buffer();  // kept (8 MiB retained)
    BufferPool::Buffer c = pool.Acquire(16 << 20);  // neither fits; heap again
    c = BufferPool::Buffer();  // over the bound: the largest (itself) is dropped
    EXPECT_EQ(frees, 0);
  }
  EXPECT_EQ(allocations, 1);
  EXPECT_EQ(frees, 1);  // the kept allocator buffer, when the pool went
  EXPECT_TRUE(live.empty());
}

}  // namespace
}  // namespace mxport::worker
