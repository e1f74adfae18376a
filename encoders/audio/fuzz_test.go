package audio

import (
	"bytes"
	"os"
	"testing"
)

func fuzzSeed(f *testing.F, files ...string) {
	for _, name := range files {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// fuzzDecode checks that Decode never panics and that what it returns is consistent.
func fuzzDecode(t *testing.T, b []byte) {
	a, err := DecodeLimit(b, 1<<22)
	if err != nil {
		return
	}
	if a.Channels < 1 || a.Rate < 1 || len(a.Samples)%a.Channels != 0 {
		t.Fatalf("inconsistent audio: %d channels, %d Hz, %d samples", a.Channels, a.Rate, len(a.Samples))
	}
}

func FuzzDecodeWAV(f *testing.F) {
	for _, enc := range []WAVEncoding{WAVPCM16, WAVPCM24, WAVFloat32} {
		var buf bytes.Buffer
		WriteWAV(&buf, &Audio{Samples: sine(64, 8000, 440, 0.5, 0), Rate: 8000, Channels: 2}, enc)
		f.Add(buf.Bytes())
	}
	f.Add(wavBytes(extensibleChunk(1, 1, 96000, 4, 32, 24), chunk("data", []byte{0, 0, 0, 0x40})))
	f.Add(wavBytes(chunk("LIST", []byte("INFOx")), fmtChunk(7, 1, 8000, 1, 8), chunk("data", []byte{1, 2, 3})))
	f.Fuzz(fuzzDecode)
}

func FuzzDecodeFLAC(f *testing.F) {
	fuzzSeed(f, "sine.flac")
	f.Fuzz(fuzzDecode)
}

func FuzzDecodeMP3(f *testing.F) {
	fuzzSeed(f, "sine.mp3")
	f.Fuzz(fuzzDecode)
}
