package mmdata_test

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/immkit/immkit/imm/mmdata"
	"github.com/immkit/immkit/imm/nn"
	"github.com/immkit/immkit/kernels/cpu"
	"github.com/immkit/immkit/shards"
)

// TestPatchOrder assembles random latents and checks the image segment against
// nn.Patchify (the DiT's patchify, in float64) of the latent normalised by an independent
// float64 loop, and that Decode's latent inverts it.
func TestPatchOrder(t *testing.T) {
	f := shapes(t)
	for _, P := range []int{2, 4, 8} {
		l, err := mmdata.NewLayout(f.Shards, mmdata.Options{ArtefactsDir: f.Encoded, ImagePatch: P, Modalities: []string{mmdata.Image}})
		if err != nil {
			t.Fatal(err)
		}
		s := l.Image
		if l.Segments[0].Tokens != (32/P)*(32/P) || l.Segments[0].Features != 3*P*P || l.Dim() != 3*32*32 {
			t.Fatalf("P=%d: segment %+v", P, l.Segments[0])
		}
		b := batches(t, l, f.Shards, shards.SplitTrain)[0]
		n, size := b.Len(), 3*32*32
		lat := b.Latents["image_latent"]
		r := rand.New(rand.NewPCG(uint64(P), 2))
		for i := range lat.Data {
			lat.Data[i] = float32(r.NormFloat64())
		}
		x, mask := make([]float32, n*size), make([]float32, n*size)
		if _, err := l.Assemble(b, x, mask); err != nil {
			t.Fatal(err)
		}
		// reference: normalise in float64, then nn.Patchify on the CPU device
		d := cpu.New[float64](1)
		pt, err := nn.NewPatchify(d, 3, 32, 32, P)
		if err != nil {
			t.Fatal(err)
		}
		norm := make([]float64, n*size)
		for i := range n {
			for c := range 3 {
				for j := range 32 * 32 {
					k := i*size + c*1024 + j
					norm[k] = 0.5 * (float64(lat.Data[k]) - s.Mean[c]) / s.Std[c]
				}
			}
		}
		buf := d.Alloc(len(norm))
		d.Write(buf, norm)
		want := cpu.Data[float64](pt.Patch(buf, n))
		for i := range want {
			if math.Abs(float64(x[i])-want[i]) > 1e-6*(1+math.Abs(want[i])) {
				t.Fatalf("P=%d: particle value %d = %v, nn.Patchify of the normalised latent %v", P, i, x[i], want[i])
			}
			if mask[i] != 1 {
				t.Fatalf("P=%d: image mask %d = %v", P, i, mask[i])
			}
		}
		for i := range n {
			back := s.Latent(x[i*size:(i+1)*size], 0.5)
			for j, v := range back.Data {
				if w := lat.Data[i*size+j]; math.Abs(float64(v-w)) > 1e-5*(1+math.Abs(float64(w))) {
					t.Fatalf("P=%d: Latent(Assemble) value %d = %v, want %v", P, j, v, w)
				}
			}
		}
	}
}

// TestNormalisation checks the statistics against a float64 pass over every train latent
// and mel read with pqarrow, and that the assembled train particles have mean 0 and std
// sigma_d per image channel and per mel bin.
func TestNormalisation(t *testing.T) {
	f := shapes(t)
	l, err := mmdata.NewLayout(f.Shards, mmdata.Options{ArtefactsDir: f.Encoded, SigmaD: 0.7, AudioNorm: mmdata.AudioNormBin})
	if err != nil {
		t.Fatal(err)
	}
	g, err := mmdata.NewLayout(f.Shards, mmdata.Options{ArtefactsDir: f.Encoded, SigmaD: 0.7}) // global by default
	if err != nil {
		t.Fatal(err)
	}
	m, err := shards.ReadManifest(f.Shards)
	if err != nil {
		t.Fatal(err)
	}
	type acc struct{ n, s, q, lo, hi []float64 }
	newAcc := func(c int) *acc {
		a := &acc{make([]float64, c), make([]float64, c), make([]float64, c), make([]float64, c), make([]float64, c)}
		for i := range c {
			a.lo[i], a.hi[i] = math.Inf(1), math.Inf(-1)
		}
		return a
	}
	add := func(a *acc, c int, v float64) {
		a.n[c]++
		a.s[c] += v
		a.q[c] += v * v
		a.lo[c], a.hi[c] = min(a.lo[c], v), max(a.hi[c], v)
	}
	img, mel, pool := newAcc(3), newAcc(80), newAcc(1)
	rows := 0
	for _, s := range m.SplitShards(shards.SplitTrain) {
		p := filepath.Join(f.Shards, s.Path)
		for _, v := range readColumn(t, p, "image_latent") {
			rows++
			for j, x := range v.([]float32) {
				add(img, j/1024, float64(x))
			}
		}
		for _, v := range readColumn(t, p, "audio_mel") {
			for j, x := range v.([]float32) {
				add(mel, j%80, float64(x))
				add(pool, 0, float64(x))
			}
		}
	}
	if l.Stats.Samples != rows {
		t.Fatalf("statistics over %d samples, the train split has %d", l.Stats.Samples, rows)
	}
	check := func(what string, a *acc, mean, std []float64) {
		for c := range a.n {
			mu := a.s[c] / a.n[c]
			sd := math.Max(math.Sqrt(a.q[c]/a.n[c]-mu*mu), 1e-3)
			if math.Abs(mean[c]-mu) > 1e-9 || math.Abs(std[c]-sd) > 1e-7*sd {
				t.Fatalf("%s channel %d: mean %v std %v, float64 reference %v %v", what, c, mean[c], std[c], mu, sd)
			}
		}
	}
	check("image", img, l.Image.Mean, l.Image.Std)
	check("mel", mel, l.Audio.Mean, l.Audio.Std)
	for c := range 80 {
		if l.Audio.Min[c] != mel.lo[c] || l.Audio.Max[c] != mel.hi[c] {
			t.Fatalf("mel bin %d: range [%v, %v], the train split's [%v, %v]", c, l.Audio.Min[c], l.Audio.Max[c], mel.lo[c], mel.hi[c])
		}
		// AudioNormGlobal: one mean and std over every bin; the range stays per bin.
		check("mel (global)", pool, g.Audio.Mean[c:c+1], g.Audio.Std[c:c+1])
		if g.Audio.Min[c] != mel.lo[c] || g.Audio.Max[c] != mel.hi[c] {
			t.Fatalf("mel bin %d (global): range [%v, %v], the train split's [%v, %v]", c, g.Audio.Min[c], g.Audio.Max[c], mel.lo[c], mel.hi[c])
		}
	}

	// normalised particles: mean 0, std sigma_d per channel over the train split
	D := l.Dim()
	imgOff, _ := l.Offset(mmdata.Image)
	audOff, _ := l.Offset(mmdata.Audio)
	pi, pm := newAcc(3), newAcc(80)
	for _, b := range batches(t, l, f.Shards, shards.SplitTrain) {
		x, mask := make([]float32, b.Len()*D), make([]float32, b.Len()*D)
		if _, err := l.Assemble(b, x, mask); err != nil {
			t.Fatal(err)
		}
		for i := range b.Len() {
			for j, v := range x[i*D+imgOff : i*D+audOff] {
				add(pi, (j%48)/16, float64(v)) // P=4: feature c*16 + py*4 + px
			}
			for j, v := range x[i*D+audOff : i*D+audOff+8000] {
				add(pm, j%80, float64(v))
			}
		}
	}
	for what, a := range map[string]*acc{"image": pi, "mel": pm} {
		for c := range a.n {
			mu := a.s[c] / a.n[c]
			sd := math.Sqrt(a.q[c]/a.n[c] - mu*mu)
			if math.Abs(mu) > 1e-4 || (math.Abs(sd-0.7) > 1e-3 && sd > 1e-3) {
				t.Fatalf("%s channel %d of the particles: mean %v std %v, want 0 and 0.7", what, c, mu, sd)
			}
		}
	}
}

// TestTextPadding checks the text segment in both padding modes: ids embedded through the
// table, the end token at text_len, what follows, and Decode's ids.
func TestTextPadding(t *testing.T) {
	f := shapes(t)
	for _, mode := range []string{mmdata.TextPadEnd, mmdata.TextPadFill} {
		for _, L := range []int{4, 16, 40} { // 4 truncates every caption
			l, err := mmdata.NewLayout(f.Shards, mmdata.Options{ArtefactsDir: f.Encoded, Modalities: []string{mmdata.Text}, TextLen: L, TextDim: 8, TextPad: mode, Seed: 9})
			if err != nil {
				t.Fatal(err)
			}
			s := l.Text
			if l.Dim() != L*8 || s.Table.Vocab != s.Vocab+1 || s.End != int32(s.Vocab) {
				t.Fatalf("dim %d, table %d rows, vocab %d, end %d", l.Dim(), s.Table.Vocab, s.Vocab, s.End)
			}
			// the table has RMS sigma_d
			var ss float64
			for _, v := range s.Table.Vec {
				ss += float64(v) * float64(v)
			}
			if rms := math.Sqrt(ss / float64(len(s.Table.Vec))); math.Abs(rms-0.5) > 1e-5 {
				t.Fatalf("table RMS %v", rms)
			}
			raw := map[string]any{}
			m, _ := shards.ReadManifest(f.Shards)
			for _, sh := range m.SplitShards(shards.SplitTrain) {
				for k, v := range readColumn(t, filepath.Join(f.Shards, sh.Path), "text_tokens") {
					raw[k] = v
				}
				for k, v := range readColumn(t, filepath.Join(f.Shards, sh.Path), "text_len") {
					raw[k+"#len"] = v
				}
			}
			b := batches(t, l, f.Shards, shards.SplitTrain)[0]
			x, mask := make([]float32, b.Len()*L*8), make([]float32, b.Len()*L*8)
			if _, err := l.Assemble(b, x, mask); err != nil {
				t.Fatal(err)
			}
			for i, key := range b.Keys {
				ids := raw[key].([]int32)[:raw[key+"#len"].(int32)]
				n := min(len(ids), L)
				p, mk := x[i*L*8:(i+1)*L*8], mask[i*L*8:(i+1)*L*8]
				for j := range L {
					var want []float32
					wantMask := float32(1)
					switch {
					case j < n:
						want = s.Table.Vec[int(ids[j])*8 : int(ids[j])*8+8]
					case j == n || mode == mmdata.TextPadFill:
						want = s.Table.Vec[int(s.End)*8 : int(s.End)*8+8]
					default:
						want, wantMask = make([]float32, 8), 0
					}
					for k := range 8 {
						if p[j*8+k] != want[k] || mk[j*8+k] != wantMask {
							t.Fatalf("%s L=%d %s position %d: x %v mask %v, want %v mask %v", mode, L, key, j, p[j*8:j*8+8], mk[j*8], want, wantMask)
						}
					}
				}
				got, err := s.IDs(p)
				if err != nil {
					t.Fatal(err)
				}
				if !equalIDs(got, ids[:n]) {
					t.Fatalf("%s L=%d %s: decoded ids %v, want %v", mode, L, key, got, ids[:n])
				}
			}
		}
	}
}

func equalIDs(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestGivenStats: a layout built with the statistics of another gives the same particles;
// bad statistics are refused.
func TestGivenStats(t *testing.T) {
	f := shapes(t)
	a, err := mmdata.NewLayout(f.Shards, mmdata.Options{ArtefactsDir: f.Encoded})
	if err != nil {
		t.Fatal(err)
	}
	st := a.Stats
	b, err := mmdata.NewLayout(f.Shards, mmdata.Options{ArtefactsDir: f.Encoded, Stats: &st})
	if err != nil {
		t.Fatal(err)
	}
	bt := batches(t, a, f.Shards, shards.SplitVal)[0]
	D := a.Dim()
	xa, ma := make([]float32, bt.Len()*D), make([]float32, bt.Len()*D)
	xb, mb := make([]float32, bt.Len()*D), make([]float32, bt.Len()*D)
	if _, err := a.Assemble(bt, xa, ma); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Assemble(bt, xb, mb); err != nil {
		t.Fatal(err)
	}
	for i := range xa {
		if xa[i] != xb[i] || ma[i] != mb[i] {
			t.Fatalf("value %d differs: %v/%v vs %v/%v", i, xa[i], ma[i], xb[i], mb[i])
		}
	}
	bad := st
	bad.ImageStd = []float64{1, 0, 1}
	if _, err := mmdata.NewLayout(f.Shards, mmdata.Options{ArtefactsDir: f.Encoded, Stats: &bad}); err == nil || !strings.Contains(err.Error(), "standard deviation") {
		t.Fatalf("zero std accepted: %v", err)
	}
	bad.ImageStd = []float64{1}
	if _, err := mmdata.NewLayout(f.Shards, mmdata.Options{ArtefactsDir: f.Encoded, Stats: &bad}); err == nil || !strings.Contains(err.Error(), "image channels") {
		t.Fatalf("one-channel statistics accepted: %v", err)
	}
	// The mel range: absent is accepted (configs from before it), a partial or inverted
	// one is not.
	for _, c := range []struct {
		lo, hi []float64
		want   string
	}{
		{nil, nil, ""},
		{st.AudioMin, nil, "mel range of 80/0 bins"},
		{st.AudioMin[:3], st.AudioMax[:3], "mel range of 3/3 bins"},
		{st.AudioMax, st.AudioMin, "min <= max"},
		{append([]float64{math.NaN()}, st.AudioMin[1:]...), st.AudioMax, "finite bounds"},
	} {
		r := st
		r.AudioMin, r.AudioMax = c.lo, c.hi
		_, err := mmdata.NewLayout(f.Shards, mmdata.Options{ArtefactsDir: f.Encoded, Stats: &r})
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("mel range %d/%d bins: error %v, want %q", len(c.lo), len(c.hi), err, c.want)
		}
	}
}

// TestMelClamp: MelOf clamps each bin of a generated mel to the statistics' range, leaves
// a real mel (inside the range) as it was, and does not clamp without a range.
func TestMelClamp(t *testing.T) {
	f := shapes(t)
	l, err := mmdata.NewLayout(f.Shards, mmdata.Options{ArtefactsDir: f.Encoded})
	if err != nil {
		t.Fatal(err)
	}
	a := l.Audio
	seg := make([]float32, a.Frames*a.NMels)
	rng := rand.New(rand.NewPCG(3, 4))
	for j := range seg {
		seg[j] = float32(rng.NormFloat64() * 40) // far outside the data on both sides
	}
	sigma := l.Opts.SigmaD
	m := a.MelOf(seg, sigma)
	lowHit, highHit := 0, 0
	for c := range a.NMels {
		for fr := range a.Frames {
			v := float64(m.Data[c*a.Frames+fr])
			// independent denormalisation: x * std / sigma + mean, then the clamp
			raw := float64(seg[fr*a.NMels+c])*a.Std[c]/sigma + a.Mean[c]
			want := math.Min(math.Max(raw, a.Min[c]), a.Max[c])
			if math.Abs(v-want) > 1e-5*math.Max(1, math.Abs(want)) {
				t.Fatalf("bin %d frame %d: %v, want %v (raw %v, range [%v, %v])", c, fr, v, want, raw, a.Min[c], a.Max[c])
			}
			if float32(v) == float32(a.Min[c]) {
				lowHit++
			}
			if float32(v) == float32(a.Max[c]) {
				highHit++
			}
		}
	}
	if lowHit == 0 || highHit == 0 {
		t.Fatalf("the clamp never bit: %d values at the minimum, %d at the maximum", lowHit, highHit)
	}
	// A training sample's mel is inside the range: decoded as assembled.
	bt := batches(t, l, f.Shards, shards.SplitTrain)[0]
	D := l.Dim()
	x, mask := make([]float32, bt.Len()*D), make([]float32, bt.Len()*D)
	if _, err := l.Assemble(bt, x, mask); err != nil {
		t.Fatal(err)
	}
	off, _ := l.Offset(mmdata.Audio)
	got := a.MelOf(x[off:], sigma)
	unclamped := *a
	unclamped.Min, unclamped.Max = nil, nil
	ref := unclamped.MelOf(x[off:], sigma)
	for j := range got.Data {
		// only float32 rounding of the normalise/denormalise round trip at the bounds
		if math.Abs(float64(got.Data[j]-ref.Data[j])) > 1e-6*math.Max(1, math.Abs(float64(ref.Data[j]))) {
			t.Fatalf("a training mel changed by the clamp at %d: %v -> %v", j, ref.Data[j], got.Data[j])
		}
	}
	// Without a range nothing is clamped.
	if free := unclamped.MelOf(seg, sigma); slices.Equal(free.Data, m.Data) {
		t.Fatal("MelOf without a range clamped")
	}
}

// TestErrors: unusable options and inputs give specific errors, not panics.
func TestErrors(t *testing.T) {
	f := shapes(t)
	ok := mmdata.Options{ArtefactsDir: f.Encoded}
	cases := []struct {
		name string
		o    func(o *mmdata.Options)
		want string
	}{
		{"patch", func(o *mmdata.Options) { o.ImagePatch = 5 }, "cannot be cut into 5x5 patches"},
		{"modality", func(o *mmdata.Options) { o.Modalities = []string{"video"} }, `unknown modality "video"`},
		{"pad", func(o *mmdata.Options) { o.TextPad = "zero" }, "text padding"},
		{"sigma", func(o *mmdata.Options) { o.SigmaD = -1 }, "sigma_d"},
	}
	for _, c := range cases {
		o := ok
		c.o(&o)
		_, err := mmdata.NewLayout(f.Shards, o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	// immdata shard copies the artefacts into the shard set, so none is needed there; a shard
	// set without them (an older one, or artefacts deleted) needs ArtefactsDir
	if _, err := mmdata.NewLayout(f.Shards, mmdata.Options{}); err != nil {
		t.Errorf("shard set with its artefacts, no ArtefactsDir: %v", err)
	}
	bare := t.TempDir()
	if err := os.CopyFS(bare, os.DirFS(f.Shards)); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(bare, "artefacts")); err != nil {
		t.Fatal(err)
	}
	if _, err := mmdata.NewLayout(bare, mmdata.Options{}); err == nil || !strings.Contains(err.Error(), "set Options.ArtefactsDir") {
		t.Errorf("shard set without artefacts: error %v, want one containing %q", err, "set Options.ArtefactsDir")
	}
	// a tampered artefact is refused by its hash
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(f.Encoded)); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "artefacts", "labels.json")
	if err := os.WriteFile(p, []byte(`{"labels": ["x"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := mmdata.NewLayout(f.Shards, mmdata.Options{ArtefactsDir: dir}); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Errorf("tampered labels.json: error %v", err)
	}
	l, err := mmdata.NewLayout(f.Shards, ok)
	if err != nil {
		t.Fatal(err)
	}
	b := batches(t, l, f.Shards, shards.SplitTrain)[0]
	if _, err := l.Assemble(b, make([]float32, 3), make([]float32, 3)); err == nil {
		t.Error("Assemble into a short buffer succeeded")
	}
	if _, err := l.Decode(make([]float32, 5), 1); err == nil {
		t.Error("Decode of a short particle succeeded")
	}
	x := make([]float32, l.Dim())
	x[7] = float32(math.NaN())
	if _, err := l.Decode(x, 1); err == nil || !strings.Contains(err.Error(), "holds NaN at image value 7") {
		t.Errorf("Decode of NaN: %v", err)
	}
	// a batch without the layout's columns
	if _, err := l.Assemble(&shards.Batch{Keys: b.Keys}, make([]float32, b.Len()*l.Dim()), make([]float32, b.Len()*l.Dim())); err == nil {
		t.Error("Assemble of a batch without columns succeeded")
	}
	// a label outside the vocabulary
	b.Ints["label_id"][0] = int32(l.Classes)
	if _, err := l.Assemble(b, make([]float32, b.Len()*l.Dim()), make([]float32, b.Len()*l.Dim())); err == nil || !strings.Contains(err.Error(), "label_id") {
		t.Errorf("label %d accepted: %v", l.Classes, err)
	}
	b.Ints["label_id"][0] = -1
	labels, err := l.Assemble(b, make([]float32, b.Len()*l.Dim()), make([]float32, b.Len()*l.Dim()))
	if err != nil || labels[0] != int32(l.Classes) {
		t.Errorf("label -1: %v, %v; want the null class %d", labels, err, l.Classes)
	}
}

// TestSubsets: a layout of some modalities gives the same segments as the full layout,
// and asks the loader only for the columns it needs.
func TestSubsets(t *testing.T) {
	f := shapes(t)
	full, err := mmdata.NewLayout(f.Shards, mmdata.Options{ArtefactsDir: f.Encoded})
	if err != nil {
		t.Fatal(err)
	}
	b := batches(t, full, f.Shards, shards.SplitTrain)[0]
	D := full.Dim()
	x, mask := make([]float32, b.Len()*D), make([]float32, b.Len()*D)
	if _, err := full.Assemble(b, x, mask); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		mods []string
		cols []string
	}{
		{[]string{mmdata.Audio}, []string{"label_id", "audio_mel"}},
		{[]string{mmdata.Text, mmdata.Image}, []string{"label_id", "image_latent", "text_tokens", "text_len"}},
		{[]string{mmdata.Audio, mmdata.Text}, []string{"label_id", "audio_mel", "text_tokens", "text_len"}},
	} {
		l, err := mmdata.NewLayout(f.Shards, mmdata.Options{ArtefactsDir: f.Encoded, Modalities: c.mods})
		if err != nil {
			t.Fatal(err)
		}
		if got := l.LoaderOptions(shards.LoaderOptions{}).Columns; strings.Join(got, ",") != strings.Join(c.cols, ",") {
			t.Errorf("%v: loader columns %v, want %v", c.mods, got, c.cols)
		}
		if len(l.Segments) != len(c.mods) {
			t.Fatalf("%v: segments %+v", c.mods, l.Segments)
		}
		d := l.Dim()
		xs, ms := make([]float32, b.Len()*d), make([]float32, b.Len()*d)
		if _, err := l.Assemble(b, xs, ms); err != nil {
			t.Fatal(err)
		}
		if l.Image == nil { // Images has one nil entry per particle, as the contract says
			md, err := l.DecodeModalities(xs, b.Len(), []string{l.Segments[len(l.Segments)-1].Name})
			if err != nil {
				t.Fatal(err)
			}
			if len(md.Images) != b.Len() || md.Images[0] != nil {
				t.Errorf("%v: Images %v, want %d nil entries", c.mods, md.Images, b.Len())
			}
		}
		for _, s := range l.Segments {
			off, _ := l.Offset(s.Name)
			foff, _ := full.Offset(s.Name)
			w := s.Tokens * s.Features
			for i := range b.Len() {
				for j := range w {
					if xs[i*d+off+j] != x[i*D+foff+j] || ms[i*d+off+j] != mask[i*D+foff+j] {
						t.Fatalf("%v: %s value %d of sample %d differs from the full layout", c.mods, s.Name, j, i)
					}
				}
			}
		}
	}
	if _, err := mmdata.NewLayout(f.Shards, mmdata.Options{ArtefactsDir: f.Encoded, Modalities: []string{}}); err == nil {
		t.Error("a layout of no modality was accepted")
	}
}
