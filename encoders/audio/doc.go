// Package audio turns encoded audio into the representations the trainer consumes and back:
//
//   - Decode reads WAV (PCM 8/16/24/32-bit, float32/64, WAVE_FORMAT_EXTENSIBLE, A-law,
//     mu-law), FLAC and MP3 into an *Audio (interleaved float32 samples in [-1, 1]);
//     DecodeConfig reads only the header so oversized input is rejected before allocating.
//   - Audio.Mono mixes down, Resample converts the rate with a Kaiser-windowed sinc
//     polyphase filter.
//   - MelSpectrogram computes log-mel spectrograms; the presets "whisper-80" and
//     "whisper-128" reproduce OpenAI Whisper's log_mel_spectrogram, and MelConfig's general
//     options (n_fft, hop, window length, fmin/fmax, htk or slaney scale, norm, centring and
//     pad mode, power, log kind) match librosa and torchaudio settings. The result is a Mel
//     whose Data is n_mels x frames, row-major.
//   - MulawEncode/MulawDecode give 8-bit mu-law tokens; Codebook (k-means++ VQ on log-mel
//     frames, optionally stacked frames and residual stages) gives discrete tokens and is
//     saved as safetensors.
//   - MelToLinear and GriffinLim invert a (log-)mel spectrogram to a waveform, and WriteWAV
//     writes it, so generated audio can be listened to.
//
// Every function that reads untrusted bytes returns an error for malformed input, never
// panics; panics inside the third-party FLAC and MP3 decoders are recovered and returned as
// errors.
package audio
