package audio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// WAVE format tags.
const (
	wavePCM        = 0x0001
	waveFloat      = 0x0003
	waveALaw       = 0x0006
	waveMuLaw      = 0x0007
	waveExtensible = 0xFFFE
)

var errWAVNoFmt = errors.New("audio: wav: no fmt chunk")

type wavHeader struct {
	tag        int // resolved format tag (extensible resolved to its sub-format)
	channels   int
	rate       int
	bits       int // declared (valid) bits per sample
	container  int // bytes per sample in the data chunk
	blockAlign int
	dataOff    int
	dataLen    int // bytes, clamped to the file and to whole blocks
}

func (h *wavHeader) frames() int { return h.dataLen / h.blockAlign }

// parseWAVHeader walks the RIFF chunks: fmt and data in any order, unknown chunks
// skipped, odd chunk sizes padded, a data size larger than the file (streaming writers
// write 0xFFFFFFFF) clamped to what is there.
func parseWAVHeader(data []byte) (*wavHeader, error) {
	if len(data) < 12 || string(data[0:4]) != "RIFF" || string(data[8:12]) != "WAVE" {
		return nil, fmt.Errorf("%w: not a RIFF/WAVE file", ErrFormat)
	}
	h := &wavHeader{dataOff: -1}
	haveFmt := false
	off := 12
	for off+8 <= len(data) {
		id := string(data[off : off+4])
		size := int(binary.LittleEndian.Uint32(data[off+4 : off+8]))
		body := off + 8
		switch id {
		case "fmt ":
			if size < 16 || body+size > len(data) {
				return nil, fmt.Errorf("audio: wav: fmt chunk of %d bytes at offset %d is truncated or too short", size, off)
			}
			if err := h.parseFmt(data[body : body+size]); err != nil {
				return nil, err
			}
			haveFmt = true
		case "data":
			if size > len(data)-body || size < 0 {
				size = len(data) - body
			}
			h.dataOff, h.dataLen = body, size
		}
		if haveFmt && h.dataOff >= 0 {
			break
		}
		next := body + size + size&1
		if next <= off || next > len(data) {
			break
		}
		off = next
	}
	if !haveFmt {
		return nil, errWAVNoFmt
	}
	if h.dataOff < 0 {
		return nil, errors.New("audio: wav: no data chunk")
	}
	h.dataLen -= h.dataLen % h.blockAlign
	return h, nil
}

func (h *wavHeader) parseFmt(b []byte) error {
	le := binary.LittleEndian
	h.tag = int(le.Uint16(b[0:2]))
	h.channels = int(le.Uint16(b[2:4]))
	h.rate = int(le.Uint32(b[4:8]))
	h.blockAlign = int(le.Uint16(b[12:14]))
	h.bits = int(le.Uint16(b[14:16]))
	if h.tag == waveExtensible {
		if len(b) < 40 {
			return fmt.Errorf("audio: wav: WAVE_FORMAT_EXTENSIBLE fmt chunk has %d bytes, want 40", len(b))
		}
		if vb := int(le.Uint16(b[18:20])); vb > 0 {
			h.bits = vb
		}
		h.tag = int(le.Uint16(b[24:26])) // first two bytes of the sub-format GUID
	}
	switch {
	case h.channels < 1 || h.channels > 256:
		return fmt.Errorf("audio: wav: %d channels", h.channels)
	case h.rate < 1 || h.rate > 1<<22:
		return fmt.Errorf("audio: wav: sample rate %d Hz", h.rate)
	case h.blockAlign < h.channels || h.blockAlign%h.channels != 0:
		return fmt.Errorf("audio: wav: block align %d does not fit %d channels", h.blockAlign, h.channels)
	}
	h.container = h.blockAlign / h.channels
	if h.bits == 0 || h.bits > 8*h.container {
		h.bits = 8 * h.container
	}
	switch h.tag {
	case wavePCM:
		if h.container > 4 {
			return fmt.Errorf("audio: wav: %d-byte PCM samples are not supported", h.container)
		}
	case waveFloat:
		if h.container != 4 && h.container != 8 {
			return fmt.Errorf("audio: wav: %d-byte float samples, want 4 or 8", h.container)
		}
	case waveALaw, waveMuLaw:
		if h.container != 1 {
			return fmt.Errorf("audio: wav: %d-byte G.711 samples, want 1", h.container)
		}
	default:
		return fmt.Errorf("%w: wav format tag 0x%04x is not supported", ErrFormat, h.tag)
	}
	return nil
}

func decodeWAV(data []byte, maxSamples int) (*Audio, error) {
	h, err := parseWAVHeader(data)
	if err != nil {
		return nil, err
	}
	n := h.dataLen / h.container
	if n > maxSamples {
		return nil, tooLarge("wav", int64(n), maxSamples)
	}
	out := make([]float32, n)
	convertWAV(out, data[h.dataOff:h.dataOff+h.dataLen], h)
	return &Audio{Samples: out, Rate: h.rate, Channels: h.channels}, nil
}

// convertWAV converts little-endian samples to float32 with one tight loop per layout.
// Integers are scaled by their container width: 16-bit by 1/32768, 24-bit by 1/2^23,
// 32-bit by 1/2^31, unsigned 8-bit as (u-128)/128.
func convertWAV(out []float32, b []byte, h *wavHeader) {
	switch h.tag {
	case wavePCM:
		switch h.container {
		case 1:
			for i := range out {
				out[i] = float32(int(b[i])-128) * (1.0 / 128)
			}
		case 2:
			b = b[:2*len(out)]
			for i := range out {
				out[i] = float32(int16(uint16(b[2*i])|uint16(b[2*i+1])<<8)) * (1.0 / 32768)
			}
		case 3:
			b = b[:3*len(out)]
			for i := range out {
				v := int32(uint32(b[3*i])<<8|uint32(b[3*i+1])<<16|uint32(b[3*i+2])<<24) >> 8
				out[i] = float32(v) * (1.0 / (1 << 23))
			}
		case 4:
			b = b[:4*len(out)]
			for i := range out {
				v := int32(binary.LittleEndian.Uint32(b[4*i:]))
				out[i] = float32(float64(v) * (1.0 / (1 << 31)))
			}
		}
	case waveFloat:
		if h.container == 4 {
			b = b[:4*len(out)]
			for i := range out {
				out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			}
		} else {
			b = b[:8*len(out)]
			for i := range out {
				out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
			}
		}
	case waveALaw:
		for i := range out {
			out[i] = float32(alawToLinear(b[i])) * (1.0 / 32768)
		}
	case waveMuLaw:
		for i := range out {
			out[i] = float32(g711MulawToLinear(b[i])) * (1.0 / 32768)
		}
	}
}

// alawToLinear is the G.711 A-law expansion to 16-bit linear PCM.
func alawToLinear(a byte) int16 {
	a ^= 0x55
	t := int16(a&0x0f) << 4
	seg := (a & 0x70) >> 4
	switch seg {
	case 0:
		t += 8
	case 1:
		t += 0x108
	default:
		t += 0x108
		t <<= seg - 1
	}
	if a&0x80 != 0 {
		return t
	}
	return -t
}

// g711MulawToLinear is the G.711 mu-law expansion to 16-bit linear PCM.
func g711MulawToLinear(u byte) int16 {
	u = ^u
	t := (int16(u&0x0f) << 3) + 0x84
	t <<= (u & 0x70) >> 4
	if u&0x80 != 0 {
		return 0x84 - t
	}
	return t - 0x84
}

// WAVEncoding selects the sample format WriteWAV writes.
type WAVEncoding int

// Sample formats for WriteWAV.
const (
	WAVPCM16   WAVEncoding = iota // 16-bit signed PCM, clipped to [-1, 1)
	WAVPCM24                      // 24-bit signed PCM
	WAVFloat32                    // IEEE float32, unclipped
)

// WriteWAV writes a canonical RIFF/WAVE file (fmt + data chunks) holding a.Samples
// (interleaved) in the given encoding.
func WriteWAV(w io.Writer, a *Audio, enc WAVEncoding) error {
	if a.Channels < 1 || a.Channels > 0xffff || a.Rate < 1 {
		return fmt.Errorf("audio: write wav: %d channels at %d Hz", a.Channels, a.Rate)
	}
	var width, tag int
	switch enc {
	case WAVPCM16:
		width, tag = 2, wavePCM
	case WAVPCM24:
		width, tag = 3, wavePCM
	case WAVFloat32:
		width, tag = 4, waveFloat
	default:
		return fmt.Errorf("audio: write wav: unknown encoding %d", enc)
	}
	n := len(a.Samples) - len(a.Samples)%a.Channels
	dataLen := n * width
	if dataLen > math.MaxUint32-36 {
		return fmt.Errorf("audio: write wav: %d bytes of samples do not fit a RIFF file", dataLen)
	}
	buf := make([]byte, 44+dataLen)
	le := binary.LittleEndian
	copy(buf[0:], "RIFF")
	le.PutUint32(buf[4:], uint32(36+dataLen))
	copy(buf[8:], "WAVEfmt ")
	le.PutUint32(buf[16:], 16)
	le.PutUint16(buf[20:], uint16(tag))
	le.PutUint16(buf[22:], uint16(a.Channels))
	le.PutUint32(buf[24:], uint32(a.Rate))
	le.PutUint32(buf[28:], uint32(a.Rate*a.Channels*width))
	le.PutUint16(buf[32:], uint16(a.Channels*width))
	le.PutUint16(buf[34:], uint16(8*width))
	copy(buf[36:], "data")
	le.PutUint32(buf[40:], uint32(dataLen))
	d := buf[44:]
	for i, v := range a.Samples[:n] {
		switch enc {
		case WAVPCM16:
			le.PutUint16(d[2*i:], uint16(quantize(v, 1<<15)))
		case WAVPCM24:
			q := quantize(v, 1<<23)
			d[3*i], d[3*i+1], d[3*i+2] = byte(q), byte(q>>8), byte(q>>16)
		case WAVFloat32:
			le.PutUint32(d[4*i:], math.Float32bits(v))
		}
	}
	_, err := w.Write(buf)
	return err
}

// quantize rounds v*scale to the nearest integer in [-scale, scale-1].
func quantize(v float32, scale int32) int32 {
	x := math.Round(float64(v) * float64(scale))
	if x >= float64(scale) {
		return scale - 1
	}
	if x < -float64(scale) || math.IsNaN(x) {
		if math.IsNaN(x) {
			return 0
		}
		return -scale
	}
	return int32(x)
}
