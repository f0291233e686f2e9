#include "worker/transport/nccl_transport.h"

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <atomic>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/base/status_macros.h"
#include "worker/cuda/cuda_status.h"

namespace mxport::transport {
namespace {

// NCCL results as Status codes (transport.h): remote and system failures are a dead peer.
absl::Status NcclStatus(ncclResult_t result, absl::string_view what, ncclComm_t comm = nullptr) {
  if (result == ncclSuccess) return absl::OkStatus();
  std::string message = absl::StrCat(what, ": ", ncclGetErrorString(result));
  const char* last = comm != nullptr ? ncclGetLastError(comm) : ncclGetLastError(nullptr);
  if (last != nullptr && last[0] != '\0') absl::StrAppend(&message, " (", last, ")");
  switch (result) {
    case ncclRemoteError:
    case ncclSystemError:
      return absl::UnavailableError(message);
    case ncclInvalidArgument:
    case ncclInvalidUsage:
      return absl::InvalidArgumentError(message);
    default:
      return absl::InternalError(message);
  }
}

// Grows a device buffer to at least `size` bytes.
absl::Status Reserve(void** buffer, size_t* capacity, size_t size) {
  if (size <= *capacity) return absl::OkStatus();
  if (*buffer != nullptr) CUDA_RETURN_IF_ERROR(cudaFree(*buffer));
  *buffer = nullptr;
  *capacity = 0;
  CUDA_RETURN_IF_ERROR(cudaMalloc(buffer, size));
  *capacity = size;
  return absl::OkStatus();
}

class NcclTransport : public StepTransport {
 public:
  NcclTransport(NcclOptions options, ncclComm_t comm, cudaStream_t stream)
      : StepTransport(options.transport), nccl_(options), comm_(comm), stream_(stream) {}

  ~NcclTransport() override {
    absl::MutexLock lock(&mu_);
    cudaSetDevice(nccl_.device);
    if (comm_ != nullptr && healthy_) {
      // Orderly: finalize (non-blocking, so poll), then destroy; abort if it does not finish.
      const ncclResult_t finalize = ncclCommFinalize(comm_);
      ncclResult_t state = finalize == ncclInProgress ? ncclInProgress : finalize;
      const absl::Time deadline = absl::Now() + options_.op_timeout;
      while (state == ncclInProgress && absl::Now() < deadline &&
             ncclCommGetAsyncError(comm_, &state) == ncclSuccess) {
        if (state == ncclInProgress) absl::SleepFor(nccl_.poll_interval);
      }
      if (state == ncclSuccess) {
        ncclCommDestroy(comm_);
        comm_ = nullptr;
      }
    }
    if (comm_ != nullptr) ncclCommAbort(comm_);
    if (send_buffer_ != nullptr) cudaFree(send_buffer_);
    if (recv_buffer_ != nullptr) cudaFree(recv_buffer_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  void Abort() override {
    abort_requested_ = true;
    // With no Exchange inside NCCL, abort here; otherwise the Exchange's wait loop does.
    if (mu_.TryLock()) {
      AbortCommLocked();
      mu_.Unlock();
    }
  }

  // Page-locked, so the staging copies to and from the device run at DMA speed (pageable
  // memory goes through the driver's own bounce buffers at a fraction of it). Portable: usable
  // with any device; allocated with this rank's device current, so no other GPU gets a context.
  char* AllocateHost(size_t bytes) override {
    void* p = nullptr;
    if (cudaSetDevice(nccl_.device) != cudaSuccess ||
        cudaHostAlloc(&p, bytes, cudaHostAllocPortable) != cudaSuccess) {
      cudaGetLastError();  // clear it: the caller falls back to the heap
      return nullptr;
    }
    return static_cast<char*>(p);
  }
  void FreeHost(char* p) override { cudaFreeHost(p); }

  absl::Status Exchange(absl::Span<const SendOp> sends, absl::Span<const RecvOp> recvs) override {
    absl::MutexLock lock(&mu_);
    if (abort_requested_) {
      AbortCommLocked();
      return Aborted();
    }
    if (!healthy_) return absl::FailedPreconditionError("NCCL transport failed earlier");
    absl::Status status = ExchangeLocked(sends, recvs);
    if (!status.ok()) AbortCommLocked();
    return status;
  }

 private:
  absl::Status Aborted() const {
    return absl::AbortedError(absl::StrCat("NCCL transport of rank ", rank(), " aborted"));
  }

  void AbortCommLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (comm_ == nullptr || !healthy_) return;
    healthy_ = false;
    cudaSetDevice(nccl_.device);
    ncclCommAbort(comm_);
    comm_ = nullptr;
  }

  absl::Status ExchangeLocked(absl::Span<const SendOp> sends, absl::Span<const RecvOp> recvs)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    size_t send_bytes = 0, recv_bytes = 0;
    for (const SendOp& op : sends) {
      RETURN_IF_ERROR(CheckPeer(op.peer));
      send_bytes += op.data.size();
    }
    for (const RecvOp& op : recvs) {
      RETURN_IF_ERROR(CheckPeer(op.peer));
      recv_bytes += op.dst.size();
    }
    // NCCL pairs a rank's messages to itself only within one group: check they match here
    // rather than hang.
    std::vector<size_t> self_sends, self_recvs;
    for (const SendOp& op : sends) {
      if (op.peer == rank() && !op.data.empty()) self_sends.push_back(op.data.size());
    }
    for (const RecvOp& op : recvs) {
      if (op.peer == rank() && !op.dst.empty()) self_recvs.push_back(op.dst.size());
    }
    if (self_sends != self_recvs) {
      return absl::InvalidArgumentError(absl::StrCat(
          "rank ", rank(), " posted ", self_sends.size(), " sends and ", self_recvs.size(),
          " receives to itself in one step; NCCL needs them matched, in order, with equal sizes"));
    }
    if (send_bytes == 0 && recv_bytes == 0) return absl::OkStatus();
    CUDA_RETURN_IF_ERROR(cudaSetDevice(nccl_.device));
    RETURN_IF_ERROR(Reserve(&send_buffer_, &send_capacity_, send_bytes));
    RETURN_IF_ERROR(Reserve(&recv_buffer_, &recv_capacity_, recv_bytes));
    char* send_base = static_cast<char*>(send_buffer_);
    char* recv_base = static_cast<char*>(recv_buffer_);
    size_t offset = 0;
    for (const SendOp& op : sends) {
      if (op.data.empty()) continue;
      CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(send_base + offset, op.data.data(), op.data.size(),
                                           cudaMemcpyHostToDevice, stream_));
      offset += op.data.size();
    }
    CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));

    RETURN_IF_ERROR(NcclStatus(ncclGroupStart(), "ncclGroupStart", comm_));
    offset = 0;
    for (const SendOp& op : sends) {
      if (op.data.empty()) continue;
      RETURN_IF_ERROR(NcclStatus(
          ncclSend(send_base + offset, op.data.size(), ncclUint8, op.peer, comm_, stream_),
          absl::StrCat("ncclSend to rank ", op.peer), comm_));
      offset += op.data.size();
    }
    offset = 0;
    for (const RecvOp& op : recvs) {
      if (op.dst.empty()) continue;
      RETURN_IF_ERROR(NcclStatus(
          ncclRecv(recv_base + offset, op.dst.size(), ncclUint8, op.peer, comm_, stream_),
          absl::StrCat("ncclRecv from rank ", op.peer), comm_));
      offset += op.dst.size();
    }
    const ncclResult_t end = ncclGroupEnd();
    if (end != ncclInProgress) RETURN_IF_ERROR(NcclStatus(end, "ncclGroupEnd", comm_));
    RETURN_IF_ERROR(WaitForStep(sends.size(), recvs.size()));

    offset = 0;
    for (const RecvOp& op : recvs) {
      if (op.dst.empty()) continue;
      CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(op.dst.data(), recv_base + offset, op.dst.size(),
                                           cudaMemcpyDeviceToHost, stream_));
      offset += op.dst.size();
    }
    CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
    return absl::OkStatus();
  }

  // The watchdog: polls the communicator's asynchronous error, the stream, the abort flag and
  // the deadline until the step's group has completed.
  absl::Status WaitForStep(size_t sends, size_t recvs) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const absl::Time deadline = absl::Now() + options_.op_timeout;
    while (true) {
      ncclResult_t async = ncclSuccess;
      RETURN_IF_ERROR(NcclStatus(ncclCommGetAsyncError(comm_, &async), "ncclCommGetAsyncError",
                                 comm_));
      if (async != ncclSuccess && async != ncclInProgress) {
        return NcclStatus(async, absl::StrCat("NCCL step of rank ", rank(), " (", sends,
                                              " sends, ", recvs, " receives)"),
                          comm_);
      }
      if (async == ncclSuccess) {
        const cudaError_t query = cudaStreamQuery(stream_);
        if (query == cudaSuccess) return absl::OkStatus();
        if (query != cudaErrorNotReady) {
          return cuda::CudaStatus(query, "cudaStreamQuery", __FILE__, __LINE__);
        }
      }
      if (abort_requested_) return Aborted();
      if (absl::Now() >= deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat("rank ", rank(), " waited ", absl::FormatDuration(options_.op_timeout),
                         " for an NCCL step (", sends, " sends, ", recvs,
                         " receives); a peer is gone or stuck"));
      }
      absl::SleepFor(nccl_.poll_interval);
    }
  }

  const NcclOptions nccl_;
  std::atomic<bool> abort_requested_{false};
  absl::Mutex mu_;  // one thread inside NCCL at a time
  ncclComm_t comm_ ABSL_GUARDED_BY(mu_);
  cudaStream_t stream_;
  bool healthy_ ABSL_GUARDED_BY(mu_) = true;
  void* send_buffer_ = nullptr;
  size_t send_capacity_ = 0;
  void* recv_buffer_ = nullptr;
  size_t recv_capacity_ = 0;
};

}  // namespace

int NcclDeviceCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return count;
}

absl::StatusOr<std::string> NewNcclUniqueId() {
  ncclUniqueId id;
  RETURN_IF_ERROR(NcclStatus(ncclGetUniqueId(&id), "ncclGetUniqueId"));
  return std::string(id.internal, sizeof(id.internal));
}

absl::StatusOr<std::unique_ptr<Transport>> ConnectNcclGroup(NcclOptions options,
                                                            absl::string_view unique_id) {
  ncclUniqueId id;
  if (unique_id.size() != sizeof(id.internal)) {
    return absl::InvalidArgumentError(absl::StrCat("an NCCL unique id has ", sizeof(id.internal),
                                                   " bytes, got ", unique_id.size()));
  }
  if (options.device < 0 || options.device >= NcclDeviceCount()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the NCCL transport needs a GPU: device ", options.device,
                     " is not present (", NcclDeviceCount(), " visible)"));
  }
  std::memcpy(id.internal, unique_id.data(), sizeof(id.internal));
  CUDA_RETURN_IF_ERROR(cudaSetDevice(options.device));
  cudaStream_t stream = nullptr;
  CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclComm_t comm = nullptr;
  const TransportOptions& t = options.transport;
  ncclResult_t result = ncclCommInitRankConfig(&comm, t.world_size, id, t.rank, &config);
  absl::Status status;
  if (result != ncclSuccess && result != ncclInProgress) {
    status = NcclStatus(result, absl::StrCat("ncclCommInitRankConfig (rank ", t.rank, " of ",
                                             t.world_size, ")"));
  }
  const absl::Time deadline = absl::Now() + t.op_timeout;
  while (status.ok()) {
    ncclResult_t state = ncclInProgress;
    status = NcclStatus(ncclCommGetAsyncError(comm, &state), "ncclCommGetAsyncError", comm);
    if (!status.ok() || state == ncclSuccess) break;
    if (state != ncclInProgress) {
      status = NcclStatus(state, absl::StrCat("joining the NCCL group as rank ", t.rank), comm);
      break;
    }
    if (absl::Now() >= deadline) {
      status = absl::DeadlineExceededError(
          absl::StrCat("rank ", t.rank, " waited ", absl::FormatDuration(t.op_timeout), " for ",
                       t.world_size, " ranks to join the NCCL group"));
      break;
    }
    absl::SleepFor(options.poll_interval);
  }
  if (!status.ok()) {
    if (comm != nullptr) ncclCommAbort(comm);
    cudaStreamDestroy(stream);
    return status;
  }
  return std::unique_ptr<Transport>(new NcclTransport(options, comm, stream));
}

}  // namespace mxport::transport
