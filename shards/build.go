package shards

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"golang.org/x/sync/errgroup"

	"github.com/immkit/immkit/internal/pqsafe"
)

// DefaultShardSize is the target size of one shard file.
const DefaultShardSize = 128 << 20

// ErrExists is returned by Build when the output already holds a finished dataset and
// Overwrite is not set, or an unfinished one and neither Resume nor Overwrite is set.
var ErrExists = errors.New("shards: output directory is not empty")

// BuildOptions configures Build. The zero value of every field but Inputs and Out works.
type BuildOptions struct {
	Inputs      []string // part files, or directories holding parts/*.parquet or *.parquet
	Out         string   // dataset directory
	Seed        uint64   // shuffle seed
	ValFraction float64  // fraction of keys assigned to the val split, in [0, 1]
	ShardSize   int64    // target shard file size in bytes; 0 means DefaultShardSize
	// RowGroupBytes is the target uncompressed size of a Parquet row group; 0 means
	// min(ShardSize/4, 32 MiB). Shards are cut at row-group boundaries.
	RowGroupBytes int64
	// BucketBytes bounds the memory used to reorder rows: rows are scattered into spill
	// buckets of about this uncompressed size, each sorted in memory. 0 means 256 MiB.
	BucketBytes int64
	Workers     int // parallel part readers; 0 means GOMAXPROCS
	// Resume lets Out hold an interrupted (or finished) run, which is redone: Build is
	// deterministic, so the result equals an uninterrupted run.
	Resume    bool
	Overwrite bool         // Out may hold a finished dataset, which is replaced
	Log       *slog.Logger // progress lines; nil means none
}

// entry is one input row seen by the first pass.
type entry struct {
	sha   [32]byte
	key   string
	part  int32
	row   int64
	order uint64 // seeded shuffle key
}

// Result is what Build wrote and read.
type Result struct {
	Manifest *Manifest
	Inputs   Inputs
}

// Build merges the part files of opts.Inputs into a shard dataset in opts.Out and returns
// its manifest and input counts. The output depends only on the set of input rows and the options: the
// number, names and order of part files do not matter. Files appear under their final
// names only when complete; index.json is written last.
func Build(ctx context.Context, opts BuildOptions) (*Result, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	paths, err := findParts(opts.Inputs)
	if err != nil {
		return nil, err
	}
	parts, outSchema, artefacts, err := inspectParts(paths)
	if err != nil {
		return nil, err
	}
	if err := prepareOut(opts); err != nil {
		return nil, err
	}
	tmp := filepath.Join(opts.Out, ".build-tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return nil, fmt.Errorf("shards: clear %s: %w", tmp, err)
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("shards: %w", err)
	}
	defer os.RemoveAll(tmp)

	var totalRows, totalRaw int64
	for _, p := range parts {
		totalRows += p.rows
		totalRaw += p.rawBytes
	}
	log.Info("shard: reading keys", "parts", len(parts), "rows", totalRows)
	entries, err := readEntries(ctx, parts, opts.Workers)
	if err != nil {
		return nil, err
	}
	kept, err := dedup(ctx, parts, entries, opts.Workers)
	if err != nil {
		return nil, err
	}
	dups := int64(len(entries) - len(kept))
	entries = nil

	// Split by key, then order each split by a seeded hash of the content.
	var splits [2][]entry
	for _, e := range kept {
		e.order = orderKey(opts.Seed, e.sha)
		s := 0
		if IsVal(e.key, opts.ValFraction) {
			s = 1
		}
		splits[s] = append(splits[s], e)
	}
	kept = nil
	for _, s := range splits {
		sort.Slice(s, func(i, j int) bool {
			if s[i].order != s[j].order {
				return s[i].order < s[j].order
			}
			return bytes.Compare(s[i].sha[:], s[j].sha[:]) < 0
		})
	}
	log.Info("shard: planned", "train", len(splits[0]), "val", len(splits[1]), "duplicates", dups)

	// Scatter the rows into spill buckets of consecutive output positions.
	rowsPerBucket := int64(math.MaxInt64)
	if totalRaw > 0 && totalRows > 0 {
		rowsPerBucket = max(1, opts.BucketBytes/max(1, totalRaw/totalRows))
	}
	plan := newScatterPlan(parts, splits, rowsPerBucket)
	if err := scatter(ctx, parts, plan, outSchema, tmp, opts.Workers); err != nil {
		return nil, err
	}

	m := &Manifest{
		Version:     FormatVersion,
		Schema:      Schema{Fields: schemaFields(outSchema), Metadata: metadataMap(outSchema.Metadata())},
		Artefacts:   artefacts,
		Seed:        opts.Seed,
		ValFraction: opts.ValFraction,
		ShardSize:   opts.ShardSize,
		Totals:      map[string]SplitTotals{},
	}
	if m.Artefacts == nil {
		m.Artefacts = []Artefact{}
	}
	for si, split := range []string{SplitTrain, SplitVal} {
		if len(splits[si]) == 0 {
			continue
		}
		sw := &shardWriter{
			dir: opts.Out, split: split, schema: outSchema,
			target: opts.ShardSize, rgBytes: opts.RowGroupBytes, nonNull: map[string]int64{},
		}
		for b := 0; b < plan.buckets[si]; b++ {
			rec, err := readBucket(plan.bucketPath(tmp, si, b), outSchema, plan.bucketRange(si, b))
			if err != nil {
				return nil, errors.Join(err, sw.abort())
			}
			err = sw.add(rec)
			rec.Release()
			if err != nil {
				return nil, errors.Join(err, sw.abort())
			}
			if err := ctx.Err(); err != nil {
				return nil, errors.Join(err, sw.abort())
			}
		}
		if err := sw.finish(); err != nil {
			return nil, err
		}
		t := SplitTotals{NonNull: sw.nonNull}
		for _, s := range sw.shards {
			t.Shards++
			t.Rows += s.Rows
			t.Bytes += s.Bytes
		}
		m.Totals[split] = t
		m.Shards = append(m.Shards, sw.shards...)
		log.Info("shard: wrote split", "split", split, "shards", t.Shards, "rows", t.Rows, "bytes", t.Bytes)
	}
	if m.Shards == nil {
		m.Shards = []Shard{}
	}
	if _, err := copyArtefacts(paths, m.Artefacts, opts.Out, log); err != nil {
		return nil, err
	}
	data, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(opts.Out, ManifestName), data); err != nil {
		return nil, err
	}
	return &Result{Manifest: m, Inputs: Inputs{Parts: len(parts), Rows: totalRows, Duplicates: dups}}, nil
}

func (o *BuildOptions) defaults() error {
	if len(o.Inputs) == 0 {
		return errors.New("shards: no inputs")
	}
	if o.Out == "" {
		return errors.New("shards: no output directory")
	}
	if math.IsNaN(o.ValFraction) || o.ValFraction < 0 || o.ValFraction > 1 {
		return fmt.Errorf("shards: val fraction %v outside [0, 1]", o.ValFraction)
	}
	if o.ShardSize < 0 || o.RowGroupBytes < 0 || o.BucketBytes < 0 || o.Workers < 0 {
		return errors.New("shards: negative size or worker count")
	}
	if o.ShardSize == 0 {
		o.ShardSize = DefaultShardSize
	}
	if o.RowGroupBytes == 0 {
		o.RowGroupBytes = max(1, min(o.ShardSize/4, 32<<20))
	}
	if o.BucketBytes == 0 {
		o.BucketBytes = 256 << 20
	}
	if o.Workers == 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	return nil
}

// inspectParts reads every part's footer, checks that all share one schema and returns the
// output schema (the parts' fields and metadata, with the union of their artefacts).
func inspectParts(paths []string) (_ []part, _ *arrow.Schema, _ []Artefact, err error) {
	defer pqsafe.Recover(&err, "the input parts")
	parts := make([]part, len(paths))
	var first []Field
	var firstMeta arrow.Metadata
	arte := map[string]Artefact{}
	for i, p := range paths {
		pf, err := openParquet(p, 0)
		if err != nil {
			return nil, nil, nil, err
		}
		s, err := pf.Arrow.Schema()
		rows, raw := pf.Reader.NumRows(), pf.rawBytes()
		err = errors.Join(err, pf.Close())
		if err != nil {
			return nil, nil, nil, fmt.Errorf("shards: schema of %s: %w", p, err)
		}
		if err := checkKeyColumns(p, s); err != nil {
			return nil, nil, nil, err
		}
		a, err := artefactsOf(p, s.Metadata())
		if err != nil {
			return nil, nil, nil, err
		}
		for _, x := range a {
			if old, ok := arte[x.Name+"\x00"+x.Path]; ok && old.SHA256 != x.SHA256 {
				return nil, nil, nil, fmt.Errorf("shards: artefact %s (%s) has sha256 %s in one part and %s in %s", x.Name, x.Path, old.SHA256, x.SHA256, p)
			}
			arte[x.Name+"\x00"+x.Path] = x
		}
		fields := schemaFields(s)
		meta := withoutKey(s.Metadata(), ArtefactsMetadataKey)
		if i == 0 {
			first, firstMeta = fields, meta
		} else {
			a, _ := json.Marshal(first)
			b, _ := json.Marshal(fields)
			if !bytes.Equal(a, b) {
				return nil, nil, nil, fmt.Errorf("shards: %s has schema %s, but %s has %s", p, b, paths[0], a)
			}
			if !meta.Equal(firstMeta) {
				return nil, nil, nil, fmt.Errorf("shards: %s and %s differ in schema metadata", p, paths[0])
			}
		}
		parts[i] = part{path: p, rows: rows, rawBytes: raw, schema: s}
	}
	artefacts := make([]Artefact, 0, len(arte))
	for _, a := range arte {
		artefacts = append(artefacts, a)
	}
	sortArtefacts(artefacts)
	meta := firstMeta
	if len(artefacts) > 0 {
		js, err := json.Marshal(artefacts)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("shards: encode artefacts: %w", err)
		}
		meta = arrow.NewMetadata(append(meta.Keys(), ArtefactsMetadataKey), append(meta.Values(), string(js)))
	}
	out := arrow.NewSchema(parts[0].schema.Fields(), &meta)
	return parts, out, artefacts, nil
}

// prepareOut checks what Out holds and clears what this run replaces.
func prepareOut(opts BuildOptions) error {
	ents, err := os.ReadDir(opts.Out)
	if errors.Is(err, os.ErrNotExist) {
		return os.MkdirAll(opts.Out, 0o755)
	}
	if err != nil {
		return fmt.Errorf("shards: %w", err)
	}
	finished := false
	for _, e := range ents {
		if e.Name() == ManifestName {
			finished = true
		}
	}
	switch {
	case finished && !opts.Overwrite && !opts.Resume:
		return fmt.Errorf("%w: %s holds a finished dataset (pass --overwrite to replace it)", ErrExists, opts.Out)
	case !finished && len(ents) > 0 && !opts.Resume && !opts.Overwrite:
		return fmt.Errorf("%w: %s holds an unfinished run (pass --resume to redo it)", ErrExists, opts.Out)
	}
	// The manifest goes first, so no reader takes the shards being replaced for complete.
	if err := os.Remove(filepath.Join(opts.Out, ManifestName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("shards: %w", err)
	}
	for _, split := range []string{SplitTrain, SplitVal} {
		old, err := filepath.Glob(filepath.Join(opts.Out, split, "shard-*.parquet*"))
		if err != nil {
			return fmt.Errorf("shards: %w", err)
		}
		for _, f := range old {
			if err := os.Remove(f); err != nil {
				return fmt.Errorf("shards: %w", err)
			}
		}
	}
	return nil
}

// readEntries reads key and sha256 of every row of every part.
func readEntries(ctx context.Context, parts []part, workers int) ([]entry, error) {
	per := make([][]entry, len(parts))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for pi := range parts {
		g.Go(func() (err error) {
			defer pqsafe.Recover(&err, parts[pi].path)
			pf, err := openParquet(parts[pi].path, 64<<10)
			if err != nil {
				return err
			}
			defer pf.Close()
			cols, err := pf.Leaves(ColKey, ColSHA256)
			if err != nil {
				return err
			}
			out := make([]entry, 0, parts[pi].rows)
			err = pf.Scan(gctx, cols, func(rec arrow.RecordBatch) error {
				keys, shas, err := keyColumns(parts[pi].path, rec)
				if err != nil {
					return err
				}
				for i := 0; i < int(rec.NumRows()); i++ {
					if keys.IsNull(i) || shas.IsNull(i) {
						return fmt.Errorf("shards: %s row %d: null key or sha256", parts[pi].path, len(out))
					}
					e := entry{key: strings.Clone(keys.Value(i)), part: int32(pi), row: int64(len(out))}
					copy(e.sha[:], shas.Value(i))
					out = append(out, e)
				}
				return nil
			})
			if err == nil && int64(len(out)) != parts[pi].rows {
				err = fmt.Errorf("shards: %s yields %d rows, its footer declares %d (a damaged file?)", parts[pi].path, len(out), parts[pi].rows)
			}
			per[pi] = out
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var n int
	for _, p := range per {
		n += len(p)
	}
	all := make([]entry, 0, n)
	for _, p := range per {
		all = append(all, p...)
	}
	return all, nil
}

type stringArray interface {
	arrow.Array
	Value(int) string
}

func keyColumns(path string, rec arrow.RecordBatch) (stringArray, *array.Binary, error) {
	var keys stringArray
	var shas *array.Binary
	for i, f := range rec.Schema().Fields() {
		switch f.Name {
		case ColKey:
			keys, _ = rec.Column(i).(stringArray)
		case ColSHA256:
			shas, _ = rec.Column(i).(*array.Binary)
		}
	}
	if keys == nil || shas == nil {
		return nil, nil, fmt.Errorf("shards: %s: key or sha256 column has an unexpected type", path)
	}
	for i := 0; i < shas.Len(); i++ {
		if n := len(shas.Value(i)); n != 32 {
			return nil, nil, fmt.Errorf("shards: %s: sha256 of row %d (key %q) has %d bytes, want 32", path, i, keys.Value(i), n)
		}
	}
	return keys, shas, nil
}

// dedup keeps one row per sha256: the one with the smallest key and, among rows with the
// same sha256 and key, the one whose full content hashes lowest. The choice depends only on
// row contents, never on which part a row came from.
func dedup(ctx context.Context, parts []part, entries []entry, workers int) ([]entry, error) {
	sort.Slice(entries, func(i, j int) bool {
		if c := bytes.Compare(entries[i].sha[:], entries[j].sha[:]); c != 0 {
			return c < 0
		}
		return entries[i].key < entries[j].key
	})
	kept := make([]entry, 0, len(entries))
	type tie struct{ lo, hi int } // entries[lo:hi] share sha and key
	var ties []tie
	for i := 0; i < len(entries); {
		j := i + 1
		for j < len(entries) && entries[j].sha == entries[i].sha {
			j++
		}
		k := i + 1
		for k < j && entries[k].key == entries[i].key {
			k++
		}
		if k-i > 1 {
			ties = append(ties, tie{i, k})
		}
		kept = append(kept, entries[i])
		i = j
	}
	if len(ties) == 0 {
		return kept, nil
	}
	// Rare: the same content under the same key in several rows. Fingerprint those rows.
	want := map[[2]int64]*[32]byte{}
	for _, t := range ties {
		for _, e := range entries[t.lo:t.hi] {
			want[[2]int64{int64(e.part), e.row}] = new([32]byte)
		}
	}
	needParts := map[int]bool{}
	for k := range want {
		needParts[int(k[0])] = true
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for pi := range needParts {
		g.Go(func() (err error) {
			defer pqsafe.Recover(&err, parts[pi].path)
			return fingerprintRows(gctx, parts[pi].path, pi, want)
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	ki := 0
	for _, t := range ties {
		for kept[ki].sha != entries[t.lo].sha {
			ki++
		}
		best := entries[t.lo]
		bestFP := want[[2]int64{int64(best.part), best.row}]
		for _, e := range entries[t.lo+1 : t.hi] {
			fp := want[[2]int64{int64(e.part), e.row}]
			if bytes.Compare(fp[:], bestFP[:]) < 0 {
				best, bestFP = e, fp
			}
		}
		kept[ki] = best
	}
	return kept, nil
}

// fingerprintRows fills want[{pi,row}] with a hash of the row's values (as Arrow prints them)
// for the rows of part pi that are in want. Each goroutine writes distinct map values only.
func fingerprintRows(ctx context.Context, path string, pi int, want map[[2]int64]*[32]byte) error {
	pf, err := openParquet(path, 1024)
	if err != nil {
		return err
	}
	defer pf.Close()
	var row int64
	return pf.Scan(ctx, nil, func(rec arrow.RecordBatch) error {
		for i := 0; i < int(rec.NumRows()); i++ {
			if dst := want[[2]int64{int64(pi), row + int64(i)}]; dst != nil {
				h := sha256.New()
				for _, col := range rec.Columns() {
					v := col.ValueStr(i)
					if col.IsNull(i) {
						v = "\x00null"
					}
					var n [8]byte
					binary.LittleEndian.PutUint64(n[:], uint64(len(v)))
					h.Write(n[:])
					h.Write([]byte(v))
				}
				h.Sum(dst[:0])
			}
		}
		row += rec.NumRows()
		return nil
	})
}

// IsVal reports whether key belongs to the val split for the given fraction. It hashes the
// key alone, so a key's split never changes when other data is added.
func IsVal(key string, fraction float64) bool {
	h := sha256.Sum256([]byte("immkit.split\x00" + key))
	u := float64(binary.BigEndian.Uint64(h[:8])>>11) / (1 << 53)
	return u < fraction
}

// orderKey is the shuffle key of a sample: a seeded hash of its content hash.
func orderKey(seed uint64, sha [32]byte) uint64 {
	var buf [40]byte
	binary.LittleEndian.PutUint64(buf[:8], seed)
	copy(buf[8:], sha[:])
	h := sha256.Sum256(buf[:])
	return binary.BigEndian.Uint64(h[:8])
}

// scatterPlan says where every input row goes: split, bucket and position in the split.
type scatterPlan struct {
	rowsPerBucket int64
	splitRows     [2]int64
	buckets       [2]int
	dest          [][]int32 // [part][row] -> bucket id (split*maxBuckets+b), -1 = dropped
	pos           [][]int64 // [part][row] -> position in the split
	maxBuckets    int
}

func newScatterPlan(parts []part, splits [2][]entry, rowsPerBucket int64) *scatterPlan {
	p := &scatterPlan{rowsPerBucket: rowsPerBucket, dest: make([][]int32, len(parts)), pos: make([][]int64, len(parts))}
	for i, pt := range parts {
		p.dest[i] = make([]int32, pt.rows)
		for j := range p.dest[i] {
			p.dest[i][j] = -1
		}
		p.pos[i] = make([]int64, pt.rows)
	}
	for s := range splits {
		n := int64(len(splits[s]))
		p.splitRows[s] = n
		p.buckets[s] = int((n + rowsPerBucket - 1) / rowsPerBucket)
		p.maxBuckets = max(p.maxBuckets, p.buckets[s])
	}
	for s := range splits {
		for i, e := range splits[s] {
			b := int64(i) / rowsPerBucket
			p.dest[e.part][e.row] = int32(s*p.maxBuckets) + int32(b)
			p.pos[e.part][e.row] = int64(i)
		}
	}
	return p
}

func (p *scatterPlan) bucketPath(tmp string, split, b int) string {
	return filepath.Join(tmp, fmt.Sprintf("bucket-%d-%06d.arrows", split, b))
}

func (p *scatterPlan) bucketRange(split, b int) [2]int64 {
	lo := int64(b) * p.rowsPerBucket
	return [2]int64{lo, min(lo+p.rowsPerBucket, p.splitRows[split])}
}

// posField is the extra column that carries a row's output position through the buckets.
const posField = "__immkit_shard_position"

type bucketWriter struct {
	mu sync.Mutex
	f  *os.File
	bw *bufio.Writer
	w  *ipc.Writer
}

// scatter reads every part once and appends each kept row, with its position, to the
// Arrow IPC stream of its bucket.
func scatter(ctx context.Context, parts []part, plan *scatterPlan, schema *arrow.Schema, tmp string, workers int) error {
	fields := append(append([]arrow.Field{}, schema.Fields()...), arrow.Field{Name: posField, Type: arrow.PrimitiveTypes.Int64})
	md := schema.Metadata()
	bschema := arrow.NewSchema(fields, &md)
	var mu sync.Mutex
	writers := map[int32]*bucketWriter{}
	get := func(id int32) (*bucketWriter, error) {
		mu.Lock()
		defer mu.Unlock()
		if w := writers[id]; w != nil {
			return w, nil
		}
		split, b := int(id)/plan.maxBuckets, int(id)%plan.maxBuckets
		f, err := os.Create(plan.bucketPath(tmp, split, b))
		if err != nil {
			return nil, fmt.Errorf("shards: %w", err)
		}
		bw := bufio.NewWriterSize(f, 1<<20)
		w := &bucketWriter{f: f, bw: bw, w: ipc.NewWriter(bw, ipc.WithSchema(bschema))}
		writers[id] = w
		return w, nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for pi := range parts {
		g.Go(func() (err error) {
			defer pqsafe.Recover(&err, parts[pi].path)
			avg := max(1, parts[pi].rawBytes/max(1, parts[pi].rows))
			pf, err := openParquet(parts[pi].path, max(1, min(8192, (32<<20)/avg)))
			if err != nil {
				return err
			}
			defer pf.Close()
			var row int64
			return pf.Scan(gctx, nil, func(rec arrow.RecordBatch) error {
				n := int(rec.NumRows())
				// A damaged part can decode to more rows than its footer declared, or to
				// columns shorter than the batch; arrow's Take would then index out of
				// range in a goroutine of its own, where no recover reaches.
				if row+int64(n) > int64(len(plan.dest[pi])) {
					return fmt.Errorf("shards: %s yields more rows than the %d its footer declares (a damaged file?)", parts[pi].path, len(plan.dest[pi]))
				}
				for ci, c := range rec.Columns() {
					if c.Len() != n {
						return fmt.Errorf("shards: %s: column %s has %d values in a batch of %d rows (a damaged file?)", parts[pi].path, rec.ColumnName(ci), c.Len(), n)
					}
					if err := pqsafe.ValidateArray(c); err != nil {
						return fmt.Errorf("shards: %s: column %s: %w (a damaged file?)", parts[pi].path, rec.ColumnName(ci), err)
					}
				}
				groups := map[int32][]int64{}
				var order []int32
				for i := 0; i < n; i++ {
					id := plan.dest[pi][row+int64(i)]
					if id < 0 {
						continue
					}
					if _, ok := groups[id]; !ok {
						order = append(order, id)
					}
					groups[id] = append(groups[id], int64(i))
				}
				for _, id := range order {
					idx := groups[id]
					cols := make([]arrow.Array, 0, len(fields))
					release := func() {
						for _, c := range cols {
							c.Release()
						}
					}
					ib := array.NewInt64Builder(memory.DefaultAllocator)
					ib.AppendValues(idx, nil)
					indices := ib.NewArray()
					ib.Release()
					for _, c := range rec.Columns() {
						t, err := compute.TakeArray(gctx, c, indices)
						if err != nil {
							indices.Release()
							release()
							return fmt.Errorf("shards: gather rows of %s: %w", parts[pi].path, err)
						}
						cols = append(cols, t)
					}
					indices.Release()
					pb := array.NewInt64Builder(memory.DefaultAllocator)
					for _, i := range idx {
						pb.Append(plan.pos[pi][row+i])
					}
					cols = append(cols, pb.NewArray())
					pb.Release()
					out := array.NewRecordBatch(bschema, cols, int64(len(idx)))
					release()
					w, err := get(id)
					if err != nil {
						out.Release()
						return err
					}
					w.mu.Lock()
					err = w.w.Write(out)
					w.mu.Unlock()
					out.Release()
					if err != nil {
						return fmt.Errorf("shards: write spill bucket: %w", err)
					}
				}
				row += int64(n)
				return nil
			})
		})
	}
	err := g.Wait()
	for _, w := range writers {
		err = errors.Join(err, w.w.Close(), w.bw.Flush(), w.f.Close())
	}
	return err
}

// readBucket reads one spill bucket and returns its rows ordered by position, which must
// be exactly the positions in rng.
func readBucket(path string, schema *arrow.Schema, rng [2]int64) (arrow.RecordBatch, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("shards: spill bucket: %w", err)
	}
	defer f.Close()
	r, err := ipc.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("shards: read spill bucket %s: %w", path, err)
	}
	defer r.Release()
	var recs []arrow.RecordBatch
	defer func() {
		for _, rec := range recs {
			rec.Release()
		}
	}()
	for r.Next() {
		rec := r.RecordBatch()
		rec.Retain()
		recs = append(recs, rec)
	}
	if err := r.Err(); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("shards: read spill bucket %s: %w", path, err)
	}
	ncol := schema.NumFields()
	cols := make([]arrow.Array, ncol+1)
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for c := 0; c <= ncol; c++ {
		parts := make([]arrow.Array, len(recs))
		for i, rec := range recs {
			parts[i] = rec.Column(c)
		}
		cols[c], err = array.Concatenate(parts, memory.DefaultAllocator)
		if err != nil {
			return nil, fmt.Errorf("shards: merge spill bucket %s: %w", path, err)
		}
	}
	pos := cols[ncol].(*array.Int64).Int64Values()
	want := rng[1] - rng[0]
	if int64(len(pos)) != want {
		return nil, fmt.Errorf("shards: spill bucket %s holds %d rows, want %d", path, len(pos), want)
	}
	perm := make([]int64, want)
	seen := make([]bool, want)
	for i, p := range pos {
		k := p - rng[0]
		if k < 0 || k >= want || seen[k] {
			return nil, fmt.Errorf("shards: spill bucket %s: position %d out of place", path, p)
		}
		seen[k] = true
		perm[k] = int64(i)
	}
	ib := array.NewInt64Builder(memory.DefaultAllocator)
	ib.AppendValues(perm, nil)
	indices := ib.NewArray()
	ib.Release()
	defer indices.Release()
	out := make([]arrow.Array, ncol)
	for c := 0; c < ncol; c++ {
		out[c], err = compute.TakeArray(context.Background(), cols[c], indices)
		if err != nil {
			for _, o := range out[:c] {
				o.Release()
			}
			return nil, fmt.Errorf("shards: order spill bucket %s: %w", path, err)
		}
	}
	rec := array.NewRecordBatch(schema, out, want)
	for _, o := range out {
		o.Release()
	}
	return rec, nil
}

// hashingWriter counts and hashes what goes through it to w. It has no Close, so the
// Parquet writer cannot close the file behind our back.
type hashingWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (h *hashingWriter) Write(p []byte) (int, error) {
	n, err := h.w.Write(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

// shardWriter cuts an ordered stream of rows into row groups of about rgBytes and shards of
// about target bytes, each written to a temporary name and renamed when complete.
type shardWriter struct {
	dir, split string
	schema     *arrow.Schema
	target     int64
	rgBytes    int64

	shards  []Shard
	nonNull map[string]int64

	pending      []arrow.RecordBatch
	pendingBytes int64

	f    *os.File
	bw   *bufio.Writer
	hw   *hashingWriter
	fw   *pqarrow.FileWriter
	tmp  string
	rows int64
}

func (w *shardWriter) add(rec arrow.RecordBatch) error {
	sizes := rowSizes(rec)
	start := 0
	for i, s := range sizes {
		w.pendingBytes += s
		if w.pendingBytes >= w.rgBytes {
			w.pending = append(w.pending, rec.NewSlice(int64(start), int64(i+1)))
			start = i + 1
			if err := w.flushRowGroup(); err != nil {
				return err
			}
		}
	}
	if start < len(sizes) {
		w.pending = append(w.pending, rec.NewSlice(int64(start), int64(len(sizes))))
	}
	return nil
}

func (w *shardWriter) flushRowGroup() error {
	if len(w.pending) == 0 {
		return nil
	}
	// Always copy the pending slices into fresh arrays: pqarrow (v18.8.0) writes a sliced
	// fixed_size_list from the start of its child array, ignoring the slice offset.
	var rec arrow.RecordBatch
	{
		cols := make([]arrow.Array, w.schema.NumFields())
		for c := range cols {
			parts := make([]arrow.Array, len(w.pending))
			for i, p := range w.pending {
				parts[i] = p.Column(c)
			}
			var err error
			if cols[c], err = array.Concatenate(parts, memory.DefaultAllocator); err != nil {
				return fmt.Errorf("shards: merge row group: %w", err)
			}
		}
		rec = array.NewRecordBatch(w.schema, cols, -1)
		for _, c := range cols {
			c.Release()
		}
		for _, p := range w.pending {
			p.Release()
		}
	}
	w.pending, w.pendingBytes = w.pending[:0], 0
	defer rec.Release()
	if w.fw == nil {
		if err := w.open(); err != nil {
			return err
		}
	}
	if err := w.fw.Write(rec); err != nil {
		return fmt.Errorf("shards: write %s: %w", w.tmp, err)
	}
	w.rows += rec.NumRows()
	for c, f := range w.schema.Fields() {
		col := rec.Column(c)
		w.nonNull[f.Name] += int64(col.Len() - col.NullN())
	}
	if w.hw.n >= w.target {
		return w.closeShard()
	}
	return nil
}

func (w *shardWriter) open() error {
	dir := filepath.Join(w.dir, w.split)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("shards: %w", err)
	}
	w.tmp = filepath.Join(dir, fmt.Sprintf("shard-%05d.parquet.tmp", len(w.shards)))
	f, err := os.Create(w.tmp)
	if err != nil {
		return fmt.Errorf("shards: %w", err)
	}
	w.f = f
	w.bw = bufio.NewWriterSize(f, 1<<20)
	w.hw = &hashingWriter{w: w.bw, h: sha256.New()}
	props := parquet.NewWriterProperties(append([]parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithDictionaryDefault(false),
		parquet.WithStats(false),
		parquet.WithMaxRowGroupLength(math.MaxInt64),
	}, uncompressedLatents(w.schema)...)...)
	w.fw, err = pqarrow.NewFileWriter(w.schema, w.hw, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return errors.Join(fmt.Errorf("shards: start %s: %w", w.tmp, err), w.f.Close())
	}
	w.rows = 0
	return nil
}

func (w *shardWriter) closeShard() error {
	err := w.fw.Close()
	w.fw = nil
	if err == nil {
		err = w.bw.Flush()
	}
	if err == nil {
		err = w.f.Sync()
	}
	err = errors.Join(err, w.f.Close())
	if err != nil {
		return fmt.Errorf("shards: finish %s: %w", w.tmp, err)
	}
	final := strings.TrimSuffix(w.tmp, ".tmp")
	if err := os.Rename(w.tmp, final); err != nil {
		return fmt.Errorf("shards: %w", err)
	}
	rel := w.split + "/" + filepath.Base(final)
	w.shards = append(w.shards, Shard{Split: w.split, Path: rel, Rows: w.rows, Bytes: w.hw.n, SHA256: hex.EncodeToString(w.hw.h.Sum(nil))})
	return nil
}

func (w *shardWriter) finish() error {
	if err := w.flushRowGroup(); err != nil {
		return err
	}
	if w.fw != nil {
		return w.closeShard()
	}
	return nil
}

// abort drops the shard being written.
func (w *shardWriter) abort() error {
	for _, p := range w.pending {
		p.Release()
	}
	w.pending = nil
	if w.fw == nil {
		return nil
	}
	w.fw = nil
	return errors.Join(w.f.Close(), os.Remove(w.tmp))
}

// writeFileAtomic writes data to path through a synced temporary file and a rename.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("shards: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err != nil {
		return fmt.Errorf("shards: write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("shards: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
