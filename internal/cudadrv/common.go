// Package cudadrv reaches an NVIDIA GPU without link-time dependencies: a small cgo shim
// dlopens libcuda.so.1, libcublas.so.{13,12,11} and (optional) libcublasLt and calls the
// driver API, cuBLAS and cuBLASLt through function pointers, with our own typedefs, so no CUDA headers or libraries are
// needed to build. It is the only package of immkit with import "C" for CUDA.
//
// One process has at most one Context: the primary context of one device. Every shim
// function makes that context current on the OS thread it runs on before calling the
// driver (a cgo call never changes thread while it runs), so callers may use a Context
// from any goroutine without runtime.LockOSThread; calls are serialised by a mutex.
// Every call's status is checked and becomes an *Error naming the call.
package cudadrv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"unsafe"
)

// Error is a failed driver or cuBLAS call.
type Error struct {
	Call string // the API function, e.g. "cuMemAlloc_v2"
	Code int    // its CUresult or cublasStatus_t
	Msg  string // the driver's description
}

func (e *Error) Error() string {
	return fmt.Sprintf("cudadrv: %s: error %d (%s)", e.Call, e.Code, e.Msg)
}

// ErrNoDriver is wrapped by Open's error when libcuda.so.1 cannot be loaded.
var ErrNoDriver = errors.New("cudadrv: no CUDA driver")

// ErrNoDevice is wrapped by Open's error when the driver loads but finds no usable GPU.
var ErrNoDevice = errors.New("cudadrv: no usable CUDA device")

// ErrNoCUBLAS is wrapped by Open's error when no libcublas.so can be loaded.
var ErrNoCUBLAS = errors.New("cudadrv: no cuBLAS library")

// ErrNoCUBLASLt is wrapped by Context.Lt's error when no libcublasLt.so can be loaded
// (the context still works: the fused GEMM epilogues are then separate ops).
var ErrNoCUBLASLt = errors.New("cudadrv: no cuBLASLt library")

// ErrLtUnsupported is wrapped by LtMatmul's error when cuBLASLt cannot plan the matmul
// (no algorithm for the shape, epilogue and alignments): the caller runs separate ops.
var ErrLtUnsupported = errors.New("cudadrv: cuBLASLt cannot run this matmul")

// DriverNames, CUBLASNames and LtNames are the sonames tried, in order.
var (
	DriverNames = []string{"libcuda.so.1"}
	CUBLASNames = []string{"libcublas.so.13", "libcublas.so.12", "libcublas.so.11"}
	LtNames     = []string{"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so.11"}
)

// SearchDirs returns the directories searched for the libraries, in order: the loader
// path (written "(loader path)": LD_LIBRARY_PATH, ld.so.cache) comes second.
func SearchDirs() []string {
	var dirs []string
	if d := os.Getenv("IMMKIT_CUDA_LIB_DIR"); d != "" {
		dirs = append(dirs, d)
	}
	return append(dirs, "(loader path)", "/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib")
}

func candidates(names []string) []string {
	var out []string
	for _, dir := range SearchDirs() {
		for _, n := range names {
			if dir == "(loader path)" {
				out = append(out, n)
			} else {
				out = append(out, filepath.Join(dir, n))
			}
		}
	}
	return out
}

// Context is the primary context of one GPU with a cuBLAS handle on the null stream.
type Context struct {
	mu         sync.Mutex
	Name       string // the device name, e.g. "NVIDIA H200"
	TotalMem   int64  // bytes of device memory
	Driver     int    // driver API version, e.g. 13000
	Capability int    // compute capability * 10, e.g. 90
	DriverLib  string // path or soname of the loaded libcuda
	CUBLASLib  string // path or soname of the loaded libcublas
	LtLib      string // path or soname of the loaded libcublasLt ("" without it)

	math    int   // current cuBLAS math mode
	ltErr   error // why cuBLASLt is unavailable (nil when it loaded)
	ltWS    Ptr   // cuBLASLt workspace
	ltPlans map[LtShape]*ltPlan
	ltBad   map[LtShape]error // shapes cuBLASLt has no algorithm for

	sizes       map[Ptr]int    // bytes of each live Alloc
	inUse, peak int64          // device bytes allocated now, and the most since ResetPeak
	stage       unsafe.Pointer // pinned staging buffer of Upload (stageBytes)
	stageOff    int            // bytes of it in use by queued copies
	noStage     bool           // pinned memory was refused: Upload copies synchronously
}

// Upload's pinned staging buffer, and the largest copy it takes.
const (
	stageBytes = 16 << 20
	stageMax   = 4 << 20
)

// MemStats returns the device memory allocated through Alloc and not freed, and the
// most allocated at any time since the context opened or ResetPeak (bytes; the
// driver's and cuBLAS's own allocations are not counted).
func (c *Context) MemStats() (inUse, peak int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inUse, c.peak
}

// ResetPeak sets the peak of MemStats to the memory in use now.
func (c *Context) ResetPeak() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.peak = c.inUse
}

// counted records an allocation (bytes > 0) or a free (bytes < 0) of p; c.mu is held.
func (c *Context) counted(p Ptr, bytes int) {
	if c.sizes == nil {
		c.sizes = map[Ptr]int{}
	}
	if bytes < 0 {
		bytes = -c.sizes[p]
		delete(c.sizes, p)
	} else {
		c.sizes[p] = bytes
	}
	c.inUse += int64(bytes)
	c.peak = max(c.peak, c.inUse)
}

// Lt reports whether cuBLASLt is loaded, and if not, why.
func (c *Context) Lt() error { return c.ltErr }

// LtShape is one cuBLASLt matmul (column-major, as cublasLtMatmul): D [M, N] =
// op(A) op(B) with A, B of type ABType (R32F or R16BF), D of type DType (R32F, or R16BF
// with bf16 A and B) with leading dimension LDD, compute type Compute, and Epilogue (Lt*
// below); AuxLD is the leading dimension of the epilogue's auxiliary matrix (0 without
// one). The bias vector and the auxiliary matrix have D's type, as cuBLASLt defaults. Align* are the byte
// alignments (powers of two, at most 256) the operands' addresses are guaranteed to
// have: the algorithm is chosen for them.
type LtShape struct {
	TA, TB                 bool
	M, N, K, LDA, LDB, LDD int
	ABType, DType, Compute int
	Epilogue, AuxLD        int
	AlignA, AlignB, AlignD int
}

// cuBLASLt epilogues (cublasLtEpilogue_t).
const (
	LtDefault     = 1   // D = AB
	LtBias        = 4   // D = AB + bias (bias per row of D)
	LtGeluAux     = 160 // aux = AB, D = gelu(aux) (the tanh form)
	LtGeluAuxBias = 164 // aux = AB + bias, D = gelu(aux)
	LtDGelu       = 192 // D = AB * gelu'(aux)
)

// Align is the largest power of two, up to 256, that divides the address p: the
// alignment to put in an LtShape.
func Align(p Ptr) int {
	a := 1
	for a < 256 && p%Ptr(2*a) == 0 {
		a *= 2
	}
	return a
}

// MathMode is the cuBLAS math mode last set.
func (c *Context) MathMode() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.math
}

var (
	openOnce sync.Once
	openCtx  *Context
	openErr  error
)

// Open loads the libraries and returns the context of device 0. Later calls return the
// same Context (or the same error).
func Open() (*Context, error) {
	openOnce.Do(func() { openCtx, openErr = open() })
	return openCtx, openErr
}

// Ptr is a device address (CUdeviceptr).
type Ptr uint64

// Math modes of cublasSetMathMode.
const (
	MathDefault = 0 // CUBLAS_DEFAULT_MATH: FP32 GEMMs in FP32
	MathTF32    = 3 // CUBLAS_TF32_TENSOR_OP_MATH
)

// Data and compute types of cublasGemmEx.
const (
	R32F        = 0  // CUDA_R_32F
	R16BF       = 14 // CUDA_R_16BF
	Compute32F  = 68 // CUBLAS_COMPUTE_32F
	Compute32FT = 77 // CUBLAS_COMPUTE_32F_FAST_TF32 (74 is _FAST_16F)
)
