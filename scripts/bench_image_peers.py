#!/usr/bin/python3
"""Peers of BenchmarkDecodeCropResize64: decode a JPEG, center-crop and resize to 64x64.

  pillow: Image.open + draft (DCT-domain scaling, libjpeg-turbo) + resize(LANCZOS, box=crop)
  opencv: cv2.imdecode + center crop + cv2.resize(INTER_AREA), as img2dataset does

Single-threaded. Files are read into memory first; each library runs warm for at least
--seconds. Prints one JSON line per library: images, wall seconds, process CPU seconds.

usage: bench_image_peers.py DIR [--size 64] [--seconds 3]
"""
import argparse
import glob
import io
import json
import math
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

cv2.setNumThreads(1)


def center_box(w, h, size):
    cw = min(w, h)
    x0, y0 = (w - cw) // 2, (h - cw) // 2
    return x0, y0, x0 + cw, y0 + cw


def pillow(data, size):
    im = Image.open(io.BytesIO(data))
    w, h = im.size
    s = max(size / w, size / h)
    im.draft("RGB", (math.ceil(w * s), math.ceil(h * s)))
    im = im.convert("RGB")
    return im.resize((size, size), Image.LANCZOS, box=center_box(im.size[0], im.size[1], size))


def opencv(data, size):
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    h, w = img.shape[:2]
    x0, y0, x1, y1 = center_box(w, h, size)
    return cv2.resize(img[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=3.0)
    a = ap.parse_args()
    files = [open(p, "rb").read() for p in sorted(glob.glob(os.path.join(a.dir, "*.jpg")))]
    if not files:
        raise SystemExit("no .jpg in " + a.dir)
    for name, fn in (("pillow", pillow), ("opencv", opencv)):
        for d in files:  # warm-up pass
            fn(d, a.size)
        n = 0
        w0, c0 = time.perf_counter(), time.process_time()
        while True:
            for d in files:
                fn(d, a.size)
            n += len(files)
            if time.perf_counter() - w0 >= a.seconds:
                break
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        print(json.dumps({"lib": name, "images": n, "wall_s": wall, "cpu_s": cpu,
                          "version": Image.__version__ if name == "pillow" else cv2.__version__}), flush=True)


main()
