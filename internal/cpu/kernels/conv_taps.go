package kernels

import "fmt"

// A tap convolution is a set of products C_φ = A_φ·B_φ behind a convolution over a grid of
// positions (b, i, j), one per phase φ, described by window positions alone. The source pixels a
// product reads are views: view v of row (b, i, j) is the c channels of source pixel
// (b, i·sh + dh_v, j·sw + dw_v) (zeros outside the source image). Phase φ sums, over its taps t
// in order, view(t)·B_t, with B_t a c×n weight block, and writes row (b, i, j) of C_φ (n channels)
// to pixel (b, i·dsh + dph_φ, j·dsw + dpw_φ) of the destination image, for i < gridH_φ and
// j < gridW_φ. A strided convolution's input gradient is one phase per input phase (see
// SconvInputGradient): the taps that reach it, with no products by the zeros of the
// input-dilated form; the phases share their views (4 for a 3×3 window at stride 2, against 9
// taps), so each view is packed once for all of them.
//
// tapGemm cuts the grid into blocks of whole rows (tapRowsPerItem), taken in turn by the
// goroutines. A block packs each view one channel block at a time (16 steps at a time by the
// AVX-512 transposing loop) and multiplies it by the weight blocks of every tap that reads it
// (B packed once per call), summing into the phases' blocks of C in its goroutine's buffer, which
// it then copies to the destination pixels. Every element of C is summed by one goroutine in an
// order fixed by the sizes.
type tapConv struct {
	src            []float32 // source image [batch, h, w, c]
	batch, h, w, c int
	sh, sw         int
	views          [][2]int // source pixel offsets (dh, dw)
	phases         []tapPhase
	wts            []float32 // weight block of a tap: op(B)[o, j] = wts[tap.w + o·ldw + j] (wTrans: + j·ldw + o)
	ldw            int
	wTrans         bool
	gridH, gridW   int       // grid positions per image (the largest phase's)
	n              int       // columns of C
	dst            []float32 // destination image [batch, dstH, dstW, n]
	dstH, dstW     int
	dsh, dsw       int
}

// tapPhase is one product of a tap convolution: its taps, in summation order, and where its rows go.
type tapPhase struct {
	taps         []convTap
	gridH, gridW int // rows (b, i, j) with i < gridH and j < gridW are written
	dph, dpw     int
}

// convTap is one window position: the view it reads and the offset of its weight block in wts.
type convTap struct{ view, w int }

// tapRowsPerItem is the rows of C (a multiple of every kernel's mr: 14, 6, 4) one work item
// computes: its A panels (rows × kc floats) stay in L2 while the column tiles use them.
const tapRowsPerItem = 168

// tapGemm computes the tap convolution tc (overwriting the destination pixels of every phase) on
// up to threads goroutines.
func tapGemm(kern *kernel[float32], tc *tapConv, threads int) {
	m := tc.batch * tc.gridH * tc.gridW
	if m == 0 || tc.n == 0 {
		return
	}
	mr, nr := kern.mr, kern.nr
	nPad := (tc.n + nr - 1) / nr * nr
	colTiles := nPad / nr
	// Channel blocks of the views: [cb·part, min(c, (cb+1)·part)).
	part := blockSize(tc.c, kern.kc, 1)
	cBlocks := (tc.c + part - 1) / part
	// B, packed once: tap t of phase φ, channel block cb, column tile jt at
	// bOff[φ][t] + cb·part·nPad + jt·nr·ko.
	bOff := make([][]int, len(tc.phases))
	size := 0
	for f, ph := range tc.phases {
		bOff[f] = make([]int, len(ph.taps))
		for t := range ph.taps {
			bOff[f][t] = size
			size += tc.c * nPad
		}
	}
	shared := getBuffers[float32](0, size, 0)
	defer putBuffers(shared)
	bp := shared.b
	for f, ph := range tc.phases {
		for t, tap := range ph.taps {
			for cb := 0; cb < cBlocks; cb++ {
				o0 := cb * part
				ko := min(tc.c, o0+part) - o0
				for jt := 0; jt < colTiles; jt++ {
					packB(bp[bOff[f][t]+o0*nPad+jt*nr*ko:], tc.wTrans, tc.wts[tap.w:], tc.ldw, o0, ko, jt*nr, min(nr, tc.n-jt*nr), 1, nr)
				}
			}
		}
	}
	items := (m + tapRowsPerItem - 1) / tapRowsPerItem
	cSize := tapRowsPerItem * nPad
	bufs := make([]*buffers[float32], min(threads, items))
	for w := range bufs {
		bufs[w] = getBuffers[float32](tapRowsPerItem*part, 0, len(tc.phases)*cSize)
		defer putBuffers(bufs[w])
	}
	parallelFor(len(bufs), items, func(w, item int) {
		r0 := item * tapRowsPerItem
		mb := min(tapRowsPerItem, m-r0)
		tiles := (mb + mr - 1) / mr
		ap, cbuf := bufs[w].a, bufs[w].tile
		started := make([]bool, len(tc.phases)) // phase f's block of C holds a first sum
		inPlace := make([]int, tiles)           // where row tile it of the packed view is read in place, or -1
		for cb := 0; cb < cBlocks; cb++ {
			o0 := cb * part
			ko := min(tc.c, o0+part) - o0
			for v := range tc.views {
				packed := false
				for f, ph := range tc.phases {
					for t, tap := range ph.taps {
						if tap.view != v {
							continue
						}
						if !packed {
							tc.packView(ap, inPlace, r0, mb, v, o0, ko, mr)
							packed = true
						}
						beta := float32(0)
						if started[f] {
							beta = 1
						}
						started[f] = true
						cf := cbuf[f*cSize:]
						for jt := 0; jt < colTiles; jt++ {
							b := &bp[bOff[f][t]+o0*nPad+jt*nr*ko]
							for it := 0; it < tiles; it++ {
								if off := inPlace[it]; off >= 0 {
									kern.fn(ko, &tc.src[off], tc.c, 1, b, &cf[it*mr*nPad+jt*nr], nPad, beta)
									continue
								}
								kern.fn(ko, &ap[it*mr*ko], 1, mr, b, &cf[it*mr*nPad+jt*nr], nPad, beta)
							}
						}
					}
				}
			}
		}
		for f, ph := range tc.phases {
			cf := cbuf[f*cSize:]
			for r := 0; r < mb; r++ {
				pix := r0 + r
				j := pix % tc.gridW
				i := pix / tc.gridW % tc.gridH
				if i >= ph.gridH || j >= ph.gridW {
					continue
				}
				b := pix / (tc.gridW * tc.gridH)
				d := tc.dst[((b*tc.dstH+i*tc.dsh+ph.dph)*tc.dstW+j*tc.dsw+ph.dpw)*tc.n:][:tc.n]
				if len(ph.taps) == 0 {
					clear(d)
					continue
				}
				copy(d, cf[r*nPad:])
			}
		}
	})
}

// packView packs rows r0… (mb of them, zero rows up to a multiple of mr) and channels o0…o0+ko−1
// of view v into mr-row panels (dst[q·mr·ko + p·mr + r]), except the full row tiles whose source
// pixels are consecutive in memory (a view without horizontal offset over a grid as wide as the
// source, as in a 1×1 window's input gradient): for those it sets inPlace[q/mr] to the index in
// src of the tile's first step (rows tc.c apart), to be read in place; -1 for the others.
func (tc *tapConv) packView(dst []float32, inPlace []int, r0, mb, v, o0, ko, mr int) {
	if mr > 16 {
		panic(fmt.Errorf("kernels: micro-kernel height %d > 16", mr))
	}
	dh, dw := tc.views[v][0], tc.views[v][1]
	var rows [16][]float32
	var offs [16]int
	for q := 0; q < mb; q += mr {
		n := min(mr, mb-q)
		consecutive := n == mr
		for r := range rows {
			rows[r] = nil
			if r >= n {
				continue
			}
			pix := r0 + q + r
			j := pix % tc.gridW
			i := pix / tc.gridW % tc.gridH
			b := pix / (tc.gridW * tc.gridH)
			ih, iw := i*tc.sh+dh, j*tc.sw+dw
			if ih >= 0 && ih < tc.h && iw >= 0 && iw < tc.w {
				offs[r] = ((b*tc.h+ih)*tc.w+iw)*tc.c + o0
				rows[r] = tc.src[offs[r]:][:ko]
			}
			consecutive = consecutive && rows[r] != nil && offs[r] == offs[0]+r*tc.c
		}
		inPlace[q/mr] = -1
		if consecutive {
			inPlace[q/mr] = offs[0]
			continue
		}
		packSegment(dst[q*ko:q*ko+mr*ko], mr, &rows, ko)
	}
}

// packSegment writes dst[p·mr + r] = rows[r][p] for p < steps and r < mr (≤ 16), zeros where
// rows[r] is nil: 16 steps at a time by the AVX-512 transposing loop, the rest one by one.
func packSegment(dst []float32, mr int, rows *[16][]float32, steps int) {
	done := 0
	if steps >= 16 && ActiveISA() >= ISAAVX512 {
		var vr [16][]float32
		for done < steps-15 {
			chunk := min(steps-done, len(zeroSteps)) / 16 * 16
			for r := range vr {
				vr[r] = zeroSteps[:chunk]
				if rows[r] != nil {
					vr[r] = rows[r][done : done+chunk]
				}
			}
			done += gatherSteps(dst[done*mr:], mr, &vr, mr, chunk)
		}
	}
	if done == steps {
		return
	}
	for r := 0; r < mr; r++ {
		if rows[r] == nil {
			for p := done; p < steps; p++ {
				dst[p*mr+r] = 0
			}
			continue
		}
		for p, v := range rows[r][done:steps] {
			dst[(done+p)*mr+r] = v
		}
	}
}

// SconvInputGradient computes the input gradient dx [Batch, InH, InW, InC] (overwritten) of g's
// convolution from the output gradient dy [Batch, OutH, OutW, outC] and the HWIO weights
// w [KH, KW, InC, outC]: dx[b, h, v, c] = Σ dy[b, oh, ow, o]·w[kh, kw, c, o] over the (oh, ow, kh,
// kw) whose window reads input pixel (h, v). It is SconvInputDilated on g.InputGradient(outC) with
// the flipped, channel-swapped weights read in place. g must have InDilation 1. Uses up to
// Threads() goroutines.
func SconvInputGradient(g ConvGeometry, outC int, dy, w, dx []float32) error {
	if err := g.Validate(); err != nil {
		return err
	}
	gg, err := g.InputGradient(outC)
	if err != nil {
		return err
	}
	g = g.norm()
	switch {
	case outC < 0:
		return fmt.Errorf("kernels: SconvInputGradient: negative outC %d", outC)
	case len(dy) < g.Pixels()*outC:
		return fmt.Errorf("kernels: SconvInputGradient: dy: %d elements, geometry needs %d", len(dy), g.Pixels()*outC)
	case len(w) < g.PatchSize()*outC:
		return fmt.Errorf("kernels: SconvInputGradient: w: %d elements, geometry needs %d", len(w), g.PatchSize()*outC)
	case len(dx) < g.InputSize():
		return fmt.Errorf("kernels: SconvInputGradient: dx: %d elements, geometry needs %d", len(dx), g.InputSize())
	}
	// Window position (kh, kw) of the flipped weights is w[KH−1−kh, KW−1−kw]; its input channel o
	// (of dy) and output channel c (of dx) are w[…, c, o].
	w0 := ((g.KH-1)*g.KW + g.KW - 1) * g.InC * outC
	wStr := [4]int{-g.KW * g.InC * outC, -g.InC * outC, 1, outC}
	if err := sconvInputDilated(gg, g.InC, dy, w, w0, wStr, dx); err != nil {
		return fmt.Errorf("kernels: SconvInputGradient: %w", err)
	}
	return nil
}

// SconvInputDilated computes the convolution out [Batch, OutH, OutW, n] (overwritten) of the
// input x [Batch, InH, InW, InC] dilated by InDilationH×InDilationW (as in g; unit strides) with
// the weights w, whose element (kh, kw, input channel o, output channel j) is
// w[kh·wStr[0] + kw·wStr[1] + o·wStr[2] + j·wStr[3]] (non-negative strides, wStr[2] or wStr[3]
// equal to 1): the input gradient of a strided convolution, or a transposed convolution. Output
// pixels are split into the InDilationH·InDilationW phases (h mod InDilationH, v mod
// InDilationW); each phase is a stride-1 tap convolution of x with the window positions that
// reach it (2×2, 2×1, 1×2 and 1×1 of a 3×3 window at dilation 2), so no product reads the zeros
// of the dilation. Uses up to Threads() goroutines.
func SconvInputDilated(g ConvGeometry, n int, x, w []float32, wStr [4]int, out []float32) error {
	if err := g.Validate(); err != nil {
		return err
	}
	if err := checkWeightStrides(g, n, w, wStr); err != nil {
		return fmt.Errorf("kernels: SconvInputDilated: %w", err)
	}
	if err := sconvInputDilated(g, n, x, w, 0, wStr, out); err != nil {
		return fmt.Errorf("kernels: SconvInputDilated: %w", err)
	}
	return nil
}

// sconvInputDilated is SconvInputDilated with the weights of window position (kh, kw) at
// w[w0 + kh·wStr[0] + kw·wStr[1]] (strides of any sign; the caller checks w's length).
func sconvInputDilated(g ConvGeometry, n int, x, w []float32, w0 int, wStr [4]int, out []float32) error {
	g = g.norm()
	outSize := g.Batch * g.OutH * g.OutW * n
	switch {
	case g.StrideH != 1 || g.StrideW != 1:
		return fmt.Errorf("conv geometry %+v: strides are not supported", g)
	case wStr[2] != 1 && wStr[3] != 1:
		return fmt.Errorf("weight strides %v: neither channel stride is 1", wStr)
	case n < 0:
		return fmt.Errorf("negative n %d", n)
	case len(x) < g.InputSize():
		return fmt.Errorf("x: %d elements, geometry needs %d", len(x), g.InputSize())
	case len(out) < outSize:
		return fmt.Errorf("out: %d elements, geometry needs %d", len(out), outSize)
	}
	if outSize == 0 {
		return nil
	}
	if g.InC == 0 || g.InputSize() == 0 {
		clear(out[:outSize])
		return nil
	}
	sh, sw := g.InDilationH, g.InDilationW
	tc := tapConv{src: x, batch: g.Batch, h: g.InH, w: g.InW, c: g.InC, sh: 1, sw: 1,
		wts: w, gridH: phaseSize(g.OutH, 0, sh), gridW: phaseSize(g.OutW, 0, sw),
		n: n, dst: out, dstH: g.OutH, dstW: g.OutW, dsh: sh, dsw: sw}
	// op(B)[o, j] of a tap is w[tap.w + o·wStr[2] + j·wStr[3]].
	tc.ldw, tc.wTrans = wStr[2], false
	if wStr[2] == 1 && (wStr[3] != 1 || n == 1) {
		tc.ldw, tc.wTrans = wStr[3], true
	}
	tc.ldw = max(tc.ldw, 1)
	view := func(dh, dw int) int {
		for v, o := range tc.views {
			if o == [2]int{dh, dw} {
				return v
			}
		}
		tc.views = append(tc.views, [2]int{dh, dw})
		return len(tc.views) - 1
	}
	taps := 0
	for ph := 0; ph < sh; ph++ {
		hTaps := phaseTaps(ph, sh, g.PadTop, g.DilationH, g.KH)
		for pw := 0; pw < sw; pw++ {
			wTaps := phaseTaps(pw, sw, g.PadLeft, g.DilationW, g.KW)
			p := tapPhase{gridH: phaseSize(g.OutH, ph, sh), gridW: phaseSize(g.OutW, pw, sw), dph: ph, dpw: pw}
			for _, th := range hTaps {
				for _, tw := range wTaps {
					p.taps = append(p.taps, convTap{view: view(th[1], tw[1]), w: w0 + th[0]*wStr[0] + tw[0]*wStr[1]})
				}
			}
			taps += len(p.taps)
			tc.phases = append(tc.phases, p)
		}
	}
	m := g.Batch * tc.gridH * tc.gridW
	tapGemm(cur().sgemm(n), &tc, gemmThreads(m, n, max(1, taps/len(tc.phases))*g.InC))
	return nil
}

// phaseSize is the number of positions h < size with h ≡ phase (mod stride).
func phaseSize(size, phase, stride int) int {
	if phase >= size {
		return 0
	}
	return (size - phase + stride - 1) / stride
}

// phaseTaps returns the window positions k, each with its offset δ, that reach the output positions
// u = dilation·i + phase of one axis of an input-dilated convolution: u − pad + k·kDil is the
// dilated input position dilation·(i + δ).
func phaseTaps(phase, dilation, pad, kDil, window int) [][2]int {
	var taps [][2]int
	for k := 0; k < window; k++ {
		num := phase - pad + k*kDil
		if ((num%dilation)+dilation)%dilation == 0 {
			taps = append(taps, [2]int{k, num / dilation})
		}
	}
	return taps
}
