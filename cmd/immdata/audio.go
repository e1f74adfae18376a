package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/immkit/immkit/encoders/audio"
	"github.com/immkit/immkit/internal/cli"
	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newAudioCmd) }

func newAudioCmd(g *cli.Global) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audio",
		Short: "Audio tools: log-mel spectrograms, VQ codebooks, mel inversion to WAV",
		Long: `audio groups the audio encoder's tools: "mel" decodes a wav/flac/mp3 file, mixes it to
mono, resamples it and writes its (log-)mel spectrogram; "invert" turns a mel spectrogram
back into a WAV file with Griffin-Lim so generated audio can be listened to; "vq-fit"
fits a k-means++ codebook on mel frames for discrete audio tokens.
See docs/audio.md.`,
		Example: "  immdata audio mel speech.wav --preset whisper-80 -o speech.npy",
	}
	cmd.AddCommand(newAudioMelCmd(g), newAudioInvertCmd(g), newAudioVQFitCmd(g))
	return cmd
}

// audioMelFlags are the mel configuration flags shared by the audio subcommands: a
// preset, and any explicitly given flag overriding the preset's value.
type audioMelFlags struct {
	preset                    string
	c                         audio.MelConfig
	scale, norm, pad, logKind string
	changed                   func(name string) bool
}

func (m *audioMelFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	c := &m.c
	f.StringVar(&m.preset, "preset", "whisper-80", "starting configuration: whisper-80 or whisper-128")
	f.IntVar(&c.SampleRate, "sample-rate", 16000, "resample the input to this rate (Hz)")
	f.IntVar(&c.NFFT, "n-fft", 400, "FFT size")
	f.IntVar(&c.WinLength, "win-length", 0, "Hann window length (0 = n-fft)")
	f.IntVar(&c.Hop, "hop", 160, "hop length in samples")
	f.IntVar(&c.NMels, "n-mels", 80, "mel channels")
	f.Float64Var(&c.FMin, "fmin", 0, "lowest filter frequency (Hz)")
	f.Float64Var(&c.FMax, "fmax", 0, "highest filter frequency (Hz, 0 = sample-rate/2)")
	f.StringVar(&m.scale, "scale", "slaney", "mel scale: slaney or htk")
	f.StringVar(&m.norm, "norm", "slaney", "filter normalisation: slaney or none")
	f.BoolVar(&c.Center, "center", true, "centre frames (pad n-fft/2 on both sides)")
	f.StringVar(&m.pad, "pad-mode", "reflect", "padding when centred: reflect or constant")
	f.Float64Var(&c.Power, "power", 2, "exponent of the STFT magnitude: 2 power, 1 magnitude")
	f.StringVar(&m.logKind, "log", "whisper", "compression: whisper, db, ln or none")
	f.Float64Var(&c.Amin, "amin", 0, "floor inside the db and ln logs (0 = 1e-10)")
	f.Float64Var(&c.TopDB, "top-db", 0, "with --log db: dynamic range kept below the maximum (0 = all)")
	f.BoolVar(&c.DropLast, "drop-last", true, "drop the last frame (Whisper)")
	m.changed = f.Changed
}

// config starts from the preset and applies the flags the user gave.
func (m *audioMelFlags) config() (audio.MelConfig, error) {
	c, err := audio.Preset(m.preset)
	if err != nil {
		return c, cli.Usagef("--preset: %v", err)
	}
	f := m.c
	for name, apply := range map[string]func(){
		"sample-rate": func() { c.SampleRate = f.SampleRate },
		"n-fft":       func() { c.NFFT = f.NFFT },
		"win-length":  func() { c.WinLength = f.WinLength },
		"hop":         func() { c.Hop = f.Hop },
		"n-mels":      func() { c.NMels = f.NMels },
		"fmin":        func() { c.FMin = f.FMin },
		"fmax":        func() { c.FMax = f.FMax },
		"scale":       func() { c.Scale = audio.MelScale(m.scale) },
		"norm":        func() { c.Norm = audio.MelNorm(m.norm) },
		"center":      func() { c.Center = f.Center },
		"pad-mode":    func() { c.PadMode = audio.PadMode(m.pad) },
		"power":       func() { c.Power = f.Power },
		"log":         func() { c.Log = audio.LogKind(m.logKind) },
		"amin":        func() { c.Amin = f.Amin },
		"top-db":      func() { c.TopDB = f.TopDB },
		"drop-last":   func() { c.DropLast = f.DropLast },
	} {
		if m.changed != nil && m.changed(name) {
			apply()
		}
	}
	if err := c.Validate(); err != nil {
		return c, cli.Usagef("%v", err)
	}
	return c, nil
}

// audioMelOpts are the flags of `immdata audio mel`.
type audioMelOpts struct {
	input  string
	output string
	format string // npy or parquet
	key    string
	mel    audioMelFlags
	stdout io.Writer
}

func newAudioMelCmd(g *cli.Global) *cobra.Command {
	o := &audioMelOpts{}
	cmd := &cobra.Command{
		Use:   "mel FILE",
		Short: "Write the log-mel spectrogram of an audio file as .npy or Parquet",
		Long: `mel decodes FILE (wav, flac or mp3), mixes it to mono, resamples it to the configuration's
rate and computes its mel spectrogram. --preset whisper-80 and whisper-128 reproduce OpenAI
Whisper's log_mel_spectrogram exactly; any other flag given overrides the preset's value
(e.g. --scale htk --norm none --log db for torchaudio's defaults).
--format npy writes a float32 array of shape (n_mels, frames); --format parquet writes one
row {key, audio_mel} with audio_mel frame-major (frames x n_mels) and the settings in the
field metadata, as the encoder does.`,
		Example: "  immdata audio mel speech.wav --preset whisper-80 -o speech.npy\n" +
			"  immdata audio mel song.flac --preset whisper-128 --format parquet -o song.parquet\n" +
			"  immdata audio mel clip.mp3 --sample-rate 22050 --n-fft 2048 --hop 512 --n-mels 128 --pad-mode constant --log db -o clip.npy",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.input = args[0]
			o.stdout = cmd.OutOrStdout()
			return runAudioMel(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "", "output file (default FILE with its extension replaced by .npy or .parquet)")
	f.StringVar(&o.format, "format", "npy", "output format: npy or parquet")
	f.StringVar(&o.key, "key", "", "row key for --format parquet (default FILE's base name without extension)")
	o.mel.add(cmd)
	return cmd
}

func runAudioMel(ctx context.Context, o *audioMelOpts) error {
	if o.format != "npy" && o.format != "parquet" {
		return cli.Usagef("--format: want npy or parquet, got %q", o.format)
	}
	cfg, err := o.mel.config()
	if err != nil {
		return err
	}
	a, mel, err := audioFileMel(ctx, o.input, cfg)
	if err != nil {
		return err
	}
	base := strings.TrimSuffix(o.input, filepath.Ext(o.input))
	out := o.output
	if out == "" {
		out = base + "." + o.format
	}
	key := o.key
	if key == "" {
		key = filepath.Base(base)
	}
	err = audioWriteFileAtomic(out, func(w io.Writer) error {
		if o.format == "parquet" {
			return audio.WriteMelParquet(w, []string{key}, []*audio.Mel{mel})
		}
		return audio.WriteNPY(w, mel.Data, mel.NMels, mel.Frames)
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(o.stdout, "%s: %d Hz %d ch %.2f s -> %s (%d mels x %d frames)\n",
		o.input, a.Rate, a.Channels, a.Seconds(), out, mel.NMels, mel.Frames)
	return err
}

// audioFileMel decodes path, mixes to mono, resamples to cfg's rate and computes its mel.
func audioFileMel(ctx context.Context, path string, cfg audio.MelConfig) (*audio.Audio, *audio.Mel, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	a, err := audio.Decode(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	bank, err := audio.NewMelBank(cfg)
	if err != nil {
		return nil, nil, err
	}
	mel, err := bank.ComputeAudio(a)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, mel, nil
}

// audioInvertOpts are the flags of `immdata audio invert`.
type audioInvertOpts struct {
	input    string
	output   string
	iters    int
	method   string
	momentum float64
	seed     uint64
	mel      audioMelFlags
	stdout   io.Writer
}

func newAudioInvertCmd(g *cli.Global) *cobra.Command {
	o := &audioInvertOpts{}
	cmd := &cobra.Command{
		Use:   "invert MEL.npy",
		Short: "Turn a (log-)mel spectrogram .npy into a WAV file with Griffin-Lim",
		Long: `invert reads a float32/float64 .npy of shape (n_mels, frames) made with the given mel
configuration (the same flags as "mel"), undoes the log, estimates the linear spectrogram
(non-negative least squares or the pseudo-inverse of the filter bank), recovers a phase
with --iters Griffin-Lim iterations and writes a 16-bit mono WAV at the configuration's
sample rate.`,
		Example: "  immdata audio invert generated.npy --preset whisper-80 --iters 64 -o generated.wav",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.input = args[0]
			o.stdout = cmd.OutOrStdout()
			return runAudioInvert(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "", "output WAV (default MEL with .wav)")
	f.IntVar(&o.iters, "iters", 32, "Griffin-Lim iterations")
	f.StringVar(&o.method, "method", "nnls", "mel to linear: nnls or pinv")
	f.Float64Var(&o.momentum, "momentum", 0.99, "fast Griffin-Lim momentum (0 = classic)")
	f.Uint64Var(&o.seed, "seed", 0, "seed of the initial random phase")
	o.mel.add(cmd)
	return cmd
}

func runAudioInvert(ctx context.Context, o *audioInvertOpts) error {
	if o.iters < 1 {
		return cli.Usagef("--iters: must be >= 1, got %d", o.iters)
	}
	if o.method != "nnls" && o.method != "pinv" {
		return cli.Usagef("--method: want nnls or pinv, got %q", o.method)
	}
	cfg, err := o.mel.config()
	if err != nil {
		return err
	}
	b, err := os.ReadFile(o.input)
	if err != nil {
		return err
	}
	data, shape, err := audio.ReadNPY(b)
	if err != nil {
		return fmt.Errorf("%s: %w", o.input, err)
	}
	if len(shape) != 2 || shape[0] != cfg.NMels || shape[1] < 2 {
		return fmt.Errorf("%s: shape %v, want (%d, frames >= 2)", o.input, shape, cfg.NMels)
	}
	mel := &audio.Mel{Data: data, NMels: shape[0], Frames: shape[1], Config: cfg}
	y, err := audio.GriffinLim(mel, audio.GriffinLimOptions{Iters: o.iters, Momentum: o.momentum, Method: audio.InvertMethod(o.method), Seed: o.seed})
	if err != nil {
		return err
	}
	out := o.output
	if out == "" {
		out = strings.TrimSuffix(o.input, filepath.Ext(o.input)) + ".wav"
	}
	err = audioWriteFileAtomic(out, func(w io.Writer) error {
		return audio.WriteWAV(w, &audio.Audio{Samples: y, Rate: cfg.SampleRate, Channels: 1}, audio.WAVPCM16)
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(o.stdout, "%s: %d mels x %d frames -> %s (%.2f s at %d Hz)\n",
		o.input, mel.NMels, mel.Frames, out, float64(len(y))/float64(cfg.SampleRate), cfg.SampleRate)
	return err
}

// audioVQFitOpts are the flags of `immdata audio vq-fit`.
type audioVQFitOpts struct {
	inputs []string
	output string
	vq     audio.VQOptions
	mel    audioMelFlags
	stdout io.Writer
}

func newAudioVQFitCmd(g *cli.Global) *cobra.Command {
	o := &audioVQFitOpts{}
	cmd := &cobra.Command{
		Use:   "vq-fit FILE...",
		Short: "Fit a VQ codebook on the log-mel frames of audio files (safetensors)",
		Long: `vq-fit computes the mel spectrogram of every FILE (wav, flac or mp3; same flags as "mel"),
fits a k-means++ codebook on (stacked) frames, optionally with residual stages, and writes
it as safetensors. It prints the file's sha256, which encode manifests record.`,
		Example: "  immdata audio vq-fit clips/*.wav --preset whisper-80 --k 512 --stack 2 --stages 2 -o mel-vq.safetensors",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.inputs = args
			o.stdout = cmd.OutOrStdout()
			return runAudioVQFit(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "mel-vq.safetensors", "output codebook")
	f.IntVar(&o.vq.K, "k", 256, "codes per stage")
	f.IntVar(&o.vq.Stack, "stack", 1, "consecutive frames per code vector")
	f.IntVar(&o.vq.Stages, "stages", 1, "residual stages")
	f.IntVar(&o.vq.Iters, "iters", 20, "Lloyd iterations per stage")
	f.IntVar(&o.vq.MaxVectors, "max-vectors", 50000, "random sample of training vectors")
	f.Uint64Var(&o.vq.Seed, "seed", 1, "random seed")
	o.mel.add(cmd)
	return cmd
}

func runAudioVQFit(ctx context.Context, o *audioVQFitOpts) error {
	if o.vq.K < 1 || o.vq.Stack < 1 || o.vq.Stages < 1 || o.vq.Iters < 1 || o.vq.MaxVectors < 1 {
		return cli.Usagef("--k, --stack, --stages, --iters and --max-vectors must be >= 1")
	}
	cfg, err := o.mel.config()
	if err != nil {
		return err
	}
	var mels []*audio.Mel
	for _, in := range o.inputs {
		_, m, err := audioFileMel(ctx, in, cfg)
		if err != nil {
			return err
		}
		mels = append(mels, m)
	}
	cb, err := audio.FitCodebook(mels, o.vq)
	if err != nil {
		return err
	}
	var sum string
	err = audioWriteFileAtomic(o.output, func(w io.Writer) error {
		var err error
		sum, err = cb.Save(w)
		return err
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(o.stdout, "%s: %d x %d codes of %d values from %d files, sha256 %s\n",
		o.output, cb.Stages, cb.K, cb.Dim(), len(o.inputs), sum)
	return err
}

// audioWriteFileAtomic writes path through a temporary file in the same directory, renamed
// into place only when write succeeds.
func audioWriteFileAtomic(path string, write func(io.Writer) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(tmp.Name())
		}
	}()
	if err := write(tmp); err != nil {
		return errors.Join(err, tmp.Close())
	}
	if err := tmp.Chmod(0o644); err != nil {
		return errors.Join(err, tmp.Close())
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
