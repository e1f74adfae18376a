package imm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/immkit/immkit/imm/nn"
	"github.com/immkit/immkit/kernels"
)

// ModelConfig selects the backbone G of a Trainer: exactly one field is set. It is saved
// as JSON in checkpoints ({"mlp": {...}}, {"dit": {...}} or {"multimodal": {...}}).
type ModelConfig struct {
	MLP        *nn.MLPConfig        `json:"mlp,omitempty"`
	DiT        *nn.DiTConfig        `json:"dit,omitempty"`
	Multimodal *nn.MultimodalConfig `json:"multimodal,omitempty"`
}

// MLPModel wraps an MLP config.
func MLPModel(c nn.MLPConfig) ModelConfig { return ModelConfig{MLP: &c} }

// Kind is "mlp", "dit", "multimodal", or "" when no backbone is set.
func (m ModelConfig) Kind() string {
	switch {
	case m.MLP != nil:
		return "mlp"
	case m.DiT != nil:
		return "dit"
	case m.Multimodal != nil:
		return "multimodal"
	}
	return ""
}

// Validate reports the first problem with m.
func (m ModelConfig) Validate() error {
	n := 0
	for _, set := range []bool{m.MLP != nil, m.DiT != nil, m.Multimodal != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("imm: model config must set exactly one of mlp, dit, multimodal (%d set)", n)
	}
	switch {
	case m.MLP != nil:
		return m.MLP.Validate()
	case m.DiT != nil:
		return m.DiT.Validate()
	}
	return m.Multimodal.Validate()
}

// Dim is the particle dimension D.
func (m ModelConfig) Dim() int {
	switch {
	case m.MLP != nil:
		return m.MLP.Dim
	case m.DiT != nil:
		return m.DiT.Dim()
	case m.Multimodal != nil:
		return m.Multimodal.Dim()
	}
	return 0
}

// Classes is the label vocabulary (0 = unconditional); the null class has id Classes.
func (m ModelConfig) Classes() int {
	switch {
	case m.MLP != nil:
		return m.MLP.Classes
	case m.DiT != nil:
		return m.DiT.Classes
	case m.Multimodal != nil:
		return m.Multimodal.Classes
	}
	return 0
}

// Equal reports whether two configs describe the same backbone.
func (m ModelConfig) Equal(o ModelConfig) bool {
	a, _ := json.Marshal(m)
	b, _ := json.Marshal(o)
	return bytes.Equal(a, b)
}

// ParseModelConfig decodes the JSON of a ModelConfig. A bare nn.MLPConfig object (the
// model_config of checkpoints written before the backbone union) is read as {"mlp": ...}.
func ParseModelConfig(b []byte) (ModelConfig, error) {
	var m ModelConfig
	if err := json.Unmarshal(b, &m); err != nil {
		return m, err
	}
	if m.Kind() == "" {
		var c nn.MLPConfig
		if err := json.Unmarshal(b, &c); err != nil || c.Arch == "" {
			return m, errors.New("no mlp, dit or multimodal backbone")
		}
		m.MLP = &c
	}
	return m, m.Validate()
}

// Model is a backbone with its parameters: the Network the Objective calls, and the
// Registry the optimiser, EMA and checkpoints work on.
type Model[T kernels.Float] struct {
	Network
	Reg *nn.Registry[T]
}

// NewModel builds the backbone of m on d with weights drawn from rng.
func NewModel[T kernels.Float](d kernels.Device[T], m ModelConfig, rng *rand.Rand) (*Model[T], error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	switch {
	case m.MLP != nil:
		net, err := nn.NewMLP(d, *m.MLP, rng)
		if err != nil {
			return nil, err
		}
		return &Model[T]{Network: net, Reg: net.Reg}, nil
	case m.DiT != nil:
		net, err := nn.NewDiT(d, *m.DiT, rng)
		if err != nil {
			return nil, err
		}
		return &Model[T]{Network: net, Reg: net.Reg}, nil
	}
	net, err := nn.NewMultimodal(d, *m.Multimodal, rng)
	if err != nil {
		return nil, err
	}
	return &Model[T]{Network: net, Reg: net.Reg}, nil
}
