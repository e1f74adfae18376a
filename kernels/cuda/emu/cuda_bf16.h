// The part of CUDA's cuda_bf16.h that kernels.cu uses, for the CPU emulator (emu.cpp):
// bf16 as its 16-bit pattern, float -> bf16 rounding to nearest even as the hardware's
// cvt.rn.bf16.f32 (a NaN stays a quiet NaN).
#pragma once
#include <cstdint>
#include <cstring>

struct __nv_bfloat16 {
	unsigned short x;
};

static inline __nv_bfloat16 __float2bfloat16_rn(float f) {
	uint32_t u;
	std::memcpy(&u, &f, 4);
	__nv_bfloat16 b;
	if ((u & 0x7fffffffu) > 0x7f800000u) {
		b.x = (unsigned short)((u >> 16) | 0x40u);
		return b;
	}
	u += 0x7fffu + ((u >> 16) & 1u);
	b.x = (unsigned short)(u >> 16);
	return b;
}

static inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short u) {
	__nv_bfloat16 b;
	b.x = u;
	return b;
}

static inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 b) { return b.x; }

static inline float __bfloat162float(__nv_bfloat16 b) {
	uint32_t u = (uint32_t)b.x << 16;
	float f;
	std::memcpy(&f, &u, 4);
	return f;
}
