#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include "shim.h"

static void *libcuda, *libcublas, *libcublaslt;
static CUcontext ctx;
static cublasHandle_t blas;
static void *lt;

static CUresult (*p_cuInit)(unsigned);
static CUresult (*p_cuDriverGetVersion)(int *);
static CUresult (*p_cuDeviceGet)(CUdevice *, int);
static CUresult (*p_cuDeviceGetName)(char *, int, CUdevice);
static CUresult (*p_cuDeviceTotalMem)(size_t *, CUdevice);
static CUresult (*p_cuDeviceGetAttribute)(int *, int, CUdevice);
static CUresult (*p_cuDevicePrimaryCtxRetain)(CUcontext *, CUdevice);
static CUresult (*p_cuCtxSetCurrent)(CUcontext);
static CUresult (*p_cuCtxSynchronize)(void);
static CUresult (*p_cuModuleLoadData)(CUmodule *, const void *);
static CUresult (*p_cuModuleGetFunction)(CUfunction *, CUmodule, const char *);
static CUresult (*p_cuMemAlloc)(CUdeviceptr *, size_t);
static CUresult (*p_cuMemFree)(CUdeviceptr);
static CUresult (*p_cuMemcpyHtoD)(CUdeviceptr, const void *, size_t);
static CUresult (*p_cuMemcpyHtoDAsync)(CUdeviceptr, const void *, size_t, CUstream);
static CUresult (*p_cuMemcpyDtoH)(void *, CUdeviceptr, size_t);
static CUresult (*p_cuMemcpyDtoD)(CUdeviceptr, CUdeviceptr, size_t);
static CUresult (*p_cuMemsetD32)(CUdeviceptr, unsigned, size_t);
static CUresult (*p_cuMemAllocHost)(void **, size_t);
static CUresult (*p_cuMemFreeHost)(void *);
static CUresult (*p_cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, CUstream, void **, void **);
static CUresult (*p_cuGetErrorString)(CUresult, const char **);

static cublasStatus_t (*p_cublasCreate)(cublasHandle_t *);
static cublasStatus_t (*p_cublasSetStream)(cublasHandle_t, CUstream);
static cublasStatus_t (*p_cublasSetMathMode)(cublasHandle_t, int);
static cublasStatus_t (*p_cublasSgemm)(cublasHandle_t, int, int, int, int, int, const float *, const float *, int, const float *, int, const float *, float *, int);
static cublasStatus_t (*p_cublasSgemmStridedBatched)(cublasHandle_t, int, int, int, int, int, const float *, const float *, int, long long, const float *, int, long long, const float *, float *, int, long long, int);
static cublasStatus_t (*p_cublasGemmEx)(cublasHandle_t, int, int, int, int, int, const void *, const void *, int, int, const void *, int, int, const void *, void *, int, int, int, int);
static cublasStatus_t (*p_cublasGemmStridedBatchedEx)(cublasHandle_t, int, int, int, int, int, const void *, const void *, int, int, long long, const void *, int, int, long long, const void *, void *, int, int, long long, int, int, int);

static cublasStatus_t (*p_ltCreate)(void **);
static cublasStatus_t (*p_ltDescCreate)(void **, int, int);
static cublasStatus_t (*p_ltDescSet)(void *, int, const void *, size_t);
static cublasStatus_t (*p_ltLayoutCreate)(void **, int, uint64_t, uint64_t, int64_t);
static cublasStatus_t (*p_ltPrefCreate)(void **);
static cublasStatus_t (*p_ltPrefSet)(void *, int, const void *, size_t);
static cublasStatus_t (*p_ltPrefDestroy)(void *);
static cublasStatus_t (*p_ltHeuristic)(void *, void *, void *, void *, void *, void *, void *, int, void *, int *);
static cublasStatus_t (*p_ltMatmul)(void *, void *, const void *, const void *, void *, const void *, void *, const void *,
                                    const void *, void *, void *, void *, const void *, void *, size_t, CUstream);

#define SYM(lib, var, name) do { *(void **)(&var) = dlsym(lib, name); if (!var) { snprintf(msg, msglen, "dlsym %s: %s", name, dlerror()); return 0; } } while (0)

int shim_load_cuda(const char *path, char *msg, int msglen) {
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) { snprintf(msg, msglen, "%s", dlerror()); return 0; }
	libcuda = h;
	SYM(h, p_cuInit, "cuInit");
	SYM(h, p_cuDriverGetVersion, "cuDriverGetVersion");
	SYM(h, p_cuDeviceGet, "cuDeviceGet");
	SYM(h, p_cuDeviceGetName, "cuDeviceGetName");
	SYM(h, p_cuDeviceTotalMem, "cuDeviceTotalMem_v2");
	SYM(h, p_cuDeviceGetAttribute, "cuDeviceGetAttribute");
	SYM(h, p_cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
	SYM(h, p_cuCtxSetCurrent, "cuCtxSetCurrent");
	SYM(h, p_cuCtxSynchronize, "cuCtxSynchronize");
	SYM(h, p_cuModuleLoadData, "cuModuleLoadData");
	SYM(h, p_cuModuleGetFunction, "cuModuleGetFunction");
	SYM(h, p_cuMemAlloc, "cuMemAlloc_v2");
	SYM(h, p_cuMemFree, "cuMemFree_v2");
	SYM(h, p_cuMemcpyHtoD, "cuMemcpyHtoD_v2");
	SYM(h, p_cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2");
	SYM(h, p_cuMemcpyDtoH, "cuMemcpyDtoH_v2");
	SYM(h, p_cuMemcpyDtoD, "cuMemcpyDtoD_v2");
	SYM(h, p_cuMemsetD32, "cuMemsetD32_v2");
	SYM(h, p_cuMemAllocHost, "cuMemAllocHost_v2");
	SYM(h, p_cuMemFreeHost, "cuMemFreeHost");
	SYM(h, p_cuLaunchKernel, "cuLaunchKernel");
	SYM(h, p_cuGetErrorString, "cuGetErrorString");
	return 1;
}

int shim_load_cublas(const char *path, char *msg, int msglen) {
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) { snprintf(msg, msglen, "%s", dlerror()); return 0; }
	libcublas = h;
	SYM(h, p_cublasCreate, "cublasCreate_v2");
	SYM(h, p_cublasSetStream, "cublasSetStream_v2");
	SYM(h, p_cublasSetMathMode, "cublasSetMathMode");
	SYM(h, p_cublasSgemm, "cublasSgemm_v2");
	SYM(h, p_cublasSgemmStridedBatched, "cublasSgemmStridedBatched");
	SYM(h, p_cublasGemmEx, "cublasGemmEx");
	SYM(h, p_cublasGemmStridedBatchedEx, "cublasGemmStridedBatchedEx");
	return 1;
}

int shim_load_cublaslt(const char *path, char *msg, int msglen) {
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) { snprintf(msg, msglen, "%s", dlerror()); return 0; }
	libcublaslt = h;
	SYM(h, p_ltCreate, "cublasLtCreate");
	SYM(h, p_ltDescCreate, "cublasLtMatmulDescCreate");
	SYM(h, p_ltDescSet, "cublasLtMatmulDescSetAttribute");
	SYM(h, p_ltLayoutCreate, "cublasLtMatrixLayoutCreate");
	SYM(h, p_ltPrefCreate, "cublasLtMatmulPreferenceCreate");
	SYM(h, p_ltPrefSet, "cublasLtMatmulPreferenceSetAttribute");
	SYM(h, p_ltPrefDestroy, "cublasLtMatmulPreferenceDestroy");
	SYM(h, p_ltHeuristic, "cublasLtMatmulAlgoGetHeuristic");
	SYM(h, p_ltMatmul, "cublasLtMatmul");
	return 1;
}

#define CUR() do { CUresult r_ = p_cuCtxSetCurrent(ctx); if (r_) return r_; } while (0)

// CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75, _MINOR = 76.
#define STEP(name, expr) do { *call = name; if ((r = (expr))) return r; } while (0)

CUresult shim_init(int ordinal, char *name, int namelen, size_t *mem, int *driver, int *cc, const char **call) {
	CUresult r;
	CUdevice dev;
	int maj = 0, min = 0;
	STEP("cuInit", p_cuInit(0));
	STEP("cuDriverGetVersion", p_cuDriverGetVersion(driver));
	STEP("cuDeviceGet", p_cuDeviceGet(&dev, ordinal));
	STEP("cuDeviceGetName", p_cuDeviceGetName(name, namelen, dev));
	STEP("cuDeviceTotalMem_v2", p_cuDeviceTotalMem(mem, dev));
	STEP("cuDeviceGetAttribute", p_cuDeviceGetAttribute(&maj, 75, dev));
	STEP("cuDeviceGetAttribute", p_cuDeviceGetAttribute(&min, 76, dev));
	*cc = maj * 10 + min;
	STEP("cuDevicePrimaryCtxRetain", p_cuDevicePrimaryCtxRetain(&ctx, dev));
	STEP("cuCtxSetCurrent", p_cuCtxSetCurrent(ctx));
	return 0;
}

CUresult shim_module_load(const void *image, CUmodule *mod) { CUR(); return p_cuModuleLoadData(mod, image); }
CUresult shim_function(CUmodule mod, const char *name, CUfunction *fn) { CUR(); return p_cuModuleGetFunction(fn, mod, name); }
CUresult shim_alloc(CUdeviceptr *p, size_t bytes) { CUR(); return p_cuMemAlloc(p, bytes); }
CUresult shim_free(CUdeviceptr p) { CUR(); return p_cuMemFree(p); }
CUresult shim_htod(CUdeviceptr dst, const void *src, size_t bytes) { CUR(); return p_cuMemcpyHtoD(dst, src, bytes); }
CUresult shim_htod_staged(CUdeviceptr dst, const void *src, size_t bytes, void *stage) {
	CUR();
	memcpy(stage, src, bytes);
	return p_cuMemcpyHtoDAsync(dst, stage, bytes, NULL);
}
CUresult shim_dtoh(void *dst, CUdeviceptr src, size_t bytes) { CUR(); return p_cuMemcpyDtoH(dst, src, bytes); }
CUresult shim_dtod(CUdeviceptr dst, CUdeviceptr src, size_t bytes) { CUR(); return p_cuMemcpyDtoD(dst, src, bytes); }
CUresult shim_memset32(CUdeviceptr dst, uint32_t v, size_t n) { CUR(); return p_cuMemsetD32(dst, v, n); }
CUresult shim_sync(void) { CUR(); return p_cuCtxSynchronize(); }
CUresult shim_host_alloc(void **p, size_t bytes) { CUR(); return p_cuMemAllocHost(p, bytes); }
CUresult shim_host_free(void *p) { CUR(); return p_cuMemFreeHost(p); }

CUresult shim_launch(CUfunction fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned shmem, int nargs, uint64_t *args) {
	void *ptrs[32];
	int i;
	if (nargs > 32) return 1; // CUDA_ERROR_INVALID_VALUE
	for (i = 0; i < nargs; i++) ptrs[i] = &args[i];
	CUR();
	return p_cuLaunchKernel(fn, gx, gy, gz, bx, by, bz, shmem, NULL, ptrs, NULL);
}

const char *shim_error_string(CUresult r) {
	const char *s = NULL;
	if (!p_cuGetErrorString || p_cuGetErrorString(r, &s) || !s) return "unknown error";
	return s;
}

cublasStatus_t shim_cublas_create(void) {
	cublasStatus_t s;
	if (p_cuCtxSetCurrent(ctx)) return 1; // CUBLAS_STATUS_NOT_INITIALIZED
	if ((s = p_cublasCreate(&blas))) return s;
	return p_cublasSetStream(blas, NULL);
}

cublasStatus_t shim_cublas_math_mode(int mode) {
	if (p_cuCtxSetCurrent(ctx)) return 1;
	return p_cublasSetMathMode(blas, mode);
}

cublasStatus_t shim_sgemm(int ta, int tb, int m, int n, int k, float alpha, CUdeviceptr a, int lda, CUdeviceptr b, int ldb, float beta, CUdeviceptr c, int ldc) {
	if (p_cuCtxSetCurrent(ctx)) return 1;
	return p_cublasSgemm(blas, ta, tb, m, n, k, &alpha, (const float *)a, lda, (const float *)b, ldb, &beta, (float *)c, ldc);
}

cublasStatus_t shim_sgemm_batched(int ta, int tb, int m, int n, int k, float alpha, CUdeviceptr a, int lda, long long sa, CUdeviceptr b, int ldb, long long sb, float beta, CUdeviceptr c, int ldc, long long sc, int batch) {
	if (p_cuCtxSetCurrent(ctx)) return 1;
	return p_cublasSgemmStridedBatched(blas, ta, tb, m, n, k, &alpha, (const float *)a, lda, sa, (const float *)b, ldb, sb, &beta, (float *)c, ldc, sc, batch);
}

// CUBLAS_GEMM_DEFAULT = -1.
cublasStatus_t shim_gemm_ex(int ta, int tb, int m, int n, int k, float alpha, CUdeviceptr a, int atype, int lda, CUdeviceptr b, int btype, int ldb, float beta, CUdeviceptr c, int ctype, int ldc, int compute) {
	if (p_cuCtxSetCurrent(ctx)) return 1;
	return p_cublasGemmEx(blas, ta, tb, m, n, k, &alpha, (const void *)a, atype, lda, (const void *)b, btype, ldb, &beta, (void *)c, ctype, ldc, compute, -1);
}

cublasStatus_t shim_gemm_batched_ex(int ta, int tb, int m, int n, int k, float alpha, CUdeviceptr a, int atype, int lda, long long sa, CUdeviceptr b, int btype, int ldb, long long sb, float beta, CUdeviceptr c, int ctype, int ldc, long long sc, int batch, int compute) {
	if (p_cuCtxSetCurrent(ctx)) return 1;
	return p_cublasGemmStridedBatchedEx(blas, ta, tb, m, n, k, &alpha, (const void *)a, atype, lda, sa, (const void *)b, btype, ldb, sb, &beta, (void *)c, ctype, ldc, sc, batch, compute, -1);
}

// ---- cuBLASLt ----
// Attribute and enum values from cublasLt.h (CUDA 11-13): CUBLASLT_MATMUL_DESC_TRANSA 3,
// _TRANSB 4, _EPILOGUE 7, _BIAS_POINTER 8, _EPILOGUE_AUX_POINTER 11, _EPILOGUE_AUX_LD 12;
// CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES 1, _MIN_ALIGNMENT_{A,B,C,D}_BYTES 5-8;
// CUDA_R_32F 0.

#define LT(name, expr) do { *call = name; if ((s = (expr))) return s; } while (0)

cublasStatus_t shim_lt_create(void) {
	if (p_cuCtxSetCurrent(ctx)) return 1;
	return p_ltCreate(&lt);
}

cublasStatus_t shim_lt_plan(lt_plan *p, int ta, int tb, int m, int n, int k, int abtype, int dtype, int lda, int ldb, int ldd,
                            int compute, int epilogue, long long auxld, int align_a, int align_b, int align_d,
                            size_t wsmax, const char **call) {
	cublasStatus_t s;
	int32_t opa = ta, opb = tb;
	uint32_t epi = epilogue, al_a = align_a, al_b = align_b, al_d = align_d;
	int64_t ald = auxld;
	uint64_t ws = wsmax;
	void *pref = NULL;
	unsigned char res[96]; // cublasLtMatmulHeuristicResult_t: algo (64 bytes), workspaceSize, state, wavesCount, reserved[4]
	int got = 0;
	if (p_cuCtxSetCurrent(ctx)) return 1;
	memset(p, 0, sizeof *p);
	LT("cublasLtMatmulDescCreate", p_ltDescCreate(&p->desc, compute, 0));
	LT("cublasLtMatmulDescSetAttribute(TRANSA)", p_ltDescSet(p->desc, 3, &opa, sizeof opa));
	LT("cublasLtMatmulDescSetAttribute(TRANSB)", p_ltDescSet(p->desc, 4, &opb, sizeof opb));
	LT("cublasLtMatmulDescSetAttribute(EPILOGUE)", p_ltDescSet(p->desc, 7, &epi, sizeof epi));
	if (auxld) LT("cublasLtMatmulDescSetAttribute(EPILOGUE_AUX_LD)", p_ltDescSet(p->desc, 12, &ald, sizeof ald));
	LT("cublasLtMatrixLayoutCreate(A)", p_ltLayoutCreate(&p->la, abtype, ta ? k : m, ta ? m : k, lda));
	LT("cublasLtMatrixLayoutCreate(B)", p_ltLayoutCreate(&p->lb, abtype, tb ? n : k, tb ? k : n, ldb));
	LT("cublasLtMatrixLayoutCreate(D)", p_ltLayoutCreate(&p->ld, dtype, m, n, ldd));
	LT("cublasLtMatmulPreferenceCreate", p_ltPrefCreate(&pref));
	s = p_ltPrefSet(pref, 1, &ws, sizeof ws);
	if (!s) s = p_ltPrefSet(pref, 5, &al_a, sizeof al_a);
	if (!s) s = p_ltPrefSet(pref, 6, &al_b, sizeof al_b);
	if (!s) s = p_ltPrefSet(pref, 7, &al_d, sizeof al_d);
	if (!s) s = p_ltPrefSet(pref, 8, &al_d, sizeof al_d);
	if (s) { *call = "cublasLtMatmulPreferenceSetAttribute"; p_ltPrefDestroy(pref); return s; }
	memset(res, 0, sizeof res);
	*call = "cublasLtMatmulAlgoGetHeuristic";
	s = p_ltHeuristic(lt, p->desc, p->la, p->lb, p->ld, p->ld, pref, 1, res, &got);
	p_ltPrefDestroy(pref);
	if (s) return s;
	if (got < 1) return 15; // CUBLAS_STATUS_NOT_SUPPORTED: no algorithm for this shape and epilogue
	memcpy(p->algo, res, 64);
	memcpy(&p->ws, res + 64, sizeof p->ws);
	return 0;
}

cublasStatus_t shim_lt_run(lt_plan *p, CUdeviceptr a, CUdeviceptr b, CUdeviceptr d, CUdeviceptr bias, CUdeviceptr aux,
                           CUdeviceptr ws, size_t wssize, const char **call) {
	cublasStatus_t s;
	float one = 1, zero = 0;
	void *vb = (void *)bias, *va = (void *)aux;
	if (p_cuCtxSetCurrent(ctx)) return 1;
	if (bias) LT("cublasLtMatmulDescSetAttribute(BIAS_POINTER)", p_ltDescSet(p->desc, 8, &vb, sizeof vb));
	if (aux) LT("cublasLtMatmulDescSetAttribute(EPILOGUE_AUX_POINTER)", p_ltDescSet(p->desc, 11, &va, sizeof va));
	LT("cublasLtMatmul", p_ltMatmul(lt, p->desc, &one, (const void *)a, p->la, (const void *)b, p->lb, &zero, (const void *)d, p->ld,
	                                (void *)d, p->ld, p->algo, (void *)ws, wssize, NULL));
	return 0;
}
