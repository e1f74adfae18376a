package image

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"sync"
)

// This file is the "jpeg-dc" path: a baseline JPEG decoded at 1/8 of its size straight from
// its DCT coefficients, in pure Go, computing what libjpeg-turbo computes at scale 1/8:
//
//   - a block whose component is not subsampled (luma; every component of 4:4:4, 4:2:2 and
//     4:4:0 pictures) becomes one sample, libjpeg's 1×1 IDCT: clamp(((DC·q₀ + 4) >> 3) + 128);
//   - a chroma block of a 4:2:0 picture becomes 2×2 samples, libjpeg's reduced 2×2 IDCT
//     (jidctred.c, jpeg_idct_2x2, same integer arithmetic), so no upsampling is needed;
//   - chroma of 4:2:2 and 4:4:0 is replicated (libjpeg upsamples 1×1-IDCT samples that way);
//   - YCbCr to RGB with libjpeg's fixed-point tables (jdcolor.c).
//
// At 1/8 nearly all of libjpeg's time is entropy decoding, and most of that is AC
// coefficients that a 1×1 IDCT throws away; here they are only skipped: one lookup in a
// 2^12-entry table (huffTable.multi) steps over as many whole AC symbols (codes and
// magnitude bits, never decoded) as start in the next 12 bits, two lookups per refill of the
// bit buffer. The entropy-coded data is first copied without its stuffed zero bytes
// (0xFF00 -> 0xFF) and split at restart markers, so the bit reader reads 8 bytes at a time
// with no marker checks, and the hot loop (skipBlock, readBlock) keeps the reader's state in
// registers.
//
// Anything else (progressive or arithmetic coding, 12-bit samples, CMYK/YCCK, RGB-coded
// pictures, other sampling factors, multi-scan baseline, corrupt data) returns
// errDCUnsupported or a decoding error, and the caller falls back to the other paths.

// dcPad is the zero padding after the entropy-coded data: the reader may run 256 bytes past
// the end of an interval before the per-MCU check stops it, plus one MCU (at most 6 blocks of
// at most 256 bytes each), plus an 8-byte load.
const dcPad = 2048

var dcZeros [dcPad]byte

// cleanPool holds the buffers that receive the unstuffed entropy-coded data (*[]byte).
var cleanPool = sync.Pool{New: func() any { return new([]byte) }}

// huffCache holds built Huffman tables by their DHT bytes (class, counts, symbols): most
// JPEGs carry the same few tables (libjpeg's defaults), and building one costs more than a
// small picture's decode. Tables are immutable once built. At most maxHuffCache are kept.
var (
	huffMu    sync.Mutex
	huffCache = map[string]*huffTable{}
)

const maxHuffCache = 64

// huffTableOf returns the table of a DHT entry: spec is its 16 counts and its symbols.
func huffTableOf(ac bool, spec []byte) (*huffTable, error) {
	key := string(spec)
	if ac {
		key = "a" + key
	} else {
		key = "d" + key
	}
	huffMu.Lock()
	t := huffCache[key]
	huffMu.Unlock()
	if t != nil {
		return t, nil
	}
	t = new(huffTable)
	var counts [16]uint8
	copy(counts[:], spec[:16])
	if err := t.build(counts, spec[16:], ac); err != nil {
		return nil, err
	}
	huffMu.Lock()
	if len(huffCache) < maxHuffCache {
		huffCache[key] = t
	}
	huffMu.Unlock()
	return t, nil
}

// errDCShort says an interval's entropy-coded data ended before its last block.
var errDCShort = fmt.Errorf("%w: jpeg-dc: entropy-coded data ends early", ErrFormat)

// errDCUnsupported says the picture is valid for other decoders but not for the jpeg-dc path.
var errDCUnsupported = errors.New("image: jpeg-dc: not a baseline YCbCr/grey JPEG with 1x1 chroma")

// zigzag maps the zig-zag index of a coefficient to its natural (row-major) index.
var zigzag = [64]uint8{
	0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
	12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
	35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
	58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
}

const huffLookBits = 11

// dcSlot maps a natural coefficient index to its place among the 25 coefficients the reduced
// 2×2 IDCT reads (row r, column c in {0, 1, 3, 5, 7}: slot = 5·ri + ci), or 255; zzSlot is
// the same by zig-zag index.
var dcSlot, zzSlot = func() (nat, zz [64]uint8) {
	pos := [8]int{0, 1, -1, 2, -1, 3, -1, 4}
	for i := range 64 {
		nat[i] = 255
		if ri, ci := pos[i/8], pos[i%8]; ri >= 0 && ci >= 0 {
			nat[i] = uint8(5*ri + ci)
		}
	}
	for k := range 64 {
		zz[k] = nat[zigzag[k]]
	}
	return
}()

// huffTable is a canonical Huffman table of a DHT segment.
type huffTable struct {
	// fast[peek] = codeLength<<8 | symbol for codes of at most huffLookBits bits, 0 otherwise.
	fast [1 << huffLookBits]uint16
	// fastAC[peek] (AC tables) decodes one non-zero AC coefficient whose code and magnitude
	// bits both lie in the peeked bits: value<<16 | run<<8 | bits; 0 otherwise.
	fastAC [1 << huffLookBits]int32
	// multi[peek] (AC tables), peek being the next multiBits bits, steps over as many
	// whole AC symbols (code and magnitude bits) as lie in the peeked bits, up to and
	// including an end of block, or over one symbol whose code lies in them but whose
	// magnitude bits run past them: limit<<16 | eob<<15 | coefficientsAdvanced<<8 | bits.
	// The step is valid when the block's coefficient index k < limit (64 minus what the
	// symbols before the last advance, so the block does not end inside the step);
	// coefficientsAdvanced excludes the end of block; 0 means a code longer than multiBits.
	multi   [1 << multiBits]uint32
	maxCode [18]int32 // maxCode[l]: largest code of length l, -1 if none; maxCode[17] sentinel
	valPtr  [17]int32 // index in vals of the first code of length l, minus that code
	vals    [256]uint8
	defined bool
}

func (h *huffTable) build(counts [16]uint8, vals []uint8, ac bool) error {
	*h = huffTable{defined: true}
	copy(h.vals[:], vals)
	code, k := int32(0), int32(0)
	for l := 1; l <= 16; l++ {
		n := int32(counts[l-1])
		if code+n > 1<<l {
			return fmt.Errorf("%w: jpeg-dc: bad Huffman table", ErrFormat)
		}
		h.valPtr[l] = k - code
		if n == 0 {
			h.maxCode[l] = -1
		} else {
			for i := int32(0); i < n; i++ {
				if l <= huffLookBits {
					sym := vals[k+i]
					pre := int(code+i) << (huffLookBits - l)
					for j := 0; j < 1<<(huffLookBits-l); j++ {
						h.fast[pre+j] = uint16(l)<<8 | uint16(sym)
					}
				}
			}
			h.maxCode[l] = code + n - 1
			k += n
			code += n
		}
		code <<= 1
	}
	h.maxCode[17] = 1 << 30
	if ac {
		h.buildMulti()
		for i, e := range h.fast {
			l, sym := uint(e>>8), e&0xFF
			run, size := uint(sym>>4), uint(sym&15)
			if e == 0 || size == 0 || l+size > huffLookBits {
				continue
			}
			v := int32(i>>(huffLookBits-l-size)) & (1<<size - 1)
			if v < 1<<(size-1) {
				v += -1<<size + 1
			}
			h.fastAC[i] = v<<16 | int32(run)<<8 | int32(l+size)
		}
	}
	return nil
}

// multiBits is the width of the peek that indexes huffTable.multi.
const multiBits = 12

// buildMulti fills h.multi from the canonical code (maxCode, valPtr, vals).
func (h *huffTable) buildMulti() {
	for i := range h.multi {
		var (
			used    uint32 // bits of the peek consumed by whole symbols
			adv     uint32 // coefficients advanced, end of block excluded
			prefix  uint32 // adv before the last symbol taken
			eob     uint32
			entry   uint32
			bitsAll = uint32(i) << (32 - multiBits) // peek, left-aligned in 32 bits
		)
		for used < multiBits && eob == 0 {
			rest := multiBits - used
			w := bitsAll << used
			l, sym, ok := h.canonical(w, rest)
			if !ok {
				break
			}
			run, size := uint32(sym>>4), uint32(sym&15)
			a := run + 1
			switch {
			case size == 0 && run == 15:
				a = 16
			case size == 0:
				a, eob = 0, 1
			}
			if adv+a > 63 {
				break
			}
			// The code lies in the peek; its magnitude bits may run past it (then it is
			// the last symbol of the step).
			prefix = adv
			adv += a
			used += l + size
			entry = (64-prefix)<<16 | eob<<15 | adv<<8 | used
		}
		h.multi[i] = entry
	}
}

// canonical decodes the Huffman symbol at the top of w using at most avail bits: its code
// length, the symbol, and whether a code was found.
func (h *huffTable) canonical(w uint32, avail uint32) (uint32, uint8, bool) {
	for l := uint32(1); l <= 16 && l <= avail; l++ {
		if c := int32(w >> (32 - l)); c <= h.maxCode[l] {
			return l, h.vals[(c+h.valPtr[l])&255], true
		}
	}
	return 0, 0, false
}

// bitReader reads bits from entropy-coded data with the stuffing removed; buf is padded so
// that an 8-byte load at any position the reader reaches stays inside it.
type bitReader struct {
	buf []byte
	p   int    // next byte of buf to load into acc
	acc uint64 // the next n bits, left-aligned
	n   uint
}

// reset starts reading at byte p (a restart interval starts byte-aligned).
func (r *bitReader) reset(p int) { r.p, r.acc, r.n = p, 0, 0 }

// consumed returns the number of bits read so far.
func (r *bitReader) consumed() int { return r.p*8 - int(r.n) }

// fill makes at least 56 bits available without a branch: it loads the 8 bytes at p below
// the n bits held (bits already held are loaded again with the same values) and advances p
// by the whole bytes taken (F. Giesen's "variant 4" refill).
func (r *bitReader) fill() {
	r.acc |= binary.BigEndian.Uint64(r.buf[r.p:]) >> (r.n & 63)
	r.p += int(63-r.n) >> 3
	r.n |= 56
}

// decode returns the next Huffman symbol of h.
func (r *bitReader) decode(h *huffTable) (uint8, error) {
	r.fill()
	if e := h.fast[r.acc>>(64-huffLookBits)]; e != 0 {
		l := uint(e>>8) & 31
		r.acc <<= l
		r.n -= l
		return uint8(e), nil
	}
	for l := huffLookBits + 1; l <= 16; l++ {
		c := int32(r.acc >> (64 - l))
		if c <= h.maxCode[l] {
			r.acc <<= uint(l)
			r.n -= uint(l)
			return h.vals[(c+h.valPtr[l])&255], nil
		}
	}
	return 0, fmt.Errorf("%w: jpeg-dc: bad Huffman code", ErrFormat)
}

// receive reads size bits (size <= 16) as a JPEG signed magnitude (the EXTEND of the spec).
func (r *bitReader) receive(size uint8) int32 {
	if size == 0 {
		return 0
	}
	r.fill()
	v := int32(r.acc >> (64 - size))
	r.acc <<= size
	r.n -= uint(size)
	if v < 1<<(size-1) {
		v += -1<<size + 1
	}
	return v
}

// The hot loop keeps the bit reader's state in three scalars passed and returned by value
// (registers): acc holds the next n bits of buf left-aligned, p is the next byte of buf to
// load; a refill is bitReader.fill on those scalars. Slow paths build a bitReader.

// slowSymbol decodes a Huffman symbol through bitReader.decode (codes longer than the
// lookup tables).
func slowSymbol(h *huffTable, buf []byte, acc uint64, n uint, p int) (uint8, uint64, uint, int, error) {
	r := bitReader{buf: buf, p: p, acc: acc, n: n}
	sym, err := r.decode(h)
	return sym, r.acc, r.n, r.p, err
}

// errDCMagnitude says a DC difference has more than 16 magnitude bits.
var errDCMagnitude = fmt.Errorf("%w: jpeg-dc: DC magnitude over 16 bits", ErrFormat)

// errDCRange says an AC coefficient's index is past 63.
var errDCRange = fmt.Errorf("%w: jpeg-dc: coefficient index out of range", ErrFormat)

// dcDiff decodes the DC difference of a block: its Huffman symbol and magnitude bits, at
// most 32 bits, read after one refill.
func dcDiff(h *huffTable, buf []byte, acc uint64, n uint, p int) (uint64, uint, int, int32, error) {
	acc |= binary.BigEndian.Uint64(buf[p:]) >> (n & 63)
	p += int(63-n) >> 3
	n |= 56
	var s uint
	if e := h.fast[acc>>(64-huffLookBits)]; e != 0 {
		l := uint(e>>8) & 31
		acc <<= l
		n -= l
		s = uint(e & 255)
	} else {
		sym, a, m, q, err := slowSymbol(h, buf, acc, n, p)
		if err != nil {
			return acc, n, p, 0, err
		}
		acc, n, p, s = a, m, q, uint(sym)
	}
	if s == 0 {
		return acc, n, p, 0, nil
	}
	if s > 16 {
		return acc, n, p, 0, errDCMagnitude
	}
	v := int32(acc >> (64 - s))
	acc <<= s
	n -= s
	if v < 1<<(s-1) {
		v += -1<<s + 1
	}
	return acc, n, p, v, nil
}

// skipBlock decodes the DC difference of a block and steps over its AC coefficients. A
// table lookup (huffTable.multi) steps over several AC symbols at once; two lookups share
// one refill (each step takes at most multiBits + 15 bits, two of them fit in the 56 bits a
// refill guarantees).
func skipBlock(dct, act *huffTable, buf []byte, acc uint64, n uint, p int) (uint64, uint, int, int32, error) {
	// DC: dcDiff's fast case inline.
	acc |= binary.BigEndian.Uint64(buf[p:]) >> (n & 63)
	p += int(63-n) >> 3
	n |= 56
	var diff int32
	if e := dct.fast[acc>>(64-huffLookBits)]; e != 0 && e&0xFF <= 16 {
		l, s := uint(e>>8)&31, uint(e&0xFF)
		// code <= huffLookBits bits + magnitude <= 16 bits of the 56 held
		v := int32(acc << l >> (64 - s)) // 0 when s == 0
		acc <<= l + s
		n -= l + s
		if s != 0 && v < 1<<(s-1) {
			v += -1<<s + 1
		}
		diff = v
	} else {
		var err error
		if acc, n, p, diff, err = dcDiff(dct, buf, acc, n, p); err != nil {
			return acc, n, p, 0, err
		}
	}
	k := uint32(1)
	for {
		acc |= binary.BigEndian.Uint64(buf[p:]) >> (n & 63)
		p += int(63-n) >> 3
		n |= 56
		e := act.multi[acc>>(64-multiBits)]
		if k >= e>>16 {
			goto single
		}
		acc <<= e & 63
		n -= uint(e & 63)
		k += e >> 8 & 127
		if e&0x8000 != 0 || k >= 64 {
			return acc, n, p, diff, nil
		}
		e = act.multi[acc>>(64-multiBits)]
		if k >= e>>16 {
			goto single
		}
		acc <<= e & 63
		n -= uint(e & 63)
		k += e >> 8 & 127
		if e&0x8000 != 0 || k >= 64 {
			return acc, n, p, diff, nil
		}
		continue
	single:
		// A code longer than multiBits bits, or a step that would run past coefficient 63:
		// one symbol (after slowSymbol's refill, code + magnitude <= 31 of 56 bits).
		{
			sym, a, m, q, err := slowSymbol(act, buf, acc, n, p)
			if err != nil {
				return acc, n, p, 0, err
			}
			acc, n, p = a, m, q
			run, size := uint32(sym>>4), uint(sym&15)
			switch {
			case size != 0:
				acc <<= size
				n -= size
				k += run + 1
			case run == 15:
				k += 16
			default:
				return acc, n, p, diff, nil
			}
			if k >= 64 {
				return acc, n, p, diff, nil
			}
		}
	}
}

// readBlock decodes the DC difference of a block and its AC coefficients, and keeps those
// the 2×2 IDCT uses (rows and columns 0, 1, 3, 5, 7) in blk, as int16 like libjpeg's JCOEF:
// blk[dcSlot[natural index]]; blk must be zero on entry except blk[0]. Codes of up to
// huffLookBits bits take one table lookup.
func readBlock(dct, act *huffTable, buf []byte, acc uint64, n uint, p int, blk *[25]int32) (uint64, uint, int, int32, uint32, error) {
	acc, n, p, diff, err := dcDiff(dct, buf, acc, n, p)
	if err != nil {
		return acc, n, p, 0, 0, err
	}
	var mask uint32 // bit sl set when blk[sl] was written (sl >= 1)
	for k := 1; k < 64; {
		acc |= binary.BigEndian.Uint64(buf[p:]) >> (n & 63)
		p += int(63-n) >> 3
		n |= 56
		// Up to two coefficients from fastAC per refill (each at most huffLookBits bits);
		// what follows a miss takes at most 31 more bits, 53 of the 56 held in all.
		if f := act.fastAC[acc>>(64-huffLookBits)]; f != 0 {
			b := uint(f) & 63
			acc <<= b
			n -= b
			k += int(f >> 8 & 15)
			if k > 63 {
				return acc, n, p, 0, 0, errDCRange
			}
			if sl := zzSlot[k]; sl < 25 {
				blk[sl] = f >> 16
				mask |= 1 << sl
			}
			k++
			if k >= 64 {
				break
			}
			if f := act.fastAC[acc>>(64-huffLookBits)]; f != 0 {
				b := uint(f) & 63
				acc <<= b
				n -= b
				k += int(f >> 8 & 15)
				if k > 63 {
					return acc, n, p, 0, 0, errDCRange
				}
				if sl := zzSlot[k]; sl < 25 {
					blk[sl] = f >> 16
					mask |= 1 << sl
				}
				k++
				continue
			}
		}
		var sym uint8
		if e := act.fast[acc>>(64-huffLookBits)]; e != 0 {
			l := uint(e>>8) & 31
			acc <<= l
			n -= l
			sym = uint8(e)
		} else {
			s, a, m, q, err := slowSymbol(act, buf, acc, n, p)
			if err != nil {
				return acc, n, p, 0, 0, err
			}
			acc, n, p, sym = a, m, q, s
		}
		run, size := int(sym>>4), uint(sym&15)
		if size == 0 {
			if run != 15 {
				break
			}
			k += 16
			continue
		}
		k += run
		if k > 63 {
			return acc, n, p, 0, 0, errDCRange
		}
		// code (<= 16 bits) + size (<= 15 bits) <= 31 of the 56 bits the refill guarantees
		v := int32(acc >> (64 - size))
		acc <<= size
		n -= size
		if v < 1<<(size-1) {
			v += -1<<size + 1
		}
		if sl := zzSlot[k]; sl < 25 {
			blk[sl] = int32(int16(v))
			mask |= 1 << sl
		}
		k++
	}
	return acc, n, p, diff, mask, nil
}

type dcComponent struct {
	id, h, v, tq int
	td, ta       int
	// out is the component's samples at 1/8 (ssize×ssize per block): out[y*stride + x]
	out    []uint8
	stride int
	ssize  int // 1, or 2 for 4:2:0 chroma (libjpeg's reduced 2×2 IDCT)
	pred   int32
}

// idctRangeLimit is libjpeg's IDCT_range_limit table indexed by (value & 1023): values
// -128..127 map to 0..255 (+128), larger ones clamp, as libjpeg's wrap-around layout does.
var idctRangeLimit = func() (t [1024]uint8) {
	for i := range t {
		v := i
		if v >= 512 {
			v -= 1024
		}
		v += 128
		t[i] = uint8(min(255, max(0, v)))
	}
	return t
}()

// libjpeg's YCbCr->RGB tables (jdcolor.c build_ycc_rgb_table), SCALEBITS = 16.
var crR, cbB, crG, cbG = func() (a, b, c, d [256]int32) {
	const one, half = 1 << 16, 1 << 15
	fix := func(x float64) int32 { return int32(x*one + 0.5) }
	for i := range 256 {
		x := int32(i - 128)
		a[i] = (fix(1.40200)*x + half) >> 16
		b[i] = (fix(1.77200)*x + half) >> 16
		c[i] = -fix(0.71414) * x
		d[i] = -fix(0.34414)*x + half
	}
	return
}()

// decodeJPEGDC decodes a baseline JPEG at 1/8 of its size (each side ceil(side/8)) into an
// opaque NRGBA picture. check is called with the stored size before any pixel allocation.
func decodeJPEGDC(data []byte, check func(w, h int) error) (*image.NRGBA, error) {
	if len(data) < 4 || data[0] != 0xFF || data[1] != 0xD8 {
		return nil, fmt.Errorf("%w: jpeg-dc: no SOI marker", ErrFormat)
	}
	var (
		qt        [4][64]uint16
		dc, ac    [4]*huffTable
		comps     []dcComponent
		width     int
		height    int
		restart   int
		jfif      bool
		adobe     = -1 // Adobe APP14 transform, -1 if absent
		sawFrame  bool
		hmax      = 1
		vmax      = 1
		scanStart = -1
	)
	p := 2
	for scanStart < 0 {
		for p < len(data) && data[p] != 0xFF {
			p++ // tolerate garbage between segments, as libjpeg does (with a warning)
		}
		for p < len(data) && data[p] == 0xFF {
			p++
		}
		if p+2 >= len(data) {
			return nil, fmt.Errorf("%w: jpeg-dc: no scan", ErrFormat)
		}
		marker := data[p]
		p++
		if marker >= 0xD0 && marker <= 0xD7 || marker == 0x01 {
			continue
		}
		n := int(binary.BigEndian.Uint16(data[p:]))
		if n < 2 || p+n > len(data) {
			return nil, fmt.Errorf("%w: jpeg-dc: segment 0x%02X length %d", ErrFormat, marker, n)
		}
		seg := data[p+2 : p+n]
		p += n
		switch {
		case marker == 0xE0 && len(seg) >= 5 && string(seg[:5]) == "JFIF\x00":
			jfif = true
		case marker == 0xEE && len(seg) >= 12 && string(seg[:5]) == "Adobe":
			adobe = int(seg[11])
		case marker == 0xDB: // DQT
			for len(seg) > 0 {
				pq, tq := seg[0]>>4, seg[0]&15
				if tq > 3 || pq > 1 || len(seg) < 1+64*(1+int(pq)) {
					return nil, fmt.Errorf("%w: jpeg-dc: bad DQT", ErrFormat)
				}
				for i := range 64 {
					if pq == 0 {
						qt[tq][zigzag[i]] = uint16(seg[1+i])
					} else {
						qt[tq][zigzag[i]] = binary.BigEndian.Uint16(seg[1+2*i:])
					}
				}
				seg = seg[1+64*(1+int(pq)):]
			}
		case marker == 0xC4: // DHT
			for len(seg) > 0 {
				if len(seg) < 17 || seg[0]>>4 > 1 || seg[0]&15 > 3 {
					return nil, fmt.Errorf("%w: jpeg-dc: bad DHT", ErrFormat)
				}
				var counts [16]uint8
				copy(counts[:], seg[1:17])
				total := 0
				for _, c := range counts {
					total += int(c)
				}
				if total > 256 || len(seg) < 17+total {
					return nil, fmt.Errorf("%w: jpeg-dc: bad DHT", ErrFormat)
				}
				t, err := huffTableOf(seg[0]>>4 == 1, seg[1:17+total])
				if err != nil {
					return nil, err
				}
				if seg[0]>>4 == 1 {
					ac[seg[0]&15] = t
				} else {
					dc[seg[0]&15] = t
				}
				seg = seg[17+total:]
			}
		case marker == 0xDD: // DRI
			if len(seg) < 2 {
				return nil, fmt.Errorf("%w: jpeg-dc: bad DRI", ErrFormat)
			}
			restart = int(binary.BigEndian.Uint16(seg))
		case marker == 0xC0 || marker == 0xC1: // baseline / extended sequential, Huffman
			if sawFrame || len(seg) < 6 || seg[0] != 8 {
				return nil, errDCUnsupported
			}
			sawFrame = true
			height, width = int(binary.BigEndian.Uint16(seg[1:])), int(binary.BigEndian.Uint16(seg[3:]))
			nc := int(seg[5])
			if (nc != 1 && nc != 3) || len(seg) < 6+3*nc || width == 0 || height == 0 {
				return nil, errDCUnsupported
			}
			if err := check(width, height); err != nil {
				return nil, err
			}
			for i := range nc {
				c := seg[6+3*i:]
				comps = append(comps, dcComponent{id: int(c[0]), h: int(c[1] >> 4), v: int(c[1] & 15), tq: int(c[2] & 3)})
				hmax, vmax = max(hmax, int(c[1]>>4)), max(vmax, int(c[1]&15))
			}
		case marker >= 0xC2 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC:
			return nil, errDCUnsupported // progressive, lossless, arithmetic
		case marker == 0xDA: // SOS
			if !sawFrame || len(seg) < 1 || int(seg[0]) != len(comps) || len(seg) < 1+2*len(comps)+3 {
				return nil, errDCUnsupported // a scan without every component: multi-scan
			}
			for i := range comps {
				id, tables := int(seg[1+2*i]), seg[2+2*i]
				if comps[i].id != id {
					return nil, errDCUnsupported
				}
				comps[i].td, comps[i].ta = int(tables>>4), int(tables&15)
				if comps[i].td > 3 || comps[i].ta > 3 || dc[comps[i].td] == nil || ac[comps[i].ta] == nil {
					return nil, fmt.Errorf("%w: jpeg-dc: scan uses an undefined Huffman table", ErrFormat)
				}
			}
			scanStart = p
		case marker == 0xD9:
			return nil, fmt.Errorf("%w: jpeg-dc: EOI before scan", ErrFormat)
		}
	}
	// Sampling: luma 1 or 2 in each direction, chroma 1×1 (4:4:4, 4:2:2, 4:2:0, 4:4:0).
	if hmax > 2 || vmax > 2 {
		return nil, errDCUnsupported
	}
	if len(comps) == 3 {
		if comps[0].h != hmax || comps[0].v != vmax || comps[1].h != 1 || comps[1].v != 1 || comps[2].h != 1 || comps[2].v != 1 {
			return nil, errDCUnsupported
		}
		// libjpeg's colour-space guess (jdapimin.c): JFIF means YCbCr; else Adobe transform 0,
		// or component ids 'R','G','B', mean RGB, which this path does not do.
		if !jfif && (adobe == 0 || adobe < 0 && comps[0].id == 'R' && comps[1].id == 'G' && comps[2].id == 'B') {
			return nil, errDCUnsupported
		}
	} else {
		hmax, vmax = 1, 1 // a single-component scan is not interleaved: one block per MCU
		comps[0].h, comps[0].v = 1, 1
	}
	ow, oh := (width+7)/8, (height+7)/8
	mcuW, mcuH := 8*hmax, 8*vmax
	mcusX, mcusY := (width+mcuW-1)/mcuW, (height+mcuH-1)/mcuH
	for i := range comps {
		c := &comps[i]
		c.ssize = 1
		if len(comps) == 3 && i > 0 && hmax == 2 && vmax == 2 {
			c.ssize = 2
		}
		c.stride = mcusX * c.h * c.ssize
		c.out = make([]uint8, c.stride*mcusY*c.v*c.ssize) // freshly zeroed: padding blocks too
	}

	// Copy the entropy-coded data without stuffing; note where each restart interval starts.
	cleanBuf := cleanPool.Get().(*[]byte)
	defer cleanPool.Put(cleanBuf)
	clean := (*cleanBuf)[:0]
	defer func() { *cleanBuf = clean[:0] }()
	var segs []int
	segs = append(segs, 0)
	for q := scanStart; q < len(data); {
		b := data[q]
		if b != 0xFF {
			// Copy the run up to the next 0xFF at once.
			end := len(data)
			if k := bytes.IndexByte(data[q:], 0xFF); k >= 0 {
				end = q + k
			}
			clean = append(clean, data[q:end]...)
			q = end
			continue
		}
		if q+1 >= len(data) {
			break
		}
		m := data[q+1]
		switch {
		case m == 0x00:
			clean = append(clean, 0xFF)
			q += 2
		case m == 0xFF:
			q++ // fill byte
		case m >= 0xD0 && m <= 0xD7:
			segs = append(segs, len(clean))
			q += 2
		default:
			q = len(data) // end of scan
		}
	}
	end := len(clean)
	clean = append(clean, dcZeros[:]...)
	segs = append(segs, end)

	var (
		acc uint64 // bit reader (see slowSymbol): the next n bits of clean, left-aligned
		n   uint
		rp  int // next byte of clean to load
	)
	consumed := func() int { return rp*8 - int(n) }
	var blk [25]int32
	var qs [3][25]int32 // quantisation values of the 25 slots, per component, as int16
	for ci := range comps {
		for i := range 64 {
			if sl := dcSlot[i]; sl < 25 {
				qs[ci][sl] = int32(int16(qt[comps[ci].tq][i]))
			}
		}
	}
	interval := restart
	if interval == 0 {
		interval = mcusX * mcusY
	}
	seg := 0
	for m := 0; m < mcusX*mcusY; m++ {
		if m > 0 && m%interval == 0 {
			// Restart: byte-aligned start of the next interval, predictions reset.
			if consumed() > segs[seg+1]*8 {
				return nil, errDCShort
			}
			seg++
			if seg >= len(segs)-1 {
				return nil, fmt.Errorf("%w: jpeg-dc: missing restart marker", ErrFormat)
			}
			acc, n, rp = 0, 0, segs[seg]
			for i := range comps {
				comps[i].pred = 0
			}
		}
		mx, my := m%mcusX, m/mcusX
		for ci := range comps {
			c := &comps[ci]
			dct, act := dc[c.td], ac[c.ta]
			for by := range c.v {
				for bx := range c.h {
					var diff int32
					var err error
					if c.ssize == 1 {
						if acc, n, rp, diff, err = skipBlock(dct, act, clean, acc, n, rp); err != nil {
							return nil, err
						}
						c.pred += diff
						dcv := int32(int16(c.pred)) // libjpeg stores it as a JCOEF (int16)
						v := (dcv*int32(int16(qt[c.tq][0])) + 4) >> 3
						c.out[(my*c.v+by)*c.stride+mx*c.h+bx] = idctRangeLimit[v&1023]
						continue
					}
					blk = [25]int32{}
					var mask uint32
					if acc, n, rp, diff, mask, err = readBlock(dct, act, clean, acc, n, rp, &blk); err != nil {
						return nil, err
					}
					c.pred += diff
					blk[0] = int32(int16(c.pred))
					x, y := (mx*c.h+bx)*c.ssize, (my*c.v+by)*c.ssize
					idct2x2(&blk, &qs[ci], mask, c.out[y*c.stride+x:], c.stride)
				}
			}
		}
		if consumed() > segs[seg+1]*8+256*8 {
			return nil, errDCShort
		}
	}

	if consumed() > segs[seg+1]*8 {
		// The data ran out (libjpeg would pad with zeros and warn): leave it to the other paths.
		return nil, errDCShort
	}
	img := image.NewNRGBA(image.Rect(0, 0, ow, oh))
	if len(comps) == 1 {
		c := &comps[0]
		for y := range oh {
			row := img.Pix[y*img.Stride:]
			src := c.out[y*c.stride:]
			for x := range ow {
				v := src[x]
				row[4*x], row[4*x+1], row[4*x+2], row[4*x+3] = v, v, v, 255
			}
		}
		return img, nil
	}
	yc, cb, cr := &comps[0], &comps[1], &comps[2]
	// Chroma sample of output pixel (x, y): (x>>sx, y>>sy) in the chroma plane.
	sx, sy := 0, 0
	if cb.ssize == 1 {
		sx, sy = hmax-1, vmax-1
	}
	for y := range oh {
		row := img.Pix[y*img.Stride : y*img.Stride+4*ow]
		ys := yc.out[y*yc.stride:]
		cbs := cb.out[(y>>sy)*cb.stride:]
		crs := cr.out[(y>>sy)*cr.stride:]
		for x := range ow {
			Y := int32(ys[x])
			b, rr := cbs[x>>sx], crs[x>>sx]
			row[4*x] = clampSample(Y + crR[rr])
			row[4*x+1] = clampSample(Y + (cbG[b]+crG[rr])>>16)
			row[4*x+2] = clampSample(Y + cbB[b])
			row[4*x+3] = 255
		}
	}
	return img, nil
}

func clampSample(v int32) uint8 {
	if uint32(v) <= 255 {
		return uint8(v)
	}
	if v < 0 {
		return 0
	}
	return 255
}

// idct2x2 is libjpeg's reduced 2×2 inverse DCT (jidctred.c, jpeg_idct_2x2): the block's
// coefficients in rows and columns 0, 1, 3, 5, 7 (blk, q: slot 5·row + column, see dcSlot)
// give 2×2 samples, written to out[0], out[1] and out[stride], out[stride+1]. Like libjpeg it
// passes columns whose odd terms are zero straight through. mask has bit sl set for every
// slot sl >= 1 that may be non-zero (bits 1-4: row 0, bits 5-24: rows 1, 3, 5, 7); the
// shortcuts it allows compute the same values as the full loops.
func idct2x2(blk, q *[25]int32, mask uint32, out []uint8, stride int) {
	const (
		constBits = 13
		pass1Bits = 2
		fix0720   = 5906  // FIX(0.720959822)
		fix0850   = 6967  // FIX(0.850430095)
		fix1272   = 10426 // FIX(1.272758580)
		fix3624   = 29692 // FIX(3.624509785)
		n1        = constBits - pass1Bits + 2
		n2        = constBits + pass1Bits + 3 + 2
	)
	if mask == 0 {
		// DC only: every column pass term is z0<<pass1Bits in column 0, 0 elsewhere, and the
		// row pass reduces to tmp10.
		tmp10 := int64(blk[0]*q[0]) << pass1Bits << (constBits + 2)
		v := idctRangeLimit[(tmp10+1<<(n2-1))>>n2&1023]
		o := out[:2]
		o[0], o[1] = v, v
		o = out[stride : stride+2]
		o[0], o[1] = v, v
		return
	}
	if mask&^0x1F == 0 {
		// Row 0 only: both rows of the work array are z0<<pass1Bits, so are the two output
		// rows.
		var w [5]int64
		for c := range 5 {
			w[c] = int64(blk[c]*q[c]) << pass1Bits
		}
		tmp10 := w[0] << (constBits + 2)
		tmp0 := w[4]*-fix0720 + w[3]*fix0850 + w[2]*-fix1272 + w[1]*fix3624
		a := idctRangeLimit[(tmp10+tmp0+1<<(n2-1))>>n2&1023]
		b := idctRangeLimit[(tmp10-tmp0+1<<(n2-1))>>n2&1023]
		o := out[:2]
		o[0], o[1] = a, b
		o = out[stride : stride+2]
		o[0], o[1] = a, b
		return
	}
	var ws [2][5]int64 // ws[row][column slot]
	for c := range 5 {
		z0 := int64(blk[c] * q[c])
		if blk[5+c]|blk[10+c]|blk[15+c]|blk[20+c] == 0 {
			ws[0][c], ws[1][c] = z0<<pass1Bits, z0<<pass1Bits
			continue
		}
		z1 := int64(blk[5+c] * q[5+c])
		z3 := int64(blk[10+c] * q[10+c])
		z5 := int64(blk[15+c] * q[15+c])
		z7 := int64(blk[20+c] * q[20+c])
		tmp10 := z0 << (constBits + 2)
		tmp0 := z7*-fix0720 + z5*fix0850 + z3*-fix1272 + z1*fix3624
		ws[0][c] = (tmp10 + tmp0 + 1<<(n1-1)) >> n1
		ws[1][c] = (tmp10 - tmp0 + 1<<(n1-1)) >> n1
	}
	for row := range 2 {
		w := &ws[row]
		tmp10 := w[0] << (constBits + 2)
		tmp0 := w[4]*-fix0720 + w[3]*fix0850 + w[2]*-fix1272 + w[1]*fix3624
		o := out[row*stride : row*stride+2]
		o[0] = idctRangeLimit[(tmp10+tmp0+1<<(n2-1))>>n2&1023]
		o[1] = idctRangeLimit[(tmp10-tmp0+1<<(n2-1))>>n2&1023]
	}
}
