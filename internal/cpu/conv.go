package cpu

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/shapeinference"

	"github.com/ifa-toolkit/ifa/internal/cpu/kernels"
)

type convParams struct {
	axes                         backends.ConvolveAxesConfig
	strides, inputDil, kernelDil []int
	paddings                     [][2]int
	featureGroups, batchGroups   int
}

// ConvGeneral implements backends.Builder; nil strides, paddings or dilations mean 1, 0 and 1.
func (b *Builder) ConvGeneral(input, kernel backends.Op, axes backends.ConvolveAxesConfig, strides []int,
	paddings [][2]int, inputDilations, kernelDilations []int, channelGroupCount, batchGroupCount int) (backends.Op, error) {
	ns, err := b.nodes2("ConvGeneral", input, kernel)
	if err != nil {
		return nil, err
	}
	if ns[0].shape.DType != ns[1].shape.DType || !ns[0].shape.DType.IsFloat() {
		return nil, fmt.Errorf("cpu: ConvGeneral(%s, %s): input and kernel must share a float dtype", ns[0].shape, ns[1].shape)
	}
	sr := ns[0].shape.Rank() - 2
	if channelGroupCount < 1 {
		channelGroupCount = 1
	}
	if batchGroupCount < 1 {
		batchGroupCount = 1
	}
	p := convParams{axes: axes.Clone(), strides: orOnes(strides, sr), inputDil: orOnes(inputDilations, sr),
		kernelDil: orOnes(kernelDilations, sr), paddings: orZeroPads(paddings, sr),
		featureGroups: channelGroupCount, batchGroups: batchGroupCount}
	shape, err := shapeinference.ConvGeneralOp(ns[0].shape, ns[1].shape, axes, p.strides, p.paddings, p.inputDil,
		p.kernelDil, channelGroupCount, batchGroupCount)
	if err != nil {
		return nil, fmt.Errorf("cpu: %w", err)
	}
	return b.add(backends.OpTypeConvGeneral, shape, p, ns...), nil
}

// convGeom holds the sizes of a ConvGeneral, read through its axes configuration.
type convGeom struct {
	p                       convParams
	inDims, kDims, outDims  []int
	bIn, cIn, bOut, cOut    int
	inSp, kSp, outSp        []int
	groups, cInG, cOutG     int
	inSpSize, kSize, outSpN int
}

func newConvGeom(p convParams, inDims, kDims, outDims []int) convGeom {
	ax := p.axes
	g := convGeom{p: p, inDims: inDims, kDims: kDims, outDims: outDims,
		bIn: inDims[ax.InputBatch], cIn: inDims[ax.InputChannels],
		bOut: outDims[ax.OutputBatch], cOut: kDims[ax.KernelOutputChannels],
		groups: p.featureGroups, cInG: kDims[ax.KernelInputChannels],
		inSpSize: 1, kSize: 1, outSpN: 1}
	g.cOutG = g.cOut / g.groups
	for i := range ax.InputSpatial {
		g.inSp = append(g.inSp, inDims[ax.InputSpatial[i]])
		g.kSp = append(g.kSp, kDims[ax.KernelSpatial[i]])
		g.outSp = append(g.outSp, outDims[ax.OutputSpatial[i]])
		g.inSpSize *= g.inSp[i]
		g.kSize *= g.kSp[i]
		g.outSpN *= g.outSp[i]
	}
	return g
}

// inputIndex returns the input index on spatial axis a for output index o and kernel index k, or
// -1 when it falls on padding or between input-dilated elements.
func (g convGeom) inputIndex(a, o, k int) int {
	pos := o*g.p.strides[a] - g.p.paddings[a][0] + k*g.p.kernelDil[a]
	d := g.p.inputDil[a]
	if pos < 0 || pos%d != 0 || pos/d >= g.inSp[a] {
		return -1
	}
	return pos / d
}

// offsetTable returns, for every output spatial position (flat) and kernel position (flat), the
// flat spatial offset into a canonical [.., inSp..., ..] input, or -1.
func (g convGeom) offsetTable() []int32 {
	sd := len(g.inSp)
	tab := make([]int32, g.outSpN*g.kSize)
	inSpStr := stridesOf(g.inSp)
	oIdx := make([]int, sd)
	kIdx := make([]int, sd)
	for os := 0; os < g.outSpN; os++ {
		unravelInto(oIdx, os, g.outSp)
		for w := 0; w < g.kSize; w++ {
			unravelInto(kIdx, w, g.kSp)
			off := 0
			for a := 0; a < sd; a++ {
				i := g.inputIndex(a, oIdx[a], kIdx[a])
				if i < 0 {
					off = -1
					break
				}
				off += i * inSpStr[a]
			}
			tab[os*g.kSize+w] = int32(off)
		}
	}
	return tab
}

func execConvGeneral(ex *execState, n *node, ins []*value, _ []bool) (*Buffer, error) {
	p := n.params.(convParams)
	g := newConvGeom(p, ins[0].buf.shape.Dimensions, ins[1].buf.shape.Dimensions, n.shape.Dimensions)
	out := ex.b.newBuffer(n.shape)
	switch x := ins[0].buf.flat.(type) {
	case []float32:
		if p.batchGroups > 1 && isFilterGradLayout(g) {
			convFilterGradGrouped(ex, g, out.flat.([]float32), x, ins[1].buf.flat.([]float32))
		} else if p.batchGroups > 1 {
			convNaive(g, out.flat.([]float32), x, ins[1].buf.flat.([]float32))
		} else if isDepthwiseForm(g) {
			convDepthwise(ex, g, out.flat.([]float32), x, ins[1].buf.flat.([]float32))
		} else if isFilterGradForm(g) {
			convFilterGrad(ex, g, out.flat.([]float32), x, ins[1].buf.flat.([]float32))
		} else if isDilatedConvForm(g) {
			if !ex.b.opts.directConv || !convInputDilated(g, out.flat.([]float32), x, ins[1].buf.flat.([]float32)) {
				convTransposed(ex, g, out.flat.([]float32), x, ins[1].buf.flat.([]float32))
			}
		} else if ex.b.opts.winograd == winoOff || !convWinograd(g, ex.b.opts.winograd, out.flat.([]float32), x, ins[1].buf.flat.([]float32)) {
			convFast(ex, g, out.flat.([]float32), x, ins[1].buf.flat.([]float32))
		}
	case []float64:
		if p.batchGroups > 1 && isFilterGradLayout(g) {
			convFilterGradGrouped(ex, g, out.flat.([]float64), x, ins[1].buf.flat.([]float64))
		} else if p.batchGroups > 1 {
			convNaive(g, out.flat.([]float64), x, ins[1].buf.flat.([]float64))
		} else if isDepthwiseForm(g) {
			convDepthwise(ex, g, out.flat.([]float64), x, ins[1].buf.flat.([]float64))
		} else if isFilterGradForm(g) {
			convFilterGrad(ex, g, out.flat.([]float64), x, ins[1].buf.flat.([]float64))
		} else if isDilatedConvForm(g) {
			convTransposed(ex, g, out.flat.([]float64), x, ins[1].buf.flat.([]float64))
		} else {
			convFast(ex, g, out.flat.([]float64), x, ins[1].buf.flat.([]float64))
		}
	default:
		return nil, fmt.Errorf("ConvGeneral of %T not supported", x)
	}
	return out, nil
}

// patchBudget is the number of elements of one im2col block.
const patchBudget = 1 << 22

// convFast computes the convolution as GEMMs: the input is brought to the canonical layout
// [batch, spatial..., channels], the kernel of each channel group is packed as a
// [kernel positions × group input channels, group output channels] matrix, and blocks of im2col
// rows (output positions × kernel positions × channels, zeros for padding and input dilation) are
// multiplied by it. Large kernels (as in the gradient with respect to the kernel, where the
// "kernel" is the output gradient) are split along the contracting dimension and accumulated.
func convFast[T floatT](ex *execState, g convGeom, out, in, kernel []T) {
	ax := g.p.axes
	sd := len(g.inSp)
	dt := dtypeOfFlat(any(in))
	pool := &ex.b.pool

	// Canonical input.
	canonIn := append(append([]int{g.bIn}, g.inSp...), g.cIn)
	inStr := stridesOf(g.inDims)
	srcStr := []int{inStr[ax.InputBatch]}
	canonical := ax.InputBatch == 0 && ax.InputChannels == sd+1
	for i, a := range ax.InputSpatial {
		srcStr = append(srcStr, inStr[a])
		canonical = canonical && a == i+1
	}
	srcStr = append(srcStr, inStr[ax.InputChannels])
	inC := in
	if !canonical {
		inC = pool.get(dt, len(in)).([]T)
		defer pool.put(dt, inC)
		copyBox(inC, in, box{dims: canonIn, dStr: stridesOf(canonIn), sStr: srcStr})
	}

	// Canonical output.
	canonOut := append(append([]int{g.bOut}, g.outSp...), g.cOut)
	outStr := stridesOf(g.outDims)
	dstStr := []int{outStr[ax.OutputBatch]}
	outCanonical := ax.OutputBatch == 0 && ax.OutputChannels == sd+1
	for i, a := range ax.OutputSpatial {
		dstStr = append(dstStr, outStr[a])
		outCanonical = outCanonical && a == i+1
	}
	dstStr = append(dstStr, outStr[ax.OutputChannels])
	outC := out
	if !outCanonical {
		outC = pool.get(dt, len(out)).([]T)
		defer pool.put(dt, outC)
	}

	M := g.bOut * g.outSpN
	kDim := g.kSize * g.cInG
	kStr := stridesOf(g.kDims)
	wDims := append(append([]int{}, g.kSp...), g.cInG, g.cOutG)
	wSrcStr := make([]int, 0, sd+2)
	for _, a := range ax.KernelSpatial {
		wSrcStr = append(wSrcStr, kStr[a])
	}
	wSrcStr = append(wSrcStr, kStr[ax.KernelInputChannels], kStr[ax.KernelOutputChannels])
	w := pool.get(dt, kDim*g.cOutG).([]T)
	defer pool.put(dt, w)

	// Pointwise convolution on the canonical input: the input is the im2col matrix itself.
	pointwise := g.kSize == 1 && g.groups == 1 && g.bOut == g.bIn
	for a := 0; pointwise && a < sd; a++ {
		pointwise = g.outSp[a] == g.inSp[a] && g.inputIndex(a, 0, 0) == 0 && g.inputIndex(a, 1%g.outSp[a], 0) == 1%g.outSp[a]
	}

	var tab []int32 // im2col offsets, built on first use
	// Blocking: rows of im2col × kernel positions per block.
	ksPer := g.kSize
	if 256*kDim > patchBudget {
		ksPer = max(1, patchBudget/(256*g.cInG))
	}
	rowsPer := max(1, min(M, patchBudget/max(1, ksPer*g.cInG)))
	var patches []T
	getPatches := func() {
		if patches == nil {
			patches = pool.get(dt, rowsPer*ksPer*g.cInG).([]T)
		}
	}
	defer func() {
		if patches != nil {
			pool.put(dt, patches)
		}
	}()
	for grp := 0; grp < g.groups; grp++ {
		copyBox(w, kernel, box{dims: wDims, dStr: stridesOf(wDims), sOff: grp * g.cOutG * kStr[ax.KernelOutputChannels],
			sStr: wSrcStr})
		if pointwise {
			gemm(false, false, M, g.cOutG, g.cIn, inC, g.cIn, w, g.cOutG, 0, outC, g.cOut)
			continue
		}
		// Direct packing copies one channel run per window position: with few channels (the RGB
		// first layer) the im2col blocks measured faster.
		if kg, ok := directGeometry(g); ok && ex.b.opts.directConv && g.cIn >= directMinChannels {
			if x32, ok := any(inC).([]float32); ok {
				err := kernels.SconvIm2col(kg, g.cOut, 1, x32, any(w).([]float32), g.cOut, 0, any(outC).([]float32), g.cOut)
				if err == nil {
					continue
				}
			}
		}
		// With few channels, the im2col rows of one image at a time, read in place by the GEMM
		// (kernels.SconvFewChannels: the blocks path's product and bits, its rows kept in L2).
		if kg, ok := directGeometry(g); ok && ex.b.opts.directConv && g.cIn < directMinChannels {
			if x32, ok := any(inC).([]float32); ok {
				err := kernels.SconvFewChannels(kg, g.cOut, 1, x32, any(w).([]float32), g.cOut, 0, any(outC).([]float32), g.cOut)
				if err == nil {
					continue
				}
			}
		}
		getPatches()
		if tab == nil {
			tab = g.offsetTable()
		}
		for m0 := 0; m0 < M; m0 += rowsPer {
			m1 := min(M, m0+rowsPer)
			for k0 := 0; k0 < g.kSize; k0 += ksPer {
				k1 := min(g.kSize, k0+ksPer)
				width := (k1 - k0) * g.cInG
				buildPatches(g, patches, inC, tab, m0, m1, k0, k1, grp*g.cInG)
				beta := T(0)
				if k0 > 0 {
					beta = 1
				}
				gemm(false, false, m1-m0, g.cOutG, width, patches, width, w[k0*g.cInG*g.cOutG:], g.cOutG, beta,
					outC[m0*g.cOut+grp*g.cOutG:], g.cOut)
			}
		}
	}
	if !outCanonical {
		copyBox(out, outC, box{dims: canonOut, dStr: dstStr, sStr: stridesOf(canonOut)})
	}
}

// buildPatches writes im2col rows [m0, m1) for kernel positions [k0, k1) and the channels
// [c0, c0+cInG) of the canonical input into patches (row stride (k1-k0)·cInG).
func buildPatches[T floatT](g convGeom, patches, inC []T, tab []int32, m0, m1, k0, k1, c0 int) {
	cg := g.cInG
	width := (k1 - k0) * cg
	parallelFor(m1-m0, max(1, 8192/max(1, width)), func(s, e int) {
		for r := s; r < e; r++ {
			m := m0 + r
			b, os := m/g.outSpN, m%g.outSpN
			row := patches[r*width : (r+1)*width]
			base := b * g.inSpSize
			t := tab[os*g.kSize:]
			for w := k0; w < k1; w++ {
				dst := row[(w-k0)*cg : (w-k0+1)*cg]
				off := t[w]
				if off < 0 {
					clear(dst)
					continue
				}
				src := (base+int(off))*g.cIn + c0
				copy(dst, inC[src:src+cg])
			}
		}
	})
}

// convNaive is the direct definition of ConvGeneral (any axes, groups of channels or batch),
// accumulating in float64. It is the reference for the fast path and handles batch groups.
func convNaive[T floatT](g convGeom, out, in, kernel []T) {
	ax := g.p.axes
	sd := len(g.inSp)
	inStr, kStr, outStr := stridesOf(g.inDims), stridesOf(g.kDims), stridesOf(g.outDims)
	bg := g.p.batchGroups
	cOutBG := g.cOut / bg
	oIdx := make([]int, sd)
	kIdx := make([]int, sd)
	for b := 0; b < g.bOut; b++ {
		for o := 0; o < g.cOut; o++ {
			fg := o / g.cOutG
			inB := b
			if bg > 1 {
				inB = (o/cOutBG)*g.bOut + b
			}
			for os := 0; os < g.outSpN; os++ {
				rem := os
				outOff := b*outStr[ax.OutputBatch] + o*outStr[ax.OutputChannels]
				for a := sd - 1; a >= 0; a-- {
					oIdx[a] = rem % g.outSp[a]
					rem /= g.outSp[a]
					outOff += oIdx[a] * outStr[ax.OutputSpatial[a]]
				}
				var sum float64
				for w := 0; w < g.kSize; w++ {
					rem := w
					inOff := inB * inStr[ax.InputBatch]
					kOff := o * kStr[ax.KernelOutputChannels]
					valid := true
					for a := sd - 1; a >= 0; a-- {
						kIdx[a] = rem % g.kSp[a]
						rem /= g.kSp[a]
						i := g.inputIndex(a, oIdx[a], kIdx[a])
						if i < 0 {
							valid = false
							break
						}
						inOff += i * inStr[ax.InputSpatial[a]]
						kOff += kIdx[a] * kStr[ax.KernelSpatial[a]]
					}
					if !valid {
						continue
					}
					for ci := 0; ci < g.cInG; ci++ {
						c := fg*g.cInG + ci
						sum += float64(in[inOff+c*inStr[ax.InputChannels]]) * float64(kernel[kOff+ci*kStr[ax.KernelInputChannels]])
					}
				}
				out[outOff] = T(sum)
			}
		}
	}
}

// isFilterGradForm recognises the convolution that computes a kernel gradient of a channels-last
// convolution: input [C, spatial..., N] read as (channels=axis 0, batch=last), "kernel" (the output
// gradient) [N, out spatial..., Cout] with its input channels first, no grouping or input dilation.
func isFilterGradForm(g convGeom) bool {
	return g.p.batchGroups == 1 && isFilterGradLayout(g)
}

// filterGradForward returns the forward convolution whose kernel gradient the filter-gradient form
// g computes: channels-last input [N, spatial..., C] (g's input with its batch and channels read
// the other way round), kernel [KS..., C/groups, Cout] (g's output spatial sizes), output
// [N, OS..., Cout] (g's kernel), stride g's kernel dilation, kernel dilation g's stride, g's
// padding and g's batch groups as channel groups.
func filterGradForward(g convGeom, groups int) convGeom {
	sd := len(g.inSp)
	n, c, cOut := g.cIn, g.bIn, g.cOut
	fwdIn := append(append([]int{n}, g.inSp...), c)
	fwdKernel := append(append([]int{}, g.outSp...), c/groups, cOut)
	fwdOut := append(append([]int{n}, g.kSp...), cOut)
	nhwcAxes := backends.ConvolveAxesConfig{InputBatch: 0, InputChannels: sd + 1, KernelInputChannels: sd,
		KernelOutputChannels: sd + 1, OutputBatch: 0, OutputChannels: sd + 1}
	for a := 0; a < sd; a++ {
		nhwcAxes.InputSpatial = append(nhwcAxes.InputSpatial, a+1)
		nhwcAxes.KernelSpatial = append(nhwcAxes.KernelSpatial, a)
		nhwcAxes.OutputSpatial = append(nhwcAxes.OutputSpatial, a+1)
	}
	fp := convParams{axes: nhwcAxes, strides: g.p.kernelDil, inputDil: ones(sd), kernelDil: g.p.strides,
		paddings: g.p.paddings, featureGroups: groups, batchGroups: 1}
	return newConvGeom(fp, fwdIn, fwdKernel, fwdOut)
}

// convFilterGrad computes a convolution of the filter-gradient form without transposing anything:
// with x = the input seen as [N, spatial..., C] and v = the kernel [N, OS..., Cout], the result
// is Pᵀ·v, where P is the im2col matrix of the forward convolution whose stride is this one's
// kernel dilation, whose kernel dilation is this one's stride and whose kernel positions are this
// one's output positions: rows (n, os), columns (ks, c). In float32, a 3×3 stride-1 forward
// convolution runs with Winograd F(3×3, 2×2) or F(3×3, 4×4) (convWinogradFilter), other 1-D and 2-D ones pack
// Pᵀ straight from x (kernels.SconvIm2colT).
func convFilterGrad[T floatT](ex *execState, g convGeom, out, x, v []T) {
	ax := g.p.axes
	sd := len(g.inSp)
	c, cOut := g.bIn, g.cOut // this conv's channels are the batch N; its batch is C.
	fg := filterGradForward(g, 1)
	n := fg.bIn
	rows := n * fg.outSpN
	width := fg.kSize * c
	dt := dtypeOfFlat(any(x))
	pool := &ex.b.pool
	// Canonical output [KS..., C, Cout].
	outCanonical := ax.OutputBatch == sd && ax.OutputChannels == sd+1
	for a := 0; a < sd; a++ {
		outCanonical = outCanonical && ax.OutputSpatial[a] == a
	}
	outC := out
	if !outCanonical {
		outC = pool.get(dt, len(out)).([]T)
		defer pool.put(dt, outC)
	}
	done := false
	if x32, ok := any(x).([]float32); ok {
		v32, out32 := any(v).([]float32), any(outC).([]float32)
		done = ex.b.opts.winograd != winoOff && convWinogradFilter(fg, ex.b.opts.winograd, x32, v32, out32)
		if kg, ok := directGeometry(fg); ok && ex.b.opts.directConv && !done {
			done = kernels.SconvIm2colT(kg, cOut, 1, x32, v32, cOut, 0, out32, cOut) == nil
		}
	}
	if !done {
		tab := fg.offsetTable()
		rowsPer := max(1, min(rows, patchBudget/max(1, width)))
		patches := pool.get(dt, rowsPer*width).([]T)
		defer pool.put(dt, patches)
		for m0 := 0; m0 < rows; m0 += rowsPer {
			m1 := min(rows, m0+rowsPer)
			buildPatches(fg, patches, x, tab, m0, m1, 0, fg.kSize, 0)
			beta := T(0)
			if m0 > 0 {
				beta = 1
			}
			gemm(true, false, width, cOut, m1-m0, patches, width, v[m0*cOut:], cOut, beta, outC, cOut)
		}
	}
	if !outCanonical {
		canon := append(append([]int{}, g.outSp...), c, cOut)
		outStr := stridesOf(g.outDims)
		dstStr := make([]int, 0, sd+2)
		for _, a := range ax.OutputSpatial {
			dstStr = append(dstStr, outStr[a])
		}
		dstStr = append(dstStr, outStr[ax.OutputBatch], outStr[ax.OutputChannels])
		copyBox(out, outC, box{dims: canon, dStr: dstStr, sStr: stridesOf(canon)})
	}
}

// directMinChannels is the fewest input channels for which the forward convolution packs directly.
const directMinChannels = 16

// directGeometry returns the kernels geometry of a 1-D or 2-D convolution g over a canonical
// [batch, spatial..., channels] input, or false when g has channel or batch groups, more than two
// spatial axes, or a batch that changes.
func directGeometry(g convGeom) (kernels.ConvGeometry, bool) {
	sd := len(g.inSp)
	if g.groups != 1 || g.p.batchGroups != 1 || g.bOut != g.bIn || sd < 1 || sd > 2 {
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
	if len(g.inSp) != 2 || g.groups != 1 || g.p.batchGroups != 1 || g.bOut != g.bIn ||
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
	return kg, kernelStrides(g), kg.WinogradApplies()
}

// kernelStrides returns the element strides (kh, kw, input channel, output channel) of the kernel
// of g's 1-D or 2-D convolution, in whatever axis order it has (kh is 0 for a 1-D kernel), for the
// kernels that read it in place.
func kernelStrides(g convGeom) [4]int {
	ax := g.p.axes
	kStr := stridesOf(g.kDims)
	sd := len(ax.KernelSpatial)
	wStr := [4]int{0, kStr[ax.KernelSpatial[sd-1]], kStr[ax.KernelInputChannels], kStr[ax.KernelOutputChannels]}
	if sd == 2 {
		wStr[0] = kStr[ax.KernelSpatial[0]]
	}
	return wStr
}

// convWinograd computes g's float32 convolution with Winograd and reports true, or reports false,
// computing nothing, when winogradGeometry rejects g: F(4×4, 3×3) in mode winoF4, or in winoAuto
// where kernels.WinogradF4Pays says it is the faster, else F(2×2, 3×3).
func convWinograd(g convGeom, mode winoMode, out, in, kernel []float32) bool {
	kg, wStr, ok := winogradGeometry(g)
	if !ok {
		return false
	}
	if mode == winoF4 || mode == winoAuto && kernels.WinogradF4Pays(kg, g.cOut) {
		return kernels.SconvWinograd3x3F4(kg, g.cOut, in, kernel, wStr, out) == nil
	}
	return kernels.SconvWinograd3x3(kg, g.cOut, in, kernel, wStr, out) == nil
}

// convWinogradFilter computes the float32 kernel gradient dw [3, 3, InC, OutC] of the forward
// convolution fg (see filterGradForward) from its input x [N, H, W, InC] and output gradient
// dy [N, OH, OW, OutC] with Winograd and reports true, or reports false, computing nothing, when
// winogradGeometry rejects fg: F(3×3, 4×4) in mode winoF4, or in winoAuto where
// kernels.WinogradF4FilterPays says it is the faster, else F(3×3, 2×2).
func convWinogradFilter(fg convGeom, mode winoMode, x, dy, dw []float32) bool {
	kg, _, ok := winogradGeometry(fg)
	if !ok {
		return false
	}
	if mode == winoF4 || mode == winoAuto && kernels.WinogradF4FilterPays(kg, fg.cOut) {
		return kernels.SconvWinograd3x3FilterF4(kg, fg.cOut, x, dy, dw) == nil
	}
	return kernels.SconvWinograd3x3Filter(kg, fg.cOut, x, dy, dw) == nil
}

// Input-dilated convolutions (the input gradient of a strided convolution, or a transposed
// convolution) computed without the zeros of the dilation: every input pixel i contributes
// x[i]·W[k] to the output pixel o = i·s + p₀ − k·d for each kernel position k that lands inside the
// output. The contributions of a block of input pixels are one GEMM, cols = x·Wᵀ with
// W viewed as [kernel positions × output channels, input channels], then added into the output
// (col2im). This takes 1/∏s of the flops of the dilated im2col product.

// isDilatedConvForm recognises a convolution the col2im path computes: channels-last input and
// output with the same batch axis, unit strides, input dilation above 1 on some axis and no
// channel or batch groups.
func isDilatedConvForm(g convGeom) bool {
	ax := g.p.axes
	sd := len(g.inSp)
	if g.groups != 1 || g.p.batchGroups != 1 || ax.InputBatch != 0 || ax.InputChannels != sd+1 ||
		ax.OutputBatch != 0 || ax.OutputChannels != sd+1 {
		return false
	}
	dilated := false
	for a := 0; a < sd; a++ {
		if ax.InputSpatial[a] != a+1 || ax.OutputSpatial[a] != a+1 || g.p.strides[a] != 1 {
			return false
		}
		dilated = dilated || g.p.inputDil[a] > 1
	}
	return dilated
}

// convInputDilated computes a float32 convolution of the isDilatedConvForm form (1-D or 2-D) with
// kernels.SconvInputDilated, one phase product per output phase with no products by the zeros of
// the dilation, and reports true; it reports false, computing nothing, without the AVX-512 kernels
// (whose packing loops the phase products need to beat col2im) or when the kernel has neither
// channel axis contiguous.
func convInputDilated(g convGeom, out, in, kernel []float32) bool {
	kg, ok := directGeometry(g)
	if !ok || !vec16() {
		return false
	}
	return kernels.SconvInputDilated(kg, g.cOut, in, kernel, kernelStrides(g), out) == nil
}

// convTransposed computes a convolution of the isDilatedConvForm form by col2im.
func convTransposed[T floatT](ex *execState, g convGeom, out, in, kernel []T) {
	ax := g.p.axes
	sd := len(g.inSp)
	dt := dtypeOfFlat(any(in))
	pool := &ex.b.pool
	cIn, cOut := g.cIn, g.cOut
	kc := g.kSize * cOut

	// Kernel as [kernel positions..., cOut, cIn]: row (k, o) of the GEMM's transposed B operand.
	kStr := stridesOf(g.kDims)
	wDims := append(append([]int{}, g.kSp...), cOut, cIn)
	wSrcStr := make([]int, 0, sd+2)
	for _, a := range ax.KernelSpatial {
		wSrcStr = append(wSrcStr, kStr[a])
	}
	wSrcStr = append(wSrcStr, kStr[ax.KernelOutputChannels], kStr[ax.KernelInputChannels])
	w := pool.get(dt, kc*cIn).([]T)
	defer pool.put(dt, w)
	copyBox(w, kernel, box{dims: wDims, dStr: stridesOf(wDims), sStr: wSrcStr})

	// tab[i·kSize + k]: the output spatial offset input position i sends kernel position k to, or -1.
	tab := make([]int32, g.inSpSize*g.kSize)
	inIdx := make([]int, sd)
	kIdx := make([]int, sd)
	outSpStr := stridesOf(g.outSp)
	for i := 0; i < g.inSpSize; i++ {
		unravelInto(inIdx, i, g.inSp)
		for k := 0; k < g.kSize; k++ {
			unravelInto(kIdx, k, g.kSp)
			off := 0
			for a := 0; a < sd && off >= 0; a++ {
				o := inIdx[a]*g.p.inputDil[a] + g.p.paddings[a][0] - kIdx[a]*g.p.kernelDil[a]
				if o < 0 || o >= g.outSp[a] {
					off = -1
					break
				}
				off += o * outSpStr[a]
			}
			tab[i*g.kSize+k] = int32(off)
		}
	}

	// Blocks of whole images, so each image's output is written by one goroutine.
	perImage := g.inSpSize * kc
	imgs := max(1, min(g.bIn, patchBudget/max(1, perImage)))
	cols := pool.get(dt, imgs*perImage).([]T)
	defer pool.put(dt, cols)
	outImg := g.outSpN * cOut
	add32 := binKernel32(backends.OpTypeAdd) // nil without vector loops
	for b0 := 0; b0 < g.bIn; b0 += imgs {
		b1 := min(g.bIn, b0+imgs)
		rows := (b1 - b0) * g.inSpSize
		gemm(false, true, rows, kc, cIn, in[b0*g.inSpSize*cIn:], cIn, w, cIn, 0, cols, kc)
		parallelFor(b1-b0, 1, func(s, e int) {
			for b := b0 + s; b < b0+e; b++ {
				dst := out[b*outImg : (b+1)*outImg]
				clear(dst)
				src := cols[(b-b0)*perImage:]
				for i := 0; i < g.inSpSize; i++ {
					t := tab[i*g.kSize : (i+1)*g.kSize]
					row := src[i*kc : (i+1)*kc]
					for k, off := range t {
						if off < 0 {
							continue
						}
						addInto(add32, dst[int(off)*cOut:int(off+1)*cOut], row[k*cOut:(k+1)*cOut])
					}
				}
			}
		})
	}
}

// addInto adds c to o element by element (o[j] += c[j]); float32 runs on add32, the vector
// loop of binKernel32 (the same IEEE additions), when it is not nil.
func addInto[T floatT](add32 func(out, a []float32, aS bool, b []float32, bS bool), o, c []T) {
	if add32 != nil && len(o) >= 8 {
		if o32, ok := any(o).([]float32); ok {
			add32(o32, o32, false, any(c).([]float32), false)
			return
		}
	}
	c = c[:len(o)]
	for j := range o {
		o[j] += c[j]
	}
}
