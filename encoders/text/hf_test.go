package text

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/immkit/immkit/internal/testenv"
)

// TestHFTokenizersAgree trains a vocabulary, exports it as tokenizer.json and checks that HF
// tokenizers (the npm package, native) gives the same ids as we do, for each pattern.
func TestHFTokenizersAgree(t *testing.T) {
	node := testenv.LookPath(t, "node", "apt-get install nodejs")
	nm := testenv.CachePath(t, filepath.Join("npm-tokenizer", "node_modules", "tokenizers"), depsFix)
	dir := t.TempDir()
	multi, err := os.ReadFile(filepath.Join("testdata", "multilingual.txt"))
	if err != nil {
		t.Fatal(err)
	}
	corpus := opticks(t)
	code := goCorpus(t, 512<<10)
	held := code[len(code)/2:]
	inputs := [][]byte{multi, corpus, held, []byte("\n  \n\tx  y   z\r\n\r\n it's IT'S don'ſ 123456 ٣٤٥")}
	var files []string
	for i, in := range inputs {
		files = append(files, writeTemp(t, dir, "in"+string(rune('0'+i)), in))
	}
	pats := []Pattern{PatternCL100k, PatternO200k, PatternGPT2}
	type request struct {
		Tokenizer string   `json:"tokenizer"`
		Files     []string `json:"files"`
	}
	var reqs []request
	var encs []*Encoding
	for _, pat := range pats {
		tr, err := Train(TrainConfig{VocabSize: 3000, Pattern: pat, Special: []string{"<|endoftext|>"}}, [][]byte{corpus, code[:len(code)/2], multi})
		if err != nil {
			t.Fatal(err)
		}
		e, err := New(Config{Name: "trained-" + pat.String(), Pattern: pat, Ranks: tr.Ranks, Special: tr.Special})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := WriteHFTokenizer(&buf, e, nil); err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, request{writeTemp(t, dir, pat.String()+".tokenizer.json", buf.Bytes()), files})
		encs = append(encs, e)
	}
	body, err := json.Marshal(reqs)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, filepath.Join("testdata", "hf_encode.cjs"), filepath.Dir(nm))
	cmd.Stdin = bytes.NewReader(body)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("HF tokenizers: %v\n%s", err, stderr.String())
	}
	var ref [][][]int32
	if err := json.Unmarshal(out, &ref); err != nil || len(ref) != len(reqs) {
		t.Fatalf("HF tokenizers output: %v", err)
	}
	for k, e := range encs {
		for i, in := range inputs {
			compareIDs(t, e, "HF tokenizers "+filepath.Base(files[i]), e.Encode(nil, in), ref[k][i])
		}
	}
}
