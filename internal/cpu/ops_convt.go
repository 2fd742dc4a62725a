package cpu

import "github.com/gomlx/gomlx/backends"

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
		rem := i
		for a := sd - 1; a >= 0; a-- {
			inIdx[a] = rem % g.inSp[a]
			rem /= g.inSp[a]
		}
		for k := 0; k < g.kSize; k++ {
			rem := k
			for a := sd - 1; a >= 0; a-- {
				kIdx[a] = rem % g.kSp[a]
				rem /= g.kSp[a]
			}
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
