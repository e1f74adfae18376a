//go:build cgo

package cudadrv

/*
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"strings"
	"unsafe"
)

func load(names []string, sentinel error, f func(path *C.char, msg *C.char, n C.int) C.int) (string, error) {
	msg := (*C.char)(C.malloc(512))
	defer C.free(unsafe.Pointer(msg))
	var last string
	for _, p := range candidates(names) {
		cp := C.CString(p)
		ok := f(cp, msg, 512)
		C.free(unsafe.Pointer(cp))
		if ok != 0 {
			return p, nil
		}
		last = C.GoString(msg)
		if strings.HasPrefix(last, "dlsym ") {
			return "", fmt.Errorf("%w: %s: %s", sentinel, p, last)
		}
	}
	return "", fmt.Errorf("%w: cannot load %s (searched %s); last error: %s",
		sentinel, strings.Join(names, ", "), strings.Join(SearchDirs(), ", "), last)
}

func open() (*Context, error) {
	c := &Context{}
	var err error
	c.DriverLib, err = loadCUDA(DriverNames)
	if err != nil {
		return nil, err
	}
	name := (*C.char)(C.malloc(256))
	defer C.free(unsafe.Pointer(name))
	var mem C.size_t
	var drv, cc C.int
	var call *C.char
	if r := C.shim_init(0, name, 256, &mem, &drv, &cc, &call); r != 0 {
		e := cuErr(C.GoString(call), r).(*Error)
		return nil, fmt.Errorf("%w: %s: error %d (%s) (driver %s)", ErrNoDevice, e.Call, e.Code, e.Msg, c.DriverLib)
	}
	c.Name, c.TotalMem, c.Driver, c.Capability = C.GoString(name), int64(mem), int(drv), int(cc)
	c.CUBLASLib, err = load(CUBLASNames, ErrNoCUBLAS, func(p, m *C.char, n C.int) C.int { return C.shim_load_cublas(p, m, n) })
	if err != nil {
		return nil, err
	}
	if s := C.shim_cublas_create(); s != 0 {
		return nil, blasErr("cublasCreate_v2", s)
	}
	// cuBLASLt is optional: without it the fused GEMM epilogues fall back to separate ops.
	c.LtLib, c.ltErr = load(LtNames, ErrNoCUBLASLt, func(p, m *C.char, n C.int) C.int { return C.shim_load_cublaslt(p, m, n) })
	if c.ltErr == nil {
		if s := C.shim_lt_create(); s != 0 {
			c.LtLib, c.ltErr = "", fmt.Errorf("%w: %w", ErrNoCUBLASLt, blasErr("cublasLtCreate", s))
		}
	}
	return c, nil
}

// ltWorkspace is the cuBLASLt workspace (32 MiB, what cuBLAS recommends on Hopper).
const ltWorkspace = 32 << 20

// LtMatmul runs the column-major D = op(A) op(B) (alpha 1, beta 0, C = D) with the
// epilogue of s through cuBLASLt, bias and aux being the epilogue's vectors (0 when it
// has none). The descriptor, layouts and the heuristic's algorithm are made once per
// LtShape and kept; a shape cuBLASLt has no algorithm for fails with the same error on
// every call, cheaply, so the caller can fall back to separate ops.
func (c *Context) LtMatmul(s LtShape, a, b, d, bias, aux Ptr) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ltErr != nil {
		return c.ltErr
	}
	if c.ltWS == 0 {
		var p C.CUdeviceptr
		if r := C.shim_alloc(&p, ltWorkspace); r != 0 {
			return fmt.Errorf("%w (cuBLASLt workspace)", cuErr("cuMemAlloc_v2", r))
		}
		c.ltWS = Ptr(p)
	}
	pl, ok := c.ltPlans[s]
	if !ok {
		if err, bad := c.ltBad[s]; bad {
			return err
		}
		pl = (*C.lt_plan)(C.calloc(1, C.sizeof_lt_plan))
		var call *C.char
		st := C.shim_lt_plan(pl, op(s.TA), op(s.TB), C.int(s.M), C.int(s.N), C.int(s.K), C.int(s.ABType), C.int(s.DType), C.int(s.LDA), C.int(s.LDB), C.int(s.LDD),
			C.int(s.Compute), C.int(s.Epilogue), C.longlong(s.AuxLD), C.int(s.AlignA), C.int(s.AlignB), C.int(s.AlignD), ltWorkspace, &call)
		if st != 0 {
			C.free(unsafe.Pointer(pl))
			err := fmt.Errorf("%w: %w (shape %+v)", ErrLtUnsupported, blasErr(C.GoString(call), st), s)
			if c.ltBad == nil {
				c.ltBad = map[LtShape]error{}
			}
			c.ltBad[s] = err
			return err
		}
		if c.ltPlans == nil {
			c.ltPlans = map[LtShape]*ltPlan{}
		}
		c.ltPlans[s] = pl
	}
	var call *C.char
	st := C.shim_lt_run(pl, C.CUdeviceptr(a), C.CUdeviceptr(b), C.CUdeviceptr(d), C.CUdeviceptr(bias), C.CUdeviceptr(aux),
		C.CUdeviceptr(c.ltWS), C.size_t(ltWorkspace), &call)
	return blasErr(C.GoString(call), st)
}

// ltPlan is one planned cuBLASLt matmul (shim.h).
type ltPlan = C.lt_plan

func loadCUDA(names []string) (string, error) {
	return load(names, ErrNoDriver, func(p, m *C.char, n C.int) C.int { return C.shim_load_cuda(p, m, n) })
}

func cuErr(call string, r C.CUresult) error {
	if r == 0 {
		return nil
	}
	return &Error{Call: call, Code: int(r), Msg: C.GoString(C.shim_error_string(r))}
}

var blasStatus = map[int]string{
	1: "CUBLAS_STATUS_NOT_INITIALIZED", 3: "CUBLAS_STATUS_ALLOC_FAILED", 7: "CUBLAS_STATUS_INVALID_VALUE",
	8: "CUBLAS_STATUS_ARCH_MISMATCH", 11: "CUBLAS_STATUS_MAPPING_ERROR", 13: "CUBLAS_STATUS_EXECUTION_FAILED",
	14: "CUBLAS_STATUS_INTERNAL_ERROR", 15: "CUBLAS_STATUS_NOT_SUPPORTED", 16: "CUBLAS_STATUS_LICENSE_ERROR",
}

func blasErr(call string, s C.cublasStatus_t) error {
	if s == 0 {
		return nil
	}
	msg, ok := blasStatus[int(s)]
	if !ok {
		msg = "unknown cuBLAS status"
	}
	return &Error{Call: call, Code: int(s), Msg: msg}
}

// Module is a loaded PTX module; Function a kernel in it.
type (
	Module   struct{ h C.CUmodule }
	Function struct{ h C.CUfunction }
)

// LoadModule JIT-compiles NUL-terminated-or-not PTX text for the device.
func (c *Context) LoadModule(ptx []byte) (Module, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	img := C.CBytes(append(append([]byte(nil), ptx...), 0))
	defer C.free(img)
	var m C.CUmodule
	if r := C.shim_module_load(img, &m); r != 0 {
		return Module{}, cuErr("cuModuleLoadData", r)
	}
	return Module{m}, nil
}

// Function looks up a kernel by its (unmangled) name.
func (c *Context) Function(m Module, name string) (Function, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	var f C.CUfunction
	if r := C.shim_function(m.h, cn, &f); r != 0 {
		return Function{}, fmt.Errorf("%w (kernel %s)", cuErr("cuModuleGetFunction", r), name)
	}
	return Function{f}, nil
}

// Alloc returns bytes of uninitialised device memory.
func (c *Context) Alloc(bytes int) (Ptr, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var p C.CUdeviceptr
	if r := C.shim_alloc(&p, C.size_t(bytes)); r != 0 {
		return 0, fmt.Errorf("%w (%d bytes)", cuErr("cuMemAlloc_v2", r), bytes)
	}
	c.counted(Ptr(p), bytes)
	return Ptr(p), nil
}

// Free releases memory from Alloc.
func (c *Context) Free(p Ptr) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := cuErr("cuMemFree_v2", C.shim_free(C.CUdeviceptr(p))); err != nil {
		return err
	}
	c.counted(p, -1)
	return nil
}

// HtoD copies bytes from host memory src (which must not hold Go pointers) to dst.
func (c *Context) HtoD(dst Ptr, src unsafe.Pointer, bytes int) error {
	if bytes == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	err := cuErr("cuMemcpyHtoD_v2", C.shim_htod(C.CUdeviceptr(dst), src, C.size_t(bytes)))
	if err == nil {
		c.stageOff = 0 // a copy from pageable memory waits for the stream first
	}
	return err
}

// Upload copies bytes from host memory src (which must not hold Go pointers) to dst
// without waiting for the GPU: up to stageMax bytes go through a pinned staging buffer
// and cuMemcpyHtoDAsync on the null stream, ordered with the kernels queued before and
// after it, and src may be reused as soon as Upload returns. (A synchronous copy from
// pageable memory first waits for every queued kernel.) The staging buffer is reused
// after the next point where the host knows the stream is idle: a synchronous copy, a
// Sync, or a full buffer, which syncs first. Larger copies, and every copy when pinned
// memory cannot be had, are HtoD's.
func (c *Context) Upload(dst Ptr, src unsafe.Pointer, bytes int) error {
	if bytes == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if bytes <= stageMax && c.stage == nil && !c.noStage {
		var h unsafe.Pointer
		if C.shim_host_alloc(&h, stageBytes) != 0 {
			c.noStage = true
		} else {
			c.stage = h
		}
	}
	if bytes > stageMax || c.stage == nil {
		c.stageOff = 0 // the synchronous copy drains the stream
		return cuErr("cuMemcpyHtoD_v2", C.shim_htod(C.CUdeviceptr(dst), src, C.size_t(bytes)))
	}
	if c.stageOff+bytes > stageBytes {
		if err := cuErr("cuCtxSynchronize", C.shim_sync()); err != nil {
			return err
		}
		c.stageOff = 0
	}
	at := unsafe.Add(c.stage, c.stageOff)
	c.stageOff += (bytes + 255) &^ 255
	return cuErr("cuMemcpyHtoDAsync_v2", C.shim_htod_staged(C.CUdeviceptr(dst), src, C.size_t(bytes), at))
}

// DtoH copies bytes from src to host memory dst.
func (c *Context) DtoH(dst unsafe.Pointer, src Ptr, bytes int) error {
	if bytes == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	err := cuErr("cuMemcpyDtoH_v2", C.shim_dtoh(dst, C.CUdeviceptr(src), C.size_t(bytes)))
	if err == nil {
		c.stageOff = 0 // the copy waited for the stream: the staged uploads are done
	}
	return err
}

// DtoD copies bytes between device buffers.
func (c *Context) DtoD(dst, src Ptr, bytes int) error {
	if bytes == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return cuErr("cuMemcpyDtoD_v2", C.shim_dtod(C.CUdeviceptr(dst), C.CUdeviceptr(src), C.size_t(bytes)))
}

// Memset32 sets n 32-bit words at dst to v.
func (c *Context) Memset32(dst Ptr, v uint32, n int) error {
	if n == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return cuErr("cuMemsetD32_v2", C.shim_memset32(C.CUdeviceptr(dst), C.uint32_t(v), C.size_t(n)))
}

// Launch runs f on the null stream. Each argument occupies one 8-byte slot holding its
// value little-endian (a pointer, or an int32/float32 in the low 4 bytes); the driver
// reads as many bytes as the kernel parameter has.
func (c *Context) Launch(f Function, grid, block [3]uint32, shmem uint32, args []uint64) error {
	if len(args) > 32 {
		return fmt.Errorf("cudadrv: Launch with %d arguments (at most 32)", len(args))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var a [32]C.uint64_t
	for i, v := range args {
		a[i] = C.uint64_t(v)
	}
	r := C.shim_launch(f.h, C.uint(grid[0]), C.uint(grid[1]), C.uint(grid[2]), C.uint(block[0]), C.uint(block[1]), C.uint(block[2]), C.uint(shmem), C.int(len(args)), &a[0])
	return cuErr("cuLaunchKernel", r)
}

// Sync waits for all work on the context (cuCtxSynchronize) and reports any
// asynchronous kernel error.
func (c *Context) Sync() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := cuErr("cuCtxSynchronize", C.shim_sync())
	if err == nil {
		c.stageOff = 0
	}
	return err
}

// SetMathMode selects cuBLAS's math mode for SGEMM.
func (c *Context) SetMathMode(mode int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := blasErr("cublasSetMathMode", C.shim_cublas_math_mode(C.int(mode))); err != nil {
		return err
	}
	c.math = mode
	return nil
}

func op(t bool) C.int {
	if t {
		return 1 // CUBLAS_OP_T
	}
	return 0
}

// Sgemm is cublasSgemm_v2 (column-major).
func (c *Context) Sgemm(ta, tb bool, m, n, k int, alpha float32, a Ptr, lda int, b Ptr, ldb int, beta float32, cc Ptr, ldc int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return blasErr("cublasSgemm_v2", C.shim_sgemm(op(ta), op(tb), C.int(m), C.int(n), C.int(k), C.float(alpha),
		C.CUdeviceptr(a), C.int(lda), C.CUdeviceptr(b), C.int(ldb), C.float(beta), C.CUdeviceptr(cc), C.int(ldc)))
}

// SgemmStridedBatched is cublasSgemmStridedBatched (column-major).
func (c *Context) SgemmStridedBatched(ta, tb bool, m, n, k int, alpha float32, a Ptr, lda, sa int, b Ptr, ldb, sb int, beta float32, cc Ptr, ldc, sc, batch int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return blasErr("cublasSgemmStridedBatched", C.shim_sgemm_batched(op(ta), op(tb), C.int(m), C.int(n), C.int(k), C.float(alpha),
		C.CUdeviceptr(a), C.int(lda), C.longlong(sa), C.CUdeviceptr(b), C.int(ldb), C.longlong(sb), C.float(beta),
		C.CUdeviceptr(cc), C.int(ldc), C.longlong(sc), C.int(batch)))
}

// GemmStridedBatchedEx is cublasGemmStridedBatchedEx (column-major) with explicit data
// and compute types.
func (c *Context) GemmStridedBatchedEx(ta, tb bool, m, n, k int, alpha float32, a Ptr, atype, lda, sa int, b Ptr, btype, ldb, sb int, beta float32, cc Ptr, ctype, ldc, sc, batch, compute int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return blasErr("cublasGemmStridedBatchedEx", C.shim_gemm_batched_ex(op(ta), op(tb), C.int(m), C.int(n), C.int(k), C.float(alpha),
		C.CUdeviceptr(a), C.int(atype), C.int(lda), C.longlong(sa), C.CUdeviceptr(b), C.int(btype), C.int(ldb), C.longlong(sb), C.float(beta),
		C.CUdeviceptr(cc), C.int(ctype), C.int(ldc), C.longlong(sc), C.int(batch), C.int(compute)))
}

// GemmEx is cublasGemmEx (column-major) with explicit data and compute types.
func (c *Context) GemmEx(ta, tb bool, m, n, k int, alpha float32, a Ptr, atype, lda int, b Ptr, btype, ldb int, beta float32, cc Ptr, ctype, ldc, compute int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return blasErr("cublasGemmEx", C.shim_gemm_ex(op(ta), op(tb), C.int(m), C.int(n), C.int(k), C.float(alpha),
		C.CUdeviceptr(a), C.int(atype), C.int(lda), C.CUdeviceptr(b), C.int(btype), C.int(ldb), C.float(beta),
		C.CUdeviceptr(cc), C.int(ctype), C.int(ldc), C.int(compute)))
}
