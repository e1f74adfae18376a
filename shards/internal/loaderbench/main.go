// Command loaderbench measures the throughput of shards.Loader (scripts/bench-loader.sh):
//
//	loaderbench -mode loader SHARDS   the Loader: shuffled, decoded float32 latents and
//	                                  padded int32 tokens, batches of -batch
//	loaderbench -mode naive SHARDS    the naive baseline: each shard read whole with
//	                                  pqarrow.ReadTable, float16 converted value by value
//	                                  with arrow's float16.Num.Float32, no shuffle
//
// -columns picks the loader's columns (default image_latent,text_tokens; audio_mel, a
// list<float32>, is padded to -float-len values).
//
// It prints one JSON line: decoded tensor payload bytes (float32 latents, float lists,
// int32 tokens and lengths), samples, wall seconds and CPU seconds (user+system), and throughput per
// wall second and per CPU second. Run it under GOMAXPROCS=1 for
// per-core figures and under /usr/bin/time -v for peak RSS.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/immkit/immkit/shards"
)

func main() {
	mode := flag.String("mode", "loader", "loader or naive")
	batch := flag.Int("batch", 256, "global batch")
	prefetch := flag.Int64("prefetch", 64<<20, "loader prefetch bytes")
	block := flag.Int("block", 2048, "loader shuffle block (samples)")
	epochs := flag.Int("epochs", 1, "epochs")
	seqLen := flag.Int("seq-len", 64, "token padding length")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile here")
	stepMS := flag.Int("step-ms", 0, "sleep this long per batch, a slow consumer (to fill the prefetch queue)")
	columns := flag.String("columns", "image_latent,text_tokens", "comma-separated columns the loader reads (mode loader)")
	floatLen := flag.Int("float-len", 8001, "padding length of float-list columns such as audio_mel")
	noVerify := flag.Bool("no-verify", false, "skip the loader's sha256 check of each shard on first open (LoaderOptions.NoVerify)")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "loaderbench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: loaderbench [flags] SHARDS")
		os.Exit(2)
	}
	var bytes, samples int64
	start := time.Now()
	cpu0 := cpuSeconds()
	var err error
	switch *mode {
	case "loader":
		bytes, samples, err = runLoader(flag.Arg(0), strings.Split(*columns, ","), *batch, *prefetch, *block, *epochs, *seqLen, *floatLen, time.Duration(*stepMS)*time.Millisecond, *noVerify)
	case "naive":
		bytes, samples, err = runNaive(flag.Arg(0), *epochs)
	default:
		err = fmt.Errorf("unknown mode %q", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loaderbench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
	sec := time.Since(start).Seconds()
	cpu := cpuSeconds() - cpu0
	json.NewEncoder(os.Stdout).Encode(map[string]any{
		"mode": *mode, "gomaxprocs": runtime.GOMAXPROCS(0), "prefetch": *prefetch, "block": *block,
		"payload_bytes": bytes, "samples": samples, "seconds": sec,
		"gb_per_s": float64(bytes) / sec / 1e9, "samples_per_s": float64(samples) / sec,
		"cpu_seconds": cpu, "gb_per_cpu_s": float64(bytes) / cpu / 1e9, "samples_per_cpu_s": float64(samples) / cpu,
	})
}

func runLoader(dir string, columns []string, batch int, prefetch int64, block, epochs, seqLen, floatLen int, step time.Duration, noVerify bool) (int64, int64, error) {
	l, err := shards.NewLoader(dir, shards.LoaderOptions{GlobalBatch: batch, Prefetch: prefetch, ShuffleBlock: block, Epochs: epochs,
		SeqLen: map[string]int{"text_tokens": seqLen, "audio_mel": floatLen}, Columns: columns, ReuseBatches: true, NoVerify: noVerify})
	if err != nil {
		return 0, 0, err
	}
	defer l.Close()
	var bytes, samples int64
	for {
		b, err := l.Next()
		if errors.Is(err, io.EOF) {
			return bytes, samples, nil
		}
		if err != nil {
			return 0, 0, err
		}
		time.Sleep(step)
		samples += int64(b.Len())
		for _, v := range b.Latents {
			bytes += int64(len(v.Data)) * 4
		}
		for _, v := range b.Floats {
			bytes += int64(len(v.Data)+len(v.Lengths)) * 4
		}
		for _, t := range b.Tokens {
			bytes += int64(len(t.IDs)+len(t.Lengths)) * 4
		}
	}
}

func runNaive(dir string, epochs int) (int64, int64, error) {
	m, err := shards.ReadManifest(dir)
	if err != nil {
		return 0, 0, err
	}
	var bytes, samples int64
	for e := 0; e < epochs; e++ {
		for _, s := range m.SplitShards(shards.SplitTrain) {
			f, err := os.Open(filepath.Join(dir, s.Path))
			if err != nil {
				return 0, 0, err
			}
			tbl, err := pqarrow.ReadTable(context.Background(), f, nil, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
			f.Close()
			if err != nil {
				return 0, 0, err
			}
			sc := tbl.Schema()
			lat := tbl.Column(sc.FieldIndices("image_latent")[0]).Data()
			tok := tbl.Column(sc.FieldIndices("text_tokens")[0]).Data()
			for _, ch := range lat.Chunks() {
				fsl := ch.(*array.FixedSizeList)
				vals := fsl.ListValues().(*array.Float16)
				for i := 0; i < fsl.Len(); i++ {
					lo, hi := fsl.ValueOffsets(i)
					out := make([]float32, hi-lo)
					for j := lo; j < hi; j++ {
						out[j-lo] = vals.Value(int(j)).Float32()
					}
					bytes += int64(len(out)) * 4
					samples++
				}
			}
			for _, ch := range tok.Chunks() {
				l := ch.(*array.List)
				vals := l.ListValues().(*array.Int32)
				for i := 0; i < l.Len(); i++ {
					lo, hi := l.ValueOffsets(i)
					out := make([]int32, 64)
					copy(out, vals.Int32Values()[lo:min(hi, lo+64)])
					bytes += int64(len(out)+1) * 4
				}
			}
			tbl.Release()
		}
	}
	return bytes, samples, nil
}

// cpuSeconds is the user+system CPU time of this process so far. On a shared machine the
// wall clock mostly measures other people's work; CPU time is what a core spends on ours.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}
