package gen_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/immkit/immkit/testdata/gen"
)

func TestBadSet(t *testing.T) {
	dir := generate(t, gen.Options{Seed: 2, Samples: 0, Bad: true})
	var reasons []string
	for _, bf := range gen.BadFiles {
		reasons = append(reasons, bf.Reason)
	}
	wantReasons := []string{"empty_file", "image_too_large", "image_truncated", "png_crc", "symlink_outside_root",
		"text_not_utf8", "unknown_extension", "unsafe_path", "wav_truncated"}
	if slices.Sort(reasons); !slices.Equal(reasons, wantReasons) {
		t.Errorf("reasons %v, want %v", reasons, wantReasons)
	}
	entries, err := os.ReadDir(filepath.Join(dir, "bad"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(gen.BadFiles) {
		t.Errorf("bad/ holds %d entries, BadFiles lists %d", len(entries), len(gen.BadFiles))
	}
	for _, bf := range gen.BadFiles {
		p := filepath.Join(dir, filepath.FromSlash(bf.Path))
		st, err := os.Lstat(p)
		if err != nil {
			t.Errorf("%s: %v", bf.Path, err)
			continue
		}
		if bf.Reason == "symlink_outside_root" {
			target, err := os.Readlink(p)
			if st.Mode()&os.ModeSymlink == 0 || err != nil {
				t.Errorf("%s: not a symlink (%v, %v)", bf.Path, st.Mode(), err)
				continue
			}
			abs := target
			if !filepath.IsAbs(abs) {
				abs = filepath.Join(filepath.Dir(p), target)
			}
			if rel, err := filepath.Rel(dir, abs); err == nil && !strings.HasPrefix(rel, "..") {
				t.Errorf("%s -> %s resolves inside the corpus root", bf.Path, target)
			}
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		switch bf.Reason {
		case "image_truncated":
			if len(b) < 100 || !bytes.HasPrefix(b, []byte{0xff, 0xd8}) || bytes.HasSuffix(b, []byte{0xff, 0xd9}) {
				t.Errorf("%s: %d bytes, want a JPEG start without an EOI marker", bf.Path, len(b))
			}
			if _, err := jpeg.Decode(bytes.NewReader(b)); err == nil {
				t.Errorf("%s: jpeg.Decode succeeded", bf.Path)
			}
		case "png_crc":
			if _, err := png.DecodeConfig(bytes.NewReader(b)); err != nil {
				t.Errorf("%s: DecodeConfig should succeed (IHDR intact): %v", bf.Path, err)
			}
			_, err := png.Decode(bytes.NewReader(b))
			if err == nil || !strings.Contains(err.Error(), "checksum") {
				t.Errorf("%s: png.Decode error %v, want a checksum error", bf.Path, err)
			}
		case "empty_file":
			if len(b) != 0 {
				t.Errorf("%s: %d bytes, want 0", bf.Path, len(b))
			}
		case "image_too_large":
			cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
			if err != nil || format != "png" || cfg.Width != 100000 || cfg.Height != 100000 {
				t.Errorf("%s: DecodeConfig %s %dx%d %v, want png 100000x100000", bf.Path, format, cfg.Width, cfg.Height, err)
			}
			// The IHDR CRC is valid: only a size check can reject the file.
			if len(b) < 33 || string(b[12:16]) != "IHDR" || crc32.ChecksumIEEE(b[12:29]) != binary.BigEndian.Uint32(b[29:33]) {
				t.Errorf("%s: IHDR CRC invalid", bf.Path)
			}
		case "text_not_utf8":
			if len(b) == 0 || utf8.Valid(b) {
				t.Errorf("%s: %q is valid UTF-8", bf.Path, b)
			}
		case "wav_truncated":
			w, err := parseWAV(b)
			if err == nil || w.declaredData <= len(b)-44 || len(w.samples) == 0 {
				t.Errorf("%s: parse error %v, declared %d data bytes of %d; want a lying data size", bf.Path, err, w.declaredData, len(b)-44)
			}
		case "unsafe_path":
			names := tarNames(t, b)
			if !slices.Contains(names, bf.Member) || !strings.HasPrefix(bf.Member, "../") || !slices.Contains(names, gen.EscapeTarOK) {
				t.Errorf("%s: members %q, want %q and %q", bf.Path, names, bf.Member, gen.EscapeTarOK)
			}
		case "unknown_extension":
			known := []string{".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".wav", ".flac", ".mp3", ".txt", ".json", ".jsonl", ".tar", ".parquet"}
			if ext := filepath.Ext(p); slices.Contains(known, ext) || len(b) == 0 {
				t.Errorf("%s: extension %s is a known one or file empty", bf.Path, ext)
			}
		default:
			t.Errorf("%s: unexpected reason %q", bf.Path, bf.Reason)
		}
	}
}

func tarNames(t *testing.T, b []byte) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil && !errors.Is(err, tar.ErrInsecurePath) {
			t.Fatalf("tar: %v", err)
		}
		names = append(names, h.Name)
	}
}

func TestTarShards(t *testing.T) {
	o := gen.Options{Seed: 4, Samples: 17, ImageFormat: gen.FormatMixed, Output: gen.OutputBoth, ShardSamples: 7}
	dir := generate(t, o)
	lines := readManifest(t, dir)
	var want []string // member names in sample order, image, text, audio per key
	for _, m := range lines {
		want = append(want, m.Image, m.Text, m.Audio)
	}
	var got []string
	for k := 0; k < 3; k++ {
		f, err := os.Open(filepath.Join(dir, "shards", []string{"shapes-00000.tar", "shapes-00001.tar", "shapes-00002.tar"}[k]))
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(f)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Typeflag != tar.TypeReg || h.Mode != 0o644 || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" ||
				!h.ModTime.Equal(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)) {
				t.Errorf("%s: header %+v not deterministic", h.Name, h)
			}
			body, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			disk, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(h.Name)))
			if err != nil || !bytes.Equal(body, disk) {
				t.Errorf("%s: member differs from the file on disk (%v)", h.Name, err)
			}
			got = append(got, h.Name)
		}
		f.Close()
	}
	if !slices.Equal(got, want) {
		t.Errorf("members %q\nwant %q", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "shards", "shapes-00003.tar")); !os.IsNotExist(err) {
		t.Errorf("unexpected fourth shard: %v", err)
	}

	// Tar-only output holds the same shards and writes no per-sample files.
	o.Output = gen.OutputTar
	tarOnly := treeHashes(t, generate(t, o))
	both := treeHashes(t, dir)
	if len(tarOnly) != 4 {
		t.Errorf("tar-only output has %d files, want 3 shards + manifest", len(tarOnly))
	}
	for k, h := range tarOnly {
		if both[k] != h {
			t.Errorf("%s differs between tar-only and both", k)
		}
	}
}

func TestRenderMatchesFiles(t *testing.T) {
	o := gen.Options{Seed: 9, Samples: 6, ImageFormat: gen.FormatMixed, LabelBy: gen.LabelColorShape}
	dir := generate(t, o)
	for i, m := range readManifest(t, dir) {
		f, err := o.Render(i)
		if err != nil {
			t.Fatal(err)
		}
		if f.Spec.Key != m.Key || f.Spec.Label != m.Color+"-"+m.Shape || o.Spec(i) != f.Spec {
			t.Errorf("sample %d: Render spec %+v, manifest %+v", i, f.Spec, m)
		}
		for _, p := range []struct {
			name string
			b    []byte
		}{{m.Image, f.Image}, {m.Text, f.Text}, {m.Audio, f.Audio}} {
			disk, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p.name)))
			if err != nil || !bytes.Equal(disk, p.b) {
				t.Errorf("%s: Render bytes differ from the file (%v)", p.name, err)
			}
		}
		if string(f.Text) != m.Caption {
			t.Errorf("%s: text %q, caption %q", m.Key, f.Text, m.Caption)
		}
	}
}

func TestOptionsAndOutputDir(t *testing.T) {
	for _, o := range []gen.Options{
		{Samples: -1}, {ImageSize: 8}, {ImageFormat: "gif"}, {JPEGQuality: 101}, {AudioSeconds: -1},
		{SampleRate: 1000}, {SampleRate: 1400}, {LabelBy: "size"}, {Output: "zip"}, {ShardSamples: -2}, {Workers: -1},
	} {
		if _, err := gen.Generate(context.Background(), t.TempDir(), o); !errors.Is(err, gen.ErrOptions) {
			t.Errorf("%+v: error %v, want ErrOptions", o, err)
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "stale.jpg"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := gen.Generate(context.Background(), dir, gen.Options{Samples: 1}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("non-empty output directory: error %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := gen.Generate(ctx, filepath.Join(t.TempDir(), "c"), gen.Options{Samples: 100}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: error %v", err)
	}
}
