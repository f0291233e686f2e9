// BufferPool: reusable byte buffers for the data plane.
//
// A worker reads, sends, receives and writes the same sizes of chunk over and over. Allocating
// each one afresh costs more than the copy it holds: large allocations are fresh mappings whose
// pages the kernel faults in and zeroes, and a zero-filled std::string writes every byte once
// more before pread overwrites it. The pool hands out uninitialised buffers and takes them back
// when the Buffer handle is destroyed, keeping up to `retain_bytes` of them for the next
// Acquire; a request is served from the smallest kept buffer that fits without wasting more
// than a quarter of its size, else allocated. Capacities round up to `granularity` (powers of
// two below it), so chunks of nearly equal size share buffers. Memory comes from
// Options::allocate (e.g. page-locked memory for a GPU's copies; Transport::AllocateHost), or
// the heap when it is unset or fails.
//
// Memory held is what is in use plus at most retain_bytes. Thread-safe; the pool must outlive
// its buffers.
#ifndef MXPORT_WORKER_CORE_BUFFER_POOL_H_
#define MXPORT_WORKER_CORE_BUFFER_POOL_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>

#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"

namespace mxport::worker {

class BufferPool {
 public:
  struct Options {
    uint64_t retain_bytes = uint64_t{256} << 20;
    uint64_t granularity = uint64_t{1} << 20;
    // Where buffers come from and go back to (both or neither); nullptr from allocate: heap.
    std::function<char*(size_t)> allocate;
    std::function<void(char*)> free;
  };

  // A buffer of size() bytes (capacity() allocated); returns itself to the pool when destroyed.
  class Buffer {
   public:
    Buffer() = default;
    Buffer(Buffer&& other) noexcept { *this = std::move(other); }
    Buffer& operator=(Buffer&& other) noexcept;
    ~Buffer() { Release(); }
    char* data() const { return data_; }
    size_t size() const { return size_; }
    size_t capacity() const { return capacity_; }
    absl::Span<char> span() const { return absl::MakeSpan(data_, size_); }
    absl::string_view view() const { return absl::string_view(data_, size_); }

   private:
    friend class BufferPool;
    void Release();
    BufferPool* pool_ = nullptr;
    char* data_ = nullptr;
    size_t size_ = 0, capacity_ = 0;
    bool heap_ = true;  // from new[], not Options::allocate
  };

  BufferPool() : BufferPool(Options()) {}
  explicit BufferPool(Options options) : options_(options) {}
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // A buffer of exactly `size` usable bytes, contents unspecified.
  Buffer Acquire(size_t size);

  // Counters for tests and logs.
  uint64_t allocations() const;    // buffers allocated (not reused) so far
  uint64_t retained_bytes() const;  // capacity kept for reuse now

 private:
  struct Block {
    char* data;
    bool heap;
  };
  size_t Capacity(size_t size) const;
  void Return(Block block, size_t capacity);
  void Drop(Block block);

  const Options options_;
  mutable absl::Mutex mu_;
  std::multimap<size_t, Block> free_ ABSL_GUARDED_BY(mu_);  // by capacity
  uint64_t retained_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t allocations_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace mxport::worker

#endif  // MXPORT_WORKER_CORE_BUFFER_POOL_H_
