#!/usr/bin/env bash
# Audio encoder benchmark (docs/benchmarks.md, "Audio encoders"):
#  - whisper-80 log-mel of 10 minutes of 16 kHz audio, one thread: ours (go test -bench,
#    -cpu 1) against torchaudio's MelSpectrogram with Whisper's settings
#    (torch.set_num_threads(1)) on the same samples, in the same run;
#  - wav/flac/mp3 decode throughput against sox, flac -d and lame --decode.
# Installs python3-torchaudio (large) and the codec tools if missing.
# Environment: RUNS (default 5), BENCH_DIR (default a temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-5}"
need=()
for p in python3-numpy python3-torchaudio sox flac lame; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${need[@]}"
fi
dir="${BENCH_DIR:-$(mktemp -d)}"
mkdir -p "$dir"
# 10 minutes at 16 kHz (tones and pink noise) for the log-mel; DECODE_SECONDS (default 120)
# of 44.1 kHz stereo (a sweep and pink noise) for the decoders, as wav, flac -5, mp3 192k.
DECODE_SECONDS="${DECODE_SECONDS:-120}"
export DECODE_SECONDS
sox -n -r 16000 -b 16 -c 1 "$dir/bench16k.wav" synth 600 sine 220 sine 1800 pinknoise remix - norm -3
sox "$dir/bench16k.wav" -t f32 -e floating-point "$dir/bench16k.f32"
sox -n -r 44100 -b 16 -c 2 "$dir/bench.wav" synth "$DECODE_SECONDS" sine 220-3000 pinknoise norm -3
flac -s -f -5 -o "$dir/bench.flac" "$dir/bench.wav"
lame --quiet -b 192 "$dir/bench.wav" "$dir/bench.mp3"

export IMMKIT_AUDIO_BENCH_DIR="$dir"
echo "== go bench (GOMAXPROCS=1, -count $RUNS)"
GOMAXPROCS=1 go test ./encoders/audio -run '^$' -bench 'Whisper80TenMinutes' -cpu 1 -count "$RUNS" -benchtime 3x | tee "$dir/go.txt"
GOMAXPROCS=1 go test ./encoders/audio -run '^$' -bench 'DecodeWAV|DecodeFLAC|DecodeMP3' -cpu 1 -count "$RUNS" -benchtime 1x | tee -a "$dir/go.txt"
GOMAXPROCS=1 go test ./encoders/audio -run '^$' -bench 'FFT400' -cpu 1 -count "$RUNS" | tee -a "$dir/go.txt"
# our output, for the difference from torchaudio (IMMDATA may name a prebuilt binary)
if [ -n "${IMMDATA:-}" ]; then immdata=("$IMMDATA"); else immdata=(go run ./cmd/immdata); fi
"${immdata[@]}" audio mel "$dir/bench16k.wav" --preset whisper-80 -o "$dir/ours.npy" >/dev/null
echo "== peers (RUNS=$RUNS)"
/usr/bin/python3 scripts/bench_audio_peers.py "$dir" "$RUNS" | tee "$dir/peers.json"
/usr/bin/python3 - "$dir" <<'PY'
import json, re, statistics, sys, os
d = sys.argv[1]
go = {}
for line in open(os.path.join(d, "go.txt")):
    m = re.match(r"Benchmark(\S+)\s+\d+\s+([\d.e+]+) ns/op.*?(?:\s([\d.e+]+) cpu-ns/op)?$", line.strip())
    if m:
        go.setdefault(m.group(1), []).append((float(m.group(2)) / 1e9, float(m.group(3) or 0) / 1e9))
peers = json.load(open(os.path.join(d, "peers.json")))
med = lambda v, i: statistics.median(x[i] for x in v)
def row(name, ours, peer_name, peer):
    # speed-up = peer time / our time (> 1: we are faster)
    print(f"| {name} | {med(ours,0):.3f} s / {med(ours,1):.3f} s | {peer_name} {peer['wall_s']:.3f} s / {peer['cpu_s']:.3f} s "
          f"| {peer['wall_s']/med(ours,0):.2f}x / {peer['cpu_s']/med(ours,1):.2f}x |")
print()
print("| task | ours wall / cpu (median) | peer wall / cpu (median) | speed-up wall / cpu |")
print("|---|---|---|---|")
row("whisper-80 log-mel, 10 min 16 kHz, 1 thread", go["Whisper80TenMinutes"], "torchaudio", peers["torchaudio_whisper80"])
secs = int(os.environ["DECODE_SECONDS"])
row(f"decode wav {secs} s 44.1k stereo", go["DecodeWAV"], "sox", peers["sox_wav_decode"])
row(f"decode flac {secs} s 44.1k stereo", go["DecodeFLAC"], "flac -d", peers["flac_decode"])
row(f"decode mp3 {secs} s 44.1k stereo 192k", go["DecodeMP3"], "lame --decode", peers["lame_decode"])
pcm = secs*44100*2*2/1e6
print()
for k, p in (("DecodeWAV", "sox_wav_decode"), ("DecodeFLAC", "flac_decode"), ("DecodeMP3", "lame_decode")):
    print(f"{k}: ours {pcm/med(go[k],0):.0f} MB/s wall ({pcm/med(go[k],1):.0f} MB/s cpu) of s16 PCM; peer {pcm/peers[p]['wall_s']:.0f} MB/s wall ({pcm/peers[p]['cpu_s']:.0f} MB/s cpu)")
if "ours_vs_torchaudio_max_abs" in peers:
    print(f"whisper-80 ours vs torchaudio (float32) max abs difference {peers['ours_vs_torchaudio_max_abs']:.2e}, shapes {peers['frames']}")
print(f"FFT400: ours {med(go['RealFFT400'],0)*1e9:.0f} ns, gonum {med(go['GonumFFT400'],0)*1e9:.0f} ns")
PY
