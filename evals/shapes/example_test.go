package shapes_test

import (
	"fmt"
	"math"

	"github.com/immkit/immkit/evals/shapes"
)

func ExampleFromCaption() {
	fmt.Printf("%+v\n", shapes.FromCaption("a small red triangle in the upper left"))
	fmt.Printf("%+v\n", shapes.FromCaption("A large red green circle"))
	// Output:
	// {Color:red Shape:triangle Size:small Position:upper left}
	// {Color: Shape:circle Size:large Position:}
}

func ExampleFromAudio() {
	// Three notes of 311.13 Hz (blue), amplitude 0.7 (large), each over 10%..80% of its
	// third of a one-second clip.
	const rate = 16000
	wave := make([]float32, rate)
	for i := range wave {
		t := float64(i) / rate
		if slot := math.Mod(t*3, 1); slot >= 0.1 && slot < 0.8 {
			wave[i] = float32(0.7 * math.Sin(2*math.Pi*311.13*t))
		}
	}
	fmt.Printf("%+v\n", shapes.FromAudio(wave, rate))
	// Output:
	// {Color:blue Shape:triangle Size:large Position:}
}

func ExampleAgreement() {
	red := shapes.Attr{Color: "red", Shape: "circle"}
	samples := []shapes.Sample{
		{Image: red, Caption: red, Audio: red, Label: "red-circle"},
		{Image: red, Caption: shapes.Attr{Color: "blue", Shape: "circle"}, Audio: shapes.Attr{Shape: "circle"}, Label: "blue-circle"},
	}
	for _, p := range shapes.Agreement(samples).Pairs {
		if p.Attribute == shapes.AttrColor {
			fmt.Printf("%s-%s: %d/%d agree (rate %.2f, chance %.2f, uniform %.3f)\n", p.A, p.B, p.Agree, p.N, p.Rate, p.Chance, p.Uniform)
		}
	}
	// Output:
	// image-caption: 1/2 agree (rate 0.50, chance 0.50, uniform 0.125)
	// image-audio: 1/2 agree (rate 0.50, chance 0.50, uniform 0.125)
	// caption-audio: 1/2 agree (rate 0.50, chance 0.25, uniform 0.125)
	// image-label: 1/2 agree (rate 0.50, chance 0.50, uniform 0.125)
	// caption-label: 2/2 agree (rate 1.00, chance 0.50, uniform 0.125)
	// audio-label: 1/2 agree (rate 0.50, chance 0.25, uniform 0.125)
}
