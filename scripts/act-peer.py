#!/usr/bin/python3
# Peer for BenchmarkActivate32 (kernels/cpu, one worker): numpy's float32 SiLU, GELU-tanh,
# their gradients and a row softmax written from their formulas, on the benchmark's input
# (65536 normal values times 3; softmax over rows of 256), with the outputs preallocated.
# Median ns per call of 200 runs. numpy's elementwise ops run on one thread. Run as
# /usr/bin/python3 (Debian's numpy).
import time
import numpy as np

n = 1 << 16
x = (np.random.default_rng(1).standard_normal(n) * 3).astype(np.float32)
dy = x.copy()
c, k = np.float32(np.sqrt(2 / np.pi)), np.float32(0.044715)
one, half, two, three = np.float32(1), np.float32(0.5), np.float32(2), np.float32(3)
y, t = np.empty_like(x), np.empty_like(x)


def silu():
    global t, y  # updated in place
    np.negative(x, out=t); np.exp(t, out=t); t += one; np.divide(x, t, out=y)


def silu_grad():
    global t, y  # updated in place
    np.negative(x, out=t); np.exp(t, out=t); t += one; np.reciprocal(t, out=t)  # s
    np.subtract(one, t, out=y); y *= x; y += one; y *= t; y *= dy


def gelu():
    global t, y  # updated in place
    np.multiply(x, x, out=t); t *= x; t *= k; t += x; t *= c; np.tanh(t, out=t); t += one; t *= half; np.multiply(x, t, out=y)


def gelu_grad():
    global t, y  # updated in place
    np.multiply(x, x, out=t); t *= x; t *= k; t += x; t *= c; np.tanh(t, out=t)  # tanh u
    u = np.multiply(x, x); u *= three * k; u += one; u *= c  # du/dx
    s = one - t * t; s *= u; s *= x; s *= half; t += one; t *= half; t += s; np.multiply(t, dy, out=y)


def softmax():
    global t, y  # updated in place
    r, o = x.reshape(-1, 256), y.reshape(-1, 256)
    np.subtract(r, r.max(axis=1, keepdims=True), out=o); np.exp(o, out=o); o /= o.sum(axis=1, keepdims=True)


for name, f in [("silu", silu), ("silu/grad", silu_grad), ("gelu-tanh", gelu), ("gelu-tanh/grad", gelu_grad), ("softmax/256", softmax)]:
    f()
    ts = []
    for _ in range(200):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    print(f"numpy {name}: {sorted(ts)[len(ts) // 2] * 1e9:.0f} ns/op")
