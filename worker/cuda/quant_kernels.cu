// Kernels and launchers only; validation lives in quant_kernels.cc.
#include <cstdint>

#include "common/quant/codec.h"
#include "worker/cuda/quant_kernels_internal.h"

namespace mxport::cuda::internal_quant {
namespace {

// codec.h: the per-element arithmetic shared with the CPU library.
using quant::AbsBits;
using quant::BFloat16BitsToFloat;
using quant::BitsToFloat;
using quant::CanonicalAmaxBits;
using quant::E4M3OfBFloat16Rounded;
using quant::E4M3OfBFloat16RoundedPortable;
using quant::E4M3OfHalfRounded;
using quant::E4M3OfHalfRoundedPortable;
using quant::FloatToE4M3;
using quant::FloatToE4M3Portable;
using quant::Fp8Code;
using quant::Fp8CodeViaBFloat16;
using quant::Fp8CodeViaHalf;
using quant::HalfBitsToFloat;
using quant::kFp8BlockTile;
using quant::kNvfp4BlockSize;
using quant::Nvfp4BlockDivisor;
using quant::Nvfp4BlockScaleCode;
using quant::Nvfp4Code;
using quant::Nvfp4SixTimesScale2;

constexpr int kThreads = 256;
constexpr int kGroup = 8;  // elements a thread handles per step (one 16-byte load of BF16/F16)
constexpr int kMaxBlocks = 132 * 16;

// ---- Source element types on the device.

struct BFloat16Source {
  static constexpr int kBytes = 2;
  __device__ static float Load(const uint8_t* base, size_t i) {
    return BFloat16BitsToFloat(reinterpret_cast<const uint16_t*>(base)[i]);
  }
  // Two elements of one little-endian 32-bit word: the even element is the low half.
  __device__ static void Unpack(uint32_t word, float* f) {
    f[0] = BitsToFloat(word << 16);
    f[1] = BitsToFloat(word & 0xFFFF0000u);
  }
  __device__ static uint8_t Fp8ViaSource(float w, float scale) {
    return Fp8CodeViaBFloat16(w, scale);
  }
};

struct HalfSource {
  static constexpr int kBytes = 2;
  __device__ static float Load(const uint8_t* base, size_t i) {
    return HalfBitsToFloat(reinterpret_cast<const uint16_t*>(base)[i]);
  }
  __device__ static void Unpack(uint32_t word, float* f) {
    f[0] = HalfBitsToFloat(static_cast<uint16_t>(word & 0xFFFFu));
    f[1] = HalfBitsToFloat(static_cast<uint16_t>(word >> 16));
  }
  __device__ static uint8_t Fp8ViaSource(float w, float scale) { return Fp8CodeViaHalf(w, scale); }
};

struct Float32Source {
  static constexpr int kBytes = 4;
  __device__ static float Load(const uint8_t* base, size_t i) {
    return reinterpret_cast<const float*>(base)[i];
  }
  __device__ static uint8_t Fp8ViaSource(float w, float scale) { return Fp8Code(w, scale); }
};

// Eight consecutive elements from a 16-byte aligned address.
template <typename S>
__device__ __forceinline__ void Load8(const uint8_t* p, float* f) {
  if constexpr (S::kBytes == 2) {
    const uint4 v = *reinterpret_cast<const uint4*>(p);
    S::Unpack(v.x, f + 0);
    S::Unpack(v.y, f + 2);
    S::Unpack(v.z, f + 4);
    S::Unpack(v.w, f + 6);
  } else {
    const uint4 a = reinterpret_cast<const uint4*>(p)[0];
    const uint4 b = reinterpret_cast<const uint4*>(p)[1];
    f[0] = BitsToFloat(a.x), f[1] = BitsToFloat(a.y), f[2] = BitsToFloat(a.z);
    f[3] = BitsToFloat(a.w), f[4] = BitsToFloat(b.x), f[5] = BitsToFloat(b.y);
    f[6] = BitsToFloat(b.z), f[7] = BitsToFloat(b.w);
  }
}

// Eight one-byte codes as one 8-byte store.
__device__ __forceinline__ void Store8(uint8_t* p, const uint8_t* c) {
  const uint32_t lo = c[0] | (c[1] << 8) | (c[2] << 16) | (static_cast<uint32_t>(c[3]) << 24);
  const uint32_t hi = c[4] | (c[5] << 8) | (c[6] << 16) | (static_cast<uint32_t>(c[7]) << 24);
  *reinterpret_cast<uint2*>(p) = make_uint2(lo, hi);
}

template <typename S, bool kViaSource>
__device__ __forceinline__ uint8_t Fp8Of(float w, float scale) {
  if constexpr (kViaSource) {
    return S::Fp8ViaSource(w, scale);
  } else {
    return Fp8Code(w, scale);
  }
}

__device__ __forceinline__ uint32_t MaxU32(uint32_t a, uint32_t b) { return a > b ? a : b; }

// Max of `m` over the block, then one atomicMax into *out (amax bits order as unsigned ints).
__device__ void BlockMaxToGlobal(uint32_t m, unsigned int* out) {
  __shared__ uint32_t warp_max[kThreads / 32];
  m = __reduce_max_sync(0xFFFFFFFFu, m);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) warp_max[warp] = m;
  __syncthreads();
  if (warp == 0) {
    m = lane < kThreads / 32 ? warp_max[lane] : 0u;
    m = __reduce_max_sync(0xFFFFFFFFu, m);
    if (lane == 0) atomicMax(out, m);
  }
}

// ---- Kernels. Grid-stride loops with 64-bit indices.

template <typename S, bool kVec>
__global__ void __launch_bounds__(kThreads)
    AbsMaxKernel(const uint8_t* src, size_t count, unsigned int* amax) {
  const size_t stride = static_cast<size_t>(gridDim.x) * kThreads;
  const size_t tid = static_cast<size_t>(blockIdx.x) * kThreads + threadIdx.x;
  uint32_t m = 0;
  size_t scalar_from = 0;
  if constexpr (kVec) {
    const size_t groups = count / kGroup;
    for (size_t g = tid; g < groups; g += stride) {
      float f[kGroup];
      Load8<S>(src + g * kGroup * S::kBytes, f);
#pragma unroll
      for (int k = 0; k < kGroup; ++k) m = MaxU32(m, AbsBits(f[k]));
    }
    scalar_from = groups * kGroup;
  }
  for (size_t i = scalar_from + tid; i < count; i += stride) m = MaxU32(m, AbsBits(S::Load(src, i)));
  BlockMaxToGlobal(CanonicalAmaxBits(m), amax);
}

// Quantizes one 16-element block already in registers.
__device__ __forceinline__ void Nvfp4Block(const float* w, float weight_scale_2, float six_s2,
                                           uint8_t* bytes, uint8_t* scale_out) {
  uint32_t m = 0;
#pragma unroll
  for (int i = 0; i < kNvfp4BlockSize; ++i) m = MaxU32(m, AbsBits(w[i]));
  const uint8_t scale = Nvfp4BlockScaleCode(BitsToFloat(m), six_s2);
  const float divisor = Nvfp4BlockDivisor(scale, weight_scale_2);
#pragma unroll
  for (int i = 0; i < kNvfp4BlockSize / 2; ++i) {
    bytes[i] = static_cast<uint8_t>(Nvfp4Code(w[2 * i], divisor) |
                                    (Nvfp4Code(w[2 * i + 1], divisor) << 4));
  }
  *scale_out = scale;
}

// One thread per 16-element block (two 16-byte loads of BF16/F16, four of F32).
template <typename S, bool kVec>
__global__ void __launch_bounds__(kThreads)
    Nvfp4Kernel(const uint8_t* src, size_t blocks, float weight_scale_2, float six_s2,
                uint8_t* packed, uint8_t* scales) {
  const size_t stride = static_cast<size_t>(gridDim.x) * kThreads;
  for (size_t b = static_cast<size_t>(blockIdx.x) * kThreads + threadIdx.x; b < blocks;
       b += stride) {
    float w[kNvfp4BlockSize];
    if constexpr (kVec) {
      const uint8_t* p = src + b * kNvfp4BlockSize * S::kBytes;
      Load8<S>(p, w);
      Load8<S>(p + kGroup * S::kBytes, w + kGroup);
    } else {
#pragma unroll
      for (int i = 0; i < kNvfp4BlockSize; ++i) w[i] = S::Load(src, b * kNvfp4BlockSize + i);
    }
    uint8_t bytes[kNvfp4BlockSize / 2];
    Nvfp4Block(w, weight_scale_2, six_s2, bytes, scales + b);
    if constexpr (kVec) {
      Store8(packed + b * (kNvfp4BlockSize / 2), bytes);
    } else {
#pragma unroll
      for (int i = 0; i < kNvfp4BlockSize / 2; ++i) {
        packed[b * (kNvfp4BlockSize / 2) + i] = bytes[i];
      }
    }
  }
}

// One group of eight elements per thread per pass.
template <typename S, bool kViaSource, bool kVec>
__global__ void __launch_bounds__(kThreads)
    Fp8Kernel(const uint8_t* src, size_t count, float scale, uint8_t* out) {
  const size_t stride = static_cast<size_t>(gridDim.x) * kThreads;
  const size_t tid = static_cast<size_t>(blockIdx.x) * kThreads + threadIdx.x;
  size_t scalar_from = 0;
  if constexpr (kVec) {
    const size_t groups = count / kGroup;
    for (size_t g = tid; g < groups; g += stride) {
      float f[kGroup];
      Load8<S>(src + g * kGroup * S::kBytes, f);
      uint8_t c[kGroup];
#pragma unroll
      for (int k = 0; k < kGroup; ++k) c[k] = Fp8Of<S, kViaSource>(f[k], scale);
      Store8(out + g * kGroup, c);
    }
    scalar_from = groups * kGroup;
  }
  for (size_t i = scalar_from + tid; i < count; i += stride) {
    out[i] = Fp8Of<S, kViaSource>(S::Load(src, i), scale);
  }
}

// The row kernels (block FP8, tile amax) give each thread kGroup consecutive columns of a row,
// which never straddle a 128-column tile. Tile amax blocks cover kChunkCols columns.
constexpr int kChunkCols = kThreads * kGroup;

template <typename S, bool kVec>
__device__ __forceinline__ void LoadGroup(const uint8_t* row, int64_t c, int64_t cols, float* f) {
  if constexpr (kVec) {
    Load8<S>(row + c * S::kBytes, f);
  } else {
#pragma unroll
    for (int k = 0; k < kGroup; ++k) f[k] = c + k < cols ? S::Load(row, c + k) : 0.0f;
  }
}

// Block FP8 quantization: blocks of 128 threads cover 1024 columns (blockIdx.x) of
// kRowsPerStep rows at a time (blockIdx.y, grid-stride), with every row's load issued before
// any is used.
constexpr int kBlockThreads = 128;
constexpr int kBlockChunkCols = kBlockThreads * kGroup;
constexpr int kRowsPerStep = 4;

template <typename S, bool kVec>
__global__ void __launch_bounds__(kBlockThreads)
    Fp8BlockKernel(const uint8_t* src, int64_t num_rows, int64_t cols, int64_t row_begin,
                   int64_t tile_cols, const float* scale_inv, uint8_t* out) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kBlockChunkCols + threadIdx.x * kGroup;
  if (c >= cols) return;
  const int64_t tile_col = c / kFp8BlockTile;
  for (int64_t r0 = static_cast<int64_t>(blockIdx.y) * kRowsPerStep; r0 < num_rows;
       r0 += static_cast<int64_t>(gridDim.y) * kRowsPerStep) {
    float f[kRowsPerStep][kGroup];
    float scale[kRowsPerStep];
#pragma unroll
    for (int k = 0; k < kRowsPerStep; ++k) {
      const int64_t r = r0 + k;
      if (r < num_rows) {
        LoadGroup<S, kVec>(src + r * cols * S::kBytes, c, cols, f[k]);
        scale[k] = scale_inv[((row_begin + r) / kFp8BlockTile) * tile_cols + tile_col];
      }
    }
#pragma unroll
    for (int k = 0; k < kRowsPerStep; ++k) {
      const int64_t r = r0 + k;
      if (r >= num_rows) break;
      uint8_t q[kGroup];
#pragma unroll
      for (int i = 0; i < kGroup; ++i) q[i] = Fp8Code(f[k][i], scale[k]);
      uint8_t* o = out + r * cols + c;
      if constexpr (kVec) {
        Store8(o, q);
      } else {
        for (int i = 0; i < kGroup && c + i < cols; ++i) o[i] = q[i];
      }
    }
  }
}

// blockIdx.y indexes the tile rows that [row_begin, row_begin + num_rows) touches.
template <typename S, bool kVec>
__global__ void __launch_bounds__(kThreads)
    TileAbsMaxKernel(const uint8_t* src, int64_t num_rows, int64_t cols, int64_t row_begin,
                     int64_t tile_cols, unsigned int* grid) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kChunkCols + threadIdx.x * kGroup;
  const int64_t tile_row = row_begin / kFp8BlockTile + blockIdx.y;
  const int64_t tile_begin = tile_row * kFp8BlockTile, tile_end = tile_begin + kFp8BlockTile;
  const int64_t r0 = (tile_begin > row_begin ? tile_begin : row_begin) - row_begin;
  const int64_t r1 = (tile_end < row_begin + num_rows ? tile_end : row_begin + num_rows) - row_begin;
  uint32_t m = 0;
  if (c < cols) {
    for (int64_t r = r0; r < r1; ++r) {
      float f[kGroup];
      LoadGroup<S, kVec>(src + r * cols * S::kBytes, c, cols, f);
#pragma unroll
      for (int k = 0; k < kGroup; ++k) m = MaxU32(m, AbsBits(f[k]));
    }
  }
  // The 16 threads of a half-warp cover one 128-column tile.
  constexpr int kThreadsPerTile = kFp8BlockTile / kGroup;
#pragma unroll
  for (int offset = kThreadsPerTile / 2; offset > 0; offset /= 2) {
    m = MaxU32(m, __shfl_xor_sync(0xFFFFFFFFu, m, offset));
  }
  if (c < cols && threadIdx.x % kThreadsPerTile == 0) {
    atomicMax(grid + tile_row * tile_cols + c / kFp8BlockTile, CanonicalAmaxBits(m));
  }
}

// Every f32 bit pattern through the device conversions and their portable definitions.
__global__ void __launch_bounds__(kThreads)
    CodecSelfCheckKernel(unsigned long long* mismatches, unsigned int* first_bad) {
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * kThreads;
  unsigned long long bad = 0;
  for (uint64_t u = static_cast<uint64_t>(blockIdx.x) * kThreads + threadIdx.x;
       u <= 0xFFFFFFFFull; u += stride) {
    const float x = BitsToFloat(static_cast<uint32_t>(u));
    if (FloatToE4M3(x) != FloatToE4M3Portable(x) ||
        E4M3OfBFloat16Rounded(x) != E4M3OfBFloat16RoundedPortable(x) ||
        E4M3OfHalfRounded(x) != E4M3OfHalfRoundedPortable(x)) {
      ++bad;
      atomicMin(first_bad, static_cast<unsigned int>(u));
    }
  }
  if (bad != 0) atomicAdd(mismatches, bad);
}

// ---- Launch helpers.

template <typename T>
__host__ __device__ constexpr T Clamp(T v, T lo, T hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

int BlocksFor(size_t items) {
  const size_t blocks = (items + kThreads - 1) / kThreads;
  return static_cast<int>(Clamp<size_t>(blocks, 1, kMaxBlocks));
}

// The kernels of one source type, scalar [0] and vectorised [1]: the whole dispatch is a table
// of these, indexed by Source.
struct SourceKernels {
  void (*abs_max[2])(const uint8_t*, size_t, unsigned int*);
  void (*nvfp4[2])(const uint8_t*, size_t, float, float, uint8_t*, uint8_t*);
  void (*fp8[2][2])(const uint8_t*, size_t, float, uint8_t*);  // [via source][vec]
  void (*fp8_block[2])(const uint8_t*, int64_t, int64_t, int64_t, int64_t, const float*,
                       uint8_t*);
  void (*tile_abs_max[2])(const uint8_t*, int64_t, int64_t, int64_t, int64_t, unsigned int*);
};

template <typename S>
constexpr SourceKernels MakeKernels() {
  return {{&AbsMaxKernel<S, false>, &AbsMaxKernel<S, true>},
          {&Nvfp4Kernel<S, false>, &Nvfp4Kernel<S, true>},
          {{&Fp8Kernel<S, false, false>, &Fp8Kernel<S, false, true>},
           {&Fp8Kernel<S, true, false>, &Fp8Kernel<S, true, true>}},
          {&Fp8BlockKernel<S, false>, &Fp8BlockKernel<S, true>},
          {&TileAbsMaxKernel<S, false>, &TileAbsMaxKernel<S, true>}};
}

const SourceKernels& KernelsOf(Source source) {
  static const SourceKernels kTable[] = {
      MakeKernels<BFloat16Source>(),  // Source::kBFloat16
      MakeKernels<HalfSource>(),      // Source::kFloat16
      MakeKernels<Float32Source>(),   // Source::kFloat32
  };
  return kTable[static_cast<int>(source)];
}

}  // namespace

cudaError_t LaunchCodecSelfCheck(unsigned long long* mismatches, unsigned int* first_bad,
                                 cudaStream_t stream) {
  CodecSelfCheckKernel<<<kMaxBlocks, kThreads, 0, stream>>>(mismatches, first_bad);
  return cudaGetLastError();
}

cudaError_t LaunchAbsMax(Source source, bool vec, const void* src, size_t count,
                         unsigned int* amax_bits, cudaStream_t stream) {
  KernelsOf(source).abs_max[vec]<<<BlocksFor((count + kGroup - 1) / kGroup), kThreads, 0,
                                   stream>>>(static_cast<const uint8_t*>(src), count, amax_bits);
  return cudaGetLastError();
}

cudaError_t LaunchTileAbsMax(Source source, bool vec, const void* src, int64_t num_rows,
                             int64_t cols, int64_t row_begin, int64_t tile_cols,
                             unsigned int* grid_bits, cudaStream_t stream) {
  const int64_t tile_rows =
      (row_begin + num_rows - 1) / kFp8BlockTile - row_begin / kFp8BlockTile + 1;
  const dim3 blocks(static_cast<unsigned>((cols + kChunkCols - 1) / kChunkCols),
                    static_cast<unsigned>(tile_rows));
  KernelsOf(source).tile_abs_max[vec]<<<blocks, kThreads, 0, stream>>>(
      static_cast<const uint8_t*>(src), num_rows, cols, row_begin, tile_cols, grid_bits);
  return cudaGetLastError();
}

cudaError_t LaunchNvfp4(Source source, bool vec, const void* src, size_t blocks,
                        float weight_scale_2, uint8_t* packed, uint8_t* scales,
                        cudaStream_t stream) {
  // 6 * weight_scale_2 rounded once on the host: the same value the CPU path computes.
  KernelsOf(source).nvfp4[vec]<<<BlocksFor(blocks), kThreads, 0, stream>>>(
      static_cast<const uint8_t*>(src), blocks, weight_scale_2,
      Nvfp4SixTimesScale2(weight_scale_2), packed, scales);
  return cudaGetLastError();
}

cudaError_t LaunchFp8(Source source, bool vec, bool via_source, const void* src, size_t count,
                      float scale, uint8_t* out, cudaStream_t stream) {
  KernelsOf(source).fp8[via_source][vec]<<<BlocksFor((count + kGroup - 1) / kGroup), kThreads,
                                           0, stream>>>(static_cast<const uint8_t*>(src), count,
                                                        scale, out);
  return cudaGetLastError();
}

cudaError_t LaunchFp8Block(Source source, bool vec, const void* src, int64_t num_rows,
                           int64_t cols, int64_t row_begin, int64_t tile_cols,
                           const float* scale_inv, uint8_t* out, cudaStream_t stream) {
  // About 2 * kMaxBlocks blocks in all, each looping over row steps.
  const int64_t chunks = (cols + kBlockChunkCols - 1) / kBlockChunkCols;
  const int64_t steps = (num_rows + kRowsPerStep - 1) / kRowsPerStep;
  const int64_t row_blocks = Clamp<int64_t>(2 * kMaxBlocks / chunks, 1, 65535);
  const dim3 blocks(static_cast<unsigned>(chunks),
                    static_cast<unsigned>(Clamp<int64_t>(steps, 1, row_blocks)));
  KernelsOf(source).fp8_block[vec]<<<blocks, kBlockThreads, 0, stream>>>(
      static_cast<const uint8_t*>(src), num_rows, cols, row_begin, tile_cols, scale_inv, out);
  return cudaGetLastError();
}

}  // namespace mxport::cuda::internal_quant
