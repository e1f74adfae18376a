package mmdata_test

import (
	"context"
	"image"
	"path/filepath"
	"testing"

	"github.com/immkit/immkit/encoders"
	imgenc "github.com/immkit/immkit/encoders/image"
	"github.com/immkit/immkit/imm/mmdata"
	"github.com/immkit/immkit/imm/mmdata/mmdatatest"
	"github.com/immkit/immkit/shards"
)

// TestImageEncoders builds shards with the patch-pca and vq image encoders and checks
// that Decode(Assemble(batch)) gives the picture the encoder's own decoder makes from the
// shard's value (read with pqarrow, decoded with the artefact loaded by encoders/image).
func TestImageEncoders(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two more shard sets")
	}
	for _, c := range []struct {
		name      string
		img       encoders.ImageConfig
		tokens, F int
	}{
		{"patch-pca", encoders.ImageConfig{Encoder: "patch-pca", Size: 32, Patch: 4, Dims: 12}, 4, 12 * 16}, // latent 12x8x8, P=4
		{"vq", encoders.ImageConfig{Encoder: "vq", Size: 32, Patch: 4, Codes: 32}, 64, 48},                  // 8x8 codes of 4x4x3
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := encoders.Config{Seed: 5, Image: c.img, Audio: encoders.AudioConfig{Encoder: "none"}}
			f, err := mmdatatest.BuildShapes(context.Background(), t.TempDir(), mmdatatest.Options{Samples: 24, Seed: 5, Encode: &cfg})
			if err != nil {
				t.Fatal(err)
			}
			l, err := mmdata.NewLayout(f.Shards, mmdata.Options{ArtefactsDir: f.Encoded})
			if err != nil {
				t.Fatal(err)
			}
			if l.Audio != nil || l.Segments[0].Tokens != c.tokens || l.Segments[0].Features != c.F {
				t.Fatalf("segments %+v, want image %d x %d and text", l.Segments, c.tokens, c.F)
			}
			ref := func(key string) *image.NRGBA { t.Fatal("no reference"); return nil }
			m, _ := shards.ReadManifest(f.Shards)
			vals := map[string]any{}
			for _, s := range m.Shards {
				col := "image_latent"
				if c.name == "vq" {
					col = "image_tokens"
				}
				for k, v := range readColumn(t, filepath.Join(f.Shards, s.Path), col) {
					vals[k] = v
				}
			}
			art := filepath.Join(f.Encoded, "artefacts", c.name+".safetensors")
			switch c.name {
			case "patch-pca":
				pca, _, err := imgenc.LoadPatchPCA(art)
				if err != nil {
					t.Fatal(err)
				}
				ref = func(key string) *image.NRGBA {
					img, err := pca.Decode(imgenc.Latent{C: 12, H: 8, W: 8, Data: vals[key].([]float32)})
					if err != nil {
						t.Fatal(err)
					}
					return img
				}
			case "vq":
				q, _, err := imgenc.LoadVQ(art)
				if err != nil {
					t.Fatal(err)
				}
				ref = func(key string) *image.NRGBA {
					img, err := q.Decode(imgenc.Tokens{H: 8, W: 8, IDs: vals[key].([]int32)})
					if err != nil {
						t.Fatal(err)
					}
					return img
				}
			}
			n := 0
			for _, b := range batches(t, l, f.Shards, shards.SplitTrain) {
				D := l.Dim()
				x, mask := make([]float32, b.Len()*D), make([]float32, b.Len()*D)
				if _, err := l.Assemble(b, x, mask); err != nil {
					t.Fatal(err)
				}
				md, err := l.Decode(x, b.Len())
				if err != nil {
					t.Fatal(err)
				}
				for i, key := range b.Keys {
					n++
					psnr, err := imgenc.PSNR(ref(key), nrgba(md.Images[i]))
					if err != nil {
						t.Fatal(err)
					}
					if psnr < 50 {
						t.Errorf("%s: PSNR %.1f dB against the encoder's own decode, want >= 50", key, psnr)
					}
					orig := readPNG(t, filepath.Join(f.Corpus, key+".png"))
					if n == 1 {
						q, _ := imgenc.PSNR(orig, nrgba(md.Images[i]))
						t.Logf("%s: %s PSNR against the original picture %.1f dB (the encoder's loss)", key, c.name, q)
					}
				}
			}
			if n == 0 {
				t.Fatal("no samples")
			}
		})
	}
}
