#!/usr/bin/python3
# Peer for BenchmarkGemmShapes (kernels/cpu): numpy's float32 matmul on the same shapes,
# median GFLOP/s of 50 runs. Run as /usr/bin/python3 (Debian's numpy). Debian's numpy
# calls whichever libblas.so.3 is installed: the reference BLAS (about 3.5 GFLOP/s here)
# unless `apt-get install libopenblas0-pthread` makes it OpenBLAS, the peer that counts.
# OPENBLAS_NUM_THREADS sets its threads.
import time
import numpy as np

shapes = [(64, 256, 1056, True, False), (256, 64, 1056, True, False), (1056, 256, 64, False, False),
          (1024, 256, 64, False, True), (1024, 64, 256, False, True), (256, 64, 1024, True, False)]
rng = np.random.default_rng(1)
for m, n, k, ta, tb in shapes:
    a = rng.standard_normal((k, m) if ta else (m, k), dtype=np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n), dtype=np.float32)
    A, B = (a.T if ta else a), (b.T if tb else b)
    c = np.empty((m, n), dtype=np.float32)
    np.matmul(A, B, out=c)
    ts = []
    for _ in range(50):
        t = time.perf_counter()
        np.matmul(A, B, out=c)
        ts.append(time.perf_counter() - t)
    med = sorted(ts)[len(ts) // 2]
    print(f"numpy {m}x{n}x{k}/ta={ta}/tb={tb}: {2 * m * n * k / med / 1e9:.1f} GFLOP/s")
