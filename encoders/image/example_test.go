package image_test

import (
	"bytes"
	"fmt"
	stdimage "image"
	"image/color"
	"image/jpeg"

	"github.com/immkit/immkit/encoders/image"
)

// Decode a 640×480 JPEG and fit it to 64×64 (center-crop, Lanczos), then turn it into a
// pixels latent and back.
func ExamplePipeline() {
	src := stdimage.NewRGBA(stdimage.Rect(0, 0, 640, 480))
	for y := range 480 {
		for x := range 640 {
			src.Set(x, y, color.RGBA{uint8(x / 3), uint8(y / 2), 90, 255})
		}
	}
	var buf bytes.Buffer
	_ = jpeg.Encode(&buf, src, &jpeg.Options{Quality: 90})

	p := image.Pipeline{Resizer: image.Resizer{Width: 64, Height: 64, Mode: image.CenterCrop}}
	img, info, err := p.Load(buf.Bytes())
	if err != nil {
		fmt.Println(err)
		return
	}
	lat := image.Pixels{}.Encode(img)
	back, _ := image.Pixels{}.Decode(lat)
	fmt.Printf("%s %dx%d, DCT reduction 1/%d, output %v, latent %s, round trip equal: %v\n",
		info.Format, info.Width, info.Height, info.Scale, img.Rect.Size(), lat.Shape(), bytes.Equal(back.Pix, img.Pix))
	// Output: jpeg 640x480, DCT reduction 1/4, output (64,64), latent 3,64,64, round trip equal: true
}
