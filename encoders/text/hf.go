package text

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// byteUnicode is GPT-2's byte-to-character table used by Hugging Face's ByteLevel
// pre-tokeniser: printable Latin-1 bytes stand for themselves, the others for U+0100 onward.
var byteUnicode, unicodeByte = func() ([256]rune, map[rune]byte) {
	var t [256]rune
	back := make(map[rune]byte, 256)
	n := 0
	for b := range 256 {
		if b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE && b <= 0xFF {
			t[b] = rune(b)
		} else {
			t[b] = rune(256 + n)
			n++
		}
		back[t[b]] = byte(b)
	}
	return t, back
}()

func toByteLevel(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		sb.WriteRune(byteUnicode[s[i]])
	}
	return sb.String()
}

func fromByteLevel(s string) (string, error) {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		c, ok := unicodeByte[r]
		if !ok {
			return "", fmt.Errorf("text: %q is not a byte-level token (character %U)", s, r)
		}
		b = append(b, c)
	}
	return string(b), nil
}

type hfAddedToken struct {
	ID         int32  `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

type hfPreTokenizer struct {
	Type           string           `json:"type"`
	Pretokenizers  []hfPreTokenizer `json:"pretokenizers,omitempty"`
	Pattern        *hfPattern       `json:"pattern,omitempty"`
	Behavior       string           `json:"behavior,omitempty"`
	Invert         *bool            `json:"invert,omitempty"`
	AddPrefixSpace *bool            `json:"add_prefix_space,omitempty"`
	TrimOffsets    *bool            `json:"trim_offsets,omitempty"`
	UseRegex       *bool            `json:"use_regex,omitempty"`
}

type hfPattern struct {
	Regex string `json:"Regex,omitempty"`
}

type hfModel struct {
	Type                    string           `json:"type"`
	Dropout                 *float64         `json:"dropout"`
	UnkToken                *string          `json:"unk_token"`
	ContinuingSubwordPrefix *string          `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string          `json:"end_of_word_suffix"`
	FuseUnk                 bool             `json:"fuse_unk"`
	ByteFallback            bool             `json:"byte_fallback"`
	IgnoreMerges            bool             `json:"ignore_merges"`
	Vocab                   map[string]int32 `json:"vocab"`
	Merges                  [][2]string      `json:"merges"`
}

type hfTokenizer struct {
	Version       string          `json:"version"`
	Truncation    any             `json:"truncation"`
	Padding       any             `json:"padding"`
	AddedTokens   []hfAddedToken  `json:"added_tokens"`
	Normalizer    any             `json:"normalizer"`
	PreTokenizer  *hfPreTokenizer `json:"pre_tokenizer"`
	PostProcessor any             `json:"post_processor"`
	Decoder       *hfPreTokenizer `json:"decoder"`
	Model         hfModel         `json:"model"`
}

// Merges derives the merge list of e's vocabulary, in rank order: for each token of two or
// more bytes, the two parts that merging its bytes with the lower ranks ends in. A token that
// merging does not reach in two parts has no merge (it is reached only as a whole piece).
func (e *Encoding) Merges() [][2]string {
	type tr struct {
		tok  string
		rank uint32
	}
	toks := make([]tr, 0, len(e.ranks))
	for t, r := range e.ranks {
		if len(t) > 1 {
			toks = append(toks, tr{t, r})
		}
	}
	slices.SortFunc(toks, func(a, b tr) int { return int(a.rank) - int(b.rank) })
	var merges [][2]string
	for _, t := range toks {
		parts := e.partsBelow([]byte(t.tok), t.rank)
		if len(parts) == 2 {
			merges = append(merges, [2]string{string(parts[0]), string(parts[1])})
		}
	}
	return merges
}

// partsBelow merges b as bytePairMerge does, using only ranks below limit.
func (e *Encoding) partsBelow(b []byte, limit uint32) [][]byte {
	starts := make([]int, len(b)+1)
	for i := range starts {
		starts[i] = i
	}
	rank := func(k int) uint32 { // rank of parts k and k+1 merged
		if k+2 >= len(starts) {
			return noRank
		}
		r := e.rankOf(b[starts[k]:starts[k+2]])
		if r >= limit {
			return noRank
		}
		return r
	}
	for len(starts) > 3 {
		best, bi := uint32(noRank), -1
		for k := 0; k+2 < len(starts); k++ {
			if r := rank(k); r < best {
				best, bi = r, k
			}
		}
		if bi < 0 {
			break
		}
		starts = append(starts[:bi+1], starts[bi+2:]...)
	}
	parts := make([][]byte, 0, len(starts)-1)
	for k := 0; k+1 < len(starts); k++ {
		parts = append(parts, b[starts[k]:starts[k+1]])
	}
	return parts
}

// WriteHFTokenizer writes e as a Hugging Face tokenizer.json: a BPE model (byte-level vocab,
// ignore_merges so that a piece that is a token stays whole, as in tiktoken) behind a Split
// pre-tokeniser with the encoding's regexp and a ByteLevel step, special tokens as added
// tokens, and a ByteLevel decoder. merges may be nil; it is then derived with [Encoding.Merges].
func WriteHFTokenizer(w io.Writer, e *Encoding, merges [][2]string) error {
	if merges == nil {
		merges = e.Merges()
	}
	f, t := false, true
	tk := hfTokenizer{
		Version: "1.0",
		PreTokenizer: &hfPreTokenizer{Type: "Sequence", Pretokenizers: []hfPreTokenizer{
			{Type: "Split", Pattern: &hfPattern{Regex: e.pattern.Regexp()}, Behavior: "Isolated", Invert: &f},
			{Type: "ByteLevel", AddPrefixSpace: &f, TrimOffsets: &t, UseRegex: &f},
		}},
		Decoder: &hfPreTokenizer{Type: "ByteLevel", AddPrefixSpace: &t, TrimOffsets: &t, UseRegex: &t},
		Model:   hfModel{Type: "BPE", IgnoreMerges: true, Vocab: make(map[string]int32, len(e.ranks)), Merges: make([][2]string, 0, len(merges))},
	}
	tk.AddedTokens = []hfAddedToken{}
	for tok, r := range e.ranks {
		tk.Model.Vocab[toByteLevel(tok)] = int32(r)
	}
	for _, m := range merges {
		tk.Model.Merges = append(tk.Model.Merges, [2]string{toByteLevel(m[0]), toByteLevel(m[1])})
	}
	sp := e.Special()
	for s, id := range sp {
		tk.AddedTokens = append(tk.AddedTokens, hfAddedToken{ID: id, Content: s, Special: true})
	}
	slices.SortFunc(tk.AddedTokens, func(a, b hfAddedToken) int { return int(a.ID - b.ID) })
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	return enc.Encode(tk)
}

// ErrHFUnsupported is returned by [ReadHFTokenizer] for a tokenizer.json this package cannot
// reproduce exactly.
var ErrHFUnsupported = errors.New("text: unsupported tokenizer.json")

// ReadHFTokenizer reads a Hugging Face tokenizer.json with a byte-level BPE model and a
// Split pre-tokeniser whose regexp is one of the [Pattern]s. Vocabulary ids become ranks
// (the merge list is not needed: ranks order the merges), added tokens become special tokens.
func ReadHFTokenizer(r io.Reader, name string) (*Encoding, error) {
	var tk hfTokenizer
	if err := json.NewDecoder(r).Decode(&tk); err != nil {
		return nil, fmt.Errorf("text: tokenizer.json: %w", err)
	}
	if tk.Model.Type != "BPE" {
		return nil, fmt.Errorf("%w: model type %q, want BPE", ErrHFUnsupported, tk.Model.Type)
	}
	if tk.Normalizer != nil {
		return nil, fmt.Errorf("%w: has a normalizer", ErrHFUnsupported)
	}
	var pat Pattern
	if tk.PreTokenizer != nil {
		for _, p := range append([]hfPreTokenizer{*tk.PreTokenizer}, tk.PreTokenizer.Pretokenizers...) {
			if p.Type == "Split" && p.Pattern != nil {
				for _, c := range []Pattern{PatternCL100k, PatternO200k, PatternGPT2} {
					if p.Pattern.Regex == c.Regexp() {
						pat = c
					}
				}
				if pat == 0 {
					return nil, fmt.Errorf("%w: Split regexp %q is none of the cl100k, o200k, gpt2 patterns", ErrHFUnsupported, p.Pattern.Regex)
				}
			}
		}
	}
	if pat == 0 {
		return nil, fmt.Errorf("%w: no Split pre-tokenizer with a known regexp", ErrHFUnsupported)
	}
	ranks := make(Ranks, len(tk.Model.Vocab))
	for s, id := range tk.Model.Vocab {
		b, err := fromByteLevel(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrHFUnsupported, err)
		}
		ranks[b] = id
	}
	special := map[string]int32{}
	for _, a := range tk.AddedTokens {
		special[a.Content] = a.ID
	}
	return New(Config{Name: name, Pattern: pat, Ranks: ranks, Special: special})
}

// LoadHFTokenizer reads a tokenizer.json file; see [ReadHFTokenizer].
func LoadHFTokenizer(path string) (*Encoding, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("text: %w", err)
	}
	defer f.Close()
	return ReadHFTokenizer(f, strings.TrimSuffix(path, ".json"))
}
