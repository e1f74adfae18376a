package nn

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/immkit/immkit/kernels"
	"github.com/immkit/immkit/kernels/cpu"
)

// builders constructs each backbone kind with a small config on d.
func builders() map[string]func(d kernels.Device[float32], rng *rand.Rand) (*Registry[float32], error) {
	type build = func(d kernels.Device[float32], rng *rand.Rand) (*Registry[float32], error)
	mlp := func(c MLPConfig) build {
		return func(d kernels.Device[float32], rng *rand.Rand) (*Registry[float32], error) {
			m, err := NewMLP(d, c, rng)
			if err != nil {
				return nil, err
			}
			return m.Reg, nil
		}
	}
	dit := func(c DiTConfig) build {
		return func(d kernels.Device[float32], rng *rand.Rand) (*Registry[float32], error) {
			m, err := NewDiT(d, c, rng)
			if err != nil {
				return nil, err
			}
			return m.Reg, nil
		}
	}
	mm := func(c MultimodalConfig) build {
		return func(d kernels.Device[float32], rng *rand.Rand) (*Registry[float32], error) {
			m, err := NewMultimodal(d, c, rng)
			if err != nil {
				return nil, err
			}
			return m.Reg, nil
		}
	}
	return map[string]build{
		"mlp":          mlp(MLPConfig{Arch: "mlp", Dim: 3, Width: 8, Depth: 2, Freq: 4}),
		"mlp-labels":   mlp(MLPConfig{Arch: "mlp", Dim: 3, Width: 8, Depth: 0, Freq: 4, Classes: 5}),
		"resmlp":       mlp(MLPConfig{Arch: "resmlp", Dim: 2, Width: 6, Depth: 3, Freq: 2, Classes: 2}),
		"dit":          dit(DiTConfig{Channels: 2, Height: 4, WidthPx: 6, Patch: 2, Width: 8, Depth: 2, Heads: 2, MLPRatio: 2, Freq: 4, Classes: 3}),
		"dit-defaults": dit(DiTConfig{Channels: 1, Height: 2, WidthPx: 2, Patch: 1, Width: 4, Depth: 1, Heads: 1}),
		"multimodal": mm(MultimodalConfig{Segments: []Segment{{"image", 4, 3}, {"audio", 2, 5}, {"text", 3, 2}},
			Width: 8, Depth: 2, Heads: 2, MLPRatio: 2, Freq: 4, Classes: 2}),
	}
}

// A dry run registers the same parameters, in the same order and with the same shapes, as
// a real build of every backbone, draws nothing from the generator and allocates nothing.
func TestShapesMatchesBuild(t *testing.T) {
	for name, build := range builders() {
		t.Run(name, func(t *testing.T) {
			reg, err := build(cpu.New[float32](1), rand.New(rand.NewPCG(1, 2)))
			if err != nil {
				t.Fatal(err)
			}
			var want []ParamShape
			for _, p := range reg.Params {
				want = append(want, ParamShape{p.Name, p.Shape})
			}
			rng := rand.New(rand.NewPCG(7, 8))
			var checked []string
			got, err := Shapes(func(d kernels.Device[float32]) error {
				_, err := build(d, rng)
				return err
			}, func(p ParamShape) error {
				checked = append(checked, p.Name)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("dry run registered\n%v\nthe build registered\n%v", got, want)
			}
			if len(checked) != len(want) {
				t.Fatalf("check saw %d parameters, want %d", len(checked), len(want))
			}
			if a, b := rng.Uint64(), rand.New(rand.NewPCG(7, 8)).Uint64(); a != b {
				t.Fatal("the dry run drew from the generator")
			}
			total := 0
			for _, p := range got {
				total += p.Size()
			}
			if total != reg.Count() {
				t.Fatalf("dry run sizes sum to %d, the build's Count is %d", total, reg.Count())
			}
		})
	}
}

// check stops a dry run at the parameter it refuses, with that error, and a huge config
// costs nothing before it: width 2^30 and depth 2^40 (over 2^100 parameters) under a
// check that accepts three parameters.
func TestShapesStopsAtCheck(t *testing.T) {
	cfg := MLPConfig{Arch: "resmlp", Dim: 2, Width: 1 << 30, Depth: 1 << 40, Freq: 2}
	stop := errors.New("enough")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	got, err := Shapes(func(d kernels.Device[float32]) error {
		_, err := NewMLP(d, cfg, rand.New(rand.NewPCG(1, 1)))
		return err
	}, func(p ParamShape) error {
		if p.Name == "temb.out.weight" {
			return fmt.Errorf("%w at %s %v", stop, p.Name, p.Shape)
		}
		return nil
	})
	runtime.ReadMemStats(&after)
	if !errors.Is(err, stop) {
		t.Fatalf("err = %v, want the check's error", err)
	}
	want := []ParamShape{{"temb.s.weight", []int{1 << 30, 2}}, {"temb.s.bias", []int{1 << 30}}, {"temb.t.weight", []int{1 << 30, 2}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("params before the stop: %v, want %v", got, want)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Fatalf("the dry run allocated %d bytes", grew)
	}
}

// A shape whose size does not fit an int, or with a dimension below 1, ends the dry run
// with an error naming the parameter, not a panic or a wrapped-around size.
func TestShapesRejectsBadShapes(t *testing.T) {
	for _, tc := range []struct {
		cfg  MLPConfig
		name string
	}{
		{MLPConfig{Arch: "mlp", Dim: 1 << 40, Width: 1 << 40, Depth: 1, Freq: 2}, "in.x.weight"},
		{MLPConfig{Arch: "resmlp", Dim: 2, Width: 1 << 62, Depth: 1, Freq: 2}, "temb.s.weight"},
		{MLPConfig{Arch: "mlp", Dim: 2, Width: 4, Depth: 1, Freq: 2, Classes: 1<<63 - 1}, "label.table"},
	} {
		got, err := Shapes(func(d kernels.Device[float64]) error {
			_, err := NewMLP(d, tc.cfg, rand.New(rand.NewPCG(1, 1)))
			return err
		}, nil)
		if err == nil {
			t.Fatalf("%+v: accepted, params %v", tc.cfg, got)
		}
		if want := "parameter " + tc.name + " has shape"; !strings.Contains(err.Error(), want) {
			t.Fatalf("%+v: err = %v, want it to name %s", tc.cfg, err, tc.name)
		}
	}
	// A config the constructor refuses returns the constructor's error.
	if _, err := Shapes(func(d kernels.Device[float64]) error {
		_, err := NewMLP(d, MLPConfig{Arch: "mlp", Dim: 2, Width: 0, Depth: 1, Freq: 2}, nil)
		return err
	}, nil); err == nil {
		t.Fatal("width 0 accepted")
	}
}
