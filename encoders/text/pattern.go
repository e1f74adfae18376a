package text

import (
	"fmt"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Pattern names a pre-tokeniser: the rule that cuts text into pieces before BPE merging.
// Each is a hand-written splitter that returns exactly the pieces the encoding's regular
// expression (run by tiktoken's backtracking engine) returns, as listed below. \s is the
// Unicode White_Space property; \p{..} are Unicode general categories from package unicode.
type Pattern int

const (
	// PatternCL100k is cl100k_base's pattern:
	//	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
	//	 ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
	PatternCL100k Pattern = iota + 1
	// PatternO200k is o200k_base's pattern:
	//	[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|
	//	[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|
	//	\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
	PatternO200k
	// PatternGPT2 is the pattern of gpt2, r50k_base and p50k_base:
	//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
	PatternGPT2
)

var patternNames = map[Pattern]string{PatternCL100k: "cl100k", PatternO200k: "o200k", PatternGPT2: "gpt2"}

func (p Pattern) String() string {
	if s, ok := patternNames[p]; ok {
		return s
	}
	return fmt.Sprintf("Pattern(%d)", int(p))
}

// ParsePattern accepts a pattern name (cl100k, o200k, gpt2) or an encoding name that
// implies one (cl100k_base, o200k_base, p50k_base, p50k_edit, r50k_base).
func ParsePattern(s string) (Pattern, error) {
	switch s {
	case "cl100k", "cl100k_base":
		return PatternCL100k, nil
	case "o200k", "o200k_base":
		return PatternO200k, nil
	case "gpt2", "r50k", "r50k_base", "p50k", "p50k_base", "p50k_edit":
		return PatternGPT2, nil
	}
	return 0, fmt.Errorf("text: unknown pattern %q (want cl100k, o200k or gpt2)", s)
}

// Regexp returns the pattern's regular expression as tiktoken writes it.
func (p Pattern) Regexp() string {
	switch p {
	case PatternCL100k:
		return `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	case PatternO200k:
		return `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	case PatternGPT2:
		return `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	}
	return ""
}

// Character classes, as bits. An invalid UTF-8 byte is a class-0 character of one byte
// (like U+FFFD, a symbol), so that arbitrary bytes still split and round-trip.
const (
	cL  uint8 = 1 << iota // \p{L}
	cN                    // \p{N}
	cS                    // \s (White_Space)
	cNL                   // \r or \n
	cUp                   // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
	cLo                   // [\p{Ll}\p{Lm}\p{Lo}\p{M}]
)

var (
	bmpOnce  sync.Once
	bmpClass []uint8 // class of every rune below 0x10000
)

func runeClass(r rune) uint8 {
	var c uint8
	if unicode.IsLetter(r) {
		c |= cL
		if unicode.Is(unicode.Ll, r) {
			c |= cLo
		} else if unicode.Is(unicode.Lu, r) || unicode.Is(unicode.Lt, r) {
			c |= cUp
		} else { // Lm, Lo
			c |= cUp | cLo
		}
	} else if unicode.Is(unicode.M, r) {
		c |= cUp | cLo
	}
	if unicode.IsNumber(r) {
		c |= cN
	}
	if unicode.Is(unicode.White_Space, r) {
		c |= cS
	}
	if r == '\r' || r == '\n' {
		c |= cNL
	}
	return c
}

func initClasses() {
	bmpOnce.Do(func() {
		t := make([]uint8, 0x10000)
		for r := range rune(0x10000) {
			if r >= 0xD800 && r < 0xE000 {
				continue
			}
			t[r] = runeClass(r)
		}
		bmpClass = t
	})
}

// classAt returns the class and byte length of the character at b[i] (i < len(b)).
func classAt(b []byte, i int) (uint8, int) {
	c := b[i]
	if c < utf8.RuneSelf {
		return bmpClass[c], 1
	}
	r, n := utf8.DecodeRune(b[i:])
	if r == utf8.RuneError && n == 1 {
		return 0, 1
	}
	if r < 0x10000 {
		return bmpClass[r], n
	}
	return runeClass(r), n
}

// splitter returns the end of the piece that starts at b[i], i < len(b).
type splitter func(b []byte, i int) int

func (p Pattern) splitter() splitter {
	switch p {
	case PatternCL100k:
		return nextCL100k
	case PatternO200k:
		return nextO200k
	case PatternGPT2:
		return nextGPT2
	}
	return nil
}

// contraction returns the length of the contraction ('s, 't, 're, 've, 'm, 'll or 'd)
// whose apostrophe is b[i], or 0.
// With fold set it matches case-insensitively as Unicode simple case folding does, where
// 's' also matches U+017F (long s).
func contraction(b []byte, i int, fold bool) int {
	j := i + 1
	if j >= len(b) {
		return 0
	}
	c := b[j]
	if fold {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		} else if c == 0xC5 && j+1 < len(b) && b[j+1] == 0xBF { // ſ
			return 3
		}
	}
	switch c {
	case 's', 't', 'm', 'd':
		return 2
	case 'r', 'v', 'l':
		if j+1 >= len(b) {
			return 0
		}
		c2 := b[j+1]
		if fold && c2 >= 'A' && c2 <= 'Z' {
			c2 += 'a' - 'A'
		}
		if (c == 'r' || c == 'v') && c2 == 'e' || c == 'l' && c2 == 'l' {
			return 3
		}
	}
	return 0
}

// run returns the end of the longest run of characters from b[i] having any bit of mask.
func run(b []byte, i int, mask uint8) int {
	for i < len(b) {
		c := b[i]
		if c < utf8.RuneSelf {
			if bmpClass[c]&mask == 0 {
				return i
			}
			i++
			continue
		}
		cls, n := classAt(b, i)
		if cls&mask == 0 {
			return i
		}
		i += n
	}
	return i
}

// runN returns the end of at most max characters from b[i] having a bit of mask.
func runN(b []byte, i int, mask uint8, max int) int {
	for k := 0; k < max && i < len(b); k++ {
		cls, n := classAt(b, i)
		if cls&mask == 0 {
			return i
		}
		i += n
	}
	return i
}

// runNot returns the end of the longest run from b[i] of characters with no bit of mask.
func runNot(b []byte, i int, mask uint8) int {
	for i < len(b) {
		c := b[i]
		if c < utf8.RuneSelf {
			if bmpClass[c]&mask != 0 {
				return i
			}
			i++
			continue
		}
		cls, n := classAt(b, i)
		if cls&mask != 0 {
			return i
		}
		i += n
	}
	return i
}

// spaces handles the tail alternatives shared by all patterns for a whitespace character at
// b[i]: (\s*[\r\n]+ when newline is set)|\s+(?!\S)|\s+.
func spaces(b []byte, i int, newline bool) int {
	j, last, afterNL, nchars := i, i, -1, 0
	for j < len(b) {
		cls, n := classAt(b, j)
		if cls&cS == 0 {
			break
		}
		if cls&cNL != 0 {
			afterNL = j + n
		}
		last = j
		j += n
		nchars++
	}
	if newline && afterNL > 0 {
		return afterNL // \s*[\r\n]+: up to and including the last newline of the run
	}
	if j == len(b) || nchars == 1 {
		return j // \s+(?!\S) at the end of text, or \s+ for a lone space
	}
	return last // \s+(?!\S): the run less its last character
}

func nextCL100k(b []byte, i int) int {
	c0, n0 := classAt(b, i)
	if b[i] == '\'' {
		if n := contraction(b, i, true); n > 0 {
			return i + n
		}
	}
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if c0&cL != 0 {
		return run(b, i+n0, cL)
	}
	if c0&(cN|cNL) == 0 && i+n0 < len(b) {
		if c1, n1 := classAt(b, i+n0); c1&cL != 0 {
			return run(b, i+n0+n1, cL)
		}
	}
	// \p{N}{1,3}
	if c0&cN != 0 {
		return runN(b, i+n0, cN, 2)
	}
	//  ?[^\s\p{L}\p{N}]+[\r\n]*
	j := i
	if b[i] == ' ' {
		j++
	}
	if j < len(b) {
		if cj, nj := classAt(b, j); cj&(cS|cL|cN) == 0 {
			e := runNot(b, j+nj, cS|cL|cN)
			for e < len(b) && (b[e] == '\r' || b[e] == '\n') {
				e++
			}
			return e
		}
	}
	return spaces(b, i, true)
}

func nextGPT2(b []byte, i int) int {
	if b[i] == '\'' {
		if n := contraction(b, i, false); n > 0 {
			return i + n
		}
	}
	j := i
	if b[i] == ' ' {
		j++
	}
	if j < len(b) {
		cj, nj := classAt(b, j)
		switch {
		case cj&cL != 0:
			return run(b, j+nj, cL)
		case cj&cN != 0:
			return run(b, j+nj, cN)
		case cj&cS == 0:
			return runNot(b, j+nj, cS|cL|cN)
		}
	}
	return spaces(b, i, false)
}

// o200kWord tries the two word alternatives of o200k from start (the character after the
// optional prefix, or i itself). alt1 is [Up]*[Lo]+, alt2 is [Up]+[Lo]*; both are followed by
// an optional contraction. It returns the end, or -1.
func o200kWord(b []byte, start int, alt1 bool) int {
	// Longest run of Up characters, remembering the last one that is also Lo.
	j, lastLo, lastLoN := start, -1, 0
	for j < len(b) {
		cls, n := classAt(b, j)
		if cls&cUp == 0 {
			break
		}
		if cls&cLo != 0 {
			lastLo, lastLoN = j, n
		}
		j += n
	}
	var end int
	if alt1 {
		// [Up]* backs off until [Lo]+ can start: right after the run if the next character
		// is Lo, else at the last Lo character inside the run (the rest of the run is not Lo).
		if j < len(b) {
			if cls, _ := classAt(b, j); cls&cLo != 0 {
				end = run(b, j, cLo)
				goto tail
			}
		}
		if lastLo < 0 {
			return -1
		}
		end = lastLo + lastLoN
	} else {
		if j == start {
			return -1
		}
		end = run(b, j, cLo)
	}
tail:
	if end < len(b) && b[end] == '\'' {
		end += contraction(b, end, true)
	}
	return end
}

func nextO200k(b []byte, i int) int {
	c0, n0 := classAt(b, i)
	prefix := c0&(cL|cN|cNL) == 0 // [^\r\n\p{L}\p{N}] can match b[i]
	for _, alt1 := range [2]bool{true, false} {
		if prefix {
			if e := o200kWord(b, i+n0, alt1); e >= 0 {
				return e
			}
		}
		if e := o200kWord(b, i, alt1); e >= 0 {
			return e
		}
	}
	// \p{N}{1,3}
	if c0&cN != 0 {
		return runN(b, i+n0, cN, 2)
	}
	//  ?[^\s\p{L}\p{N}]+[\r\n/]*
	j := i
	if b[i] == ' ' {
		j++
	}
	if j < len(b) {
		if cj, nj := classAt(b, j); cj&(cS|cL|cN) == 0 {
			e := runNot(b, j+nj, cS|cL|cN)
			for e < len(b) && (b[e] == '\r' || b[e] == '\n' || b[e] == '/') {
				e++
			}
			return e
		}
	}
	return spaces(b, i, true)
}
