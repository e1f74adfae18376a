// CUDA C built-ins for compiling kernels.cu as C++ on the CPU (the emulator, emu.cpp).
// Every thread of a block is a fiber; __syncthreads and the warp shuffles are barriers
// at which the block's scheduler switches fibers, so a kernel runs with the semantics the
// CUDA programming guide promises and no more: a missing barrier, a barrier some threads
// of the block (or lanes of the warp) skip, or a shuffle with a lane that has exited
// fails the launch instead of happening to work.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

struct emu_dim3 {
	unsigned x, y, z;
};

// The running fiber's indices; the scheduler sets them before it switches to a fiber.
extern thread_local emu_dim3 emu_tid, emu_bid, emu_bdim, emu_gdim;
void emu_syncthreads();
uint64_t *emu_shfl_exchange(uint64_t v, int src_lane_xor, unsigned mask, int width);
void *emu_dyn_shared();

#define threadIdx emu_tid
#define blockIdx emu_bid
#define blockDim emu_bdim
#define gridDim emu_gdim
#define warpSize 32

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static thread_local

static inline void __syncthreads() { emu_syncthreads(); }

template <class T>
static inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
	static_assert(sizeof(T) <= 8, "shuffle of more than 8 bytes");
	uint64_t u = 0;
	std::memcpy(&u, &v, sizeof(T));
	uint64_t *r = emu_shfl_exchange(u, lane_mask, mask, width);
	T out;
	std::memcpy(&out, r, sizeof(T));
	return out;
}

// CUDA's fast intrinsics, at full precision (glibc declares its own __expf).
#define __expf(x) expf(x)
static inline float __frcp_rn(float x) { return 1.0f / x; }

// CUDA's integer min/max and vector types.
static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }
static inline long long min(long long a, long long b) { return a < b ? a : b; }
static inline long long max(long long a, long long b) { return a > b ? a : b; }

struct uint4 {
	unsigned x, y, z, w;
};
static inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return uint4{x, y, z, w}; }
