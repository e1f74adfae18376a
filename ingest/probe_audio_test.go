package ingest

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/immkit/immkit/internal/testenv"
)

// makeWAV writes a RIFF/WAVE file with the given format tag (1 PCM, 3 float, 6 A-law,
// 7 mu-law), optionally as WAVE_FORMAT_EXTENSIBLE, holding frames frames of zeros.
func makeWAV(tag, bits, channels, rate, frames int, extensible bool) []byte {
	var fmtc bytes.Buffer
	w16 := func(b *bytes.Buffer, v int) { binary.Write(b, binary.LittleEndian, uint16(v)) }
	w32 := func(b *bytes.Buffer, v int) { binary.Write(b, binary.LittleEndian, uint32(v)) }
	block := channels * bits / 8
	outerTag := tag
	if extensible {
		outerTag = 0xFFFE
	}
	w16(&fmtc, outerTag)
	w16(&fmtc, channels)
	w32(&fmtc, rate)
	w32(&fmtc, rate*block)
	w16(&fmtc, block)
	w16(&fmtc, bits)
	if extensible {
		w16(&fmtc, 22)
		w16(&fmtc, bits)
		w32(&fmtc, 3)
		w16(&fmtc, tag)
		fmtc.Write([]byte{0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71})
	}
	var b bytes.Buffer
	b.WriteString("RIFF")
	w32(&b, 4+8+fmtc.Len()+8+frames*block)
	b.WriteString("WAVE")
	b.WriteString("fmt ")
	w32(&b, fmtc.Len())
	b.Write(fmtc.Bytes())
	b.WriteString("LIST") // an extra chunk before data, odd-sized (padded)
	w32(&b, 3)
	b.Write([]byte{1, 2, 3, 0})
	b.WriteString("data")
	w32(&b, frames*block)
	b.Write(make([]byte, frames*block))
	return b.Bytes()
}

func TestProbeWAVFormats(t *testing.T) {
	cases := []struct {
		tag, bits int
		ext       bool
	}{
		{1, 8, false}, {1, 16, false}, {1, 24, false}, {1, 32, false}, {3, 32, false}, {3, 64, false},
		{6, 8, false}, {7, 8, false}, {1, 16, true}, {1, 24, true}, {3, 32, true},
	}
	for _, c := range cases {
		for _, ch := range []int{1, 2, 6} {
			rate, frames := 22050, 33075
			b := makeWAV(c.tag, c.bits, ch, rate, frames, c.ext)
			info, err := ProbeAudio(b, AudioLimits{})
			if err != nil {
				t.Errorf("tag %d bits %d ext %v ch %d: %v", c.tag, c.bits, c.ext, ch, err)
				continue
			}
			want := float64(frames) / float64(rate)
			if info.Format != "wav" || info.SampleRate != rate || info.Channels != ch || math.Abs(info.Seconds-want) > 1e-12 {
				t.Errorf("tag %d bits %d ext %v ch %d: got %+v, want %d Hz %d ch %g s", c.tag, c.bits, c.ext, ch, info, rate, ch, want)
			}
			// A data chunk that declares more than is present is wav_truncated.
			if _, err := ProbeAudio(b[:len(b)-ch*c.bits/8], AudioLimits{}); reasonOf(err) != ReasonWAVTruncated {
				t.Errorf("tag %d bits %d: cut file: %v, want wav_truncated", c.tag, c.bits, err)
			}
		}
	}
	if _, err := ProbeAudio(makeWAV(1, 16, 1, 8000, 80000, false), AudioLimits{MaxSeconds: 9.5}); reasonOf(err) != ReasonAudioTooLong {
		t.Errorf("10 s with --max-seconds 9.5: %v, want audio_too_long", err)
	}
	if _, err := ProbeAudio(makeWAV(1, 12, 1, 8000, 80, false), AudioLimits{}); reasonOf(err) != ReasonAudioCorrupt {
		t.Errorf("12-bit PCM: %v, want audio_corrupt", err)
	}
}

// soxi asks sox's soxi for one property (-r rate, -c channels, -D seconds) of a file.
func soxi(t *testing.T, flag, path string) float64 {
	t.Helper()
	out, err := exec.Command("soxi", flag, path).Output()
	if err != nil {
		t.Fatalf("soxi %s %s: %v", flag, path, err)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		t.Fatalf("soxi %s %s: %q", flag, path, out)
	}
	return v
}

// TestProbeAudioAgainstSox encodes wav, flac and mp3 files with sox and lame and compares
// the probe with soxi's reading of the same files.
func TestProbeAudioAgainstSox(t *testing.T) {
	testenv.LookPath(t, "sox", "scripts/deps.d/ingest.sh (apt-get install sox libsox-fmt-mp3 flac lame)")
	testenv.LookPath(t, "soxi", "scripts/deps.d/ingest.sh")
	testenv.LookPath(t, "lame", "scripts/deps.d/ingest.sh")
	dir := t.TempDir()
	cases := []struct {
		name string
		args []string
		tol  float64 // seconds; mp3 adds encoder padding that soxi and the frame count see differently
	}{
		{"a.wav", []string{"-r", "22050", "-c", "2", "-b", "24"}, 1e-6},
		{"b.wav", []string{"-r", "8000", "-c", "1", "-b", "8", "-e", "unsigned-integer"}, 1e-6},
		{"c.wav", []string{"-r", "48000", "-c", "2", "-b", "32", "-e", "floating-point"}, 1e-6},
		{"d.wav", []string{"-r", "44100", "-c", "4", "-b", "16"}, 1e-6}, // sox writes WAVE_FORMAT_EXTENSIBLE for > 2 channels
		{"e.flac", []string{"-r", "44100", "-c", "1", "-b", "16"}, 1e-6},
		{"f.flac", []string{"-r", "96000", "-c", "2", "-b", "24"}, 1e-6},
	}
	for _, c := range cases {
		p := filepath.Join(dir, c.name)
		args := append([]string{"-n"}, c.args...)
		args = append(args, p, "synth", "1.37", "sine", "440")
		if out, err := exec.Command("sox", args...).CombinedOutput(); err != nil {
			t.Fatalf("sox %v: %v\n%s", args, err, out)
		}
		checkAgainstSoxi(t, p, c.tol)
	}
	// mp3 via lame from a wav, at MPEG-1 and MPEG-2 rates.
	for _, rate := range []string{"44100", "22050", "16000"} {
		src := filepath.Join(dir, "m"+rate+".wav")
		if out, err := exec.Command("sox", "-n", "-r", rate, "-c", "2", "-b", "16", src, "synth", "1.1", "sine", "300").CombinedOutput(); err != nil {
			t.Fatalf("sox: %v\n%s", err, out)
		}
		mp3 := filepath.Join(dir, "m"+rate+".mp3")
		if out, err := exec.Command("lame", "--quiet", "-b", "64", src, mp3).CombinedOutput(); err != nil {
			t.Fatalf("lame: %v\n%s", err, out)
		}
		// soxi cannot read mp3 without libsox-fmt-mp3: decode with lame and read the wav
		// (lame may resample at low bit rates, so rate and channels come from the decode).
		dec := filepath.Join(dir, "m"+rate+".dec.wav")
		if out, err := exec.Command("lame", "--quiet", "--decode", mp3, dec).CombinedOutput(); err != nil {
			t.Fatalf("lame --decode: %v\n%s", err, out)
		}
		checkAgainst(t, mp3, dec, 1e-3)
	}
}

func checkAgainstSoxi(t *testing.T, p string, tol float64) { t.Helper(); checkAgainst(t, p, p, tol) }

// checkAgainst probes p and compares with soxi's reading of ref (p itself, or its decode).
func checkAgainst(t *testing.T, p, ref string, tol float64) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	info, err := ProbeAudio(b, AudioLimits{})
	if err != nil {
		t.Errorf("%s: %v", filepath.Base(p), err)
		return
	}
	rate, ch, secs := soxi(t, "-r", ref), soxi(t, "-c", ref), soxi(t, "-D", ref)
	if float64(info.SampleRate) != rate || float64(info.Channels) != ch || math.Abs(info.Seconds-secs) > tol {
		t.Errorf("%s: probe %+v, soxi %g Hz %g ch %g s", filepath.Base(p), info, rate, ch, secs)
	}
	// Cutting the file in half must be rejected (flac keeps its header, so only wav and mp3).
	if strings.HasSuffix(p, ".flac") {
		return
	}
	if _, err := ProbeAudio(b[:len(b)/2], AudioLimits{}); err == nil {
		t.Errorf("%s cut in half: accepted", filepath.Base(p))
	}
}

func FuzzProbeAudio(f *testing.F) {
	f.Add(makeWAV(1, 16, 2, 8000, 10, false))
	f.Add(makeWAV(3, 32, 1, 8000, 10, true))
	f.Add([]byte("fLaC\x80\x00\x00\x22" + strings.Repeat("\x00", 10) + "\x0a\xc4\x42\xf0\x00\x00\x10\x00" + strings.Repeat("\x00", 16) + "\xff\xf8"))
	f.Add([]byte("\xff\xfb\x90\x64" + strings.Repeat("\x00", 413) + "\xff\xfb\x90\x64"))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := ProbeAudio(b, AudioLimits{})
		if err == nil && (info.SampleRate <= 0 || info.Channels <= 0 || info.Seconds < 0) {
			t.Errorf("accepted with %+v", info)
		}
		if err != nil && reasonOf(err) == "" {
			t.Errorf("error without a reason: %v", err)
		}
	})
}
