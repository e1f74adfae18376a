package text

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/immkit/immkit/internal/testenv"
)

const depsFix = "scripts/deps.d/tokenizer.sh"

// rankFile maps an encoding to the `.tiktoken` file in the cache that holds its ranks.
func rankFile(name string) string {
	switch name {
	case "gpt2":
		name = "r50k_base"
	case "p50k_edit":
		name = "p50k_base"
	}
	return filepath.Join("tiktoken", name+".tiktoken")
}

var (
	encMu    sync.Mutex
	encCache = map[string]*Encoding{}
)

func loadEncoding(t testing.TB, name string) *Encoding {
	t.Helper()
	encMu.Lock()
	defer encMu.Unlock()
	if e := encCache[name]; e != nil {
		return e
	}
	p := testenv.CachePath(t, rankFile(name), depsFix)
	ranks, err := LoadTiktoken(p)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Standard(name, ranks)
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	encCache[name] = e
	return e
}

type refRequest struct {
	Encoding       string   `json:"encoding"`
	Peer           string   `json:"peer,omitempty"`
	AllowedSpecial any      `json:"allowed_special,omitempty"`
	Texts          []string `json:"texts,omitempty"`
	Files          []string `json:"files,omitempty"`
}

type refResponse struct {
	Texts [][]int32 `json:"texts"`
	Files [][]int32 `json:"files"`
	MS    []float64 `json:"ms"`
}

// reference runs tiktoken (npm, WASM) through testdata/tiktoken_ref.cjs in this test run.
func reference(t testing.TB, req refRequest) refResponse {
	t.Helper()
	return references(t, []refRequest{req})[0]
}

// references runs several requests in one node process.
func references(t testing.TB, reqs []refRequest) []refResponse {
	t.Helper()
	node := testenv.LookPath(t, "node", "apt-get install nodejs")
	nm := testenv.CachePath(t, filepath.Join("npm-tokenizer", "node_modules", "tiktoken"), depsFix)
	body, err := json.Marshal(reqs)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "--max-old-space-size=8192", filepath.Join("testdata", "tiktoken_ref.cjs"), filepath.Dir(nm))
	cmd.Stdin = bytes.NewReader(body)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tiktoken reference: %v\n%s", err, stderr.String())
	}
	var resp []refResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("tiktoken reference output: %v", err)
	}
	if len(resp) != len(reqs) {
		t.Fatalf("tiktoken reference: %d responses to %d requests", len(resp), len(reqs))
	}
	return resp
}

// compareIDs reports the first position where got and want differ, with the text around it.
func compareIDs(t testing.TB, e *Encoding, label string, got, want []int32) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	k := 0
	for k < len(got) && k < len(want) && got[k] == want[k] {
		k++
	}
	show := func(ids []int32) string {
		lo, hi := max(0, k-4), min(len(ids), k+6)
		var sb strings.Builder
		for i := lo; i < hi; i++ {
			if i == k {
				sb.WriteString(" >>")
			}
			fmt.Fprintf(&sb, " %d:%q", ids[i], e.TokenBytes(ids[i]))
		}
		return sb.String()
	}
	var off int
	for _, id := range got[:k] {
		off += len(e.TokenBytes(id))
	}
	t.Errorf("%s (%s): ids differ from tiktoken at token %d (byte %d); got %d ids, want %d\n got: %s\nwant: %s",
		label, e.Name(), k, off, len(got), len(want), show(got), show(want))
}

func writeTemp(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// goCorpus concatenates the .go files of GOROOT/src in path order, up to size bytes.
func goCorpus(t testing.TB, size int) []byte {
	t.Helper()
	root := filepath.Join(runtime.GOROOT(), "src")
	var paths []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".go") {
			paths = append(paths, p)
		}
		return nil
	})
	sort.Strings(paths)
	var buf bytes.Buffer
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil || !isUTF8(b) {
			continue
		}
		buf.Write(b)
		if buf.Len() >= size {
			break
		}
	}
	if buf.Len() < size {
		t.Fatalf("GOROOT/src holds only %d bytes of Go source", buf.Len())
	}
	return buf.Bytes()[:size:size][:cutValid(buf.Bytes(), size)]
}

func isUTF8(b []byte) bool { return strings.ToValidUTF8(string(b), "\x00") == string(b) }

// cutValid returns the largest n <= size that does not split a UTF-8 sequence.
func cutValid(b []byte, size int) int {
	for size > 0 && size < len(b) && b[size]&0xC0 == 0x80 {
		size--
	}
	return size
}

func opticks(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(runtime.GOROOT(), "src", "testdata", "Isaac.Newton-Opticks.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// debianChangelogs concatenates the Debian changelogs found under /usr/share/doc, or those
// scripts/deps.d/tokenizer.sh extracted into the cache where the system has none.
func debianChangelogs(t testing.TB, size int) []byte {
	t.Helper()
	paths, _ := filepath.Glob("/usr/share/doc/*/changelog.Debian.gz")
	if len(paths) < 20 {
		paths, _ = filepath.Glob(filepath.Join(testenv.CacheDir(t), "debian-changelogs", "*.gz"))
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		zr, err := gzip.NewReader(f)
		if err == nil {
			var b bytes.Buffer
			_, err = b.ReadFrom(zr)
			if err == nil && isUTF8(b.Bytes()) {
				buf.Write(b.Bytes())
			}
		}
		f.Close()
		if buf.Len() >= size {
			break
		}
	}
	if buf.Len() < 10000 {
		testenv.Missing(t, "Debian changelogs under /usr/share/doc or the cache", depsFix)
	}
	return buf.Bytes()[:cutValid(buf.Bytes(), min(size, buf.Len()))]
}

// adversarial returns the pathological inputs, by name. Single pieces are kept at 32 KiB:
// tiktoken's merge is quadratic in the piece length, so a 1 MB piece takes it hours.
func adversarial(t testing.TB) map[string][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	in := map[string][]byte{
		"letter-a-32k":   bytes.Repeat([]byte("a"), 32<<10),
		"letter-Z-32k":   bytes.Repeat([]byte("Z"), 32<<10),
		"letter-é-16k":   bytes.Repeat([]byte("é"), 16<<10),
		"spaces-32k":     bytes.Repeat([]byte(" "), 32<<10),
		"newlines-32k":   bytes.Repeat([]byte("\n"), 32<<10),
		"digits-1M":      bytes.Repeat([]byte("0123456789"), 100000),
		"digits-ar-200k": bytes.Repeat([]byte("٠١٢٣٤٥٦٧٨٩"), 10000),
	}
	var ws, rb bytes.Buffer
	alphabet := []string{" ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "x", "Word", "!", "'s", "1"}
	for ws.Len() < 1<<20 {
		tok := alphabet[rng.IntN(len(alphabet))]
		n := 1 + rng.IntN(64)
		if rng.IntN(50) == 0 {
			n = 1 + rng.IntN(4000)
		}
		for range n {
			ws.WriteString(tok)
		}
	}
	in["whitespace-runs-1M"] = ws.Bytes()
	raw := make([]byte, 1<<20)
	for i := range raw {
		raw[i] = byte(rng.Uint32())
	}
	rb.WriteString(strings.ToValidUTF8(string(raw), "\uFFFD"))
	in["random-bytes-1M"] = rb.Bytes()
	in["debian-changelogs-2M"] = debianChangelogs(t, 2<<20)
	return in
}

// TestMatchesTiktoken compares our ids with tiktoken's on the acceptance corpora.
func TestMatchesTiktoken(t *testing.T) {
	dir := t.TempDir()
	type input struct {
		name string
		data []byte
	}
	multi, err := os.ReadFile(filepath.Join("testdata", "multilingual.txt"))
	if err != nil {
		t.Fatal(err)
	}
	inputs := []input{{"opticks", opticks(t)}, {"multilingual", multi}}
	if !testing.Short() {
		inputs = append(inputs, input{"go-source-8M", goCorpus(t, 8<<20)})
		adv := adversarial(t)
		names := slices.Sorted(func(yield func(string) bool) {
			for k := range adv {
				if !yield(k) {
					return
				}
			}
		})
		for _, n := range names {
			inputs = append(inputs, input{n, adv[n]})
		}
	}
	var files []string
	for _, in := range inputs {
		files = append(files, writeTemp(t, dir, in.name, in.data))
	}
	for _, name := range []string{"cl100k_base", "o200k_base", "r50k_base", "p50k_base"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := loadEncoding(t, name)
			fs := files
			if name == "r50k_base" || name == "p50k_base" {
				fs = files[:2]
			}
			ref := reference(t, refRequest{Encoding: name, Files: fs})
			for i := range fs {
				got := e.Encode(nil, inputs[i].data)
				compareIDs(t, e, inputs[i].name, got, ref.Files[i])
				if n := e.Count(inputs[i].data); n != len(ref.Files[i]) {
					t.Errorf("%s: Count = %d, tiktoken has %d ids", inputs[i].name, n, len(ref.Files[i]))
				}
				back, err := e.Decode(nil, got)
				if err != nil || !bytes.Equal(back, inputs[i].data) {
					t.Errorf("%s: Decode(Encode(x)) != x (err %v)", inputs[i].name, err)
				}
			}
		})
	}
}

type testPlan struct {
	encoding string
	sample   string
	encoded  []int32 // as listed in TestPlans.txt (gpt-tokenizer's fixture)
}

func readTestPlans(t testing.TB) []testPlan {
	p := testenv.CachePath(t, filepath.Join("tiktoken", "TestPlans.txt"), depsFix)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var plans []testPlan
	var cur testPlan
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "EncodingName: "):
			cur = testPlan{encoding: strings.TrimPrefix(line, "EncodingName: ")}
		case strings.HasPrefix(line, "Sample: "):
			cur.sample = strings.TrimPrefix(line, "Sample: ")
		case strings.HasPrefix(line, "Encoded: "):
			var ids []int32
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "Encoded: ")), &ids); err != nil {
				t.Fatalf("TestPlans.txt: %v", err)
			}
			cur.encoded = ids
			plans = append(plans, cur)
		}
	}
	if len(plans) != 313 {
		t.Fatalf("TestPlans.txt: %d cases, want 313", len(plans))
	}
	return plans
}

// TestPlans checks every case of gpt-tokenizer's TestPlans.txt against tiktoken run now
// (and against the ids the file lists).
func TestPlans(t *testing.T) {
	plans := readTestPlans(t)
	byEnc := map[string][]testPlan{}
	for _, p := range plans {
		byEnc[p.encoding] = append(byEnc[p.encoding], p)
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range byEnc {
			if !yield(k) {
				return
			}
		}
	})
	var reqs []refRequest
	for _, name := range names {
		var texts []string
		for _, p := range byEnc[name] {
			texts = append(texts, p.sample)
		}
		reqs = append(reqs, refRequest{Encoding: name, Texts: texts})
	}
	refs := references(t, reqs)
	for k, name := range names {
		t.Run(name, func(t *testing.T) {
			e := loadEncoding(t, name)
			ref := refs[k]
			for i, p := range byEnc[name] {
				got := e.EncodeString(p.sample)
				compareIDs(t, e, "TestPlans "+strconv.Quote(p.sample), got, ref.Texts[i])
				if !slices.Equal(ref.Texts[i], p.encoded) {
					t.Logf("note: TestPlans.txt lists %v for %q, tiktoken gives %v", p.encoded, p.sample, ref.Texts[i])
				}
			}
		})
	}
}

// TestSpecialTokens checks allowed special tokens against tiktoken's encode(allowed_special).
func TestSpecialTokens(t *testing.T) {
	text := "Hello<|endoftext|> world <|fim_prefix|>x<|fim_middle|><|endofprompt|>\n<|endoftext|>"
	names := []string{"cl100k_base", "o200k_base"}
	var reqs []refRequest
	for _, name := range names {
		reqs = append(reqs,
			refRequest{Encoding: name, AllowedSpecial: "all", Texts: []string{text}},
			refRequest{Encoding: name, AllowedSpecial: []string{"<|endoftext|>"}, Texts: []string{text}},
			refRequest{Encoding: name, Texts: []string{text}})
	}
	refs := references(t, reqs)
	for k, name := range names {
		e := loadEncoding(t, name)
		all, _ := e.ParseSpecialSet("all")
		compareIDs(t, e, "special all", e.EncodeSpecial(nil, []byte(text), all), refs[3*k].Texts[0])
		one, err := e.ParseSpecialSet("<|endoftext|>")
		if err != nil {
			t.Fatal(err)
		}
		compareIDs(t, e, "special <|endoftext|>", e.EncodeSpecial(nil, []byte(text), one), refs[3*k+1].Texts[0])
		none, _ := e.ParseSpecialSet("none")
		compareIDs(t, e, "special none", e.EncodeSpecial(nil, []byte(text), none), refs[3*k+2].Texts[0])
		if _, err := e.ParseSpecialSet("<|nope|>"); err == nil {
			t.Errorf("%s: ParseSpecialSet accepted an unknown token", name)
		}
	}
}
