// immkit's CUDA emulator: a shared library with the driver API and cuBLAS entry points
// that internal/cudadrv calls, running kernels.cu compiled as C++ on the CPU. Built by
// build.sh as libcuda.so.1 and libcublas.so.13 in one directory; IMMKIT_CUDA_LIB_DIR
// pointed there makes `--device cuda` and the GPU tests of kernels/cuda run the real
// kernel source (and the real Go launch path) on a machine without a GPU.
//
// What it checks that the CPU stand-in cannot: the kernels' indexing, launch geometry
// and reductions, the argument order of every launch, barrier and shuffle discipline
// (see cuda_emu.h), and reads or writes past the end of an allocation (each buffer ends
// at a guard page). What it cannot: timing, the PTX compiler, and races between blocks
// (blocks run on several CPU threads, but nothing looks for such races).
//
// Environment: IMMKIT_CUDA_EMU_ORDER=reverse runs the threads of a block in reverse
// order between barriers, which exposes a missing barrier the forward order hides;
// IMMKIT_CUDA_EMU_LT_NOALGO=1 makes cuBLASLt's heuristic find no algorithm.
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cuda_bf16.h"
#include "cuda_emu.h"

typedef int CUresult;
typedef uint64_t CUdeviceptr;

enum {
	CUDA_SUCCESS = 0,
	CUDA_ERROR_INVALID_VALUE = 1,
	CUDA_ERROR_OUT_OF_MEMORY = 2,
	CUDA_ERROR_INVALID_IMAGE = 200,
	CUDA_ERROR_NOT_FOUND = 500,
	CUDA_ERROR_LAUNCH_FAILED = 719,
};

thread_local emu_dim3 emu_tid, emu_bid, emu_bdim, emu_gdim;

namespace {

std::mutex mu;         // memory map and error text
std::string last_fail; // why the last launch failed

// ---- memory: every allocation ends at a PROT_NONE page ----

struct Mapping {
	void *base;
	size_t len;
};
std::map<uint64_t, Mapping> allocs;
const size_t page = (size_t)sysconf(_SC_PAGESIZE);

std::multimap<size_t, Mapping> spare; // freed mappings by length, reused (no new page faults)

// A buffer ends at most 15 bytes before its guard page: it starts 16-byte aligned (the
// driver aligns to 256; no kernel of ours needs more than 16), so that reading or
// writing one float past the end of a buffer whose size is a multiple of 16 bytes
// faults instead of passing unseen.
CUresult mem_alloc(CUdeviceptr *p, size_t bytes) {
	size_t n = (bytes + 15) / 16 * 16;
	if (n == 0) n = 16;
	size_t data = (n + page - 1) / page * page;
	size_t len = data + page;
	std::lock_guard<std::mutex> g(mu);
	Mapping m{nullptr, len};
	auto it = spare.find(len);
	if (it != spare.end()) {
		m = it->second;
		spare.erase(it);
	} else {
		m.base = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m.base == MAP_FAILED) return CUDA_ERROR_OUT_OF_MEMORY;
		if (mprotect((char *)m.base + data, page, PROT_NONE) != 0) {
			munmap(m.base, len);
			return CUDA_ERROR_OUT_OF_MEMORY;
		}
	}
	uint64_t ptr = (uint64_t)m.base + data - n;
	allocs[ptr] = m;
	*p = ptr;
	return CUDA_SUCCESS;
}

CUresult mem_free(CUdeviceptr p) {
	std::lock_guard<std::mutex> g(mu);
	auto it = allocs.find(p);
	if (it == allocs.end()) return CUDA_ERROR_INVALID_VALUE;
	if (spare.size() < 4096)
		spare.emplace(it->second.len, it->second);
	else
		munmap(it->second.base, it->second.len);
	allocs.erase(it);
	return CUDA_SUCCESS;
}

// ---- blocks of fibers ----

// emu_switch saves the callee-saved registers and stack pointer of the running context
// in *save and resumes the one whose stack pointer is to (no signal mask syscall, unlike
// swapcontext). A new fiber's stack holds six zero registers and fiber_start's address.
#if !defined(__x86_64__)
#error "the emulator's fiber switch is written for x86-64"
#endif
extern "C" void emu_switch(void **save, void *to);
asm(R"(
	.text
	.p2align 4
	.hidden emu_switch
	.type emu_switch, @function
emu_switch:
	pushq %rbp
	pushq %rbx
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, (%rdi)
	movq %rsi, %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
	ret
	.size emu_switch, .-emu_switch
)");

enum State { RUN, AT_BLOCK, AT_WARP, DONE };

struct Thread {
	void *sp; // saved stack pointer while parked
	emu_dim3 tid;
	State state;
	int lane, warp;
	long long synced;  // __syncthreads passed
	long long crossed; // warp barriers passed (two per shuffle)
	uint64_t slot, got; // shuffle exchange
	uint64_t all[32];   // emu_warp_gather
};

struct Block {
	void *sched; // the scheduler's saved stack pointer
	std::vector<Thread> th;
	std::vector<char *> stacks;
	std::vector<char> dyn;
	void (*invoke)(void **);
	void **params;
	Thread *cur;
	std::string fail;
};

thread_local Block *blk;
const size_t stack_bytes = 128 << 10;

// park stops the running fiber in state s and returns to the scheduler. Barriers are
// matched by count (the n-th __syncthreads of every thread), not by call site: the
// compiler may duplicate a call.
void park(State s) {
	Thread *t = blk->cur;
	t->state = s;
	emu_switch(&t->sp, blk->sched);
}

// failf records why the launch fails and parks the fiber for good.
void failf(const char *site, const char *fmt, long long a, long long b) {
	char buf[256];
	snprintf(buf, sizeof buf, fmt, a, b);
	blk->fail = std::string(site) + ": " + buf;
	park(DONE);
	abort(); // never resumed
}

void fiber_start() {
	blk->invoke(blk->params);
	park(DONE);
	abort(); // a finished fiber is never resumed
}

std::string where(const emu_dim3 &b) {
	char buf[96];
	snprintf(buf, sizeof buf, "block (%u,%u,%u)", b.x, b.y, b.z);
	return buf;
}

// run_block runs every thread of the current block to completion; false with blk->fail
// set when the kernel broke a rule.
bool run_block(bool reverse) {
	Block &b = *blk;
	int n = (int)b.th.size();
	for (int i = 0; i < n; i++) {
		Thread &t = b.th[i];
		t.state = RUN;
		t.synced = 0;
		t.crossed = 0;
		void **top = (void **)(b.stacks[i] + stack_bytes); // 16-byte aligned
		top[-1] = nullptr;                                 // fiber_start's return address
		top[-2] = (void *)fiber_start;
		for (int r = 3; r <= 8; r++) top[-r] = nullptr;
		t.sp = &top[-8];
	}
	int warps = (n + 31) / 32;
	for (;;) {
		for (int k = 0; k < n; k++) {
			Thread &t = b.th[reverse ? n - 1 - k : k];
			if (t.state != RUN) continue;
			b.cur = &t;
			emu_tid = t.tid;
			emu_switch(&b.sched, t.sp);
			if (!b.fail.empty()) return false;
		}
		bool released = false;
		int alive = 0, atblock = 0;
		for (int w = 0; w < warps; w++) {
			int lo = w * 32, hi = lo + 32 < n ? lo + 32 : n;
			int live = 0, atwarp = 0;
			for (int i = lo; i < hi; i++) {
				live += b.th[i].state != DONE;
				atwarp += b.th[i].state == AT_WARP;
				atblock += b.th[i].state == AT_BLOCK;
			}
			alive += live;
			if (atwarp == 0 || atwarp != live) continue;
			for (int i = lo; i < hi; i++) {
				Thread &t = b.th[i];
				if (t.state == DONE) {
					b.fail = "warp shuffle while lane " + std::to_string(i - lo) + " of warp " + std::to_string(w) + " has returned (undefined with a full mask)";
					return false;
				}
				if (t.crossed != b.th[lo].crossed) {
					b.fail = "lanes of warp " + std::to_string(w) + " at different shuffles";
					return false;
				}
			}
			for (int i = lo; i < hi; i++) b.th[i].state = RUN;
			released = true;
		}
		if (released) continue;
		if (alive == 0) return true;
		if (atblock != alive) {
			b.fail = "deadlock: some threads wait in a warp shuffle, others at __syncthreads";
			return false;
		}
		if (alive != n) {
			b.fail = "__syncthreads reached by " + std::to_string(alive) + " of " + std::to_string(n) + " threads (the others returned)";
			return false;
		}
		for (Thread &t : b.th) {
			if (t.synced != b.th[0].synced) {
				b.fail = "threads of the block at different __syncthreads (thread " + std::to_string(&t - &b.th[0]) + " has passed " +
				         std::to_string(t.synced) + ", thread 0 " + std::to_string(b.th[0].synced) + ")";
				return false;
			}
		}
		for (Thread &t : b.th) {
			t.state = RUN;
			t.synced++;
		}
	}
}

// ---- kernels ----

template <class... A, size_t... I>
void call_impl(void (*f)(A...), void **p, std::index_sequence<I...>) {
	f(*static_cast<typename std::remove_reference<A>::type *>(p[I])...);
}

template <class... A>
void call(void (*f)(A...), void **p) {
	call_impl(f, p, std::index_sequence_for<A...>{});
}

struct Entry {
	const char *name;
	void (*invoke)(void **);
};

} // namespace

void emu_syncthreads() { park(AT_BLOCK); }

uint64_t *emu_shfl_exchange(uint64_t v, int lane_mask, unsigned mask, int width) {
	Thread *t = blk->cur;
	if (mask != 0xffffffffu) failf("__shfl_xor_sync", "mask %llx is not emulated (full mask only)", mask, 0);
	if (width <= 0 || width > 32 || (width & (width - 1))) failf("__shfl_xor_sync", "width %lld", width, 0);
	t->slot = v;
	park(AT_WARP);
	t->crossed++;
	int src = t->lane ^ lane_mask;
	if (src / width != t->lane / width) src = t->lane;
	size_t i = (size_t)t->warp * 32 + src;
	if (src < 0 || src > 31 || i >= blk->th.size()) failf("__shfl_xor_sync", "lane %lld reads lane %lld, which does not exist", t->lane, src);
	t->got = blk->th[i].slot;
	park(AT_WARP);
	t->crossed++;
	return &t->got;
}

// emu_warp_gather is a warp barrier at which every lane contributes v and gets all 32
// lanes' values (the fragments of a warp-collective mma).
uint64_t *emu_warp_gather(uint64_t v) {
	Thread *t = blk->cur;
	t->slot = v;
	park(AT_WARP);
	t->crossed++;
	size_t w0 = (size_t)t->warp * 32;
	if (w0 + 32 > blk->th.size()) failf("mma", "warp %lld has %lld lanes, not 32", t->warp, (long long)(blk->th.size() - w0));
	for (int i = 0; i < 32; i++) t->all[i] = blk->th[w0 + i].slot;
	park(AT_WARP);
	t->crossed++;
	return t->all;
}

void *emu_dyn_shared() { return blk->dyn.data(); }

// The kernels, as C++: build.sh writes kernels_emu.inc (kernels.cu with its extern
// __shared__ declarations turned into emu_dyn_shared() pointers) and entries.inc (K(name)
// for every .entry of kernels.ptx).
#include "kernels_emu.inc"

namespace {

#define K(name) {#name, [](void **p) { call(name, p); }},
const Entry entries[] = {
#include "entries.inc"
};
#undef K

const Entry *find(const char *name) {
	for (const Entry &e : entries)
		if (strcmp(e.name, name) == 0) return &e;
	return nullptr;
}

bool reverse_order() {
	const char *s = getenv("IMMKIT_CUDA_EMU_ORDER");
	return s != nullptr && strcmp(s, "reverse") == 0;
}

// ---- blocks on several CPU threads ----

// Pool runs a job on every worker and on the caller, and returns when all are done: the
// blocks of a launch and the columns of a GEMM. Blocks communicate only through
// atomicAdd (the fused attention's dQ, a compare-and-swap loop here), so results depend
// on which thread ran which block only in the order of those float additions, as on a
// GPU.
struct Pool {
	std::mutex m;
	std::condition_variable start, done;
	std::function<void()> job;
	long long gen = 0;
	int running = 0, n = 0;

	explicit Pool(int workers) : n(workers) {
		for (int i = 0; i < n; i++)
			std::thread([this] {
				long long seen = 0;
				for (;;) {
					std::function<void()> j;
					{
						std::unique_lock<std::mutex> l(m);
						start.wait(l, [&] { return gen != seen; });
						seen = gen;
						j = job;
					}
					j();
					std::lock_guard<std::mutex> l(m);
					if (--running == 0) done.notify_all();
				}
			}).detach();
	}

	void run(const std::function<void()> &f) {
		{
			std::lock_guard<std::mutex> l(m);
			job = f;
			running = n;
			gen++;
		}
		start.notify_all();
		f();
		std::unique_lock<std::mutex> l(m);
		done.wait(l, [&] { return running == 0; });
	}
};

// pool has IMMKIT_CUDA_EMU_THREADS threads in all (default: the CPUs), the caller included.
Pool &pool() {
	static Pool *p = [] {
		int n = (int)std::thread::hardware_concurrency();
		if (const char *s = getenv("IMMKIT_CUDA_EMU_THREADS")) n = atoi(s);
		return new Pool(n > 1 ? n - 1 : 0);
	}();
	return *p;
}

// ---- asynchronous copies: cuMemcpyHtoDAsync queues the copy, and the next operation on
// the stream (a launch, a GEMM, a copy, a memset, a sync, a free) performs it first. The
// host buffer is read then, not at the call, as on a GPU where the DMA runs later: a
// caller that reuses its staging memory too early uploads the wrong data. ----

struct Pending {
	CUdeviceptr dst;
	const void *src;
	size_t n;
};
std::mutex qmu;
std::vector<Pending> pending;

void flush() {
	std::lock_guard<std::mutex> g(qmu);
	for (const Pending &p : pending) memcpy((void *)p.dst, p.src, p.n);
	pending.clear();
}

// ---- cuBLAS ----

int math_mode;

float tf32(float x) {
	uint32_t u;
	memcpy(&u, &x, 4);
	if ((u & 0x7f800000u) == 0x7f800000u) return x;
	u = (u + 0x1000u) & 0xffffe000u; // to nearest, ties away (cvt.rna.tf32.f32)
	memcpy(&x, &u, 4);
	return x;
}

float load(const void *p, int type, long long i) {
	if (type == 14) return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
	return ((const float *)p)[i];
}

// gemm is column-major C = alpha op(A) op(B) + beta C for one matrix of a batch. The
// operands are packed (op(A) column-major, op(B) column j contiguous) and rounded to TF32
// when the math mode or compute type says so; each element is summed in float over l in
// order. Columns of C are shared out among the pool's threads.
int gemm(int ta, int tb, int m, int n, int k, float alpha, const void *a, int atype, int lda, const void *b, int btype, int ldb,
         float beta, void *c, int ctype, int ldc, bool round) {
	if (m < 0 || n < 0 || k < 0 || (atype != 0 && atype != 14) || (btype != 0 && btype != 14) || (ctype != 0 && ctype != 14)) return 7;
	if (lda < (ta ? k : m) || ldb < (tb ? n : k) || ldc < m || lda < 1 || ldb < 1 || ldc < 1) return 7;
	std::vector<float> ap((size_t)m * k), bp((size_t)n * k);
	// pack(dst, src, type, ld, rows, cols, t): dst[c*rows + r] = X[r, c] of X = op(src)
	auto pack = [round](float *dst, const void *src, int type, int ld, int rows, int cols, bool t) {
		for (int c = 0; c < cols; c++)
			for (int r = 0; r < rows; r++) {
				float v = load(src, type, t ? c + (long long)r * ld : r + (long long)c * ld);
				dst[(size_t)c * rows + r] = round ? tf32(v) : v;
			}
	};
	pack(ap.data(), a, atype, lda, m, k, ta);
	// op(B) is k x n; packed with column j contiguous: pack op(B)^T's columns
	pack(bp.data(), b, btype, ldb, k, n, tb);
	auto cols = [&](int j0, int j1) {
		const int panel = 256;
		float acc[panel];
		for (int i0 = 0; i0 < m; i0 += panel) {
			int ib = m - i0 < panel ? m - i0 : panel;
			for (int j = j0; j < j1; j++) {
				for (int i = 0; i < ib; i++) acc[i] = 0.0f;
				const float *bj = &bp[(size_t)j * k];
				for (int l = 0; l < k; l++) {
					const float *col = &ap[(size_t)l * m + i0];
					float bv = bj[l];
					for (int i = 0; i < ib; i++) acc[i] += col[i] * bv;
				}
				for (int i = 0; i < ib; i++) {
					long long o = i0 + i + (long long)j * ldc;
					float v = alpha * acc[i];
					if (beta != 0.0f) v += beta * load(c, ctype, o);
					if (ctype == 14)
						((__nv_bfloat16 *)c)[o] = __float2bfloat16_rn(v);
					else
						((float *)c)[o] = v;
				}
			}
		}
	};
	if ((double)m * n * k < 4e6) {
		cols(0, n);
		return 0;
	}
	const int chunk = 16; // columns per piece of work taken by a pool thread
	std::atomic<int> next{0};
	pool().run([&] {
		for (int j0; (j0 = next.fetch_add(chunk)) < n;) cols(j0, j0 + chunk < n ? j0 + chunk : n);
	});
	return 0;
}

int gemm_batched(int ta, int tb, int m, int n, int k, const float *alpha, const void *a, int atype, int lda, long long sa, const void *b,
                 int btype, int ldb, long long sb, const float *beta, void *c, int ctype, int ldc, long long sc, int batch, int compute) {
	// CUBLAS_COMPUTE_32F (68) and _32F_FAST_TF32 (77); the others are not emulated
	// (CUBLAS_STATUS_NOT_SUPPORTED).
	if (compute != 68 && compute != 77) return 15;
	flush();
	bool round = compute == 77 || (math_mode == 3 && atype == 0 && btype == 0);
	size_t ea = atype == 14 ? 2 : 4, eb = btype == 14 ? 2 : 4, ec = ctype == 14 ? 2 : 4;
	for (int i = 0; i < batch; i++) {
		int s = gemm(ta, tb, m, n, k, *alpha, (const char *)a + i * sa * ea, atype, lda, (const char *)b + i * sb * eb, btype, ldb, *beta,
		             (char *)c + i * sc * ec, ctype, ldc, round);
		if (s) return s;
	}
	return 0;
}

// ---- cuBLASLt: descriptors hold what cublasLtMatmul needs; the attributes immkit does
// not set are refused (CUBLAS_STATUS_INVALID_VALUE), so a wrong attribute number or size
// fails here as it might not on a GPU ----

struct LtDesc {
	int compute;
	int32_t ta = 0, tb = 0;
	uint32_t epi = 1; // CUBLASLT_EPILOGUE_DEFAULT
	const void *bias = nullptr; // of D's type, as the aux matrix (cuBLASLt's defaults)
	void *aux = nullptr;
	int64_t auxld = 0;
};
struct LtLayout {
	int type;
	uint64_t rows, cols;
	int64_t ld;
};
struct LtPref {
	uint64_t ws = 0;
	uint32_t align[4] = {256, 256, 256, 256}; // the documented default: 256 bytes
};
const uint64_t lt_magic = 0x696d6d6b69744c74ull;

bool lt_epilogue_known(uint32_t e) { return e == 1 || e == 4 || e == 32 || e == 36 || e == 160 || e == 164 || e == 192; }
bool lt_has_aux(uint32_t e) { return e == 160 || e == 164 || e == 192; }

// lt_gelu and lt_dgelu are the tanh form cuBLASLt documents for its GELU epilogues.
float lt_gelu(float x) { return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x))); }
float lt_dgelu(float x) {
	float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
	float t = tanhf(u);
	return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * 0.7978845608028654f * (1.0f + 3.0f * 0.044715f * x * x);
}

int lt_fail(const char *what, unsigned long long a, unsigned long long b) {
	fprintf(stderr, "emulator: cuBLASLt: ");
	fprintf(stderr, what, a, b);
	fprintf(stderr, "\n");
	return 7; // CUBLAS_STATUS_INVALID_VALUE
}

// lt_check validates one matmul: dimensions consistent between the transposes and the
// layouts, C the same as D, types, the epilogue's auxiliary leading dimension.
int lt_check(const LtDesc *d, const LtLayout *a, const LtLayout *b, const LtLayout *c, const LtLayout *dd) {
	uint64_t m = dd->rows, n = dd->cols;
	uint64_t am = d->ta ? a->cols : a->rows, ak = d->ta ? a->rows : a->cols;
	uint64_t bk = d->tb ? b->cols : b->rows, bn = d->tb ? b->rows : b->cols;
	if (am != m || bn != n || ak != bk) return lt_fail("op(A) is %llu rows, op(B) %llu columns: they do not match D or each other", am, bn);
	if (c->rows != dd->rows || c->cols != dd->cols || c->ld != dd->ld || c->type != dd->type) return lt_fail("C layout differs from D (%llu, %llu)", c->rows, dd->rows);
	// D (and C) in FP32, or in bf16 with bf16 A and B and FP32 compute
	if (a->type != b->type || (dd->type != 0 && !(dd->type == 14 && a->type == 14 && d->compute == 68)))
		return lt_fail("types: D %llu, A/B %llu", dd->type, a->type);
	if (d->compute == 77 && a->type != 0) return lt_fail("TF32 compute with operand type %llu", a->type, 0);
	if (lt_has_aux(d->epi) && (d->auxld < (int64_t)m || d->auxld % 8 != 0))
		return lt_fail("epilogue aux leading dimension %llu for %llu rows (must be a multiple of 8, at least the rows)", d->auxld, m);
	return 0;
}

} // namespace


// ---- the exported driver API ----

extern "C" {

CUresult cuInit(unsigned) { return CUDA_SUCCESS; }
CUresult cuDriverGetVersion(int *v) {
	*v = 13000;
	return CUDA_SUCCESS;
}
CUresult cuDeviceGet(int *d, int ordinal) {
	if (ordinal != 0) return CUDA_ERROR_INVALID_VALUE;
	*d = 0;
	return CUDA_SUCCESS;
}
CUresult cuDeviceGetName(char *name, int len, int) {
	snprintf(name, len, "immkit CUDA emulator (CPU)");
	return CUDA_SUCCESS;
}
CUresult cuDeviceTotalMem_v2(size_t *mem, int) {
	*mem = (size_t)sysconf(_SC_PHYS_PAGES) * page;
	return CUDA_SUCCESS;
}
CUresult cuDeviceGetAttribute(int *v, int attr, int) {
	*v = attr == 75 ? 8 : 0; // compute capability 8.0, the PTX target
	return CUDA_SUCCESS;
}
static int the_ctx;
CUresult cuDevicePrimaryCtxRetain(void **ctx, int) {
	*ctx = &the_ctx;
	return CUDA_SUCCESS;
}
CUresult cuCtxSetCurrent(void *) { return CUDA_SUCCESS; }
CUresult cuCtxSynchronize() {
	flush();
	return CUDA_SUCCESS;
}

// cuModuleLoadData checks that every .entry of the PTX has an emulated kernel, so the
// library and the embedded PTX come from the same kernels.cu.
CUresult cuModuleLoadData(void **mod, const void *image) {
	const char *s = (const char *)image;
	for (const char *p = strstr(s, ".entry "); p != nullptr; p = strstr(p + 1, ".entry ")) {
		const char *q = p + 7;
		size_t n = strcspn(q, "( \n");
		std::string name(q, n);
		if (find(name.c_str()) == nullptr) {
			std::lock_guard<std::mutex> g(mu);
			last_fail = "PTX entry " + name + " has no emulated kernel (rebuild the emulator)";
			return CUDA_ERROR_INVALID_IMAGE;
		}
	}
	*mod = (void *)entries;
	return CUDA_SUCCESS;
}

CUresult cuModuleGetFunction(void **fn, void *, const char *name) {
	const Entry *e = find(name);
	if (e == nullptr) return CUDA_ERROR_NOT_FOUND;
	*fn = (void *)e;
	return CUDA_SUCCESS;
}

CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t bytes) { return mem_alloc(p, bytes); }
CUresult cuMemFree_v2(CUdeviceptr p) {
	flush();
	return mem_free(p);
}
CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t n) {
	flush();
	memcpy((void *)dst, src, n);
	return CUDA_SUCCESS;
}
CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n) {
	flush();
	memcpy(dst, (const void *)src, n);
	return CUDA_SUCCESS;
}
CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t n) {
	flush();
	memmove((void *)dst, (const void *)src, n);
	return CUDA_SUCCESS;
}
CUresult cuMemsetD32_v2(CUdeviceptr dst, unsigned v, size_t n) {
	flush();
	uint32_t *p = (uint32_t *)dst;
	for (size_t i = 0; i < n; i++) p[i] = v;
	return CUDA_SUCCESS;
}
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t n, void *stream) {
	if (stream) return CUDA_ERROR_INVALID_VALUE; // only the null stream is emulated
	std::lock_guard<std::mutex> g(qmu);
	pending.push_back(Pending{dst, src, n});
	return CUDA_SUCCESS;
}
CUresult cuMemAllocHost_v2(void **p, size_t n) {
	*p = malloc(n ? n : 1);
	return *p ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}
CUresult cuMemFreeHost(void *p) {
	flush();
	free(p);
	return CUDA_SUCCESS;
}

CUresult cuLaunchKernel(void *fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned shmem, void *,
                        void **params, void **) {
	flush();
	const Entry *e = (const Entry *)fn;
	unsigned long long nt = (unsigned long long)bx * by * bz;
	if (nt == 0 || nt > 1024 || bz > 64 || gx == 0 || gy == 0 || gz == 0 || gy > 65535 || gz > 65535 || shmem > 48 * 1024) {
		std::lock_guard<std::mutex> g(mu);
		last_fail = std::string(e->name) + ": invalid launch geometry";
		return CUDA_ERROR_INVALID_VALUE;
	}
	long long total = (long long)gx * gy * gz;
	std::atomic<long long> next{0};
	std::atomic<bool> failed{false};
	std::string why;
	bool rev = reverse_order();
	// work runs blocks taken from next on the calling thread (its own Block, stacks and
	// static __shared__ variables) until none is left or one has failed.
	auto work = [&]() {
		thread_local Block b;
		b.th.resize(nt);
		while (b.stacks.size() < nt) b.stacks.push_back((char *)aligned_alloc(64, stack_bytes));
		b.dyn.assign(shmem, 0);
		b.invoke = e->invoke;
		b.params = params;
		b.fail.clear();
		for (unsigned z = 0, i = 0; z < bz; z++)
			for (unsigned y = 0; y < by; y++)
				for (unsigned x = 0; x < bx; x++, i++) {
					b.th[i].tid = emu_dim3{x, y, z};
					b.th[i].lane = i % 32;
					b.th[i].warp = i / 32;
				}
		blk = &b;
		emu_bdim = emu_dim3{bx, by, bz};
		emu_gdim = emu_dim3{gx, gy, gz};
		for (long long k; !failed && (k = next++) < total;) {
			emu_bid = emu_dim3{(unsigned)(k % gx), (unsigned)(k / gx % gy), (unsigned)(k / ((long long)gx * gy))};
			if (!run_block(rev)) {
				std::lock_guard<std::mutex> g(mu);
				if (!failed) why = std::string(e->name) + " " + where(emu_bid) + ": " + b.fail;
				failed = true;
			}
		}
		blk = nullptr;
	};
	if (total * nt >= 8192)
		pool().run(work);
	else
		work();
	if (failed) {
		std::lock_guard<std::mutex> g(mu);
		last_fail = why;
		return CUDA_ERROR_LAUNCH_FAILED;
	}
	return CUDA_SUCCESS;
}

CUresult cuGetErrorString(CUresult r, const char **s) {
	static thread_local std::string msg;
	switch (r) {
	case CUDA_ERROR_INVALID_VALUE:
	case CUDA_ERROR_INVALID_IMAGE:
	case CUDA_ERROR_LAUNCH_FAILED: {
		std::lock_guard<std::mutex> g(mu);
		msg = "emulator: " + last_fail;
		*s = msg.c_str();
		return CUDA_SUCCESS;
	}
	case CUDA_ERROR_OUT_OF_MEMORY:
		*s = "emulator: out of memory";
		return CUDA_SUCCESS;
	case CUDA_ERROR_NOT_FOUND:
		*s = "emulator: no such kernel";
		return CUDA_SUCCESS;
	}
	*s = "emulator: unknown error";
	return CUDA_SUCCESS;
}

// ---- the exported cuBLAS API ----

static int the_handle;
int cublasCreate_v2(void **h) {
	*h = &the_handle;
	return 0;
}
int cublasSetStream_v2(void *, void *) { return 0; }
int cublasSetMathMode(void *, int mode) {
	math_mode = mode;
	return 0;
}
int cublasSgemm_v2(void *, int ta, int tb, int m, int n, int k, const float *alpha, const float *a, int lda, const float *b, int ldb,
                   const float *beta, float *c, int ldc) {
	return gemm_batched(ta, tb, m, n, k, alpha, a, 0, lda, 0, b, 0, ldb, 0, beta, c, 0, ldc, 0, 1, 68);
}
int cublasSgemmStridedBatched(void *, int ta, int tb, int m, int n, int k, const float *alpha, const float *a, int lda, long long sa,
                              const float *b, int ldb, long long sb, const float *beta, float *c, int ldc, long long sc, int batch) {
	return gemm_batched(ta, tb, m, n, k, alpha, a, 0, lda, sa, b, 0, ldb, sb, beta, c, 0, ldc, sc, batch, 68);
}
int cublasGemmEx(void *, int ta, int tb, int m, int n, int k, const void *alpha, const void *a, int atype, int lda, const void *b, int btype,
                 int ldb, const void *beta, void *c, int ctype, int ldc, int compute, int) {
	return gemm_batched(ta, tb, m, n, k, (const float *)alpha, a, atype, lda, 0, b, btype, ldb, 0, (const float *)beta, c, ctype, ldc, 0, 1,
	                    compute);
}
int cublasGemmStridedBatchedEx(void *, int ta, int tb, int m, int n, int k, const void *alpha, const void *a, int atype, int lda,
                               long long sa, const void *b, int btype, int ldb, long long sb, const void *beta, void *c, int ctype, int ldc,
                               long long sc, int batch, int compute, int) {
	return gemm_batched(ta, tb, m, n, k, (const float *)alpha, a, atype, lda, sa, b, btype, ldb, sb, (const float *)beta, c, ctype, ldc, sc,
	                    batch, compute);
}

// ---- the exported cuBLASLt API ----

static int the_lt_handle;
int cublasLtCreate(void **h) {
	*h = &the_lt_handle;
	return 0;
}
int cublasLtMatmulDescCreate(void **d, int compute, int scale) {
	if (compute != 68 && compute != 77) return 15;
	if (scale != 0) return 7;
	*d = new LtDesc{compute};
	return 0;
}
int cublasLtMatmulDescDestroy(void *d) {
	delete (LtDesc *)d;
	return 0;
}
int cublasLtMatmulDescSetAttribute(void *dp, int attr, const void *buf, size_t size) {
	LtDesc *d = (LtDesc *)dp;
	switch (attr) {
	case 3: // TRANSA, TRANSB: cublasOperation_t (int32)
	case 4: {
		if (size != 4) return lt_fail("TRANS attribute of %llu bytes", size, 0);
		int32_t v;
		memcpy(&v, buf, 4);
		if (v != 0 && v != 1) return lt_fail("TRANS value %llu", v, 0);
		(attr == 3 ? d->ta : d->tb) = v;
		return 0;
	}
	case 7: // EPILOGUE: uint32
		if (size != 4) return lt_fail("EPILOGUE attribute of %llu bytes", size, 0);
		memcpy(&d->epi, buf, 4);
		if (!lt_epilogue_known(d->epi)) return lt_fail("epilogue %llu is not emulated", d->epi, 0);
		return 0;
	case 8: // BIAS_POINTER
		if (size != 8) return lt_fail("BIAS_POINTER attribute of %llu bytes", size, 0);
		memcpy(&d->bias, buf, 8);
		return 0;
	case 11: // EPILOGUE_AUX_POINTER
		if (size != 8) return lt_fail("EPILOGUE_AUX_POINTER attribute of %llu bytes", size, 0);
		memcpy(&d->aux, buf, 8);
		return 0;
	case 12: // EPILOGUE_AUX_LD: int64
		if (size != 8) return lt_fail("EPILOGUE_AUX_LD attribute of %llu bytes", size, 0);
		memcpy(&d->auxld, buf, 8);
		return 0;
	}
	return lt_fail("matmul attribute %llu is not emulated", attr, 0);
}
int cublasLtMatrixLayoutCreate(void **l, int type, uint64_t rows, uint64_t cols, int64_t ld) {
	if (type != 0 && type != 14) return 7;
	if (ld < 1 || (uint64_t)ld < rows) return lt_fail("layout ld %llu for %llu rows", ld, rows);
	*l = new LtLayout{type, rows, cols, ld};
	return 0;
}
int cublasLtMatrixLayoutDestroy(void *l) {
	delete (LtLayout *)l;
	return 0;
}
int cublasLtMatmulPreferenceCreate(void **p) {
	*p = new LtPref;
	return 0;
}
int cublasLtMatmulPreferenceDestroy(void *p) {
	delete (LtPref *)p;
	return 0;
}
int cublasLtMatmulPreferenceSetAttribute(void *pp, int attr, const void *buf, size_t size) {
	LtPref *p = (LtPref *)pp;
	if (attr == 1) { // MAX_WORKSPACE_BYTES: uint64
		if (size != 8) return lt_fail("MAX_WORKSPACE_BYTES attribute of %llu bytes", size, 0);
		memcpy(&p->ws, buf, 8);
		return 0;
	}
	if (attr >= 5 && attr <= 8) { // MIN_ALIGNMENT_{A,B,C,D}_BYTES: uint32
		uint32_t v;
		if (size != 4) return lt_fail("MIN_ALIGNMENT attribute of %llu bytes", size, 0);
		memcpy(&v, buf, 4);
		if (v == 0 || (v & (v - 1)) != 0) return lt_fail("alignment %llu is not a power of two", v, 0);
		p->align[attr - 5] = v;
		return 0;
	}
	return lt_fail("preference attribute %llu is not emulated", attr, 0);
}
int cublasLtMatmulAlgoGetHeuristic(void *, void *desc, void *a, void *b, void *c, void *d, void *pref, int requested, void *results,
                                   int *count) {
	const LtDesc *dd = (const LtDesc *)desc;
	int s = lt_check(dd, (const LtLayout *)a, (const LtLayout *)b, (const LtLayout *)c, (const LtLayout *)d);
	if (s) return s;
	if (requested < 1) return 7;
	// IMMKIT_CUDA_EMU_LT_NOALGO=1: no algorithm for anything (the caller's fallback path)
	if (const char *e = getenv("IMMKIT_CUDA_EMU_LT_NOALGO"); e && *e == '1') {
		*count = 0;
		return 0;
	}
	// one algorithm, remembering the alignments it was chosen for; no workspace
	uint64_t algo[8] = {lt_magic, 0, 0, 0, 0, dd->epi, 0, 0};
	for (int i = 0; i < 4; i++) algo[1 + i] = ((const LtPref *)pref)->align[i];
	unsigned char *r = (unsigned char *)results;
	memset(r, 0, 96);
	memcpy(r, algo, 64);
	float waves = 1;
	memcpy(r + 76, &waves, 4);
	*count = 1;
	return 0;
}
int cublasLtMatmul(void *, void *desc, const void *alpha, const void *A, void *adesc, const void *B, void *bdesc, const void *beta,
                   const void *C, void *cdesc, void *D, void *ddesc, const void *algop, void *, size_t, void *) {
	flush();
	const LtDesc *d = (const LtDesc *)desc;
	const LtLayout *la = (const LtLayout *)adesc, *lb = (const LtLayout *)bdesc, *ld = (const LtLayout *)ddesc;
	int s = lt_check(d, la, lb, (const LtLayout *)cdesc, ld);
	if (s) return s;
	uint64_t algo[8];
	memcpy(algo, algop, 64);
	if (algo[0] != lt_magic) return lt_fail("algo not from cublasLtMatmulAlgoGetHeuristic", 0, 0);
	if (algo[5] != d->epi) return lt_fail("algo chosen for epilogue %llu, run with %llu", algo[5], d->epi);
	const void *ptrs[4] = {A, B, C, D};
	for (int i = 0; i < 4; i++)
		if ((uint64_t)ptrs[i] % algo[1 + i] != 0)
			return lt_fail("operand address %#llx is not aligned to the %llu bytes its algorithm was chosen for", (uint64_t)ptrs[i], algo[1 + i]);
	if (C != D && *(const float *)beta != 0.0f) return lt_fail("C differs from D with beta != 0 (not emulated)", 0, 0);
	if ((d->epi & 4) && (!d->bias || (uint64_t)d->bias % 16 != 0))
		return lt_fail("bias at %#llx: absent or not 16-byte aligned (a GPU kernel may fault: misaligned address)", (uint64_t)d->bias, 0);
	if (lt_has_aux(d->epi) && (!d->aux || (uint64_t)d->aux % 16 != 0))
		return lt_fail("epilogue aux at %#llx: absent or not 16-byte aligned", (uint64_t)d->aux, 0);
	int m = (int)ld->rows, n = (int)ld->cols, k = (int)(d->ta ? la->rows : la->cols);
	// the product in FP32 (into D itself, or scratch when D is bf16), then the epilogue
	// in FP32 with the bias and aux of D's type, each output rounded once
	int dt = ld->type;
	std::vector<float> tmp(dt == 14 ? (size_t)m * n : 0);
	float *acc = dt == 14 ? tmp.data() : (float *)D;
	long long lacc = dt == 14 ? m : ld->ld;
	s = gemm(d->ta, d->tb, m, n, k, *(const float *)alpha, A, la->type, (int)la->ld, B, lb->type, (int)lb->ld, dt == 14 ? 0.0f : *(const float *)beta,
	         acc, 0, (int)lacc, d->compute == 77);
	if (s) return s;
	if (dt == 14 && *(const float *)beta != 0.0f) return lt_fail("beta != 0 with a bf16 D (not emulated)", 0, 0);
	auto store = [dt](void *p, long long i, float v) {
		if (dt == 14)
			((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn(v);
		else
			((float *)p)[i] = v;
	};
	for (int j = 0; j < n; j++)
		for (int i = 0; i < m; i++) {
			float v = acc[i + (long long)j * lacc];
			long long ai = i + (long long)j * d->auxld;
			if (d->epi & 4) v += load(d->bias, dt, i);
			if (d->epi == 160 || d->epi == 164) {
				store(d->aux, ai, v);
				v = lt_gelu(v);
			} else if (d->epi == 32 || d->epi == 36) {
				v = lt_gelu(v);
			} else if (d->epi == 192) {
				v *= lt_dgelu(load(d->aux, dt, ai));
			}
			store(D, i + (long long)j * ld->ld, v);
		}
	return 0;
}

} // extern "C"
