// BufferPool: reusable byte buffers for the data plane.
//
// A worker reads, sends, receives and writes the same sizes of chunk over and over. Allocating
// each one afresh costs more than the copy it holds: large allocations are fresh mappings whose
// pages the kernel faults in and zeroes, and a zero-filled std::string writes every byte once
// more before pread overwrites it. The pool hands out uninitialised buffers and takes them back
// when the Buffer handle is destroyed, keeping up to `retain_bytes` of them for the next
// Acquire; a request is served from the smallest kept buffer that fits without wasting more
// than a quarter of its size, else allocated. Capacities round up to `granularity` (powers of
// two below it), so chunks of nearly equal size share buffers.
//
// Memory held is what is in use plus at most retain_bytes. Thread-safe; the pool must outlive
// its buffers.
#ifndef MXPORT_WORKER_CORE_BUFFER_POOL_H_
#define MXPORT_WORKER_CORE_BUFFER_POOL_H_

#include <cstddef>
#include <cstdint>
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
  };

  // A buffer of size() bytes (capacity() allocated); returns itself to the pool when destroyed.
  class Buffer {
   public:
    Buffer() = default;
    Buffer(Buffer&& other) noexcept { *this = std::move(other); }
    Buffer& operator=(Buffer&& other) noexcept;
    ~Buffer() { Release(); }
    char* data() const { return data_.get(); }
    size_t size() const { return size_; }
    size_t capacity() const { return capacity_; }
    absl::Span<char> span() const { return absl::MakeSpan(data_.get(), size_); }
    absl::string_view view() const { return absl::string_view(data_.get(), size_); }

   private:
    friend class BufferPool;
    void Release();
    BufferPool* pool_ = nullptr;
    std::unique_ptr<char[]> data_;
    size_t size_ = 0, capacity_ = 0;
  };

  BufferPool() : BufferPool(Options()) {}
  explicit BufferPool(Options options) : options_(options) {}
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // A buffer of exactly `size` usable bytes, contents unspecified.
  Buffer Acquire(size_t size);

  // Counters for tests and logs.
  uint64_t allocations() const;    // buffers allocated (not reused) so far
  uint64_t retained_bytes() const;  // capacity kept for reuse now

 private:
  size_t Capacity(size_t size) const;
  void Return(std::unique_ptr<char[]> data, size_t capacity);

  const Options options_;
  mutable absl::Mutex mu_;
  std::multimap<size_t, std::unique_ptr<char[]>> free_ ABSL_GUARDED_BY(mu_);  // by capacity
  uint64_t retained_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t allocations_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace mxport::worker

#endif  // MXPORT_WORKER_CORE_BUFFER_POOL_H_
