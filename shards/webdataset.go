package shards

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// ExportResult counts what ExportWebDataset wrote.
type ExportResult struct {
	Tars    []string // written tar files, relative to the output directory
	Samples int64
	Members int64
}

// ExportWebDataset writes the shards of the dataset in dir as webdataset tar files in out,
// one tar per shard (out/train/shard-00000.tar ...), samples in shard order. Each sample's
// members are adjacent and named KEY.EXT, where KEY is the sample key with dots replaced by
// underscores (webdataset splits member names at the first dot of the base name):
//
//	image, audio struct{bytes,path}   KEY.jpg / .png / .wav / .flac / ... (sniffed, else from path)
//	text (utf8)                       KEY.txt
//	label_id (int32)                  KEY.cls   (decimal)
//	meta (utf8 JSON)                  KEY.json
//	other utf8 columns                KEY.COLUMN.txt
//	fixed_size_list<float16|float32>  KEY.COLUMN.npy (shape from the column's "shape" metadata)
//	list<int32|float16|float32>       KEY.COLUMN.npy (1-D; 2-D frames x n_mels with "n_mels")
//	other scalar columns, sha256      KEY.info.json
//
// Null values produce no member. The tars are written to temporary names and renamed.
func ExportWebDataset(ctx context.Context, dir, out string) (*ExportResult, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	res := &ExportResult{}
	for _, s := range m.Shards {
		rel := strings.TrimSuffix(s.Path, ".parquet") + ".tar"
		if err := exportShard(ctx, filepath.Join(dir, filepath.FromSlash(s.Path)), filepath.Join(out, filepath.FromSlash(rel)), res); err != nil {
			return nil, err
		}
		res.Tars = append(res.Tars, rel)
	}
	return res, nil
}

func exportShard(ctx context.Context, src, dst string, res *ExportResult) error {
	pf, err := openParquet(src, 256)
	if err != nil {
		return err
	}
	defer pf.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("shards: %w", err)
	}
	tmp := dst + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("shards: %w", err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	tw := tar.NewWriter(bw)
	used := map[string]bool{}
	err = pf.Scan(ctx, nil, func(rec arrow.RecordBatch) error {
		for i := 0; i < int(rec.NumRows()); i++ {
			members, err := sampleMembers(rec, i)
			if err != nil {
				return fmt.Errorf("shards: export %s: %w", src, err)
			}
			key := wdsKey(members.key)
			for n := 2; used[key]; n++ {
				key = wdsKey(members.key) + "_" + strconv.Itoa(n)
			}
			used[key] = true
			for _, mb := range members.files {
				hdr := &tar.Header{Name: key + "." + mb.ext, Mode: 0o644, Size: int64(len(mb.data)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
				if err := tw.WriteHeader(hdr); err != nil {
					return fmt.Errorf("shards: write %s: %w", tmp, err)
				}
				if _, err := tw.Write(mb.data); err != nil {
					return fmt.Errorf("shards: write %s: %w", tmp, err)
				}
				res.Members++
			}
			res.Samples++
		}
		return nil
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	err = errors.Join(err, f.Close())
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("shards: %w", err)
	}
	return nil
}

// wdsKey makes a sample key usable as a webdataset key: no dots (webdataset splits the
// member name at the first dot of its base name), no leading slash, no empty name.
func wdsKey(k string) string {
	k = strings.ReplaceAll(k, ".", "_")
	k = strings.TrimLeft(k, "/")
	k = strings.ReplaceAll(k, "\\", "_")
	if k == "" {
		k = "_"
	}
	return k
}

type member struct {
	ext  string
	data []byte
}

type sampleFiles struct {
	key   string
	files []member
}

func sampleMembers(rec arrow.RecordBatch, i int) (*sampleFiles, error) {
	out := &sampleFiles{}
	info := map[string]any{}
	for c, f := range rec.Schema().Fields() {
		col := rec.Column(c)
		if f.Name == ColKey {
			k, ok := col.(stringArray)
			if !ok {
				return nil, fmt.Errorf("key column is %s", col.DataType())
			}
			out.key = k.Value(i)
			continue
		}
		if col.IsNull(i) {
			continue
		}
		add := func(ext string, data []byte) { out.files = append(out.files, member{ext, data}) }
		switch a := col.(type) {
		case *array.Struct:
			bytesCol, pathCol := structMedia(a)
			if bytesCol == nil || bytesCol.IsNull(i) {
				continue
			}
			data := bytesCol.Value(i)
			p := ""
			if pathCol != nil && !pathCol.IsNull(i) {
				p = pathCol.Value(i)
			}
			ext := sniffExt(data, p)
			if f.Name != "image" && f.Name != "audio" {
				ext = f.Name + "." + ext
			}
			add(ext, bytes.Clone(data))
		case stringArray:
			switch f.Name {
			case "text":
				add("txt", []byte(a.Value(i)))
			case "meta":
				add("json", []byte(a.Value(i)))
			default:
				add(f.Name+".txt", []byte(a.Value(i)))
			}
		case *array.FixedSizeList:
			lo, hi := a.ValueOffsets(i)
			shape := []int{int(hi - lo)}
			if s, ok := f.Metadata.GetValue("shape"); ok {
				if sh, ok := parseShape(s); ok && prod(sh) == int(hi-lo) {
					shape = sh
				}
			}
			data, err := npyOf(a.ListValues(), lo, hi, shape)
			if err != nil {
				return nil, fmt.Errorf("column %s: %w", f.Name, err)
			}
			add(f.Name+".npy", data)
		case array.ListLike:
			lo, hi := a.ValueOffsets(i)
			shape := []int{int(hi - lo)}
			if s, ok := f.Metadata.GetValue("n_mels"); ok {
				if nm, err := strconv.Atoi(s); err == nil && nm > 0 && int(hi-lo)%nm == 0 {
					shape = []int{int(hi-lo) / nm, nm}
				}
			}
			data, err := npyOf(a.ListValues(), lo, hi, shape)
			if err != nil {
				continue // a list type npy cannot hold; left out
			}
			add(f.Name+".npy", data)
		case *array.Binary:
			info[f.Name] = hex.EncodeToString(a.Value(i))
		case *array.Int32:
			if f.Name == "label_id" {
				add("cls", []byte(strconv.Itoa(int(a.Value(i)))))
			} else {
				info[f.Name] = a.Value(i)
			}
		default:
			if v, ok := scalarValue(col, i); ok {
				info[f.Name] = v
			}
		}
	}
	if len(info) > 0 {
		js, err := json.Marshal(info) // map keys are sorted
		if err != nil {
			return nil, err
		}
		out.files = append(out.files, member{"info.json", js})
	}
	sort.Slice(out.files, func(a, b int) bool { return out.files[a].ext < out.files[b].ext })
	return out, nil
}

type binaryArray interface {
	arrow.Array
	Value(int) []byte
}

func structMedia(a *array.Struct) (binaryArray, stringArray) {
	st := a.DataType().(*arrow.StructType)
	var b binaryArray
	var p stringArray
	for j, f := range st.Fields() {
		switch f.Name {
		case "bytes":
			b, _ = a.Field(j).(binaryArray)
		case "path":
			p, _ = a.Field(j).(stringArray)
		}
	}
	return b, p
}

func scalarValue(col arrow.Array, i int) (any, bool) {
	switch a := col.(type) {
	case *array.Int64:
		return a.Value(i), true
	case *array.Int16:
		return a.Value(i), true
	case *array.Int8:
		return a.Value(i), true
	case *array.Uint8:
		return a.Value(i), true
	case *array.Float32:
		if v := float64(a.Value(i)); !math.IsNaN(v) && !math.IsInf(v, 0) {
			return a.Value(i), true
		}
	case *array.Float64:
		if v := a.Value(i); !math.IsNaN(v) && !math.IsInf(v, 0) {
			return v, true
		}
	case *array.Boolean:
		return a.Value(i), true
	}
	return nil, false
}

// sniffExt names the file type of encoded media by its magic bytes, else by the extension
// of its original path, else "bin".
func sniffExt(b []byte, p string) string {
	switch {
	case bytes.HasPrefix(b, []byte{0xff, 0xd8, 0xff}):
		return "jpg"
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return "png"
	case bytes.HasPrefix(b, []byte("GIF8")):
		return "gif"
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return "webp"
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WAVE":
		return "wav"
	case bytes.HasPrefix(b, []byte("fLaC")):
		return "flac"
	case bytes.HasPrefix(b, []byte("ID3")), len(b) >= 2 && b[0] == 0xff && b[1]&0xe0 == 0xe0:
		return "mp3"
	case bytes.HasPrefix(b, []byte("BM")):
		return "bmp"
	case bytes.HasPrefix(b, []byte("II*\x00")), bytes.HasPrefix(b, []byte("MM\x00*")):
		return "tiff"
	case bytes.HasPrefix(b, []byte("OggS")):
		return "ogg"
	}
	if e := strings.ToLower(strings.TrimPrefix(path.Ext(p), ".")); e != "" && !strings.ContainsAny(e, "/\\") {
		if e == "jpeg" {
			return "jpg"
		}
		return e
	}
	return "bin"
}

// npyOf encodes values[lo:hi] of a float16, float32 or int32 array as a NumPy .npy file
// (format 1.0, little-endian, C order) of the given shape.
func npyOf(values arrow.Array, lo, hi int64, shape []int) ([]byte, error) {
	var descr string
	var body []byte
	switch v := values.(type) {
	case *array.Float16:
		descr = "<f2"
		body = make([]byte, 2*(hi-lo))
		for j, h := range rawUint16(v)[lo:hi] {
			binary.LittleEndian.PutUint16(body[2*j:], h)
		}
	case *array.Float32:
		descr = "<f4"
		body = make([]byte, 4*(hi-lo))
		for j, x := range v.Float32Values()[lo:hi] {
			binary.LittleEndian.PutUint32(body[4*j:], math.Float32bits(x))
		}
	case *array.Int32:
		descr = "<i4"
		body = make([]byte, 4*(hi-lo))
		for j, x := range v.Int32Values()[lo:hi] {
			binary.LittleEndian.PutUint32(body[4*j:], uint32(x))
		}
	default:
		return nil, fmt.Errorf("no .npy encoding for %s", values.DataType())
	}
	dims := make([]string, len(shape))
	for j, d := range shape {
		dims[j] = strconv.Itoa(d)
	}
	sh := strings.Join(dims, ", ")
	if len(shape) == 1 {
		sh += ","
	}
	header := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, sh)
	// Magic (6) + version (2) + header length (2) + header + newline, padded to 64 bytes.
	total := 10 + len(header) + 1
	pad := (64 - total%64) % 64
	header += strings.Repeat(" ", pad) + "\n"
	out := make([]byte, 0, 10+len(header)+len(body))
	out = append(out, "\x93NUMPY\x01\x00"...)
	out = binary.LittleEndian.AppendUint16(out, uint16(len(header)))
	out = append(out, header...)
	return append(out, body...), nil
}
