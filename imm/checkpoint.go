package imm

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
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
		{"model.", func(_ int, p *nn.Param) kernels.Buffer { return p.W }},
		{"ema.", func(i int, _ *nn.Param) kernels.Buffer { return tr.EMA.Avg[i] }},
		{"adam_m.", func(i int, _ *nn.Param) kernels.Buffer { return tr.Opt.M[i] }},
		{"adam_v.", func(i int, _ *nn.Param) kernels.Buffer { return tr.Opt.V[i] }},
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
	sum, err := safetensors.WriteFile(path, tensors, meta)
	if err != nil {
		return fmt.Errorf("imm: write checkpoint %s: %w", path, err)
	}
	if err := writeSum(path, sum); err != nil {
		return fmt.Errorf("imm: write checkpoint hash %s: %w", path, err)
	}
	return nil
}

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

// Load reads a checkpoint written by Save into a new Trainer on d.
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
			v, ok := st.Tensors[name]
			if !ok {
				return nil, fmt.Errorf("%w %s: missing tensor %s", ErrCheckpoint, path, name)
			}
			if v.DType != dtypeOf[T]() || v.Elems() != p.Size() {
				return nil, fmt.Errorf("%w %s: tensor %s is %s %v, want %s %v", ErrCheckpoint, path, name, v.DType, v.Shape, dtypeOf[T](), p.Shape)
			}
			host := make([]T, p.Size())
			decode(v.Data, host)
			tr.Dev.Write(g.bufs(i, p), host)
		}
	}
	return tr, nil
}
