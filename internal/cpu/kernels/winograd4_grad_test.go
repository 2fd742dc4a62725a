package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// wino4GradBound is the error bound of F(3×3, 4×4) in units of 2⁻²⁴·(Σ|x|·|dy| + max|dw|), see
// TestSconvWinograd3x3FilterF4AgainstReference.
const wino4GradBound = 96

// TestWinograd4GradTransforms checks the gradient-tile transform (in B panels of 4, 16 and the
// micro-kernel's width) against A·e·Aᵀ written out with the matrices on integers (exact in
// float32), and the filter output transform against Gᵀ·m·G in float64 within a few roundings of
// Σ|Gᵀ|·|m|·|G|, and the vector gradient transform against the portable one bit for bit, on
// every path.
func TestWinograd4GradTransforms(t *testing.T) { forEachISA(t, testWinograd4GradTransforms) }

func testWinograd4GradTransforms(t *testing.T) {
	rng := rand.New(rand.NewPCG(61, 62))
	for _, c := range []int{1, 3, 15, 16, 17, 33, 64} {
		rs, cs, ds := 5*c+3, c+2, 2*c+1
		src := make([]float32, 3*rs+3*cs+c)
		for i := range src {
			src[i] = float32(rng.IntN(201) - 100)
		}
		for _, nr := range []int{4, 16, 32, cur().wino.nr} {
			ps := 36*ds + 5
			got := make([]float32, (c+nr-1)/nr*ps)
			wino4DyPanels(src, rs, cs, got, ds, ps, nr, c)
			for ch := 0; ch < c; ch++ {
				for i := 0; i < 6; i++ {
					for j := 0; j < 6; j++ {
						var want int64 // Σ_ab A[i][a]·e[a][b]·A[j][b], A[i][a] = Aᵀ[a][i]
						for a := 0; a < 4; a++ {
							for b := 0; b < 4; b++ {
								want += wino4AT[a][i] * int64(src[a*rs+b*cs+ch]) * wino4AT[b][j]
							}
						}
						if v := got[ch/nr*ps+(6*i+j)*ds+ch%nr]; float64(v) != float64(want) {
							t.Fatalf("gradient transform c=%d nr=%d channel %d [%d][%d] = %g, want %d", c, nr, ch, i, j, v, want)
						}
					}
				}
			}
		}

		// The vector transform gives the bits of the portable one on random data.
		for i := range src {
			src[i] = float32(rng.NormFloat64())
		}
		ps := 36*ds + 5
		for _, nr := range []int{16, 32} {
			got, want := make([]float32, (c+nr-1)/nr*ps), make([]float32, (c+nr-1)/nr*ps)
			wino4DyPanels(src, rs, cs, got, ds, ps, nr, c)
			wino4DyPanelsGo(src, rs, cs, want, ds, ps, nr, 0, c)
			if i := sameBits(got, want); i >= 0 {
				t.Fatalf("gradient transform c=%d nr=%d: element %d = %g, portable %g", c, nr, i, got[i], want[i])
			}
		}

		var s [winoMaxXi][]float32
		var out [9][]float32
		for i := range s {
			s[i] = make([]float32, c)
			for j := range s[i] {
				s[i][j] = float32(rng.NormFloat64())
			}
		}
		for k := range out {
			out[k] = make([]float32, c)
		}
		wino4FilterOutput(&s, &out, c)
		gt := func(k, xi int) float64 { return float64(wino4G[xi][k][0]) / float64(wino4G[xi][k][1]) }
		for ch := 0; ch < c; ch++ {
			for k := 0; k < 3; k++ {
				for l := 0; l < 3; l++ {
					want, mag := 0.0, 0.0 // (Gᵀ·m·G)[k][l] = Σ_ij G[i][k]·m[i][j]·G[j][l]
					for i := 0; i < 6; i++ {
						for j := 0; j < 6; j++ {
							term := gt(k, i) * float64(s[6*i+j][ch]) * gt(l, j)
							want += term
							mag += math.Abs(term)
						}
					}
					if v := out[3*k+l][ch]; math.Abs(float64(v)-want) > 8*0x1p-24*mag {
						t.Fatalf("filter output transform c=%d channel %d [%d][%d] = %g, want %g (magnitude %g)", c, ch, k, l, v, want, mag)
					}
				}
			}
		}
	}
}

// TestSconvWinograd3x3FilterF4AgainstReference checks F(3×3, 4×4) and F(3×3, 2×2) against the
// float64 definition on wino4Cases (output sizes 1 to 9, asymmetric padding, channels 1 to 64)
// and the F(2×2) cases, on every path. The bound: the error of each output, in units of
// 2⁻²⁴·(Σ|x|·|dy| + max|dw|), measured at most 46.9 here (F(3×3, 2×2): 2.3), is held to 96 (a
// margin of 2); relative to max|dw| it is at most 4.5e-6 (F(3×3, 2×2): 4.4e-7, about 10 times
// less): the transformed gradient tiles reach 225·max|dy| and the input tiles 100·max|x|.
func TestSconvWinograd3x3FilterF4AgainstReference(t *testing.T) {
	forEachISA(t, testSconvWinograd3x3FilterF4AgainstReference)
}

func testSconvWinograd3x3FilterF4AgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(63, 64))
	gs := wino4Cases()
	for _, tc := range winoCases {
		gs = append(gs, tc.geometry())
	}
	gs = append(gs, winoCase{2, 17, 19, 33, 35, 1, 1}.geometry())
	var worstRel, worstUnits, f2Rel, f2Units float64
	for i, g := range gs {
		n := wino4N(i)
		x := toF32(randSlice(rng, g.InputSize()))
		dy := toF32(randSlice(rng, g.Pixels()*n))
		want, mag := naiveFilterGrad3x3(g, n, fromF32(x), fromF32(dy))
		dw := make([]float32, len(want))
		for i := range dw {
			dw[i] = float32(math.NaN()) // overwritten, never read
		}
		if err := SconvWinograd3x3FilterF4(g, n, x, dy, dw); err != nil {
			t.Fatal(err)
		}
		label := fmt.Sprintf("%+v n=%d", g, n)
		rel, units := checkWinogradBound(t, label+" F(3×3, 4×4)", dw, want, mag, wino4GradBound)
		worstRel, worstUnits = max(worstRel, rel), max(worstUnits, units)
		if err := SconvWinograd3x3Filter(g, n, x, dy, dw); err != nil {
			t.Fatal(err)
		}
		rel, units = checkWinogradBound(t, label+" F(3×3, 2×2)", dw, want, mag, 64)
		f2Rel, f2Units = max(f2Rel, rel), max(f2Units, units)
	}
	t.Logf("largest error: F(3×3, 4×4) %.3g of max|dw|, %.3g units; F(3×3, 2×2) %.3g, %.3g units", worstRel, worstUnits, f2Rel, f2Units)
}

func TestSconvWinograd3x3FilterF4Errors(t *testing.T) {
	g := winoCase{1, 4, 4, 2, 3, 1, 1}.geometry()
	x := make([]float32, g.InputSize())
	dy := make([]float32, g.Pixels()*3)
	dw := make([]float32, 9*2*3)
	strided := g
	strided.StrideH = 2
	for _, e := range []struct {
		err  error
		want string
	}{
		{SconvWinograd3x3FilterF4(strided, 3, x, dy, dw), "SconvWinograd3x3FilterF4: conv geometry"},
		{SconvWinograd3x3FilterF4(g, 3, x, dy[:7], dw), "SconvWinograd3x3FilterF4: dy: 7 elements"},
		{SconvWinograd3x3FilterF4(g, 3, x, dy, dw[:17]), "SconvWinograd3x3FilterF4: dw: 17 elements"},
	} {
		if e.err == nil || !strings.Contains(e.err.Error(), e.want) {
			t.Errorf("error %v, want one containing %q", e.err, e.want)
		}
	}
}

// TestWinogradF4FilterPays checks the choice between F(3×3, 4×4) and F(3×3, 2×2) on the resnet8x4
// layers and smaller images, on every path.
func TestWinogradF4FilterPays(t *testing.T) {
	forEachISA(t, func(t *testing.T) {
		avx512 := cur().isa >= ISAAVX512
		for _, c := range []struct {
			hw, c, n int
			want     bool
		}{{32, 64, 64, avx512}, {32, 32, 64, avx512}, {16, 128, 128, avx512}, {8, 256, 256, avx512}, {8, 64, 64, avx512}, {7, 64, 64, false}, {4, 16, 16, false}} {
			g := winoCase{b: 64, h: c.hw, w: c.hw, c: c.c, pad: 1, padEnd: 1}.geometry()
			if got := WinogradF4FilterPays(g, c.n); got != c.want {
				t.Errorf("%d×%d outputs, %d → %d channels: WinogradF4FilterPays = %v, want %v", c.hw, c.hw, c.c, c.n, got, c.want)
			}
		}
	})
}
