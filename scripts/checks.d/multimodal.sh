#!/usr/bin/env bash
# Interop check for immtrain multimodal / sample / eval: a tiny demo (120-sample shapes
# corpus, 6 steps), interrupted by SIGINT mid-way and resumed, then read back with
# independent tools: Python's hashlib checks every checkpoint against its .sha256 file, a
# standard-library safetensors parser reads the checkpoint as safetensors.torch.load_file
# would (header, offsets, F32 data, metadata with the loader state), the wave module reads
# the generated WAV files and zlib/struct the PNG sheet, json the captions and eval.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/immtrain" ./cmd/immtrain
run="$tmp/run"
args=(multimodal --demo --demo-samples 120 --demo-eval-n 4 --out "$run" --steps 6 --batch 8
  --ckpt-every 2 --eval-every 0 --sample-steps 1,2 --sample-n 2 --text-len 8 --device cpu)
# SIGINT once the first checkpoint exists: the run must save and exit 130.
"$tmp/immtrain" --quiet "${args[@]}" >/dev/null 2>"$tmp/err1" &
pid=$!
for _ in $(seq 600); do
  [ -e "$run/ckpt/step-000002.safetensors.sha256" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.5
done
kill -INT "$pid" 2>/dev/null || true
set +e; wait "$pid"; code=$?; set -e
if [ "$code" != 130 ] && [ "$code" != 0 ]; then
  echo "multimodal check: interrupted run exited $code"; cat "$tmp/err1"; exit 1
fi
"$tmp/immtrain" --quiet "${args[@]}" --resume >"$tmp/out" 2>"$tmp/err2" || { cat "$tmp/err2"; exit 1; }
"$tmp/immtrain" --quiet sample --run "$run" --given image --steps 1 --n 2 --out "$tmp/given" --device cpu >/dev/null
/usr/bin/python3 - "$run" "$tmp/given" <<'PY'
import hashlib, json, os, struct, sys, wave, zlib, glob
run, given = sys.argv[1], sys.argv[2]
ckpts = sorted(glob.glob(os.path.join(run, "ckpt", "step-*.safetensors")))
assert ckpts and ckpts[-1].endswith("step-000006.safetensors"), ckpts
for p in ckpts:
    want = open(p + ".sha256").read().split()[0]
    assert hashlib.sha256(open(p, "rb").read()).hexdigest() == want, p
raw = open(ckpts[-1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
meta = header.pop("__metadata__")
assert meta["format"] == "immkit-imm-v1" and meta["step"] == "6", meta
state = json.loads(meta["loader_state"])
assert state["global_batch"] == 8 and state["split"] == "train", state
assert "multimodal" in json.loads(meta["model_config"])
body, end = raw[8 + n:], 0
for name, t in header.items():
    assert t["dtype"] == "F32", (name, t)
    a, b = t["data_offsets"]
    cnt = 1
    for d in t["shape"]:
        cnt *= d
    assert b - a == 4 * cnt, name
    vals = struct.unpack("<%df" % cnt, body[a:b])
    assert all(v == v and abs(v) != float("inf") for v in vals), name
    end = max(end, b)
assert end == len(body)
metrics = [json.loads(l) for l in open(os.path.join(run, "metrics.jsonl"))]
assert [m["step"] for m in metrics] == [1, 2, 3, 4, 5, 6], [m["step"] for m in metrics]
def png_size(p):
    b = open(p, "rb").read()
    assert b[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", b[16:24])
    idat = b"".join(b[i + 8:i + 8 + struct.unpack(">I", b[i:i + 4])[0]] for i in
                    [j - 4 for j in range(len(b)) if b[j:j + 4] == b"IDAT"])
    zlib.decompress(idat)
    return w, h
for sheet in (os.path.join(run, "samples", "step-000006"), given):
    w, h = png_size(os.path.join(sheet, "grid.png"))
    assert w > 20 and h > 20, (w, h)
    caps = json.load(open(os.path.join(sheet, "captions.json")))
    assert all(isinstance(c, str) for v in caps.values() for c in v)
    for p in glob.glob(os.path.join(sheet, "steps-*", "*.wav")):
        with wave.open(p) as wv:
            assert wv.getnchannels() == 1 and wv.getsampwidth() == 2 and wv.getnframes() > 1000, p
ev = json.load(open(os.path.join(run, "eval.json")))
assert ev["step"] == 6 and set(ev["shapes"]) == {"1", "2", "real"}, ev.keys()
print("multimodal check: interrupt + resume, checkpoint hashes and safetensors, WAV, PNG, captions, eval.json read back OK")
PY
