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

// winogradConv enables Winograd for float32 3×3 stride-1 convolutions: F(2×2, 3×3)
// (kernels.SconvWinograd3x3) for the forward convolution and its input gradient, which the VJP
// writes as another stride-1 3×3 convolution with the reversed kernel, and F(3×3, 2×2)
// (kernels.SconvWinograd3x3Filter) for the kernel gradient. Tests turn it off to compare with the
// GEMM paths.
var winogradConv = true

// winogradMinChannels is the fewest input and output channels for which Winograd is used.
// Measured per CPU-second against SconvIm2col on 32×32 images at batch 64: 1.6× faster at 16→16
// channels, 2.4× at 32→32 and 64→64; with 3 input channels the first layer stays on im2col. The
// kernel gradient against SconvIm2colT: 1.8× at 16→16, 1.8–2.3× from 32→64 to 256→256, and no
// gain at 3→32.
const winogradMinChannels = 8

// winogradGeometry returns the kernels geometry and the kernel's element strides
// (kh, kw, input channel, output channel) of g when Winograd computes it: a 2-D convolution with a
// 3×3 window, unit strides and dilations, no groups, channels-last input and output
// ([batch, h, w, channels]) and at least winogradMinChannels input and output channels. The
// kernel may have any axis order; it is read in place.
func winogradGeometry(g convGeom) (kernels.ConvGeometry, [4]int, bool) {
	ax := g.p.axes
	if !winogradConv || len(g.inSp) != 2 || g.groups != 1 || g.p.batchGroups != 1 || g.bOut != g.bIn ||
		g.cIn < winogradMinChannels || g.cOut < winogradMinChannels ||
		ax.InputBatch != 0 || ax.InputChannels != 3 || ax.OutputBatch != 0 || ax.OutputChannels != 3 {
		return kernels.ConvGeometry{}, [4]int{}, false
	}
	for a := 0; a < 2; a++ {
		if ax.InputSpatial[a] != a+1 || ax.OutputSpatial[a] != a+1 || g.kSp[a] != 3 ||
			g.p.strides[a] != 1 || g.p.kernelDil[a] != 1 || g.p.inputDil[a] != 1 {
			return kernels.ConvGeometry{}, [4]int{}, false
		}
	}
	kg := kernels.ConvGeometry{Batch: g.bIn, InH: g.inSp[0], InW: g.inSp[1], InC: g.cIn, KH: 3, KW: 3,
		OutH: g.outSp[0], OutW: g.outSp[1], StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1,
		InDilationH: 1, InDilationW: 1, PadTop: g.p.paddings[0][0], PadLeft: g.p.paddings[1][0]}
	kStr := stridesOf(g.kDims)
	wStr := [4]int{kStr[ax.KernelSpatial[0]], kStr[ax.KernelSpatial[1]], kStr[ax.KernelInputChannels], kStr[ax.KernelOutputChannels]}
	return kg, wStr, kg.WinogradApplies()
}

// convWinograd computes g's float32 convolution with Winograd F(2×2, 3×3) and reports true, or
// reports false, computing nothing, when winogradGeometry rejects g.
func convWinograd(g convGeom, out, in, kernel []float32) bool {
	kg, wStr, ok := winogradGeometry(g)
	if !ok {
		return false
	}
	return kernels.SconvWinograd3x3(kg, g.cOut, in, kernel, wStr, out) == nil
}

// convWinogradFilter computes the float32 kernel gradient dw [3, 3, InC, OutC] of the forward
// convolution fg (see filterGradForward) from its input x [N, H, W, InC] and output gradient
// dy [N, OH, OW, OutC] with Winograd F(3×3, 2×2) and reports true, or reports false, computing
// nothing, when winogradGeometry rejects fg.
func convWinogradFilter(fg convGeom, x, dy, dw []float32) bool {
	kg, _, ok := winogradGeometry(fg)
	if !ok {
		return false
	}
	return kernels.SconvWinograd3x3Filter(kg, fg.cOut, x, dy, dw) == nil
}
