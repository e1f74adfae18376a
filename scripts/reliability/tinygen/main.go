// Command tinygen writes the load-test corpus of scripts/reliability/load.sh: N distinct
// samples, each a tiny PNG (8x8 RGB whose pixels encode the sample number) and a caption,
// as webdataset tar shards (key.png + key.txt) of -per-shard samples each.
//
//	go run ./scripts/reliability/tinygen -n 1000000 -o DIR
package main

import (
	"archive/tar"
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"hash/adler32"
	"hash/crc32"
	"log"
	"os"
	"path/filepath"
	"time"
)

func main() {
	n := flag.Int("n", 1000000, "samples")
	per := flag.Int("per-shard", 10000, "samples per tar shard")
	out := flag.String("o", "", "output directory (created)")
	flag.Parse()
	if *out == "" || *n <= 0 || *per <= 0 {
		log.Fatal("tinygen: -o DIR, -n > 0 and -per-shard > 0 are required")
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}
	var raw [8 * (1 + 8*3)]byte
	mtime := time.Unix(0, 0)
	for s := 0; s*(*per) < *n; s++ {
		path := filepath.Join(*out, fmt.Sprintf("tiny-%05d.tar", s))
		f, err := os.Create(path)
		if err != nil {
			log.Fatal(err)
		}
		bw := bufio.NewWriterSize(f, 1<<20)
		tw := tar.NewWriter(bw)
		for i := s * *per; i < min((s+1)**per, *n); i++ {
			// pixel (x, y): red is byte y%4 of the sample number, green x, blue y
			for y := range 8 {
				row := raw[y*25 : (y+1)*25]
				row[0] = 0 // filter: none
				for x := range 8 {
					row[1+3*x], row[2+3*x], row[3+3*x] = byte(i>>(8*(y%4))), byte(x*32), byte(y*32)
				}
			}
			pngBytes := tinyPNG(raw[:])
			key := fmt.Sprintf("%07d", i)
			caption := fmt.Sprintf("tiny sample %d: an 8x8 gradient", i)
			for _, m := range []struct {
				name string
				data []byte
			}{{key + ".png", pngBytes}, {key + ".txt", []byte(caption)}} {
				hdr := &tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.data)), ModTime: mtime, Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}
				if err := tw.WriteHeader(hdr); err != nil {
					log.Fatal(err)
				}
				if _, err := tw.Write(m.data); err != nil {
					log.Fatal(err)
				}
			}
		}
		if err := tw.Close(); err != nil {
			log.Fatal(err)
		}
		if err := bw.Flush(); err != nil {
			log.Fatal(err)
		}
		if err := f.Close(); err != nil {
			log.Fatal(err)
		}
	}
}

// tinyPNG encodes the filtered scanlines raw of an 8x8 RGB image as a PNG whose IDAT is one
// stored (uncompressed) deflate block, which is valid and much faster than compressing.
func tinyPNG(raw []byte) []byte {
	out := []byte("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		out = binary.BigEndian.AppendUint32(out, uint32(len(data)))
		start := len(out)
		out = append(out, typ...)
		out = append(out, data...)
		out = binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(out[start:]))
	}
	ihdr := binary.BigEndian.AppendUint32(nil, 8)
	ihdr = binary.BigEndian.AppendUint32(ihdr, 8)
	ihdr = append(ihdr, 8, 2, 0, 0, 0) // 8-bit RGB, deflate, no filter method, no interlace
	chunk("IHDR", ihdr)
	z := []byte{0x78, 0x01, 1} // zlib header, final stored block
	z = binary.LittleEndian.AppendUint16(z, uint16(len(raw)))
	z = binary.LittleEndian.AppendUint16(z, ^uint16(len(raw)))
	z = append(z, raw...)
	z = binary.BigEndian.AppendUint32(z, adler32.Checksum(raw))
	chunk("IDAT", z)
	chunk("IEND", nil)
	return out
}
