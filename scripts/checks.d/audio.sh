#!/usr/bin/env bash
# Interop check for `immdata audio mel`: espeak-ng speech resampled to 16 kHz by sox, as
# WAV and as FLAC (lossless, so the same samples), through the CLI; the .npy outputs are
# read by numpy and compared with the independent float64 reference of Whisper's
# log_mel_spectrogram (encoders/audio/testdata/mel_ref.py) on the samples sox decodes.
set -euo pipefail
cd "$(dirname "$0")/../.."
for t in espeak-ng sox flac /usr/bin/python3; do
  command -v "$t" >/dev/null || { echo "audio check: $t missing; run scripts/deps.d/audio.sh" >&2; exit 1; }
done
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# IMMDATA may name a prebuilt binary.
if [ -n "${IMMDATA:-}" ]; then cp "$IMMDATA" "$tmp/immdata"; else go build -o "$tmp/immdata" ./cmd/immdata; fi
espeak-ng -w "$tmp/speech.wav" "Whisper parity check. Forty two bright sparks flew over the quay."
sox "$tmp/speech.wav" -r 16000 -b 16 "$tmp/s16.wav"
sox "$tmp/s16.wav" -t f32 -e floating-point "$tmp/s16.f32"
flac -s -o "$tmp/s16.flac" "$tmp/s16.wav"
for n in 80 128; do
  "$tmp/immdata" -q audio mel "$tmp/s16.wav" --preset "whisper-$n" -o "$tmp/wav$n.npy" >/dev/null
  "$tmp/immdata" -q audio mel "$tmp/s16.flac" --preset "whisper-$n" -o "$tmp/flac$n.npy" >/dev/null
  /usr/bin/python3 encoders/audio/testdata/mel_ref.py "$tmp/s16.f32" "$tmp/ref$n.npy" "$tmp/filt$n.npy" --n-mels "$n"
  /usr/bin/python3 - "$tmp" "$n" <<'PY'
import sys, numpy as np
d, n = sys.argv[1], sys.argv[2]
ref = np.load(f"{d}/ref{n}.npy")
for src in ("wav", "flac"):
    got = np.load(f"{d}/{src}{n}.npy")
    assert got.dtype == np.float32, got.dtype
    assert got.shape == ref.shape, (src, got.shape, ref.shape)
    err = float(np.abs(got.astype(np.float64) - ref).max())
    print(f"audio check: whisper-{n} {src} {got.shape} max abs error {err:.2e}")
    assert err < 1e-4, err
PY
done
# Griffin-Lim: a sox sine through mel and back; numpy finds the pitch of our WAV.
sox -n -r 16000 -b 16 "$tmp/sine.wav" synth 1.5 sine 700 vol 0.5
"$tmp/immdata" -q audio mel "$tmp/sine.wav" -o "$tmp/sine.npy" >/dev/null
"$tmp/immdata" -q audio invert "$tmp/sine.npy" -o "$tmp/sine_inv.wav" >/dev/null
sox "$tmp/sine_inv.wav" -t f32 -e floating-point "$tmp/sine_inv.f32"
/usr/bin/python3 - "$tmp/sine_inv.f32" <<'PY'
import sys, numpy as np
x = np.fromfile(sys.argv[1], dtype="<f4").astype(np.float64)
X = np.abs(np.fft.rfft(x * np.hanning(len(x))))
f = np.argmax(X) * 16000 / len(x)
print(f"audio check: Griffin-Lim of a 700 Hz sine peaks at {f:.1f} Hz")
assert abs(f - 700) < 14, f
PY
# VQ codebook: safetensors parsed by numpy, sha256 as printed.
line="$("$tmp/immdata" -q audio vq-fit "$tmp/s16.wav" --k 8 --stack 2 --stages 2 -o "$tmp/cb.safetensors")"
want="$(sha256sum "$tmp/cb.safetensors" | cut -d' ' -f1)"
case "$line" in *"sha256 $want"*) ;; *) echo "audio check: vq-fit printed '$line', file sha256 $want" >&2; exit 1 ;; esac
/usr/bin/python3 - "$tmp/cb.safetensors" <<'PY'
import sys, json, struct, numpy as np
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
for s in ("0", "1"):
    e = h["codebook." + s]
    a = np.frombuffer(b[8 + n + e["data_offsets"][0]:8 + n + e["data_offsets"][1]], dtype="<f4").reshape(e["shape"])
    assert a.shape == (8, 160) and np.isfinite(a).all(), a.shape
print("audio check: vq codebook", h["__metadata__"])
PY
echo "audio check: ok"
