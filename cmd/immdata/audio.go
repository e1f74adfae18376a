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
		Short: "Audio tools: log-mel spectrograms, mel inversion to WAV",
		Long: `audio groups the audio encoder's tools: "mel" decodes a wav/flac/mp3 file, mixes it to
mono, resamples it and writes its (log-)mel spectrogram; "invert" turns a mel spectrogram
back into a WAV file with Griffin-Lim so generated audio can be listened to.
See docs/audio.md.`,
		Example: "  immdata audio mel speech.wav --preset whisper-80 -o speech.npy",
	}
	cmd.AddCommand(newAudioMelCmd(g))
	return cmd
}

// audioMelOpts are the flags of `immdata audio mel`.
type audioMelOpts struct {
	input   string
	output  string
	format  string // npy or parquet
	key     string
	cfg     audio.MelConfig
	changed func(name string) bool
	preset  string
	stdout  io.Writer
}

func newAudioMelCmd(g *cli.Global) *cobra.Command {
	o := &audioMelOpts{}
	var c audio.MelConfig
	var scale, norm, pad, logKind string
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
			o.changed = cmd.Flags().Changed
			o.cfg = c
			o.cfg.Scale, o.cfg.Norm, o.cfg.PadMode, o.cfg.Log = audio.MelScale(scale), audio.MelNorm(norm), audio.PadMode(pad), audio.LogKind(logKind)
			return runAudioMel(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "", "output file (default FILE with its extension replaced by .npy or .parquet)")
	f.StringVar(&o.format, "format", "npy", "output format: npy or parquet")
	f.StringVar(&o.key, "key", "", "row key for --format parquet (default FILE's base name without extension)")
	f.StringVar(&o.preset, "preset", "whisper-80", "starting configuration: whisper-80 or whisper-128")
	f.IntVar(&c.SampleRate, "sample-rate", 16000, "resample the input to this rate (Hz)")
	f.IntVar(&c.NFFT, "n-fft", 400, "FFT size")
	f.IntVar(&c.WinLength, "win-length", 0, "Hann window length (0 = n-fft)")
	f.IntVar(&c.Hop, "hop", 160, "hop length in samples")
	f.IntVar(&c.NMels, "n-mels", 80, "mel channels")
	f.Float64Var(&c.FMin, "fmin", 0, "lowest filter frequency (Hz)")
	f.Float64Var(&c.FMax, "fmax", 0, "highest filter frequency (Hz, 0 = sample-rate/2)")
	f.StringVar(&scale, "scale", "slaney", "mel scale: slaney or htk")
	f.StringVar(&norm, "norm", "slaney", "filter normalisation: slaney or none")
	f.BoolVar(&c.Center, "center", true, "centre frames (pad n-fft/2 on both sides)")
	f.StringVar(&pad, "pad-mode", "reflect", "padding when centred: reflect or constant")
	f.Float64Var(&c.Power, "power", 2, "exponent of the STFT magnitude: 2 power, 1 magnitude")
	f.StringVar(&logKind, "log", "whisper", "compression: whisper, db, ln or none")
	f.Float64Var(&c.Amin, "amin", 0, "floor inside the db and ln logs (0 = 1e-10)")
	f.Float64Var(&c.TopDB, "top-db", 0, "with --log db: dynamic range kept below the maximum (0 = all)")
	f.BoolVar(&c.DropLast, "drop-last", true, "drop the last frame (Whisper)")
	return cmd
}

// melConfig starts from the preset and applies the flags the user gave.
func (o *audioMelOpts) melConfig() (audio.MelConfig, error) {
	c, err := audio.Preset(o.preset)
	if err != nil {
		return c, cli.Usagef("--preset: %v", err)
	}
	f := o.cfg
	for name, apply := range map[string]func(){
		"sample-rate": func() { c.SampleRate = f.SampleRate },
		"n-fft":       func() { c.NFFT = f.NFFT },
		"win-length":  func() { c.WinLength = f.WinLength },
		"hop":         func() { c.Hop = f.Hop },
		"n-mels":      func() { c.NMels = f.NMels },
		"fmin":        func() { c.FMin = f.FMin },
		"fmax":        func() { c.FMax = f.FMax },
		"scale":       func() { c.Scale = f.Scale },
		"norm":        func() { c.Norm = f.Norm },
		"center":      func() { c.Center = f.Center },
		"pad-mode":    func() { c.PadMode = f.PadMode },
		"power":       func() { c.Power = f.Power },
		"log":         func() { c.Log = f.Log },
		"amin":        func() { c.Amin = f.Amin },
		"top-db":      func() { c.TopDB = f.TopDB },
		"drop-last":   func() { c.DropLast = f.DropLast },
	} {
		if o.changed != nil && o.changed(name) {
			apply()
		}
	}
	if err := c.Validate(); err != nil {
		return c, cli.Usagef("%v", err)
	}
	return c, nil
}

func runAudioMel(ctx context.Context, o *audioMelOpts) error {
	if o.format != "npy" && o.format != "parquet" {
		return cli.Usagef("--format: want npy or parquet, got %q", o.format)
	}
	cfg, err := o.melConfig()
	if err != nil {
		return err
	}
	data, err := os.ReadFile(o.input)
	if err != nil {
		return err
	}
	a, err := audio.Decode(data)
	if err != nil {
		return fmt.Errorf("%s: %w", o.input, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	x, err := audio.Resample(a.Mono(), a.Rate, cfg.SampleRate)
	if err != nil {
		return err
	}
	mel, err := audio.MelSpectrogram(x, cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", o.input, err)
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
