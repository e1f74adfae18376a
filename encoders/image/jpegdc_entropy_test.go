package image

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
)

// refHuff is a reference canonical Huffman decoder built from a DHT entry's counts and
// symbols only (JPEG Annex C code assignment, then a bit-by-bit search), independent of
// huffTable's lookup tables.
type refHuff struct {
	codes map[[2]int]uint8 // {length, code} -> symbol
}

func newRefHuff(spec []byte) *refHuff {
	h := &refHuff{codes: map[[2]int]uint8{}}
	code, k := 0, 0
	for l := 1; l <= 16; l++ {
		for range int(spec[l-1]) {
			h.codes[[2]int{l, code}] = spec[16+k]
			code++
			k++
		}
		code <<= 1
	}
	return h
}

// refBits reads bits MSB first from buf, past its end as zeros.
type refBits struct {
	buf []byte
	pos int // bits read
}

func (r *refBits) bit() int {
	b := 0
	if r.pos>>3 < len(r.buf) {
		b = int(r.buf[r.pos>>3]>>(7-r.pos&7)) & 1
	}
	r.pos++
	return b
}

func (r *refBits) bits(n int) int {
	v := 0
	for range n {
		v = v<<1 | r.bit()
	}
	return v
}

func (r *refBits) symbol(h *refHuff) (uint8, bool) {
	code := 0
	for l := 1; l <= 16; l++ {
		code = code<<1 | r.bit()
		if s, ok := h.codes[[2]int{l, code}]; ok {
			return s, true
		}
	}
	return 0, false
}

func extend(v, s int) int {
	if s > 0 && v < 1<<(s-1) {
		v += -1<<s + 1
	}
	return v
}

// refBlock decodes one block as the JPEG spec (F.2.2) does, with libjpeg's handling of runs
// past coefficient 63 (the block simply ends): the DC difference, the natural-order
// coefficients (index 1..63) kept when keep is set, and false on a bad code.
func refBlock(r *refBits, dc, ac *refHuff, keep bool) (diff int, coef [64]int, ok bool) {
	s, ok := r.symbol(dc)
	if !ok || s > 16 {
		return 0, coef, false
	}
	diff = extend(r.bits(int(s)), int(s))
	for k := 1; k < 64; {
		sym, ok := r.symbol(ac)
		if !ok {
			return 0, coef, false
		}
		run, size := int(sym>>4), int(sym&15)
		if size == 0 {
			if run != 15 {
				break
			}
			k += 16
			continue
		}
		k += run
		v := extend(r.bits(size), size)
		if keep {
			if k > 63 {
				return 0, coef, false // readBlock refuses this too
			}
			coef[zigzag[k]] = int(int16(v))
		}
		k++
	}
	return diff, coef, true
}

// dhtSpecs returns the DHT entries (counts + symbols) of a JPEG: DC and AC table 0 and 1.
func dhtSpecs(t *testing.T, data []byte) (dc, ac [2][]byte) {
	for p := 2; p+4 <= len(data); {
		if data[p] != 0xFF {
			t.Fatalf("no marker at %d", p)
		}
		m, n := data[p+1], int(binary.BigEndian.Uint16(data[p+2:]))
		seg := data[p+4 : p+2+n]
		if m == 0xDA {
			break
		}
		for m == 0xC4 && len(seg) > 0 {
			total := 0
			for _, c := range seg[1:17] {
				total += int(c)
			}
			spec := seg[1 : 17+total]
			if seg[0]>>4 == 1 {
				ac[seg[0]&1] = spec
			} else {
				dc[seg[0]&1] = spec
			}
			seg = seg[17+total:]
		}
		p += 2 + n
	}
	if dc[0] == nil || ac[0] == nil || dc[1] == nil || ac[1] == nil {
		t.Fatal("tables not found")
	}
	return dc, ac
}

// TestJPEGDCEntropyMatchesReference runs the hot-loop block decoders (skipBlock: DC + AC
// skipped several symbols per lookup; readBlock: DC + the 25 coefficients of the 2×2 IDCT)
// over random bit streams with the standard (Annex K) tables and with a table of long codes,
// block after block, and compares every DC difference, every kept coefficient and the bit
// position after every block with the reference decoder above. Random bits exercise what
// real files rarely do: codes longer than the lookup tables, runs past coefficient 63,
// ZRL chains, bad codes.
func TestJPEGDCEntropyMatchesReference(t *testing.T) {
	dcSpec, acSpec := dhtSpecs(t, encodeJPEG(t, photo(16, 16, 1), 90))
	// A skewed AC table: few short codes, most symbols at 13-16 bits.
	skew := make([]byte, 16, 16+162)
	skew[1], skew[5], skew[12], skew[13], skew[14], skew[15] = 2, 4, 30, 40, 40, 46
	for i := range 162 {
		skew = append(skew, []byte{0x00, 0xF0, 0x01, 0x11, 0x02, 0x12}[i%6]+byte(i/6)<<4&0xF0|byte(i/6)%10)
	}
	// A complete code (every bit string but all ones decodes) with most of its symbols at 12
	// bits and some at 14-16, so random streams run long.
	full := make([]byte, 16, 16+123)
	full[1], full[4], full[7], full[11], full[13], full[14], full[15] = 3, 3, 36, 60, 12, 6, 3
	for i := range 123 {
		full = append(full, []byte{0x01, 0x00, 0xF0, 0x22, 0x13, 0x05, 0x31, 0x0A, 0xD1}[i%9]+byte(i/9)<<4&0xF0)
	}
	type tables struct {
		name      string
		dc, ac    []byte
		minBlocks int
	}
	for _, tb := range []tables{
		{"luma", dcSpec[0], acSpec[0], 3000},
		{"chroma", dcSpec[1], acSpec[1], 3000},
		{"skewed", dcSpec[0], skew, 300}, // an incomplete code: random bits soon hit a bad one
		{"long", dcSpec[0], full, 3000},
	} {
		dct, err := huffTableOf(false, tb.dc)
		if err != nil {
			t.Fatal(err)
		}
		act, err := huffTableOf(true, tb.ac)
		if err != nil {
			t.Fatalf("%s: %v", tb.name, err)
		}
		rdc, rac := newRefHuff(tb.dc), newRefHuff(tb.ac)
		rng := rand.New(rand.NewPCG(11, uint64(len(tb.name))))
		blocks, bad := 0, 0
		for stream := range 300 {
			// Bias the bytes towards zero bits now and then, so end-of-block codes (short,
			// mostly zeros in the standard tables) and long blocks both occur.
			data := make([]byte, 4096)
			for i := range data {
				data[i] = byte(rng.Uint32())
				if stream%3 == 1 {
					data[i] &= byte(rng.Uint32())
				}
			}
			buf := append(data[:len(data):len(data)], dcZeros[:]...)
			ref := &refBits{buf: data}
			var acc uint64
			var n uint
			var p int
			for ref.pos < 8*len(data)-64*30 {
				keep := blocks%2 == 1
				wantDiff, wantCoef, ok := refBlock(ref, rdc, rac, keep)
				var diff int32
				var err error
				var blk [25]int32
				if keep {
					acc, n, p, diff, _, err = readBlock(dct, act, buf, acc, n, p, &blk)
				} else {
					acc, n, p, diff, err = skipBlock(dct, act, buf, acc, n, p)
				}
				if !ok {
					if err == nil || !errors.Is(err, ErrFormat) {
						t.Fatalf("%s stream %d block %d: reference refuses the block, ours gave %v", tb.name, stream, blocks, err)
					}
					bad++
					break
				}
				if err != nil {
					t.Fatalf("%s stream %d block %d: %v (reference decodes it)", tb.name, stream, blocks, err)
				}
				if int(diff) != wantDiff {
					t.Fatalf("%s stream %d block %d: DC diff %d, reference %d", tb.name, stream, blocks, diff, wantDiff)
				}
				if got := p*8 - int(n); got != ref.pos {
					t.Fatalf("%s stream %d block %d (keep %v): at bit %d, reference at %d", tb.name, stream, blocks, keep, got, ref.pos)
				}
				if keep {
					for i := 1; i < 64; i++ {
						if sl := dcSlot[i]; sl < 25 && int(blk[sl]) != wantCoef[i] {
							t.Fatalf("%s stream %d block %d: coefficient %d = %d, reference %d", tb.name, stream, blocks, i, blk[sl], wantCoef[i])
						}
					}
				}
				blocks++
			}
		}
		t.Logf("%s: %d blocks matched, %d streams ended in a bad code (both refused)", tb.name, blocks, bad)
		if blocks < tb.minBlocks {
			t.Errorf("%s: only %d blocks compared", tb.name, blocks)
		}
	}
}

// TestIDCT2x2Shortcuts checks the DC-only and row-0-only shortcuts of idct2x2 against its
// full loops (mask with every slot set) on random coefficients and quantisers.
func TestIDCT2x2Shortcuts(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 20000 {
		var blk, q [25]int32
		for s := range 25 {
			q[s] = int32(1 + rng.IntN(255))
		}
		blk[0] = int32(rng.IntN(4096) - 2048)
		mask := uint32(0)
		if i%2 == 1 {
			for s := 1; s < 5; s++ {
				if rng.IntN(2) == 0 {
					blk[s] = int32(rng.IntN(2048) - 1024)
					mask |= 1 << s
				}
			}
		}
		var got, want [2 * 3]uint8
		idct2x2(&blk, &q, mask, got[:], 3)
		idct2x2(&blk, &q, 1<<25-2, want[:], 3)
		if got != want {
			t.Fatalf("block %v q %v mask %#x: shortcut %v, full %v", blk, q, mask, got, want)
		}
	}
}

// TestLoadIdentityGeometry checks that Pipeline.Load, which returns the decoded picture itself
// when it already has the target size, gives the same pixels as Resizer.Resize (which copies)
// for that case, and still resizes otherwise.
func TestLoadIdentityGeometry(t *testing.T) {
	data := encodeJPEG(t, photo(512, 512, 9), 90)
	for _, size := range []int{64, 48} {
		p := Pipeline{Resizer: Resizer{Width: size, Height: size}}
		got, d, err := p.Load(data)
		if err != nil {
			t.Fatal(err)
		}
		dd, err := (&Decoder{}).DecodeScaled(data, 8)
		if err != nil {
			t.Fatal(err)
		}
		want, err := p.Resizer.Resize(dd.Image)
		if err != nil {
			t.Fatal(err)
		}
		if d.Path != PathDC || got.Rect != want.Rect || string(got.Pix) != string(want.Pix) {
			t.Fatalf("%d: path %s, %v vs %v, pixels equal %v", size, d.Path, got.Rect, want.Rect, string(got.Pix) == string(want.Pix))
		}
		if shared := &got.Pix[0] == &d.Image.Pix[0]; shared != (size == 64) {
			t.Errorf("%d: output shares the decoded pixels: %v", size, shared)
		}
	}
}
