package cpu

import (
	"github.com/ifa-toolkit/ifa/internal/cpu/kernels"
)

// directConv enables the float32 convolutions that pack their GEMM operands straight from the
// channels-last input (kernels.SconvIm2col and kernels.SconvIm2colT) instead of building im2col
// blocks first. Tests turn it off to compare with the im2col-block path.
var directConv = true

// directMinChannels is the fewest input channels for which the forward convolution packs directly.
const directMinChannels = 16

// directGeometry returns the kernels geometry of a 1-D or 2-D convolution g over a canonical
// [batch, spatial..., channels] input, or false when g has channel or batch groups, more than two
// spatial axes, or a batch that changes.
func directGeometry(g convGeom) (kernels.ConvGeometry, bool) {
	sd := len(g.inSp)
	if !directConv || g.groups != 1 || g.p.batchGroups != 1 || g.bOut != g.bIn || sd < 1 || sd > 2 {
		return kernels.ConvGeometry{}, false
	}
	p := g.p
	kg := kernels.ConvGeometry{Batch: g.bIn, InC: g.cIn,
		InH: 1, KH: 1, OutH: 1, StrideH: 1, DilationH: 1, InDilationH: 1,
		InW: g.inSp[sd-1], KW: g.kSp[sd-1], OutW: g.outSp[sd-1],
		StrideW: p.strides[sd-1], DilationW: p.kernelDil[sd-1], InDilationW: p.inputDil[sd-1],
		PadLeft: p.paddings[sd-1][0]}
	if sd == 2 {
		kg.InH, kg.KH, kg.OutH = g.inSp[0], g.kSp[0], g.outSp[0]
		kg.StrideH, kg.DilationH, kg.InDilationH, kg.PadTop = p.strides[0], p.kernelDil[0], p.inputDil[0], p.paddings[0][0]
	}
	return kg, kg.Validate() == nil
}
