#!/usr/bin/env bash
# Interop check for imm: run a tiny `immtrain toy`, then read its outputs with independent
# tools: numpy loads the .npy samples and recomputes the energy distance reported in
# summary.json; a standard-library parser reads the safetensors checkpoint (header JSON,
# offsets, F32 little-endian data) as safetensors.torch.load_file would.
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/immtrain" ./cmd/immtrain
"$tmp/immtrain" --quiet toy --dataset moons --out "$tmp/run" --steps 40 --width 16 --depth 1 \
  --batch 64 --eval-samples 400 --imm-steps 1,2 --fm-steps 1,8 >/dev/null
/usr/bin/python3 - "$tmp/run" <<'PY'
import json, struct, sys, os
import numpy as np
run = sys.argv[1]
summ = json.load(open(os.path.join(run, "summary.json")))
data = np.load(os.path.join(run, "data.npy")).astype(np.float64)
assert data.shape == (400, 2), data.shape
def ed(x, y):
    d = lambda a, b: np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    n, m = len(x), len(y)
    return d(x, y).mean() - 0.5 * d(x, x).sum() / (n * (n - 1)) - 0.5 * d(y, y).sum() / (m * (m - 1))
for obj, steps in (("imm", (1, 2)), ("fm", (1, 8))):
    for s in steps:
        x = np.load(os.path.join(run, f"samples_{obj}_{s}.npy")).astype(np.float64)
        assert x.shape == (400, 2) and np.isfinite(x).all()
        want = summ["results"][obj]["energy_distance"][str(s)]
        got = ed(x, data)
        assert abs(got - want) <= 1e-9 * max(1.0, abs(want)), (obj, s, got, want)
raw = open(os.path.join(run, "imm.safetensors"), "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
meta = header.pop("__metadata__")
assert meta["format"] == "immkit-imm-v1" and meta["step"] == "40", meta
body = raw[8 + n:]
end = 0
for name, t in header.items():
    assert t["dtype"] == "F32", (name, t)
    a, b = t["data_offsets"]
    arr = np.frombuffer(body[a:b], dtype="<f4").reshape(t["shape"])
    assert np.isfinite(arr).all(), name
    end = max(end, b)
assert end == len(body), (end, len(body))
for k in ("model.out.weight", "ema.out.weight", "adam_m.out.weight", "adam_v.out.weight"):
    assert header[k]["shape"] == [2, 16], header[k]
json.loads(meta["imm_config"]); json.loads(meta["train_config"])
print("imm check: npy, energy distance and safetensors checkpoint read back OK")
PY
