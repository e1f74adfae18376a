// Own typedefs for the small part of the CUDA driver API and cuBLAS that immkit calls;
// no CUDA headers are needed to build. Values are from cuda.h / cublas_api.h (CUDA 11-13).
#include <stdint.h>
#include <stddef.h>

typedef int CUresult;
typedef int CUdevice;
typedef void *CUcontext;
typedef void *CUmodule;
typedef void *CUfunction;
typedef void *CUstream;
typedef uint64_t CUdeviceptr;
typedef int cublasStatus_t;
typedef void *cublasHandle_t;

// A cuBLASLt matmul planned once per shape (descriptor, layouts, the heuristic's algo).
typedef struct {
	void *desc, *la, *lb, *ld;
	uint64_t algo[8]; // cublasLtMatmulAlgo_t
	size_t ws;        // workspace bytes the algo needs
} lt_plan;

// shim_load_* dlopen one path and resolve every symbol; on failure they return 0 and
// write the dlerror to msg.
int shim_load_cuda(const char *path, char *msg, int msglen);
int shim_load_cublas(const char *path, char *msg, int msglen);
int shim_load_cublaslt(const char *path, char *msg, int msglen);

// Each shim_* function makes the context current on the calling OS thread first, so the
// Go caller never depends on which thread it runs on. *call is set to the name of the
// API function that failed.
CUresult shim_init(int ordinal, char *name, int namelen, size_t *mem, int *driver, int *cc, const char **call);
CUresult shim_module_load(const void *image, CUmodule *mod);
CUresult shim_function(CUmodule mod, const char *name, CUfunction *fn);
CUresult shim_alloc(CUdeviceptr *p, size_t bytes);
CUresult shim_free(CUdeviceptr p);
CUresult shim_htod(CUdeviceptr dst, const void *src, size_t bytes);
// shim_htod_staged copies bytes from src into the pinned buffer stage, then queues
// cuMemcpyHtoDAsync_v2 from there on the null stream.
CUresult shim_htod_staged(CUdeviceptr dst, const void *src, size_t bytes, void *stage);
CUresult shim_dtoh(void *dst, CUdeviceptr src, size_t bytes);
CUresult shim_dtod(CUdeviceptr dst, CUdeviceptr src, size_t bytes);
CUresult shim_memset32(CUdeviceptr dst, uint32_t v, size_t n);
CUresult shim_launch(CUfunction fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned shmem, int nargs, uint64_t *args);
CUresult shim_sync(void);
CUresult shim_host_alloc(void **p, size_t bytes);
CUresult shim_host_free(void *p);
const char *shim_error_string(CUresult r);

cublasStatus_t shim_cublas_create(void);
cublasStatus_t shim_cublas_math_mode(int mode);
cublasStatus_t shim_sgemm(int ta, int tb, int m, int n, int k, float alpha, CUdeviceptr a, int lda, CUdeviceptr b, int ldb, float beta, CUdeviceptr c, int ldc);
cublasStatus_t shim_sgemm_batched(int ta, int tb, int m, int n, int k, float alpha, CUdeviceptr a, int lda, long long sa, CUdeviceptr b, int ldb, long long sb, float beta, CUdeviceptr c, int ldc, long long sc, int batch);
cublasStatus_t shim_gemm_ex(int ta, int tb, int m, int n, int k, float alpha, CUdeviceptr a, int atype, int lda, CUdeviceptr b, int btype, int ldb, float beta, CUdeviceptr c, int ctype, int ldc, int compute);
cublasStatus_t shim_gemm_batched_ex(int ta, int tb, int m, int n, int k, float alpha, CUdeviceptr a, int atype, int lda, long long sa, CUdeviceptr b, int btype, int ldb, long long sb, float beta, CUdeviceptr c, int ctype, int ldc, long long sc, int batch, int compute);

// cuBLASLt (column-major D = op(A) op(B) with an epilogue; *call names a failed call).
cublasStatus_t shim_lt_create(void);
cublasStatus_t shim_lt_plan(lt_plan *p, int ta, int tb, int m, int n, int k, int abtype, int dtype, int lda, int ldb, int ldd,
                            int compute, int epilogue, long long auxld, int align_a, int align_b, int align_d,
                            size_t wsmax, const char **call);
cublasStatus_t shim_lt_run(lt_plan *p, CUdeviceptr a, CUdeviceptr b, CUdeviceptr d, CUdeviceptr bias, CUdeviceptr aux,
                           CUdeviceptr ws, size_t wssize, const char **call);
