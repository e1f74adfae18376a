package text

import (
	"bytes"
	"runtime"
	"testing"
)

func benchEncode(b *testing.B, name string, data []byte) {
	e := loadEncoding(b, name)
	dst := e.Encode(nil, data)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		dst = e.Encode(dst[:0], data)
	}
	b.ReportMetric(float64(len(dst)), "tokens")
}

func BenchmarkEncode(b *testing.B) {
	for _, name := range []string{"cl100k_base", "o200k_base"} {
		b.Run(name+"/opticks", func(b *testing.B) { benchEncode(b, name, opticks(b)) })
		b.Run(name+"/go-source-8M", func(b *testing.B) { benchEncode(b, name, goCorpus(b, 8<<20)) })
		b.Run(name+"/letter-a-1M", func(b *testing.B) { benchEncode(b, name, bytes.Repeat([]byte("a"), 1<<20)) })
		b.Run(name+"/prose-1M", func(b *testing.B) { benchEncode(b, name, prose1M(b)) })
	}
}

// prose1M is Opticks repeated to 1 MiB.
func prose1M(b testing.TB) []byte {
	o := opticks(b)
	var buf bytes.Buffer
	for buf.Len() < 1<<20 {
		buf.Write(o)
	}
	return buf.Bytes()[:cutValid(buf.Bytes(), 1<<20)]
}

// BenchmarkEncodeBatch encodes the Go corpus cut into 64 KiB documents on GOMAXPROCS workers;
// run with -cpu 1,2 to compare. "new" is EncodeBatch (a new [][]int32 per call), "into" is
// EncodeBatchInto with one Batch reused across calls. Besides time it reports the process's
// CPU time per token (cpu-ns/token), which a loaded machine disturbs less than wall time.
func BenchmarkEncodeBatch(b *testing.B) {
	for _, name := range []string{"cl100k_base", "o200k_base"} {
		for _, mode := range []string{"new", "into"} {
			b.Run(name+"/"+mode, func(b *testing.B) {
				e := loadEncoding(b, name)
				data := goCorpus(b, 8<<20)
				var docs [][]byte
				for i := 0; i < len(data); {
					j := cutValid(data, min(len(data), i+64<<10))
					docs = append(docs, data[i:j])
					i = j
				}
				var batch Batch
				tokens := 0
				for _, d := range docs {
					tokens += e.Count(d)
				}
				e.EncodeBatchInto(&batch, docs, runtime.GOMAXPROCS(0)) // warm the states' arenas
				b.SetBytes(int64(len(data)))
				b.ReportAllocs()
				b.ResetTimer()
				c0, n := processCPU(), 0
				for b.Loop() {
					if mode == "new" {
						e.EncodeBatch(docs, runtime.GOMAXPROCS(0))
					} else {
						e.EncodeBatchInto(&batch, docs, runtime.GOMAXPROCS(0))
					}
					n++
				}
				b.ReportMetric(float64(processCPU()-c0)/float64(n)/float64(tokens), "cpu-ns/token")
			})
		}
	}
}
