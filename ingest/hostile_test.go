//go:build linux

package ingest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image/jpeg"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The hostile-input test (issue #11): a source tree and archives built at run time with
// every kind of input a corpus from an untrusted party can hold, ingested in a child
// process (this test binary re-executed, or the immdata binary named by $IMMKIT_IMMDATA)
// whose peak RSS is measured. Each hostile item must be rejected with its specific reason,
// nothing outside the root may be read (a canary file with random content never reaches
// the output) or written (the tree outside OUT is unchanged), nothing may stall (a FIFO is
// never opened for reading; the child has a deadline), and peak RSS stays under
// hostileRSSBound.

// hostileRSSBound is the stated bound on the peak RSS of an ingest run over the hostile
// tree (1 GB gzip bomb, 10 GB sparse file, 100000x100000 PNG, 2^32-byte WAV included).
const hostileRSSBound = 200 << 20

// hostileDeadline bounds the child's wall time: a stall (a blocking FIFO open, a symlink
// loop walked forever) fails the test instead of hanging it.
const hostileDeadline = 5 * time.Minute

// hostileItem is one hostile input and the reject it must give.
type hostileItem struct {
	source string // the reject's source, relative to the base directory
	reason string
	detail string // a substring of the reject's detail ("" for any)
}

// hostileTree builds base/outside (canary files) and base/root (the source tree with
// its archives and a jsonl file) and returns the items that must be rejected and the
// canary bytes.
func hostileTree(t *testing.T, base string) (items []hostileItem, canary []byte, devOK bool) {
	t.Helper()
	root := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{root, outside, filepath.Join(root, "ok"), filepath.Join(root, "links"),
		filepath.Join(root, "special"), filepath.Join(root, "big"), filepath.Join(root, "shards"), filepath.Join(root, "jsonl")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p string, b []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(base, p), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, p string) {
		t.Helper()
		if err := os.Symlink(target, filepath.Join(base, p)); err != nil {
			t.Fatal(err)
		}
	}
	// The canary: a valid PNG (it would be accepted if it were ever read) with a random
	// text chunk, so its bytes in any output prove a read outside the root.
	canary = make([]byte, 32)
	rand.Read(canary)
	canary = []byte(fmt.Sprintf("canary %x", canary))
	png := smallPNG(t)
	canaryPNG := append(append(append([]byte{}, png[:33]...), pngChunk("tEXt", append([]byte("k\x00"), canary...))...), png[33:]...)
	write("outside/canary.png", canaryPNG)
	write("outside/canary.txt", canary)

	// A good sample, so the run has output to check.
	write("root/ok/cat.png", png)
	write("root/ok/cat.txt", []byte("a small cat"))

	// Symlinks: outside the root (relative, absolute), a loop, a directory cycle.
	link("../../outside/canary.png", "root/links/escape.png")
	link(filepath.Join(outside, "canary.txt"), "root/links/abs.txt")
	link("loop2.png", "root/links/loop1.png")
	link("loop1.png", "root/links/loop2.png")
	link("..", "root/links/up") // a directory cycle: walked once, not forever
	items = append(items,
		hostileItem{"root/links/escape.png", ReasonSymlinkOutsideRoot, ""},
		hostileItem{"root/links/abs.txt", ReasonSymlinkOutsideRoot, ""},
		hostileItem{"root/links/loop1.png", ReasonReadError, "symlink loop"},
		hostileItem{"root/links/loop2.png", ReasonReadError, "symlink loop"},
	)

	// A FIFO (a reader that opened it would block forever) and a character device.
	if err := syscall.Mkfifo(filepath.Join(root, "special", "fifo.wav"), 0o644); err != nil {
		t.Fatal(err)
	}
	items = append(items, hostileItem{"root/special/fifo.wav", ReasonNotRegular, ""})
	// major 1, minor 3 (/dev/null) in the Linux encoding; needs CAP_MKNOD.
	if err := syscall.Mknod(filepath.Join(root, "special", "dev.png"), syscall.S_IFCHR|0o644, 1<<8|3); err == nil {
		devOK = true
		items = append(items, hostileItem{"root/special/dev.png", ReasonNotRegular, ""})
	} else {
		t.Logf("no device file (mknod: %v): that case is covered by the tar member only", err)
	}

	// A 10 GB sparse file, and headers declaring huge media.
	f, err := os.Create(filepath.Join(root, "big", "sparse.png"))
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(f.Truncate(10<<30), f.Close()); err != nil {
		t.Fatal(err)
	}
	write("root/big/bigpng.png", hugePNG(100000, 100000))
	write("root/big/bigjpg.jpg", hugeJPEG(t))
	write("root/big/bigwav.wav", hugeWAV(0xFFFFFFFE))
	// 0xFFFFFFFF is the streamed-WAV convention (ffmpeg, sox writing to a pipe): the data
	// runs to the end of the file, so this one is a sample of the 64 bytes that are there.
	write("root/big/stream.wav", hugeWAV(0xFFFFFFFF))
	items = append(items,
		hostileItem{"root/big/sparse.png", ReasonFileTooLarge, ""},
		hostileItem{"root/big/bigpng.png", ReasonImageTooLarge, "100000x100000"},
		hostileItem{"root/big/bigjpg.jpg", ReasonImageTooLarge, "65535x65535"},
		hostileItem{"root/big/bigwav.wav", ReasonWAVTruncated, "4294967294"},
	)

	// A tar whose members try to leave the root or are not regular files.
	evil := tarBytes(t, false,
		tarEntry{name: "../escape.txt", data: []byte("written outside?")},
		tarEntry{name: "/tmp/abs.txt", data: []byte("absolute")},
		tarEntry{name: "a/../../up.txt", data: []byte("climbs")},
		tarEntry{name: "sym.png", link: "../../outside/canary.png", typ: tar.TypeSymlink},
		tarEntry{name: "hard.png", link: "../../outside/canary.png", typ: tar.TypeLink},
		tarEntry{name: "chr.png", typ: tar.TypeChar},
		tarEntry{name: "blk.png", typ: tar.TypeBlock},
		tarEntry{name: "fifo.wav", typ: tar.TypeFifo},
		tarEntry{name: "good.txt", data: []byte("a member after the hostile ones")},
	)
	write("root/shards/evil.tar", evil)
	for _, m := range []string{"../escape.txt", "/tmp/abs.txt", "a/../../up.txt"} {
		items = append(items, hostileItem{"root/shards/evil.tar#" + m, ReasonUnsafePath, "leaves the archive root"})
	}
	items = append(items,
		hostileItem{"root/shards/evil.tar#sym.png", ReasonUnsafePath, "not a regular file"},
		hostileItem{"root/shards/evil.tar#hard.png", ReasonUnsafePath, "not a regular file"},
		hostileItem{"root/shards/evil.tar#chr.png", ReasonNotRegular, ""},
		hostileItem{"root/shards/evil.tar#blk.png", ReasonNotRegular, ""},
		hostileItem{"root/shards/evil.tar#fifo.wav", ReasonNotRegular, ""},
	)

	// A gzip bomb: a tar.gz of about 1 MB holding a 1 GB member of zeros.
	write("root/shards/bomb.tar.gz", gzipBomb(t, 1<<30))
	items = append(items, hostileItem{"root/shards/bomb.tar.gz#zeros.png", ReasonFileTooLarge, "1073741824 bytes"})

	// A jsonl file whose media fields point outside its directory, at a FIFO and at the
	// escaping symlink.
	if err := syscall.Mkfifo(filepath.Join(root, "jsonl", "pipe.wav"), 0o644); err != nil {
		t.Fatal(err)
	}
	link("../../outside/canary.png", "root/jsonl/out.png")
	write("root/jsonl/list.jsonl", []byte(strings.Join([]string{
		`{"id": "up", "image": "../../outside/canary.png"}`,
		`{"id": "abs", "image": "` + filepath.Join(outside, "canary.png") + `"}`,
		`{"id": "pipe", "audio": "pipe.wav"}`,
		`{"id": "sym", "image": "out.png"}`,
		`{"id": "fine", "text": "a caption"}`,
	}, "\n")))
	items = append(items,
		hostileItem{"root/jsonl/list.jsonl:1", ReasonUnsafePath, ""},
		hostileItem{"root/jsonl/list.jsonl:2", ReasonUnsafePath, ""},
		hostileItem{"root/jsonl/list.jsonl:3#audio", ReasonNotRegular, ""},
		hostileItem{"root/jsonl/list.jsonl:4", ReasonSymlinkOutsideRoot, ""},
		// The directory walk sees the jsonl directory's FIFO and symlink too.
		hostileItem{"root/jsonl/pipe.wav", ReasonNotRegular, ""},
		hostileItem{"root/jsonl/out.png", ReasonSymlinkOutsideRoot, ""},
	)
	return items, canary, devOK
}

// hugeJPEG is a valid small JPEG whose frame header is patched to declare 65535x65535
// pixels (the largest size a JPEG can declare).
func hugeJPEG(t *testing.T) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, noisyImage(16, 16, 4), nil); err != nil {
		t.Fatal(err)
	}
	j := b.Bytes()
	i := bytes.Index(j, []byte{0xFF, 0xC0})
	if i < 0 {
		t.Fatal("no SOF0 in the encoded jpeg")
	}
	binary.BigEndian.PutUint16(j[i+5:], 0xFFFF) // height
	binary.BigEndian.PutUint16(j[i+7:], 0xFFFF) // width
	return j
}

// hugeWAV is a 16-bit PCM WAV whose RIFF and data chunks declare size bytes (up to
// 2^32-1, the largest a WAV can declare), followed by 64 bytes of samples.
func hugeWAV(size uint32) []byte {
	var b bytes.Buffer
	le := func(v any) { binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString("RIFF")
	le(size)
	b.WriteString("WAVEfmt ")
	le(uint32(16))
	le(uint16(1))     // PCM
	le(uint16(1))     // channels
	le(uint32(16000)) // rate
	le(uint32(32000)) // byte rate
	le(uint16(2))     // block align
	le(uint16(16))    // bits
	b.WriteString("data")
	le(size)
	b.Write(make([]byte, 64))
	return b.Bytes()
}

// gzipBomb returns a tar.gz holding one member "zeros.png" of n zero bytes (n a multiple of
// 1 MiB), as concatenated gzip members (which gzip readers decode as one stream): the
// compressed file is about n/1000 bytes.
func gzipBomb(t *testing.T, n int64) []byte {
	t.Helper()
	member := func(b []byte) []byte {
		var z bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
		zw.Write(b)
		zw.Close()
		return z.Bytes()
	}
	var hdr bytes.Buffer
	tw := tar.NewWriter(&hdr)
	if err := tw.WriteHeader(&tar.Header{Name: "zeros.png", Size: n, Mode: 0o644, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Flush()
	out := member(hdr.Bytes())
	mib := member(make([]byte, 1<<20))
	for range n >> 20 {
		out = append(out, mib...)
	}
	return append(out, member(make([]byte, 1024))...) // the two zero blocks that end a tar
}

// snapshotTree lists every path under dir except under skip, with its size and mode.
func snapshotTree(t *testing.T, dir, skip string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		size := fi.Size()
		if fi.IsDir() {
			size = 0
		}
		out = append(out, fmt.Sprintf("%s %v %d", p, fi.Mode(), size))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// TestHostileChild is the child process of TestHostileInputs; it does nothing otherwise.
func TestHostileChild(t *testing.T) {
	args := os.Getenv("IMMKIT_HOSTILE_CHILD")
	if args == "" {
		t.Skip("runs as the child process of TestHostileInputs")
	}
	var a struct{ Sources []string }
	var out string
	if err := json.Unmarshal([]byte(args), &a); err != nil {
		t.Fatal(err)
	}
	out, a.Sources = a.Sources[0], a.Sources[1:]
	cfg := Config{Sources: a.Sources, Out: out, Source: DefaultSourceOptions(), Part: DefaultPartOptions(), Dedup: true,
		Probe: ProbeOptions{Image: ImageLimits{MaxPixels: 100_000_000}}, Quiet: true}
	cfg.Source.Exclude = []string{"*.jsonl"}
	st, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Check(); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteStats(out); err != nil { // as immdata ingest does at the end
		t.Fatal(err)
	}
}

// TestHostileInputs builds the hostile tree and ingests it in a child process.
func TestHostileInputs(t *testing.T) {
	if os.Getenv("IMMKIT_HOSTILE_CHILD") != "" {
		t.Skip("child")
	}
	base := t.TempDir()
	items, canary, _ := hostileTree(t, base)
	root := filepath.Join(base, "root")
	jsonl := filepath.Join(root, "jsonl", "list.jsonl")
	out := filepath.Join(base, "out")
	before := snapshotTree(t, base, out)

	ctx, cancel := context.WithTimeout(context.Background(), hostileDeadline)
	defer cancel()
	var cmd *exec.Cmd
	if bin := os.Getenv("IMMKIT_IMMDATA"); bin != "" {
		cmd = exec.CommandContext(ctx, bin, "ingest", "-q", root, jsonl, "--out", out, "--exclude", "*.jsonl")
		t.Logf("child: %s", bin)
	} else {
		args, _ := json.Marshal(struct{ Sources []string }{[]string{out, root, jsonl}})
		cmd = exec.CommandContext(ctx, os.Args[0], "-test.run", "^TestHostileChild$", "-test.v")
		cmd.Env = append(os.Environ(), "IMMKIT_HOSTILE_CHILD="+string(args))
	}
	cmd.Dir = base
	start := time.Now()
	outb, err := cmd.CombinedOutput()
	wall := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("ingest of the hostile tree did not finish in %v (a stall): %s", hostileDeadline, outb)
	}
	if err != nil {
		t.Fatalf("ingest of the hostile tree: %v\n%s", err, outb)
	}
	rss := int64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) << 10 // kB on Linux
	t.Logf("hostile ingest: %v wall, peak RSS %.1f MiB (bound %d MiB)", wall.Round(time.Millisecond), float64(rss)/(1<<20), hostileRSSBound>>20)
	if rss > hostileRSSBound {
		t.Errorf("peak RSS %d MiB > bound %d MiB", rss>>20, hostileRSSBound>>20)
	}

	// Nothing written outside OUT, nothing of the canary in OUT.
	if after := snapshotTree(t, base, out); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("the tree outside OUT changed:\nbefore %q\nafter  %q", before, after)
	}
	if _, err := os.Lstat(filepath.Join(base, "escape.txt")); err == nil {
		t.Error("the tar member ../escape.txt was written")
	}
	err = filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, canary) {
			t.Errorf("%s holds the canary's bytes: a file outside the root was read", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	// Each hostile item is one reject with its reason; the good items are samples.
	rejects := map[string]Reject{}
	for _, r := range readRejects(t, out) {
		src := strings.TrimPrefix(filepath.ToSlash(r.Source), filepath.ToSlash(base)+"/")
		if _, dup := rejects[src]; dup {
			t.Errorf("two rejects for %s", src)
		}
		rejects[src] = r
	}
	for _, it := range items {
		r, ok := rejects[it.source]
		if !ok {
			t.Errorf("%s: not rejected (want %s)", it.source, it.reason)
			continue
		}
		if r.Reason != it.reason || !strings.Contains(r.Detail, it.detail) {
			t.Errorf("%s: rejected as %s (%s), want %s with %q", it.source, r.Reason, r.Detail, it.reason, it.detail)
		}
		delete(rejects, it.source)
	}
	for src, r := range rejects {
		t.Errorf("unexpected reject of %s: %s (%s)", src, r.Reason, r.Detail)
	}
	var st Stats
	b, err := os.ReadFile(filepath.Join(out, "ingest-stats.json"))
	if err == nil {
		err = json.Unmarshal(b, &st)
	}
	if err != nil {
		t.Fatal(err)
	}
	if st.Inputs != st.Samples+st.Duplicates+st.Rejected || st.Rejected != int64(len(items)) {
		t.Errorf("stats %+v: want inputs = samples + duplicates + rejected and %d rejects", st, len(items))
	}
	keys := map[string]bool{}
	for _, r := range readRows(t, out) {
		keys[r.key] = true
		if r.key == "big/stream" && (r.rate != 16000 || r.secs != 32.0/16000) {
			t.Errorf("streamed wav: %d Hz, %g s, want 16000 Hz and the 32 samples present", r.rate, r.secs)
		}
	}
	want := []string{"ok/cat", "good", "fine", "big/stream"}
	for _, k := range want {
		if !keys[k] {
			t.Errorf("the good item %q is not a sample (samples: %v)", k, keys)
		}
	}
	if len(keys) != len(want) {
		t.Errorf("samples %v, want %v", keys, want)
	}
}
