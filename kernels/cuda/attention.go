package cuda

import "github.com/immkit/immkit/kernels"

// Attention is kernels.Device.Attention: batched GEMMs and the softmax kernel
// (kernels.AttentionOps).
func (d *Device) Attention(o, ws, qkv kernels.Buffer, batch, l, heads, hd int) {
	kernels.AttentionOps[float32](d, o, ws, qkv, batch, l, heads, hd)
}

// AttentionGrad is kernels.Device.AttentionGrad (kernels.AttentionGradOps).
func (d *Device) AttentionGrad(dqkv, do, o, ws, qkv kernels.Buffer, batch, l, heads, hd int) {
	kernels.AttentionGradOps[float32](d, dqkv, do, ws, qkv, batch, l, heads, hd)
}

// AttentionWorkspace is kernels.Device.AttentionWorkspace.
func (d *Device) AttentionWorkspace(batch, l, heads, hd int) int {
	return kernels.AttentionOpsWorkspace(batch, l, heads)
}
