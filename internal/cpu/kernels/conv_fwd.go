package kernels

// The forward convolution with x read in place (AVX-512): a tile of 8 neighbouring output pixels of
// one output row by 32 output channels is the sum over the window positions (kh, kw) of the 8×InC
// block of x those pixels read there — rows at a fixed stride of StrideW·InC, channels contiguous
// — times the InC rows of the weights of that position. One micro-kernel call
// (sgemmKernel8x32FwdAVX512) runs over the list of these blocks; a block whose pixels are only
// partly inside the image is copied, with zeros, into a small buffer, and a window position whose
// row is outside the image is skipped. No im2col panel is packed.

// rowSeg is one segment of sgemmKernel8x32FwdAVX512: A row r at a + r·rs, its steps contiguous,
// against the packed B rows from bOff (elements).
type rowSeg struct {
	a     *float32
	rs    int
	steps int
	bOff  int
}

// fwdTile is the output pixels of one tile of the in-place forward convolution.
const fwdTile = 8

// fwdInPlace reports whether SconvIm2col computes g with n output channels in place
// (sconvForwardInPlace): the AVX-512 path, output channels in whole 32-column tiles, output rows
// of at least one tile, no input dilation, at least 16 input channels (a block of a window
// position is then at least 16 steps) and windows of at least 256 values (measured on resnet8x4's
// downsampling layers at batch 64: 0.9–0.97× the time of the packed product for 3×3 windows of
// 64 and 128 channels, 1.2× for a 1×1 window of 64 channels).
func fwdInPlace(g ConvGeometry, n int) bool {
	return hasSegKernel && ActiveISA() >= ISAAVX512 && n > 0 && n%32 == 0 && g.OutW >= fwdTile &&
		g.InDilationH == 1 && g.InDilationW == 1 && g.InC >= 16 && g.PatchSize() >= 256
}

// fwdItemRows is the output rows one goroutine computes at a time: their tiles share each
// window row's slice of a weight panel (InC·KW steps), which stays in L1 while they run over it.
const fwdItemRows = 4

// sconvForwardInPlace computes out = alpha·im2col(x)·w + beta·out for a geometry fwdInPlace
// accepts, on validated arguments: alpha·w packed once into 32-column panels, then blocks of
// fwdItemRows output rows of an image in parallel (each by one goroutine, so the bits do not
// depend on their number), each row as tiles of fwdTile pixels (the last one moved back to end at
// the row's end where OutW is not a multiple). For each panel and window row kh, every tile of
// the block sums that row's window positions into its outputs (C = beta·C + … for kh = 0,
// C += … after).
func sconvForwardInPlace(g ConvGeometry, n int, alpha float32, x, w []float32, ldw int, beta float32, out []float32, ldo int) {
	k := g.PatchSize()
	wp := getBuffers[float32](k*n, 0, 0)
	defer putBuffers(wp)
	packB(wp.a, false, w, ldw, 0, k, 0, n, alpha, 32)
	win := g.KH * g.KW
	tilesPerRow := (g.OutW + fwdTile - 1) / fwdTile
	tiles := fwdItemRows * tilesPerRow
	threads := gemmThreads(g.Pixels(), n, k)
	perWorker := tiles*win*fwdTile*g.InC + fwdItemRows*fwdTile*32
	scratch := getBuffers[float32](threads*perWorker, 0, 0)
	defer putBuffers(scratch)
	type tileSegs struct {
		pix, newFrom int // first output pixel; its first row not computed by the previous tile
		kh           [][]rowSeg
	}
	itemsPerImage := (g.OutH + fwdItemRows - 1) / fwdItemRows
	work := make([][]tileSegs, threads)
	for t := range work {
		work[t] = make([]tileSegs, tiles)
		segs := make([]rowSeg, tiles*win)
		for i := range work[t] {
			work[t][i].kh = make([][]rowSeg, g.KH)
			for kh := range work[t][i].kh {
				work[t][i].kh[kh] = segs[(i*g.KH+kh)*g.KW:][:0:g.KW]
			}
		}
	}
	parallelFor(threads, g.Batch*itemsPerImage, func(worker, item int) {
		sc := scratch.a[worker*perWorker:][:perWorker]
		b, oh0 := item/itemsPerImage, item%itemsPerImage*fwdItemRows
		ts := work[worker][:0]
		for oh := oh0; oh < min(g.OutH, oh0+fwdItemRows); oh++ {
			for ow0, done := 0, 0; done < g.OutW; ow0 += fwdTile {
				ow0 = min(ow0, g.OutW-fwdTile)
				t := len(ts)
				ts = ts[:t+1]
				blocks := sc[t*win*fwdTile*g.InC:][:win*fwdTile*g.InC]
				for kh := range ts[t].kh {
					ts[t].kh[kh] = g.fwdSegs(ts[t].kh[kh][:0], blocks, x, b, oh, ow0, kh)
				}
				ts[t].pix = (b*g.OutH+oh)*g.OutW + ow0
				ts[t].newFrom = max(0, done-ow0)
				done = ow0 + fwdTile
			}
		}
		tileBuf := sc[tiles*win*fwdTile*g.InC:]
		for q := 0; q < n; q += 32 {
			bp := &wp.a[q*k]
			for kh := 0; kh < g.KH; kh++ {
				bt := beta
				if kh > 0 {
					bt = 1
				}
				nOverlap := 0
				for _, t := range ts {
					segs := t.kh[kh]
					if t.newFrom == 0 {
						sgemmKernel8x32FwdAVX512(segPtr(segs), len(segs), bp, &out[t.pix*ldo+q], ldo, bt)
						continue
					}
					// A tile that overlaps the previous one (the last of a row) is summed in a
					// buffer, and only its new rows are written.
					tb := tileBuf[nOverlap*fwdTile*32:][:fwdTile*32]
					nOverlap++
					tbBeta := float32(1)
					if kh == 0 {
						tbBeta = 0
					}
					sgemmKernel8x32FwdAVX512(segPtr(segs), len(segs), bp, &tb[0], 32, tbBeta)
					if kh < g.KH-1 {
						continue
					}
					for r := t.newFrom; r < fwdTile; r++ {
						dst := out[(t.pix+r)*ldo+q:][:32]
						if beta == 0 {
							copy(dst, tb[r*32:r*32+32])
							continue
						}
						for j, v := range tb[r*32 : r*32+32] {
							dst[j] = v + beta*dst[j]
						}
					}
				}
			}
		}
	})
}

// segPtr returns &segs[0], or nil when there are none.
func segPtr(segs []rowSeg) *rowSeg {
	if len(segs) == 0 {
		return nil
	}
	return &segs[0]
}

// fwdSegs appends to segs the segments of window row kh of the tile of pixels ow0… (fwdTile of
// them) of output row oh of image b, in window order: in place where all the tile's pixels read x
// at that window position, copied into blocks (zeros for the pixels over the padding) where only
// some do, none where none do (or where the window row is outside the image).
func (g ConvGeometry) fwdSegs(segs []rowSeg, blocks, x []float32, b, oh, ow0, kh int) []rowSeg {
	ld := g.StrideW * g.InC
	ih := oh*g.StrideH - g.PadTop + kh*g.DilationH
	if ih < 0 || ih >= g.InH {
		return segs
	}
	xr := x[(b*g.InH+ih)*g.InW*g.InC:][:g.InW*g.InC]
	for kw := 0; kw < g.KW; kw++ {
		w := kh*g.KW + kw
		dw := kw * g.DilationW
		lo, hi := g.insideCols(ow0, fwdTile, dw)
		if hi <= lo {
			continue
		}
		iw0 := ow0*g.StrideW - g.PadLeft + dw
		if lo == 0 && hi == fwdTile {
			_ = xr[iw0*g.InC+(fwdTile-1)*ld+g.InC-1]
			segs = append(segs, rowSeg{a: &xr[iw0*g.InC], rs: ld, steps: g.InC, bOff: w * g.InC * 32})
			continue
		}
		blk := blocks[w*fwdTile*g.InC:][:fwdTile*g.InC]
		for r := 0; r < fwdTile; r++ {
			d := blk[r*g.InC:][:g.InC]
			if r < lo || r >= hi {
				clear(d)
				continue
			}
			copy(d, xr[(iw0+r*g.StrideW)*g.InC:])
		}
		segs = append(segs, rowSeg{a: &blk[0], rs: g.InC, steps: g.InC, bOff: w * g.InC * 32})
	}
	return segs
}
