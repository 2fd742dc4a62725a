package kernels

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
)

// The matrices of winograd4.go's doc comment, as rationals.
var (
	wino4BT = [6][6]int64{
		{4, 0, -5, 0, 1, 0}, {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
		{0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1},
	}
	wino4AT = [4][6]int64{{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}}
	wino4G  = [6][3][2]int64{ // numerator, denominator
		{{1, 4}, {0, 1}, {0, 1}},
		{{-1, 6}, {-1, 6}, {-1, 6}},
		{{-1, 6}, {1, 6}, {-1, 6}},
		{{1, 24}, {1, 12}, {1, 6}},
		{{1, 24}, {-1, 12}, {1, 6}},
		{{0, 1}, {0, 1}, {1, 1}},
	}
)

// TestWinograd4Matrices checks, in exact rational arithmetic, that Aᵀ·[(G·g) ⊙ (Bᵀ·d)] is the
// one-dimensional correlation y_k = Σ_r g_r·d_{k+r} for every unit filter g and unit input d (so,
// by linearity, for all; the two-dimensional algorithm is this one applied along each axis). The
// sum it checks, Σ_ξ Aᵀ[k][ξ]·G[ξ][r]·Bᵀ[ξ][l] = [l = k + r], is also, read with the unit
// gradient e_k in the place of g, the weight-gradient identity of F(3×3, 4×4):
// Gᵀ·[(A·e) ⊙ (Bᵀ·d)] = Σ_{a<4} e_a·d_{a+r} (see winograd4.go).
func TestWinograd4Matrices(t *testing.T) {
	for r := 0; r < 3; r++ {
		for l := 0; l < 6; l++ {
			for k := 0; k < 4; k++ {
				y := new(big.Rat)
				for i := 0; i < 6; i++ {
					// (G·e_r)_i · (Bᵀ·e_l)_i · Aᵀ[k][i]
					term := big.NewRat(wino4G[i][r][0], wino4G[i][r][1])
					term.Mul(term, big.NewRat(wino4BT[i][l]*wino4AT[k][i], 1))
					y.Add(y, term)
				}
				want := big.NewRat(0, 1)
				if l == k+r {
					want.SetInt64(1)
				}
				if y.Cmp(want) != 0 {
					t.Errorf("g = e%d, d = e%d: y%d = %s, want %s", r, l, k, y, want)
				}
			}
		}
	}
}

// TestWinograd4TransformsExact checks the portable and vector F(4×4) tile transforms against
// Bᵀ·d·B and Aᵀ·m·A written out with the matrices, on integers (exact in float32), and the filter
// transform against G·g·Gᵀ in exact rationals.
func TestWinograd4TransformsExact(t *testing.T) { forEachISA(t, testWinograd4TransformsExact) }

func testWinograd4TransformsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	for _, c := range []int{1, 15, 16, 17, 33} {
		rs, cs, ds := 7*c+3, c+2, 2*c+1
		src := make([]float32, 5*rs+5*cs+c)
		for i := range src {
			src[i] = float32(rng.IntN(201) - 100)
		}
		got := make([]float32, 35*ds+c)
		wino4Input(src, rs, cs, got, ds, c)
		for ch := 0; ch < c; ch++ {
			for i := 0; i < 6; i++ {
				for j := 0; j < 6; j++ {
					var want int64
					for k := 0; k < 6; k++ {
						for l := 0; l < 6; l++ {
							want += wino4BT[i][k] * int64(src[k*rs+l*cs+ch]) * wino4BT[j][l]
						}
					}
					if v := got[(6*i+j)*ds+ch]; float64(v) != float64(want) {
						t.Fatalf("input transform c=%d channel %d [%d][%d] = %g, want %d", c, ch, i, j, v, want)
					}
				}
			}
		}
		ss, ors, ocs := 3*c+1, 5*c+5, c+1
		m := make([]float32, 35*ss+c)
		for i := range m {
			m[i] = float32(rng.IntN(201) - 100)
		}
		y := make([]float32, 3*ors+3*ocs+c)
		wino4Output(m, ss, y, ors, ocs, c)
		for ch := 0; ch < c; ch++ {
			for a := 0; a < 4; a++ {
				for b := 0; b < 4; b++ {
					var want int64
					for k := 0; k < 6; k++ {
						for l := 0; l < 6; l++ {
							want += wino4AT[a][k] * int64(m[(6*k+l)*ss+ch]) * wino4AT[b][l]
						}
					}
					if v := y[a*ors+b*ocs+ch]; float64(v) != float64(want) {
						t.Fatalf("output transform c=%d channel %d [%d][%d] = %g, want %d", c, ch, a, b, v, want)
					}
				}
			}
		}
	}
	checkWino4Filter(t, rng)
}

// checkWino4Filter checks wino4Filter against G·g·Gᵀ in exact rationals on random filters (every
// lane and row of a staged block): the error of U[i][j], in units of 2⁻²⁴·|s_i·s_j|·(|H|·|g|·|H|ᵀ)
// (the magnitude of the integer transform's sums, see winograd4.go), measured at most 2.6, is
// held to 4; and the vector transform against the portable one bit for bit.
func checkWino4Filter(t *testing.T, rng *rand.Rand) {
	t.Helper()
	h := [6][3]float64{{1, 0, 0}, {1, 1, 1}, {1, -1, 1}, {1, 2, 4}, {1, -2, 4}, {0, 0, 1}}
	sc := [6]float64{1.0 / 4, -1.0 / 6, -1.0 / 6, 1.0 / 24, 1.0 / 24, 1}
	worst := 0.0
	for trial := 0; trial < 8; trial++ {
		g := new(winoFilterIn)
		for k := range g {
			for ci := range g[k] {
				for j := range g[k][ci] {
					g[k][ci][j] = float32(rng.NormFloat64())
				}
			}
		}
		nc := 1 + trial*2
		rs := winoFilterBlock * (1 + trial%2) // rows of 16- and of 32-column panels
		us := nc*rs + 5                       // a gap between the ξ
		u, ref := make([]float32, 36*us), make([]float32, 36*us)
		wino4Filter(g, nc, winoFilterBlock, u, us, rs)
		winoFilterF4Go(g, nc, winoFilterBlock, ref, us, rs)
		if i := sameBits(u, ref); i >= 0 {
			t.Fatalf("filter transform: element %d = %g, portable %g", i, u[i], ref[i])
		}
		for ci := 0; ci < nc; ci++ {
			for j := 0; j < winoFilterBlock; j++ {
				for xi := 0; xi < 36; xi++ {
					r, q := xi/6, xi%6
					want, mag := new(big.Rat), 0.0 // Σ_kl G[r][k]·g[k][l]·G[q][l]
					for k := 0; k < 3; k++ {
						for l := 0; l < 3; l++ {
							gv := float64(g[3*k+l][ci][j])
							term := big.NewRat(wino4G[r][k][0]*wino4G[q][l][0], wino4G[r][k][1]*wino4G[q][l][1])
							term.Mul(term, new(big.Rat).SetFloat64(gv))
							want.Add(want, term)
							mag += math.Abs(h[r][k] * gv * h[q][l])
						}
					}
					w, _ := want.Float64()
					unit := 0x1p-24 * math.Abs(sc[r]*sc[q]) * mag
					got := u[xi*us+ci*rs+j]
					e := math.Abs(float64(got) - w)
					if unit > 0 {
						worst = max(worst, e/unit)
					}
					if e > 4*unit {
						t.Fatalf("filter transform ξ=%d pair (%d, %d) = %g, want %g (%.3g units)", xi, ci, j, got, w, e/unit)
					}
				}
			}
		}
	}
	t.Logf("filter transform: largest error %.3g units", worst)
}

// ulp32 is the spacing of float32 values at |v|.
func ulp32(v float32) float64 {
	a := math.Abs(float64(v))
	return float64(math.Nextafter32(float32(a), float32(math.Inf(1)))) - float64(float32(a))
}

// TestWinograd4TransformsBits checks the vector transforms against the portable ones bit for bit
// on random data (both perform the same operations in the same order), for channel counts around
// multiples of 16 and strides with gaps.
func TestWinograd4TransformsBits(t *testing.T) { forEachISA(t, testWinograd4TransformsBits) }

func testWinograd4TransformsBits(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	for _, c := range []int{1, 8, 15, 16, 17, 31, 32, 33, 64} {
		rs, cs, ds := 7*c+5, c+3, 2*c+7
		src := make([]float32, 5*rs+5*cs+c)
		for i := range src {
			src[i] = float32(rng.NormFloat64())
		}
		got, ref := make([]float32, 35*ds+c), make([]float32, 35*ds+c)
		wino4Input(src, rs, cs, got, ds, c)
		wino4InputGo(src, rs, cs, ref, ds, 0, c)
		if i := sameBits(got, ref); i >= 0 {
			t.Fatalf("input transform c=%d: element %d = %g, portable %g", c, i, got[i], ref[i])
		}
		ss, ors, ocs := 3*c+1, 5*c+5, c+1
		m := make([]float32, 35*ss+c)
		for i := range m {
			m[i] = float32(rng.NormFloat64() * 10)
		}
		y, y2 := make([]float32, 3*ors+3*ocs+c), make([]float32, 3*ors+3*ocs+c)
		wino4Output(m, ss, y, ors, ocs, c)
		wino4OutputGo(m, ss, y2, ors, ocs, 0, c)
		if i := sameBits(y, y2); i >= 0 {
			t.Fatalf("output transform c=%d: element %d = %g, portable %g", c, i, y[i], y2[i])
		}
	}
}

// wino4Cases are the awkward geometries of the F(4×4) tests: every output size 1 to 9 in each
// direction (1 to 3 tiles, none, some or all whole), asymmetric padding of 0 to 2 per side,
// channels 1, 3, 15, 17, 33 (below and past the 16-lane vectors) and batch 1 to 3.
func wino4Cases() []ConvGeometry {
	chans := []int{1, 3, 15, 17, 33, 16, 48}
	var gs []ConvGeometry
	for i := 0; i < 9; i++ {
		oh, ow := 1+i, 9-i
		top, left := i%3, (i+1)%3
		bottom, right := min(2, oh+1-top), min((i+2)%3, ow+1-left)
		gs = append(gs, ConvGeometry{Batch: 1 + i%3, InC: chans[i%len(chans)], KH: 3, KW: 3,
			InH: oh + 2 - top - bottom, InW: ow + 2 - left - right, OutH: oh, OutW: ow, PadTop: top, PadLeft: left})
	}
	return gs
}

// wino4Bound is the error bound of F(4×4) in units of 2⁻²⁴·(Σ|x|·|w| + max|y|), see
// TestSconvWinograd3x3F4AgainstReference.
const wino4Bound = 48

// wino4N is the number of output channels of case i.
func wino4N(i int) int { return []int{3, 17, 1, 33, 15, 16, 32, 20, 64}[i%9] }

// TestSconvWinograd3x3F4AgainstReference checks F(4×4, 3×3) against the float64 definition on
// wino4Cases, on the F(2×2) cases and with transposed weight strides, on every path. The bound:
// the error of each output, in units of 2⁻²⁴·(Σ|x|·|w| + max|y|), measured at most 26.1 here
// (F(2×2): 1.7), is held to 48 (a margin of 1.8); relative to max|y| it is at most 6.7e-6
// (F(2×2): 3.6e-7).
func TestSconvWinograd3x3F4AgainstReference(t *testing.T) {
	forEachISA(t, testSconvWinograd3x3F4AgainstReference)
}

func testSconvWinograd3x3F4AgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(45, 46))
	gs := wino4Cases()
	for _, tc := range winoCases {
		gs = append(gs, tc.geometry())
	}
	var worstRel, worstUnits, f2Rel, f2Units float64
	for i, g := range gs {
		n := wino4N(i)
		for _, layout := range []string{"HWIO", "HWOI"} {
			s := HWIOStrides(g.InC, n)
			if layout == "HWOI" { // the input gradient's transposed kernel
				s = [4]int{3 * g.InC * n, g.InC * n, 1, g.InC}
			}
			x := toF32(randSlice(rng, g.InputSize()))
			w := toF32(randSlice(rng, 9*g.InC*n))
			want, mag := naiveConv3x3(g, n, fromF32(x), fromF32(w), s)
			out := make([]float32, g.Pixels()*n)
			for i := range out {
				out[i] = float32(math.NaN()) // overwritten, never read
			}
			if err := SconvWinograd3x3F4(g, n, x, w, s, out); err != nil {
				t.Fatal(err)
			}
			label := fmt.Sprintf("%+v n=%d %s", g, n, layout)
			rel, units := checkWinogradBound(t, label+" F4", out, want, mag, wino4Bound)
			worstRel, worstUnits = max(worstRel, rel), max(worstUnits, units)
			if err := SconvWinograd3x3(g, n, x, w, s, out); err != nil {
				t.Fatal(err)
			}
			rel, units = checkWinogradBound(t, label+" F2", out, want, mag, 64)
			f2Rel, f2Units = max(f2Rel, rel), max(f2Units, units)
		}
	}
	t.Logf("largest error: F(4×4) %.3g of max|y|, %.3g units; F(2×2) %.3g, %.3g units", worstRel, worstUnits, f2Rel, f2Units)
}

// TestWinograd4SameBits checks that F(4×4) gives the same bits whatever the number of goroutines
// and the block size, on every path.
func TestWinograd4SameBits(t *testing.T) { forEachISA(t, testWinograd4SameBits) }

func testWinograd4SameBits(t *testing.T) {
	checkWinogradSameBits(t, winoF4, wino4Bound, rand.New(rand.NewPCG(49, 50)),
		[]winoCase{{3, 11, 13, 19, 37, 1, 1}, {8, 16, 16, 32, 16, 1, 1}, {2, 6, 5, 17, 3, 2, 0}, {2, 10, 9, 18, 70, 1, 1}},
		[]winoRun{{1, 1}, {2, 6}, {3, 12}, {4, 0}, {2, 30}})
}

func TestSconvWinograd3x3F4Errors(t *testing.T) {
	g := winoCase{1, 4, 4, 2, 3, 1, 1}.geometry()
	x := make([]float32, g.InputSize())
	w := make([]float32, 9*2*3)
	out := make([]float32, g.Pixels()*3)
	strided := g
	strided.StrideW = 2
	for _, e := range []struct {
		err  error
		want string
	}{
		{SconvWinograd3x3F4(strided, 3, x, w, HWIOStrides(2, 3), out), "SconvWinograd3x3F4: conv geometry"},
		{SconvWinograd3x3F4(g, 3, x, w[:17], HWIOStrides(2, 3), out), "SconvWinograd3x3F4: w: 17 elements"},
		{SconvWinograd3x3F4(g, 3, x, w, HWIOStrides(2, 3), out[:5]), "out: 5 elements"},
	} {
		if e.err == nil || !strings.Contains(e.err.Error(), e.want) {
			t.Errorf("error %v, want one containing %q", e.err, e.want)
		}
	}
}

// BenchmarkWinograd4Blocks times F(4×4, 3×3) on the resnet8x4 layers (batch 64) with several
// block sizes (tiles per block; 0 = the default), for tuning winoF4's block size.
func BenchmarkWinograd4Blocks(b *testing.B) {
	for _, l := range resnet8x4Layers {
		g, x, w, y := l.inputs()
		flops := 2 * float64(g.Pixels()) * float64(g.PatchSize()) * float64(l.n)
		for _, tb := range []int{0, 14, 28, 42, 56, 84} {
			b.Run(fmt.Sprintf("%s/tiles=%d", l.name, tb), func(b *testing.B) {
				cpu0 := processCPUSeconds()
				for b.Loop() {
					sconvWinograd(cur().wino, winoF4, g, l.n, x, w, HWIOStrides(l.c, l.n), y, Threads(), tb)
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				b.ReportMetric(1000*(processCPUSeconds()-cpu0)/float64(b.N), "cpu-ms/op")
			})
		}
	}
}

// TestWinogradF4Pays checks the choice between F(4×4) and F(2×2) on the resnet8x4 layers and
// smaller images: 8×8×256 → 256 takes F(4×4) only with the wide micro-kernel.
func TestWinogradF4Pays(t *testing.T) { forEachISA(t, testWinogradF4Pays) }

func testWinogradF4Pays(t *testing.T) {
	wide := cur().winoWide != nil
	for _, c := range []struct {
		hw, c, n int
		want     bool
	}{{32, 64, 64, true}, {32, 32, 64, true}, {16, 128, 128, true}, {8, 256, 256, wide}, {8, 64, 64, true}, {7, 64, 64, false}, {4, 16, 16, false}} {
		g := winoCase{b: 64, h: c.hw, w: c.hw, c: c.c, pad: 1, padEnd: 1}.geometry()
		if got := WinogradF4Pays(g, c.n); got != c.want {
			t.Errorf("%d×%d outputs, %d → %d channels: WinogradF4Pays = %v, want %v", c.hw, c.hw, c.c, c.n, got, c.want)
		}
	}
}

// BenchmarkWinogradWide compares the Winograd micro-kernel of the narrow products (nr = 16 on the
// avx512 path) with the wide one that the forward convolution uses from winoWideCols output
// channels, on the resnet8x4 layers (batch 64), F(2×2) and F(4×4) at the default block sizes.
func BenchmarkWinogradWide(b *testing.B) {
	for _, l := range resnet8x4Layers {
		g, x, w, y := l.inputs()
		for _, f := range []*winoForm{winoF2, winoF4} {
			for _, kern := range []*kernel[float32]{cur().wino, cur().winoFor(l.n)} {
				b.Run(fmt.Sprintf("%s/%s/%s", l.name, f.name, kern.name), func(b *testing.B) {
					cpu0 := processCPUSeconds()
					for b.Loop() {
						sconvWinograd(kern, f, g, l.n, x, w, HWIOStrides(l.c, l.n), y, Threads(), 0)
					}
					b.ReportMetric(1000*(processCPUSeconds()-cpu0)/float64(b.N), "cpu-ms/op")
				})
			}
		}
	}
}

// TestWinograd4InputEdge checks the transform of border tiles (winoInputTile on tiles that leave
// the image, straight from it through wino4InputEdge where the path has one) against the portable
// transform of a zero-padded copy of the tile, bit for bit, for tiles at every offset around two
// small images, channel counts around multiples of 16, and an image lying between NaNs, which
// must not be read.
func TestWinograd4InputEdge(t *testing.T) { forEachISA(t, testWinograd4InputEdge) }

func testWinograd4InputEdge(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 52))
	for _, c := range []int{1, 15, 16, 17, 33, 127, 128, 129, 144} {
		g := ConvGeometry{Batch: 2, InH: 4, InW: 7, InC: c}
		n := g.Batch * g.InH * g.InW * c
		const margin = 6 * 16 * 64
		buf := make([]float32, n+2*margin)
		for i := range buf {
			buf[i] = float32(math.NaN())
		}
		x := buf[margin : margin+n]
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		// The avx512 path transforms border tiles in place from wino4EdgeMinChannels on.
		wantEdge := cur().isa >= ISAAVX512 && c >= 128
		if got := wino4InputEdge(x, 0, g.InW*c, c, 1, 1, make([]float32, 36*c), c, c); got != wantEdge {
			t.Fatalf("c=%d: wino4InputEdge applies: %v, want %v", c, got, wantEdge)
		}
		patch := make([]float32, 36*c)
		for b := 0; b < g.Batch; b++ {
			for ih0 := -5; ih0 < g.InH; ih0++ {
				for iw0 := -5; iw0 < g.InW; iw0++ {
					ds := c + 3
					got, want := make([]float32, 35*ds+c), make([]float32, 35*ds+c)
					for i := 0; i < 6; i++ {
						for j := 0; j < 6; j++ {
							ih, iw := ih0+i, iw0+j
							px := patch[(6*i+j)*c : (6*i+j+1)*c]
							if ih < 0 || iw < 0 || ih >= g.InH || iw >= g.InW {
								clear(px)
								continue
							}
							copy(px, x[((b*g.InH+ih)*g.InW+iw)*c:])
						}
					}
					wino4InputGo(patch, 6*c, c, want, ds, 0, c)
					winoInputTile(winoF4, g, x, b, ih0, iw0, c, make([]float32, 36*c), got, ds)
					if i := sameBits(got, want); i >= 0 {
						t.Fatalf("c=%d, image %d, tile at (%d, %d): element %d = %g, zero-padded copy gives %g",
							c, b, ih0, iw0, i, got[i], want[i])
					}
				}
			}
		}
	}
}

// BenchmarkWinograd4InputTiles times the F(4×4) input transform of every tile of the resnet8x4
// layers at batch 64 (blocks of 14 tiles, one goroutine), in CPU-ms per layer: border tiles
// transformed straight from the image (edge) or from a zero-padded copy (copy), and with the
// block's ξ rows tb·InC apart instead of a cache line more (unpadded); "cached" transforms the
// tiles of images 1 and 2 32 times over (the input in cache, the transform alone).
func BenchmarkWinograd4InputTiles(b *testing.B) {
	for _, l := range []struct{ hw, c int }{{32, 64}, {16, 128}, {8, 256}} {
		g := winoCase{b: 64, h: l.hw, w: l.hw, c: l.c, pad: 1, padEnd: 1}.geometry()
		x := toF32(randSlice(rand.New(rand.NewPCG(1, 2)), g.InputSize()))
		const tb = 14
		patch := make([]float32, 36*l.c)
		tilesW := l.hw / 4
		perImage := tilesW * tilesW
		tiles := g.Batch * perImage
		for _, mode := range []string{"edge", "copy", "edge-unpadded", "cached", "cached-unpadded"} {
			b.Run(fmt.Sprintf("%dx%dx%d/%s", l.hw, l.hw, l.c, mode), func(b *testing.B) {
				f := *winoF4
				if mode == "copy" {
					f.inputEdge = nil
				}
				vs := tb*l.c + 16 // winoPlan.vStride
				if strings.HasSuffix(mode, "unpadded") {
					vs = tb * l.c
				}
				v := make([]float32, 36*vs)
				cpu0 := processCPUSeconds()
				for b.Loop() {
					for t0 := 0; t0 < tiles; t0 += tb {
						for t := 0; t < min(tb, tiles-t0); t++ {
							tile := t0 + t
							bi, th, tw := tile/perImage, tile%perImage/tilesW, tile%tilesW
							if strings.HasPrefix(mode, "cached") {
								bi = 1 + bi%2
							}
							winoInputTile(&f, g, x, bi, 4*th-1, 4*tw-1, l.c, patch, v[t*l.c:], vs)
						}
					}
				}
				b.ReportMetric(1000*(processCPUSeconds()-cpu0)/float64(b.N), "cpu-ms/op")
			})
		}
	}
}
