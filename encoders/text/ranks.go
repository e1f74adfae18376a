package text

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
)

// Ranks maps each mergeable byte sequence of a byte-level BPE vocabulary to its rank. The
// rank is the token's id and its merge priority (lower merges first). The keys are raw bytes
// held in strings, not necessarily valid UTF-8.
type Ranks map[string]int32

// ErrRankFile is wrapped by every syntax error found in a `.tiktoken` rank file.
var ErrRankFile = errors.New("text: malformed .tiktoken rank file")

// maxRank bounds ranks so that ids fit int32 and the decode table stays allocatable.
const maxRank = 1 << 24

// ReadTiktoken parses a `.tiktoken` rank file: one line per token, the token's bytes in
// standard base64, one space, and its rank in decimal. Empty lines are skipped, as tiktoken
// does. Duplicate tokens, duplicate ranks and negative or huge ranks are errors.
func ReadTiktoken(r io.Reader) (Ranks, error) {
	ranks := make(Ranks, 1<<16)
	seen := make(map[int32]int, 1<<16)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var buf []byte
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimRight(sc.Bytes(), "\r")
		if len(b) == 0 {
			continue
		}
		sp := bytes.IndexByte(b, ' ')
		if sp < 0 {
			return nil, fmt.Errorf("%w: line %d: want \"BASE64 RANK\", got %q", ErrRankFile, line, clip(b))
		}
		enc, num := b[:sp], b[sp+1:]
		if sp == 0 {
			return nil, fmt.Errorf("%w: line %d: empty token", ErrRankFile, line)
		}
		buf = slices.Grow(buf[:0], base64.StdEncoding.DecodedLen(len(enc)))[:base64.StdEncoding.DecodedLen(len(enc))]
		n, err := base64.StdEncoding.Decode(buf, enc)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: token %q: %v", ErrRankFile, line, clip(enc), err)
		}
		if n == 0 {
			return nil, fmt.Errorf("%w: line %d: empty token", ErrRankFile, line)
		}
		rank, err := strconv.ParseInt(string(num), 10, 32)
		if err != nil || rank < 0 || rank >= maxRank {
			return nil, fmt.Errorf("%w: line %d: rank %q is not an integer in [0, %d)", ErrRankFile, line, clip(num), maxRank)
		}
		tok := string(buf[:n])
		if prev, ok := ranks[tok]; ok {
			return nil, fmt.Errorf("%w: line %d: token %q already has rank %d", ErrRankFile, line, tok, prev)
		}
		if pl, ok := seen[int32(rank)]; ok {
			return nil, fmt.Errorf("%w: line %d: rank %d already used on line %d", ErrRankFile, line, rank, pl)
		}
		ranks[tok] = int32(rank)
		seen[int32(rank)] = line
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("text: read rank file: %w", err)
	}
	if len(ranks) == 0 {
		return nil, fmt.Errorf("%w: no tokens", ErrRankFile)
	}
	return ranks, nil
}

// LoadTiktoken reads a `.tiktoken` rank file from path.
func LoadTiktoken(path string) (Ranks, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("text: %w", err)
	}
	defer f.Close()
	r, err := ReadTiktoken(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// WriteTiktoken writes ranks in `.tiktoken` format, ordered by rank.
func WriteTiktoken(w io.Writer, ranks Ranks) error {
	type entry struct {
		tok  string
		rank int32
	}
	es := make([]entry, 0, len(ranks))
	for t, r := range ranks {
		es = append(es, entry{t, r})
	}
	slices.SortFunc(es, func(a, b entry) int { return int(a.rank - b.rank) })
	bw := bufio.NewWriter(w)
	for _, e := range es {
		bw.WriteString(base64.StdEncoding.EncodeToString([]byte(e.tok)))
		bw.WriteByte(' ')
		bw.WriteString(strconv.Itoa(int(e.rank)))
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

func clip(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}
