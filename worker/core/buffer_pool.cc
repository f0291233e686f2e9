#include "worker/core/buffer_pool.h"

#include <algorithm>
#include <utility>

namespace mxport::worker {

BufferPool::Buffer& BufferPool::Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    Release();
    pool_ = std::exchange(other.pool_, nullptr);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    capacity_ = std::exchange(other.capacity_, 0);
    heap_ = other.heap_;
  }
  return *this;
}

void BufferPool::Buffer::Release() {
  if (pool_ != nullptr && data_ != nullptr) pool_->Return(Block{data_, heap_}, capacity_);
  pool_ = nullptr;
  data_ = nullptr;
  size_ = capacity_ = 0;
}

BufferPool::~BufferPool() {
  absl::MutexLock lock(&mu_);
  for (auto& [capacity, block] : free_) Drop(block);
  free_.clear();
}

void BufferPool::Drop(Block block) {
  if (block.heap) {
    delete[] block.data;
  } else {
    options_.free(block.data);
  }
}

size_t BufferPool::Capacity(size_t size) const {
  const size_t g = std::max<uint64_t>(1, options_.granularity);
  if (size >= g) return (size + g - 1) / g * g;
  size_t c = 64;
  while (c < size) c <<= 1;
  return std::min(c, g);
}

BufferPool::Buffer BufferPool::Acquire(size_t size) {
  Buffer buffer;
  buffer.pool_ = this;
  buffer.size_ = size;
  const size_t capacity = Capacity(size);
  {
    absl::MutexLock lock(&mu_);
    auto it = free_.lower_bound(capacity);
    if (it != free_.end() && it->first <= capacity + capacity / 4) {
      buffer.capacity_ = it->first;
      buffer.data_ = it->second.data;
      buffer.heap_ = it->second.heap;
      retained_ -= it->first;
      free_.erase(it);
      return buffer;
    }
    ++allocations_;
  }
  buffer.capacity_ = capacity;
  if (options_.allocate && options_.free) buffer.data_ = options_.allocate(capacity);
  buffer.heap_ = buffer.data_ == nullptr;
  if (buffer.heap_) buffer.data_ = new char[capacity];  // uninitialised on purpose
  return buffer;
}

void BufferPool::Return(Block block, size_t capacity) {
  absl::MutexLock lock(&mu_);
  // Keep the newest; drop the largest kept ones while over the bound.
  free_.emplace(capacity, block);
  retained_ += capacity;
  while (retained_ > options_.retain_bytes && !free_.empty()) {
    auto largest = std::prev(free_.end());
    retained_ -= largest->first;
    Drop(largest->second);
    free_.erase(largest);
  }
}

uint64_t BufferPool::allocations() const {
  absl::MutexLock lock(&mu_);
  return allocations_;
}

uint64_t BufferPool::retained_bytes() const {
  absl::MutexLock lock(&mu_);
  return retained_;
}

}  // namespace mxport::worker
