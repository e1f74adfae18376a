// CUDA kernels of immkit's cuda Device. Each kernel is the reference loop in the doc
// comment of the kernels.Device op it implements; see kernels/kernels.go. Compiled to
// PTX (compute_80) by `go generate`, committed as kernels.ptx and embedded.
//
// Parameters are pointers, int, float, double or unsigned long long; the Go launcher
// (launch.go) passes them in the order written here, and ptx_test.go checks the counts.

#include <cuda_bf16.h>

#define GRID_STRIDE(i, n) for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n); i += (long long)blockDim.x * gridDim.x)

__device__ __forceinline__ float act_f(int a, float x) {
	if (a == 1) return x * __frcp_rn(1.0f + __expf(-x)); // __expf(-x) = inf: x * 0
	// GELU-tanh as x sigmoid(2u), u = c (x + 0.044715 x^3): 0.5 x (1 + tanh u) without tanhf
	if (a == 2) return x * __frcp_rn(1.0f + __expf(-1.5957691216057308f * (x + 0.044715f * x * x * x)));
	return x;
}

__device__ __forceinline__ float act_grad_f(int a, float x) {
	if (a == 1) {
		float s = __frcp_rn(1.0f + __expf(-x));
		return s * (1.0f + x * (1.0f - s));
	}
	if (a == 2) {
		// s = sigmoid(2u) = 0.5 (1 + tanh u), 2 s (1 - s) = 0.5 (1 - tanh^2 u)
		float s = __frcp_rn(1.0f + __expf(-1.5957691216057308f * (x + 0.044715f * x * x * x)));
		return s + 2.0f * x * s * (1.0f - s) * 0.7978845608028654f * (1.0f + 3.0f * 0.044715f * x * x);
	}
	return 1.0f;
}

// bf16_float widens a bf16 (its 16-bit pattern) to float, exactly.
__device__ __forceinline__ float bf16_float(unsigned short u) { return __bfloat162float(__ushort_as_bfloat16(u)); }

// ld_f reads element i of float or bf16 memory as float: the row sums take either.
__device__ __forceinline__ float ld_f(const float *p, long long i) { return p[i]; }
__device__ __forceinline__ float ld_f(const unsigned short *p, long long i) { return bf16_float(p[i]); }

// sum_rows_t and sum_rows_part_t are sum_rows and sum_rows_part (below) over float or bf16 x.
template <typename X>
__device__ __forceinline__ void sum_rows_t(float *dst, const X *x, int rows, int cols, float beta) {
	__shared__ float sh[32][33];
	int j = blockIdx.x * 32 + threadIdx.x;
	float s = 0;
	if (j < cols)
		for (int i = threadIdx.y; i < rows; i += 32) s += ld_f(x, (long long)i * cols + j);
	sh[threadIdx.y][threadIdx.x] = s;
	__syncthreads();
	if (threadIdx.y == 0 && j < cols) {
		float t = 0;
		for (int r = 0; r < 32; r++) t += sh[r][threadIdx.x];
		dst[j] = beta == 0.0f ? t : beta * dst[j] + t;
	}
}

template <typename X>
__device__ __forceinline__ void sum_rows_part_t(float *part, const X *x, int rows, int cols, int rpc, int ldp) {
	__shared__ float sh[32][33];
	int j = blockIdx.x * 32 + threadIdx.x;
	int c = blockIdx.y;
	int i0 = c * rpc, i1 = min(rows, i0 + rpc);
	float s = 0;
	if (j < cols)
		for (int i = i0 + threadIdx.y; i < i1; i += 32) s += ld_f(x, (long long)i * cols + j);
	sh[threadIdx.y][threadIdx.x] = s;
	__syncthreads();
	if (threadIdx.y == 0 && j < cols) {
		float t = 0;
		for (int r = 0; r < 32; r++) t += sh[r][threadIdx.x];
		part[(long long)c * ldp + j] = t;
	}
}

// block_sum reduces v over the block (blockDim.x a multiple of 32, at most 1024) and
// returns the total to every thread. sh holds 32 doubles.
__device__ double block_sum(double v, double *sh) {
	for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
	int w = threadIdx.x >> 5, l = threadIdx.x & 31;
	__syncthreads();
	if (l == 0) sh[w] = v;
	__syncthreads();
	int nw = blockDim.x >> 5;
	v = l < nw ? sh[l] : 0.0;
	for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
	return v;
}

__device__ float block_max(float v, float *sh) {
	for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffff, v, o));
	int w = threadIdx.x >> 5, l = threadIdx.x & 31;
	__syncthreads();
	if (l == 0) sh[w] = v;
	__syncthreads();
	int nw = blockDim.x >> 5;
	v = l < nw ? sh[l] : -INFINITY;
	for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffff, v, o));
	return v;
}

// Row ops with the row held in registers: a group of N threads (a warp, N = 32, or a
// block, N = blockDim.x = 256) handles row r, thread t holding columns t, t+N, ..., up to
// K values. Per-thread partial sums are float (at most K terms), the sums across threads
// double, as in the block-per-row kernels. For a warp, sh is unused (shuffles only).
__device__ __forceinline__ double warp_sum(double v) {
	for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
	return v;
}

__device__ __forceinline__ float warp_max(float v) {
	for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffff, v, o));
	return v;
}

template <int N>
__device__ __forceinline__ double group_sum(double v, double *sh) {
	return N == 32 ? warp_sum(v) : block_sum(v, sh);
}

template <int N>
__device__ __forceinline__ float group_max(float v, float *sh) {
	return N == 32 ? warp_max(v) : block_max(v, sh);
}

// The row of the calling warp (one warp per row, blockDim.x/32 rows per block).
#define WARP_R ((long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5))

// store_y writes a row op's output: float, or bf16 rounded to nearest even (the rounded
// operand copies of kernels.OperandRounder).
__device__ __forceinline__ void store_y(float *p, float v) { *p = v; }
__device__ __forceinline__ void store_y(unsigned short *p, float v) { *p = __bfloat16_as_ushort(__float2bfloat16_rn(v)); }

// row_ln normalises row r of x; with shift and scale (not null) it applies the adaLN
// modulation of the row's sequence (row r/l of [rows/l, ld] matrices) before the store
// (AdaLayerNorm). Y is float, or unsigned short for a bf16 output.
template <int K, int N, typename Y>
__device__ __forceinline__ void row_ln(long long r, int t, int n, Y *y, float *mean, float *rstd, const float *x, const float *shift, const float *scale, int rows, int l, int cols, int ld, float eps, double *sh) {
	if (r >= rows) return;
	const float *xr = x + r * cols;
	float v[K];
	float s = 0.0f;
#pragma unroll
	for (int k = 0; k < K; k++) {
		int j = t + n * k;
		v[k] = j < cols ? xr[j] : 0.0f;
		s += v[k];
	}
	float mu = (float)(group_sum<N>(s, sh) / cols);
	s = 0.0f;
#pragma unroll
	for (int k = 0; k < K; k++) {
		float d = v[k] - mu;
		if (t + n * k < cols) s += d * d;
	}
	float rs = (float)(1.0 / sqrt(group_sum<N>(s, sh) / cols + (double)eps));
	if (t == 0) {
		mean[r] = mu;
		rstd[r] = rs;
	}
	long long b = scale ? (r / l) * ld : 0;
	Y *yr = y + r * cols;
#pragma unroll
	for (int k = 0; k < K; k++) {
		int j = t + n * k;
		if (j < cols) store_y(yr + j, scale ? (v[k] - mu) * rs * (1.0f + scale[b + j]) + shift[b + j] : (v[k] - mu) * rs);
	}
}

// row_ln_grad is the gradient of row_ln for dy; with scale (not null) it back-propagates
// through the modulation too (g = dy (1 + scale)) and writes dscale = dy yhat
// (AdaLayerNormGrad, beta 0).
template <int K, int N>
__device__ __forceinline__ void row_ln_grad(long long r, int t, int n, float *dx, float *dscale, const float *dy, const float *x, const float *mean, const float *rstd, const float *scale, int rows, int l, int cols, int ld, float beta, double *sh) {
	if (r >= rows) return;
	const float *xr = x + r * cols, *gr = dy + r * cols;
	long long b = scale ? (r / l) * ld : 0;
	float mu = mean[r], rs = rstd[r];
	float yh[K], g[K];
	float a = 0.0f, c = 0.0f;
#pragma unroll
	for (int k = 0; k < K; k++) {
		int j = t + n * k;
		yh[k] = j < cols ? (xr[j] - mu) * rs : 0.0f;
		g[k] = j < cols ? gr[j] : 0.0f;
		if (scale && j < cols) {
			dscale[r * cols + j] = g[k] * yh[k];
			g[k] += g[k] * scale[b + j];
		}
		a += g[k];
		c += g[k] * yh[k];
	}
	float mg = (float)(group_sum<N>(a, sh) / cols);
	float mgy = (float)(group_sum<N>(c, sh) / cols);
	float *out = dx + r * cols;
#pragma unroll
	for (int k = 0; k < K; k++) {
		int j = t + n * k;
		if (j < cols) {
			float v = rs * (g[k] - mg - yh[k] * mgy);
			out[j] = beta == 0.0f ? v : beta * out[j] + v;
		}
	}
}

// row_softmax and row_softmax_grad: y (and dx) float, or bf16 (unsigned short: the
// probabilities and score gradients of the GEMM attention, read as product operands).
template <int K, int N, typename Y>
__device__ __forceinline__ void row_softmax(long long r, int t, int n, Y *y, const float *x, int rows, int cols, double *sh, float *shf) {
	if (r >= rows) return;
	const float *xr = x + r * cols;
	float v[K];
	float mx = -INFINITY;
#pragma unroll
	for (int k = 0; k < K; k++) {
		int j = t + n * k;
		v[k] = j < cols ? xr[j] : -INFINITY;
		mx = fmaxf(mx, v[k]);
	}
	mx = group_max<N>(mx, shf);
	float s = 0.0f;
#pragma unroll
	for (int k = 0; k < K; k++) {
		v[k] = t + n * k < cols ? expf(v[k] - mx) : 0.0f;
		s += v[k];
	}
	float inv = (float)(1.0 / group_sum<N>(s, sh));
	Y *yr = y + r * cols;
#pragma unroll
	for (int k = 0; k < K; k++) {
		int j = t + n * k;
		if (j < cols) store_y(yr + j, v[k] * inv);
	}
}

template <int K, int N, typename Y, typename DX>
__device__ __forceinline__ void row_softmax_grad(long long r, int t, int n, DX *dx, const float *dy, const Y *y, int rows, int cols, float beta, double *sh) {
	if (r >= rows) return;
	const float *gr = dy + r * cols;
	const Y *yr = y + r * cols;
	float g[K], yv[K];
	float s = 0.0f;
#pragma unroll
	for (int k = 0; k < K; k++) {
		int j = t + n * k;
		g[k] = j < cols ? gr[j] : 0.0f;
		yv[k] = j < cols ? ld_f(yr, j) : 0.0f;
		s += g[k] * yv[k];
	}
	float dot = (float)group_sum<N>(s, sh);
	DX *out = dx + r * cols;
#pragma unroll
	for (int k = 0; k < K; k++) {
		int j = t + n * k;
		if (j < cols) {
			float v = yv[k] * (g[k] - dot);
			store_y(out + j, beta == 0.0f ? v : beta * ld_f(out, j) + v);
		}
	}
}

// ---- fused attention on bf16 tensor cores (flash-attention 2: the scores never reach
// memory; the backward pass recomputes them from the saved row log-sum-exp) ----

// mma_bf16 accumulates d += A B for one warp with mma.sync.m16n8k16 (bf16 inputs, fp32
// accumulation). Fragments (PTX ISA), with g = lane/4 and t = lane%4: a[0] = A[g][2t,2t+1],
// a[1] = A[g+8][2t,2t+1], a[2] = A[g][2t+8,2t+9], a[3] = A[g+8][2t+8,2t+9]; b[0] =
// B[2t,2t+1][g], b[1] = B[2t+8,2t+9][g]; d[0], d[1] = D[g][2t,2t+1], d[2], d[3] =
// D[g+8][2t,2t+1]. Of a pair, the lower index is the low 16 bits.
__device__ __forceinline__ void mma_bf16(float *d, const unsigned *a, const unsigned *b) {
#ifdef __CUDA_ARCH__
	asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
	             : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
	             : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
	emu_mma_bf16(d, a, b);
#endif
}

__device__ __forceinline__ unsigned short bf16_bits(float x) { return __bfloat16_as_ushort(__float2bfloat16_rn(x)); }
__device__ __forceinline__ unsigned pack_bf16(float lo, float hi) { return (unsigned)bf16_bits(lo) | ((unsigned)bf16_bits(hi) << 16); }
// two consecutive bf16 (4-byte aligned) as one word
__device__ __forceinline__ unsigned ld_pair(const unsigned short *p) {
#ifdef __CUDA_ARCH__
	return *reinterpret_cast<const unsigned *>(p);
#else
	unsigned u;
	memcpy(&u, p, 4);
	return u;
#endif
}
// to_bits is the bf16 of a float (rounded to nearest even) or a bf16 as it is, and
// pack_bits two of them as one word: the flash kernels read qkv in either type.
__device__ __forceinline__ unsigned short to_bits(float x) { return bf16_bits(x); }
__device__ __forceinline__ unsigned short to_bits(unsigned short x) { return x; }
template <typename T>
__device__ __forceinline__ unsigned pack_bits(T lo, T hi) { return (unsigned)to_bits(lo) | ((unsigned)to_bits(hi) << 16); }
// p[0] and p[stride] (two rows, one column) as one word
__device__ __forceinline__ unsigned ld_col_pair(const unsigned short *p, int stride) { return (unsigned)p[0] | ((unsigned)p[stride] << 16); }

// frag_rows loads the A fragments (k = the HD columns) of rows r and r+8 of a row-major
// fp32 or bf16 matrix (leading dimension ld, columns from col) as bf16; rows >= n are 0.
template <int HD, typename T>
__device__ __forceinline__ void frag_rows(unsigned (*f)[4], const T *m, long long ld, int col, int r, int n) {
	int t = threadIdx.x & 3;
	const T *p0 = m + r * ld + col, *p1 = p0 + 8 * ld;
#pragma unroll
	for (int kk = 0; kk < HD / 16; kk++) {
		int c = kk * 16 + 2 * t;
		f[kk][0] = r < n ? pack_bits(p0[c], p0[c + 1]) : 0u;
		f[kk][1] = r + 8 < n ? pack_bits(p1[c], p1[c + 1]) : 0u;
		f[kk][2] = r < n ? pack_bits(p0[c + 8], p0[c + 9]) : 0u;
		f[kk][3] = r + 8 < n ? pack_bits(p1[c + 8], p1[c + 9]) : 0u;
	}
}

// tile_load stores rows [r0, r0+64) of a row-major fp32 or bf16 matrix (leading
// dimension ld, columns col..col+HD) as bf16 into sh (row stride HD+8); rows >= n are 0.
template <int HD, typename T>
__device__ __forceinline__ void tile_load(unsigned short *sh, const T *m, long long ld, int col, int r0, int n) {
	for (int i = threadIdx.x; i < 64 * HD / 2; i += blockDim.x) {
		int r = i / (HD / 2), c = (i % (HD / 2)) * 2;
		T x = 0, y = 0;
		if (r0 + r < n) {
			const T *p = m + (r0 + r) * ld + col + c;
			x = p[0];
			y = p[1];
		}
		sh[r * (HD + 8) + c] = to_bits(x);
		sh[r * (HD + 8) + c + 1] = to_bits(y);
	}
}

// C fragments of two adjacent 8-column tiles s[2j], s[2j+1] (16 rows x 16 columns) as the
// A fragment of the next product: the flash-attention register reuse.
__device__ __forceinline__ void c_to_a(unsigned *a, const float *lo, const float *hi) {
	a[0] = pack_bf16(lo[0], lo[1]);
	a[1] = pack_bf16(lo[2], lo[3]);
	a[2] = pack_bf16(hi[0], hi[1]);
	a[3] = pack_bf16(hi[2], hi[3]);
}

// mma_rows_tile sets acc to A T^T for one warp: A is the warp's 16 rows of HD columns as
// A fragments a[HD/16][4], T rows 0..63 of a bf16 shared tile (row stride S), acc 8 C
// fragments (16 x 64). The forward pass's Q K^T, and the backward pass's K Q^T and
// V dO^T.
template <int HD>
__device__ __forceinline__ void mma_rows_tile(float (*acc)[4], const unsigned (*a)[4], const unsigned short *tile, int S) {
	int g = (threadIdx.x & 31) >> 2, t = threadIdx.x & 3;
#pragma unroll
	for (int nt = 0; nt < 8; nt++) acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0.0f;
#pragma unroll
	for (int kk = 0; kk < HD / 16; kk++)
#pragma unroll
		for (int nt = 0; nt < 8; nt++) {
			const unsigned short *r = tile + (nt * 8 + g) * S + kk * 16 + 2 * t;
			unsigned b[2] = {ld_pair(r), ld_pair(r + 8)};
			mma_bf16(acc[nt], a[kk], b);
		}
}

// mma_p_tile adds P V to acc for one warp: P is the warp's 16 x 64 block held as C
// fragments p[8][4] (8 tiles of 8 columns), V rows 0..63 of a bf16 shared tile (row
// stride S), acc HD/8 C fragments. The forward pass's P V, and the backward pass's
// P^T dO and dS^T Q.
template <int HD>
__device__ __forceinline__ void mma_p_tile(float (*acc)[4], float (*p)[4], const unsigned short *v, int S) {
	int g = (threadIdx.x & 31) >> 2, t = threadIdx.x & 3;
#pragma unroll
	for (int j = 0; j < 4; j++) {
		unsigned a[4];
		c_to_a(a, p[2 * j], p[2 * j + 1]);
#pragma unroll
		for (int dt = 0; dt < HD / 8; dt++) {
			const unsigned short *v0 = v + (j * 16 + 2 * t) * S + dt * 8 + g;
			unsigned b[2] = {ld_col_pair(v0, S), ld_col_pair(v0 + 8 * S, S)};
			mma_bf16(acc[dt], a, b);
		}
	}
}

// attn_fwd: block (query tile of 64, head, sequence), 4 warps of 16 query rows. Per key
// tile of 64: S = Q K^T (scaled), the online softmax in registers, O += P V; at the end
// O / rowsum and lse = max + log(rowsum) (of the scaled scores) for the backward pass.
// qkv and o are fp32, or both bf16 (T unsigned short: o rounded once).
template <int HD, typename T>
__device__ void attn_fwd(T *o, float *lse, const T *qkv, int L, int H, float scale) {
	extern __shared__ unsigned short attn_sh[];
	const int S = HD + 8;
	unsigned short *Ks = attn_sh, *Vs = attn_sh + 64 * S;
	int b = blockIdx.z, h = blockIdx.y, w = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
	int D = H * HD;
	long long ld = 3LL * D;
	const T *base = qkv + (long long)b * L * ld;
	int r0 = blockIdx.x * 64 + w * 16 + g;
	unsigned qf[HD / 16][4];
	frag_rows<HD>(qf, base, ld, h * HD, r0, L);
	float acc[HD / 8][4];
#pragma unroll
	for (int dt = 0; dt < HD / 8; dt++) acc[dt][0] = acc[dt][1] = acc[dt][2] = acc[dt][3] = 0.0f;
	float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;
	for (int k0 = 0; k0 < L; k0 += 64) {
		__syncthreads();
		tile_load<HD>(Ks, base, ld, D + h * HD, k0, L);
		tile_load<HD>(Vs, base, ld, 2 * D + h * HD, k0, L);
		__syncthreads();
		float s[8][4];
		mma_rows_tile<HD>(s, qf, Ks, S);
		float mx0 = m0, mx1 = m1;
#pragma unroll
		for (int nt = 0; nt < 8; nt++)
#pragma unroll
			for (int j = 0; j < 2; j++) {
				bool ok = k0 + nt * 8 + 2 * t + j < L;
				s[nt][j] = ok ? s[nt][j] * scale : -INFINITY;
				s[nt][2 + j] = ok ? s[nt][2 + j] * scale : -INFINITY;
				mx0 = fmaxf(mx0, s[nt][j]);
				mx1 = fmaxf(mx1, s[nt][2 + j]);
			}
		// the four lanes of a row group hold its 64 columns; key k0 is in every tile, so
		// the maxima are finite
		mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffff, mx0, 1));
		mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffff, mx0, 2));
		mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffff, mx1, 1));
		mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffff, mx1, 2));
		float c0 = __expf(m0 - mx0), c1 = __expf(m1 - mx1); // 0 on the first tile (m = -inf)
		m0 = mx0;
		m1 = mx1;
		float ps0 = 0.0f, ps1 = 0.0f;
#pragma unroll
		for (int nt = 0; nt < 8; nt++)
#pragma unroll
			for (int j = 0; j < 2; j++) {
				s[nt][j] = __expf(s[nt][j] - m0);
				s[nt][2 + j] = __expf(s[nt][2 + j] - m1);
				ps0 += s[nt][j];
				ps1 += s[nt][2 + j];
			}
		l0 = l0 * c0 + ps0; // this lane's share of the row sums (the group adds them at the end)
		l1 = l1 * c1 + ps1;
#pragma unroll
		for (int dt = 0; dt < HD / 8; dt++) {
			acc[dt][0] *= c0;
			acc[dt][1] *= c0;
			acc[dt][2] *= c1;
			acc[dt][3] *= c1;
		}
		mma_p_tile<HD>(acc, s, Vs, S);
	}
	l0 += __shfl_xor_sync(0xffffffff, l0, 1);
	l0 += __shfl_xor_sync(0xffffffff, l0, 2);
	l1 += __shfl_xor_sync(0xffffffff, l1, 1);
	l1 += __shfl_xor_sync(0xffffffff, l1, 2);
	float i0 = 1.0f / l0, i1 = 1.0f / l1;
	T *ob = o + (long long)b * L * D + h * HD;
#pragma unroll
	for (int dt = 0; dt < HD / 8; dt++) {
		int c = dt * 8 + 2 * t;
		if (r0 < L) {
			store_y(ob + (long long)r0 * D + c, acc[dt][0] * i0);
			store_y(ob + (long long)r0 * D + c + 1, acc[dt][1] * i0);
		}
		if (r0 + 8 < L) {
			store_y(ob + (long long)(r0 + 8) * D + c, acc[dt][2] * i1);
			store_y(ob + (long long)(r0 + 8) * D + c + 1, acc[dt][3] * i1);
		}
	}
	if (t == 0) {
		float *lb = lse + ((long long)b * H + h) * L;
		if (r0 < L) lb[r0] = m0 + logf(l0);
		if (r0 + 8 < L) lb[r0 + 8] = m1 + logf(l1);
	}
}

// attn_bwd: block (key tile of 64, head, sequence), 4 warps of 16 keys holding their K
// and V rows as A fragments and their dK, dV in registers. Per query tile of 64: S^T =
// K Q^T, P^T = exp(scale S^T - lse), dV += P^T dO, dP^T = V dO^T, dS^T = P^T (dP^T -
// dvec), dK += dS^T Q; then dS^T goes through shared memory for dQ = dS K over the
// block's keys, added to dqkv with atomics (other key tiles add theirs). dqkv's Q part
// must be zero before; dK and dV (scaled) are stored. qkv and dout are fp32, or both bf16
// (T).
template <int HD, typename T>
__device__ void attn_bwd(float *dqkv, const T *qkv, const T *dout, const float *lse, const float *dvec, int L, int H, float scale) {
	extern __shared__ unsigned short attn_sh[];
	const int S = HD + 8, SP = 64 + 8;
	unsigned short *Qs = attn_sh, *dOs = Qs + 64 * S, *Ks = dOs + 64 * S, *dSs = Ks + 64 * S;
	float *lse_s = (float *)(dSs + 64 * SP), *dv_s = lse_s + 64;
	int b = blockIdx.z, h = blockIdx.y, w = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
	int D = H * HD, kb = blockIdx.x * 64;
	long long ld = 3LL * D;
	const T *base = qkv + (long long)b * L * ld, *dob = dout + (long long)b * L * D;
	const float *lb = lse + ((long long)b * H + h) * L, *db = dvec + ((long long)b * H + h) * L;
	int kr0 = kb + w * 16 + g;
	unsigned kf[HD / 16][4], vf[HD / 16][4];
	frag_rows<HD>(kf, base, ld, D + h * HD, kr0, L);
	frag_rows<HD>(vf, base, ld, 2 * D + h * HD, kr0, L);
	tile_load<HD>(Ks, base, ld, D + h * HD, kb, L);
	float dk[HD / 8][4], dv[HD / 8][4];
#pragma unroll
	for (int dt = 0; dt < HD / 8; dt++)
#pragma unroll
		for (int j = 0; j < 4; j++) dk[dt][j] = dv[dt][j] = 0.0f;
	for (int q0 = 0; q0 < L; q0 += 64) {
		__syncthreads();
		tile_load<HD>(Qs, base, ld, h * HD, q0, L);
		tile_load<HD>(dOs, dob, D, h * HD, q0, L);
		if (threadIdx.x < 64) {
			int q = q0 + threadIdx.x;
			lse_s[threadIdx.x] = q < L ? lb[q] : INFINITY; // P = 0 for queries past the end
			dv_s[threadIdx.x] = q < L ? db[q] : 0.0f;
		}
		__syncthreads();
		float st[8][4], dpt[8][4];
		mma_rows_tile<HD>(st, kf, Qs, S);  // S^T = K Q^T
		mma_rows_tile<HD>(dpt, vf, dOs, S); // dP^T = V dO^T
#pragma unroll
		for (int nt = 0; nt < 8; nt++)
#pragma unroll
			for (int j = 0; j < 2; j++) {
				int q = nt * 8 + 2 * t + j;
				st[nt][j] = __expf(st[nt][j] * scale - lse_s[q]);
				st[nt][2 + j] = __expf(st[nt][2 + j] * scale - lse_s[q]);
			}
		mma_p_tile<HD>(dv, st, dOs, S); // dV += P^T dO
		// dS^T = P^T (dP^T - dvec), kept in st; to shared memory for dQ
#pragma unroll
		for (int nt = 0; nt < 8; nt++)
#pragma unroll
			for (int j = 0; j < 2; j++) {
				int q = nt * 8 + 2 * t + j;
				st[nt][j] *= dpt[nt][j] - dv_s[q];
				st[nt][2 + j] *= dpt[nt][2 + j] - dv_s[q];
				dSs[(w * 16 + g) * SP + q] = bf16_bits(st[nt][j]);
				dSs[(w * 16 + g + 8) * SP + q] = bf16_bits(st[nt][2 + j]);
			}
		mma_p_tile<HD>(dk, st, Qs, S); // dK += dS^T Q
		__syncthreads();
		// dQ rows q0 + w*16 .. +15 = dS K over the block's 64 keys; A(q, key) = dSs[key][q]
		float dq[HD / 8][4];
#pragma unroll
		for (int dt = 0; dt < HD / 8; dt++) dq[dt][0] = dq[dt][1] = dq[dt][2] = dq[dt][3] = 0.0f;
#pragma unroll
		for (int j = 0; j < 4; j++) {
			int qa = w * 16 + g, kc = j * 16 + 2 * t;
			unsigned a[4] = {ld_col_pair(dSs + kc * SP + qa, SP), ld_col_pair(dSs + kc * SP + qa + 8, SP),
			                 ld_col_pair(dSs + (kc + 8) * SP + qa, SP), ld_col_pair(dSs + (kc + 8) * SP + qa + 8, SP)};
#pragma unroll
			for (int dt = 0; dt < HD / 8; dt++) {
				const unsigned short *p0 = Ks + (j * 16 + 2 * t) * S + dt * 8 + g;
				unsigned kb2[2] = {ld_col_pair(p0, S), ld_col_pair(p0 + 8 * S, S)};
				mma_bf16(dq[dt], a, kb2);
			}
		}
		float *dqb = dqkv + (long long)b * L * ld + h * HD;
		int qr = q0 + w * 16 + g;
#pragma unroll
		for (int dt = 0; dt < HD / 8; dt++) {
			int c = dt * 8 + 2 * t;
			if (qr < L) {
				atomicAdd(dqb + qr * ld + c, dq[dt][0] * scale);
				atomicAdd(dqb + qr * ld + c + 1, dq[dt][1] * scale);
			}
			if (qr + 8 < L) {
				atomicAdd(dqb + (qr + 8) * ld + c, dq[dt][2] * scale);
				atomicAdd(dqb + (qr + 8) * ld + c + 1, dq[dt][3] * scale);
			}
		}
	}
	float *dkb = dqkv + (long long)b * L * ld + D + h * HD, *dvb = dkb + D;
#pragma unroll
	for (int dt = 0; dt < HD / 8; dt++) {
		int c = dt * 8 + 2 * t;
		if (kr0 < L) {
			dkb[kr0 * ld + c] = dk[dt][0] * scale;
			dkb[kr0 * ld + c + 1] = dk[dt][1] * scale;
			dvb[kr0 * ld + c] = dv[dt][0];
			dvb[kr0 * ld + c + 1] = dv[dt][1];
		}
		if (kr0 + 8 < L) {
			dkb[(kr0 + 8) * ld + c] = dk[dt][2] * scale;
			dkb[(kr0 + 8) * ld + c + 1] = dk[dt][3] * scale;
			dvb[(kr0 + 8) * ld + c] = dv[dt][2];
			dvb[(kr0 + 8) * ld + c + 1] = dv[dt][3];
		}
	}
}

// attn_dot is attn_bwd_dot (below) over fp32 or bf16 dout and o.
template <typename T>
__device__ __forceinline__ void attn_dot(float *dvec, const T *dout, const T *o, int B, int L, int H, int HD) {
	long long D = (long long)H * HD;
	GRID_STRIDE(i, (long long)B * H * L) {
		long long b = i / ((long long)H * L), h = (i / L) % H, l = i % L;
		const T *x = dout + (b * L + l) * D + h * HD, *y = o + (b * L + l) * D + h * HD;
		float s = 0.0f;
		for (int d = 0; d < HD; d++) s += ld_f(x, d) * ld_f(y, d);
		dvec[i] = s;
	}
}

extern "C" {

// x[i*cols+j] += v[j]; launched as the row-broadcast kernels below (no 64-bit division
// per element)
__global__ void add_row_vector(float *x, const float *v, int rows, int cols) {
	for (int r = blockIdx.y; r < rows; r += gridDim.y) {
		long long o = (long long)r * cols;
		for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < cols; j += blockDim.x * gridDim.x) x[o + j] += v[j];
	}
}

// dst[j] = beta*dst[j] + sum_i x[i*cols+j]; block (32, 32), grid ceil(cols/32).
__global__ void sum_rows(float *dst, const float *x, int rows, int cols, float beta) { sum_rows_t(dst, x, rows, cols, beta); }
// sum_rows over bf16 x (a rounded output gradient: the bias gradient of its layer)
__global__ void sum_rows_h(float *dst, const unsigned short *x, int rows, int cols, float beta) { sum_rows_t(dst, x, rows, cols, beta); }

// Tall SumRows in two deterministic passes: block (32, 32) of grid (ceil(cols/32),
// chunks) sums rows [c*rpc, (c+1)*rpc) of 32 columns into part[c*ldp+j]; then
// sum_rows_finish adds the chunks in order. Many blocks instead of ceil(cols/32).
// Alone, with rpc = l, it is SumRowGroups.
__global__ void sum_rows_part(float *part, const float *x, int rows, int cols, int rpc, int ldp) { sum_rows_part_t(part, x, rows, cols, rpc, ldp); }
__global__ void sum_rows_part_h(float *part, const unsigned short *x, int rows, int cols, int rpc, int ldp) {
	sum_rows_part_t(part, x, rows, cols, rpc, ldp);
}

__global__ void sum_rows_finish(float *dst, const float *part, int chunks, int cols, float beta) {
	GRID_STRIDE(j, cols) {
		float t = 0;
		for (int c = 0; c < chunks; c++) t += part[(long long)c * cols + j];
		dst[j] = beta == 0.0f ? t : beta * dst[j] + t;
	}
}

// dst[i*cols+j] = a[i]*x[i*cols+j] + b[i]*y[i*cols+j] (b, y may be null)
__global__ void row_comb(float *dst, const float *a, const float *x, const float *b, const float *y, int rows, int cols) {
	GRID_STRIDE(i, (long long)rows * cols) {
		long long r = i / cols;
		float v = a[r] * x[i];
		if (b && y) v += b[r] * y[i];
		dst[i] = v;
	}
}

// y[i] = alpha*x[i] + beta*y[i]
__global__ void axpby(float alpha, const float *x, float beta, float *y, long long n) {
	GRID_STRIDE(i, n) y[i] = alpha * x[i] + beta * y[i];
}

// dst[i] = x[i]*y[i] + beta*dst[i]
__global__ void mul(float *dst, const float *x, const float *y, float beta, long long n) {
	GRID_STRIDE(i, n) dst[i] = beta == 0.0f ? x[i] * y[i] : x[i] * y[i] + beta * dst[i];
}

// dst[i] = x[i]*(1+scale[i]) + shift[i]
__global__ void modulate(float *dst, const float *x, const float *shift, const float *scale, long long n) {
	GRID_STRIDE(i, n) dst[i] = x[i] * (1.0f + scale[i]) + shift[i];
}

// to_bf16 rounds (to nearest even) batch matrices of rows x cols, row-major with leading
// dimension ld and batch stride stride, into dense bf16 dst[(b*rows+r)*cols+c]: the
// operands of a bf16 GEMM. blockIdx.y strides over batch*rows.
__global__ void to_bf16(unsigned short *dst, const float *src, int batch, int rows, int cols, int ld, long long stride) {
	for (long long br = blockIdx.y; br < (long long)batch * rows; br += gridDim.y) {
		long long b = br / rows, r = br % rows;
		const float *s = src + b * stride + r * ld;
		unsigned short *o = dst + br * cols;
		for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < cols; j += blockDim.x * gridDim.x)
			o[j] = __bfloat16_as_ushort(__float2bfloat16_rn(s[j]));
	}
}

// round_bf16 rounds n floats (to nearest even, as to_bf16) into bf16 with the same
// indices: the rounded operand copies of kernels.OperandRounder.
__global__ void round_bf16(unsigned short *dst, const float *src, long long n) {
	GRID_STRIDE(i, n) dst[i] = __bfloat16_as_ushort(__float2bfloat16_rn(src[i]));
}

// Row-broadcast ops: blockIdx.y strides over rows, x-threads over the columns of a row,
// so no index is divided per element. v, shift, scale: row r uses v[(r/l)*ld + j].
// dst[r*cols+j] = x[r*cols+j]*v[(r/l)*ld+j] + beta*base[r*cols+j] (base: dst for MulRows)
__global__ void mul_rows(float *dst, const float *base, const float *x, const float *v, int rows, int l, int cols, int ld, float beta) {
	for (int r = blockIdx.y; r < rows; r += gridDim.y) {
		const float *vr = v + (long long)(r / l) * ld;
		long long o = (long long)r * cols;
		for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < cols; j += blockDim.x * gridDim.x) {
			float y = x[o + j] * vr[j];
			dst[o + j] = beta == 0.0f ? y : y + beta * base[o + j];
		}
	}
}

// mul_rows_h: mul_rows with beta 0 into bf16 (a gated branch's output gradient, which
// only the branch's last layer reads: its products and its bias-gradient sum)
__global__ void mul_rows_h(unsigned short *dst, const float *x, const float *v, int rows, int l, int cols, int ld) {
	for (int r = blockIdx.y; r < rows; r += gridDim.y) {
		const float *vr = v + (long long)(r / l) * ld;
		long long o = (long long)r * cols;
		for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < cols; j += blockDim.x * gridDim.x) dst[o + j] = bf16_bits(x[o + j] * vr[j]);
	}
}

// dst[r*cols+j] = x[r*cols+j]*(1+scale[(r/l)*ld+j]) + shift[(r/l)*ld+j]
__global__ void modulate_rows(float *dst, const float *x, const float *shift, const float *scale, int rows, int l, int cols, int ld) {
	for (int r = blockIdx.y; r < rows; r += gridDim.y) {
		long long b = (long long)(r / l) * ld, o = (long long)r * cols;
		for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < cols; j += blockDim.x * gridDim.x)
			dst[o + j] = x[o + j] * (1.0f + scale[b + j]) + shift[b + j];
	}
}

// y[i] = act(x[i])
__global__ void activate(int act, float *y, const float *x, long long n) {
	GRID_STRIDE(i, n) y[i] = act_f(act, x[i]);
}

// dx[i] = beta*dx[i] + dy[i]*act'(x[i])
__global__ void activate_grad(int act, float *dx, const float *dy, const float *x, float beta, long long n) {
	GRID_STRIDE(i, n) {
		float g = dy[i] * act_grad_f(act, x[i]);
		dx[i] = beta == 0.0f ? g : beta * dx[i] + g;
	}
}

// The epilogues of a product written in bf16 (GemmBiasAct / GemmActGrad into rounded
// storage) when cuBLASLt does not fuse them: z is the product in float32.
// bias_act_h, launched as the row-broadcast kernels: with t = z[r*cols+j] + bias[j] (the
// bias in bf16, as cuBLASLt takes it for a bf16 output; none when null),
// c = bf16(act(t)) and, when pre is not null, pre = bf16(t).
__global__ void bias_act_h(int act, unsigned short *c, unsigned short *pre, const float *z, const unsigned short *bias, int rows, int cols) {
	for (int r = blockIdx.y; r < rows; r += gridDim.y) {
		long long o = (long long)r * cols;
		for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < cols; j += blockDim.x * gridDim.x) {
			float t = z[o + j];
			if (bias) t += bf16_float(bias[j]);
			if (pre) pre[o + j] = bf16_bits(t);
			c[o + j] = bf16_bits(act_f(act, t));
		}
	}
}

// act_grad_h: c[i] = bf16(z[i] * act'(pre[i])) with pre in bf16.
__global__ void act_grad_h(int act, unsigned short *c, const float *z, const unsigned short *pre, long long n) {
	GRID_STRIDE(i, n) c[i] = bf16_bits(z[i] * act_grad_f(act, bf16_float(pre[i])));
}

// One block per row.
__global__ void layer_norm(float *y, float *mean, float *rstd, const float *x, int rows, int cols, float eps) {
	__shared__ double sh[32];
	int r = blockIdx.x;
	const float *xr = x + (long long)r * cols;
	double s = 0;
	for (int j = threadIdx.x; j < cols; j += blockDim.x) s += xr[j];
	double mu = block_sum(s, sh) / cols;
	s = 0;
	for (int j = threadIdx.x; j < cols; j += blockDim.x) {
		double d = xr[j] - mu;
		s += d * d;
	}
	double rs = 1.0 / sqrt(block_sum(s, sh) / cols + (double)eps);
	float muf = (float)mu, rsf = (float)rs;
	if (threadIdx.x == 0) {
		mean[r] = muf;
		rstd[r] = rsf;
	}
	float *yr = y + (long long)r * cols;
	for (int j = threadIdx.x; j < cols; j += blockDim.x) yr[j] = (float)((xr[j] - mu) * rs);
}

// One block per row.
__global__ void layer_norm_grad(float *dx, const float *dy, const float *x, const float *mean, const float *rstd, int rows, int cols, float beta) {
	__shared__ double sh[32];
	int r = blockIdx.x;
	const float *xr = x + (long long)r * cols, *gr = dy + (long long)r * cols;
	float mu = mean[r], rs = rstd[r];
	double a = 0, b = 0;
	for (int j = threadIdx.x; j < cols; j += blockDim.x) {
		float yh = (xr[j] - mu) * rs;
		a += gr[j];
		b += (double)gr[j] * yh;
	}
	float mg = (float)(block_sum(a, sh) / cols);
	float mgy = (float)(block_sum(b, sh) / cols);
	float *out = dx + (long long)r * cols;
	for (int j = threadIdx.x; j < cols; j += blockDim.x) {
		float yh = (xr[j] - mu) * rs;
		float g = rs * (gr[j] - mg - yh * mgy);
		out[j] = beta == 0.0f ? g : beta * out[j] + g;
	}
}

// One block per row.
__global__ void softmax(float *y, const float *x, int rows, int cols) {
	__shared__ float shf[32];
	__shared__ double sh[32];
	int r = blockIdx.x;
	const float *xr = x + (long long)r * cols;
	float *yr = y + (long long)r * cols;
	float mx = -INFINITY;
	for (int j = threadIdx.x; j < cols; j += blockDim.x) mx = fmaxf(mx, xr[j]);
	mx = block_max(mx, shf);
	double s = 0;
	for (int j = threadIdx.x; j < cols; j += blockDim.x) s += expf(xr[j] - mx);
	float inv = (float)(1.0 / block_sum(s, sh));
	for (int j = threadIdx.x; j < cols; j += blockDim.x) yr[j] = expf(xr[j] - mx) * inv;
}

// One block per row.
__global__ void softmax_grad(float *dx, const float *dy, const float *y, int rows, int cols, float beta) {
	__shared__ double sh[32];
	int r = blockIdx.x;
	const float *gr = dy + (long long)r * cols, *yr = y + (long long)r * cols;
	float *out = dx + (long long)r * cols;
	double s = 0;
	for (int j = threadIdx.x; j < cols; j += blockDim.x) s += (double)gr[j] * yr[j];
	float dot = (float)block_sum(s, sh);
	for (int j = threadIdx.x; j < cols; j += blockDim.x) {
		float v = yr[j] * (gr[j] - dot);
		out[j] = beta == 0.0f ? v : beta * out[j] + v;
	}
}

// Register versions of the four row ops (the templates above): one warp per row for rows
// of at most 32*K columns, K in 4, 8, 12, 16, 24, 32 (NAME_wK; the launcher picks the
// smallest K that fits, so short rows keep few registers), one block of 256 threads per
// row for rows of at most 256*16 columns (NAME_b16); wider rows use the kernels above.
#define ROW_ENTRIES(S, ARGS_LN, ARGS_LNG, ARGS_SM, ARGS_SMG)                                                                               \
	__global__ void layer_norm_##S(float *y, float *mean, float *rstd, const float *x, int rows, int cols, float eps) { ARGS_LN; }                     \
	__global__ void layer_norm_grad_##S(float *dx, const float *dy, const float *x, const float *mean, const float *rstd, int rows, int cols, float beta) { ARGS_LNG; } \
	__global__ void softmax_##S(float *y, const float *x, int rows, int cols) { ARGS_SM; }                                                            \
	__global__ void softmax_grad_##S(float *dx, const float *dy, const float *y, int rows, int cols, float beta) { ARGS_SMG; }

#define WARP_ENTRIES(K) ROW_ENTRIES(w##K,                                              \
	(row_ln<K, 32>(WARP_R, threadIdx.x & 31, 32, y, mean, rstd, x, nullptr, nullptr, rows, 1, cols, 0, eps, nullptr)),         \
	(row_ln_grad<K, 32>(WARP_R, threadIdx.x & 31, 32, dx, nullptr, dy, x, mean, rstd, nullptr, rows, 1, cols, 0, beta, nullptr)), \
	(row_softmax<K, 32>(WARP_R, threadIdx.x & 31, 32, y, x, rows, cols, nullptr, nullptr)),             \
	(row_softmax_grad<K, 32>(WARP_R, threadIdx.x & 31, 32, dx, dy, y, rows, cols, beta, nullptr)))

// The fused adaLN ops (AdaLayerNorm, AdaLayerNormGrad): warp and block variants only
// (the launcher falls back to separate ops for rows wider than the block variant holds).
#define ADA_ENTRIES(S, ARGS_F, ARGS_G)                                                                                                         \
	__global__ void ada_ln_##S(float *y, float *mean, float *rstd, const float *x, const float *shift, const float *scale, int rows, int l,   \
	                           int cols, int ld, float eps) { ARGS_F; }                                                                       \
	__global__ void ada_ln_grad_##S(float *dx, float *dscale, const float *dy, const float *x, const float *mean, const float *rstd,           \
	                                const float *scale, int rows, int l, int cols, int ld) { ARGS_G; }
#define ADA_WARP_ENTRIES(K) ADA_ENTRIES(w##K,                                                                                     \
	(row_ln<K, 32>(WARP_R, threadIdx.x & 31, 32, y, mean, rstd, x, shift, scale, rows, l, cols, ld, eps, nullptr)),           \
	(row_ln_grad<K, 32>(WARP_R, threadIdx.x & 31, 32, dx, dscale, dy, x, mean, rstd, scale, rows, l, cols, ld, 0.0f, nullptr)))
// AdaLayerNorm into bf16 (ada_ln_h): the normalised rows stored only as the rounded
// operand of the product that consumes them.
#define ADA_H_WARP_ENTRY(K)                                                                                                       \
	__global__ void ada_ln_h_w##K(unsigned short *y, float *mean, float *rstd, const float *x, const float *shift, const float *scale, \
	                              int rows, int l, int cols, int ld, float eps) {                                                     \
		row_ln<K, 32>(WARP_R, threadIdx.x & 31, 32, y, mean, rstd, x, shift, scale, rows, l, cols, ld, eps, nullptr);           \
	}
ADA_WARP_ENTRIES(4)
ADA_WARP_ENTRIES(8)
ADA_WARP_ENTRIES(12)
ADA_WARP_ENTRIES(16)
ADA_WARP_ENTRIES(24)
ADA_WARP_ENTRIES(32)
ADA_H_WARP_ENTRY(4)
ADA_H_WARP_ENTRY(8)
ADA_H_WARP_ENTRY(12)
ADA_H_WARP_ENTRY(16)
ADA_H_WARP_ENTRY(24)
ADA_H_WARP_ENTRY(32)

__global__ void ada_ln_h_b16(unsigned short *y, float *mean, float *rstd, const float *x, const float *shift, const float *scale, int rows, int l, int cols, int ld, float eps) {
	__shared__ double sh[32];
	row_ln<16, 256>(blockIdx.x, threadIdx.x, 256, y, mean, rstd, x, shift, scale, rows, l, cols, ld, eps, sh);
}

__global__ void ada_ln_b16(float *y, float *mean, float *rstd, const float *x, const float *shift, const float *scale, int rows, int l, int cols, int ld, float eps) {
	__shared__ double sh[32];
	row_ln<16, 256>(blockIdx.x, threadIdx.x, 256, y, mean, rstd, x, shift, scale, rows, l, cols, ld, eps, sh);
}

__global__ void ada_ln_grad_b16(float *dx, float *dscale, const float *dy, const float *x, const float *mean, const float *rstd, const float *scale, int rows, int l, int cols, int ld) {
	__shared__ double sh[32];
	row_ln_grad<16, 256>(blockIdx.x, threadIdx.x, 256, dx, dscale, dy, x, mean, rstd, scale, rows, l, cols, ld, 0.0f, sh);
}

WARP_ENTRIES(4)
WARP_ENTRIES(8)
WARP_ENTRIES(12)
WARP_ENTRIES(16)
WARP_ENTRIES(24)
WARP_ENTRIES(32)

__global__ void layer_norm_b16(float *y, float *mean, float *rstd, const float *x, int rows, int cols, float eps) {
	__shared__ double sh[32];
	row_ln<16, 256>(blockIdx.x, threadIdx.x, 256, y, mean, rstd, x, nullptr, nullptr, rows, 1, cols, 0, eps, sh);
}

__global__ void layer_norm_grad_b16(float *dx, const float *dy, const float *x, const float *mean, const float *rstd, int rows, int cols, float beta) {
	__shared__ double sh[32];
	row_ln_grad<16, 256>(blockIdx.x, threadIdx.x, 256, dx, nullptr, dy, x, mean, rstd, nullptr, rows, 1, cols, 0, beta, sh);
}

__global__ void softmax_b16(float *y, const float *x, int rows, int cols) {
	__shared__ double sh[32];
	__shared__ float shf[32];
	row_softmax<16, 256>(blockIdx.x, threadIdx.x, 256, y, x, rows, cols, sh, shf);
}

__global__ void softmax_grad_b16(float *dx, const float *dy, const float *y, int rows, int cols, float beta) {
	__shared__ double sh[32];
	row_softmax_grad<16, 256>(blockIdx.x, threadIdx.x, 256, dx, dy, y, rows, cols, beta, sh);
}

// Softmax into bf16 (softmax_h) and SoftmaxGrad from a bf16 y into a bf16 dx
// (softmax_grad_h): the GEMM attention's P and dS, which only products (and dS's
// SoftmaxGrad) read. Register variants only.
#define SOFTMAX_H_WARP_ENTRIES(K)                                                                                                 \
	__global__ void softmax_h_w##K(unsigned short *y, const float *x, int rows, int cols) {                                        \
		row_softmax<K, 32>(WARP_R, threadIdx.x & 31, 32, y, x, rows, cols, nullptr, nullptr);                                     \
	}                                                                                                                             \
	__global__ void softmax_grad_h_w##K(unsigned short *dx, const float *dy, const unsigned short *y, int rows, int cols, float beta) { \
		row_softmax_grad<K, 32>(WARP_R, threadIdx.x & 31, 32, dx, dy, y, rows, cols, beta, nullptr);                              \
	}
SOFTMAX_H_WARP_ENTRIES(4)
SOFTMAX_H_WARP_ENTRIES(8)
SOFTMAX_H_WARP_ENTRIES(12)
SOFTMAX_H_WARP_ENTRIES(16)
SOFTMAX_H_WARP_ENTRIES(24)
SOFTMAX_H_WARP_ENTRIES(32)

__global__ void softmax_h_b16(unsigned short *y, const float *x, int rows, int cols) {
	__shared__ double sh[32];
	__shared__ float shf[32];
	row_softmax<16, 256>(blockIdx.x, threadIdx.x, 256, y, x, rows, cols, sh, shf);
}

__global__ void softmax_grad_h_b16(unsigned short *dx, const float *dy, const unsigned short *y, int rows, int cols, float beta) {
	__shared__ double sh[32];
	row_softmax_grad<16, 256>(blockIdx.x, threadIdx.x, 256, dx, dy, y, rows, cols, beta, sh);
}

// dst[i*dim+j] = table[ids[i]*dim+j]
__global__ void embed(float *dst, const float *table, const int *ids, int n, int dim) {
	GRID_STRIDE(i, (long long)n * dim) {
		long long r = i / dim;
		dst[i] = table[(long long)ids[r] * dim + i % dim];
	}
}

// dtable[ids[i]*dim+j] += dy[i*dim+j] in increasing i: one thread per column j, so the
// order of additions is the CPU's.
__global__ void embed_grad(float *dtable, const float *dy, const int *ids, int n, int dim) {
	GRID_STRIDE(j, (long long)dim) {
		for (int i = 0; i < n; i++) dtable[(long long)ids[i] * dim + j] += dy[(long long)i * dim + j];
	}
}

// dst[i*dim+k] = cos(t[i] f_k), dst[i*dim+half+k] = sin(t[i] f_k), f_k = exp(-ln(10000) k/half)
__global__ void time_embed(float *dst, const float *t, int rows, int dim) {
	int half = dim / 2;
	GRID_STRIDE(i, (long long)rows * half) {
		long long r = i / half;
		int k = i % half;
		double f = exp(-9.210340371976184 * k / half);
		double a = (double)t[r] * f;
		dst[r * dim + k] = (float)cos(a);
		dst[r * dim + half + k] = (float)sin(a);
	}
}

// part[blockIdx.x] = sum over this block's grid-stride elements of x (or x^2 if square).
__global__ void reduce_sum(double *part, const float *x, long long n, int square) {
	__shared__ double sh[32];
	double s = 0;
	GRID_STRIDE(i, n) {
		double v = x[i];
		s += square ? v * v : v;
	}
	s = block_sum(s, sh);
	if (threadIdx.x == 0) part[blockIdx.x] = s;
}

// One AdamW update of element i with bias corrections c1 = 1-b1^step, c2 = 1-b2^step;
// returns the new weight.
__device__ __forceinline__ float adamw_one(float *p, const float *g, float *m, float *v, float lr, float b1, float b2, float eps, float wd, float c1, float c2, float gscale, long long i) {
	float gi = g[i] * gscale;
	float mi = b1 * m[i] + (1.0f - b1) * gi;
	float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
	m[i] = mi;
	v[i] = vi;
	float pi = p[i];
	pi = pi - lr * (mi / c1 / (sqrtf(vi / c2) + eps) + wd * pi);
	p[i] = pi;
	return pi;
}

__global__ void adamw(float *p, const float *g, float *m, float *v, float lr, float b1, float b2, float eps, float wd, float c1, float c2, float gscale, long long n) {
	GRID_STRIDE(i, n) adamw_one(p, g, m, v, lr, b1, b2, eps, wd, c1, c2, gscale, i);
}

// adamw followed by ema(avg, p, decay) on the updated p.
__global__ void adamw_ema(float *p, const float *g, float *m, float *v, float *avg, float lr, float b1, float b2, float eps, float wd, float c1, float c2, float gscale, float decay, long long n) {
	GRID_STRIDE(i, n) {
		float pi = adamw_one(p, g, m, v, lr, b1, b2, eps, wd, c1, c2, gscale, i);
		avg[i] = decay * avg[i] + (1.0f - decay) * pi;
	}
}

// avg[i] = decay*avg[i] + (1-decay)*p[i]
__global__ void ema(float *avg, const float *p, float decay, long long n) {
	GRID_STRIDE(i, n) avg[i] = decay * avg[i] + (1.0f - decay) * p[i];
}

// laplace_mmd_rows: one block per particle (g, j). Writes the three kernel sums of row j
// to part[(g*m+j)*3 + {0: tt, 1: rr, 2: tr}] and, when grad is not null, the gradient row.
// The particle is split into nseg segments [segs[q], segs[q+1]) and the distance is the
// sum of their norms (one segment [0, d): the Euclidean norm). Dynamic shared memory:
// 2*nseg*m floats (the per-pair, per-segment coefficients).
__global__ void laplace_mmd_rows(double *part, float *grad, const float *yt, const float *yr, const float *kw, const float *gw, int groups, int m, int d, const int *segs, int nseg) {
	extern __shared__ float coef[];
	__shared__ double sh[32];
	int g = blockIdx.x / m, j = blockIdx.x % m;
	double w = (double)kw[g] / d;
	const float *tj = yt + ((long long)g * m + j) * d;
	const float *rj = yr + ((long long)g * m + j) * d;
	const float *tg = yt + (long long)g * m * d, *rg = yr + (long long)g * m * d;
	double stt = 0, srr = 0, str = 0;
	for (int l = threadIdx.x; l < m; l += blockDim.x) {
		double ntt = 0, ntr = 0, nrr = 0;
		for (int q = 0; q < nseg; q++) {
			double qtt = 0, qtr = 0, qrr = 0;
			for (int i = segs[q]; i < segs[q + 1]; i++) {
				double a = (double)tj[i] - tg[l * d + i];
				double b = (double)tj[i] - rg[l * d + i];
				double c = (double)rj[i] - rg[l * d + i];
				qtt += a * a;
				qtr += b * b;
				qrr += c * c;
			}
			qtt = sqrt(qtt);
			qtr = sqrt(qtr);
			qrr = sqrt(qrr);
			// 1/norm of the segment for now, 0 when the segment is clamped
			coef[q * m + l] = qtt <= 1e-8 ? 0.0f : (float)(1.0 / qtt);
			coef[(nseg + q) * m + l] = qtr <= 1e-8 ? 0.0f : (float)(1.0 / qtr);
			ntt += qtt <= 1e-8 ? 0.0 : qtt;
			ntr += qtr <= 1e-8 ? 0.0 : qtr;
			nrr += qrr <= 1e-8 ? 0.0 : qrr;
		}
		double ktt = exp(-w * fmax(ntt, 1e-8)), ktr = exp(-w * fmax(ntr, 1e-8)), krr = exp(-w * fmax(nrr, 1e-8));
		stt += ktt;
		str += ktr;
		srr += krr;
		// d/dtj of k = -w k sum_q (tj - x)_q/||(tj - x)_q|| (0 when clamped)
		double ctt = ntt <= 1e-8 ? 0.0 : 2.0 * ktt * -w, ctr = ntr <= 1e-8 ? 0.0 : -2.0 * ktr * -w;
		for (int q = 0; q < nseg; q++) {
			coef[q * m + l] = (float)(ctt * coef[q * m + l]);
			coef[(nseg + q) * m + l] = (float)(ctr * coef[(nseg + q) * m + l]);
		}
	}
	stt = block_sum(stt, sh);
	srr = block_sum(srr, sh);
	str = block_sum(str, sh);
	if (threadIdx.x == 0) {
		long long o = ((long long)g * m + j) * 3;
		part[o] = stt;
		part[o + 1] = srr;
		part[o + 2] = str;
	}
	if (!grad) return;
	__syncthreads();
	double s = (double)gw[g] / ((double)m * m);
	for (int q = 0; q < nseg; q++) {
		const float *ct = coef + q * m, *cr = coef + (nseg + q) * m;
		for (int i = segs[q] + threadIdx.x; i < segs[q + 1]; i += blockDim.x) {
			double acc = 0;
			for (int l = 0; l < m; l++) {
				acc += (double)ct[l] * ((double)tj[i] - tg[l * d + i]);
				acc += (double)cr[l] * ((double)tj[i] - rg[l * d + i]);
			}
			grad[((long long)g * m + j) * d + i] = (float)(s * acc);
		}
	}
}

// mmd[g] = (sum_j tt + rr - 2 tr) / m^2, summed in j order.
__global__ void laplace_mmd_finish(float *mmd, const double *part, int groups, int m) {
	GRID_STRIDE(g, (long long)groups) {
		double tt = 0, rr = 0, tr = 0;
		for (int j = 0; j < m; j++) {
			const double *p = part + ((long long)g * m + j) * 3;
			tt += p[0];
			rr += p[1];
			tr += p[2];
		}
		mmd[g] = (float)((tt + rr - 2 * tr) / ((double)m * m));
	}
}

__device__ uint4 philox(unsigned long long key, unsigned long long block) {
	unsigned c0 = (unsigned)block, c1 = (unsigned)(block >> 32), c2 = 0, c3 = 0;
	unsigned k0 = (unsigned)key, k1 = (unsigned)(key >> 32);
	for (int r = 0; r < 10; r++) {
		unsigned long long p0 = (unsigned long long)0xD2511F53u * c0;
		unsigned long long p1 = (unsigned long long)0xCD9E8D57u * c2;
		unsigned n0 = (unsigned)(p1 >> 32) ^ c1 ^ k0, n1 = (unsigned)p1;
		unsigned n2 = (unsigned)(p0 >> 32) ^ c3 ^ k1, n3 = (unsigned)p0;
		c0 = n0; c1 = n1; c2 = n2; c3 = n3;
		k0 += 0x9E3779B9u;
		k1 += 0xBB67AE85u;
	}
	return make_uint4(c0, c1, c2, c3);
}

// dst[i] = word i%4 of Philox block counter+i/4, times 2^-32.
__global__ void rand_uniform(float *dst, long long n, unsigned long long key, unsigned long long counter) {
	GRID_STRIDE(b, (n + 3) / 4) {
		uint4 w = philox(key, counter + b);
		unsigned ws[4] = {w.x, w.y, w.z, w.w};
		for (int q = 0; q < 4 && 4 * b + q < n; q++) dst[4 * b + q] = (float)((double)ws[q] * (1.0 / 4294967296.0));
	}
}

// Box-Muller on words (0,1) and (2,3) of each block; see kernels/cpu RandNormal.
__global__ void rand_normal(float *dst, long long n, unsigned long long key, unsigned long long counter, float std) {
	GRID_STRIDE(b, (n + 3) / 4) {
		uint4 w = philox(key, counter + b);
		unsigned ws[4] = {w.x, w.y, w.z, w.w};
		double z[4];
		for (int p = 0; p < 2; p++) {
			double u = ((double)ws[2 * p] + 1.0) / 4294967296.0;
			double v = (double)ws[2 * p + 1] / 4294967296.0;
			double r = sqrt(-2.0 * log(u));
			z[2 * p] = r * cos(6.283185307179586 * v);
			z[2 * p + 1] = r * sin(6.283185307179586 * v);
		}
		for (int q = 0; q < 4 && 4 * b + q < n; q++) dst[4 * b + q] = (float)(z[q] * (double)std);
	}
}

// dvec[(b*H+h)*L+l] = sum_d dout[r, h*HD+d] * o[r, h*HD+d] for row r = b*L+l: the row
// terms of the softmax gradient of the fused attention (sum_j P dP = dO . O); dout and o
// fp32, or bf16 (attn_bwd_dot_h).
__global__ void attn_bwd_dot(float *dvec, const float *dout, const float *o, int B, int L, int H, int HD) { attn_dot(dvec, dout, o, B, L, H, HD); }
__global__ void attn_bwd_dot_h(float *dvec, const unsigned short *dout, const unsigned short *o, int B, int L, int H, int HD) {
	attn_dot(dvec, dout, o, B, L, H, HD);
}

// The fused attention for head widths 16, 32 and 64: blocks of 128 threads (4 warps).
// The _h entries take qkv, o and dout in bf16 (rounded storage).
#define ATTN_ENTRIES(HD)                                                                                                            \
	__global__ void __launch_bounds__(128) attn_fwd_##HD(float *o, float *lse, const float *qkv, int L, int H, float scale) {       \
		attn_fwd<HD>(o, lse, qkv, L, H, scale);                                                                                      \
	}                                                                                                                                 \
	__global__ void __launch_bounds__(128)                                                                                            \
	    attn_fwd_##HD##_h(unsigned short *o, float *lse, const unsigned short *qkv, int L, int H, float scale) {                      \
		attn_fwd<HD>(o, lse, qkv, L, H, scale);                                                                                      \
	}                                                                                                                                 \
	__global__ void __launch_bounds__(128)                                                                                            \
	    attn_bwd_##HD(float *dqkv, const float *qkv, const float *dout, const float *lse, const float *dvec, int L, int H, float scale) { \
		attn_bwd<HD>(dqkv, qkv, dout, lse, dvec, L, H, scale);                                                                     \
	}                                                                                                                                 \
	__global__ void __launch_bounds__(128) attn_bwd_##HD##_h(float *dqkv, const unsigned short *qkv, const unsigned short *dout, const float *lse, \
	                                                         const float *dvec, int L, int H, float scale) {                          \
		attn_bwd<HD>(dqkv, qkv, dout, lse, dvec, L, H, scale);                                                                     \
	}
ATTN_ENTRIES(16)
ATTN_ENTRIES(32)
ATTN_ENTRIES(64)

} // extern "C"
