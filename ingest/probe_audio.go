package ingest

import (
	"bytes"
	"encoding/binary"
	"math"
)

// AudioInfo is what probing an encoded audio file finds without decoding samples.
// Seconds is NaN when the container does not record the length (a FLAC stream with total
// samples 0).
type AudioInfo struct {
	Format     string // wav, flac or mp3
	SampleRate int
	Channels   int
	Seconds    float64
}

// AudioLimits bound the audio a probe accepts. Zero fields are no limit.
type AudioLimits struct {
	MaxSeconds float64 // longer is audio_too_long
}

// sniffAudio names the audio format from its magic bytes, or "".
func sniffAudio(b []byte) string {
	switch {
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WAVE":
		return "wav"
	case bytes.HasPrefix(b, []byte("fLaC")):
		return "flac"
	case bytes.HasPrefix(b, []byte("ID3")):
		if skipID3(b) < len(b) && bytes.HasPrefix(b[skipID3(b):], []byte("fLaC")) {
			return "flac"
		}
		return "mp3"
	case len(b) >= 2 && b[0] == 0xFF && b[1]&0xE0 == 0xE0:
		return "mp3"
	}
	return ""
}

// ProbeAudio finds the format, sample rate, channel count and duration of a wav (PCM of any
// width, IEEE float, WAVE_FORMAT_EXTENSIBLE, A-law, mu-law), flac or mp3 file from its
// headers (and, for mp3, the frame headers), and checks that the data is all there.
func ProbeAudio(b []byte, lim AudioLimits) (info AudioInfo, err error) {
	if len(b) == 0 {
		return info, perr(ReasonEmptyFile, "empty audio file")
	}
	info.Format = sniffAudio(b)
	switch info.Format {
	case "wav":
		err = probeWAV(b, &info)
	case "flac":
		err = probeFLAC(b, &info)
	case "mp3":
		err = probeMP3(b, &info)
	default:
		return info, perr(ReasonAudioUnknownFormat, "not a wav, flac or mp3 file (starts % x)", b[:min(len(b), 8)])
	}
	if err != nil {
		return info, err
	}
	if lim.MaxSeconds > 0 && info.Seconds > lim.MaxSeconds {
		return info, perr(ReasonAudioTooLong, "%.3f s > --max-seconds %g", info.Seconds, lim.MaxSeconds)
	}
	return info, nil
}

const (
	wavePCM        = 1
	waveFloat      = 3
	waveALaw       = 6
	waveMuLaw      = 7
	waveExtensible = 0xFFFE
)

func probeWAV(b []byte, info *AudioInfo) error {
	i := 12
	var tag, channels, blockAlign, bits int
	var rate int
	sawFmt := false
	for {
		if i+8 > len(b) {
			if !sawFmt {
				return perr(ReasonWAVTruncated, "wav ends at byte %d before the fmt chunk", len(b))
			}
			return perr(ReasonWAVTruncated, "wav ends at byte %d before the data chunk", len(b))
		}
		id := string(b[i : i+4])
		n := int64(binary.LittleEndian.Uint32(b[i+4 : i+8]))
		body := int64(i + 8)
		switch id {
		case "fmt ":
			if n < 16 || body+n > int64(len(b)) {
				if body+n > int64(len(b)) {
					return perr(ReasonWAVTruncated, "wav fmt chunk needs %d bytes, %d left", n, int64(len(b))-body)
				}
				return perr(ReasonAudioCorrupt, "wav fmt chunk is %d bytes", n)
			}
			f := b[body : body+n]
			tag = int(binary.LittleEndian.Uint16(f[0:2]))
			channels = int(binary.LittleEndian.Uint16(f[2:4]))
			rate = int(binary.LittleEndian.Uint32(f[4:8]))
			blockAlign = int(binary.LittleEndian.Uint16(f[12:14]))
			bits = int(binary.LittleEndian.Uint16(f[14:16]))
			if tag == waveExtensible {
				if n < 40 {
					return perr(ReasonAudioCorrupt, "WAVE_FORMAT_EXTENSIBLE fmt chunk is %d bytes, want 40", n)
				}
				tag = int(binary.LittleEndian.Uint16(f[24:26])) // first two bytes of the SubFormat GUID
			}
			switch {
			case tag == wavePCM && (bits == 8 || bits == 16 || bits == 24 || bits == 32 || bits == 64):
			case tag == waveFloat && (bits == 32 || bits == 64):
			case (tag == waveALaw || tag == waveMuLaw) && bits == 8:
			default:
				return perr(ReasonAudioCorrupt, "wav format tag %d with %d bits per sample is not PCM, float, A-law or mu-law", tag, bits)
			}
			if channels <= 0 || rate <= 0 {
				return perr(ReasonAudioCorrupt, "wav has %d channels at %d Hz", channels, rate)
			}
			if blockAlign != channels*bits/8 {
				return perr(ReasonAudioCorrupt, "wav block align %d, want %d channels x %d bits", blockAlign, channels, bits)
			}
			sawFmt = true
		case "data":
			if !sawFmt {
				return perr(ReasonAudioCorrupt, "wav data chunk before the fmt chunk")
			}
			left := int64(len(b)) - body
			if n == 0xFFFFFFFF || (n == 0 && left > 0) { // streamed wav: size unknown, data runs to the end
				n = left
			}
			if n > left {
				return perr(ReasonWAVTruncated, "wav data chunk declares %d bytes, file has %d", n, left)
			}
			info.SampleRate, info.Channels = rate, channels
			info.Seconds = float64(n/int64(blockAlign)) / float64(rate)
			return nil
		}
		i = int(body + n + n&1)
		if body+n > int64(len(b)) {
			return perr(ReasonWAVTruncated, "wav chunk %q needs %d bytes, %d left", id, n, int64(len(b))-body)
		}
	}
}

// skipID3 returns the offset just past a leading ID3v2 tag, or 0.
func skipID3(b []byte) int {
	if len(b) < 10 || string(b[:3]) != "ID3" {
		return 0
	}
	size := int(b[6]&0x7F)<<21 | int(b[7]&0x7F)<<14 | int(b[8]&0x7F)<<7 | int(b[9]&0x7F)
	off := 10 + size
	if b[5]&0x10 != 0 {
		off += 10 // footer
	}
	return off
}

func probeFLAC(b []byte, info *AudioInfo) error {
	i := skipID3(b) + 4
	sawInfo := false
	for {
		if i+4 > len(b) {
			return perr(ReasonAudioTruncated, "flac ends at byte %d inside the metadata", len(b))
		}
		last := b[i]&0x80 != 0
		typ := b[i] & 0x7F
		n := int(b[i+1])<<16 | int(b[i+2])<<8 | int(b[i+3])
		i += 4
		if i+n > len(b) {
			return perr(ReasonAudioTruncated, "flac metadata block %d needs %d bytes, %d left", typ, n, len(b)-i)
		}
		if typ == 0 {
			if n != 34 {
				return perr(ReasonAudioCorrupt, "flac STREAMINFO is %d bytes, want 34", n)
			}
			s := b[i+10 : i+18]
			v := binary.BigEndian.Uint64(s)
			rate := int(v >> 44)
			ch := int(v>>41&7) + 1
			total := v & (1<<36 - 1)
			if rate == 0 {
				return perr(ReasonAudioCorrupt, "flac STREAMINFO sample rate 0")
			}
			info.SampleRate, info.Channels = rate, ch
			info.Seconds = math.NaN()
			if total > 0 {
				info.Seconds = float64(total) / float64(rate)
			}
			sawInfo = true
		} else if !sawInfo {
			return perr(ReasonAudioCorrupt, "flac metadata does not start with STREAMINFO")
		}
		i += n
		if typ == 127 {
			return perr(ReasonAudioCorrupt, "flac metadata block type 127 is invalid")
		}
		if last {
			break
		}
	}
	if !sawInfo {
		return perr(ReasonAudioCorrupt, "flac has no STREAMINFO")
	}
	if i+2 > len(b) {
		return perr(ReasonAudioTruncated, "flac has no audio frames after its metadata")
	}
	if b[i] != 0xFF || b[i+1]&0xFE != 0xF8 {
		return perr(ReasonAudioCorrupt, "flac first frame does not start with the frame sync code")
	}
	return nil
}

var (
	// mp3Bitrates[versionIsMPEG1][layer-1][index] in kbit/s; layer is 1, 2 or 3.
	mp3Bitrates = [2][3][16]int{
		{ // MPEG-2 and 2.5
			{0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256, -1},
			{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, -1},
			{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, -1},
		},
		{ // MPEG-1
			{0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448, -1},
			{0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, -1},
			{0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, -1},
		},
	}
	// mp3Rates[version bits][index]: version bits 0 = MPEG-2.5, 2 = MPEG-2, 3 = MPEG-1.
	mp3Rates = [4][3]int{{11025, 12000, 8000}, {}, {22050, 24000, 16000}, {44100, 48000, 32000}}
)

// mp3Frame parses the 4-byte frame header at b and returns the frame length in bytes,
// samples per frame, sample rate and channel count; ok is false when b is not a header.
func mp3Frame(b []byte) (length, samples, rate, channels int, ok bool) {
	if len(b) < 4 || b[0] != 0xFF || b[1]&0xE0 != 0xE0 {
		return
	}
	ver := int(b[1]>>3) & 3
	layerBits := int(b[1]>>1) & 3
	brIdx := int(b[2] >> 4)
	srIdx := int(b[2]>>2) & 3
	pad := int(b[2]>>1) & 1
	if ver == 1 || layerBits == 0 || brIdx == 0 || brIdx == 15 || srIdx == 3 {
		return
	}
	layer := 4 - layerBits
	mpeg1 := 0
	if ver == 3 {
		mpeg1 = 1
	}
	br := mp3Bitrates[mpeg1][layer-1][brIdx] * 1000
	rate = mp3Rates[ver][srIdx]
	channels = 2
	if b[3]>>6 == 3 {
		channels = 1
	}
	switch {
	case layer == 1:
		length, samples = (12*br/rate+pad)*4, 384
	case layer == 2 || mpeg1 == 1:
		length, samples = 144*br/rate+pad, 1152
	default:
		length, samples = 72*br/rate+pad, 576
	}
	return length, samples, rate, channels, length >= 4
}

func probeMP3(b []byte, info *AudioInfo) error {
	i := skipID3(b)
	// Allow a little junk before the first frame; require two consecutive frames to lock on.
	start := -1
	for j := i; j < len(b) && j < i+4096; j++ {
		n, _, r, _, ok := mp3Frame(b[j:])
		if !ok {
			continue
		}
		if j+n == len(b) {
			start = j
			break
		}
		if j+n > len(b) {
			continue // a frame running past the end is not a lock (found by FuzzProbeAudio)
		}
		if n2, _, r2, _, ok2 := mp3Frame(b[j+n:]); ok2 && r2 == r && n2 > 0 {
			start = j
			break
		}
	}
	if start < 0 {
		if len(b)-i < 4 {
			return perr(ReasonAudioTruncated, "mp3 ends before its first frame")
		}
		return perr(ReasonAudioCorrupt, "no mp3 frame header found")
	}
	xingFrames, delay, padding := mp3Xing(b[start:])
	var total int64
	frames := 0
	i = start
	for i < len(b) {
		n, s, r, ch, ok := mp3Frame(b[i:])
		if !ok {
			break // trailing tag (ID3v1 "TAG", APE) or junk after the last frame
		}
		if i+n > len(b) {
			return perr(ReasonAudioTruncated, "mp3 frame %d at byte %d needs %d bytes, %d left", frames, i, n, len(b)-i)
		}
		if frames == 0 {
			info.SampleRate, info.Channels = r, ch
		} else if r != info.SampleRate {
			break
		}
		total += int64(s)
		frames++
		i += n
	}
	if xingFrames > 0 {
		// The Xing/Info frame itself carries no audio; its count excludes it.
		audioFrames := frames - 1
		if audioFrames < xingFrames {
			return perr(ReasonAudioTruncated, "mp3 has %d frames, its Xing header declares %d", audioFrames, xingFrames)
		}
		spf := total / int64(frames)
		total = int64(xingFrames)*spf - int64(delay) - int64(padding)
		if total < 0 {
			total = 0
		}
	}
	info.Seconds = float64(total) / float64(info.SampleRate)
	return nil
}

// mp3Xing reads the Xing/Info header of the first frame (VBR and LAME-written files): the
// number of audio frames and, from the LAME extension, the encoder delay and padding in
// samples, so that the duration matches a gapless decoder. frames is 0 when absent.
func mp3Xing(b []byte) (frames, delay, padding int) {
	if len(b) < 4 {
		return
	}
	ver := int(b[1]>>3) & 3
	mono := b[3]>>6 == 3
	var side int
	switch {
	case ver == 3 && !mono:
		side = 32
	case ver == 3 || !mono:
		side = 17
	default:
		side = 9
	}
	x := 4 + side
	if len(b) < x+16 || (string(b[x:x+4]) != "Xing" && string(b[x:x+4]) != "Info") {
		return
	}
	flags := binary.BigEndian.Uint32(b[x+4 : x+8])
	off := x + 8
	if flags&1 == 0 {
		return
	}
	frames = int(binary.BigEndian.Uint32(b[off : off+4]))
	off += 4
	if flags&2 != 0 {
		off += 4 // bytes
	}
	if flags&4 != 0 {
		off += 100 // TOC
	}
	if flags&8 != 0 {
		off += 4 // quality
	}
	// LAME extension: 9-byte version string, then at +21 the 12-bit delay and padding.
	if len(b) >= off+24 && string(b[off:off+4]) == "LAME" {
		d := b[off+21 : off+24]
		delay = int(d[0])<<4 | int(d[1])>>4
		padding = int(d[1]&0x0F)<<8 | int(d[2])
		// A gapless decoder also drops the decoder delay of 528+1 samples from the start
		// and adds it back at the end, which leaves the total unchanged.
	}
	return
}
