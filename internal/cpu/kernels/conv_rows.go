package kernels

import "fmt"

// SconvFewChannels computes out = alpha·im2col(x)·w + beta·out, the forward convolution of
// SconvIm2col, for convolutions with few input channels (the RGB first layer), where a window
// segment is only a few values and packing im2col panels from x costs more than the product.
//
// Image by image, one goroutine each, it writes the image's im2col rows into a buffer that stays
// in L2 (a window row at a time where the window lies inside the image) and multiplies them, read
// in place, by w with gemmSerial: each output row is the sum of the GEMM of the materialised
// im2col matrix, in its order (the same bits unless that product is split along k), whatever the
// number of goroutines.
//
// x: [Batch, InH, InW, InC]; w: [PatchSize, n] with row stride ldw (HWIO weights); out:
// [Pixels, n] with row stride ldo. beta == 0 overwrites out without reading it.
func SconvFewChannels(g ConvGeometry, n int, alpha float32, x, w []float32, ldw int, beta float32, out []float32, ldo int) error {
	if err := g.Validate(); err != nil {
		return err
	}
	g = g.norm()
	m, k := g.Pixels(), g.PatchSize()
	if err := checkConvArgs(g, x, "w", k, n, w, ldw, "out", m, n, out, ldo); err != nil {
		return fmt.Errorf("kernels: SconvFewChannels: %w", err)
	}
	if m == 0 || n == 0 {
		return nil
	}
	if k == 0 || alpha == 0 {
		scaleC(m, n, beta, out, ldo)
		return nil
	}
	pixels := g.OutH * g.OutW
	threads := min(gemmThreads(m, n, k), g.Batch)
	work := getBuffers[float32](threads*pixels*k, 0, 0)
	defer putBuffers(work)
	kern := cur().sgemm(n)
	parallelFor(threads, g.Batch, func(worker, b int) {
		cols := work.a[worker*pixels*k:][:pixels*k]
		g.im2colImage(cols, x, b)
		gemmSerial(kern, aSource[float32]{a: cols, lda: k}, bSource[float32]{b: w, ldb: ldw}, pixels, n, k, alpha, beta, out[b*pixels*ldo:], ldo)
	})
	return nil
}

// im2colImage writes the rows of im2col(x) of image b ([OutH·OutW, PatchSize]) into dst, one
// window row (kh) of one output row (oh) at a time, so that the input row and the output columns
// whose window row lies inside the image are found once for the whole output row.
func (g ConvGeometry) im2colImage(dst, x []float32, b int) {
	k := g.PatchSize()
	c := g.InC
	kwc := g.KW * c
	// Output columns [owLo, owHi) read their window row as one run of x inside the image.
	owLo, owHi := 0, 0
	if g.DilationW == 1 && g.InDilationW == 1 && g.InW-g.KW+g.PadLeft >= 0 {
		owLo = min(g.OutW, (max(0, g.PadLeft)+g.StrideW-1)/g.StrideW)
		owHi = max(owLo, min(g.OutW, (g.InW-g.KW+g.PadLeft)/g.StrideW+1))
	}
	for oh := 0; oh < g.OutH; oh++ {
		rows := dst[oh*g.OutW*k:][:g.OutW*k]
		for kh := 0; kh < g.KH; kh++ {
			ih := inputAt(oh*g.StrideH-g.PadTop+kh*g.DilationH, g.InDilationH, g.InH)
			if ih < 0 {
				for ow := 0; ow < g.OutW; ow++ {
					clear(rows[ow*k+kh*kwc:][:kwc])
				}
				continue
			}
			xr := x[(b*g.InH+ih)*g.InW*c:][:g.InW*c]
			for ow := 0; ow < g.OutW; ow++ {
				seg := rows[ow*k+kh*kwc:][:kwc]
				iw0 := ow*g.StrideW - g.PadLeft
				if ow >= owLo && ow < owHi {
					src := xr[iw0*c:][:len(seg)]
					for i := range seg {
						seg[i] = src[i]
					}
					continue
				}
				for kw := 0; kw < g.KW; kw++ {
					d := seg[kw*c:][:c]
					iw := inputAt(iw0+kw*g.DilationW, g.InDilationW, g.InW)
					if iw < 0 {
						clear(d)
						continue
					}
					copy(d, xr[iw*c:])
				}
			}
		}
	}
}
