package imm

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/immkit/immkit/imm/nn"
	"github.com/immkit/immkit/internal/safetensors"
	"github.com/immkit/immkit/kernels"
)

// CheckpointFormat is the value of the "format" metadata key of immkit IMM checkpoints.
const CheckpointFormat = "immkit-imm-v1"

// Checkpoint tensor names: "model.<param>", "ema.<param>", "adam_m.<param>",
// "adam_v.<param>", each with the parameter's shape (Linear weights are [out, in] as in
// PyTorch), F32 for float32 trainers and F64 for float64 ones. Metadata (all strings):
// format, step, adam_step, skipped, bad_run, rng (base64 of the PCG state), noise_key,
// noise_counter, imm_config, train_config, model_config (JSON of ModelConfig), plus the
// trainer's Extra entries (e.g. loader_state, run_config).
//
// Next to every checkpoint Save writes PATH.sha256 ("<hex>  <name>\n", the sha256sum
// format); Load and Verify compare it with the file when it exists, so a flipped byte is
// named in the error. A truncated file fails the safetensors size checks.

// ErrCheckpoint is wrapped by every error about the content of a checkpoint file.
var ErrCheckpoint = errors.New("imm: bad checkpoint")

func dtypeOf[T kernels.Float]() safetensors.DType {
	var z T
	if _, ok := any(z).(float64); ok {
		return safetensors.F64
	}
	return safetensors.F32
}

func encode[T kernels.Float](v []T) []byte {
	var z T
	if _, ok := any(z).(float64); ok {
		b := make([]byte, 0, 8*len(v))
		for _, x := range v {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(float64(x)))
		}
		return b
	}
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(x)))
	}
	return b
}

func decode[T kernels.Float](b []byte, v []T) {
	var z T
	if _, ok := any(z).(float64); ok {
		for i := range v {
			v[i] = T(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
		}
		return
	}
	for i := range v {
		v[i] = T(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
	}
}

type group struct {
	prefix string
	bufs   func(i int, p *nn.Param) kernels.Buffer
}

func (tr *Trainer[T]) groups() []group {
	return []group{
		{checkpointGroups[0], func(_ int, p *nn.Param) kernels.Buffer { return p.W }},
		{checkpointGroups[1], func(i int, _ *nn.Param) kernels.Buffer { return tr.EMA.Avg[i] }},
		{checkpointGroups[2], func(i int, _ *nn.Param) kernels.Buffer { return tr.Opt.M[i] }},
		{checkpointGroups[3], func(i int, _ *nn.Param) kernels.Buffer { return tr.Opt.V[i] }},
	}
}

// Save writes the checkpoint to path atomically: a temporary file in the same directory,
// synced, then renamed over path.
func (tr *Trainer[T]) Save(path string) error {
	tensors := map[string]safetensors.Tensor{}
	for _, g := range tr.groups() {
		for i, p := range tr.Net.Reg.Params {
			host := make([]T, p.Size())
			tr.Dev.Read(host, g.bufs(i, p))
			tensors[g.prefix+p.Name] = safetensors.Tensor{DType: dtypeOf[T](), Shape: p.Shape, Data: encode(host)}
		}
	}
	state, err := tr.pcg.MarshalBinary()
	if err != nil {
		return fmt.Errorf("imm: save rng: %w", err)
	}
	tj, _ := json.Marshal(tr.Train)
	mj, _ := json.Marshal(tr.Model)
	meta := map[string]string{
		"format":        CheckpointFormat,
		"step":          strconv.Itoa(tr.Step),
		"adam_step":     strconv.Itoa(tr.Opt.Step),
		"skipped":       strconv.Itoa(tr.Skipped),
		"bad_run":       strconv.Itoa(tr.BadRun),
		"rng":           base64.StdEncoding.EncodeToString(state),
		"noise_key":     strconv.FormatUint(tr.noiseKey, 10),
		"noise_counter": strconv.FormatUint(tr.noiseCounter, 10),
		"imm_config":    tr.Cfg.JSON(),
		"train_config":  string(tj),
		"model_config":  string(mj),
	}
	for k, v := range tr.Extra {
		if _, own := meta[k]; own {
			return fmt.Errorf("imm: extra checkpoint metadata %q collides with the trainer's own", k)
		}
		meta[k] = v
	}
	// A checkpoint overwritten in place (immtrain toy) must never sit beside the hash of
	// its predecessor: a kill between the two renames would leave a good file that fails
	// its check. So the old hash goes first; a file without a hash is still checked for
	// structure by Load and Verify.
	if err := os.Remove(SumPath(path)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("imm: write checkpoint %s: remove the previous hash: %w", path, err)
	}
	sum, err := safetensors.WriteFile(path, tensors, meta)
	if err != nil {
		return fmt.Errorf("imm: write checkpoint %s: %w", path, err)
	}
	if saveHook != nil {
		if err := saveHook(); err != nil {
			return err
		}
	}
	if err := writeSum(path, sum); err != nil {
		return fmt.Errorf("imm: write checkpoint hash %s: %w", path, err)
	}
	return nil
}

// saveHook, when set (tests), runs between the checkpoint's rename and its hash's; an
// error stops Save there, as a kill would.
var saveHook func() error

// SumPath is the file holding the sha256 of the checkpoint at path.
func SumPath(path string) string { return path + ".sha256" }

func writeSum(path, sum string) error {
	tmp := SumPath(path) + ".tmp"
	if err := os.WriteFile(tmp, []byte(sum+"  "+filepath.Base(path)+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, SumPath(path))
}

// checkSum compares raw with the hash recorded next to path, when there is one.
func checkSum(path string, raw []byte) error {
	rec, err := os.ReadFile(SumPath(path))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w %s: read its hash: %v", ErrCheckpoint, path, err)
	}
	f := strings.Fields(string(rec))
	got := sha256.Sum256(raw)
	if len(f) == 0 || f[0] != hex.EncodeToString(got[:]) {
		want := "(empty)"
		if len(f) > 0 {
			want = f[0]
		}
		return fmt.Errorf("%w %s: sha256 %s does not match the recorded %s (file changed or corrupted)", ErrCheckpoint, path, hex.EncodeToString(got[:]), want)
	}
	return nil
}

// Verify checks the checkpoint at path without loading it into a trainer: its recorded
// sha256 (when PATH.sha256 exists), the safetensors structure and the format tag.
func Verify(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w %s: %v", ErrCheckpoint, path, err)
	}
	_, err = decodeCheckpoint(path, raw)
	return err
}

func decodeCheckpoint(path string, raw []byte) (*safetensors.File, error) {
	if err := checkSum(path, raw); err != nil {
		return nil, err
	}
	st, err := safetensors.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrCheckpoint, path, err)
	}
	if st.Metadata["format"] != CheckpointFormat {
		return nil, fmt.Errorf("%w %s: format %q, want %q", ErrCheckpoint, path, st.Metadata["format"], CheckpointFormat)
	}
	return st, nil
}

// MaxLoadBatchElems bounds Batch x Dim (train_config's batch times the particle dimension)
// of a checkpoint that Load accepts: the trainer's two batch buffers, of that many
// elements each, are the only memory Load allocates that the file's tensors do not
// account for. 2^28 elements is 1 GiB per buffer in float32; a batch of 4096 particles
// of 32x32x3 pixels is 2^23.6, and this repository's commands default to batches of at
// most 512.
const MaxLoadBatchElems = 1 << 28

// checkpointGroups are the tensor name prefixes of a checkpoint, one tensor per parameter
// each, in the order of Trainer.groups.
var checkpointGroups = []string{"model.", "ema.", "adam_m.", "adam_v."}

// checkTensors compares the tensors of st (decoded from a file of fileBytes bytes) with the
// parameters that mc implies for a trainer of element type T, without allocating the
// model: a dry run of its constructor (nn.Shapes) lists the parameters, and each one must
// be present in every group with T's dtype and exactly its shape, and no other tensor may
// be. A file of B bytes holds at most B / (4 x element size) parameters (each is stored
// four times, and safetensors.Decode has checked that every tensor's bytes lie inside the
// file and do not overlap), so the dry run stops at the first parameter beyond that bound
// or not in the file: its work and memory follow the file, not the config.
func checkTensors[T kernels.Float](path string, st *safetensors.File, fileBytes int, mc ModelConfig) error {
	dt := dtypeOf[T]()
	limit := fileBytes / (len(checkpointGroups) * dt.Size())
	total := 0
	params, err := nn.Shapes(func(d kernels.Device[T]) error {
		_, err := NewModel(d, mc, rand.New(rand.NewPCG(0, 0)))
		return err
	}, func(p nn.ParamShape) error {
		if n := p.Size(); n > limit-total {
			return fmt.Errorf("model_config implies more parameters than the file's %d bytes can hold (at most %d in %s): %d up to and including %s %v",
				fileBytes, limit, dt, uint64(total)+uint64(n), p.Name, p.Shape)
		}
		total += p.Size()
		for _, g := range checkpointGroups {
			name := g + p.Name
			v, ok := st.Tensors[name]
			if !ok {
				return fmt.Errorf("missing tensor %s (%s %v, implied by model_config)", name, dt, p.Shape)
			}
			if v.DType != dt || !slices.Equal(v.Shape, p.Shape) {
				return fmt.Errorf("tensor %s is %s %v, want %s %v (model_config and a %s trainer)", name, v.DType, v.Shape, dt, p.Shape, dt)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w %s: %v", ErrCheckpoint, path, err)
	}
	if len(st.Tensors) != len(checkpointGroups)*len(params) {
		want := map[string]bool{}
		for _, p := range params {
			for _, g := range checkpointGroups {
				want[g+p.Name] = true
			}
		}
		names := slices.Sorted(maps.Keys(st.Tensors))
		for _, name := range names {
			if !want[name] {
				return fmt.Errorf("%w %s: unexpected tensor %s: model_config implies %d parameters (%d elements, %d tensors), the file holds %d tensors",
					ErrCheckpoint, path, name, len(params), total, len(want), len(names))
			}
		}
	}
	return nil
}

// particleElems is Batch x Dim of tc and mc in float64, which cannot overflow.
func particleElems(tc TrainConfig, mc ModelConfig) float64 {
	var dim float64
	switch {
	case mc.MLP != nil:
		dim = float64(mc.MLP.Dim)
	case mc.DiT != nil:
		dim = float64(mc.DiT.Channels) * float64(mc.DiT.Height) * float64(mc.DiT.WidthPx)
	case mc.Multimodal != nil:
		for _, s := range mc.Multimodal.Segments {
			dim += float64(s.Tokens) * float64(s.Features)
		}
	}
	return float64(tc.Batch) * dim
}

// Load reads a checkpoint written by Save into a new Trainer on d.
//
// Load checks the file against its own configs before it allocates anything beyond the
// file's bytes: every parameter that model_config implies (listed by a dry run of the
// backbone's constructor, see checkTensors) must be stored as model.NAME, ema.NAME,
// adam_m.NAME and adam_v.NAME with the trainer's dtype (F32 for float32, F64 for float64)
// and exactly the parameter's shape, and the file may hold no other tensor; a config
// cannot describe more parameters than the file's bytes hold. train_config's Batch x Dim
// must be at most MaxLoadBatchElems. The model, EMA and Adam moments then take about 1.25
// times the file's tensor bytes (weights and gradients, two moments and the EMA: five
// copies of what the file stores four times). Every refusal wraps ErrCheckpoint and names
// the file and, for a tensor mismatch, the first offending tensor in the constructor's
// registration order.
func Load[T kernels.Float](d kernels.Device[T], path string) (*Trainer[T], error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("imm: read checkpoint: %w", err)
	}
	st, err := decodeCheckpoint(path, raw)
	if err != nil {
		return nil, err
	}
	meta := st.Metadata
	var cfg Config
	var tc TrainConfig
	for k, v := range map[string]any{"imm_config": &cfg, "train_config": &tc} {
		if err := json.Unmarshal([]byte(meta[k]), v); err != nil {
			return nil, fmt.Errorf("%w %s: %s: %v", ErrCheckpoint, path, k, err)
		}
	}
	mc, err := ParseModelConfig([]byte(meta["model_config"]))
	if err != nil {
		return nil, fmt.Errorf("%w %s: model_config: %v", ErrCheckpoint, path, err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w %s: imm_config: %v", ErrCheckpoint, path, err)
	}
	if err := tc.Validate(cfg); err != nil {
		return nil, fmt.Errorf("%w %s: train_config: %v", ErrCheckpoint, path, err)
	}
	if err := checkTensors[T](path, st, len(raw), mc); err != nil {
		return nil, err
	}
	if n := particleElems(tc, mc); n > MaxLoadBatchElems {
		return nil, fmt.Errorf("%w %s: train_config batch %d x particle dimension = %.0f elements per batch buffer, above the %d that Load accepts (MaxLoadBatchElems)",
			ErrCheckpoint, path, tc.Batch, n, MaxLoadBatchElems)
	}
	tr, err := NewModelTrainer(d, cfg, tc, mc)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrCheckpoint, path, err)
	}
	own := map[string]bool{"format": true, "step": true, "adam_step": true, "skipped": true, "bad_run": true, "rng": true,
		"noise_key": true, "noise_counter": true, "imm_config": true, "train_config": true, "model_config": true}
	for k, v := range meta {
		if !own[k] {
			tr.Extra[k] = v
		}
	}
	for k, p := range map[string]*int{"skipped": &tr.Skipped, "bad_run": &tr.BadRun} {
		if v, ok := meta[k]; ok {
			if *p, err = strconv.Atoi(v); err != nil {
				return nil, fmt.Errorf("%w %s: %s: %v", ErrCheckpoint, path, k, err)
			}
		}
	}
	ints := map[string]*uint64{"noise_key": &tr.noiseKey, "noise_counter": &tr.noiseCounter}
	for k, p := range ints {
		if *p, err = strconv.ParseUint(meta[k], 10, 64); err != nil {
			return nil, fmt.Errorf("%w %s: %s: %v", ErrCheckpoint, path, k, err)
		}
	}
	if tr.Step, err = strconv.Atoi(meta["step"]); err != nil {
		return nil, fmt.Errorf("%w %s: step: %v", ErrCheckpoint, path, err)
	}
	if tr.Opt.Step, err = strconv.Atoi(meta["adam_step"]); err != nil {
		return nil, fmt.Errorf("%w %s: adam_step: %v", ErrCheckpoint, path, err)
	}
	state, err := base64.StdEncoding.DecodeString(meta["rng"])
	if err == nil {
		err = tr.pcg.UnmarshalBinary(state)
	}
	if err != nil {
		return nil, fmt.Errorf("%w %s: rng: %v", ErrCheckpoint, path, err)
	}
	for _, g := range tr.groups() {
		for i, p := range tr.Net.Reg.Params {
			name := g.prefix + p.Name
			v := st.Tensors[name] // present with this dtype and shape: checkTensors
			host := make([]T, p.Size())
			decode(v.Data, host)
			tr.Dev.Write(g.bufs(i, p), host)
		}
	}
	return tr, nil
}
