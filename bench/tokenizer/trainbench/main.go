// Command trainbench times encoders/text training the way hf_train.cjs times HF tokenizers:
// read the training files, train a byte-level BPE with the cl100k pattern, then count the
// tokens of the held-out file. It also writes the rank file, config and tokenizer.json.
// usage: trainbench CORPUS_DIR VOCAB_SIZE
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/immkit/immkit/encoders/text"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "trainbench:", err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) != 3 {
		return errors.New("usage: trainbench CORPUS_DIR VOCAB_SIZE")
	}
	dir := os.Args[1]
	vocab, err := strconv.Atoi(os.Args[2])
	if err != nil {
		return err
	}
	t0 := time.Now()
	var docs [][]byte
	for _, f := range []string{"opticks.txt", "gosrc-8M.txt"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return err
		}
		docs = append(docs, b)
	}
	tr, err := text.Train(text.TrainConfig{VocabSize: vocab, Pattern: text.PatternCL100k, Workers: runtime.GOMAXPROCS(0)}, docs)
	if err != nil {
		return err
	}
	secs := time.Since(t0).Seconds()
	e, err := text.New(text.Config{Name: "immkit-30k", Pattern: text.PatternCL100k, Ranks: tr.Ranks, Special: tr.Special})
	if err != nil {
		return err
	}
	if err := e.Save(filepath.Join(dir, "immkit-30k.tiktoken")); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "immkit-30k.tokenizer.json"))
	if err != nil {
		return err
	}
	if err := errors.Join(text.WriteHFTokenizer(f, e, nil), f.Close()); err != nil {
		return err
	}
	held, err := os.ReadFile(filepath.Join(dir, "heldout.txt"))
	if err != nil {
		return err
	}
	fmt.Printf("train impl=immkit seconds=%.3f heldout_bytes=%d heldout_tokens=%d vocab=%d requested=%d\n",
		secs, len(held), e.Count(held), e.VocabSize(), vocab)
	return nil
}
