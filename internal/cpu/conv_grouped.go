package cpu

// Grouped convolutions. The forward of a depthwise convolution (one input channel per group,
// any number of output channels per group) and its input gradient (the same form, input-dilated by
// the stride) run as direct loops over channels-last rows: every output row [Cout] is the sum over
// the kernel positions of an input row [C] times the kernel row [Cout], which vectorises along the
// channels and needs no im2col. The kernel gradient of a grouped convolution (a convolution with
// batch groups, see convGeneralVJP) runs as one GEMM per group over the im2col matrix of the group's
// channels, or, with one input channel per group, as direct loops like the forward.
//
// Every output element is the sum of its terms in one fixed order (kernel positions for the
// forward; batch, then output positions for the kernel gradient), whatever the number of cores.

// isChannelsLast reports whether the input and output of g are [batch, spatial..., channels].
func isChannelsLast(g convGeom) bool {
	ax := g.p.axes
	sd := len(g.inSp)
	if ax.InputBatch != 0 || ax.InputChannels != sd+1 || ax.OutputBatch != 0 || ax.OutputChannels != sd+1 {
		return false
	}
	for a := 0; a < sd; a++ {
		if ax.InputSpatial[a] != a+1 || ax.OutputSpatial[a] != a+1 {
			return false
		}
	}
	return true
}

// isDepthwiseForm recognises a convolution convDepthwise computes: channels-last input and output,
// one input channel per channel group (so groups = input channels) and no batch groups. Strides,
// paddings and both dilations may be anything.
func isDepthwiseForm(g convGeom) bool {
	return g.groups > 1 && g.cInG == 1 && g.p.batchGroups == 1 && g.bOut == g.bIn && isChannelsLast(g)
}

// packKernelRows copies the kernel of g, whose input channels axis has size 1, into w as
// [kernel positions, Cout].
func packKernelRows[T floatT](g convGeom, w, kernel []T) {
	ax := g.p.axes
	kStr := stridesOf(g.kDims)
	dims := append(append([]int{}, g.kSp...), g.cOut)
	sStr := make([]int, 0, len(dims))
	for _, a := range ax.KernelSpatial {
		sStr = append(sStr, kStr[a])
	}
	sStr = append(sStr, kStr[ax.KernelOutputChannels])
	copyBox(w, kernel, box{dims: dims, dStr: stridesOf(dims), sStr: sStr})
}

// convDepthwise computes a convolution of the isDepthwiseForm form:
// out[b, o, c·m + j] = Σ_k in[b, o·s − p + k·d (input-dilated), c] · w[k, c·m + j], m = Cout/C.
func convDepthwise[T floatT](ex *execState, g convGeom, out, in, kernel []T) {
	dt := dtypeOfFlat(any(in))
	pool := &ex.b.pool
	c, cOut, m := g.cIn, g.cOut, g.cOutG
	w := pool.get(dt, g.kSize*cOut).([]T)
	defer pool.put(dt, w)
	packKernelRows(g, w, kernel)
	tab := g.offsetTable()
	rows := g.bOut * g.outSpN
	parallelFor(rows, max(1, 4096/max(1, g.kSize*cOut)), func(s, e int) {
		for r := s; r < e; r++ {
			b, os := r/g.outSpN, r%g.outSpN
			dst := out[r*cOut : (r+1)*cOut]
			clear(dst)
			base := b * g.inSpSize
			for k, off := range tab[os*g.kSize : (os+1)*g.kSize] {
				if off < 0 {
					continue
				}
				mulAddDepthwise(dst, in[(base+int(off))*c:][:c], w[k*cOut:][:cOut], m)
			}
		}
	})
}

// mulAddDepthwise adds to dst[ci·m+j] the product src[ci] · w[ci·m+j] for every channel ci of src and
// each of its m outputs j (m = 1: element by element, 8 lanes at a time where the kernel path has them).
func mulAddDepthwise[T floatT](dst, src, w []T, m int) {
	if m == 1 {
		mulAddRow(dst, src, w)
		return
	}
	for ci, xv := range src {
		d := dst[ci*m : (ci+1)*m]
		wc := w[ci*m : (ci+1)*m]
		for j := range d {
			d[j] += xv * wc[j]
		}
	}
}

// mulAddRow adds a ⊙ b to dst element by element (float32 8 lanes at a time where the kernel path
// has them, with the same bits).
func mulAddRow[T floatT](dst, a, b []T) {
	a, b = a[:len(dst)], b[:len(dst)]
	i := 0
	if d32, ok := any(dst).([]float32); ok {
		i = mulAddBlocks(d32, any(a).([]float32), any(b).([]float32))
	}
	for ; i < len(dst); i++ {
		dst[i] += a[i] * b[i]
	}
}

// isFilterGradLayout recognises the axes of a kernel-gradient convolution of a channels-last
// convolution: input [N, spatial..., C] read as (channels = axis 0, batch = the last axis),
// "kernel" (the output gradient) [N, out spatial..., Cout] with its input channels first, no
// channel groups and no input dilation. Batch groups are allowed.
func isFilterGradLayout(g convGeom) bool {
	ax := g.p.axes
	sd := len(g.inSp)
	if g.groups != 1 || ax.InputChannels != 0 || ax.InputBatch != sd+1 ||
		ax.KernelInputChannels != 0 || ax.KernelOutputChannels != sd+1 {
		return false
	}
	for a := 0; a < sd; a++ {
		if ax.InputSpatial[a] != a+1 || ax.KernelSpatial[a] != a+1 || g.p.inputDil[a] != 1 {
			return false
		}
	}
	return true
}

// convFilterGradGrouped computes a convolution of the isFilterGradLayout form with G batch groups:
// the kernel gradient dw [KS..., C/G, Cout] of the forward convolution with G channel groups whose
// input is x [N, spatial..., C] and output gradient v [N, OS..., Cout]:
// dw[k, ci, g·Cout/G + co] = Σ_{n, o} x[n, o·s − p + k·d, g·C/G + ci] · v[n, o, g·Cout/G + co].
func convFilterGradGrouped[T floatT](ex *execState, g convGeom, out, x, v []T) {
	ax := g.p.axes
	sd := len(g.inSp)
	dt := dtypeOfFlat(any(x))
	pool := &ex.b.pool
	groups := g.p.batchGroups
	fg := filterGradForward(g, groups)
	c, cInG, cOut := fg.cIn, fg.cInG, fg.cOut
	coutG := cOut / groups
	n := fg.bIn
	outCanonical := ax.OutputBatch == sd && ax.OutputChannels == sd+1
	for a := 0; a < sd; a++ {
		outCanonical = outCanonical && ax.OutputSpatial[a] == a
	}
	outC := out
	if !outCanonical {
		outC = pool.get(dt, len(out)).([]T)
		defer pool.put(dt, outC)
	}
	tab := fg.offsetTable()
	if cInG == 1 {
		// Depthwise: tasks of (kernel position, block of input channels); each sums over every
		// batch element and output position in order.
		m := coutG
		const block = 64
		blocks := (c + block - 1) / block
		parallelFor(fg.kSize*blocks, 1, func(s, e int) {
			for t := s; t < e; t++ {
				k, c0 := t/blocks, (t%blocks)*block
				c1 := min(c, c0+block)
				dst := outC[k*cOut+c0*m : k*cOut+c1*m]
				clear(dst)
				for b := 0; b < n; b++ {
					for os := 0; os < fg.outSpN; os++ {
						off := tab[os*fg.kSize+k]
						if off < 0 {
							continue
						}
						src := x[(b*fg.inSpSize+int(off))*c+c0 : (b*fg.inSpSize+int(off))*c+c1]
						mulAddDepthwise(dst, src, v[(b*fg.outSpN+os)*cOut+c0*m:(b*fg.outSpN+os)*cOut+c1*m], m)
					}
				}
			}
		})
	} else {
		rows := n * fg.outSpN
		width := fg.kSize * cInG
		rowsPer := max(1, min(rows, patchBudget/max(1, width)))
		patches := pool.get(dt, rowsPer*width).([]T)
		defer pool.put(dt, patches)
		for grp := 0; grp < groups; grp++ {
			for m0 := 0; m0 < rows; m0 += rowsPer {
				m1 := min(rows, m0+rowsPer)
				buildPatches(fg, patches, x, tab, m0, m1, 0, fg.kSize, grp*cInG)
				beta := T(0)
				if m0 > 0 {
					beta = 1
				}
				gemm(true, false, width, coutG, m1-m0, patches, width, v[m0*cOut+grp*coutG:], cOut, beta,
					outC[grp*coutG:], cOut)
			}
		}
	}
	if !outCanonical {
		canon := append(append([]int{}, g.outSp...), cInG, cOut)
		outStr := stridesOf(g.outDims)
		dstStr := make([]int, 0, sd+2)
		for _, a := range ax.OutputSpatial {
			dstStr = append(dstStr, outStr[a])
		}
		dstStr = append(dstStr, outStr[ax.OutputBatch], outStr[ax.OutputChannels])
		copyBox(out, outC, box{dims: canon, dStr: dstStr, sStr: stridesOf(canon)})
	}
}
