package ingest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// PartWriter writes one worker's samples to OUT/parts/part-W-NNNNN.parquet and its rejects
// to OUT/rejects/rejects-W-NNNNN.parquet. Rows go to a temporary file in row groups of about
// RowGroupBytes; at a unit boundary, once the part holds PartBytes or PartRows, the part and
// its rejects are synced and renamed into place and the commit is appended to the worker's
// Progress. Memory is bounded by one row group plus the rejects of one part.
type PartWriter struct {
	out  string
	opt  PartOptions
	prog *Progress
	next int // number of the next commit

	tmp     *os.File
	buf     *bufio.Writer
	fw      *pqarrow.FileWriter
	bld     *array.RecordBuilder // all columns but image and audio
	image   mediaColumn
	audio   mediaColumn
	rgBytes int64 // bytes appended to bld since the last row group
	bytes   int64 // bytes appended to the current part
	rows    int64
	rejects []Reject
	units   []string
	stats   Stats

	onCommit func() // called before the progress file is saved
}

// PartOptions size the parts.
type PartOptions struct {
	Worker        int
	PartBytes     int64 // commit a part once it holds this many bytes of media and text
	PartRows      int64 // or this many rows (0: no row limit)
	RowGroupBytes int64 // write a row group once this many bytes are buffered
	CompressMedia bool  // zstd the image and audio bytes too (default: stored as they are)
}

// DefaultPartOptions are the sizes the ingest command uses.
func DefaultPartOptions() PartOptions {
	return PartOptions{PartBytes: 512 << 20, RowGroupBytes: 16 << 20}
}

// Field indices of the media columns in RawSchema.
var (
	imageCol = RawSchema.FieldIndices(ColImage)[0]
	audioCol = RawSchema.FieldIndices(ColAudio)[0]
)

func newPartWriter(out string, opt PartOptions, prog *Progress) *PartWriter {
	// Commit k writes part and rejects number k, so numbering continues after a resume.
	return &PartWriter{out: out, opt: opt, prog: prog, next: len(prog.Parts)}
}

func (w *PartWriter) partName(kind string) string {
	return fmt.Sprintf("%s-%d-%05d.parquet", kind, w.opt.Worker, w.next)
}

func writerProps(compressMedia bool) *parquet.WriterProperties {
	mediaCodec := compress.Codecs.Uncompressed
	if compressMedia {
		mediaCodec = compress.Codecs.Zstd
	}
	return parquet.NewWriterProperties(
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithCompressionLevel(1),
		// Media bytes are stored as they came: encoded images do not compress, and zstd on
		// WAV saves about 4 % of the output for a quarter of the run's CPU, in the one
		// serial stage (the writer). PartOptions.CompressMedia turns zstd on for them.
		parquet.WithCompressionFor(ColImage+".bytes", mediaCodec),
		parquet.WithCompressionFor(ColAudio+".bytes", mediaCodec),
		parquet.WithDictionaryDefault(false),
		parquet.WithDictionaryFor(ColLabel, true),
		parquet.WithStatsFor(ColImage+".bytes", false),
		parquet.WithStatsFor(ColAudio+".bytes", false),
		parquet.WithStatsFor(ColText, false),
		parquet.WithStatsFor(ColMeta, false),
		parquet.WithStatsFor(ColSHA256, false),
		parquet.WithMaxRowGroupLength(1<<30),
		parquet.WithCreatedBy("immkit ingest"),
	)
}

func (w *PartWriter) open() error {
	dir := filepath.Join(w.out, partsDir)
	f, err := os.CreateTemp(dir, ".tmp-"+w.partName("part")+"-*")
	if err != nil {
		return fmt.Errorf("ingest: create part: %w", err)
	}
	if err := f.Chmod(0o644); err != nil {
		return errorsJoin(fmt.Errorf("ingest: create part: %w", err), f.Close())
	}
	w.tmp = f
	// Small buffer: pages larger than it go to the file without a copy.
	w.buf = bufio.NewWriterSize(f, 64<<10)
	fw, err := pqarrow.NewFileWriter(RawSchema, writerOnly{w.buf}, writerProps(w.opt.CompressMedia), pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return fmt.Errorf("ingest: start part %s: %w", f.Name(), err)
	}
	w.fw = fw
	w.bld = array.NewRecordBuilder(memory.DefaultAllocator, RawSchema)
	return nil
}

// mediaColumn accumulates one struct{bytes, path} column of a row group in buffers that
// are reused for the next row group, so the media bytes are copied once and the large
// buffers are not reallocated (and zeroed) per row group. Row i's bytes are
// data[offsets[i]:offsets[i+1]]; bit i%8 of valid[i/8] is set when row i holds media.
type mediaColumn struct {
	offsets []int32
	data    []byte
	valid   []byte
	paths   *array.StringBuilder
	n       int
	nulls   int
}

func (m *mediaColumn) append(b []byte, path string) {
	if m.paths == nil {
		m.paths = array.NewStringBuilder(memory.DefaultAllocator)
	}
	if len(m.offsets) == 0 {
		m.offsets = append(m.offsets, 0)
	}
	if m.n/8 >= len(m.valid) {
		m.valid = append(m.valid, 0)
	}
	if b == nil {
		m.nulls++
		m.paths.AppendNull()
	} else {
		m.valid[m.n/8] |= 1 << (m.n % 8)
		m.data = append(m.data, b...)
		m.paths.Append(path)
	}
	m.offsets = append(m.offsets, int32(len(m.data)))
	m.n++
}

// array wraps the buffers (without copying) as a struct array valid until reset.
func (m *mediaColumn) array() arrow.Array {
	validity := memory.NewBufferBytes(m.valid[:(m.n+7)/8])
	offsets := memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(m.offsets[:m.n+1]))
	data := memory.NewBufferBytes(m.data)
	bytesData := array.NewData(arrow.BinaryTypes.Binary, m.n, []*memory.Buffer{validity, offsets, data}, nil, m.nulls, 0)
	defer bytesData.Release()
	paths := m.paths.NewArray()
	defer paths.Release()
	st := array.NewData(MediaType, m.n, []*memory.Buffer{validity}, []arrow.ArrayData{bytesData, paths.Data()}, m.nulls, 0)
	defer st.Release()
	return array.MakeFromData(st)
}

func (m *mediaColumn) reset() {
	m.offsets = m.offsets[:0]
	m.data = m.data[:0]
	clear(m.valid)
	m.valid = m.valid[:0]
	m.n, m.nulls = 0, 0
}

// writerOnly hides Close from the Parquet writer so that the part file is synced and closed
// here, after the footer is written.
type writerOnly struct{ w *bufio.Writer }

func (o writerOnly) Write(p []byte) (int, error) { return o.w.Write(p) }

// AddSample appends an accepted sample.
func (w *PartWriter) AddSample(s *Sample) error {
	if w.fw == nil {
		if err := w.open(); err != nil {
			return err
		}
	}
	b := w.bld
	b.Field(0).(*array.StringBuilder).Append(s.Key)
	b.Field(1).(*array.StringBuilder).Append(s.Source)
	i32 := func(i int, v int, ok bool) {
		if ok {
			b.Field(i).(*array.Int32Builder).Append(int32(v))
		} else {
			b.Field(i).(*array.Int32Builder).AppendNull()
		}
	}
	str := func(i int, v *string) {
		if v != nil {
			b.Field(i).(*array.StringBuilder).Append(*v)
		} else {
			b.Field(i).(*array.StringBuilder).AppendNull()
		}
	}
	hasImg, hasAud := s.Image != nil, s.Audio != nil
	w.image.append(s.Image, s.ImagePath)
	i32(3, s.Img.Width, hasImg)
	i32(4, s.Img.Height, hasImg)
	w.audio.append(s.Audio, s.AudioPath)
	i32(6, s.Aud.SampleRate, hasAud)
	i32(7, s.Aud.Channels, hasAud)
	if sec, ok := nullableSeconds(s.Aud.Seconds); hasAud && ok {
		b.Field(8).(*array.Float64Builder).Append(sec)
	} else {
		b.Field(8).(*array.Float64Builder).AppendNull()
	}
	str(9, s.Text)
	str(10, s.Label)
	if s.Meta != "" {
		str(11, &s.Meta)
	} else {
		str(11, nil)
	}
	b.Field(12).(*array.BinaryBuilder).Append(s.SHA256[:])

	n := int64(len(s.Image) + len(s.Audio) + len(s.Key) + len(s.Source) + len(s.Meta) + 64)
	if s.Text != nil {
		n += int64(len(*s.Text))
	}
	w.rgBytes += n
	w.bytes += n
	w.rows++
	w.stats.Inputs++
	w.stats.Samples++
	w.stats.BytesIn += s.BytesIn
	if hasImg {
		w.stats.Modalities.Image++
	}
	if hasAud {
		w.stats.Modalities.Audio++
	}
	if s.Text != nil {
		w.stats.Modalities.Text++
	}
	if s.Label != nil {
		w.stats.Modalities.Label++
	}
	if w.rgBytes >= w.opt.RowGroupBytes {
		return w.flushRowGroup()
	}
	return nil
}

// AddDuplicate counts an input whose content hash was already seen.
func (w *PartWriter) AddDuplicate(bytesIn int64) {
	w.stats.Inputs++
	w.stats.Duplicates++
	w.stats.BytesIn += bytesIn
}

// AddReject records a rejected input.
func (w *PartWriter) AddReject(r *Reject, bytesIn int64) {
	w.stats.Inputs++
	w.stats.Rejected++
	w.stats.BytesIn += bytesIn
	if w.stats.RejectedByReason == nil {
		w.stats.RejectedByReason = map[string]int64{}
	}
	w.stats.RejectedByReason[r.Reason]++
	w.rejects = append(w.rejects, *r)
}

func (w *PartWriter) flushRowGroup() error {
	if w.bld == nil || w.rgBytes == 0 {
		return nil
	}
	cols := make([]arrow.Array, len(RawSchema.Fields()))
	for i := range cols {
		switch i {
		case imageCol:
			cols[i] = w.image.array()
		case audioCol:
			cols[i] = w.audio.array()
		default:
			cols[i] = w.bld.Field(i).NewArray()
		}
	}
	rec := array.NewRecordBatch(RawSchema, cols, int64(w.image.n))
	for _, c := range cols {
		c.Release()
	}
	defer func() {
		rec.Release()
		w.image.reset()
		w.audio.reset()
	}()
	w.rgBytes = 0
	if err := w.fw.Write(rec); err != nil {
		return fmt.Errorf("ingest: write row group to %s: %w", w.tmp.Name(), err)
	}
	return nil
}

// EndUnit marks every candidate of unit id as handed to the writer, and commits the part
// when it is full.
func (w *PartWriter) EndUnit(id string) error {
	w.units = append(w.units, id)
	full := w.bytes >= w.opt.PartBytes || (w.opt.PartRows > 0 && w.rows >= w.opt.PartRows) || len(w.rejects) >= 100000
	if full {
		return w.Commit()
	}
	return nil
}

// Commit makes the current part and rejects durable and visible, then records them in the
// progress file. Nothing is visible under its final name before it is complete.
func (w *PartWriter) Commit() error {
	if len(w.units) == 0 && w.rows == 0 && len(w.rejects) == 0 {
		return nil
	}
	rec := PartRecord{Rows: w.rows, NumUnits: len(w.units), UnitsFile: fmt.Sprintf("units-%d-%05d.json", w.opt.Worker, w.next)}
	if w.fw != nil {
		if err := w.flushRowGroup(); err != nil {
			return err
		}
		w.bld.Release()
		w.bld = nil
		err := w.fw.Close()
		w.fw = nil
		if err == nil {
			err = w.buf.Flush()
		}
		if err == nil {
			err = w.tmp.Sync()
		}
		if cerr := w.tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(w.tmp.Name())
			return fmt.Errorf("ingest: finish part %s: %w", w.tmp.Name(), err)
		}
		fi, err := os.Stat(w.tmp.Name())
		if err != nil {
			return fmt.Errorf("ingest: finish part: %w", err)
		}
		w.stats.BytesOut += fi.Size()
		rec.Part = w.partName("part")
		if err := os.Rename(w.tmp.Name(), filepath.Join(w.out, partsDir, rec.Part)); err != nil {
			return fmt.Errorf("ingest: commit part: %w", err)
		}
		w.tmp = nil
	}
	if len(w.rejects) > 0 {
		rec.Rejects = w.partName("rejects")
		if err := writeRejects(filepath.Join(w.out, rejectsDir, rec.Rejects), w.rejects); err != nil {
			return err
		}
	}
	if err := syncDir(filepath.Join(w.out, partsDir)); err != nil {
		return err
	}
	if err := syncDir(filepath.Join(w.out, rejectsDir)); err != nil {
		return err
	}
	units, err := json.Marshal(w.units)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(w.out, progressDir, rec.UnitsFile), units); err != nil {
		return err
	}
	rec.Stats = w.stats
	if w.onCommit != nil {
		w.onCommit()
	}
	w.prog.Parts = append(w.prog.Parts, rec)
	if err := w.prog.save(w.out); err != nil {
		return err
	}
	w.next++
	w.rows, w.bytes, w.rgBytes = 0, 0, 0
	w.rejects, w.units, w.stats = nil, nil, Stats{}
	return nil
}

// Abort drops the uncommitted part.
func (w *PartWriter) Abort() {
	w.image.reset()
	w.audio.reset()
	if w.bld != nil {
		w.bld.Release()
		w.bld = nil
	}
	if w.tmp != nil {
		w.tmp.Close()
		os.Remove(w.tmp.Name())
		w.tmp = nil
	}
	w.fw = nil
}

// writeRejects writes the rejects table to path atomically.
func writeRejects(path string, rejects []Reject) (err error) {
	bld := array.NewRecordBuilder(memory.DefaultAllocator, RejectSchema)
	defer bld.Release()
	for _, r := range rejects {
		bld.Field(0).(*array.StringBuilder).Append(r.Source)
		bld.Field(1).(*array.StringBuilder).Append(r.Stage)
		bld.Field(2).(*array.StringBuilder).Append(r.Reason)
		bld.Field(3).(*array.StringBuilder).Append(r.Detail)
	}
	rec := bld.NewRecordBatch()
	defer rec.Release()
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("ingest: create rejects: %w", err)
	}
	if err := f.Chmod(0o644); err != nil {
		return errorsJoin(fmt.Errorf("ingest: create rejects: %w", err), f.Close())
	}
	defer func() {
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	buf := bufio.NewWriter(f)
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd))
	fw, err := pqarrow.NewFileWriter(RejectSchema, writerOnly{buf}, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return errorsJoin(fmt.Errorf("ingest: write %s: %w", path, err), f.Close())
	}
	err = fw.Write(rec)
	err = errorsJoin(err, fw.Close())
	if err == nil {
		err = buf.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	err = errorsJoin(err, f.Close())
	if err != nil {
		return fmt.Errorf("ingest: write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("ingest: commit %s: %w", path, err)
	}
	return nil
}
