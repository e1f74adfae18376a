package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/immkit/immkit/encoders/text"
	"github.com/immkit/immkit/internal/cli"
	"github.com/immkit/immkit/internal/pqsafe"
	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newTokenizerCmd) }

// tokenizerOpts are the flags of `immdata tokenizer encode|decode|info`.
type tokenizerOpts struct {
	encoding string // standard name, or a trained tokenizer's .json config
	rankFile string
	allowed  string
	format   string
	inputs   []string
	stdin    io.Reader
	stdout   io.Writer
}

// trainOpts are the flags of `immdata tokenizer train`.
type trainOpts struct {
	vocabSize int
	pattern   string
	special   []string
	out       string
	column    string
	hfOut     string
	minFreq   int64
	inputs    []string
	g         *cli.Global
	stdout    io.Writer
}

func newTokenizerCmd(g *cli.Global) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tokenizer",
		Short: "Encode, decode and train byte-level BPE tokenizers (tiktoken-compatible)",
		Long: `tokenizer encodes text to token ids and back with tiktoken rank files (cl100k_base,
o200k_base, p50k_base, r50k_base/gpt2), giving the same ids as tiktoken, and trains new
byte-level BPE vocabularies. See docs/tokenizer.md.`,
		Example: "  echo 'hello world' | immdata tokenizer encode --encoding cl100k_base --rank-file cl100k_base.tiktoken",
	}
	cmd.AddCommand(newTokEncodeCmd(g), newTokDecodeCmd(g), newTokInfoCmd(g), newTokTrainCmd(g))
	return cmd
}

func addEncodingFlags(cmd *cobra.Command, o *tokenizerOpts) {
	f := cmd.Flags()
	f.StringVar(&o.encoding, "encoding", "cl100k_base", "encoding: "+strings.Join(text.StandardNames(), ", ")+", a trained tokenizer's .json config, or a Hugging Face tokenizer.json")
	f.StringVar(&o.rankFile, "rank-file", "", "the encoding's .tiktoken rank file (default: $IMMKIT_CACHE/tiktoken/NAME.tiktoken, else .cache/tiktoken/NAME.tiktoken)")
}

func newTokEncodeCmd(g *cli.Global) *cobra.Command {
	o := &tokenizerOpts{}
	cmd := &cobra.Command{
		Use:     "encode [FILE...]",
		Short:   "Encode text (stdin or files, concatenated) to token ids",
		Example: "  echo 'hello world' | immdata tokenizer encode --encoding o200k_base --rank-file o200k_base.tiktoken --format lines",
		RunE: func(cmd *cobra.Command, args []string) error {
			o.inputs, o.stdin, o.stdout = args, cmd.InOrStdin(), cmd.OutOrStdout()
			return runTokEncode(cmd.Context(), o)
		},
	}
	addEncodingFlags(cmd, o)
	cmd.Flags().StringVar(&o.allowed, "allowed-special", "none", "special tokens recognised in the text: all, none or a comma-separated list (others are encoded as text)")
	cmd.Flags().StringVar(&o.format, "format", "json", "output: json (one array) or lines (one id per line)")
	return cmd
}

func newTokDecodeCmd(g *cli.Global) *cobra.Command {
	o := &tokenizerOpts{}
	cmd := &cobra.Command{
		Use:     "decode [FILE...]",
		Short:   "Decode token ids (a JSON array or one id per line) to text",
		Example: "  immdata tokenizer encode --rank-file cl100k_base.tiktoken < a.txt | immdata tokenizer decode --rank-file cl100k_base.tiktoken",
		RunE: func(cmd *cobra.Command, args []string) error {
			o.inputs, o.stdin, o.stdout = args, cmd.InOrStdin(), cmd.OutOrStdout()
			return runTokDecode(cmd.Context(), o)
		},
	}
	addEncodingFlags(cmd, o)
	return cmd
}

func newTokInfoCmd(g *cli.Global) *cobra.Command {
	o := &tokenizerOpts{}
	cmd := &cobra.Command{
		Use:     "info",
		Short:   "Show an encoding: pattern, vocabulary size, special tokens, rank file hash",
		Example: "  immdata tokenizer info --encoding cl100k_base --rank-file cl100k_base.tiktoken",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.stdout = cmd.OutOrStdout()
			return runTokInfo(cmd.Context(), o)
		},
	}
	addEncodingFlags(cmd, o)
	return cmd
}

func newTokTrainCmd(g *cli.Global) *cobra.Command {
	o := &trainOpts{g: g}
	cmd := &cobra.Command{
		Use:   "train -o FILE INPUT...",
		Short: "Train a byte-level BPE vocabulary from text files or the text column of Parquet files",
		Long: `train learns a byte-level BPE vocabulary (deterministic: the most frequent pair is merged
first, ties go to the smaller pair) from text files and from the text column of ingested
Parquet files (*.parquet, or directories holding them). It writes FILE (.tiktoken ranks) and
FILE's .json config, which --encoding of encode/decode/info accepts, and optionally a
Hugging Face tokenizer.json.`,
		Example: "  immdata tokenizer train --vocab-size 30000 --pattern cl100k -o my.tiktoken corpus.txt ingested/parts/",
		RunE: func(cmd *cobra.Command, args []string) error {
			o.inputs, o.stdout = args, cmd.OutOrStdout()
			return runTokTrain(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.vocabSize, "vocab-size", 30000, "ids in the vocabulary: 256 bytes + merges + special tokens")
	f.StringVar(&o.pattern, "pattern", "cl100k", "pre-tokeniser: cl100k, o200k or gpt2")
	f.StringSliceVar(&o.special, "special", []string{"<|endoftext|>"}, "special tokens, ids after the merges (comma-separated)")
	f.StringVarP(&o.out, "out", "o", "tokenizer.tiktoken", "output rank file; the config goes beside it as .json")
	f.StringVar(&o.column, "column", "text", "text column of Parquet inputs")
	f.StringVar(&o.hfOut, "hf-out", "", "also write a Hugging Face tokenizer.json here")
	f.Int64Var(&o.minFreq, "min-frequency", 0, "stop when the best pair occurs fewer times")
	return cmd
}

// loadEncoding builds the encoding the flags name.
func (o *tokenizerOpts) load() (*text.Encoding, string, error) {
	if strings.HasSuffix(o.encoding, ".json") {
		if o.rankFile != "" {
			return nil, "", cli.Usagef("--rank-file: not used with a .json config (it names its rank file)")
		}
		b, err := os.ReadFile(o.encoding)
		if err != nil {
			return nil, "", err
		}
		var probe struct {
			Model json.RawMessage `json:"model"`
		}
		if json.Unmarshal(b, &probe) == nil && probe.Model != nil { // a Hugging Face tokenizer.json
			e, err := text.ReadHFTokenizer(bytes.NewReader(b), strings.TrimSuffix(filepath.Base(o.encoding), ".json"))
			return e, o.encoding, err
		}
		e, err := text.LoadConfig(o.encoding)
		return e, o.encoding, err
	}
	rf := o.rankFile
	if rf == "" {
		file := o.encoding
		if file == "gpt2" {
			file = "r50k_base"
		} else if file == "p50k_edit" {
			file = "p50k_base"
		}
		var tried []string
		for _, dir := range []string{os.Getenv("IMMKIT_CACHE"), ".cache"} {
			if dir == "" {
				continue
			}
			p := filepath.Join(dir, "tiktoken", file+".tiktoken")
			if _, err := os.Stat(p); err == nil {
				rf = p
				break
			}
			tried = append(tried, p)
		}
		if rf == "" {
			return nil, "", cli.Usagef("--rank-file: not given and no %s.tiktoken in %s (scripts/deps.d/tokenizer.sh fetches the standard ones)", file, strings.Join(tried, ", "))
		}
	}
	ranks, err := text.LoadTiktoken(rf)
	if err != nil {
		return nil, "", err
	}
	cfg, err := text.Standard(o.encoding, ranks)
	if err != nil {
		return nil, "", cli.Usagef("--encoding: %v", err)
	}
	e, err := text.New(cfg)
	return e, rf, err
}

// readInputs returns the concatenated files, or stdin when there are none.
func (o *tokenizerOpts) readInputs() ([]byte, error) {
	if len(o.inputs) == 0 {
		return io.ReadAll(o.stdin)
	}
	var buf bytes.Buffer
	for _, p := range o.inputs {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

func runTokEncode(_ context.Context, o *tokenizerOpts) error {
	if o.format != "json" && o.format != "lines" {
		return cli.Usagef("--format: want json or lines, got %q", o.format)
	}
	e, _, err := o.load()
	if err != nil {
		return err
	}
	allowed, err := e.ParseSpecialSet(o.allowed)
	if err != nil {
		return cli.Usagef("--allowed-special: %v", err)
	}
	in, err := o.readInputs()
	if err != nil {
		return err
	}
	ids := e.EncodeSpecial(nil, in, allowed)
	w := bufio.NewWriterSize(o.stdout, 1<<16)
	var num []byte
	if o.format == "json" {
		w.WriteByte('[')
	}
	for i, id := range ids {
		if o.format == "json" && i > 0 {
			w.WriteByte(',')
		}
		num = strconv.AppendInt(num[:0], int64(id), 10)
		w.Write(num)
		if o.format == "lines" {
			w.WriteByte('\n')
		}
	}
	if o.format == "json" {
		w.WriteString("]\n")
	}
	return w.Flush()
}

// errIDs is wrapped by every parse error of decode's input.
var errIDs = errors.New("token ids")

// parseIDs reads a JSON array of integers or whitespace-separated integers.
func parseIDs(in []byte) ([]int32, error) {
	t := bytes.TrimSpace(in)
	if len(t) > 0 && t[0] == '[' {
		var ids []int32
		if err := json.Unmarshal(t, &ids); err != nil {
			return nil, fmt.Errorf("%w: not a JSON array of integers: %v", errIDs, err)
		}
		return ids, nil
	}
	var ids []int32
	for k, f := range bytes.Fields(t) {
		n, err := strconv.ParseInt(string(f), 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%w: field %d: %q is not an integer", errIDs, k+1, f)
		}
		ids = append(ids, int32(n))
	}
	return ids, nil
}

func runTokDecode(_ context.Context, o *tokenizerOpts) error {
	e, _, err := o.load()
	if err != nil {
		return err
	}
	in, err := o.readInputs()
	if err != nil {
		return err
	}
	ids, err := parseIDs(in)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(o.stdout, 1<<16)
	d := e.NewDecoder(w)
	if err := d.Write(ids); err != nil {
		return err
	}
	if err := d.Flush(); err != nil {
		return err
	}
	return w.Flush()
}

func runTokInfo(_ context.Context, o *tokenizerOpts) error {
	e, src, err := o.load()
	if err != nil {
		return err
	}
	rankFile := src
	if strings.HasSuffix(src, ".json") && !strings.HasSuffix(src, "tokenizer.json") { // a config names its rank file
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		var fc text.FileConfig
		if err := json.Unmarshal(b, &fc); err != nil {
			return err
		}
		rankFile = fc.RankFile
		if !filepath.IsAbs(rankFile) {
			rankFile = filepath.Join(filepath.Dir(src), rankFile)
		}
	}
	sum, err := text.FileSHA256(rankFile)
	if err != nil {
		return err
	}
	sp := e.Special()
	names := make([]string, 0, len(sp))
	for k := range sp {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return sp[names[i]] < sp[names[j]] })
	w := o.stdout
	fmt.Fprintf(w, "name:        %s\n", e.Name())
	fmt.Fprintf(w, "pattern:     %s\n", e.Pattern())
	fmt.Fprintf(w, "regexp:      %s\n", e.Pattern().Regexp())
	fmt.Fprintf(w, "vocab size:  %d (%d mergeable, %d special), max id %d\n", e.VocabSize(), e.VocabSize()-len(sp), len(sp), e.MaxID())
	fmt.Fprintf(w, "source:      %s\n", src)
	fmt.Fprintf(w, "rank file:   %s\n", rankFile)
	fmt.Fprintf(w, "sha256:      %s\n", sum)
	for _, n := range names {
		fmt.Fprintf(w, "special:     %d %s\n", sp[n], n)
	}
	return nil
}

func runTokTrain(ctx context.Context, o *trainOpts) error {
	if len(o.inputs) == 0 {
		return cli.Usagef("train: no INPUT files")
	}
	pat, err := text.ParsePattern(o.pattern)
	if err != nil {
		return cli.Usagef("--pattern: %v", err)
	}
	log, err := o.g.Logger()
	if err != nil {
		return err
	}
	start := time.Now()
	var docs [][]byte
	var total int64
	for _, in := range o.inputs {
		ds, err := readTrainInput(ctx, in, o.column)
		if err != nil {
			return err
		}
		for _, d := range ds {
			total += int64(len(d))
		}
		docs = append(docs, ds...)
	}
	log.Info("tokenizer train: corpus read", "documents", len(docs), "bytes", total)
	var special []string
	for _, s := range o.special {
		if s != "" {
			special = append(special, s)
		}
	}
	tr, err := text.Train(text.TrainConfig{VocabSize: o.vocabSize, Pattern: pat, Special: special, MinFrequency: o.minFreq, Workers: o.g.NumWorkers()}, docs)
	if err != nil {
		return cli.Usagef("%v", err)
	}
	name := strings.TrimSuffix(filepath.Base(o.out), filepath.Ext(o.out))
	e, err := text.New(text.Config{Name: name, Pattern: pat, Ranks: tr.Ranks, Special: tr.Special})
	if err != nil {
		return err
	}
	if err := e.Save(o.out); err != nil {
		return err
	}
	if o.hfOut != "" {
		f, err := os.Create(o.hfOut)
		if err != nil {
			return err
		}
		err = text.WriteHFTokenizer(f, e, tr.Merges)
		if err = errors.Join(err, f.Close()); err != nil {
			return err
		}
	}
	fmt.Fprintf(o.stdout, "trained %s: %d ids (%d merges) from %d bytes in %.1fs; wrote %s and %s\n",
		name, e.VocabSize(), len(tr.Merges), total, time.Since(start).Seconds(), o.out, text.ConfigPath(o.out))
	return nil
}

// readTrainInput returns the documents of one input: a text file, a Parquet file or a
// directory of Parquet files.
func readTrainInput(ctx context.Context, path, column string) ([][]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		ps, err := filepath.Glob(filepath.Join(path, "*.parquet"))
		if err != nil {
			return nil, err
		}
		if len(ps) == 0 {
			return nil, fmt.Errorf("tokenizer train: %s: no *.parquet files", path)
		}
		sort.Strings(ps)
		var docs [][]byte
		for _, p := range ps {
			ds, err := readParquetText(ctx, p, column)
			if err != nil {
				return nil, err
			}
			docs = append(docs, ds...)
		}
		return docs, nil
	}
	if strings.HasSuffix(path, ".parquet") {
		return readParquetText(ctx, path, column)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return [][]byte{b}, nil
}

// readParquetText returns the non-null values of a utf8 column. A damaged file is an error
// naming it and the row group (internal/pqsafe), never a crash.
func readParquetText(ctx context.Context, path, column string) ([][]byte, error) {
	var docs [][]byte
	o := pqsafe.Options{BatchRows: 4096, Prefix: "tokenizer train: "}
	err := pqsafe.ScanFile(ctx, path, []string{column}, o, func(rec arrow.RecordBatch) error {
		var value func(int) string
		switch c := rec.Column(0).(type) {
		case *array.String:
			value = c.Value
		case *array.LargeString:
			value = c.Value
		default:
			return fmt.Errorf("tokenizer train: %s: column %q is %s, want utf8", path, column, c.DataType())
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			if rec.Column(0).IsValid(i) {
				docs = append(docs, []byte(value(i)))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return docs, nil
}
