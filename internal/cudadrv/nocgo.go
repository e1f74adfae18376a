//go:build !cgo

package cudadrv

import (
	"errors"
	"fmt"
	"unsafe"
)

var errNoCgo = errors.New("cudadrv: built without cgo (CGO_ENABLED=0), CUDA is unavailable")

// Module and Function are empty without cgo.
type (
	Module   struct{}
	Function struct{}
)

// ltPlan is empty without cgo.
type ltPlan struct{}

func open() (*Context, error) { return nil, fmt.Errorf("%w: %w", ErrNoDriver, errNoCgo) }

func loadCUDA(names []string) (string, error) {
	return "", fmt.Errorf("%w: cannot load %v (searched %v): %w", ErrNoDriver, names, SearchDirs(), errNoCgo)
}

// LoadModule fails without cgo.
func (c *Context) LoadModule(ptx []byte) (Module, error) { return Module{}, errNoCgo }

// Function fails without cgo.
func (c *Context) Function(m Module, name string) (Function, error) { return Function{}, errNoCgo }

// Alloc fails without cgo.
func (c *Context) Alloc(bytes int) (Ptr, error) { return 0, errNoCgo }

// Free fails without cgo.
func (c *Context) Free(p Ptr) error { return errNoCgo }

// HtoD fails without cgo.
func (c *Context) HtoD(dst Ptr, src unsafe.Pointer, bytes int) error { return errNoCgo }

// Upload fails without cgo.
func (c *Context) Upload(dst Ptr, src unsafe.Pointer, bytes int) error { return errNoCgo }

// DtoH fails without cgo.
func (c *Context) DtoH(dst unsafe.Pointer, src Ptr, bytes int) error { return errNoCgo }

// DtoD fails without cgo.
func (c *Context) DtoD(dst, src Ptr, bytes int) error { return errNoCgo }

// Memset32 fails without cgo.
func (c *Context) Memset32(dst Ptr, v uint32, n int) error { return errNoCgo }

// Launch fails without cgo.
func (c *Context) Launch(f Function, grid, block [3]uint32, shmem uint32, args []uint64) error {
	return errNoCgo
}

// Sync fails without cgo.
func (c *Context) Sync() error { return errNoCgo }

// SetMathMode fails without cgo.
func (c *Context) SetMathMode(mode int) error { return errNoCgo }

// Sgemm fails without cgo.
func (c *Context) Sgemm(ta, tb bool, m, n, k int, alpha float32, a Ptr, lda int, b Ptr, ldb int, beta float32, cc Ptr, ldc int) error {
	return errNoCgo
}

// SgemmStridedBatched fails without cgo.
func (c *Context) SgemmStridedBatched(ta, tb bool, m, n, k int, alpha float32, a Ptr, lda, sa int, b Ptr, ldb, sb int, beta float32, cc Ptr, ldc, sc, batch int) error {
	return errNoCgo
}

// GemmStridedBatchedEx fails without cgo.
func (c *Context) GemmStridedBatchedEx(ta, tb bool, m, n, k int, alpha float32, a Ptr, atype, lda, sa int, b Ptr, btype, ldb, sb int, beta float32, cc Ptr, ctype, ldc, sc, batch, compute int) error {
	return errNoCgo
}

// GemmEx fails without cgo.
func (c *Context) GemmEx(ta, tb bool, m, n, k int, alpha float32, a Ptr, atype, lda int, b Ptr, btype, ldb int, beta float32, cc Ptr, ctype, ldc, compute int) error {
	return errNoCgo
}

// LtMatmul fails without cgo.
func (c *Context) LtMatmul(s LtShape, a, b, d, bias, aux Ptr) error { return errNoCgo }
