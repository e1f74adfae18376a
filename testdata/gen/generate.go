package gen

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"
)

// Image formats of [Options.ImageFormat].
const (
	FormatJPEG  = "jpeg"
	FormatPNG   = "png"
	FormatMixed = "mixed" // even indices JPEG, odd indices PNG
)

// Label rules of [Options.LabelBy]: the class label, which is also the directory name.
const (
	LabelShape      = "shape"       // "triangle" (default)
	LabelColor      = "color"       // "red"
	LabelColorShape = "color-shape" // "red-triangle"
)

// Backgrounds of [Options.Background].
const (
	BackgroundTexture = "texture" // per-sample grey and tint, diagonal stripes, per-pixel noise (default)
	BackgroundPlain   = "plain"   // the per-sample grey and tint only
)

// Layouts of [Options.Layout].
const (
	LayoutGrid   = "grid"   // the 3 x 3 positions of [Positions], drawn uniformly (default)
	LayoutCenter = "center" // every shape in the centre cell
)

// Output modes of [Options.Output].
const (
	OutputDir  = "dir"  // OUT/<label>/<key>.* only (default)
	OutputTar  = "tar"  // OUT/shards/*.tar only
	OutputBoth = "both" // both
)

// ManifestName is the manifest's file name in the output directory.
const ManifestName = "manifest.jsonl"

// ShardDir is the directory, relative to the output directory, of the tar shards.
const ShardDir = "shards"

// TarModTime is the modification time of every tar member.
var TarModTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Options configure a corpus. The zero value of each field except Seed, Samples and Bad
// means its default.
type Options struct {
	Seed         uint64
	Samples      int     // number of samples
	ImageSize    int     // image width and height in pixels; default 64, 24..8192
	ImageFormat  string  // jpeg (default), png or mixed
	JPEGQuality  int     // 1..100, default 90
	AudioSeconds float64 // clip length, default 1.0, at most 600
	SampleRate   int     // default 16000, 4000..192000
	LabelBy      string  // shape (default), color or color-shape
	Background   string  // texture (default: grey stripes and per-pixel noise) or plain (one grey per image)
	Layout       string  // grid (default: 3 x 3 positions) or center (every shape in the centre cell)
	Output       string  // dir (default), tar or both
	ShardSamples int     // samples per tar shard, default 1000
	Bad          bool    // also write the malformed-input set (see BadFiles)
	Workers      int     // sample-rendering goroutines; default GOMAXPROCS; does not change the output
}

func (o Options) withDefaults() Options {
	if o.ImageSize == 0 {
		o.ImageSize = 64
	}
	if o.ImageFormat == "" {
		o.ImageFormat = FormatJPEG
	}
	if o.JPEGQuality == 0 {
		o.JPEGQuality = 90
	}
	if o.AudioSeconds == 0 {
		o.AudioSeconds = 1
	}
	if o.SampleRate == 0 {
		o.SampleRate = 16000
	}
	if o.LabelBy == "" {
		o.LabelBy = LabelShape
	}
	if o.Background == "" {
		o.Background = BackgroundTexture
	}
	if o.Layout == "" {
		o.Layout = LayoutGrid
	}
	if o.Output == "" {
		o.Output = OutputDir
	}
	if o.ShardSamples == 0 {
		o.ShardSamples = 1000
	}
	if o.Workers == 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	return o
}

// ErrOptions is wrapped by the errors Generate returns for unusable options.
var ErrOptions = errors.New("gen: invalid options")

// Validate checks the options after defaults are applied.
func (o Options) Validate() error {
	o = o.withDefaults()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrOptions, fmt.Sprintf(format, args...))
	}
	switch {
	case o.Samples < 0:
		return bad("samples must be >= 0, got %d", o.Samples)
	case o.ImageSize < 24 || o.ImageSize > 8192:
		return bad("image size must be in 24..8192, got %d", o.ImageSize)
	case o.ImageFormat != FormatJPEG && o.ImageFormat != FormatPNG && o.ImageFormat != FormatMixed:
		return bad("image format must be jpeg, png or mixed, got %q", o.ImageFormat)
	case o.JPEGQuality < 1 || o.JPEGQuality > 100:
		return bad("JPEG quality must be in 1..100, got %d", o.JPEGQuality)
	case !(o.AudioSeconds > 0 && o.AudioSeconds <= 600):
		return bad("audio seconds must be in (0, 600], got %g", o.AudioSeconds)
	case o.SampleRate < 4000 || o.SampleRate > 192000:
		return bad("sample rate must be in 4000..192000, got %d", o.SampleRate)
	case 2*Colors[len(Colors)-1].PitchHz >= float64(o.SampleRate):
		return bad("sample rate %d is below twice the highest pitch %g Hz", o.SampleRate, Colors[len(Colors)-1].PitchHz)
	case o.LabelBy != LabelShape && o.LabelBy != LabelColor && o.LabelBy != LabelColorShape:
		return bad("label rule must be shape, color or color-shape, got %q", o.LabelBy)
	case o.Background != BackgroundTexture && o.Background != BackgroundPlain:
		return bad("background must be texture or plain, got %q", o.Background)
	case o.Layout != LayoutGrid && o.Layout != LayoutCenter:
		return bad("layout must be grid or center, got %q", o.Layout)
	case o.Output != OutputDir && o.Output != OutputTar && o.Output != OutputBoth:
		return bad("output must be dir, tar or both, got %q", o.Output)
	case o.ShardSamples < 1:
		return bad("samples per shard must be >= 1, got %d", o.ShardSamples)
	case o.Workers < 1:
		return bad("workers must be >= 1, got %d", o.Workers)
	}
	return nil
}

// Summary counts what Generate wrote.
type Summary struct {
	Samples  int   `json:"samples"`
	Files    int   `json:"files"` // every file written, manifest, shards and bad set included
	Bytes    int64 `json:"bytes"` // their total size (a symlink counts as a file of 0 bytes)
	Shards   int   `json:"shards"`
	BadFiles int   `json:"bad_files"`
}

// SampleFiles are one sample's encoded files.
type SampleFiles struct {
	Spec  Spec
	Image []byte // JPEG or PNG, as Spec.ImageFormat says
	Text  []byte // the caption, UTF-8, no trailing newline
	Audio []byte // WAV, 16-bit mono PCM
}

// Render returns sample i's spec and encoded files.
func (o Options) Render(i int) (SampleFiles, error) {
	o = o.withDefaults()
	if err := o.Validate(); err != nil {
		return SampleFiles{}, err
	}
	return o.render(i)
}

func (o Options) render(i int) (SampleFiles, error) {
	r := newSampleRand(o.Seed, i)
	s := o.drawSpec(i, r)
	img, err := encodeImage(renderImage(&s, r), s.ImageFormat, o.JPEGQuality)
	if err != nil {
		return SampleFiles{}, err
	}
	wav := encodeWAV(renderAudio(&s, o.AudioSeconds, o.SampleRate, r), o.SampleRate)
	return SampleFiles{Spec: s, Image: img, Text: []byte(s.Caption), Audio: wav}, nil
}

// Generate writes the corpus into dir, which must not exist or be empty. It renders
// samples on o.Workers goroutines; the files are the same for any worker count.
func Generate(ctx context.Context, dir string, o Options) (Summary, error) {
	o = o.withDefaults()
	if err := o.Validate(); err != nil {
		return Summary{}, err
	}
	if err := prepareDir(dir); err != nil {
		return Summary{}, err
	}
	writeDir := o.Output == OutputDir || o.Output == OutputBoth
	writeTar := o.Output == OutputTar || o.Output == OutputBoth

	// The specs are cheap; drawing them first fixes the label directories and the manifest.
	specs := make([]Spec, o.Samples)
	var labels []string
	for i := range specs {
		specs[i] = o.drawSpec(i, newSampleRand(o.Seed, i))
		if !slices.Contains(labels, specs[i].Label) {
			labels = append(labels, specs[i].Label)
		}
	}
	if writeDir {
		for _, l := range labels {
			if err := os.MkdirAll(filepath.Join(dir, l), 0o755); err != nil {
				return Summary{}, fmt.Errorf("gen: %w", err)
			}
		}
	}
	var sum Summary
	if writeTar {
		if err := os.MkdirAll(filepath.Join(dir, ShardDir), 0o755); err != nil {
			return Summary{}, fmt.Errorf("gen: %w", err)
		}
	}

	type result struct {
		i     int
		files SampleFiles
		bytes int64
	}
	window := 4 * o.Workers // samples in flight: bounds the reorder buffer
	tokens := make(chan struct{}, window)
	jobs := make(chan int)
	results := make(chan result, window)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(jobs)
		for i := range o.Samples {
			select {
			case tokens <- struct{}{}:
			case <-gctx.Done():
				return gctx.Err()
			}
			select {
			case jobs <- i:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	workers, wctx := errgroup.WithContext(gctx)
	for range o.Workers {
		workers.Go(func() error {
			for i := range jobs {
				f, err := o.render(i)
				if err != nil {
					return err
				}
				var n int64
				if writeDir {
					for _, p := range []struct {
						name string
						b    []byte
					}{{f.Spec.Image, f.Image}, {f.Spec.Text, f.Text}, {f.Spec.Audio, f.Audio}} {
						if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(p.name)), p.b, 0o644); err != nil {
							return fmt.Errorf("gen: %w", err)
						}
						n += int64(len(p.b))
					}
				}
				if !writeTar {
					f = SampleFiles{} // nothing downstream needs the bytes
				}
				select {
				case results <- result{i, f, n}:
				case <-wctx.Done():
					return wctx.Err()
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		err := workers.Wait()
		close(results)
		return err
	})
	g.Go(func() error {
		// Consumer: counts, and writes tar shards in index order.
		var tw *shardWriter
		pending := map[int]SampleFiles{}
		next := 0
		for res := range results {
			if writeDir {
				sum.Files += 3
				sum.Bytes += res.bytes
			}
			if !writeTar {
				<-tokens
				continue
			}
			pending[res.i] = res.files
			for {
				f, ok := pending[next]
				if !ok {
					break
				}
				delete(pending, next)
				if next%o.ShardSamples == 0 {
					if err := tw.close(&sum); err != nil {
						return err
					}
					var err error
					if tw, err = newShardWriter(dir, next/o.ShardSamples); err != nil {
						return err
					}
				}
				if err := tw.add(f); err != nil {
					return errors.Join(err, tw.abort())
				}
				next++
				<-tokens
			}
		}
		return tw.close(&sum)
	})
	if err := g.Wait(); err != nil {
		return sum, err
	}
	sum.Samples = o.Samples
	n, err := writeManifest(filepath.Join(dir, ManifestName), specs)
	if err != nil {
		return sum, err
	}
	sum.Files++
	sum.Bytes += n
	if o.Bad {
		files, size, err := writeBad(dir, o)
		sum.BadFiles = files
		sum.Files += files
		sum.Bytes += size
		if err != nil {
			return sum, err
		}
	}
	return sum, nil
}

// prepareDir creates dir, or checks that it is an empty directory, so no stale file of an
// earlier run can survive into the corpus.
func prepareDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("gen: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("gen: output directory: %w", err)
	case len(entries) > 0:
		return fmt.Errorf("gen: output directory %s is not empty (%d entries); remove it or choose another", dir, len(entries))
	}
	return nil
}

// writeManifest writes one JSON line per spec and returns the bytes written.
func writeManifest(path string, specs []Spec) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, fmt.Errorf("gen: manifest: %w", err)
	}
	cw := &countWriter{w: f}
	bw := bufio.NewWriter(cw)
	enc := json.NewEncoder(bw)
	for i := range specs {
		if err := enc.Encode(&specs[i]); err != nil {
			return 0, errors.Join(fmt.Errorf("gen: manifest: %w", err), f.Close())
		}
	}
	if err := bw.Flush(); err != nil {
		return 0, errors.Join(fmt.Errorf("gen: manifest: %w", err), f.Close())
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("gen: manifest: %w", err)
	}
	return cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ShardName returns the path, relative to the output directory, of tar shard k.
func ShardName(k int) string { return fmt.Sprintf("%s/shapes-%05d.tar", ShardDir, k) }

// shardWriter writes one webdataset tar shard: per sample, in index order, the members
// <label>/<key>.{jpg|png}, <label>/<key>.txt, <label>/<key>.wav with fixed headers.
type shardWriter struct {
	path string
	f    *os.File
	cw   *countWriter
	bw   *bufio.Writer
	tw   *tar.Writer
}

func newShardWriter(dir string, k int) (*shardWriter, error) {
	p := filepath.Join(dir, filepath.FromSlash(ShardName(k)))
	f, err := os.Create(p)
	if err != nil {
		return nil, fmt.Errorf("gen: shard: %w", err)
	}
	s := &shardWriter{path: p, f: f, cw: &countWriter{w: f}}
	s.bw = bufio.NewWriterSize(s.cw, 1<<20)
	s.tw = tar.NewWriter(s.bw)
	return s, nil
}

func (s *shardWriter) add(f SampleFiles) error {
	for _, m := range []tarMember{{f.Spec.Image, f.Image}, {f.Spec.Text, f.Text}, {f.Spec.Audio, f.Audio}} {
		if err := writeMember(s.tw, m); err != nil {
			return fmt.Errorf("gen: shard %s: %w", s.path, err)
		}
	}
	return nil
}

// close finishes the shard and counts it; a nil writer is a no-op.
func (s *shardWriter) close(sum *Summary) error {
	if s == nil {
		return nil
	}
	err := s.tw.Close()
	if err == nil {
		err = s.bw.Flush()
	}
	if err = errors.Join(err, s.f.Close()); err != nil {
		return fmt.Errorf("gen: shard %s: %w", s.path, err)
	}
	sum.Shards++
	sum.Files++
	sum.Bytes += s.cw.n
	return nil
}

func (s *shardWriter) abort() error { return s.f.Close() }

type tarMember struct {
	name string
	data []byte
}

// writeMember writes a regular-file member with deterministic USTAR headers: mode 0644,
// uid/gid 0, no owner names, mtime TarModTime.
func writeMember(tw *tar.Writer, m tarMember) error {
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     m.name,
		Mode:     0o644,
		Size:     int64(len(m.data)),
		ModTime:  TarModTime,
		Format:   tar.FormatUSTAR,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := tw.Write(m.data)
	return err
}

// tarBytes returns a tar archive of the members.
func tarBytes(members []tarMember) ([]byte, error) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, m := range members {
		if err := writeMember(tw, m); err != nil {
			return nil, fmt.Errorf("gen: tar: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("gen: tar: %w", err)
	}
	return b.Bytes(), nil
}
