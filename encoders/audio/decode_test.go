package audio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// wavBytes assembles a RIFF/WAVE file from a fmt chunk body and extra chunks, in order.
func wavBytes(chunks ...[]byte) []byte {
	var body []byte
	for _, c := range chunks {
		body = append(body, c...)
	}
	out := []byte("RIFF")
	out = binary.LittleEndian.AppendUint32(out, uint32(4+len(body)))
	out = append(out, "WAVE"...)
	return append(out, body...)
}

func chunk(id string, body []byte) []byte {
	out := append([]byte(id), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...)
	out = append(out, body...)
	if len(body)%2 == 1 {
		out = append(out, 0)
	}
	return out
}

func fmtChunk(tag, channels, rate, blockAlign, bits int) []byte {
	le := binary.LittleEndian
	b := le.AppendUint16(nil, uint16(tag))
	b = le.AppendUint16(b, uint16(channels))
	b = le.AppendUint32(b, uint32(rate))
	b = le.AppendUint32(b, uint32(rate*blockAlign))
	b = le.AppendUint16(b, uint16(blockAlign))
	b = le.AppendUint16(b, uint16(bits))
	return chunk("fmt ", b)
}

func extensibleChunk(subTag, channels, rate, blockAlign, bits, validBits int) []byte {
	le := binary.LittleEndian
	b := le.AppendUint16(nil, 0xFFFE)
	b = le.AppendUint16(b, uint16(channels))
	b = le.AppendUint32(b, uint32(rate))
	b = le.AppendUint32(b, uint32(rate*blockAlign))
	b = le.AppendUint16(b, uint16(blockAlign))
	b = le.AppendUint16(b, uint16(bits))
	b = le.AppendUint16(b, 22)
	b = le.AppendUint16(b, uint16(validBits))
	b = le.AppendUint32(b, 0x3)
	b = le.AppendUint16(b, uint16(subTag))
	b = append(b, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71)
	return chunk("fmt ", b)
}

func f32le(v ...float32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

func f64le(v ...float64) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	}
	return b
}

// TestDecodeWAVTable decodes hand-assembled files whose expected samples are written out.
func TestDecodeWAVTable(t *testing.T) {
	cases := []struct {
		name     string
		file     []byte
		rate, ch int
		want     []float32
	}{
		{"u8", wavBytes(fmtChunk(1, 1, 8000, 1, 8), chunk("data", []byte{0x80, 0xC0, 0x00, 0xFF})),
			8000, 1, []float32{0, 0.5, -1, 127.0 / 128}},
		{"s16 stereo", wavBytes(fmtChunk(1, 2, 44100, 4, 16), chunk("data", []byte{0x00, 0x40, 0x00, 0x80, 0xFF, 0x7F, 0xFF, 0xFF})),
			44100, 2, []float32{0.5, -1, 32767.0 / 32768, -1.0 / 32768}},
		{"s24", wavBytes(fmtChunk(1, 1, 48000, 3, 24), chunk("data", []byte{0x00, 0x00, 0x40, 0x01, 0x00, 0x80, 0xFF, 0xFF, 0x7F})),
			48000, 1, []float32{0.5, float32(-(1<<23 - 1)) / (1 << 23), float32(1<<23-1) / (1 << 23)}},
		{"s32", wavBytes(fmtChunk(1, 1, 16000, 4, 32), chunk("data", []byte{0, 0, 0, 0xC0, 0, 0, 0, 0x20})),
			16000, 1, []float32{-0.5, 0.25}},
		{"f32", wavBytes(fmtChunk(3, 1, 16000, 4, 32), chunk("data", f32le(0.25, -0.75, 1.5))),
			16000, 1, []float32{0.25, -0.75, 1.5}},
		{"f64", wavBytes(fmtChunk(3, 1, 16000, 8, 64), chunk("data", f64le(0.125, -1))),
			16000, 1, []float32{0.125, -1}},
		{"extensible s24 in 32", wavBytes(extensibleChunk(1, 1, 96000, 4, 32, 24), chunk("data", []byte{0, 0, 0, 0x40})),
			96000, 1, []float32{0.5}},
		{"extensible float", wavBytes(extensibleChunk(3, 2, 22050, 8, 32, 32), chunk("data", f32le(0.5, -0.5))),
			22050, 2, []float32{0.5, -0.5}},
		// odd layouts: LIST chunk with odd size before fmt, data before a trailing chunk,
		// data size larger than the file (streaming writer), a partial last frame.
		{"odd chunks", wavBytes(chunk("LIST", []byte("INFOx")), fmtChunk(1, 1, 8000, 2, 16), chunk("data", []byte{0x00, 0x20}), chunk("junk", []byte{1, 2, 3})),
			8000, 1, []float32{0.25}},
		{"data before fmt", wavBytes(chunk("data", []byte{0x00, 0x20}), fmtChunk(1, 1, 8000, 2, 16)),
			8000, 1, []float32{0.25}},
		{"oversized data", append(wavBytes(fmtChunk(1, 1, 8000, 2, 16)), append([]byte("data\xff\xff\xff\xff"), 0x00, 0x10, 0x00, 0xF0, 0x11)...),
			8000, 1, []float32{0.125, -0.125}},
		{"alaw", wavBytes(fmtChunk(6, 1, 8000, 1, 8), chunk("data", []byte{0xD5, 0x55, 0xAA, 0x2A})),
			8000, 1, []float32{8.0 / 32768, -8.0 / 32768, 32256.0 / 32768, -32256.0 / 32768}},
		{"mulaw", wavBytes(fmtChunk(7, 1, 8000, 1, 8), chunk("data", []byte{0xFF, 0x7F, 0x80, 0x00})),
			8000, 1, []float32{0, 0, 32124.0 / 32768, -32124.0 / 32768}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Decode(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if a.Rate != tc.rate || a.Channels != tc.ch {
				t.Errorf("rate %d channels %d, want %d %d", a.Rate, a.Channels, tc.rate, tc.ch)
			}
			if len(a.Samples) != len(tc.want) {
				t.Fatalf("samples %v, want %v", a.Samples, tc.want)
			}
			for i := range tc.want {
				if a.Samples[i] != tc.want[i] {
					t.Errorf("sample %d = %v, want %v", i, a.Samples[i], tc.want[i])
				}
			}
			cfg, err := DecodeConfig(tc.file)
			if err != nil || cfg.Format != FormatWAV || cfg.Rate != tc.rate || cfg.Channels != tc.ch || cfg.Frames != int64(len(tc.want)/tc.ch) {
				t.Errorf("DecodeConfig = %+v, %v", cfg, err)
			}
		})
	}
}

// TestDecodeWAVSox decodes files sox writes in every encoding and compares with sox's
// own conversion of the same file to raw float32.
func TestDecodeWAVSox(t *testing.T) {
	sox := tool(t, "sox")
	dir := t.TempDir()
	cases := []struct {
		name string
		args []string
	}{
		{"u8", []string{"-e", "unsigned-integer", "-b", "8"}},
		{"s16", []string{"-e", "signed-integer", "-b", "16"}},
		{"s24", []string{"-e", "signed-integer", "-b", "24"}},
		{"s32", []string{"-e", "signed-integer", "-b", "32"}},
		{"f32", []string{"-e", "floating-point", "-b", "32"}},
		{"f64", []string{"-e", "floating-point", "-b", "64"}},
		{"alaw", []string{"-e", "a-law"}},
		{"mulaw", []string{"-e", "u-law"}},
		{"s16 3ch extensible", []string{"-e", "signed-integer", "-b", "16", "-c", "3"}},
	}
	sawExtensible := false
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wav := filepath.Join(dir, tc.name+".wav")
			raw := filepath.Join(dir, tc.name+".f32")
			args := append([]string{"-n", "-r", "22050"}, tc.args...)
			args = append(args, wav, "synth", "0.2", "sine", "300", "sine", "1234", "vol", "0.7")
			run(t, sox, args...)
			run(t, sox, wav, "-t", "f32", "-e", "floating-point", "-b", "32", raw)
			b, err := os.ReadFile(wav)
			if err != nil {
				t.Fatal(err)
			}
			if binary.LittleEndian.Uint16(b[20:]) == 0xFFFE {
				sawExtensible = true
			}
			rb, _ := os.ReadFile(raw)
			a, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if a.Rate != 22050 || len(a.Samples) != len(rb)/4 {
				t.Fatalf("rate %d, %d samples; sox: %d", a.Rate, len(a.Samples), len(rb)/4)
			}
			var maxErr float64
			for i, v := range a.Samples {
				want := math.Float32frombits(binary.LittleEndian.Uint32(rb[4*i:]))
				maxErr = math.Max(maxErr, math.Abs(float64(v-want)))
			}
			if maxErr > 1e-7 {
				t.Errorf("max abs difference from sox %g", maxErr)
			}
		})
	}
	if !sawExtensible {
		t.Error("no sox file used WAVE_FORMAT_EXTENSIBLE")
	}
}

// TestDecodeFLAC encodes known PCM with the reference flac encoder and checks the decoded
// samples are exactly the input (lossless), for 16-bit stereo and 24-bit mono.
func TestDecodeFLAC(t *testing.T) {
	flacBin := tool(t, "flac")
	r := rand.New(rand.NewPCG(5, 6))
	for _, tc := range []struct {
		name string
		ch   int
		enc  WAVEncoding
		bits int
	}{{"s16 stereo", 2, WAVPCM16, 16}, {"s24 mono", 1, WAVPCM24, 24}} {
		t.Run(tc.name, func(t *testing.T) {
			scale := float64(int(1) << (tc.bits - 1))
			n := 20011
			ints := make([]int32, n*tc.ch)
			src := make([]float32, len(ints))
			for i := range ints {
				v := 0.4*math.Sin(float64(i/tc.ch)*0.05*float64(1+i%tc.ch)) + 0.05*r.NormFloat64()
				ints[i] = int32(math.Round(v * scale))
				src[i] = float32(float64(ints[i]) / scale)
			}
			var buf bytes.Buffer
			if err := WriteWAV(&buf, &Audio{Samples: src, Rate: 44100, Channels: tc.ch}, tc.enc); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			wav, fl := filepath.Join(dir, "in.wav"), filepath.Join(dir, "out.flac")
			os.WriteFile(wav, buf.Bytes(), 0o644)
			run(t, flacBin, "-s", "-5", "-o", fl, wav)
			b, _ := os.ReadFile(fl)
			a, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if a.Rate != 44100 || a.Channels != tc.ch || len(a.Samples) != len(ints) {
				t.Fatalf("rate %d ch %d n %d", a.Rate, a.Channels, len(a.Samples))
			}
			for i, v := range a.Samples {
				if float64(v)*scale != float64(ints[i]) {
					t.Fatalf("sample %d: %v*2^%d != %d", i, v, tc.bits-1, ints[i])
				}
			}
			cfg, err := DecodeConfig(b)
			if err != nil || cfg.Frames != int64(n) || cfg.BitsPerSample != tc.bits || cfg.Format != FormatFLAC {
				t.Errorf("DecodeConfig %+v %v", cfg, err)
			}
		})
	}
}

// TestDecodeMP3 encodes sines with lame and checks rate, length and pitch.
func TestDecodeMP3(t *testing.T) {
	lame := tool(t, "lame")
	for _, tc := range []struct {
		rate int
		freq float64
	}{{44100, 440}, {22050, 1000}, {16000, 300}} {
		dir := t.TempDir()
		var buf bytes.Buffer
		WriteWAV(&buf, &Audio{Samples: sine(tc.rate*2, tc.rate, tc.freq, 0.5, 0), Rate: tc.rate, Channels: 1}, WAVPCM16)
		wav, mp := filepath.Join(dir, "in.wav"), filepath.Join(dir, "out.mp3")
		os.WriteFile(wav, buf.Bytes(), 0o644)
		run(t, lame, "--quiet", "-b", "64", wav, mp)
		b, _ := os.ReadFile(mp)
		a, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if a.Rate != tc.rate || a.Channels != 2 {
			t.Errorf("%d Hz: rate %d channels %d", tc.rate, a.Rate, a.Channels)
		}
		if s := a.Seconds(); s < 2 || s > 2.2 {
			t.Errorf("%d Hz: %g s, want about 2", tc.rate, s)
		}
		if f := dominantFreq(a.Mono(), a.Rate); math.Abs(f-tc.freq) > 0.01*tc.freq {
			t.Errorf("%d Hz: dominant frequency %g, want %g", tc.rate, f, tc.freq)
		}
	}
}

func TestDecodeFixtures(t *testing.T) {
	for _, tc := range []struct {
		file     string
		rate, ch int
		frames   int
		freq     float64
	}{{"sine.flac", 8000, 2, 800, 440}, {"sine.mp3", 16000, 2, -1, 440}} {
		b, err := os.ReadFile(filepath.Join("testdata", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		a, err := Decode(b)
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if a.Rate != tc.rate || a.Channels != tc.ch || (tc.frames > 0 && a.Frames() != tc.frames) {
			t.Errorf("%s: rate %d ch %d frames %d", tc.file, a.Rate, a.Channels, a.Frames())
		}
		left := make([]float32, a.Frames())
		for i := range left {
			left[i] = a.Samples[i*a.Channels]
		}
		if f := dominantFreq(left, a.Rate); math.Abs(f-tc.freq) > 0.02*tc.freq {
			t.Errorf("%s: dominant frequency %g", tc.file, f)
		}
	}
}

func TestDecodeMalformed(t *testing.T) {
	good := wavBytes(fmtChunk(1, 1, 8000, 2, 16), chunk("data", []byte{1, 2, 3, 4}))
	cases := map[string][]byte{
		"empty":           nil,
		"text":            []byte("hello, this is not audio"),
		"riff only":       []byte("RIFF\x00\x00\x00\x00WAVE"),
		"no data":         wavBytes(fmtChunk(1, 1, 8000, 2, 16)),
		"no fmt":          wavBytes(chunk("data", []byte{1, 2})),
		"zero channels":   wavBytes(fmtChunk(1, 0, 8000, 2, 16), chunk("data", []byte{1, 2})),
		"zero rate":       wavBytes(fmtChunk(1, 1, 0, 2, 16), chunk("data", []byte{1, 2})),
		"bad align":       wavBytes(fmtChunk(1, 2, 8000, 3, 16), chunk("data", []byte{1, 2})),
		"adpcm":           wavBytes(fmtChunk(2, 1, 8000, 2, 4), chunk("data", []byte{1, 2})),
		"float16":         wavBytes(fmtChunk(3, 1, 8000, 2, 16), chunk("data", []byte{1, 2})),
		"short fmt":       wavBytes(chunk("fmt ", []byte{1, 0, 1, 0}), chunk("data", []byte{1, 2})),
		"short ext fmt":   wavBytes(fmtChunk(0xFFFE, 1, 8000, 2, 16), chunk("data", []byte{1, 2})),
		"truncated fmt":   good[:30],
		"flac header":     []byte("fLaC\x00\x00\x00\x22"),
		"flac no frames":  nil,
		"mp3 sync only":   {0xFF, 0xFB, 0x90, 0x00},
		"id3 then junk":   append([]byte("ID3\x03\x00\x00\x00\x00\x00\x05"), []byte("junkjunkjunk")...),
		"flac bad stream": nil,
	}
	if b, err := os.ReadFile("testdata/sine.flac"); err == nil {
		cases["flac no frames"] = b[:8+34]
		bad := append([]byte(nil), b...)
		for i := 60; i < len(bad); i += 7 {
			bad[i] ^= 0x5a
		}
		cases["flac bad stream"] = bad
	}
	for name, b := range cases {
		a, err := Decode(b)
		if name == "flac no frames" && err == nil && a.Frames() == 0 {
			continue // a stream with no frames decodes to nothing
		}
		if err == nil {
			t.Errorf("%s: no error (%d samples)", name, len(a.Samples))
		}
	}
	if _, err := Decode([]byte("not audio at all")); !errors.Is(err, ErrFormat) {
		t.Errorf("unknown format error %v does not wrap ErrFormat", err)
	}
	if _, err := DecodeLimit(good, 1); !errors.Is(err, ErrTooLarge) {
		t.Errorf("limit error %v does not wrap ErrTooLarge", err)
	}
	if b, err := os.ReadFile("testdata/sine.flac"); err == nil {
		if _, err := DecodeLimit(b, 100); !errors.Is(err, ErrTooLarge) {
			t.Errorf("flac limit error %v does not wrap ErrTooLarge", err)
		}
	}
}

// TestDecodeTruncations decodes every prefix and many corruptions of each fixture: any
// result is fine but a panic.
func TestDecodeTruncations(t *testing.T) {
	var wav bytes.Buffer
	WriteWAV(&wav, &Audio{Samples: sine(300, 8000, 440, 0.5, 0), Rate: 8000, Channels: 1}, WAVPCM16)
	files := [][]byte{wav.Bytes()}
	for _, f := range []string{"sine.flac", "sine.mp3"} {
		b, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, b)
	}
	r := rand.New(rand.NewPCG(7, 8))
	for _, f := range files {
		step := 1 + len(f)/400
		if testing.Short() {
			step = 1 + len(f)/50
		}
		for n := 0; n < len(f); n += step {
			Decode(f[:n])
		}
		for i := 0; i < 300; i++ {
			c := append([]byte(nil), f...)
			switch p := r.IntN(len(c)); i % 3 {
			case 0: // overwrite bytes
				for j := 0; j < 1+r.IntN(8); j++ {
					c[r.IntN(len(c))] = byte(r.Uint32())
				}
			case 1: // delete a run
				c = append(c[:p], c[min(len(c), p+1+r.IntN(16)):]...)
			case 2: // insert random bytes
				ins := make([]byte, 1+r.IntN(16))
				for k := range ins {
					ins[k] = byte(r.Uint32())
				}
				c = append(c[:p], append(ins, c[p:]...)...)
			}
			Decode(c)
		}
	}
}

func TestWriteWAVRoundTrip(t *testing.T) {
	src := []float32{0, 0.5, -0.5, -1, 0.999, 0.25}
	for _, enc := range []WAVEncoding{WAVPCM16, WAVPCM24, WAVFloat32} {
		var buf bytes.Buffer
		if err := WriteWAV(&buf, &Audio{Samples: src, Rate: 12345, Channels: 2}, enc); err != nil {
			t.Fatal(err)
		}
		a, err := Decode(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if a.Rate != 12345 || a.Channels != 2 || len(a.Samples) != len(src) {
			t.Fatalf("enc %d: %+v", enc, a)
		}
		for i, v := range a.Samples {
			if math.Abs(float64(v-src[i])) > 1.0/32768 {
				t.Errorf("enc %d sample %d: %v want %v", enc, i, v, src[i])
			}
		}
	}
	if m := (&Audio{Samples: src, Channels: 2}).Mono(); len(m) != 3 || m[0] != 0.25 || m[1] != -0.75 {
		t.Errorf("Mono = %v", m)
	}
}

// TestDecodeFLACBitDepths encodes sox-made WAVs of 8, 16 and 24 bits with 1-3 channels
// with flac and checks the FLAC decodes to exactly the WAV's samples.
func TestDecodeFLACBitDepths(t *testing.T) {
	sox, flacBin := tool(t, "sox"), tool(t, "flac")
	dir := t.TempDir()
	for _, bits := range []string{"8", "16", "24"} {
		for _, ch := range []string{"1", "2", "3"} {
			wav := filepath.Join(dir, bits+"_"+ch+".wav")
			fl := filepath.Join(dir, bits+"_"+ch+".flac")
			run(t, sox, "-n", "-r", "32000", "-b", bits, "-c", ch, wav, "synth", "0.3", "sine", "440", "pinknoise", "vol", "0.5")
			run(t, flacBin, "-s", "-f", "--channel-map=none", "-o", fl, wav)
			w, err := Decode(readBytes(t, wav))
			if err != nil {
				t.Fatal(err)
			}
			f, err := Decode(readBytes(t, fl))
			if err != nil {
				t.Fatal(err)
			}
			if f.Rate != 32000 || f.Channels != w.Channels || len(f.Samples) != len(w.Samples) {
				t.Fatalf("%s bit %s ch: flac %d Hz %d ch %d samples, wav %d ch %d", bits, ch, f.Rate, f.Channels, len(f.Samples), w.Channels, len(w.Samples))
			}
			for i := range w.Samples {
				if f.Samples[i] != w.Samples[i] {
					t.Fatalf("%s bit %s ch: sample %d flac %v wav %v", bits, ch, i, f.Samples[i], w.Samples[i])
				}
			}
		}
	}
}
