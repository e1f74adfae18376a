// Package tokenizer benchmarks encoders/text against github.com/tiktoken-go/tokenizer, in
// its own module so that the peer stays out of immkit's dependencies. The npm tiktoken
// (WASM) figures come from tiktoken_bench.cjs in the same run; scripts/bench-tokenizer.sh
// runs both. Inputs are read from $TOKBENCH_DIR (written by ./corpus) and rank files from
// $IMMKIT_CACHE/tiktoken.
package tokenizer

import (
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"github.com/immkit/immkit/encoders/text"
	tkgo "github.com/tiktoken-go/tokenizer"
)

var encodings = []struct {
	name string
	peer tkgo.Encoding
}{{"cl100k_base", tkgo.Cl100kBase}, {"o200k_base", tkgo.O200kBase}}

func input(b *testing.B, name string) []byte {
	dir := os.Getenv("TOKBENCH_DIR")
	if dir == "" {
		b.Skip("TOKBENCH_DIR not set; run scripts/bench-tokenizer.sh")
	}
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		b.Fatal(err)
	}
	return data
}

func ours(b *testing.B, name string) *text.Encoding {
	cache := os.Getenv("IMMKIT_CACHE")
	if cache == "" {
		cache = filepath.Join("..", "..", ".cache")
	}
	ranks, err := text.LoadTiktoken(filepath.Join(cache, "tiktoken", name+".tiktoken"))
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := text.Standard(name, ranks)
	if err != nil {
		b.Fatal(err)
	}
	e, err := text.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// cpuTime returns the process's user+system CPU time in nanoseconds. On a shared, loaded
// machine it is steadier than wall time, so each benchmark also reports cpu-ns/op.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func measure(b *testing.B, data []byte, f func() int) {
	tokens := f()
	b.SetBytes(int64(len(data)))
	runtime.GC()
	b.ResetTimer()
	c0 := cpuTime()
	n := 0
	for b.Loop() {
		f()
		n++
	}
	b.ReportMetric(float64(cpuTime()-c0)/float64(n), "cpu-ns/op")
	b.ReportMetric(float64(tokens), "tokens")
}

// BenchmarkEncode: ours vs tiktoken-go (Encode, and Count, its cheaper call) per input.
func BenchmarkEncode(b *testing.B) {
	for _, in := range []string{"opticks.txt", "gosrc-8M.txt", "prose-1M.txt", "letter-1M.txt"} {
		for _, enc := range encodings {
			b.Run("impl=immkit/enc="+enc.name+"/in="+in, func(b *testing.B) {
				data := input(b, in)
				e := ours(b, enc.name)
				var dst []int32
				measure(b, data, func() int { dst = e.Encode(dst[:0], data); return len(dst) })
			})
			if in == "letter-1M.txt" {
				continue // the peer's regexp engine and merge take minutes on it
			}
			b.Run("impl=tiktoken-go/enc="+enc.name+"/in="+in, func(b *testing.B) {
				data := input(b, in)
				s := string(data)
				c, err := tkgo.Get(enc.peer)
				if err != nil {
					b.Fatal(err)
				}
				measure(b, data, func() int {
					ids, _, err := c.Encode(s)
					if err != nil {
						b.Fatal(err)
					}
					return len(ids)
				})
			})
			b.Run("impl=tiktoken-go-count/enc="+enc.name+"/in="+in, func(b *testing.B) {
				data := input(b, in)
				s := string(data)
				c, err := tkgo.Get(enc.peer)
				if err != nil {
					b.Fatal(err)
				}
				measure(b, data, func() int {
					n, err := c.Count(s)
					if err != nil {
						b.Fatal(err)
					}
					return n
				})
			})
		}
	}
}

// BenchmarkEncodeBatch encodes the Go corpus as 64 KiB documents on GOMAXPROCS workers;
// compare -cpu 1 and -cpu 2. api=new is EncodeBatch (a new [][]int32 per call, one exact-size
// id array), api=into is EncodeBatchInto with one Batch reused across calls (no allocation in
// the steady state, so no garbage collection in the measurement).
func BenchmarkEncodeBatch(b *testing.B) {
	for _, enc := range encodings {
		for _, api := range []string{"new", "into"} {
			b.Run("enc="+enc.name+"/api="+api, func(b *testing.B) {
				data := input(b, "gosrc-8M.txt")
				e := ours(b, enc.name)
				var docs [][]byte
				for i := 0; i < len(data); {
					j := min(len(data), i+64<<10)
					for j < len(data) && data[j]&0xC0 == 0x80 {
						j++
					}
					docs = append(docs, data[i:j])
					i = j
				}
				var batch text.Batch
				e.EncodeBatchInto(&batch, docs, runtime.GOMAXPROCS(0)) // warm the encode states
				b.SetBytes(int64(len(data)))
				b.ReportAllocs()
				runtime.GC()
				b.ResetTimer()
				c0, n := cpuTime(), 0
				for b.Loop() {
					if api == "new" {
						e.EncodeBatch(docs, runtime.GOMAXPROCS(0))
					} else {
						e.EncodeBatchInto(&batch, docs, runtime.GOMAXPROCS(0))
					}
					n++
				}
				// On an idle machine sec/op halves from -cpu 1 to -cpu 2; on a loaded one it
				// cannot, but cpu-ns/op staying flat shows the split adds no work.
				b.ReportMetric(float64(cpuTime()-c0)/float64(n), "cpu-ns/op")
				b.ReportMetric(float64(len(batch.IDs)), "tokens")
			})
		}
	}
}
