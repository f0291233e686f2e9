// Point-to-point bandwidth between two GPUs of one host: mxport's NcclTransport against the
// baseline of an nccl-tests sendrecv_perf loop, measured in the same run.
//
// (1) Baseline: two threads, rank r on GPU r, one blocking communicator each (ncclCommInitRank
//     from one ncclGetUniqueId), device buffers; each iteration both ranks send to and receive
//     from each other inside one ncclGroupStart/End (sendrecv_perf's ring of 2).
// (2) NcclTransport: the same two GPUs through ConnectNcclGroup; each iteration one Exchange per
//     rank with one SendOp to the peer and one RecvOp from it, once from and into pageable
//     host memory and once from the transport's page-locked host memory (AllocateHost, what
//     workers' buffer pools hold); the transport stages both through the device.
// (3) The ratio (2)/(1) per size, and for context the host<->device copy bandwidth of the
//     largest size from pinned and pageable memory, since the transport stages through it.
// Times are per iteration after warm-up, the slower of the two ranks; GB/s is 1e9 bytes/s per
// direction (algbw; for sendrecv busbw = algbw). Figures are printed, not judged: exits 0 when
// everything ran, 1 with a message when a CUDA or NCCL call fails, and 0, saying so, with fewer
// than two GPUs.
//
//   nccl_p2p_benchmark [--sizes=MiB,MiB,...]   (default 1,4,16,64,256)
#include <cuda_runtime_api.h>
#include <nccl.h>

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/base/status_macros.h"
#include "worker/cuda/cuda_status.h"
#include "worker/transport/nccl_transport.h"
#include "worker/transport/transport.h"

namespace mxport {
namespace {

constexpr int kRanks = 2;

// Returns Internal from the enclosing function when an NCCL call fails.
#define BENCH_NCCL(expr)                                                         \
  do {                                                                           \
    const ncclResult_t bench_nccl_ = (expr);                                     \
    if (bench_nccl_ != ncclSuccess) {                                            \
      return absl::InternalError(                                                \
          absl::StrCat(#expr, ": ", ncclGetErrorString(bench_nccl_)));           \
    }                                                                            \
  } while (false)

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point start, Clock::time_point stop) {
  return std::chrono::duration<double>(stop - start).count();
}

double GBps(size_t bytes, double seconds) { return seconds > 0 ? bytes / seconds / 1e9 : 0; }

// Warm-up and timed iterations for a message size: fewer for the largest messages.
int WarmUps(size_t bytes) { return bytes >= (size_t{256} << 20) ? 2 : 5; }
int Timed(size_t bytes) { return bytes >= (size_t{256} << 20) ? 10 : 20; }

// Runs fn(rank) on one thread per rank. A failure ends the process at once: the peer may be
// blocked inside NCCL waiting for the failed rank, so joining it could hang.
void RunRanks(const std::function<absl::Status(int)>& fn) {
  std::vector<std::thread> threads;
  for (int rank = 0; rank < kRanks; ++rank) {
    threads.emplace_back([&fn, rank] {
      const absl::Status status = fn(rank);
      if (!status.ok()) {
        std::fprintf(stderr, "nccl_p2p_benchmark: rank %d failed: %s\n", rank,
                     status.ToString().c_str());
        std::fflush(stdout);
        std::fflush(stderr);
        std::_Exit(1);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
}

// Seconds per iteration of (1) for each size, the slower rank's.
absl::Status BaselineRank(int rank, const ncclUniqueId& id, absl::Span<const size_t> sizes,
                          std::barrier<>& sync, std::vector<std::vector<double>>& seconds) {
  const int peer = 1 - rank;
  const size_t max_bytes = *std::max_element(sizes.begin(), sizes.end());
  CUDA_RETURN_IF_ERROR(cudaSetDevice(rank));
  cudaStream_t stream = nullptr;
  CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  void* send = nullptr;
  void* recv = nullptr;
  CUDA_RETURN_IF_ERROR(cudaMalloc(&send, max_bytes));
  CUDA_RETURN_IF_ERROR(cudaMalloc(&recv, max_bytes));
  CUDA_RETURN_IF_ERROR(cudaMemset(send, rank + 1, max_bytes));
  CUDA_RETURN_IF_ERROR(cudaMemset(recv, 0, max_bytes));
  ncclComm_t comm = nullptr;
  BENCH_NCCL(ncclCommInitRank(&comm, kRanks, id, rank));
  for (size_t i = 0; i < sizes.size(); ++i) {
    const size_t bytes = sizes[i];
    auto step = [&]() -> absl::Status {
      BENCH_NCCL(ncclGroupStart());
      BENCH_NCCL(ncclSend(send, bytes, ncclUint8, peer, comm, stream));
      BENCH_NCCL(ncclRecv(recv, bytes, ncclUint8, peer, comm, stream));
      BENCH_NCCL(ncclGroupEnd());
      return absl::OkStatus();
    };
    for (int k = 0; k < WarmUps(bytes); ++k) RETURN_IF_ERROR(step());
    CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
    sync.arrive_and_wait();
    const Clock::time_point start = Clock::now();
    for (int k = 0; k < Timed(bytes); ++k) RETURN_IF_ERROR(step());
    CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
    seconds[rank][i] = Seconds(start, Clock::now()) / Timed(bytes);
    char last = 0;
    CUDA_RETURN_IF_ERROR(
        cudaMemcpy(&last, static_cast<char*>(recv) + bytes - 1, 1, cudaMemcpyDeviceToHost));
    if (last != peer + 1) {
      return absl::DataLossError(absl::StrCat("baseline: rank ", rank, " received byte ",
                                              int{last}, ", expected ", peer + 1));
    }
    sync.arrive_and_wait();
  }
  BENCH_NCCL(ncclCommDestroy(comm));
  CUDA_RETURN_IF_ERROR(cudaFree(send));
  CUDA_RETURN_IF_ERROR(cudaFree(recv));
  CUDA_RETURN_IF_ERROR(cudaStreamDestroy(stream));
  return absl::OkStatus();
}

// Seconds per iteration of (2) for each size.
absl::Status TransportRank(int rank, absl::string_view id, absl::Span<const size_t> sizes,
                           bool page_locked, std::barrier<>& sync,
                           std::vector<std::vector<double>>& seconds) {
  const int peer = 1 - rank;
  const size_t max_bytes = *std::max_element(sizes.begin(), sizes.end());
  transport::NcclOptions options;
  options.transport.rank = rank;
  options.transport.world_size = kRanks;
  options.transport.op_timeout = absl::Seconds(60);
  options.device = rank;
  ASSIGN_OR_RETURN(std::unique_ptr<transport::Transport> t,
                   transport::ConnectNcclGroup(options, id));
  // Pageable (any heap memory), or the transport's own host memory (page-locked for NCCL),
  // which is what workers' buffer pools hold.
  std::vector<char> send_heap, recv_heap;
  std::unique_ptr<char, std::function<void(char*)>> send_locked(nullptr, [&t](char* p) {
    t->FreeHost(p);
  });
  std::unique_ptr<char, std::function<void(char*)>> recv_locked(nullptr, [&t](char* p) {
    t->FreeHost(p);
  });
  char* send = nullptr;
  char* recv = nullptr;
  if (page_locked) {
    send_locked.reset(t->AllocateHost(max_bytes));
    recv_locked.reset(t->AllocateHost(max_bytes));
    if (send_locked == nullptr || recv_locked == nullptr) {
      return absl::ResourceExhaustedError("transport: no page-locked host memory");
    }
    send = send_locked.get();
    recv = recv_locked.get();
  } else {
    send_heap.resize(max_bytes);
    recv_heap.resize(max_bytes);
    send = send_heap.data();
    recv = recv_heap.data();
  }
  std::memset(send, rank + 1, max_bytes);
  std::memset(recv, 0, max_bytes);
  for (size_t i = 0; i < sizes.size(); ++i) {
    const size_t bytes = sizes[i];
    const transport::SendOp send_op{peer, absl::string_view(send, bytes)};
    const transport::RecvOp recv_op{peer, absl::MakeSpan(recv, bytes)};
    auto step = [&] {
      return t->Exchange(absl::MakeConstSpan(&send_op, 1), absl::MakeConstSpan(&recv_op, 1));
    };
    for (int k = 0; k < WarmUps(bytes); ++k) RETURN_IF_ERROR(step());
    sync.arrive_and_wait();
    const Clock::time_point start = Clock::now();
    for (int k = 0; k < Timed(bytes); ++k) RETURN_IF_ERROR(step());
    seconds[rank][i] = Seconds(start, Clock::now()) / Timed(bytes);
    if (recv[0] != peer + 1 || recv[bytes - 1] != peer + 1) {
      return absl::DataLossError(
          absl::StrCat("transport: rank ", rank, " received wrong bytes at ", bytes, " bytes"));
    }
    sync.arrive_and_wait();
  }
  return absl::OkStatus();
}

// Host-to-device and device-to-host cudaMemcpy GB/s of `bytes` on GPU 0.
struct CopyFigures {
  double h2d_pinned = 0, h2d_pageable = 0, d2h_pinned = 0, d2h_pageable = 0;
};

absl::StatusOr<CopyFigures> MeasureCopies(size_t bytes) {
  CUDA_RETURN_IF_ERROR(cudaSetDevice(0));
  void* device = nullptr;
  void* pinned = nullptr;
  CUDA_RETURN_IF_ERROR(cudaMalloc(&device, bytes));
  CUDA_RETURN_IF_ERROR(cudaMallocHost(&pinned, bytes));
  std::memset(pinned, 1, bytes);
  std::vector<char> pageable(bytes, 1);
  auto time = [&](void* dst, const void* src, cudaMemcpyKind kind) -> absl::StatusOr<double> {
    for (int k = 0; k < 2; ++k) CUDA_RETURN_IF_ERROR(cudaMemcpy(dst, src, bytes, kind));
    const int iterations = 5;
    const Clock::time_point start = Clock::now();
    for (int k = 0; k < iterations; ++k) CUDA_RETURN_IF_ERROR(cudaMemcpy(dst, src, bytes, kind));
    return GBps(bytes, Seconds(start, Clock::now()) / iterations);
  };
  CopyFigures f;
  ASSIGN_OR_RETURN(f.h2d_pinned, time(device, pinned, cudaMemcpyHostToDevice));
  ASSIGN_OR_RETURN(f.h2d_pageable, time(device, pageable.data(), cudaMemcpyHostToDevice));
  ASSIGN_OR_RETURN(f.d2h_pinned, time(pinned, device, cudaMemcpyDeviceToHost));
  ASSIGN_OR_RETURN(f.d2h_pageable, time(pageable.data(), device, cudaMemcpyDeviceToHost));
  CUDA_RETURN_IF_ERROR(cudaFreeHost(pinned));
  CUDA_RETURN_IF_ERROR(cudaFree(device));
  return f;
}

// The slower rank's seconds per size.
std::vector<double> Slowest(const std::vector<std::vector<double>>& seconds) {
  std::vector<double> out(seconds[0].size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = std::max(seconds[0][i], seconds[1][i]);
  return out;
}

absl::Status Run(const std::vector<size_t>& sizes) {
  const int devices = transport::NcclDeviceCount();
  if (devices < kRanks) {
    std::printf("nccl_p2p_benchmark: skipped: needs %d GPUs, found %d\n", kRanks, devices);
    return absl::OkStatus();
  }
  int nccl_version = 0;
  BENCH_NCCL(ncclGetVersion(&nccl_version));
  cudaDeviceProp prop[kRanks];
  for (int d = 0; d < kRanks; ++d) CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop[d], d));
  std::printf("nccl_p2p_benchmark: GPU 0 %s, GPU 1 %s; NCCL %d.%d.%d; %d GPUs visible\n",
              prop[0].name, prop[1].name, nccl_version / 10000, nccl_version / 100 % 100,
              nccl_version % 100, devices);
  const size_t largest = *std::max_element(sizes.begin(), sizes.end());
  std::printf("iterations: %d warm-up + %d timed (%d + %d from 256 MiB); times are the slower "
              "rank's\n", WarmUps(0), Timed(0), WarmUps(size_t{256} << 20),
              Timed(size_t{256} << 20));

  ASSIGN_OR_RETURN(const CopyFigures copies, MeasureCopies(largest));
  std::printf("host<->device cudaMemcpy on GPU 0, %zu MiB: H2D pinned %.1f GB/s, H2D pageable "
              "%.1f GB/s, D2H pinned %.1f GB/s, D2H pageable %.1f GB/s\n", largest >> 20,
              copies.h2d_pinned, copies.h2d_pageable, copies.d2h_pinned, copies.d2h_pageable);

  std::vector<std::vector<double>> seconds(kRanks, std::vector<double>(sizes.size()));
  {
    ncclUniqueId id;
    BENCH_NCCL(ncclGetUniqueId(&id));
    std::barrier<> sync(kRanks);
    RunRanks([&](int rank) { return BaselineRank(rank, id, sizes, sync, seconds); });
  }
  const std::vector<double> baseline = Slowest(seconds);
  std::vector<double> staged[2];  // pageable, page-locked
  for (int locked = 0; locked < 2; ++locked) {
    ASSIGN_OR_RETURN(const std::string id, transport::NewNcclUniqueId());
    std::barrier<> sync(kRanks);
    RunRanks([&](int rank) { return TransportRank(rank, id, sizes, locked, sync, seconds); });
    staged[locked] = Slowest(seconds);
  }

  std::printf("%10s | %12s %10s | %22s | %22s\n", "", "NCCL sendrecv", "",
              "transport, pageable", "transport, page-locked");
  std::printf("%10s | %12s %10s | %8s %7s %5s | %8s %7s %5s\n", "size", "us", "busbw GB/s", "us",
              "GB/s", "ratio", "us", "GB/s", "ratio");
  for (size_t i = 0; i < sizes.size(); ++i) {
    const double nccl_gbps = GBps(sizes[i], baseline[i]);
    std::printf("%6zu MiB | %12.1f %10.2f", sizes[i] >> 20, baseline[i] * 1e6, nccl_gbps);
    for (const std::vector<double>& t : staged) {
      const double gbps = GBps(sizes[i], t[i]);
      std::printf(" | %8.1f %7.2f %5.3f", t[i] * 1e6, gbps, nccl_gbps > 0 ? gbps / nccl_gbps : 0);
    }
    std::printf("\n");
  }
  const size_t last = std::max_element(sizes.begin(), sizes.end()) - sizes.begin();
  const double nccl_gbps = GBps(sizes[last], baseline[last]);
  std::printf("largest (%zu MiB): NCCL sendrecv %.2f GB/s busbw; NcclTransport per direction "
              "%.2f GB/s from pageable memory (ratio %.3f), %.2f GB/s from page-locked memory "
              "(ratio %.3f), as workers' buffers are; H2D pageable %.1f GB/s, pinned %.1f GB/s\n",
              sizes[last] >> 20, nccl_gbps, GBps(sizes[last], staged[0][last]),
              GBps(sizes[last], staged[0][last]) / nccl_gbps, GBps(sizes[last], staged[1][last]),
              GBps(sizes[last], staged[1][last]) / nccl_gbps, copies.h2d_pageable,
              copies.h2d_pinned);
  return absl::OkStatus();
}

// Sizes in MiB from --sizes=a,b,c (or bare numbers); the default set otherwise.
absl::StatusOr<std::vector<size_t>> ParseSizes(int argc, char** argv) {
  std::vector<absl::string_view> words;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg.substr(0, 8) == "--sizes=") arg.remove_prefix(8);
    for (absl::string_view word : absl::StrSplit(arg, ',', absl::SkipEmpty())) {
      words.push_back(word);
    }
  }
  if (words.empty()) words = {"1", "4", "16", "64", "256"};
  std::vector<size_t> sizes;
  for (absl::string_view word : words) {
    size_t mib = 0;
    if (!absl::SimpleAtoi(word, &mib) || mib == 0 || mib > 65536) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad size '", word, "': usage: nccl_p2p_benchmark [--sizes=MiB,MiB,...]"));
    }
    sizes.push_back(mib << 20);
  }
  return sizes;
}

}  // namespace
}  // namespace mxport

int main(int argc, char** argv) {
  absl::StatusOr<std::vector<size_t>> sizes = mxport::ParseSizes(argc, argv);
  absl::Status status = sizes.ok() ? mxport::Run(*sizes) : sizes.status();
  if (!status.ok()) {
    std::fprintf(stderr, "nccl_p2p_benchmark: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
