// The NCCL transport: device buffers moved with ncclSend/ncclRecv on one non-blocking
// communicator per job generation.
//
// Bootstrap: rank 0 of a generation calls NewNcclUniqueId() and publishes the 128 bytes
// through the coordinator; every rank (rank 0 included) then calls ConnectNcclGroup with them.
// An id serves one generation and is never reused. The communicator is created non-blocking
// (ncclConfig_t::blocking = 0), so no NCCL call ever blocks a thread: initialisation and every
// Exchange poll ncclCommGetAsyncError and the stream under Options::op_timeout.
//
// Exchange copies the step's send buffers to the device, posts every send and receive of the
// step in one ncclGroupStart/ncclGroupEnd, waits for the group while watching for three things
// — an asynchronous NCCL error (a peer died or the network broke: Unavailable), Abort() from
// any thread (Aborted), and the deadline (DeadlineExceeded) — and copies received bytes back
// to the host. On any of them it calls ncclCommAbort itself: only the thread inside Exchange
// touches the communicator, as NCCL's fault-tolerance rules require. Abort() with no Exchange
// running aborts the communicator at once. NCCL cannot tell message sizes apart: both sides
// must agree (the plan fixes them). Send/Recv are one-op exchanges (streaming() is false). See
// transport.h for the contract.
//
// Built only with CUDA; NcclDeviceCount() is 0 on machines without a GPU, where callers must
// not pick this transport.
#ifndef MXPORT_WORKER_TRANSPORT_NCCL_TRANSPORT_H_
#define MXPORT_WORKER_TRANSPORT_NCCL_TRANSPORT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "worker/transport/transport.h"

namespace mxport::transport {

struct NcclOptions {
  TransportOptions transport;
  int device = 0;  // CUDA device of this rank
  absl::Duration poll_interval = absl::Microseconds(100);
};

// GPUs this process can use (0 without a driver or device; never an error).
int NcclDeviceCount();

// A fresh ncclUniqueId as 128 bytes. The caller's process must stay alive until every rank has
// connected (it hosts NCCL's bootstrap root).
absl::StatusOr<std::string> NewNcclUniqueId();

// Joins the group of `unique_id` as options.transport.rank; returns when every rank has joined.
absl::StatusOr<std::unique_ptr<Transport>> ConnectNcclGroup(NcclOptions options,
                                                            absl::string_view unique_id);

}  // namespace mxport::transport

#endif  // MXPORT_WORKER_TRANSPORT_NCCL_TRANSPORT_H_
