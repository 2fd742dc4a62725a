package kernels

import "sync"

// The weight gradient of a convolution with both operands read in place (AVX-512): computed as
// dwᵀ = dyᵀ·im2col(x), a 14×32 tile of dwᵀ (14 output channels, 32 channels of one window
// position) is the sum over the pixels whose window position (kh, kw) lies inside the image of
// dy[pixel, i0…i0+13] ⊗ x[window pixel, c0…c0+31]. Along an output row those pixels are steps of
// fixed strides in both dy (ldy) and x (StrideW·InC), so one micro-kernel call
// (sgemmKernel14x32SegAVX512) runs over the list of such row segments of a block of pixels and
// nothing is packed: im2col(x) is never written, and the pixels over the padding are skipped
// rather than multiplied by zeros.

// stepSeg is a run of consecutive steps of the segmented micro-kernel: step p reads A at
// a[aOff + p·lda + i] and B at b[bOff + p·ldb + j] (elements).
type stepSeg struct{ aOff, bOff, steps int }

// wgradBlockSteps is the pixels of one block of the in-place weight gradient: the x and dy they
// read (about 256 KB and 128 KB for a 64-channel stride-2 layer) stay in L2 while every tile of
// dwᵀ runs over them.
const wgradBlockSteps = 256

// wgradInPlace reports whether the weight gradient of g with n output channels runs in place
// (sconvWeightGradInPlace): the AVX-512 path, channels in whole 32-column tiles, no input dilation
// along W (x steps by a fixed stride along an output row) and at least one 14-row tile of output
// channels.
func wgradInPlace(g ConvGeometry, n int) bool {
	return hasSegKernel && ActiveISA() >= ISAAVX512 && g.InC%32 == 0 && g.InC > 0 && g.InDilationW == 1 && n >= 14
}

// sconvWeightGradInPlace computes dw = alpha·im2col(x)ᵀ·dy + beta·dw (see SconvIm2colT) for a
// geometry wgradInPlace accepts, on validated arguments. The pixels are cut into the parts of a
// split product (splitKParts: a function of the sizes only), each summed into its own buffer of
// dwᵀ by one goroutine, block after block of wgradBlockSteps pixels; the buffers are then added in
// part order, so the bits do not depend on the number of goroutines.
func sconvWeightGradInPlace(g ConvGeometry, n int, alpha float32, x, dy []float32, ldy int, beta float32, dw []float32, lddw int) {
	m, cols, k := n, g.PatchSize(), g.Pixels()
	parts := splitKParts(m, cols, k)
	threads := min(gemmThreads(m, cols, k), parts)
	size := m * cols
	buf := getAcc[float32](parts * size)
	defer putAcc(buf)
	acc := *buf
	parallelFor(threads, parts, func(_, p int) {
		wgradPart(g, n, x, dy, ldy, p*k/parts, (p+1)*k/parts, acc[p*size:(p+1)*size])
	})
	// dwᵀ = Σ_p acc_p, by blocks of rows of dwᵀ, then dw = beta·dw + alpha·(dwᵀ)ᵀ by blocks of rows
	// of dw.
	const rowsPerItem = 8
	parallelFor(threads, (m+rowsPerItem-1)/rowsPerItem, func(_, item int) {
		lo, hi := item*rowsPerItem*cols, min(m, (item+1)*rowsPerItem)*cols
		sum := acc[lo:hi]
		for p := 1; p < parts; p++ {
			for j, v := range acc[p*size+lo : p*size+hi] {
				sum[j] += v
			}
		}
	})
	parallelFor(threads, (cols+rowsPerItem-1)/rowsPerItem, func(_, item int) {
		for i := item * rowsPerItem; i < min(cols, (item+1)*rowsPerItem); i++ {
			row := dw[i*lddw : i*lddw+n]
			for j := range row {
				v := alpha * acc[j*cols+i]
				if beta != 0 {
					v += beta * row[j]
				}
				row[j] = v
			}
		}
	})
}

// wgradPart computes the sum over the pixels [k0, k1) of dwᵀ (n × PatchSize, row stride
// PatchSize) into acc, block by block of pixels; within a block, for each 32-column tile (one
// window position and 32 channels) and each 14-row tile (output channels; the last one moved up
// to end at row n, its new rows only kept), one segmented micro-kernel call over the block's row
// segments of that window position (the last rows, below a multiple of 14, by 4-row tiles).
func wgradPart(g ConvGeometry, n int, x, dy []float32, ldy int, k0, k1 int, acc []float32) {
	cols := g.PatchSize()
	win := g.KH * g.KW
	segsp := getStepSegs(win)
	defer stepSegPool.Put(segsp)
	segs := (*segsp)[:win]
	var tile [4 * 32]float32
	ldb := g.StrideW * g.InC
	for pb := k0; pb < k1; pb += wgradBlockSteps {
		pe := min(k1, pb+wgradBlockSteps)
		for w := range segs {
			segs[w] = g.stepSegs(segs[w][:0], w, pb, pe, ldy)
		}
		beta := float32(1)
		if pb == k0 {
			beta = 0
		}
		for w, ws := range segs {
			var sp *stepSeg
			if len(ws) > 0 {
				sp = &ws[0]
			}
			for c0 := 0; c0 < g.InC; c0 += 32 {
				j0 := w*g.InC + c0
				i0 := 0
				for ; i0+14 <= n; i0 += 14 {
					sgemmKernel14x32SegAVX512(sp, len(ws), &dy[i0], ldy, &x[c0], ldb, &acc[i0*cols+j0], cols, beta)
				}
				// The last rows by 4-row tiles, the last one moved up to end at row n (n ≥ 14), of
				// which only the rows not computed yet are kept.
				for ; i0 < n; i0 += 4 {
					if i0+4 <= n {
						sgemmKernel4x32SegAVX512(sp, len(ws), &dy[i0], ldy, &x[c0], ldb, &acc[i0*cols+j0], cols, beta)
						continue
					}
					t0 := n - 4
					sgemmKernel4x32SegAVX512(sp, len(ws), &dy[t0], ldy, &x[c0], ldb, &tile[0], 32, 0)
					for r := i0; r < n; r++ {
						dst := acc[r*cols+j0:][:32]
						src := tile[(r-t0)*32:][:32]
						for j, v := range src {
							if beta == 0 {
								dst[j] = v
							} else {
								dst[j] += v
							}
						}
					}
				}
			}
		}
	}
}

// stepSegPool holds the per-window-position segment lists of wgradPart (*[][]stepSeg), kept with
// their capacity so that a step's weight gradients allocate nothing.
var stepSegPool sync.Pool

// getStepSegs returns win empty segment lists from the pool.
func getStepSegs(win int) *[][]stepSeg {
	p, _ := stepSegPool.Get().(*[][]stepSeg)
	if p == nil {
		p = new([][]stepSeg)
	}
	for len(*p) < win {
		*p = append(*p, nil)
	}
	return p
}

// stepSegs appends to segs the row segments of the pixels [pb, pe) whose window position w
// (kh·KW + kw) lies inside the image: A offsets are rows of dy (pixel·ldy), B offsets the window
// pixel's first channel in x; consecutive segments that continue each other are merged.
func (g ConvGeometry) stepSegs(segs []stepSeg, w, pb, pe, ldy int) []stepSeg {
	dh, dwo := w/g.KW*g.DilationH, w%g.KW*g.DilationW
	ldb := g.StrideW * g.InC
	for pix := pb; pix < pe; {
		ow := pix % g.OutW
		oh := pix / g.OutW % g.OutH
		bi := pix / (g.OutW * g.OutH)
		cnt := min(g.OutW-ow, pe-pix)
		if ih := inputAt(oh*g.StrideH-g.PadTop+dh, g.InDilationH, g.InH); ih >= 0 {
			lo, hi := g.insideCols(ow, cnt, dwo)
			if hi > lo {
				iw := (ow+lo)*g.StrideW - g.PadLeft + dwo
				s := stepSeg{aOff: (pix + lo) * ldy, bOff: ((bi*g.InH+ih)*g.InW + iw) * g.InC, steps: hi - lo}
				if l := len(segs) - 1; l >= 0 && segs[l].aOff+segs[l].steps*ldy == s.aOff && segs[l].bOff+segs[l].steps*ldb == s.bOff {
					segs[l].steps += s.steps
				} else {
					segs = append(segs, s)
				}
			}
		}
		pix += cnt
	}
	return segs
}
