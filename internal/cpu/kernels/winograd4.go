package kernels

// Winograd F(4×4, 3×3) (Lavin and Gray 2016, section 4): a 4×4 output tile of a 3×3 correlation
// of the 6×6 input tile d with the filter g is
//
//	Y = Aᵀ·[(G·g·Gᵀ) ⊙ (Bᵀ·d·B)]·A
//
// with the matrices of the one-dimensional F(4, 3), y_k = Σ_r g_r·d_{k+r} (k < 4, r < 3):
//
//	     ⎡4  0 −5  0  1  0⎤        ⎡ 1/4    0     0 ⎤
//	     ⎢0 −4 −4  1  1  0⎥        ⎢−1/6  −1/6  −1/6⎥        ⎡1  1  1  1  1  0⎤
//	Bᵀ = ⎢0  4 −4 −1  1  0⎥,  G =  ⎢−1/6   1/6  −1/6⎥,  Aᵀ =  ⎢0  1 −1  2 −2  0⎥
//	     ⎢0 −2 −1  2  1  0⎥        ⎢1/24  1/12   1/6⎥        ⎢0  1  1  4  4  0⎥
//	     ⎢0  2 −1 −2  1  0⎥        ⎢1/24 −1/12   1/6⎥        ⎣0  1 −1  8 −8  1⎦
//	     ⎣0  4  0 −5  0  1⎦        ⎣  0     0     1 ⎦
//
// They come from the Toom–Cook construction on the points p_k = 0, 1, −1, 2, −2 and ∞, with
// M(x) = Π_k (x − p_k) = x·(x² − 1)·(x² − 4) over the finite points: row k of Bᵀ holds the
// coefficients (ascending powers) of M(x)/(x − p_k) (x⁴ − 5x² + 4 for p = 0), and the ∞ row those
// of M(x); row k of G evaluates g(p) = g0 + g1·p + g2·p² at p_k divided by
// N_k = Π_{l≠k} (p_k − p_l) (4, −6, −6, 24, 24), and the ∞ row takes the leading coefficient g2;
// column k of Aᵀ holds the powers p_k⁰ … p_k³, and the ∞ column the leading term (0, 0, 0, 1).
// TestWinograd4Matrices checks y = Aᵀ·[(G·g) ⊙ (Bᵀ·d)] exactly on every unit g and d.
//
// Summed over the input channels, position ξ of the 6×6 transformed tiles is the matrix product
// M_ξ = V_ξ·U_ξ, as for F(2×2, 3×3): 36 products per 4×4 output tile (2.25 per output instead of
// 4 for F(2×2) and 9 for the direct sum). The larger transform entries (up to 5 in Bᵀ, 8 in Aᵀ,
// 1/6 and 1/24 in G) cost accuracy: the rounding errors of the input and output transforms grow
// with the sums of the absolute entries (|Bᵀ|·|d|·|B| up to 100·max|d|): in the tests the
// largest error is 6.7e-6 of the output scale, against 3.6e-7 for F(2×2) (about 15 times).
//
// The input and output transforms multiply only by powers of two (4·(d0 − d2) + (d4 − d2) for
// 4·d0 − 5·d2 + d4), so every product is exact and a fused multiply-add rounds as the separate
// multiply and add would: the vector transforms give the bits of the portable ones. The filter transform is likewise G·g·Gᵀ = (s·sᵀ) ⊙ (H·g·Hᵀ) with
// G = diag(s)·H, s = (1/4, −1/6, −1/6, 1/24, 1/24, 1) and the integer H (rows 1 0 0, 1 1 1,
// 1 −1 1, 1 2 4, 1 −2 4, 0 0 1): additions and exact doublings, then one rounded multiplication
// by s_i·s_j.

// winoF4 is F(4×4, 3×3). Block size: for the resnet8x4 layers the formula gives 14 tiles, one
// micro-kernel row tile (V and M of a block: 36·14·(InC + OutC) floats, 258 KB at 64 → 64
// channels), measured the fastest on one core at 32×32×64 and 16×16×128 against 28, 42, 56 and
// 84 tiles (at 32×32×64: 10.7 ms against 11.5, 11.6, 13.7 and 12.2).
var winoF4 = &winoForm{name: "F(4×4,3×3)", m: 4, a: 6, input: wino4Input, inputEdge: wino4InputEdge, output: wino4Output,
	filter: wino4Filter, blockBytes: 192 << 10, maxBlockTiles: 28}

// SconvWinograd3x3F4 is SconvWinograd3x3 computed with Winograd F(4×4, 3×3): 4×4 output tiles from
// 6×6 input tiles, 36 products per tile (2.25 multiplies per output instead of 4), less accurate
// (see winograd4.go).
func SconvWinograd3x3F4(g ConvGeometry, n int, x, w []float32, wStr [4]int, out []float32) error {
	return sconvWinogradEntry("SconvWinograd3x3F4", winoF4, g, n, x, w, wStr, out)
}

// wino4Scale[6i+j] = s_i·s_j, rounded to float32, with s = (1/4, −1/6, −1/6, 1/24, 1/24, 1) the
// row scales of G = diag(s)·H, H = [1 0 0; 1 1 1; 1 −1 1; 1 2 4; 1 −2 4; 0 0 1].
var wino4Scale = func() (sc [winoMaxXi]float32) {
	s := [6]float64{1.0 / 4, -1.0 / 6, -1.0 / 6, 1.0 / 24, 1.0 / 24, 1}
	for i := range s {
		for j := range s {
			sc[6*i+j] = float32(s[i] * s[j])
		}
	}
	return sc
}()

// wino4Filter1 is the one-dimensional integer filter transform h = H·g, in the operation order of
// the vector transform (all multiplications by powers of two, exact).
func wino4Filter1(g0, g1, g2 float32) (h0, h1, h2, h3, h4, h5 float32) {
	s := g0 + g2
	t := g0 + 4*g2
	return g0, s + g1, s - g1, t + 2*g1, t - 2*g1, g2
}

// winoFilterF4Go is the portable F(4×4, 3×3) filter transform of a staged block:
// U = G·g·Gᵀ = (s·sᵀ) ⊙ (H·g·Hᵀ), the integer transform H·g·Hᵀ (columns first) then one rounded
// multiplication by s_i·s_j, as wino4FilterAVX512 computes it.
func winoFilterF4Go(gb *winoFilterIn, nc, nj int, u []float32, us, rs int) {
	for ci := 0; ci < nc; ci++ {
		for j := 0; j < nj; j++ {
			var a [6][3]float32 // H·g
			for l := 0; l < 3; l++ {
				a[0][l], a[1][l], a[2][l], a[3][l], a[4][l], a[5][l] = wino4Filter1(gb[l][ci][j], gb[3+l][ci][j], gb[6+l][ci][j])
			}
			at := ci*rs + j
			for i := 0; i < 6; i++ {
				h := [6]float32{}
				h[0], h[1], h[2], h[3], h[4], h[5] = wino4Filter1(a[i][0], a[i][1], a[i][2])
				for q, v := range h {
					u[(6*i+q)*us+at] = v * wino4Scale[6*i+q]
				}
			}
		}
	}
}

// wino4In1 is the one-dimensional input transform r = Bᵀ·d, in the operation order of the vector
// transform (winograd4_avx512_amd64.s).
func wino4In1(d0, d1, d2, d3, d4, d5 float32) (r0, r1, r2, r3, r4, r5 float32) {
	p, q := d4-d2, d3-d1
	r0 = 4*(d0-d2) + p
	r1 = (d4 + d3) - 4*(d1+d2)
	r2 = (d4 - d3) + 4*(d1-d2)
	r3 = p + 2*q
	r4 = p - 2*q
	r5 = (d5 - d3) - 4*q
	return
}

// wino4Out1 is the one-dimensional output transform y = Aᵀ·m, in the operation order of the
// vector transform.
func wino4Out1(m0, m1, m2, m3, m4, m5 float32) (y0, y1, y2, y3 float32) {
	a, b := m1+m2, m1-m2
	c, d := m3+m4, m3-m4
	y0 = (a + m0) + c
	y1 = b + 2*d
	y2 = a + 4*c
	y3 = (b + 8*d) + m5
	return
}

// wino4InputGo is the portable F(4×4, 3×3) input transform of channels [c0, c1):
// d[i][j] = src[i·rs + j·cs + ch], dst[(6i+j)·ds + ch] = (Bᵀ·d·B)[i][j], rows (d·B) first, then
// columns, as wino4InputAVX512 does.
func wino4InputGo(src []float32, rs, cs int, dst []float32, ds, c0, c1 int) {
	for ch := c0; ch < c1; ch++ {
		var t [6][6]float32 // d·B
		for i := 0; i < 6; i++ {
			s := src[i*rs+ch:]
			t[i][0], t[i][1], t[i][2], t[i][3], t[i][4], t[i][5] = wino4In1(s[0], s[cs], s[2*cs], s[3*cs], s[4*cs], s[5*cs])
		}
		wino4InputCols(&t, dst, ds, ch)
	}
}

// wino4InputCols is the second stage of the input transform of channel ch: the columns of
// t = d·B, dst[(6i+j)·ds + ch] = (Bᵀ·t)[i][j].
func wino4InputCols(t *[6][6]float32, dst []float32, ds, ch int) {
	for j := 0; j < 6; j++ {
		r0, r1, r2, r3, r4, r5 := wino4In1(t[0][j], t[1][j], t[2][j], t[3][j], t[4][j], t[5][j])
		wino4PutCol(dst, ds, j, ch, r0, r1, r2, r3, r4, r5)
	}
}

// wino4PutCol writes column j of channel ch's transformed 6×6 tile: dst[(6i+j)·ds + ch] = r_i.
func wino4PutCol(dst []float32, ds, j, ch int, r0, r1, r2, r3, r4, r5 float32) {
	dst[j*ds+ch] = r0
	dst[(6+j)*ds+ch] = r1
	dst[(12+j)*ds+ch] = r2
	dst[(18+j)*ds+ch] = r3
	dst[(24+j)*ds+ch] = r4
	dst[(30+j)*ds+ch] = r5
}

// wino4InputEdgeGo is wino4InputGo on channels [c0, c1) of a border tile:
// d[i][j] = x[off + i·rs + j·cs + ch] where bit i of rows and bit j of cols are set, 0 elsewhere
// (those positions are not read; off may be negative). It gives the bits of wino4InputGo on a
// zero-padded copy of the tile.
func wino4InputEdgeGo(x []float32, off, rs, cs int, rows, cols uint8, dst []float32, ds, c0, c1 int) {
	for ch := c0; ch < c1; ch++ {
		var t [6][6]float32 // d·B
		for i := 0; i < 6; i++ {
			var d [6]float32
			if rows>>i&1 != 0 {
				for j := range d {
					if cols>>j&1 != 0 {
						d[j] = x[off+i*rs+j*cs+ch]
					}
				}
			}
			t[i][0], t[i][1], t[i][2], t[i][3], t[i][4], t[i][5] = wino4In1(d[0], d[1], d[2], d[3], d[4], d[5])
		}
		wino4InputCols(&t, dst, ds, ch)
	}
}

// wino4OutputGo is the portable F(4×4, 3×3) output transform of channels [c0, c1):
// m[i][j] = src[(6i+j)·ss + ch], dst[r·rs + s·cs + ch] = (Aᵀ·m·A)[r][s], columns (Aᵀ·m) first,
// then rows, as wino4OutputAVX512 does.
func wino4OutputGo(src []float32, ss int, dst []float32, rs, cs, c0, c1 int) {
	for ch := c0; ch < c1; ch++ {
		var s [4][6]float32 // Aᵀ·m
		for j := 0; j < 6; j++ {
			m := src[j*ss+ch:]
			s[0][j], s[1][j], s[2][j], s[3][j] = wino4Out1(m[0], m[6*ss], m[12*ss], m[18*ss], m[24*ss], m[30*ss])
		}
		for r := 0; r < 4; r++ {
			y0, y1, y2, y3 := wino4Out1(s[r][0], s[r][1], s[r][2], s[r][3], s[r][4], s[r][5])
			d := dst[r*rs+ch:]
			d[0], d[cs], d[2*cs], d[3*cs] = y0, y1, y2, y3
		}
	}
}

// winoF4MaxFilterBytes caps the transformed filter of an F(4×4, 3×3) convolution (36·InC·OutC
// floats), which every block of tiles streams once: the resnet8x4 layers with 128 → 128 channels
// (2.4 MB) run faster with F(4×4), those with 256 → 256 (9.4 MB) not reliably (see
// WinogradF4Pays); F(2×2)'s filter at 256 → 256 channels is 4.2 MB.
const winoF4MaxFilterBytes = 4 << 20

// WinogradF4Pays reports whether SconvWinograd3x3F4 is expected to be faster than
// SconvWinograd3x3 for geometry g with n output channels: for outputs at least 8 pixels high and
// wide (smaller ones were not measured and keep F(2×2)) whose transformed filter takes at most
// winoF4MaxFilterBytes. Measured per CPU-second on the resnet8x4 layers at batch 64, forward
// convolution and input gradient together (fastest of 2 to 5 interleaved runs on a shared
// machine), with two goroutines on the avx512 path: 1.40× faster at 32×32×64, 1.49× at
// 16×16×128, 1.39× at 32×32×32→64, but 0.86× at 8×8×256 (1.06× for the forward convolution
// alone), though 1.36× there on one core: its 9.4 MB filter, streamed once per block, makes it
// the layer most sensitive to the memory traffic of the other core and of other work. On one core,
// avx2 (8-lane transforms): 1.13× at 32×32×64, 1.5× at 16×16×128, 1.2× at 8×8×256; generic
// (forward only): 1.3× at 32×32×64. The filter cap does not apply where the products run on the
// wide micro-kernel (winoWide, the avx512 path from winoWideCols output channels), which reads
// each element of U once per 14 rows and 32 columns: there F(4×4) at 8×8×256 took 5.5–5.7 ms
// against F(2×2)'s 6.6–7.8 (BenchmarkWinogradWide, three interleaved runs, two goroutines).
func WinogradF4Pays(g ConvGeometry, n int) bool {
	if g.OutH < 8 || g.OutW < 8 {
		return false
	}
	return 36*4*g.InC*n <= winoF4MaxFilterBytes || cur().winoFor(n) != cur().wino
}

// Winograd F(3×3, 4×4) for the weight gradient (see winograd_grad.go): the transpose of F(4×4, 3×3).
// In one dimension, y = Aᵀ·[(G·g) ⊙ (Bᵀ·d)] gives for every g and e
// Σ_a e_a·y_a = Σ_k g_k·[Gᵀ·((A·e) ⊙ (Bᵀ·d))]_k, hence
//
//	Σ_{a<4} e_a·d_{a+k} = [Gᵀ·((A·e) ⊙ (Bᵀ·d))]_k  (k < 3, d of length 6),
//
// and in two dimensions the 3×3 correlation of the 6×6 input tile d (stride 4) with the 4×4
// gradient tile e is Gᵀ·[(A·e·Aᵀ) ⊙ (Bᵀ·d·B)]·G: the input transform is F(4×4)'s, the 4×4
// gradient tile takes the 6×4 matrix A (rows 1 0 0 0, 1 1 1 1, 1 −1 1 −1, 1 2 4 8, 1 −2 4 −8,
// 0 0 0 1: e evaluated at 0, 1, −1, 2, −2 and ∞) and the sums M of the 36 products return to the
// 3×3 window with the 3×6 matrix Gᵀ = Hᵀ·diag(s): Gᵀ·M·G = Hᵀ·[(s·sᵀ) ⊙ M]·H, one rounded
// multiplication by s_i·s_j (wino4Scale) and then the integer Hᵀ (rows 1 1 1 1 1 0, 0 1 −1 2 −2 0,
// 0 1 1 4 4 1). TestWinograd4Matrices checks the identity exactly. 36 products per 4×4 tile
// of outputs, 2.25 per output instead of F(3×3, 2×2)'s 4, and a larger error (A·e·Aᵀ reaches
// 225·max|e|; see TestSconvWinograd3x3FilterF4AgainstReference).

// winoGradF4 is F(3×3, 4×4).
var winoGradF4 = &winoGradForm{in: winoF4, dyPanels: wino4DyPanels, output: wino4FilterOutput, outputVec: wino4GradOutputVec}

// SconvWinograd3x3FilterF4 is SconvWinograd3x3Filter computed with Winograd F(3×3, 4×4): 6×6 input
// tiles, 4×4 gradient tiles, 36 products per tile (2.25 multiplies per output position instead of
// 4), less accurate.
func SconvWinograd3x3FilterF4(g ConvGeometry, n int, x, dy, dw []float32) error {
	return sconvWinogradFilterEntry("SconvWinograd3x3FilterF4", winoGradF4, g, n, x, dy, dw)
}

// wino4Dy1 is the one-dimensional gradient transform r = A·e: e evaluated at 0, 1, −1, 2, −2 and
// the leading coefficient (multiplications by powers of two only, exact).
func wino4Dy1(e0, e1, e2, e3 float32) (r0, r1, r2, r3, r4, r5 float32) {
	p, q := e0+e2, e1+e3
	u, v := e0+4*e2, 2*(e1+4*e3)
	return e0, p + q, p - q, u + v, u - v, e3
}

// wino4DyGo is the portable F(3×3, 4×4) gradient-tile transform of channels [c0, c1):
// e[i][j] = src[i·rs + j·cs + ch], dst[(6i+j)·ds + ch] = (A·e·Aᵀ)[i][j], rows (e·Aᵀ) first.
func wino4DyGo(src []float32, rs, cs int, dst []float32, ds, c0, c1 int) {
	for ch := c0; ch < c1; ch++ {
		var t [4][6]float32 // e·Aᵀ
		for i := 0; i < 4; i++ {
			s := src[i*rs+ch:]
			t[i][0], t[i][1], t[i][2], t[i][3], t[i][4], t[i][5] = wino4Dy1(s[0], s[cs], s[2*cs], s[3*cs])
		}
		for j := 0; j < 6; j++ {
			r0, r1, r2, r3, r4, r5 := wino4Dy1(t[0][j], t[1][j], t[2][j], t[3][j])
			wino4PutCol(dst, ds, j, ch, r0, r1, r2, r3, r4, r5)
		}
	}
}

// wino4DyPanelsGo is the portable form of wino4DyPanels on channels [c0, c1) (c0 need not be a
// multiple of nr: the first run ends at its panel's last channel).
func wino4DyPanelsGo(src []float32, rs, cs int, dst []float32, ds, ps, nr, c0, c1 int) {
	for q := c0; q < c1; {
		w := min(nr-q%nr, c1-q)
		wino4DyGo(src[q:], rs, cs, dst[q/nr*ps+q%nr:], ds, 0, w)
		q += w
	}
}

// wino4FilterOutput writes out[3k+l][j] = (Gᵀ·m·G)[k][l] = (Hᵀ·[(s·sᵀ) ⊙ m]·H)[k][l] for the 6×6
// tiles m[i][i'] = s[6i+i'][j] of channels j < n: the scaling, then the integer Hᵀ on the columns
// and rows (y0 = m0 + (m1+m2) + (m3+m4), y1 = (m1−m2) + 2(m3−m4), y2 = (m1+m2) + 4(m3+m4) + m5).
func wino4FilterOutput(s *[winoMaxXi][]float32, out *[9][]float32, n int) {
	h1 := func(m0, m1, m2, m3, m4, m5 float32) (y0, y1, y2 float32) {
		a, b := m1+m2, m1-m2
		c, d := m3+m4, m3-m4
		return (m0 + a) + c, b + 2*d, (a + 4*c) + m5
	}
	for j := 0; j < n; j++ {
		var m [36]float32
		for xi := range m {
			m[xi] = s[xi][j] * wino4Scale[xi]
		}
		var t [3][6]float32 // Hᵀ·m'
		for l := 0; l < 6; l++ {
			t[0][l], t[1][l], t[2][l] = h1(m[l], m[6+l], m[12+l], m[18+l], m[24+l], m[30+l])
		}
		for k := 0; k < 3; k++ {
			out[3*k][j], out[3*k+1][j], out[3*k+2][j] = h1(t[k][0], t[k][1], t[k][2], t[k][3], t[k][4], t[k][5])
		}
	}
}

// winoF4FilterMinOut is the smallest output height and width for which the weight gradient runs
// with F(3×3, 4×4) by default (see WinogradF4FilterPays).
const winoF4FilterMinOut = 8

// WinogradF4FilterPays reports whether SconvWinograd3x3FilterF4 is expected to be faster than
// SconvWinograd3x3Filter for geometry g with n output channels: on the avx512 path (the only one
// with a vector gradient-tile transform; in Go the transform took more time than the products),
// for outputs at least 8 pixels high and wide. Measured per CPU-second on the resnet8x4 layers at
// batch 64 with two goroutines on the shared machine (BenchmarkWinogradFilter, interleaved runs):
// 1.2–1.3× faster at 32×32×64 and 32×32×32→64, 1.3–1.5× at 16×16×128; at 8×8×256 1.2–1.5×
// since its 36 matrices M_ξ (9.8 MB) are summed by ξ (sconvWinogradFilterByXi) and the output
// transform is vectorised (before, by blocks of tiles, each of which read and wrote all of M,
// 0.9–1.1×).
func WinogradF4FilterPays(g ConvGeometry, n int) bool {
	return cur().isa >= ISAAVX512 && g.OutH >= winoF4FilterMinOut && g.OutW >= winoF4FilterMinOut
}
