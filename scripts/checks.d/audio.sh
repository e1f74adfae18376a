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
echo "audio check: ok"
