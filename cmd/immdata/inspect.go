package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/immkit/immkit/ingest"
	"github.com/immkit/immkit/internal/cli"
	"github.com/immkit/immkit/internal/pqsafe"
	"github.com/spf13/cobra"
	xdraw "golang.org/x/image/draw"
)

func init() { subcommands = append(subcommands, newInspectCmd) }

// inspectOpts are the flags of `immdata inspect`.
type inspectOpts struct {
	path      string
	rows      int
	grid      string
	gridN     int
	thumb     int
	hashes    bool
	stdout    io.Writer
	maxPixels int64
}

func newInspectCmd(g *cli.Global) *cobra.Command {
	o := &inspectOpts{}
	cmd := &cobra.Command{
		Use:   "inspect PATH",
		Short: "Print the schema, row counts, per-modality statistics and a few rows of ingest output",
		Long: `inspect reads an ingest output directory (its parts/ and rejects/), a directory of Parquet
files or one Parquet file, and prints the schema, files and row counts, per-modality statistics
(image sizes, audio rates and durations, text lengths, labels), rejects by reason and the first
rows. --grid writes a contact sheet of the first images as PNG; --sha256 prints the sorted
content hashes, one per line, instead.`,
		Example: "  immdata inspect ingested --rows 5 --grid contact.png",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.path = args[0]
			o.stdout = cmd.OutOrStdout()
			return runInspect(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.rows, "rows", 5, "number of rows to print")
	f.StringVar(&o.grid, "grid", "", "write a contact sheet of the first images to this PNG file")
	f.IntVar(&o.gridN, "grid-images", 16, "number of images in the contact sheet")
	f.IntVar(&o.thumb, "thumb", 128, "thumbnail side in pixels in the contact sheet")
	f.BoolVar(&o.hashes, "sha256", false, "print only the sorted sha256 of every row (hex), one per line")
	f.Int64Var(&o.maxPixels, "max-pixels", 100_000_000, "skip images with more pixels in the contact sheet")
	return cmd
}

// inspectFiles resolves PATH to the Parquet files to read and the rejects files.
func inspectFiles(p string) (parts, rejects []string, err error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, nil, cli.Usagef("inspect: %v", err)
	}
	if !fi.IsDir() {
		return []string{p}, nil, nil
	}
	if parts, err = ingest.PartFiles(p); err != nil {
		return nil, nil, err
	}
	if len(parts) > 0 {
		rejects, err = ingest.RejectFiles(p)
		return parts, rejects, err
	}
	parts, err = filepath.Glob(filepath.Join(p, "*.parquet"))
	sort.Strings(parts)
	if len(parts) == 0 && err == nil {
		return nil, nil, cli.Usagef("inspect: no Parquet files in %s (nor in %s/parts)", p, p)
	}
	return parts, nil, err
}

// summary accumulates per-modality statistics over the rows.
type summary struct {
	rows                    int64
	images, audios, texts   int64
	labels                  map[string]int64
	widths, heights         []int32
	rates                   map[int32]int64
	seconds                 []float64
	textChars               []int
	imageBytes, audioBytes  int64
	unlabelled, rowsPrinted int64
	thumbs                  []image.Image
	gridErrors              int
	hashes                  []string
}

func runInspect(ctx context.Context, o *inspectOpts) error {
	if o.rows < 0 || o.gridN < 1 || o.thumb < 8 {
		return cli.Usagef("inspect: --rows must be >= 0, --grid-images >= 1, --thumb >= 8")
	}
	parts, rejects, err := inspectFiles(o.path)
	if err != nil {
		return err
	}
	w := o.stdout
	s := &summary{labels: map[string]int64{}, rates: map[int32]int64{}}
	if !o.hashes {
		if err := printSchema(w, parts); err != nil {
			return err
		}
	}
	needImages := o.grid != ""
	for _, p := range parts {
		var cols []string
		if o.hashes {
			cols = []string{ingest.ColSHA256}
		}
		err := pqsafe.ScanFile(ctx, p, cols, pqsafe.Options{BatchRows: 256, Prefix: "inspect: "}, func(rec arrow.RecordBatch) error {
			return s.add(w, o, rec, needImages)
		})
		if err != nil {
			return err
		}
	}
	if o.hashes {
		sort.Strings(s.hashes)
		_, err := io.WriteString(w, strings.Join(s.hashes, "\n")+map[bool]string{true: "\n", false: ""}[len(s.hashes) > 0])
		return err
	}
	s.print(w)
	if len(rejects) > 0 {
		if err := printRejects(ctx, w, rejects); err != nil {
			return err
		}
	}
	if o.grid != "" {
		if len(s.thumbs) == 0 {
			return fmt.Errorf("inspect: --grid: no decodable images in %s", o.path)
		}
		if err := writeGrid(o.grid, s.thumbs, o.thumb); err != nil {
			return err
		}
		fmt.Fprintf(w, "contact sheet: %s (%d images)\n", o.grid, len(s.thumbs))
	}
	return nil
}

func printSchema(w io.Writer, parts []string) error {
	var total int64
	fmt.Fprintf(w, "files: %d\n", len(parts))
	for i, p := range parts {
		rdr, err := pqsafe.Open(p, pqsafe.Options{Prefix: "inspect: "})
		if err != nil {
			return err
		}
		md := rdr.Reader.MetaData()
		total += md.NumRows
		if i < 10 {
			fmt.Fprintf(w, "  %s: %d rows, %d row groups\n", p, md.NumRows, md.NumRowGroups())
		}
		if i == 0 {
			defer fmt.Fprintf(w, "schema (%s):\n%s\n", filepath.Base(p), indent(md.Schema.String()))
			if v := md.KeyValueMetadata().FindValue(ingest.HFMetadataKey); v != nil {
				defer fmt.Fprintf(w, "huggingface features: %s\n", *v)
			}
		}
		rdr.Close()
	}
	if len(parts) > 10 {
		fmt.Fprintf(w, "  ... %d more\n", len(parts)-10)
	}
	fmt.Fprintf(w, "rows: %d\n", total)
	return nil
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ")
}

func (s *summary) add(w io.Writer, o *inspectOpts, rec arrow.RecordBatch, needImages bool) error {
	n := int(rec.NumRows())
	if sha, ok := ingest.Column(rec, ingest.ColSHA256).(*array.Binary); ok && o.hashes {
		for i := range n {
			s.hashes = append(s.hashes, hex.EncodeToString(sha.Value(i)))
		}
		return nil
	}
	str := func(name string) *array.String { c, _ := ingest.Column(rec, name).(*array.String); return c }
	i32 := func(name string) *array.Int32 { c, _ := ingest.Column(rec, name).(*array.Int32); return c }
	img, aud := mediaColumn(rec, ingest.ColImage), mediaColumn(rec, ingest.ColAudio)
	wd, ht, sr := i32(ingest.ColImageWidth), i32(ingest.ColImageHeight), i32(ingest.ColAudioSampleRate)
	secs, _ := ingest.Column(rec, ingest.ColAudioSeconds).(*array.Float64)
	text, label, key := str(ingest.ColText), str(ingest.ColLabel), str(ingest.ColKey)
	for i := range n {
		s.rows++
		var ib, ab []byte
		if img != nil {
			ib = ingest.MediaBytes(img, i)
		}
		if aud != nil {
			ab = ingest.MediaBytes(aud, i)
		}
		if ib != nil {
			s.images++
			s.imageBytes += int64(len(ib))
			if wd != nil && ht != nil && wd.IsValid(i) {
				s.widths = append(s.widths, wd.Value(i))
				s.heights = append(s.heights, ht.Value(i))
			}
			if needImages && len(s.thumbs) < o.gridN {
				if wd != nil && ht != nil && int64(wd.Value(i))*int64(ht.Value(i)) > o.maxPixels {
					s.gridErrors++
				} else if t, err := thumbnail(ib, o.thumb); err == nil {
					s.thumbs = append(s.thumbs, t)
				} else {
					s.gridErrors++
				}
			}
		}
		if ab != nil {
			s.audios++
			s.audioBytes += int64(len(ab))
			if sr != nil && sr.IsValid(i) {
				s.rates[sr.Value(i)]++
			}
			if secs != nil && secs.IsValid(i) {
				s.seconds = append(s.seconds, secs.Value(i))
			}
		}
		if text != nil && text.IsValid(i) {
			s.texts++
			s.textChars = append(s.textChars, utf8.RuneCountInString(text.Value(i)))
		}
		if label != nil && label.IsValid(i) {
			s.labels[label.Value(i)]++
		} else {
			s.unlabelled++
		}
		if s.rowsPrinted < int64(o.rows) {
			if s.rowsPrinted == 0 {
				fmt.Fprintln(w, "first rows:")
			}
			s.rowsPrinted++
			line := fmt.Sprintf("  %s", valueOr(key, i))
			if ib != nil {
				line += fmt.Sprintf("  image %sx%s %d B", int32Or(wd, i), int32Or(ht, i), len(ib))
			}
			if ab != nil {
				sec := "?"
				if secs != nil && secs.IsValid(i) {
					sec = fmt.Sprintf("%.2f", secs.Value(i))
				}
				line += fmt.Sprintf("  audio %s Hz %s s %d B", int32Or(sr, i), sec, len(ab))
			}
			if label != nil && label.IsValid(i) {
				line += "  label " + label.Value(i)
			}
			if text != nil && text.IsValid(i) {
				t := []rune(text.Value(i))
				if len(t) > 60 {
					t = append(t[:57], []rune("...")...)
				}
				line += fmt.Sprintf("  text %q", string(t))
			}
			fmt.Fprintln(w, line)
		}
	}
	return nil
}

// mediaColumn returns the named column of rec when it is a struct{bytes: binary, ...} media
// column (what ingest.MediaBytes reads), else nil: a foreign file may hold other types.
func mediaColumn(rec arrow.RecordBatch, name string) arrow.Array {
	c, ok := ingest.Column(rec, name).(*array.Struct)
	if !ok || c.NumField() == 0 {
		return nil
	}
	if _, ok := c.Field(0).(*array.Binary); !ok {
		return nil
	}
	return c
}

// int32Or renders row i of c, or "?" when c is missing or the row is null.
func int32Or(c *array.Int32, i int) string {
	if c == nil || c.IsNull(i) {
		return "?"
	}
	return fmt.Sprint(c.Value(i))
}

func valueOr(c *array.String, i int) string {
	if c == nil || c.IsNull(i) {
		return "(null)"
	}
	return c.Value(i)
}

func (s *summary) print(w io.Writer) {
	fmt.Fprintf(w, "modalities: %d rows, image %d, audio %d, text %d, label %d\n", s.rows, s.images, s.audios, s.texts, s.rows-s.unlabelled)
	if len(s.widths) > 0 {
		fmt.Fprintf(w, "  image: %.1f MiB; width %s; height %s\n", float64(s.imageBytes)/(1<<20), spread32(s.widths), spread32(s.heights))
	}
	if s.audios > 0 {
		var rates []string
		for r, n := range s.rates {
			rates = append(rates, fmt.Sprintf("%d Hz x%d", r, n))
		}
		sort.Strings(rates)
		total := 0.0
		for _, v := range s.seconds {
			total += v
		}
		fmt.Fprintf(w, "  audio: %.1f MiB; %.1f s total; seconds %s; %s\n", float64(s.audioBytes)/(1<<20), total, spreadF(s.seconds), strings.Join(rates, ", "))
	}
	if len(s.textChars) > 0 {
		f := make([]float64, len(s.textChars))
		for i, v := range s.textChars {
			f[i] = float64(v)
		}
		fmt.Fprintf(w, "  text: characters %s\n", spreadF(f))
	}
	if len(s.labels) > 0 {
		type kv struct {
			k string
			v int64
		}
		var ls []kv
		for k, v := range s.labels {
			ls = append(ls, kv{k, v})
		}
		sort.Slice(ls, func(i, j int) bool { return ls[i].v > ls[j].v || (ls[i].v == ls[j].v && ls[i].k < ls[j].k) })
		var top []string
		for i, l := range ls {
			if i == 10 {
				top = append(top, fmt.Sprintf("... %d more", len(ls)-10))
				break
			}
			top = append(top, fmt.Sprintf("%s %d", l.k, l.v))
		}
		fmt.Fprintf(w, "  labels: %d distinct: %s\n", len(ls), strings.Join(top, ", "))
	}
}

func spread32(v []int32) string {
	f := make([]float64, len(v))
	for i, x := range v {
		f[i] = float64(x)
	}
	return spreadF(f)
}

// spreadF formats min/median/max.
func spreadF(v []float64) string {
	if len(v) == 0 {
		return "-"
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return fmt.Sprintf("min %g median %g max %g", round(s[0]), round(s[len(s)/2]), round(s[len(s)-1]))
}

func round(x float64) float64 { return math.Round(x*1000) / 1000 }

func printRejects(ctx context.Context, w io.Writer, files []string) error {
	by := map[string]int64{}
	var total int64
	for _, f := range files {
		err := pqsafe.ScanFile(ctx, f, []string{"reason"}, pqsafe.Options{BatchRows: 4096, Prefix: "inspect: "}, func(rec arrow.RecordBatch) error {
			c, ok := rec.Column(0).(*array.String)
			if !ok {
				return fmt.Errorf("inspect: %s: column \"reason\" is %s, want utf8", f, rec.Column(0).DataType())
			}
			for i := 0; i < c.Len(); i++ {
				by[c.Value(i)]++
				total++
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "rejects: %d%s\n", total, reasons(by))
	return nil
}

// thumbnail decodes an image (gif, jpeg, png, bmp, tiff, webp) and scales it to fit a
// side x side square, centred on grey.
func thumbnail(b []byte, side int) (image.Image, error) {
	src, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	sb := src.Bounds()
	scale := float64(side) / float64(max(sb.Dx(), sb.Dy()))
	tw, th := max(1, int(float64(sb.Dx())*scale)), max(1, int(float64(sb.Dy())*scale))
	dst := image.NewRGBA(image.Rect(0, 0, side, side))
	draw.Draw(dst, dst.Bounds(), image.NewUniform(color.Gray{Y: 128}), image.Point{}, draw.Src)
	r := image.Rect((side-tw)/2, (side-th)/2, (side-tw)/2+tw, (side-th)/2+th)
	xdraw.CatmullRom.Scale(dst, r, src, sb, xdraw.Over, nil)
	return dst, nil
}

// writeGrid lays the thumbnails out in a near-square grid with a 2-pixel gap.
func writeGrid(path string, thumbs []image.Image, side int) error {
	cols := int(math.Ceil(math.Sqrt(float64(len(thumbs)))))
	rows := (len(thumbs) + cols - 1) / cols
	const gap = 2
	sheet := image.NewRGBA(image.Rect(0, 0, cols*(side+gap)+gap, rows*(side+gap)+gap))
	draw.Draw(sheet, sheet.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	for i, t := range thumbs {
		x, y := gap+(i%cols)*(side+gap), gap+(i/cols)*(side+gap)
		draw.Draw(sheet, image.Rect(x, y, x+side, y+side), t, image.Point{}, draw.Src)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, sheet); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}
