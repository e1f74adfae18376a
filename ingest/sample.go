package ingest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math"
	"path"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Kind is the role of one file of a sample group, taken from its extension.
type Kind int

// Member kinds.
const (
	KindUnknown Kind = iota
	KindImage
	KindAudio
	KindText
	KindLabel // .cls/.label: the class label as text
	KindMeta  // .json: a JSON object kept in the meta column
)

func (k Kind) String() string {
	return [...]string{"unknown", "image", "audio", "text", "label", "meta"}[k]
}

// kindOfExt classifies a lower-case extension without the dot.
func kindOfExt(ext string) Kind {
	switch ext {
	case "jpg", "jpeg", "png", "gif", "webp", "bmp", "tif", "tiff":
		return KindImage
	case "wav", "flac", "mp3":
		return KindAudio
	case "txt", "text", "caption":
		return KindText
	case "cls", "label":
		return KindLabel
	case "json":
		return KindMeta
	}
	return KindUnknown
}

// splitKey splits a base name the way webdataset does: the key is everything before the
// first dot, and the member's kind comes from its last extension ("a.seg.png" is an image).
func splitKey(base string) (key, ext string) {
	i := strings.IndexByte(base, '.')
	if i < 0 {
		return base, ""
	}
	return base[:i], strings.ToLower(path.Ext(base)[1:])
}

// Member is one file of a sample group. Exactly one of Data and Load provides the bytes.
type Member struct {
	Kind   Kind
	Name   string                 // base name, stored in the struct's path field of image/audio
	Source string                 // where it came from, as reported in rejects
	Data   []byte                 // bytes already in memory (tar members, base64 fields)
	Load   func() ([]byte, error) // reads the bytes (directory files), returning a *probeError when unusable
}

// Candidate is one input item: the members sharing a key (cat.jpg, cat.txt, cat.wav), or a
// text record, or an item a source already rejected. It ends as exactly one sample row, one
// duplicate count or one reject row.
type Candidate struct {
	Key, Source string
	Label       *string // set by the source when known (parent dir, label field)
	Text        *string // text from a record field or a text unit, validated like a text file
	Meta        string  // JSON object of remaining fields, or ""
	Members     []Member
	Reject      *Reject // set when the source rejects the item itself
}

// Sample is an accepted row of the raw-sample table. Image and Audio hold the original
// encoded bytes unchanged; nil means the sample has no such modality.
type Sample struct {
	Key, Source string
	Image       []byte
	ImagePath   string
	Img         ImageInfo
	Audio       []byte
	AudioPath   string
	Aud         AudioInfo
	Text        *string
	Label       *string
	Meta        string
	SHA256      [32]byte
	BytesIn     int64 // bytes read from the input for this sample
}

// ProbeOptions are the limits applied to every candidate.
type ProbeOptions struct {
	Image    ImageLimits
	Audio    AudioLimits
	MinChars int // texts with fewer non-space characters are text_too_short
}

// sampleHashPrefix starts every sample hash; change it only together with docs/ingest.md.
const sampleHashPrefix = "immkit-sample-v1\x00"

// SampleHash is the content hash used for exact dedup: sha256 over sampleHashPrefix followed,
// for each present modality in the order image, audio, text, by a tag byte ('I', 'A', 'T'),
// the length as 8 bytes big-endian and the bytes (media as stored, text NFC UTF-8). Keys,
// labels, sources and meta are not part of it.
func SampleHash(image, audio []byte, text *string) [32]byte {
	h := sha256.New()
	h.Write([]byte(sampleHashPrefix))
	part := func(h hash.Hash, tag byte, b []byte) {
		var hdr [9]byte
		hdr[0] = tag
		binary.BigEndian.PutUint64(hdr[1:], uint64(len(b)))
		h.Write(hdr[:])
		h.Write(b)
	}
	if image != nil {
		part(h, 'I', image)
	}
	if audio != nil {
		part(h, 'A', audio)
	}
	if text != nil {
		part(h, 'T', []byte(*text))
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// NormalizeText checks that b is UTF-8 (a leading byte-order mark is dropped), converts it
// to NFC and applies minChars (counted in runes, ignoring surrounding white space).
func NormalizeText(b []byte, minChars int) (string, error) {
	b = bytes.TrimPrefix(b, []byte("\xEF\xBB\xBF"))
	if !utf8.Valid(b) {
		off := 0
		for off < len(b) {
			r, n := utf8.DecodeRune(b[off:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			off += n
		}
		return "", perr(ReasonTextNotUTF8, "invalid UTF-8 at byte %d", off)
	}
	s := string(b)
	if !norm.NFC.IsNormalString(s) {
		s = norm.NFC.String(s)
	}
	if minChars > 0 {
		if n := utf8.RuneCountInString(strings.TrimSpace(s)); n < minChars {
			return "", perr(ReasonTextTooShort, "%d characters < --min-chars %d", n, minChars)
		}
	}
	return s, nil
}

// Probe turns a candidate into a sample, or a reject naming the first bad member. It never
// panics on bad input: a panic inside a header decoder becomes a decoder_panic reject.
func (o *ProbeOptions) Probe(c *Candidate) (s *Sample, rej *Reject, bytesIn int64) {
	if c.Reject != nil {
		return nil, c.Reject, 0
	}
	s = &Sample{Key: c.Key, Source: c.Source, Label: c.Label, Meta: c.Meta}
	fail := func(src string, err error) (*Sample, *Reject, int64) {
		var pe *probeError
		if !errors.As(err, &pe) {
			pe = &probeError{reason: ReasonReadError, detail: err.Error()}
		}
		return nil, &Reject{Source: src, Stage: StageProbe, Reason: pe.reason, Detail: pe.detail}, bytesIn
	}
	defer func() {
		if r := recover(); r != nil {
			s, rej = nil, &Reject{Source: c.Source, Stage: StageProbe, Reason: ReasonDecoderPanic, Detail: fmt.Sprint(r)}
		}
	}()
	if c.Text != nil {
		t, err := NormalizeText([]byte(*c.Text), o.MinChars)
		if err != nil {
			return fail(c.Source, err)
		}
		s.Text = &t
	}
	for i := range c.Members {
		m := &c.Members[i]
		b := m.Data
		if m.Load != nil {
			var err error
			if b, err = m.Load(); err != nil {
				return fail(m.Source, err)
			}
		}
		bytesIn += int64(len(b))
		if len(b) == 0 {
			return fail(m.Source, perr(ReasonEmptyFile, "%s file is empty", m.Kind))
		}
		switch m.Kind {
		case KindImage:
			info, err := ProbeImage(b, o.Image)
			if err != nil {
				return fail(m.Source, err)
			}
			s.Image, s.ImagePath, s.Img = b, m.Name, info
		case KindAudio:
			info, err := ProbeAudio(b, o.Audio)
			if err != nil {
				return fail(m.Source, err)
			}
			s.Audio, s.AudioPath, s.Aud = b, m.Name, info
		case KindText:
			t, err := NormalizeText(b, o.MinChars)
			if err != nil {
				return fail(m.Source, err)
			}
			s.Text = &t
		case KindLabel:
			t, err := NormalizeText(b, 0)
			if err != nil {
				return fail(m.Source, err)
			}
			t = strings.TrimSpace(t)
			s.Label = &t
		case KindMeta:
			var obj map[string]any
			if err := json.Unmarshal(b, &obj); err != nil {
				return fail(m.Source, perr(ReasonBadJSON, "not a JSON object: %v", err))
			}
			s.Meta = string(bytes.TrimSpace(b))
		default:
			return fail(m.Source, perr(ReasonUnknownExtension, "no image, audio or text extension"))
		}
	}
	if s.Image == nil && s.Audio == nil && s.Text == nil {
		return fail(c.Source, perr(ReasonNoContent, "no image, audio or text in the sample"))
	}
	s.SHA256 = SampleHash(s.Image, s.Audio, s.Text)
	s.BytesIn = bytesIn
	return s, nil, bytesIn
}

// nullableSeconds maps an unknown duration to a null column value.
func nullableSeconds(v float64) (float64, bool) { return v, !math.IsNaN(v) }
