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
uint64_t *emu_warp_gather(uint64_t v);
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

// atomicAdd on float: a compare-and-swap loop (blocks run on several CPU threads).
static inline float atomicAdd(float *p, float v) {
	uint32_t *u = reinterpret_cast<uint32_t *>(p);
	uint32_t old = __atomic_load_n(u, __ATOMIC_RELAXED), nw;
	float f;
	do {
		std::memcpy(&f, &old, 4);
		float s = f + v;
		std::memcpy(&nw, &s, 4);
	} while (!__atomic_compare_exchange_n(u, &old, nw, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	return f;
}

// emu_mma_bf16 is mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32, d += A B, for the
// calling warp: a warp barrier gathers every lane's fragments (the instruction is
// warp-collective: a lane that has returned fails the launch), then each lane computes
// its four elements of D from the fragment layout of the PTX ISA (see mma_bf16 in
// kernels.cu), summing the exact bf16 products in float in k order.
static inline void emu_mma_bf16(float *d, const unsigned *a, const unsigned *b) {
	unsigned A[4][32], B[2][32];
	for (int i = 0; i < 4; i++) {
		uint64_t *g = emu_warp_gather(a[i]);
		for (int l = 0; l < 32; l++) A[i][l] = (unsigned)g[l];
	}
	for (int i = 0; i < 2; i++) {
		uint64_t *g = emu_warp_gather(b[i]);
		for (int l = 0; l < 32; l++) B[i][l] = (unsigned)g[l];
	}
	auto bf = [](unsigned w, int hi) {
		uint32_t u = (hi ? w >> 16 : w & 0xffffu) << 16;
		float f;
		std::memcpy(&f, &u, 4);
		return f;
	};
	// A[r][k]: lane (r%8)*4 + (k%8)/2, register (r>=8) + 2(k>=8); B[k][n]: lane n*4 + (k%8)/2,
	// register (k>=8); the odd index of a pair in the high half
	int lane = emu_tid.x & 31, g = lane >> 2, t = lane & 3;
	for (int j = 0; j < 4; j++) {
		int r = g + (j >= 2 ? 8 : 0), n = 2 * t + (j & 1);
		float s = 0.0f;
		for (int k = 0; k < 16; k++)
			s += bf(A[(r >= 8) + 2 * (k >= 8)][(r & 7) * 4 + ((k & 7) >> 1)], k & 1) * bf(B[k >= 8][n * 4 + ((k & 7) >> 1)], k & 1);
		d[j] += s;
	}
}
