package kernels

import (
	"fmt"
	"sync"
)

// Winograd F(2×2, 3×3) convolution (Lavin and Gray, "Fast Algorithms for Convolutional Neural
// Networks", CVPR 2016, section 4): a 2×2 output tile Y of a 3×3 correlation of the 4×4 input tile
// d with the filter g is
//
//	Y = Aᵀ·[(G·g·Gᵀ) ⊙ (Bᵀ·d·B)]·A,
//	Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1], G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1], Aᵀ = [1 1 1 0; 0 1 −1 −1].
//
// Summed over the input channels, the element-wise product of each of the 16 positions ξ of the
// 4×4 transformed tiles is a matrix product M_ξ = V_ξ·U_ξ with V_ξ [tiles, InC] (transformed
// input) and U_ξ [InC, OutC] (transformed filter): 16 multiplications per output pixel pair of
// channels and 2×2 tile instead of 36, 2.25× fewer flops than im2col. The transforms use only
// 0, ±1 and ±½, so the result is as accurate as the direct sum up to a few roundings.

// HWIOStrides returns the element strides (kh, kw, in, out) of dense HWIO weights
// [3, 3, inC, outC], for SconvWinograd3x3.
func HWIOStrides(inC, outC int) [4]int {
	return [4]int{3 * inC * outC, inC * outC, outC, 1}
}

// WinogradApplies reports whether SconvWinograd3x3 computes the convolution of geometry g: a 3×3
// window with unit strides, dilations and input dilation (any padding and output size).
func (g ConvGeometry) WinogradApplies() bool {
	if g.Validate() != nil {
		return false
	}
	g = g.norm()
	return g.KH == 3 && g.KW == 3 && g.StrideH == 1 && g.StrideW == 1 && g.DilationH == 1 && g.DilationW == 1 &&
		g.InDilationH == 1 && g.InDilationW == 1
}

// checkWinogradArgs validates the arguments shared by the Winograd entry points fn: geometry g (which
// must admit Winograd), n output channels, the input x and the [Batch, OutH, OutW, n] tensor y
// (named yName in errors). It returns g normalised.
func checkWinogradArgs(fn string, g ConvGeometry, n int, x []float32, yName string, y []float32) (ConvGeometry, error) {
	if err := g.Validate(); err != nil {
		return g, err
	}
	if !g.WinogradApplies() {
		return g, fmt.Errorf("kernels: %s: conv geometry %+v: needs a 3×3 window with unit strides and dilations", fn, g)
	}
	g = g.norm()
	if n < 0 {
		return g, fmt.Errorf("kernels: %s: negative output channels %d", fn, n)
	}
	if len(x) < g.InputSize() {
		return g, fmt.Errorf("kernels: %s: x: %d elements, geometry needs %d", fn, len(x), g.InputSize())
	}
	if len(y) < g.Pixels()*n {
		return g, fmt.Errorf("kernels: %s: %s: %d elements, needs %d for [%d, %d, %d, %d]",
			fn, yName, len(y), g.Pixels()*n, g.Batch, g.OutH, g.OutW, n)
	}
	return g, nil
}

// SconvWinograd3x3 computes the stride-1 3×3 convolution out = im2col(x)·w of geometry g (see
// ConvGeometry; g.WinogradApplies() must hold) with Winograd F(2×2, 3×3), overwriting out.
//
// x: [Batch, InH, InW, InC]; out: [Batch, OutH, OutW, n] (dense, NHWC); w holds the weights of
// window position (kh, kw), input channel c and output channel o at
// w[kh·wStr[0] + kw·wStr[1] + c·wStr[2] + o·wStr[3]] (HWIOStrides(InC, n) for dense HWIO
// [3, 3, InC, n]; other strides read a transposed layout in place). The output is computed in
// blocks of 2×2 tiles, split over all cores: each block's input tiles are transformed, multiplied
// by the transformed filter with the GEMM micro-kernel, and transformed back into out.
func SconvWinograd3x3(g ConvGeometry, n int, x, w []float32, wStr [4]int, out []float32) error {
	return sconvWinogradEntry("SconvWinograd3x3", winoF2, g, n, x, w, wStr, out)
}

// sconvWinogradEntry validates the arguments of the forward entry point fn and runs form f.
func sconvWinogradEntry(fn string, f *winoForm, g ConvGeometry, n int, x, w []float32, wStr [4]int, out []float32) error {
	g, err := checkWinogradArgs(fn, g, n, x, "out", out)
	if err != nil {
		return err
	}
	if g.Pixels() == 0 || n == 0 {
		return nil
	}
	if g.InC == 0 {
		clear(out[:g.Pixels()*n])
		return nil
	}
	if err := checkWeightStrides(g, n, w, wStr); err != nil {
		return fmt.Errorf("kernels: %s: %w", fn, err)
	}
	sconvWinograd(cur().winoFor(n), f, g, n, x, w, wStr, out, Threads(), 0)
	return nil
}

// winoForm is one Winograd algorithm F(m×m, 3×3): m×m output tiles from a×a = (m+2)×(m+2)
// input tiles, with a² products per tile and channel pair.
type winoForm struct {
	name string
	m, a int
	// input transforms channels [0, c) of the a×a tile d[i][j] = src[i·rs + j·cs + ch] into
	// dst[(a·i+j)·ds + ch] = (Bᵀ·d·B)[i][j].
	input func(src []float32, rs, cs int, dst []float32, ds, c int)
	// inputEdge, where not nil, computes input on a tile that leaves the image, straight from it:
	// d[i][j] = x[off + i·rs + j·cs + ch] where bit i of rows and bit j of cols are set, 0
	// elsewhere, with the bits of input on a zero-padded copy; it reports false, computing
	// nothing, where the active path has no such transform (the tile is then copied).
	inputEdge func(x []float32, off, rs, cs int, rows, cols uint8, dst []float32, ds, c int) bool
	// output transforms channels [0, c) of the a×a tile m[i][j] = src[(a·i+j)·ss + ch] into the
	// m×m block dst[r·rs + s·cs + ch] = (Aᵀ·m·A)[r][s].
	output func(src []float32, ss int, dst []float32, rs, cs, c int)
	// filter writes u[(a·i+j)·us + ci·rs + l] = (G·g·Gᵀ)[i][j] for the 3×3 filters
	// g[3·kh+kw][ci][l] of the channel pairs ci < nc, l < nj (a block staged by transformFilter).
	filter func(g *winoFilterIn, nc, nj int, u []float32, us, rs int)
	// blockBytes is the size aimed at for one block's transformed input and GEMM output
	// (a²·tiles·(InC + OutC) floats), so that both stay in cache between the transforms and the
	// GEMMs; maxBlockTiles caps the tiles of one block.
	blockBytes, maxBlockTiles int
}

// winoMaxXi is the most transformed positions ξ of a tile (F(4×4, 3×3): 6×6).
const winoMaxXi = 36

// winoFilterIn is a block of filters staged by transformFilter: [kh·3+kw][input channel][output
// channel].
type winoFilterIn [9][winoFilterBlock][winoFilterBlock]float32

// winoFilterInPool holds staging blocks (9 KiB, too large for the goroutines' stacks).
var winoFilterInPool = sync.Pool{New: func() any { return new(winoFilterIn) }}

// winoF2 is F(2×2, 3×3). Block size measured on the resnet8x4 layers (64 to 256 channels, per
// CPU-second): flat from 6 to 36 tiles per block, slower from 48 (InC = OutC = 64) or 96 (256)
// tiles on.
var winoF2 = &winoForm{name: "F(2×2,3×3)", m: 2, a: 4, input: winoInput, output: winoOutput, filter: winoFilterF2,
	blockBytes: 192 << 10, maxBlockTiles: 36}

// winoPlan holds the sizes of one Winograd convolution and its transformed, packed filter.
type winoPlan struct {
	g              ConvGeometry
	f              *winoForm
	kern           *kernel[float32]
	n, nPad        int // output channels, and rounded up to the micro-kernel width (the row stride of M)
	tilesH, tilesW int // m×m output tiles per image row and column
	tiles          int // all tiles: Batch·tilesH·tilesW
	tb             int // tiles per block, a multiple of the micro-kernel height
	kc             int // input channels per micro-kernel call
	u              []float32
	uStride        int // elements between the packed U_ξ
}

// sconvWinograd runs the convolution on validated arguments with form f and up to threads
// goroutines; blockTiles > 0 overrides the tiles per block (for tuning).
func sconvWinograd(kern *kernel[float32], f *winoForm, g ConvGeometry, n int, x, w []float32, wStr [4]int, out []float32, threads, blockTiles int) {
	mr, nr := kern.mr, kern.nr
	if nr%winoFilterBlock != 0 && nr > winoFilterBlock {
		panic(fmt.Errorf("kernels: micro-kernel width %d: not a multiple of %d", nr, winoFilterBlock))
	}
	c := g.InC
	xis := f.a * f.a
	p := winoPlan{g: g, f: f, kern: kern, n: n, nPad: (n + nr - 1) / nr * nr,
		tilesH: (g.OutH + f.m - 1) / f.m, tilesW: (g.OutW + f.m - 1) / f.m, kc: blockSize(c, kern.kc, 1)}
	p.tiles = g.Batch * p.tilesH * p.tilesW
	// The U_ξ are 64 bytes more than a multiple of a large power of two apart, so that the
	// filter transform's rows (one per ξ) do not all fall into the same cache sets.
	p.uStride = p.nPad*c + 16

	tb := blockTiles
	if tb <= 0 {
		tb = min(f.maxBlockTiles, f.blockBytes/(xis*4*(c+p.nPad)))
		// At least two blocks per goroutine, so that a core slowed by other work takes fewer.
		tb = min(tb, (p.tiles+2*threads-1)/(2*threads))
	}
	p.tb = max(mr, (tb+mr-1)/mr*mr)
	blocks := (p.tiles + p.tb - 1) / p.tb
	threads = max(1, min(threads, blocks))

	ubuf := getBuffers[float32](xis*p.uStride, 0, 0)
	defer putBuffers(ubuf)
	p.u = ubuf.a
	parallelFor(threads, (c+winoFilterBlock-1)/winoFilterBlock, func(_, item int) {
		p.transformFilter(w, wStr, item*winoFilterBlock, min(c, (item+1)*winoFilterBlock))
	})

	work := make([]*buffers[float32], threads)
	for t := range work {
		work[t] = getBuffers[float32](xis*p.vStride(), xis*p.mStride(), max(xis*c, f.m*f.m*n))
		defer putBuffers(work[t])
	}
	parallelFor(threads, blocks, func(wk, blk int) {
		buf := work[wk]
		p.block(blk*p.tb, x, out, buf.a, buf.b, buf.tile)
	})
}

// winoFilterBlock is the number of input channels, and the most output channels, that
// transformFilter handles at a time: a micro-kernel's panel of nr ≤ 16 columns, or 16 columns of
// a wider one (nr a multiple of 16).
const winoFilterBlock = 16

// transformFilter writes U_ξ = (G·g·Gᵀ)[ξ/a][ξ%a] for input channels [c0, c1) and all output
// channels into p.u, packed as the micro-kernel's B panels (panel q holds output channels
// q·nr … q·nr+nr−1, step-major by input channel), zero past the last output channel.
//
// It works on blocks of 16 input × nr output channels staged in a local array: the nine window
// positions of w lie a multiple of a large power of two apart and share cache sets, so they are
// read in whole contiguous runs, one position at a time.
func (p *winoPlan) transformFilter(w []float32, wStr [4]int, c0, c1 int) {
	c, nr := p.g.InC, p.kern.nr
	g := winoFilterInPool.Get().(*winoFilterIn)
	defer winoFilterInPool.Put(g)
	sub := min(nr, winoFilterBlock) // panels wider than winoFilterBlock are done 16 columns at a time
	for cb := c0; cb < c1; cb += winoFilterBlock {
		nc := min(winoFilterBlock, c1-cb)
		for o0 := 0; o0 < p.nPad; o0 += sub {
			cols := max(0, min(sub, p.n-o0))
			for k := 0; k < 9; k++ {
				base := k/3*wStr[0] + k%3*wStr[1] + cb*wStr[2] + o0*wStr[3]
				for ci := 0; ci < nc; ci++ {
					clear(g[k][ci][cols:]) // zero filters past the last output channel
				}
				if cols == 0 { // a wide panel's half wholly past the last output channel
					continue
				}
				if wStr[3] == 1 {
					for ci := 0; ci < nc; ci++ {
						copy(g[k][ci][:cols], w[base+ci*wStr[2]:][:cols])
					}
					continue
				}
				done := 0
				if wStr[2] == 1 { // the input gradient's transposed weights: 16×16 transposes
					done = stageTransposed(&g[k], w, base, wStr[3], cols, nc)
				}
				for j := 0; j < cols; j++ {
					for ci := done; ci < nc; ci++ {
						g[k][ci][j] = w[base+ci*wStr[2]+j*wStr[3]]
					}
				}
			}
			// Panel o0/nr, row cb, column o0%nr.
			p.f.filter(g, nc, sub, p.u[o0/nr*nr*c+cb*nr+o0%nr:], p.uStride, nr)
		}
	}
}

// winoFilterF2 is the F(2×2, 3×3) filter transform U = G·g·Gᵀ of a staged block.
func winoFilterF2(gb *winoFilterIn, nc, nj int, u []float32, us, rs int) {
	for ci := 0; ci < nc; ci++ {
		for j := 0; j < nj; j++ {
			g00, g01, g02 := gb[0][ci][j], gb[1][ci][j], gb[2][ci][j]
			g10, g11, g12 := gb[3][ci][j], gb[4][ci][j], gb[5][ci][j]
			g20, g21, g22 := gb[6][ci][j], gb[7][ci][j], gb[8][ci][j]
			// Rows a_i of a = G·g (4×3); row i of U = a·Gᵀ is
			// [a_i0, ½(a_i0+a_i1+a_i2), ½(a_i0−a_i1+a_i2), a_i2].
			a := [4][3]float32{
				{g00, g01, g02},
				{0.5 * (g00 + g10 + g20), 0.5 * (g01 + g11 + g21), 0.5 * (g02 + g12 + g22)},
				{0.5 * (g00 - g10 + g20), 0.5 * (g01 - g11 + g21), 0.5 * (g02 - g12 + g22)},
				{g20, g21, g22},
			}
			at := ci*rs + j
			for i := 0; i < 4; i++ {
				u[4*i*us+at] = a[i][0]
				u[(4*i+1)*us+at] = 0.5 * (a[i][0] + a[i][1] + a[i][2])
				u[(4*i+2)*us+at] = 0.5 * (a[i][0] - a[i][1] + a[i][2])
				u[(4*i+3)*us+at] = a[i][2]
			}
		}
	}
}

// vStride and mStride are the strides between the ξ of a block's transformed input V_ξ
// [tb, InC] and products M_ξ [tb, nPad]: 16 floats (a cache line) past their size, so that the
// a² rows of one tile, which the transforms read or write together, fall into different cache
// sets: at tb·InC = 14·256 floats (14 KB, 2 KB past a multiple of 4 KB) the 36 rows of a tile
// shared two sets of the L1 cache, and the input transform of 14 cached tiles took ~95 µs on
// one core against ~30 µs with the padding.
func (p *winoPlan) vStride() int { return p.tb*p.g.InC + 16 }
func (p *winoPlan) mStride() int { return p.tb*p.nPad + 16 }

// block computes the output tiles [t0, t0+tb) (fewer for the last block): v (a²·tb·InC) receives
// the transformed input V_ξ [tb, InC], m (a²·tb·nPad) the products M_ξ [tb, nPad], and scratch
// (a²·InC and m²·n) the zero-padded input tiles and the clipped output tiles at the borders.
func (p *winoPlan) block(t0 int, x, out, v, m, scratch []float32) {
	g, f := p.g, p.f
	c, n := g.InC, p.n
	mr, nr := p.kern.mr, p.kern.nr
	xis, tm := f.a*f.a, f.m
	cnt := min(p.tb, p.tiles-t0)
	rows := (cnt + mr - 1) / mr * mr
	vs, ms := p.vStride(), p.mStride() // strides between the ξ of v and of m
	perImage := p.tilesH * p.tilesW

	// Input transform: V_ξ[t, :] = (Bᵀ·d_t·B)[ξ].
	for t := 0; t < cnt; t++ {
		tile := t0 + t
		b, th, tw := tile/perImage, tile%perImage/p.tilesW, tile%p.tilesW
		winoInputTile(f, g, x, b, tm*th-g.PadTop, tm*tw-g.PadLeft, c, scratch[:xis*c], v[t*c:], vs)
	}
	if rows > cnt {
		for xi := 0; xi < xis; xi++ {
			clear(v[xi*vs+cnt*c : xi*vs+rows*c])
		}
	}

	// M_ξ = V_ξ·U_ξ: V_ξ is read in place (row stride InC) by the micro-kernel; each packed panel
	// of U_ξ (kc×nr) stays in L1 while it meets every row tile of the block.
	for xi := 0; xi < xis; xi++ {
		a, bu, cm := v[xi*vs:], p.u[xi*p.uStride:], m[xi*ms:]
		for pc := 0; pc < c; pc += p.kc {
			kb := min(p.kc, c-pc)
			var beta float32
			if pc > 0 {
				beta = 1
			}
			for jr := 0; jr < p.nPad; jr += nr {
				bp := &bu[jr*c+pc*nr]
				for ir := 0; ir < rows; ir += mr {
					p.kern.fn(kb, &a[ir*c+pc], c, 1, bp, &cm[ir*p.nPad+jr], p.nPad, beta)
				}
			}
		}
	}

	// Output transform: Y_t = Aᵀ·M_t·A.
	for t := 0; t < cnt; t++ {
		tile := t0 + t
		b, th, tw := tile/perImage, tile%perImage/p.tilesW, tile%p.tilesW
		oh0, ow0 := tm*th, tm*tw
		if oh0+tm <= g.OutH && ow0+tm <= g.OutW {
			f.output(m[t*p.nPad:], ms, out[((b*g.OutH+oh0)*g.OutW+ow0)*n:], g.OutW*n, n, n)
			continue
		}
		y := scratch[:tm*tm*n]
		f.output(m[t*p.nPad:], ms, y, tm*n, n, n)
		for r := 0; r < tm && oh0+r < g.OutH; r++ {
			for s := 0; s < tm && ow0+s < g.OutW; s++ {
				copy(out[((b*g.OutH+oh0+r)*g.OutW+ow0+s)*n:][:n], y[(tm*r+s)*n:])
			}
		}
	}
}

// winoInputTile transforms the a×a input tile of form f of image b whose top-left pixel is
// (ih0, iw0) into dst (stride ds between the a² transformed rows): straight from x when the tile
// lies inside the image, else through patch (a²·c values), zero-filled where the tile leaves the
// image.
func winoInputTile(f *winoForm, g ConvGeometry, x []float32, b, ih0, iw0, c int, patch, dst []float32, ds int) {
	ta := f.a
	if ih0 >= 0 && iw0 >= 0 && ih0+ta <= g.InH && iw0+ta <= g.InW {
		f.input(x[((b*g.InH+ih0)*g.InW+iw0)*c:], g.InW*c, c, dst, ds, c)
		return
	}
	if f.inputEdge != nil {
		var rows, cols uint8
		for i := 0; i < ta; i++ {
			if ih := ih0 + i; ih >= 0 && ih < g.InH {
				rows |= 1 << i
			}
			if iw := iw0 + i; iw >= 0 && iw < g.InW {
				cols |= 1 << i
			}
		}
		if f.inputEdge(x, ((b*g.InH+ih0)*g.InW+iw0)*c, g.InW*c, c, rows, cols, dst, ds, c) {
			return
		}
	}
	// The pixels of a tile row inside the image are one run of x: one copy per row.
	j0, j1 := max(0, -iw0), min(ta, g.InW-iw0)
	for i := 0; i < ta; i++ {
		row := patch[ta*i*c : ta*(i+1)*c]
		ih := ih0 + i
		if ih < 0 || ih >= g.InH || j0 >= j1 {
			clear(row)
			continue
		}
		clear(row[:j0*c])
		copy(row[j0*c:j1*c], x[((b*g.InH+ih)*g.InW+iw0+j0)*c:])
		clear(row[j1*c:])
	}
	f.input(patch, ta*c, c, dst, ds, c)
}

// winoInputGo is the portable input transform of channels [c0, c1): d[i][j] = src[i·rs + j·cs + ch],
// dst[(4i+j)·ds + ch] = (Bᵀ·d·B)[i][j], with the operations in the order of winoInputAVX.
func winoInputGo(src []float32, rs, cs int, dst []float32, ds, c0, c1 int) {
	for ch := c0; ch < c1; ch++ {
		var d [4][4]float32
		for i := 0; i < 4; i++ {
			for j := 0; j < 4; j++ {
				d[i][j] = src[i*rs+j*cs+ch]
			}
		}
		var r [4][4]float32 // Bᵀ·d
		for j := 0; j < 4; j++ {
			r[0][j] = d[0][j] - d[2][j]
			r[1][j] = d[1][j] + d[2][j]
			r[2][j] = d[2][j] - d[1][j]
			r[3][j] = d[1][j] - d[3][j]
		}
		for i := 0; i < 4; i++ {
			dst[4*i*ds+ch] = r[i][0] - r[i][2]
			dst[(4*i+1)*ds+ch] = r[i][1] + r[i][2]
			dst[(4*i+2)*ds+ch] = r[i][2] - r[i][1]
			dst[(4*i+3)*ds+ch] = r[i][1] - r[i][3]
		}
	}
}

// winoOutputGo is the portable output transform of channels [c0, c1): m[i][j] = src[(4i+j)·ss + ch],
// dst[a·rs + b·cs + ch] = (Aᵀ·m·A)[a][b], with the operations in the order of winoOutputAVX.
func winoOutputGo(src []float32, ss int, dst []float32, rs, cs, c0, c1 int) {
	for ch := c0; ch < c1; ch++ {
		var s [2][4]float32 // Aᵀ·m
		for j := 0; j < 4; j++ {
			m0, m1, m2, m3 := src[j*ss+ch], src[(4+j)*ss+ch], src[(8+j)*ss+ch], src[(12+j)*ss+ch]
			s[0][j] = (m1 + m2) + m0
			s[1][j] = (m1 - m2) - m3
		}
		for a := 0; a < 2; a++ {
			dst[a*rs+ch] = (s[a][0] + s[a][1]) + s[a][2]
			dst[a*rs+cs+ch] = (s[a][1] - s[a][2]) - s[a][3]
		}
	}
}
