#include "textflag.h"

// AVX2 versions of the float32 fast paths of fastmath.go, eight lanes at a time. Each
// lane computes what the scalar Go code computes, operation for operation and rounded
// as it rounds (no FMA; the exponent's rounding in float64 as math.Floor does it), so
// the results are the same bits (TestFastmathAVX2). Constants come from fm32 (fastmath.go);
// maxAVX2 builds its two bit patterns (the sign, +Inf) in place.
// Each function handles n rounded down to 8 elements and returns how many it did: it
// stops before the first group of 8 in which an argument of exp leaves exp32's fast
// range (or is NaN), which the caller then evaluates in Go.

// Y9-Y15: log2(e), ln 2 in two parts, 1, the fast range, 0.5 in float64.
#define CONSTS \
	VBROADCASTSS ·fm32+8(SB), Y9; \
	VBROADCASTSS ·fm32+12(SB), Y10; \
	VBROADCASTSS ·fm32+16(SB), Y11; \
	VBROADCASTSS ·fm32+44(SB), Y12; \
	VBROADCASTSS ·fm32+0(SB), Y13; \
	VBROADCASTSS ·fm32+4(SB), Y14; \
	VBROADCASTSD ·fm64Half(SB), Y15

// RANGE jumps to done unless every lane of Y0 is in [-87, 88] (ordered compares: NaN fails).
#define RANGE \
	VCMPPS $0x1d, Y13, Y0, Y6; \
	VCMPPS $0x12, Y14, Y0, Y7; \
	VANDPS Y6, Y7, Y6; \
	VMOVMSKPS Y6, DX; \
	CMPL DX, $0xff; \
	JNE done

// HORNER sets the polynomial Y5 = Y5*r + the coefficient at fm32+off (r in Y4).
#define HORNER(off) \
	VMULPS Y4, Y5, Y5; \
	VBROADCASTSS ·fm32+off(SB), Y6; \
	VADDPS Y6, Y5, Y5

// EXP sets Y0 = exp32(Y0) on the fast range; it uses Y1-Y7.
#define EXP \
	VMULPS Y9, Y0, Y1; \
	VCVTPS2PD X1, Y2; \
	VEXTRACTF128 $1, Y1, X3; \
	VCVTPS2PD X3, Y3; \
	VADDPD Y15, Y2, Y2; \
	VADDPD Y15, Y3, Y3; \
	VROUNDPD $9, Y2, Y2; \
	VROUNDPD $9, Y3, Y3; \
	VCVTPD2PSY Y2, X2; \
	VCVTPD2PSY Y3, X3; \
	VINSERTF128 $1, X3, Y2, Y2; \
	VMULPS Y10, Y2, Y4; \
	VSUBPS Y4, Y0, Y4; \
	VMULPS Y11, Y2, Y5; \
	VSUBPS Y5, Y4, Y4; \
	VBROADCASTSS ·fm32+20(SB), Y5; \
	HORNER(24); \
	HORNER(28); \
	HORNER(32); \
	HORNER(36); \
	HORNER(40); \
	VMULPS Y4, Y5, Y5; \
	VMULPS Y4, Y5, Y5; \
	VADDPS Y4, Y5, Y5; \
	VADDPS Y12, Y5, Y5; \
	VCVTTPS2DQ Y2, Y6; \
	VPBROADCASTD ·fm32Bias(SB), Y7; \
	VPADDD Y7, Y6, Y6; \
	VPSLLD $23, Y6, Y6; \
	VMULPS Y6, Y5, Y0

// SIGMOID sets Y0 = sigmoid32(Y0) = 1/(1+exp32(-Y0)).
#define SIGMOID \
	VBROADCASTSS ·fm32+64(SB), Y1; \
	VXORPS Y1, Y0, Y0; \
	RANGE; \
	EXP; \
	VADDPS Y12, Y0, Y0; \
	VDIVPS Y0, Y12, Y0

// GELUZ sets Y0 to the sigmoid's argument of GELU-tanh at Y8: 2c (v + k v v v).
#define GELUZ \
	VBROADCASTSS ·fm32+52(SB), Y1; \
	VMULPS Y8, Y1, Y1; \
	VMULPS Y8, Y1, Y1; \
	VMULPS Y8, Y1, Y1; \
	VADDPS Y1, Y8, Y1; \
	VBROADCASTSS ·fm32+48(SB), Y0; \
	VMULPS Y1, Y0, Y0

// NEXT8 leaves the loop (for done) unless 8 more elements follow element AX of n (CX).
#define NEXT8 \
	LEAQ 8(AX), DX; \
	CMPQ DX, CX; \
	JGT  done

// BETA finishes a gradient in Y0 (actGradAVX2): times dy, then dx = g, or beta*dx + g
// where BX (beta's bits without the sign) is not 0; it stores dx.
#define BETA \
	VMULPS (R8)(AX*4), Y0, Y0; \
	TESTL BX, BX; \
	JZ   4(PC); \
	VBROADCASTSS beta+40(FP), Y1; \
	VMULPS (DI)(AX*4), Y1, Y1; \
	VADDPS Y0, Y1, Y0; \
	VMOVUPS Y0, (DI)(AX*4)

// func actAVX2(gelu bool, y, x *float32, n int) int: y = silu32(x), or gelu32(x)
TEXT ·actAVX2(SB), NOSPLIT, $0-40
	MOVBQZX gelu+0(FP), R9
	MOVQ y+8(FP), DI
	MOVQ x+16(FP), SI
	MOVQ n+24(FP), CX
	CONSTS
	XORQ AX, AX
loop:
	NEXT8
	VMOVUPS (SI)(AX*4), Y8
	VMOVAPS Y8, Y0
	TESTQ R9, R9
	JZ   silu
	GELUZ
silu:
	SIGMOID
	VMULPS Y0, Y8, Y0
	VMOVUPS Y0, (DI)(AX*4)
	ADDQ $8, AX
	JMP  loop
done:
	VZEROUPPER
	MOVQ AX, ret+32(FP)
	RET

// func actGradAVX2(gelu bool, dx, dy, x *float32, n int, beta float32) int: dx = g dy,
// or beta dx + g dy, g = siluGrad32(x) or geluGrad32(x)
TEXT ·actGradAVX2(SB), NOSPLIT, $0-56
	MOVBQZX gelu+0(FP), R9
	MOVQ dx+8(FP), DI
	MOVQ dy+16(FP), R8
	MOVQ x+24(FP), SI
	MOVQ n+32(FP), CX
	MOVL beta+40(FP), BX
	ANDL $0x7fffffff, BX
	CONSTS
	XORQ AX, AX
loop:
	NEXT8
	VMOVUPS (SI)(AX*4), Y8
	VMOVAPS Y8, Y0
	TESTQ R9, R9
	JZ   silu
	GELUZ
	SIGMOID
	// s + 2 v s (1-s) c (1 + 3k v v)
	VADDPS Y8, Y8, Y1
	VMULPS Y0, Y1, Y1
	VSUBPS Y0, Y12, Y2
	VMULPS Y2, Y1, Y1
	VBROADCASTSS ·fm32+56(SB), Y2
	VMULPS Y2, Y1, Y1
	VBROADCASTSS ·fm32+60(SB), Y2
	VMULPS Y8, Y2, Y2
	VMULPS Y8, Y2, Y2
	VADDPS Y12, Y2, Y2
	VMULPS Y2, Y1, Y1
	VADDPS Y1, Y0, Y0
	JMP  beta
silu:
	SIGMOID
	// s (1 + v (1-s))
	VSUBPS Y0, Y12, Y1
	VMULPS Y8, Y1, Y1
	VADDPS Y12, Y1, Y1
	VMULPS Y1, Y0, Y0
beta:
	BETA
	ADDQ $8, AX
	JMP  loop
done:
	VZEROUPPER
	MOVQ AX, ret+48(FP)
	RET

// func expSubAVX2(y, x *float32, n int, mx float32) int: y = exp32(x - mx)
TEXT ·expSubAVX2(SB), NOSPLIT, $0-40
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS mx+24(FP), Y8
	CONSTS
	XORQ AX, AX
loop:
	NEXT8
	VMOVUPS (SI)(AX*4), Y0
	VSUBPS Y8, Y0, Y0
	RANGE
	EXP
	VMOVUPS Y0, (DI)(AX*4)
	ADDQ $8, AX
	JMP  loop
done:
	VZEROUPPER
	MOVQ AX, ret+32(FP)
	RET

// func maxAVX2(x *float32, n int) float32: the largest of x[0:n] (n a multiple of 8, at
// least 8) by Go's max: a NaN if any is a NaN, and +0 above -0. Each lane keeps the
// negated maximum m and takes, as the compiled max does, the OR of min(m, -x) and
// min(min(m, -x), m): the OR keeps a NaN and makes a tie of zeros -0, so the maximum is
// +0. The eight lanes are then combined the same way.
#define NEGMIN(y, m, t1, t2) \
	VMINPS y, m, t1; \
	VMINPS m, t1, t2; \
	VORPS t1, t2, m

TEXT ·maxAVX2(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	MOVL $0x80000000, DX
	VMOVD DX, X8
	VBROADCASTSS X8, Y8
	MOVL $0x7f800000, DX
	VMOVD DX, X0
	VBROADCASTSS X0, Y0
	XORQ AX, AX
maxloop:
	VXORPS (SI)(AX*4), Y8, Y1
	NEGMIN(Y1, Y0, Y2, Y3)
	ADDQ $8, AX
	CMPQ AX, CX
	JLT  maxloop
	VEXTRACTF128 $1, Y0, X1
	NEGMIN(X1, X0, X2, X3)
	VPERMILPS $0x4e, X0, X1
	NEGMIN(X1, X0, X2, X3)
	VPERMILPS $0xb1, X0, X1
	NEGMIN(X1, X0, X2, X3)
	VXORPS X8, X0, X0
	VZEROUPPER
	MOVSS X0, ret+16(FP)
	RET

// func sumExactAVX2(acc *[4]float64, x *float32, n int, lo, hi float32) bool: acc = the
// float64 sums of x[l], x[l+4], ... (n a multiple of 8, at least 8), and whether every
// x is 0 or in [lo, hi] (ordered compares: a NaN is not).
TEXT ·sumExactAVX2(SB), NOSPLIT, $0-33
	MOVQ acc+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS lo+24(FP), Y8
	VBROADCASTSS hi+28(FP), Y9
	VXORPS Y10, Y10, Y10
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VPCMPEQD Y7, Y7, Y7
	XORQ AX, AX
sumloop:
	VMOVUPS (SI)(AX*4), Y2
	VCMPPS $0x1d, Y8, Y2, Y3
	VCMPPS $0x12, Y9, Y2, Y4
	VANDPS Y3, Y4, Y3
	VCMPPS $0x00, Y10, Y2, Y4
	VORPS Y3, Y4, Y3
	VANDPS Y3, Y7, Y7
	VCVTPS2PD X2, Y3
	VEXTRACTF128 $1, Y2, X4
	VCVTPS2PD X4, Y4
	VADDPD Y3, Y0, Y0
	VADDPD Y4, Y1, Y1
	ADDQ $8, AX
	CMPQ AX, CX
	JLT  sumloop
	VADDPD Y1, Y0, Y0
	VMOVUPD Y0, (DI)
	VMOVMSKPS Y7, DX
	CMPL DX, $0xff
	SETEQ ret+32(FP)
	VZEROUPPER
	RET
