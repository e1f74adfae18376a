// Package cuda implements kernels.Device[float32] on an NVIDIA GPU.
//
// The GPU is reached through internal/cudadrv (dlopen of libcuda.so.1 and libcublas, no
// link-time dependency): the same binary runs where no driver is present, and New then
// returns an error that names the library and the directories searched. Kernels are CUDA
// C in kernels.cu, compiled by `go generate` (nvcc -arch=compute_80 -ptx) to kernels.ptx,
// which is committed and embedded; the driver JIT-compiles it for the GPU in hand. GEMMs
// go to cuBLAS (SGEMM in FP32, or TF32 tensor cores with Options.TF32), and to cuBLASLt
// when a bias or GELU rides in the epilogue (epilogue.go). The attention core is batched
// GEMMs, or with IMMKIT_CUDA_ATTN=flash fused bf16 kernels (attention.go).
//
// Buffers are device memory: a Buf of n elements is n float32 at consecutive addresses
// from its device pointer. Ops are queued on the null stream and run asynchronously;
// Read, Sum, SumSquares and LaplaceMMD's results synchronise when copied back. A failing
// driver call inside an op panics with a *cudadrv.Error that names the call (the
// kernels.Device ops have no error results; a GPU fault is not recoverable).
package cuda

//go:generate sh -c "nvcc -arch=compute_80 -ptx -O3 -o kernels.ptx kernels.cu"
