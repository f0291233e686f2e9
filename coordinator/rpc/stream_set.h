// StreamSet: the long-lived streams a server has open (WatchJob, worker Sessions), so that
// shutdown can end them itself instead of waiting out gRPC's shutdown deadline.
//
// A stream Add()s itself when it starts (false once StopAll() has run: the stream should finish
// at once) and Remove()s itself when it is done. StopAll() calls Stop() on every stream and
// refuses new ones; Stop() must only set a flag and wake the stream's own thread (it is called
// with the set's lock held). WaitEmpty() waits for the streams to go. Thread-safe.
#ifndef MXPORT_COORDINATOR_RPC_STREAM_SET_H_
#define MXPORT_COORDINATOR_RPC_STREAM_SET_H_

#include <set>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace mxport::coordinator::rpc {

class StoppableStream {
 public:
  virtual ~StoppableStream() = default;
  virtual void Stop() = 0;
};

class StreamSet {
 public:
  bool Add(StoppableStream* stream) {
    absl::MutexLock lock(&mu_);
    if (stopping_) return false;
    streams_.insert(stream);
    return true;
  }
  void Remove(StoppableStream* stream) {
    absl::MutexLock lock(&mu_);
    streams_.erase(stream);
  }
  void StopAll() {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    for (StoppableStream* stream : streams_) stream->Stop();
  }
  bool stopping() const {
    absl::MutexLock lock(&mu_);
    return stopping_;
  }
  // True when every stream is gone by `deadline`.
  bool WaitEmpty(absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    auto empty = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return streams_.empty(); };
    return mu_.AwaitWithDeadline(absl::Condition(&empty), deadline);
  }
  size_t size() const {
    absl::MutexLock lock(&mu_);
    return streams_.size();
  }

 private:
  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::set<StoppableStream*> streams_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mxport::coordinator::rpc

#endif  // MXPORT_COORDINATOR_RPC_STREAM_SET_H_
