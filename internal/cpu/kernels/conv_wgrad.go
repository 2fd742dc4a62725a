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
// geometry wgradInPlace accepts, on validated arguments. dwᵀ is cut into tasks by its columns (the
// 32-channel slabs of x and groups of window positions) and, where that leaves fewer tasks than
// goroutines, by runs of 14-row tiles; each task sums its part of dwᵀ over all the pixels, block
// after block of wgradBlockSteps pixels (wgradTask). Every element is therefore summed by the same
// micro-kernel calls in the same order whatever the split, so the bits do not depend on the
// number of goroutines, and nothing is left to add up: the tasks' accumulators (at most
// n·9·32 floats each for a 3×3 window) stay in the second-level cache, where a split over the
// pixels read and wrote one n × PatchSize buffer per part for every block and then added the
// parts.
func sconvWeightGradInPlace(g ConvGeometry, n int, alpha float32, x, dy []float32, ldy int, beta float32, dw []float32, lddw int) {
	m, cols, k := n, g.PatchSize(), g.Pixels()
	win, slabs := g.KH*g.KW, g.InC/32
	threads := gemmThreads(m, cols, k)
	winGroups := min(win, (threads+slabs-1)/slabs)
	rowGroups := min(m/14, (threads+slabs*winGroups-1)/(slabs*winGroups))
	tasks := slabs * winGroups * rowGroups
	buf := getBuffers[float32](m*cols, 0, 0)
	defer putBuffers(buf)
	acc := buf.a
	parallelFor(min(threads, tasks), tasks, func(_, t int) {
		slab, wgi, rgi := t%slabs, t/slabs%winGroups, t/(slabs*winGroups)
		wgradTask(g, n, x, dy, ldy, 32*slab, wgi*win/winGroups, (wgi+1)*win/winGroups,
			rgi*(m/14)/rowGroups, (rgi+1)*(m/14)/rowGroups, rgi == rowGroups-1, acc)
	})
	// dw = beta·dw + alpha·(dwᵀ)ᵀ by blocks of rows of dw.
	const rowsPerItem = 8
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

// wgradTask computes, summed over all the pixels, the 32 columns of dwᵀ (n × PatchSize, row
// stride PatchSize, into acc) of channels [c0, c0+32) at window positions [w0, w1), rows of the
// 14-row tiles [r0, r1) and, when tail, the rows below the last whole 14-row tile: block by block
// of wgradBlockSteps pixels, one segmented micro-kernel call per window position and 14-row tile
// over the block's row segments of that position (the tail rows by 4-row tiles, the last one
// moved up to end at row n, its new rows only kept; n ≥ 14).
func wgradTask(g ConvGeometry, n int, x, dy []float32, ldy int, c0, w0, w1, r0, r1 int, tail bool, acc []float32) {
	cols := g.PatchSize()
	k := g.Pixels()
	segsp := stepSegPool.Get().(*[]stepSeg)
	defer stepSegPool.Put(segsp)
	var tile [4 * 32]float32
	ldb := g.StrideW * g.InC
	for pb := 0; pb < k; pb += wgradBlockSteps {
		pe := min(k, pb+wgradBlockSteps)
		beta := float32(1)
		if pb == 0 {
			beta = 0
		}
		for w := w0; w < w1; w++ {
			ws := g.stepSegs((*segsp)[:0], w, pb, pe, ldy)
			*segsp = ws
			var sp *stepSeg
			if len(ws) > 0 {
				sp = &ws[0]
			}
			j0 := w*g.InC + c0
			for i0 := 14 * r0; i0 < 14*r1; i0 += 14 {
				sgemmKernel14x32SegAVX512(sp, len(ws), &dy[i0], ldy, &x[c0], ldb, &acc[i0*cols+j0], cols, beta)
			}
			if !tail {
				continue
			}
			for i0 := n / 14 * 14; i0 < n; i0 += 4 {
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

// stepSegPool holds the segment list of wgradTask (*[]stepSeg), kept with its capacity so that a
// step's weight gradients allocate nothing.
var stepSegPool = sync.Pool{New: func() any { return new([]stepSeg) }}

// stepSegs appends to segs the row segments of the pixels [pb, pe) whose window position w
// (kh·KW + kw) lies inside the image: A offsets are rows of dy (pixel·ldy), B offsets the window
// pixel's first channel in x; consecutive segments that continue each other are merged.
func (g ConvGeometry) stepSegs(segs []stepSeg, w, pb, pe, ldy int) []stepSeg {
	dh, dwo := w/g.KW*g.DilationH, w%g.KW*g.DilationW
	ldb := g.StrideW * g.InC
	for pix := pb; pix < pe; {
		bi, oh, ow := g.pixelAt(pix)
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
