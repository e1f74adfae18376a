#!/usr/bin/python3
"""Peer timings for scripts/bench-audio.sh (Debian's python3-torchaudio, flac, lame, sox).

  bench_audio_peers.py DIR RUNS

DIR holds bench16k.f32 (10 minutes of 16 kHz mono float32) and bench.{wav,flac,mp3}.
Prints one JSON object: per peer the median wall and CPU seconds over RUNS runs, plus the
max abs difference between torchaudio's whisper-80 log-mel and DIR/ours.npy if present.
"""
import json, os, resource, statistics, subprocess, sys, time

import numpy as np
import torch
import torchaudio

d, runs = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(1)
x = torch.from_numpy(np.fromfile(os.path.join(d, "bench16k.f32"), dtype="<f4").copy())

mel = torchaudio.transforms.MelSpectrogram(
    sample_rate=16000, n_fft=400, win_length=400, hop_length=160, n_mels=80, power=2.0,
    center=True, pad_mode="reflect", norm="slaney", mel_scale="slaney",
    window_fn=torch.hann_window)


def whisper80():
    # whisper/audio.py log_mel_spectrogram, with torchaudio's MelSpectrogram for the STFT
    # and filter bank (Slaney scale and norm, as librosa's filters that Whisper ships).
    spec = mel(x)[:, :-1]
    log_spec = torch.clamp(spec, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return (log_spec + 4.0) / 4.0


def timed(fn):
    walls, cpus = [], []
    out = None
    for _ in range(runs):
        c0 = time.process_time()
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t0)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(time.process_time() - c0 + (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime))
    return {"wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus)}, out


res = {"torch": torch.__version__, "torchaudio": torchaudio.__version__}
whisper80()  # warm up
res["torchaudio_whisper80"], y = timed(whisper80)
ours = os.path.join(d, "ours.npy")
if os.path.exists(ours):
    o = np.load(ours)
    res["ours_vs_torchaudio_max_abs"] = float(np.abs(o - y.numpy()).max())
    res["frames"] = [list(o.shape), list(y.shape)]


def cmd(*args):
    return lambda: subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


res["flac_decode"], _ = timed(cmd("flac", "-d", "-s", "-f", "-c", os.path.join(d, "bench.flac")))
res["lame_decode"], _ = timed(cmd("lame", "--quiet", "--decode", os.path.join(d, "bench.mp3"), "/dev/null"))
res["sox_wav_decode"], _ = timed(cmd("sox", os.path.join(d, "bench.wav"), "-t", "raw", "/dev/null"))
print(json.dumps(res))
