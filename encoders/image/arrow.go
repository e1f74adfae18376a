package image

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/float16"
)

// LatentField is the Arrow field of an encoded-samples table (docs: DESIGN §2) holding
// latents of shape C×H×W: fixed_size_list<float16 or float32>[C*H*W] with field metadata
// shape=C,H,W and encoder=name@version. Elements are in Latent.Data order.
func LatentField(name string, c, h, w int, encoder string, half bool) arrow.Field {
	var elem arrow.DataType = arrow.PrimitiveTypes.Float32
	if half {
		elem = arrow.FixedWidthTypes.Float16
	}
	return arrow.Field{
		Name: name,
		Type: arrow.FixedSizeListOf(int32(c*h*w), elem),
		Metadata: arrow.NewMetadata([]string{"shape", "encoder"},
			[]string{fmt.Sprintf("%d,%d,%d", c, h, w), encoder}),
	}
}

// AppendLatent appends one latent to a builder of a LatentField column, converting to
// float16 (round to nearest even) when the column is half precision.
func AppendLatent(b *array.FixedSizeListBuilder, l Latent) error {
	if err := l.check(); err != nil {
		return err
	}
	if n := int(b.Type().(*arrow.FixedSizeListType).Len()); n != len(l.Data) {
		return fmt.Errorf("image: latent %s has %d values, column holds %d", l.Shape(), len(l.Data), n)
	}
	b.Append(true)
	switch vb := b.ValueBuilder().(type) {
	case *array.Float32Builder:
		vb.AppendValues(l.Data, nil)
	case *array.Float16Builder:
		for _, v := range l.Data {
			vb.Append(float16.New(v))
		}
	default:
		return fmt.Errorf("image: latent column of %s", b.Type())
	}
	return nil
}
