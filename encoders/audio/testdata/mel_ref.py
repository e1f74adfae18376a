#!/usr/bin/python3
"""Independent float64 numpy reference for encoders/audio's mel spectrograms.

It implements OpenAI Whisper's log_mel_spectrogram (whisper/audio.py) and the general
librosa/torchaudio options from their definitions, with numpy only (no code shared with
the Go package):

  filters: librosa.filters.mel (mel_frequencies, triangles from ramps, slaney enorm)
  stft:    np.pad(reflect|constant), periodic Hann (centred if win_length < n_fft),
           frames by stride, np.fft.rfft, |X|**power, Whisper drops the last frame
  log:     whisper: log10(max(x,1e-10)), max(x, max-8), (x+4)/4
           db: 10*log10(max(x,amin)) [max(x, max-top_db)], ln: log(max(x,amin)), none

Usage: mel_ref.py IN.f32 OUT_MEL.npy OUT_FILTERS.npy [--sr 16000 --n-fft 400 ...]
IN.f32 is raw little-endian float32 mono samples. Outputs are float64 .npy files:
the spectrogram (n_mels, frames) and the filter bank (n_mels, n_fft//2+1).
"""
import argparse
import numpy as np


def hz_to_mel(f, htk):
    f = np.asanyarray(f, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + f / 700.0)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(f >= min_log_hz,
                    min_log_mel + np.log(np.maximum(f, 1e-300) / min_log_hz) / logstep, mels)


def mel_to_hz(m, htk):
    m = np.asanyarray(m, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    f_sp = 200.0 / 3
    freqs = f_sp * m
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), freqs)


def mel_filters(sr, n_fft, n_mels, fmin, fmax, htk, norm):
    fftfreqs = np.fft.rfftfreq(n_fft, d=1.0 / sr)
    mel_pts = np.linspace(hz_to_mel(fmin, htk), hz_to_mel(fmax, htk), n_mels + 2)
    mel_f = mel_to_hz(mel_pts, htk)
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fftfreqs[None, :]
    weights = np.zeros((n_mels, len(fftfreqs)))
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0.0, np.minimum(lower, upper))
    if norm == "slaney":
        enorm = 2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels])
        weights *= enorm[:, None]
    return weights


def spectrogram(x, a):
    n_fft, hop = a.n_fft, a.hop
    win_length = a.win_length or n_fft
    i = np.arange(win_length)
    win = 0.5 - 0.5 * np.cos(2.0 * np.pi * i / win_length)  # periodic Hann
    window = np.zeros(n_fft)
    left = (n_fft - win_length) // 2
    window[left:left + win_length] = win
    if a.center:
        x = np.pad(x, n_fft // 2, mode=a.pad_mode)
    n_frames = 1 + (len(x) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    frames = x[idx] * window[None, :]
    X = np.fft.rfft(frames, axis=1).T  # (bins, frames)
    if a.drop_last:
        X = X[:, :-1]
    return np.abs(X) ** a.power


def main():
    p = argparse.ArgumentParser()
    p.add_argument("input")
    p.add_argument("out_mel")
    p.add_argument("out_filters")
    p.add_argument("--sr", type=int, default=16000)
    p.add_argument("--n-fft", type=int, default=400)
    p.add_argument("--win-length", type=int, default=0)
    p.add_argument("--hop", type=int, default=160)
    p.add_argument("--n-mels", type=int, default=80)
    p.add_argument("--fmin", type=float, default=0.0)
    p.add_argument("--fmax", type=float, default=0.0)
    p.add_argument("--scale", choices=["slaney", "htk"], default="slaney")
    p.add_argument("--norm", choices=["slaney", "none"], default="slaney")
    p.add_argument("--center", type=int, default=1)
    p.add_argument("--pad-mode", choices=["reflect", "constant"], default="reflect")
    p.add_argument("--power", type=float, default=2.0)
    p.add_argument("--log", choices=["none", "whisper", "db", "ln"], default="whisper")
    p.add_argument("--amin", type=float, default=1e-10)
    p.add_argument("--top-db", type=float, default=0.0)
    p.add_argument("--drop-last", type=int, default=1)
    a = p.parse_args()
    x = np.fromfile(a.input, dtype="<f4").astype(np.float64)
    fmax = a.fmax if a.fmax > 0 else a.sr / 2.0
    filters = mel_filters(a.sr, a.n_fft, a.n_mels, a.fmin, fmax, a.scale == "htk", a.norm)
    S = filters @ spectrogram(x, a)
    if a.log == "whisper":
        L = np.log10(np.maximum(S, 1e-10))
        L = np.maximum(L, L.max() - 8.0)
        S = (L + 4.0) / 4.0
    elif a.log == "db":
        S = 10.0 * np.log10(np.maximum(S, a.amin))
        if a.top_db > 0:
            S = np.maximum(S, S.max() - a.top_db)
    elif a.log == "ln":
        S = np.log(np.maximum(S, a.amin))
    np.save(a.out_mel, S)
    np.save(a.out_filters, filters)


if __name__ == "__main__":
    main()
