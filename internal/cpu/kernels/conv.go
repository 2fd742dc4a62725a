package kernels

import (
	"fmt"
	"slices"
	"unsafe"
)

// ConvGeometry describes a 2-D convolution over a channels-last image batch x [Batch, InH, InW, InC]
// with a KH×KW window. Output pixel (oh, ow) reads, for window position (kh, kw), the input at
// row u = oh·StrideH − PadTop + kh·DilationH and column v = ow·StrideW − PadLeft + kw·DilationW of
// the input dilated by InDilationH×InDilationW (InDilation−1 zeros inserted between neighbouring
// pixels: row u is input row u/InDilationH when divisible, else zero); positions outside the
// image read zero. Negative padding crops. Strides and dilations of 0 mean 1.
//
// The convolution is the product im2col(x)·w, where im2col(x) is the [Pixels, PatchSize] matrix
// whose row (b, oh, ow) holds the window's values in (kh, kw, c) order, and w is the
// [KH·KW·InC, OutC] reshaping of HWIO weights [KH, KW, InC, OutC]. The functions below compute
// that product and its transposed counterpart without materialising im2col(x).
type ConvGeometry struct {
	Batch, InH, InW, InC int
	KH, KW               int
	OutH, OutW           int
	StrideH, StrideW     int // output subsampling (0 means 1)
	DilationH, DilationW int // window dilation (0 means 1)
	InDilationH          int // input dilation (0 means 1), as in transposed convolutions
	InDilationW          int
	PadTop, PadLeft      int // zero padding before the first row and column
}

// norm returns g with zero strides and dilations replaced by 1.
func (g ConvGeometry) norm() ConvGeometry {
	for _, f := range []*int{&g.StrideH, &g.StrideW, &g.DilationH, &g.DilationW, &g.InDilationH, &g.InDilationW} {
		if *f == 0 {
			*f = 1
		}
	}
	return g
}

// InputGradient returns the geometry whose forward convolution of the output gradient
// dy [Batch, OutH, OutW, OutC] with FlipHWIO(w) gives the input gradient dx [Batch, InH, InW, InC]
// of g's convolution: SconvIm2col(g.InputGradient(outC), InC, …, dy, FlipHWIO(…, w), …, dx).
// It needs InDilation 1 in g.
func (g ConvGeometry) InputGradient(outC int) (ConvGeometry, error) {
	g = g.norm()
	if g.InDilationH != 1 || g.InDilationW != 1 {
		return ConvGeometry{}, fmt.Errorf("kernels: conv geometry %+v: input gradient of an input-dilated convolution is not supported", g)
	}
	return ConvGeometry{
		Batch: g.Batch, InH: g.OutH, InW: g.OutW, InC: outC,
		KH: g.KH, KW: g.KW, OutH: g.InH, OutW: g.InW,
		StrideH: 1, StrideW: 1, DilationH: g.DilationH, DilationW: g.DilationW,
		InDilationH: g.StrideH, InDilationW: g.StrideW,
		PadTop: (g.KH-1)*g.DilationH - g.PadTop, PadLeft: (g.KW-1)*g.DilationW - g.PadLeft,
	}, nil
}

// FlipHWIO returns the weights w [KH, KW, InC, OutC] flipped in both window axes with the channel
// axes swapped: [KH, KW, OutC, InC], out[kh][kw][o][c] = w[KH−1−kh][KW−1−kw][c][o]. It is the
// weight matrix of the input-gradient convolution (see ConvGeometry.InputGradient).
func FlipHWIO(kh, kw, inC, outC int, w []float32) ([]float32, error) {
	if kh < 0 || kw < 0 || inC < 0 || outC < 0 || len(w) < kh*kw*inC*outC {
		return nil, fmt.Errorf("kernels: FlipHWIO: %d weights for shape [%d, %d, %d, %d]", len(w), kh, kw, inC, outC)
	}
	out := make([]float32, kh*kw*inC*outC)
	for h := 0; h < kh; h++ {
		for x := 0; x < kw; x++ {
			src := w[((kh-1-h)*kw+(kw-1-x))*inC*outC:]
			dst := out[(h*kw+x)*inC*outC:]
			for c := 0; c < inC; c++ {
				for o := 0; o < outC; o++ {
					dst[o*inC+c] = src[c*outC+o]
				}
			}
		}
	}
	return out, nil
}

// Pixels is the number of output pixels, Batch·OutH·OutW: the rows of im2col(x).
func (g ConvGeometry) Pixels() int { return g.Batch * g.OutH * g.OutW }

// pixelAt returns the image, row and column of output pixel pix (pixels numbered image by image,
// row by row).
func (g ConvGeometry) pixelAt(pix int) (b, oh, ow int) {
	return pix / (g.OutW * g.OutH), pix / g.OutW % g.OutH, pix % g.OutW
}

// PatchSize is the number of values in one window, KH·KW·InC: the columns of im2col(x).
func (g ConvGeometry) PatchSize() int { return g.KH * g.KW * g.InC }

// InputSize is the number of elements of x, Batch·InH·InW·InC.
func (g ConvGeometry) InputSize() int { return g.Batch * g.InH * g.InW * g.InC }

// Validate reports the first inconsistent field.
func (g ConvGeometry) Validate() error {
	switch {
	case g.Batch < 0 || g.InH < 0 || g.InW < 0 || g.InC < 0 || g.OutH < 0 || g.OutW < 0:
		return fmt.Errorf("kernels: conv geometry %+v: negative size", g)
	case g.KH < 1 || g.KW < 1:
		return fmt.Errorf("kernels: conv geometry %+v: window %d×%d must be at least 1×1", g, g.KH, g.KW)
	case g.StrideH < 0 || g.StrideW < 0 || g.DilationH < 0 || g.DilationW < 0 || g.InDilationH < 0 || g.InDilationW < 0:
		return fmt.Errorf("kernels: conv geometry %+v: negative stride or dilation", g)
	}
	return nil
}

// checkMatrix returns an error if s is too short for a rows×cols matrix with row stride ld.
func checkMatrix(what string, rows, cols int, s []float32, ld int) error {
	if ld < max(cols, 1) {
		return fmt.Errorf("%s: stride %d < row length %d", what, ld, cols)
	}
	if rows > 0 && cols > 0 && len(s) < (rows-1)*ld+cols {
		return fmt.Errorf("%s: %d elements, needs %d for %d×%d with stride %d", what, len(s), (rows-1)*ld+cols, rows, cols, ld)
	}
	return nil
}

// SconvIm2col computes out = alpha·im2col(x)·w + beta·out: the forward convolution. On the
// AVX-512 path, with output channels in multiples of 32, at least 16 input channels and windows of
// at least 256 values, x is read in place (sconvForwardInPlace, conv_fwd.go); otherwise im2col
// panels are packed from x, or read in place for few output channels (convTile).
//
// x: [Batch, InH, InW, InC]; w: [PatchSize, n] with row stride ldw (HWIO weights with n = OutC);
// out: [Pixels, n] with row stride ldo (the NHWC output [Batch, OutH, OutW, n] when ldo = n).
// beta == 0 overwrites out without reading it. Uses up to Threads() goroutines.
func SconvIm2col(g ConvGeometry, n int, alpha float32, x, w []float32, ldw int, beta float32, out []float32, ldo int) error {
	if err := g.Validate(); err != nil {
		return err
	}
	g = g.norm()
	m, k := g.Pixels(), g.PatchSize()
	if err := checkConvArgs(g, x, "w", k, n, w, ldw, "out", m, n, out, ldo); err != nil {
		return fmt.Errorf("kernels: SconvIm2col: %w", err)
	}
	if m > 0 && n > 0 && alpha != 0 && fwdInPlace(g, n) {
		sconvForwardInPlace(g, n, alpha, x, w, ldw, beta, out, ldo)
		return nil
	}
	cp := convPacker{g: g, x: x}
	gemm(cur().sgemm(n), aSource[float32]{pack: cp.packRows, conv: &cp}, false, m, n, k, alpha, w, ldw, beta, out, ldo, gemmThreads(m, n, k))
	return nil
}

// SconvIm2colT computes dw = alpha·im2col(x)ᵀ·dy + beta·dw: the weight gradient of the
// convolution.
//
// On the AVX-512 path with channels in whole 32-column tiles it runs with both operands read in
// place (sconvWeightGradInPlace, conv_wgrad.go). With few channels (a window row, KW·InC,
// narrower than a 32-column tile, as in the RGB first layer) and the AVX-512 kernels, it is that product itself, its A panels packed pixel by pixel
// (packPanels14: a pixel's window is a few runs of x). Otherwise it runs transposed,
// dwᵀ = dyᵀ·im2col(x), into a PatchSize·n scratch buffer whose transpose is then added into dw:
// im2col(x) is the B operand, whose packed panels are whole channel runs of x, and dyᵀ the A
// operand, read in place on the AVX-512 path (rows of 14 output channels, one pixel per step).
//
// x: [Batch, InH, InW, InC]; dy: [Pixels, n] with row stride ldy (the output gradient, n = OutC);
// dw: [PatchSize, n] with row stride lddw (HWIO layout when lddw = n). beta == 0 overwrites dw
// without reading it. Uses up to Threads() goroutines.
func SconvIm2colT(g ConvGeometry, n int, alpha float32, x, dy []float32, ldy int, beta float32, dw []float32, lddw int) error {
	if err := g.Validate(); err != nil {
		return err
	}
	g = g.norm()
	m, k := g.PatchSize(), g.Pixels()
	if err := checkConvArgs(g, x, "dy", k, n, dy, ldy, "dw", m, n, dw, lddw); err != nil {
		return fmt.Errorf("kernels: SconvIm2colT: %w", err)
	}
	cp := convPacker{g: g, x: x}
	if m == 0 || n == 0 {
		return nil
	}
	vec := ActiveISA() >= ISAAVX512
	if wgradInPlace(g, n) {
		sconvWeightGradInPlace(g, n, alpha, x, dy, ldy, beta, dw, lddw)
		return nil
	}
	if vec && g.KW*g.InC < 32 {
		gemmSrc(cur().sgemm(n), aSource[float32]{pack: cp.packRowsT}, bSource[float32]{b: dy, ldb: ldy},
			m, n, k, alpha, beta, dw, lddw, gemmThreads(m, n, k))
		return nil
	}
	buf := getBuffers[float32](m*n, 0, 0)
	defer putBuffers(buf)
	dwT := buf.a
	gemmSrc(cur().s, aSource[float32]{trans: true, a: dy, lda: ldy, inPlace: vec}, bSource[float32]{pack: cp.packRowsT},
		n, m, k, alpha, 0, dwT, m, gemmThreads(m, n, k))
	for i := 0; i < m; i++ {
		row := dw[i*lddw : i*lddw+n]
		for j := range row {
			if beta == 0 {
				row[j] = dwT[j*m+i]
			} else {
				row[j] = beta*row[j] + dwT[j*m+i]
			}
		}
	}
	return nil
}

// checkWeightStrides checks the weights w of a convolution of geometry g with n output channels
// (validated) read in place through the element strides wStr (kh, kw, input channel, output
// channel): the strides are not negative and w holds the last element (nothing is read when InC or
// n is 0).
func checkWeightStrides(g ConvGeometry, n int, w []float32, wStr [4]int) error {
	for i, s := range wStr {
		if s < 0 {
			return fmt.Errorf("negative weight stride %d on axis %d of %v", s, i, wStr)
		}
	}
	if g.InC <= 0 || n <= 0 {
		return nil
	}
	if last := (g.KH-1)*wStr[0] + (g.KW-1)*wStr[1] + (g.InC-1)*wStr[2] + (n-1)*wStr[3]; len(w) <= last {
		return fmt.Errorf("w: %d elements, strides %v need %d for [%d, %d, %d, %d]",
			len(w), wStr, last+1, g.KH, g.KW, g.InC, n)
	}
	return nil
}

// checkConvArgs checks the lengths of x and of the B and C matrices of a convolution product.
func checkConvArgs(g ConvGeometry, x []float32, bName string, bRows, bCols int, b []float32, ldb int, cName string, cRows, cCols int, c []float32, ldc int) error {
	if cCols < 0 {
		return fmt.Errorf("negative n %d", cCols)
	}
	if len(x) < g.InputSize() {
		return fmt.Errorf("x: %d elements, geometry needs %d", len(x), g.InputSize())
	}
	if err := checkMatrix(cName, cRows, cCols, c, ldc); err != nil {
		return err
	}
	if cRows == 0 || cCols == 0 || bRows == 0 {
		return nil
	}
	return checkMatrix(bName, bRows, bCols, b, ldb)
}

// inputAt maps a position u of the dilated, padded input axis to the input index, or -1 where it
// reads zero (between dilated pixels or outside the image).
func inputAt(u, inDilation, size int) int {
	if u < 0 {
		return -1
	}
	if inDilation != 1 {
		if u%inDilation != 0 {
			return -1
		}
		u /= inDilation
	}
	if u >= size {
		return -1
	}
	return u
}

// convPacker packs panels of im2col(x) (packRows) or of its transpose (packRowsT) in the layout
// of packA, reading x directly.
type convPacker struct {
	g ConvGeometry
	x []float32
}

// packRows packs rows i0… (mb output pixels) and columns p0… (kb window positions) of im2col(x).
// Each panel of mr pixels is filled one window segment (kh, kw) at a time: the segment's channels
// are contiguous in x for every pixel, so the panel is written sequentially, mr values per step.
func (cp *convPacker) packRows(dst []float32, i0, mb, p0, kb, mr int) {
	g := cp.g
	var ih0, iw0, base, off [16]int
	var valid [16]bool
	if mr > len(off) {
		panic(fmt.Errorf("kernels: micro-kernel height %d > %d", mr, len(off)))
	}
	segLo, segHi := p0/g.InC, (p0+kb+g.InC-1)/g.InC
	for q := 0; q < mb; q += mr {
		panel := dst[q*kb : q*kb+mr*kb]
		rows := min(mr, mb-q)
		for r := 0; r < rows; r++ {
			pix := i0 + q + r
			bi, oh, ow := g.pixelAt(pix)
			ih0[r], iw0[r], base[r] = oh*g.StrideH-g.PadTop, ow*g.StrideW-g.PadLeft, bi*g.InH
		}
		for seg := segLo; seg < segHi; seg++ {
			dh, dw := seg/g.KW*g.DilationH, seg%g.KW*g.DilationW
			cLo, cHi := max(0, p0-seg*g.InC), min(g.InC, p0+kb-seg*g.InC)
			allValid := rows == mr
			for r := 0; r < mr; r++ {
				valid[r] = false
				if r >= rows {
					continue
				}
				ih := inputAt(ih0[r]+dh, g.InDilationH, g.InH)
				iw := inputAt(iw0[r]+dw, g.InDilationW, g.InW)
				if ih < 0 || iw < 0 {
					allValid = false
					continue
				}
				// May be negative: only off[r]+p for p in [pLo, pHi) is an index.
				off[r], valid[r] = ((base[r]+ih)*g.InW+iw)*g.InC-(seg*g.InC-p0), true
			}
			// Step p (relative to p0) of this segment reads x[off[r]+p].
			pLo, pHi := seg*g.InC+cLo-p0, seg*g.InC+cHi-p0
			if pLo = cp.gatherSegment(panel, mr, pLo, pHi, &off, &valid); pLo == pHi {
				continue
			}
			if allValid && mr == 6 {
				x0, x1, x2 := cp.x[off[0]+pLo:off[0]+pHi], cp.x[off[1]+pLo:off[1]+pHi], cp.x[off[2]+pLo:off[2]+pHi]
				x3, x4, x5 := cp.x[off[3]+pLo:off[3]+pHi], cp.x[off[4]+pLo:off[4]+pHi], cp.x[off[5]+pLo:off[5]+pHi]
				for j := range x0 {
					d := (*[6]float32)(panel[(pLo+j)*6:])
					d[0], d[1], d[2], d[3], d[4], d[5] = x0[j], x1[j], x2[j], x3[j], x4[j], x5[j]
				}
				continue
			}
			if allValid && mr == 14 {
				var xs [14][]float32
				for r := range xs {
					xs[r] = cp.x[off[r]+pLo : off[r]+pHi]
				}
				for j := range xs[0] {
					d := (*[14]float32)(panel[(pLo+j)*14:])
					for r := range d {
						d[r] = xs[r][j]
					}
				}
				continue
			}
			for r := 0; r < mr; r++ {
				if !valid[r] {
					for p := pLo; p < pHi; p++ {
						panel[p*mr+r] = 0
					}
					continue
				}
				for p, v := range cp.x[off[r]+pLo : off[r]+pHi] {
					panel[(pLo+p)*mr+r] = v
				}
			}
		}
	}
}

// zeroSteps is read, never written, for the rows of a panel that read padding.
var zeroSteps [256]float32

// gatherSegment packs steps pLo… of one window segment of an mr-row panel (mr ≤ 16) with the
// AVX-512 transposing loop, 16 steps at a time, row r reading x[off[r]+p] (zeros where !valid[r],
// and for r ≥ mr), and returns the first step it left to the caller (pHi when all, pLo when the
// active path has no vector loop).
func (cp *convPacker) gatherSegment(panel []float32, mr, pLo, pHi int, off *[16]int, valid *[16]bool) int {
	steps := min(pHi-pLo, len(zeroSteps))
	if steps < 16 || mr > 16 || ActiveISA() < ISAAVX512 {
		return pLo
	}
	var rows [16][]float32
	for r := range rows {
		rows[r] = zeroSteps[:steps]
		if r < mr && valid[r] {
			rows[r] = cp.x[off[r]+pLo:][:steps]
		}
	}
	return pLo + gatherSteps(panel[pLo*mr:], mr, &rows, mr, steps)
}

// packRowsT packs rows i0… (mb window positions) and columns p0… (kb output pixels) of
// im2col(x)ᵀ into mr-row panels: the A panels of the weight gradient dw = im2col(x)ᵀ·dy, and, with
// mr = nr, the packB layout of columns i0… and steps p0… of im2col(x) (its transposed form
// dwᵀ = dyᵀ·im2col(x)). The mr rows of a panel are split into runs within one window segment
// (kh, kw), whose channels are contiguous in x; along one output row, the pixels whose window
// column is inside the image read each run at a fixed stride (StrideW·InC), so on the AVX-512 path
// a run is copied for all of them by one vector loop (and a 14-row panel of one or two runs by
// packRuns14AVX512, which stores whole vectors), the pixels over the padding cleared.
func (cp *convPacker) packRowsT(dst []float32, i0, mb, p0, kb, mr int) {
	if mr == 14 && cp.packPanels14(dst, i0, mb, p0, kb) {
		return
	}
	g := cp.g
	var runs [32]packRun
	if mr > len(runs) {
		panic(fmt.Errorf("kernels: micro-kernel height %d > %d", mr, len(runs)))
	}
	vec := ActiveISA() >= ISAAVX512 && g.InDilationW == 1
	var rowOff [32]int
	for q := 0; q < mb; q += mr {
		panel := dst[q*kb : q*kb+mr*kb]
		rows := min(mr, mb-q)
		nRuns := 0
		for r := 0; r < rows; {
			pos := i0 + q + r
			seg, c0 := pos/g.InC, pos%g.InC
			n := min(rows-r, g.InC-c0)
			runs[nRuns] = packRun{r0: r, n: n, dh: seg / g.KW * g.DilationH, dw: seg % g.KW * g.DilationW, c0: c0}
			nRuns++
			r += n
		}
		clearTail := rows < mr
		pair := vec && mr == 14 && rows == 14 && nRuns <= 2
		// Walk the pixels p0… one output row segment at a time.
		for p := 0; p < kb; {
			pix := p0 + p
			bi, oh, ow := g.pixelAt(pix)
			cnt := min(g.OutW-ow, kb-p)
			ih0 := oh*g.StrideH - g.PadTop
			// rowOff[i]: where run i's input row starts in x (at its first channel), or -1 where
			// the run reads padding rows.
			for i, rn := range runs[:nRuns] {
				rowOff[i] = -1
				if ih := inputAt(ih0+rn.dh, g.InDilationH, g.InH); ih >= 0 {
					rowOff[i] = ((bi*g.InH+ih)*g.InW)*g.InC + rn.c0
				}
			}
			if pair && rowOff[0] >= 0 && rowOff[nRuns-1] >= 0 {
				// The pixels [lo, hi) read both runs inside the image (b2 = b1 for one run).
				lo, hi := 0, cnt
				for _, rn := range runs[:nRuns] {
					l, h := g.insideCols(ow, cnt, rn.dw)
					lo, hi = max(lo, l), min(hi, h)
				}
				iw0 := (ow+lo)*g.StrideW - g.PadLeft
				b1 := rowOff[0] + (iw0+runs[0].dw)*g.InC
				b2 := rowOff[nRuns-1] + (iw0+runs[nRuns-1].dw)*g.InC
				if hi > lo && copyRuns14(panel[(p+lo)*14:], cp.x, b1, b2, g.StrideW*g.InC, runs[0].n, hi-lo) {
					for j := 0; j < cnt; j++ {
						if j == lo {
							j = hi - 1
							continue
						}
						cp.packPixel(panel[(p+j)*mr:], runs[:nRuns], rowOff[:nRuns], ow+j)
					}
					p += cnt
					continue
				}
			}
			for i, rn := range runs[:nRuns] {
				if rowOff[i] < 0 {
					for j := 0; j < cnt; j++ {
						clear(panel[(p+j)*mr+rn.r0:][:rn.n])
					}
					continue
				}
				if vec {
					// The pixels whose column is inside the image are one strided run of x:
					// copied by the vector loop, the padding on either side cleared.
					lo, hi := g.insideCols(ow, cnt, rn.dw)
					for j := 0; j < lo; j++ {
						clear(panel[(p+j)*mr+rn.r0:][:rn.n])
					}
					for j := hi; j < cnt; j++ {
						clear(panel[(p+j)*mr+rn.r0:][:rn.n])
					}
					if hi > lo {
						iw := (ow+lo)*g.StrideW - g.PadLeft + rn.dw
						copyRunRows(panel[(p+lo)*mr+rn.r0:], mr, cp.x, rowOff[i]+iw*g.InC, g.StrideW*g.InC, rn.n, hi-lo)
					}
					continue
				}
				row := cp.x[rowOff[i]:]
				for j := 0; j < cnt; j++ {
					d := panel[(p+j)*mr+rn.r0:][:rn.n]
					iw := inputAt((ow+j)*g.StrideW-g.PadLeft+rn.dw, g.InDilationW, g.InW)
					if iw < 0 {
						clear(d)
						continue
					}
					src := row[iw*g.InC:]
					switch len(d) {
					case 32:
						*(*[32]float32)(d) = *(*[32]float32)(src)
					case 16:
						*(*[16]float32)(d) = *(*[16]float32)(src)
					case 6:
						*(*[6]float32)(d) = *(*[6]float32)(src)
					default:
						copy(d, src)
					}
				}
			}
			if clearTail {
				for j := 0; j < cnt; j++ {
					clear(panel[(p+j)*mr+rows : (p+j)*mr+mr])
				}
			}
			p += cnt
		}
	}
}

// maxPixelRuns is the most runs (after merging) that packPanels14 gives packPixelsAVX512 for one
// block of panels; blocks that need more (very few channels and a tall block) are packed by
// packRowsT.
const maxPixelRuns = 96

// packPanels14 packs rows i0… (mb window positions) and columns p0… (kb output pixels) of
// im2col(x)ᵀ into 14-row panels, as packRowsT does, pixel by pixel: for each output row segment it
// lists the runs of all the block's panels (merged where consecutive rows are consecutive in x, as
// the window columns of a row of the window are with few channels; padding, and the rows of a last
// partial panel, read from zeroSteps) and packPixelsAVX512 copies them for every pixel of the
// segment, so that the window of a pixel is read once while its lines are in L1. It reports false,
// writing nothing, where packRowsT must do it (no AVX-512, input dilation along W, too many runs).
func (cp *convPacker) packPanels14(dst []float32, i0, mb, p0, kb int) bool {
	const mr = 14
	g := cp.g
	if g.InDilationW != 1 || ActiveISA() < ISAAVX512 {
		return false
	}
	type baseRun struct {
		packRun
		q    int
		zero bool
	}
	var runs [maxPixelRuns]baseRun
	nRuns := 0
	for q := 0; q*mr < mb; q++ {
		rows := min(mr, mb-q*mr)
		for r := 0; r < rows; {
			if nRuns == len(runs) {
				return false
			}
			pos := i0 + q*mr + r
			seg, c0 := pos/g.InC, pos%g.InC
			n := min(rows-r, g.InC-c0)
			runs[nRuns] = baseRun{packRun: packRun{r0: r, n: n, dh: seg / g.KW * g.DilationH, dw: seg % g.KW * g.DilationW, c0: c0}, q: q}
			nRuns++
			r += n
		}
		if rows < mr {
			if nRuns == len(runs) {
				return false
			}
			runs[nRuns] = baseRun{packRun: packRun{r0: rows, n: mr - rows}, q: q, zero: true}
			nRuns++
		}
	}
	var rowOff, lo, hi [maxPixelRuns]int
	var desc [maxPixelRuns]pixelRun
	var descOff [maxPixelRuns]int // x offset of a data run's first pixel, −1 for zeros
	var descN [maxPixelRuns]int
	lds := g.StrideW * g.InC
	for p := 0; p < kb; {
		pix := p0 + p
		bi, oh, ow := g.pixelAt(pix)
		cnt := min(g.OutW-ow, kb-p)
		ih0 := oh*g.StrideH - g.PadTop
		// The pixels [lo, hi) of the segment read run i from x (row at rowOff); breakpoints
		// collects the ends of those ranges: between two, every run reads x or zeros throughout.
		var cuts [2*maxPixelRuns + 2]int
		nCuts := 0
		cuts[nCuts], cuts[nCuts+1] = 0, cnt
		nCuts += 2
		for i, rn := range runs[:nRuns] {
			lo[i], hi[i] = 0, 0
			if rn.zero {
				continue
			}
			ih := inputAt(ih0+rn.dh, g.InDilationH, g.InH)
			if ih < 0 {
				continue
			}
			rowOff[i] = ((bi*g.InH+ih)*g.InW)*g.InC + rn.c0
			lo[i], hi[i] = g.insideCols(ow, cnt, rn.dw)
			if hi[i] > lo[i] {
				cuts[nCuts], cuts[nCuts+1] = lo[i], hi[i]
				nCuts += 2
			}
		}
		slices.Sort(cuts[:nCuts])
		for c := 0; c+1 < nCuts; c++ {
			s, e := cuts[c], cuts[c+1]
			if s == e {
				continue
			}
			nd := 0
			for i, rn := range runs[:nRuns] {
				off := -1
				if lo[i] <= s && e <= hi[i] {
					off = rowOff[i] + ((ow+s)*g.StrideW-g.PadLeft+rn.dw)*g.InC
				}
				dOff := ((rn.q*kb+p+s)*mr + rn.r0) * 4
				if nd > 0 && desc[nd-1].dstOff+4*descN[nd-1] == dOff && descN[nd-1]+rn.n <= mr &&
					((off < 0 && descOff[nd-1] < 0) || (off >= 0 && descOff[nd-1] >= 0 && descOff[nd-1]+descN[nd-1] == off)) {
					descN[nd-1] += rn.n
					desc[nd-1].mask = 1<<descN[nd-1] - 1
					continue
				}
				descOff[nd], descN[nd] = off, rn.n
				desc[nd] = pixelRun{src: &zeroSteps[0], dstOff: dOff, mask: 1<<rn.n - 1}
				if off >= 0 {
					_ = cp.x[off+(e-s-1)*lds+rn.n-1]
					desc[nd].src, desc[nd].stepMask = &cp.x[off], -1
				}
				nd++
			}
			last := desc[nd-1]
			_ = dst[last.dstOff/4+(e-s-1)*mr+descN[nd-1]-1]
			if !packPixels(dst, desc[:nd], e-s, lds) {
				panic("kernels: packPanels14 without AVX-512")
			}
		}
		p += cnt
	}
	return true
}

// packRun is a run of panel rows r0… (n of them) of im2col(x)ᵀ within one window segment: window
// offsets dh, dw (dilated) and channels c0….
type packRun struct{ r0, n, dh, dw, c0 int }

// insideCols returns the range [lo, hi) of the pixels ow+j, j < cnt, of one output row whose
// window column at offset dw (no input dilation) is inside the image.
func (g ConvGeometry) insideCols(ow, cnt, dw int) (lo, hi int) {
	iwAt := func(j int) int { return (ow+j)*g.StrideW - g.PadLeft + dw }
	lo, hi = 0, cnt
	for lo < hi && iwAt(lo) < 0 {
		lo++
	}
	for hi > lo && iwAt(hi-1) >= g.InW {
		hi--
	}
	return lo, hi
}

// packPixel writes the runs of one pixel (output column ow, runs' input rows at rowOff, -1 for
// padding) into d, the pixel's step of a panel.
func (cp *convPacker) packPixel(d []float32, runs []packRun, rowOff []int, ow int) {
	g := cp.g
	for i, rn := range runs {
		dst := d[rn.r0:][:rn.n]
		iw := inputAt(ow*g.StrideW-g.PadLeft+rn.dw, g.InDilationW, g.InW)
		if rowOff[i] < 0 || iw < 0 {
			clear(dst)
			continue
		}
		copy(dst, cp.x[rowOff[i]+iw*g.InC:])
	}
}

// copyRunRows copies rows runs of width (≤ 32) floats from src[base + r·lds] to dst[r·ldd] with
// the AVX-512 loops (packCopy32AVX512, packCopy16AVX512), or, where those are not available, with
// Go copies.
func copyRunRows(dst []float32, ldd int, src []float32, base, lds, width, rows int) {
	if width == 32 && ldd == 32 && copyRows32(dst, src, base, lds, rows) {
		return
	}
	for c := 0; c < width; c += 16 {
		w := min(16, width-c)
		if copyRows(dst[c:], ldd, src, base+c, lds, w, rows) {
			continue
		}
		for r := 0; r < rows; r++ {
			copy(dst[r*ldd+c:][:w], src[base+r*lds+c:][:w])
		}
	}
}

// convTile computes one full mr×nr tile C = im2col(x)[pix0 … pix0+mr-1, p0 … p0+kb-1]·B + beta·C,
// with bp the tile's packed B panel, by one micro-kernel call per window segment (kh, kw): where
// the tile's pixels lie side by side in one output row and inside the image, the segment is read
// in place (row stride StrideW·InC); otherwise it is packed into scratch (mr×kb). Segments that
// read only padding are skipped. It is the conv form of reading A in place: no im2col panel is
// packed for the narrow products where packing would cost as much as the multiplication.
func convTile[T float](cp *convPacker, kernT *kernel[T], pix0, p0, kb int, bpT []T, cT *T, ldc int, betaT T, scratchT []T) {
	kern := any(kernT).(*kernel[float32])
	bp, c, beta, scratch := any(bpT).([]float32), any(cT).(*float32), float32(betaT), any(scratchT).([]float32)
	g := cp.g
	mr, nr := kern.mr, kern.nr
	ow0 := pix0 % g.OutW
	oh0 := pix0 / g.OutW % g.OutH
	b0 := pix0 / (g.OutW * g.OutH)
	sameRow := ow0+mr <= g.OutW && g.InDilationW == 1
	first := true
	call := func(k int, a *float32, rs, ps int, b []float32) {
		bt := float32(1)
		if first {
			bt, first = beta, false
		}
		kern.fn(k, a, rs, ps, &b[0], c, ldc, bt)
	}
	segLo, segHi := p0/g.InC, (p0+kb+g.InC-1)/g.InC
	for seg := segLo; seg < segHi; seg++ {
		dh, dw := seg/g.KW*g.DilationH, seg%g.KW*g.DilationW
		cLo, cHi := max(0, p0-seg*g.InC), min(g.InC, p0+kb-seg*g.InC)
		pLo := seg*g.InC + cLo - p0 // first step of the segment within the block
		kSeg := cHi - cLo
		bSeg := bp[pLo*nr:]
		if sameRow {
			ih := inputAt(oh0*g.StrideH-g.PadTop+dh, g.InDilationH, g.InH)
			if ih < 0 {
				continue // the whole segment reads padding
			}
			iwFirst := ow0*g.StrideW - g.PadLeft + dw
			iwLast := iwFirst + (mr-1)*g.StrideW
			if iwFirst >= 0 && iwLast < g.InW {
				off := ((b0*g.InH+ih)*g.InW+iwFirst)*g.InC + cLo
				call(kSeg, &cp.x[off], g.StrideW*g.InC, 1, bSeg)
				continue
			}
		}
		// General case: pack the segment's mr rows (zeros where they read padding).
		hasData := false
		for r := 0; r < mr; r++ {
			pix := pix0 + r
			bi, oh, ow := g.pixelAt(pix)
			ih := inputAt(oh*g.StrideH-g.PadTop+dh, g.InDilationH, g.InH)
			iw := inputAt(ow*g.StrideW-g.PadLeft+dw, g.InDilationW, g.InW)
			if ih < 0 || iw < 0 {
				for p := 0; p < kSeg; p++ {
					scratch[p*mr+r] = 0
				}
				continue
			}
			hasData = true
			for p, v := range cp.x[((bi*g.InH+ih)*g.InW+iw)*g.InC+cLo:][:kSeg] {
				scratch[p*mr+r] = v
			}
		}
		if hasData || (first && seg == segHi-1) {
			call(kSeg, &scratch[0], 1, mr, bSeg)
		}
	}
	if first {
		// Every segment read padding: C = beta·C.
		for r := 0; r < mr; r++ {
			row := unsafe.Slice((*float32)(unsafe.Add(unsafe.Pointer(c), r*ldc*4)), nr)
			for j := range row {
				if beta == 0 {
					row[j] = 0
				} else {
					row[j] *= beta
				}
			}
		}
	}
}
