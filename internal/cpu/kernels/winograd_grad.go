package kernels

import (
	"fmt"
	"sync"
)

// Winograd F(3×3, 2×2) for the weight gradient of a stride-1 3×3 convolution,
//
//	dw[kh, kw, c, o] = Σ_{b, y, x} x[b, y+kh−PadTop, x+kw−PadLeft, c]·dy[b, y, x, o].
//
// Split the output positions (y, x) into 2×2 tiles; the tile at (2·ty, 2·tx) reads the 4×4 input
// tile d starting at (2·ty − PadTop, 2·tx − PadLeft) and the 2×2 gradient tile e, and contributes
// the 3×3 correlation Σ_{a,b} e[a][b]·d[a+kh][b+kw]. This is the transpose of the forward F(2×2, 3×3)
// (see winograd.go): with y = Aᵀ·[(G·g) ⊙ (Bᵀ·d)] in one dimension,
// Σ_a e_a·y_a = Σ_k g_k·[Gᵀ·((A·e) ⊙ (Bᵀ·d))]_k for every g, hence
//
//	Σ_a e_a·d_{a+k} = [Gᵀ·((A·e) ⊙ (Bᵀ·d))]_k, and in two dimensions
//	dw_tile = Gᵀ·[(A·e·Aᵀ) ⊙ (Bᵀ·d·B)]·G,
//
// with A·e = [e₀, e₀+e₁, e₀−e₁, −e₁]. The input transform is the forward one (winoInput); the
// gradient tiles take E = A·e·Aᵀ (winoDy). Summed over tiles and images, each of the 16
// positions ξ is a product M_ξ = V_ξᵀ·E_ξ of the transformed inputs V_ξ [tiles, InC] and
// gradients E_ξ [tiles, OutC], contracting over the tiles: 16 multiply-adds per tile, input and
// output channel instead of the 36 of the direct sum, 2.25× fewer flops. Last, dw = Gᵀ·M·G.

// winoGradBlockBytes is the size aimed at for one block's transformed inputs and gradients
// (16·tiles·(InC + OutC) floats): each block's GEMMs read them back from the second-level cache.
const winoGradBlockBytes = 768 << 10

// winoGradMaxBlockTiles caps the tiles of one block (the k of each micro-kernel call).
const winoGradMaxBlockTiles = 128

// winoGradMinBlockTiles is the fewest tiles of a block: each micro-kernel call loads and stores
// its C tile once, so fewer k steps would spend more time on M than on the products.
const winoGradMinBlockTiles = 16

// SconvWinograd3x3Filter computes the weight gradient dw = im2col(x)ᵀ·dy of the stride-1 3×3
// convolution of geometry g (g.WinogradApplies() must hold) with Winograd F(3×3, 2×2), overwriting
// dw.
//
// x: [Batch, InH, InW, InC]; dy: [Batch, OutH, OutW, n] (dense, NHWC); dw: [3, 3, InC, n] (dense
// HWIO). The tiles are processed in blocks split over all cores: each block's input and gradient
// tiles are transformed and their products accumulated into the 16 matrices M_ξ [InC, n] of its
// part (a fixed run of blocks), which are summed in part order and transformed back into dw at the
// end. The result does not depend on the number of cores.
func SconvWinograd3x3Filter(g ConvGeometry, n int, x, dy, dw []float32) error {
	return sconvWinogradFilterEntry("SconvWinograd3x3Filter", winoGradF2, g, n, x, dy, dw)
}

// sconvWinogradFilterEntry validates the arguments of the weight-gradient entry point fn and runs
// form f.
func sconvWinogradFilterEntry(fn string, f *winoGradForm, g ConvGeometry, n int, x, dy, dw []float32) error {
	g, err := checkWinogradArgs(fn, g, n, x, "dy", dy)
	if err != nil {
		return err
	}
	if len(dw) < 9*g.InC*n {
		return fmt.Errorf("kernels: %s: dw: %d elements, needs %d for [3, 3, %d, %d]",
			fn, len(dw), 9*g.InC*n, g.InC, n)
	}
	if g.InC == 0 || n == 0 {
		return nil
	}
	if g.Pixels() == 0 {
		clear(dw[:9*g.InC*n])
		return nil
	}
	sconvWinogradFilter(cur().winoFor(n), f, g, n, x, dy, dw, Threads(), 0)
	return nil
}

// winoGradForm is one Winograd algorithm F(3×3, m×m) for the weight gradient: the a×a input tiles
// (a = m + 2, stride m) and their transform Bᵀ·d·B are those of the forward form in; the m×m
// gradient tiles e take E = A·e·Aᵀ (A = the forward form's Aᵀ transposed) and the sums M of the
// a² products return to the 3×3 window as Gᵀ·M·G (see the top of this file).
type winoGradForm struct {
	in *winoForm
	// dyPanels transforms channels [0, c) of the m×m gradient tile e[i][j] = src[i·rs + j·cs + ch]
	// into panels of nr channels ps elements apart: dst[(ch/nr)·ps + (a·i+j)·ds + ch%nr] = (A·e·Aᵀ)[i][j].
	dyPanels func(src []float32, rs, cs int, dst []float32, ds, ps, nr, c int)
	// output writes out[3k+l][j] = (Gᵀ·M·G)[k][l] for the a×a tiles M[i][i'][j] = s[a·i+i'][j] of
	// channels j < n.
	output func(s *[winoMaxXi][]float32, out *[9][]float32, n int)
	// outputVec, when set, is output on a vector path with the parts' sums done in it (see
	// wino4GradOutputVec): channels [0, done) of one input channel; done = 0 where the path has no
	// such form.
	outputVec func(m []float32, xs, parts, ps int, dw []float32, ks, n int, scratch *[winoMaxXi * 16]float32) (done int)
}

// winoGradF2 is F(3×3, 2×2).
var winoGradF2 = &winoGradForm{in: winoF2, dyPanels: winoDyPanels, output: winoFilterOutput}

// winoGradPlan holds the sizes of one Winograd weight gradient.
type winoGradPlan struct {
	g              ConvGeometry
	f              *winoGradForm
	kern           *kernel[float32]
	n, nPad        int // output channels, and rounded up to the micro-kernel width (the row stride of M)
	cPad           int // input channels rounded up to the micro-kernel height (the rows of M, the row stride of V)
	tilesH, tilesW int // m×m output tiles per image row and column
	tiles          int // all tiles: Batch·tilesH·tilesW
	tb             int // tiles per block
}

// winoGradMaxParts is the most parts the tiles are split into, each part's products summed into its
// own a² matrices M_ξ: 12 spreads evenly over 1, 2, 3, 4 and 6 goroutines.
const winoGradMaxParts = 12

// winoGradPartsElems caps the elements of all the parts' M_ξ together (at least two parts are kept).
const winoGradPartsElems = 1 << 20

// winoGradPartTiles is the fewest tiles of a part of F(3×3, 2×2) (of F(3×3, 4×4): 16/36 of it, the
// same products), so that clearing and adding up the parts' M_ξ stays small beside the products
// (2·tiles flops per element of M).
const winoGradPartTiles = 256

// winoGradLargeMBytes is the size of a part's M_ξ (4·a²·cPad·nPad bytes) above which, on the wide
// micro-kernel, the blocks of tiles are made larger (see winoGradSplit).
const winoGradLargeMBytes = 2 << 20

// winoGradSplit returns the tiles per block and the number of parts of a weight gradient with the
// given number of tiles, a² transformed positions and padded channel counts: functions of the
// sizes only, never of the number of goroutines, so that the sums, and therefore dw, are the same
// bits on any core count. blockTiles > 0 overrides the tiles per block. wide: the products run on
// the wide micro-kernel (14×32, the avx512 path); where a part's M_ξ exceed winoGradLargeMBytes
// they are read and written from the third-level cache once per block, as the block's transformed
// tiles (4·a²·(cPad + nPad) bytes per tile) are once per tile, and blocks of at least
// cPad·nPad/(cPad + nPad) tiles, with which M costs no more than the tiles, took less time: at
// 16×16×128 → 128 with F(3×3, 4×4) (M 2.6 MB), 64 tiles instead of 19 took 10.2–11.0 CPU-ms
// against 10.9–12.1, 48 tiles 9.5–11.1 against 11.6–13.7 (interleaved runs on the shared
// machine). On the avx2 path larger blocks were slower (F(3×3, 2×2) at 8×8×256).
func winoGradSplit(tiles, xis, cPad, nPad, blockTiles int, wide bool) (tb, parts int) {
	parts = max(1, min(winoGradMaxParts, tiles*xis/(16*winoGradPartTiles), max(2, winoGradPartsElems/(xis*cPad*nPad))))
	tb = blockTiles
	if tb <= 0 {
		tb = max(winoGradMinBlockTiles, min(winoGradMaxBlockTiles, winoGradBlockBytes/(xis*4*(cPad+nPad))))
		if wide && 4*xis*cPad*nPad > winoGradLargeMBytes {
			tb = max(tb, min(winoGradMaxBlockTiles, cPad*nPad/(cPad+nPad)))
		}
		tb = min(tb, (tiles+parts-1)/parts) // at least one block per part
	}
	tb = max(1, tb)
	return tb, min(parts, (tiles+tb-1)/tb)
}

// sconvWinogradFilter runs the weight gradient on validated, non-empty arguments with form f and up to
// threads goroutines; blockTiles > 0 overrides the tiles per block (for tuning and tests).
//
// The blocks of tiles are cut into a fixed number of contiguous parts (winoGradSplit); the
// goroutines take the parts in turn, each part's blocks are summed in order into the part's own
// M_ξ, and the parts are added in order at the end.
func sconvWinogradFilter(kern *kernel[float32], f *winoGradForm, g ConvGeometry, n int, x, dy, dw []float32, threads, blockTiles int) {
	p := newWinoGradPlan(kern, f, g, n)
	c := g.InC
	tm, xis := f.in.m, f.in.a*f.in.a
	if blockTiles <= 0 && 4*xis*p.cPad*p.nPad > winoGradByXiMinBytes {
		sconvWinogradFilterByXi(kern, f, g, n, x, dy, dw, threads, 0)
		return
	}

	tb, parts := winoGradSplit(p.tiles, xis, p.cPad, p.nPad, blockTiles, kern.nr >= 32)
	p.tb = tb
	blocks := (p.tiles + p.tb - 1) / p.tb
	threads = max(1, min(threads, parts))

	mSize := xis * p.cPad * p.nPad
	work := make([]*buffers[float32], threads)
	for t := range work {
		// V's row stride is cPad, not InC rounded to 8 for aligned stores: a power-of-two stride
		// (InC = 32, 64) puts the micro-kernel's strided reads of V in the same cache sets, and the
		// gradient ran 15–30% slower per CPU-second than with the stride 66 (a stride of 72
		// measured the same as 66).
		work[t] = getBuffers[float32](xis*p.tb*p.cPad, xis*p.tb*p.nPad, xis*c+tm*tm*n)
		defer putBuffers(work[t])
		// The padding channels of V and E are never written by the transforms: zero them once, so
		// the unused rows and columns of M stay finite.
		clear(work[t].a)
		clear(work[t].b)
	}
	acc := getBuffers[float32](parts*mSize, 0, 0)
	defer putBuffers(acc)
	ms := acc.a
	parallelFor(threads, parts, func(wk, q int) {
		buf := work[wk]
		b0 := q * blocks / parts
		for blk := b0; blk < (q+1)*blocks/parts; blk++ {
			p.block(blk*p.tb, x, dy, buf.a, buf.b, buf.tile, ms[q*mSize:(q+1)*mSize], blk == b0)
		}
	})
	p.output(ms, parts, dw, threads)
}

// output sums the parts' M_ξ (part q at m[q·a²·cPad·nPad:]) and transforms them into dw, split
// over up to threads goroutines by runs of input channels.
func (p *winoGradPlan) output(m []float32, parts int, dw []float32, threads int) {
	c, n := p.g.InC, p.n
	rowsPer := max(1, 4096/max(1, n))
	parallelFor(threads, (c+rowsPer-1)/rowsPer, func(_, item int) {
		p.filterOutput(m, parts, dw, item*rowsPer, min(c, (item+1)*rowsPer))
	})
}

// newWinoGradPlan returns the plan of the weight gradient of g with n output channels, form f and
// micro-kernel kern, its tiles per block not set.
func newWinoGradPlan(kern *kernel[float32], f *winoGradForm, g ConvGeometry, n int) winoGradPlan {
	mr, nr, tm := kern.mr, kern.nr, f.in.m
	p := winoGradPlan{g: g, f: f, kern: kern, n: n, nPad: (n + nr - 1) / nr * nr, cPad: (g.InC + mr - 1) / mr * mr,
		tilesH: (g.OutH + tm - 1) / tm, tilesW: (g.OutW + tm - 1) / tm}
	p.tiles = g.Batch * p.tilesH * p.tilesW
	return p
}

// winoGradByXiMinBytes is the size of the a² matrices M_ξ (4·a²·cPad·nPad bytes) above which
// sconvWinogradFilter runs by ξ (sconvWinogradFilterByXi) instead of by blocks of tiles: blocks of
// a few dozen tiles, whose transformed tiles stay in the second-level cache, read and write all of
// M once per block, which costs more than the products once M no longer fits that cache (the
// 8×8×256 → 256 layer of resnet8x4 with F(3×3, 4×4): 9.8 MB). F(3×3, 2×2) there (4.4 MB on the
// avx512 path, 4.2 MB on avx2) stays on the blocks: on avx2 it ran 3–5% slower by ξ.
const winoGradByXiMinBytes = 8 << 20

// winoGradChunkBytes is the most bytes of the transformed tiles (V and E, 4·a²·tiles·(cPad + nPad))
// of one chunk of sconvWinogradFilterByXi: each chunk reads and writes M once. At 8×8×256 → 256
// with F(3×3, 4×4) (256 tiles, 75 KB of V and E each), chunks of 64 tiles took no more time than
// one chunk of all 256 (9.0–9.4 against 10.1–10.2 CPU-ms in one run of interleaved calls, the
// same within the noise in another, on the shared machine) for a quarter of the workspace.
const winoGradChunkBytes = 6 << 20

// sconvWinogradFilterByXi is sconvWinogradFilter with the loops turned around, for gradients whose
// M_ξ are large and whose tiles are few: the tiles are cut into chunks of chunkTiles
// (winoGradChunkBytes when chunkTiles ≤ 0; a function of the sizes only); all the tiles of a chunk
// are transformed first (split over the goroutines by runs of tiles), then each product
// M_ξ[:, panel] += V_ξᵀ·E_ξ[:, panel] runs over the whole chunk at once (split over the goroutines
// by ξ and panel of nr output channels). There is one set of M_ξ, each element of which is
// summed by the same micro-kernel calls in the same order on any number of goroutines.
func sconvWinogradFilterByXi(kern *kernel[float32], f *winoGradForm, g ConvGeometry, n int, x, dy, dw []float32, threads, chunkTiles int) {
	p := newWinoGradPlan(kern, f, g, n)
	c, nr := g.InC, kern.nr
	tm, xis := f.in.m, f.in.a*f.in.a
	if chunkTiles <= 0 {
		// Chunks of near-equal size, none over winoGradChunkBytes.
		most := max(1, winoGradChunkBytes/(4*xis*(p.cPad+p.nPad)))
		chunks := (p.tiles + most - 1) / most
		chunkTiles = (p.tiles + chunks - 1) / chunks
	}
	p.tb = max(1, min(chunkTiles, p.tiles))
	threads = max(1, threads)
	vs, es, mStr := p.tb*p.cPad, p.tb*p.nPad, p.cPad*p.nPad // strides between the ξ of v, e and m
	scratchSize := xis*c + tm*tm*n
	buf := getBuffers[float32](xis*vs, xis*es, threads*scratchSize)
	defer putBuffers(buf)
	v, e := buf.a, buf.b
	acc := getBuffers[float32](xis*mStr, 0, 0)
	defer putBuffers(acc)
	m := acc.a

	const tilesPerItem = 4
	panels := p.nPad / nr
	padE := n % nr // the padding columns of E's last panel start here (none when 0)
	for t0 := 0; t0 < p.tiles; t0 += p.tb {
		cnt := min(p.tb, p.tiles-t0)
		parallelFor(threads, (cnt+tilesPerItem-1)/tilesPerItem, func(wk, item int) {
			sc := buf.tile[wk*scratchSize : (wk+1)*scratchSize]
			for t := item * tilesPerItem; t < min(cnt, (item+1)*tilesPerItem); t++ {
				p.transformTile(t0+t, t, x, dy, v, e, sc[:xis*c], sc[xis*c:])
				// The padding channels are never written by the transforms: zero them, so that the
				// unused rows and columns of M stay finite.
				for xi := 0; xi < xis; xi++ {
					clear(v[xi*vs+t*p.cPad+c : xi*vs+(t+1)*p.cPad])
					if padE != 0 {
						row := xi*es + (panels-1)*p.tb*nr + t*nr
						clear(e[row+padE : row+nr])
					}
				}
			}
		})
		beta := float32(1)
		if t0 == 0 {
			beta = 0
		}
		parallelFor(threads, xis*panels, func(_, item int) {
			xi, jr := item/panels, item%panels*nr
			p.panelProduct(cnt, v[xi*vs:], e[xi*es+jr*p.tb:], m[xi*mStr+jr:], beta)
		})
	}
	p.output(m, 1, dw, threads)
}

// block accumulates the products of tiles [t0, t0+tb) (fewer for the last block) into m
// (a²·cPad·nPad, M_ξ [cPad, nPad] at ξ·cPad·nPad), or writes them there without reading m when
// first (the first block of a part): v (a²·tb·cPad) receives the transformed
// inputs V_ξ [tb, cPad], e (a²·tb·nPad) the transformed gradients E_ξ packed as the micro-kernel's B
// panels (panel q holds channels q·nr … q·nr+nr−1, tile-major), and scratch (a²·InC + m²·n) the
// zero-padded tiles at the borders.
func (p *winoGradPlan) block(t0 int, x, dy, v, e, scratch, m []float32, first bool) {
	c, n := p.g.InC, p.n
	nr := p.kern.nr
	tm, xis := p.f.in.m, p.f.in.a*p.f.in.a
	cnt := min(p.tb, p.tiles-t0)
	vs, es, mStr := p.tb*p.cPad, p.tb*p.nPad, p.cPad*p.nPad // strides between the ξ of v, e and m
	patch, dyPatch := scratch[:xis*c], scratch[xis*c:xis*c+tm*tm*n]

	for t := 0; t < cnt; t++ {
		p.transformTile(t0+t, t, x, dy, v, e, patch, dyPatch)
	}

	// M_ξ += V_ξᵀ·E_ξ (M_ξ = V_ξᵀ·E_ξ for the first block): V_ξ is read in place as the transposed A operand (rows = input channels,
	// contiguous; steps = tiles, cPad apart); each packed panel of E_ξ (cnt×nr) stays in L1 while
	// it meets every row tile of V_ξ.
	beta := float32(1)
	if first {
		beta = 0
	}
	for xi := 0; xi < xis; xi++ {
		for jr := 0; jr < p.nPad; jr += nr {
			p.panelProduct(cnt, v[xi*vs:], e[xi*es+jr*p.tb:], m[xi*mStr+jr:], beta)
		}
	}
}

// transformTile writes the transformed input and gradient tiles of tile into row t of the block
// buffers v and e (layout of block): V_ξ[t, :] = (Bᵀ·d·B)[ξ] and E_ξ[t, :] = (A·e·Aᵀ)[ξ], the
// tiles over the image borders zero-padded through patch (a²·InC) and dyPatch (m²·n).
func (p *winoGradPlan) transformTile(tile, t int, x, dy, v, e, patch, dyPatch []float32) {
	g, f := p.g, p.f
	c, n := g.InC, p.n
	nr := p.kern.nr
	tm := f.in.m
	perImage := p.tilesH * p.tilesW
	b, th, tw := tile/perImage, tile%perImage/p.tilesW, tile%p.tilesW

	// Input tile: V_ξ[t, :] = (Bᵀ·d_t·B)[ξ].
	winoInputTile(f.in, g, x, b, tm*th-g.PadTop, tm*tw-g.PadLeft, c, patch, v[t*p.cPad:], p.tb*p.cPad)

	// Gradient tile: E_ξ[t, :] = (A·e_t·Aᵀ)[ξ], zero past the last output row or column.
	oh0, ow0 := tm*th, tm*tw
	src, rs := dy[((b*g.OutH+oh0)*g.OutW+ow0)*n:], g.OutW*n
	if oh0+tm > g.OutH || ow0+tm > g.OutW {
		for a := 0; a < tm; a++ {
			for d := 0; d < tm; d++ {
				dst := dyPatch[(tm*a+d)*n : (tm*a+d+1)*n]
				if oh0+a >= g.OutH || ow0+d >= g.OutW {
					clear(dst)
					continue
				}
				copy(dst, dy[((b*g.OutH+oh0+a)*g.OutW+ow0+d)*n:])
			}
		}
		src, rs = dyPatch, tm*n
	}
	f.dyPanels(src, rs, n, e[t*nr:], p.tb*p.nPad, p.tb*nr, nr, n)
}

// panelProduct computes M_ξ[:, panel] = V_ξᵀ·E_ξ[:, panel] + beta·M_ξ[:, panel] over cnt tiles: a
// is V_ξ (read in place as the transposed A operand: rows = input channels, contiguous; steps =
// tiles, cPad apart), panel the packed panel of E_ξ (cnt×nr; it stays in L1 while it meets every
// row tile of V_ξ), cm the panel's first column of M_ξ (row stride nPad).
func (p *winoGradPlan) panelProduct(cnt int, a, panel, cm []float32, beta float32) {
	mr := p.kern.mr
	for ir := 0; ir < p.cPad; ir += mr {
		p.kern.fn(cnt, &a[ir], 1, p.cPad, &panel[0], &cm[ir*p.nPad], p.nPad, beta)
	}
}

// filterOutputState is filterOutput's workspace, pooled: the form's output transform is called
// through a function value, so arrays passed to it by pointer would be allocated on every call.
type filterOutputState struct {
	sum     [winoMaxXi][]float32
	out     [9][]float32
	buf     []float32
	scratch [winoMaxXi * 16]float32 // for outputVec
}

var filterOutputPool = sync.Pool{New: func() any { return new(filterOutputState) }}

// filterOutput sums the parts' M_ξ (part q at m[q·a²·cPad·nPad:]), in order, for input channels
// [c0, c1) and writes dw[kh, kw, c, :] = (Gᵀ·M·G)[kh][kw] for them (the form's output transform;
// its vector form, where there is one, for the channels it takes).
func (p *winoGradPlan) filterOutput(m []float32, parts int, dw []float32, c0, c1 int) {
	c, n, nPad := p.g.InC, p.n, p.nPad
	mStr := p.cPad * nPad
	xis := p.f.in.a * p.f.in.a
	mSize := xis * mStr
	st := filterOutputPool.Get().(*filterOutputState)
	defer func() {
		st.out = [9][]float32{} // do not keep dw reachable from the pool
		filterOutputPool.Put(st)
	}()
	if cap(st.buf) < xis*n {
		st.buf = make([]float32, xis*n)
	}
	sum, out := &st.sum, &st.out
	for xi := range xis {
		sum[xi] = st.buf[xi*n : (xi+1)*n]
	}
	for ci := c0; ci < c1; ci++ {
		j0 := 0
		if p.f.outputVec != nil {
			j0 = p.f.outputVec(m[ci*nPad:], mStr, parts, mSize, dw[ci*n:], c*n, n, &st.scratch)
		}
		if j0 == n {
			continue
		}
		for xi := range xis {
			dst := sum[xi][:n-j0]
			copy(dst, m[xi*mStr+ci*nPad+j0:])
			for q := 1; q < parts; q++ {
				src := m[q*mSize+xi*mStr+ci*nPad+j0:][:len(dst)]
				for j := range dst {
					dst[j] += src[j]
				}
			}
		}
		for k := range out {
			out[k] = dw[(k*c+ci)*n+j0:][:n-j0]
		}
		p.f.output(sum, out, n-j0)
	}
}

// winoFilterOutput writes out[3k+l][j] = (Gᵀ·m·G)[k][l] for the 4×4 tiles m[i][j'] = s[4i+j'][j]
// of channels j < n, G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]: with the rows t_k of Gᵀ·m,
// t₀ = m₀ + ½(m₁+m₂), t₁ = ½(m₁−m₂), t₂ = ½(m₁+m₂) + m₃, and the same on the columns.
func winoFilterOutput(s *[winoMaxXi][]float32, out *[9][]float32, n int) {
	for j := 0; j < n; j++ {
		var t [3][4]float32
		for l := 0; l < 4; l++ {
			m0, m1, m2, m3 := s[l][j], s[4+l][j], s[8+l][j], s[12+l][j]
			h := 0.5 * (m1 + m2)
			t[0][l] = m0 + h
			t[1][l] = 0.5 * (m1 - m2)
			t[2][l] = h + m3
		}
		for k := 0; k < 3; k++ {
			h := 0.5 * (t[k][1] + t[k][2])
			out[3*k][j] = t[k][0] + h
			out[3*k+1][j] = 0.5 * (t[k][1] - t[k][2])
			out[3*k+2][j] = h + t[k][3]
		}
	}
}

// winoDyGo is the portable gradient-tile transform of channels [c0, c1): e[a][b] = src[a·rs + b·cs + ch],
// dst[(4i+j)·ds + ch] = (A·e·Aᵀ)[i][j], A = [1 0; 1 1; 1 −1; 0 −1], with the operations of winoDyAVX
// (the negations as 0 − x).
func winoDyGo(src []float32, rs, cs int, dst []float32, ds, c0, c1 int) {
	for ch := c0; ch < c1; ch++ {
		e00, e01, e10, e11 := src[ch], src[cs+ch], src[rs+ch], src[rs+cs+ch]
		// Rows (p, q) of A·e; row i of A·e·Aᵀ is [p, p+q, p−q, −q].
		s0, s1 := e00+e10, e01+e11
		d0, d1 := e00-e10, e01-e11
		var z float32
		rows := [4][4]float32{
			{e00, e00 + e01, e00 - e01, z - e01},
			{s0, s0 + s1, s0 - s1, z - s1},
			{d0, d0 + d1, d0 - d1, z - d1},
			{z - e10, z - (e10 + e11), e11 - e10, e11},
		}
		for i := 0; i < 4; i++ {
			for j := 0; j < 4; j++ {
				dst[(4*i+j)*ds+ch] = rows[i][j]
			}
		}
	}
}
