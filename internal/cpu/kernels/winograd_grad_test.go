package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// naiveFilterGrad3x3 is the definition of the weight gradient of the stride-1 3×3 correlation in
// float64: dw[kh, kw, c, o] = Σ_{b, oh, ow} x[b, oh−PadTop+kh, ow−PadLeft+kw, c]·dy[b, oh, ow, o],
// zero outside the image. It also returns Σ |x|·|dy|, the magnitude that bounds rounding errors.
func naiveFilterGrad3x3(g ConvGeometry, n int, x, dy []float64) (dw, mag []float64) {
	c := g.InC
	dw = make([]float64, 9*c*n)
	mag = make([]float64, len(dw))
	for b := 0; b < g.Batch; b++ {
		for oh := 0; oh < g.OutH; oh++ {
			for ow := 0; ow < g.OutW; ow++ {
				d := dy[((b*g.OutH+oh)*g.OutW+ow)*n:][:n]
				for kh := 0; kh < 3; kh++ {
					for kw := 0; kw < 3; kw++ {
						ih, iw := oh-g.PadTop+kh, ow-g.PadLeft+kw
						if ih < 0 || iw < 0 || ih >= g.InH || iw >= g.InW {
							continue
						}
						for ci := 0; ci < c; ci++ {
							xv := x[((b*g.InH+ih)*g.InW+iw)*c+ci]
							at := ((kh*3+kw)*c + ci) * n
							for o := 0; o < n; o++ {
								dw[at+o] += xv * d[o]
								mag[at+o] += math.Abs(xv * d[o])
							}
						}
					}
				}
			}
		}
	}
	return dw, mag
}

// filterGradCase draws x and dy for the weight gradient of case tc from rng and returns them with
// the case's geometry and naiveFilterGrad3x3's reference and magnitudes.
func (tc winoCase) filterGradCase(rng *rand.Rand) (g ConvGeometry, x, dy []float32, want, mag []float64) {
	g = tc.geometry()
	x = toF32(randSlice(rng, g.InputSize()))
	dy = toF32(randSlice(rng, g.Pixels()*tc.n))
	want, mag = naiveFilterGrad3x3(g, tc.n, fromF32(x), fromF32(dy))
	return g, x, dy, want, mag
}

// TestSconvWinograd3x3FilterAgainstReference checks the Winograd weight gradient and the im2col
// one (SconvIm2colT) against the float64 definition on the shapes of winoCases: odd sizes,
// channel counts around multiples of 8 and of the micro-kernel sizes, batch 1 to 3, padding 0, 1
// and 2, images smaller than a tile.
func TestSconvWinograd3x3FilterAgainstReference(t *testing.T) {
	forEachISA(t, testSconvWinograd3x3FilterAgainstReference)
}

func testSconvWinograd3x3FilterAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 52))
	worstWino, worstIm2col := 0.0, 0.0
	for _, tc := range append(winoCases, winoCase{2, 12, 9, 70, 35, 1, 1}, winoCase{1, 6, 6, 300, 20, 1, 1}) {
		g, x, dy, want, mag := tc.filterGradCase(rng)
		dw := make([]float32, len(want))
		for i := range dw {
			dw[i] = float32(math.NaN()) // overwritten, never read
		}
		if err := SconvWinograd3x3Filter(g, tc.n, x, dy, dw); err != nil {
			t.Fatal(err)
		}
		label := fmt.Sprintf("%+v", tc)
		errWino := checkWinograd(t, label+" winograd", dw, want, mag)
		worstWino = max(worstWino, errWino)
		direct := make([]float32, len(want))
		if err := SconvIm2colT(g, tc.n, 1, x, dy, tc.n, 0, direct, tc.n); err != nil {
			t.Fatal(err)
		}
		worstIm2col = max(worstIm2col, checkWinograd(t, label+" im2col", direct, want, mag))
		if errWino > 1e-5 {
			t.Errorf("%s: error %.3g relative to the gradient scale, want ≤ 1e-5", label, errWino)
		}
	}
	t.Logf("largest error relative to max|dw|: winograd %.3g, im2col %.3g", worstWino, worstIm2col)
}

// TestSconvWinograd3x3FilterClosedForm: with x and dy all ones and no padding every window
// position sees every output pixel, so dw = Batch·OutH·OutW everywhere; with padding 1 on a 1×1
// image only the centre tap sees the pixel.
func TestSconvWinograd3x3FilterClosedForm(t *testing.T) {
	forEachISA(t, testSconvWinograd3x3FilterClosedForm)
}

func testSconvWinograd3x3FilterClosedForm(t *testing.T) {
	ones := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = 1
		}
		return s
	}
	tc := winoCase{3, 7, 6, 9, 17, 0, 0}
	g := tc.geometry()
	dw := make([]float32, 9*tc.c*tc.n)
	if err := SconvWinograd3x3Filter(g, tc.n, ones(g.InputSize()), ones(g.Pixels()*tc.n), dw); err != nil {
		t.Fatal(err)
	}
	want := float32(g.Pixels())
	for i, v := range dw {
		if v != want {
			t.Fatalf("all ones: dw[%d] = %g, want %g", i, v, want)
		}
	}
	one := winoCase{2, 1, 1, 8, 16, 1, 1}
	g = one.geometry()
	x := make([]float32, g.InputSize())
	dy := make([]float32, g.Pixels()*one.n)
	for i := range x {
		x[i] = float32(i + 1)
	}
	for i := range dy {
		dy[i] = float32(i%5) - 2
	}
	dw = make([]float32, 9*one.c*one.n)
	if err := SconvWinograd3x3Filter(g, one.n, x, dy, dw); err != nil {
		t.Fatal(err)
	}
	for k := 0; k < 9; k++ {
		for c := 0; c < one.c; c++ {
			for o := 0; o < one.n; o++ {
				var want float32
				if k == 4 {
					want = x[c]*dy[o] + x[one.c+c]*dy[one.n+o]
				}
				if v := dw[(k*one.c+c)*one.n+o]; v != want {
					t.Fatalf("1×1 image: dw[%d][%d][%d] = %g, want %g", k, c, o, v, want)
				}
			}
		}
	}
}

// TestSconvWinogradFilterBlocking runs the weight gradient (both forms) with other block sizes, goroutine
// counts and the portable micro-kernel; all must agree with the reference, and the result must
// not depend on the block size beyond rounding.
func TestSconvWinogradFilterBlocking(t *testing.T) {
	rng := rand.New(rand.NewPCG(53, 54))
	tc := winoCase{3, 9, 11, 19, 37, 1, 1}
	g, x, dy, want, mag := tc.filterGradCase(rng)
	for _, run := range []struct {
		threads, tiles int
		generic, wide  bool
	}{{1, 1, false, false}, {1, 1000, false, false}, {2, 5, false, false}, {3, 12, false, false}, {4, 0, false, false},
		{2, 7, true, false}, {1, 0, true, false}, {2, 5, false, true}, {1, 0, false, true}} {
		kern := cur().wino
		switch {
		case run.generic:
			kern = genericKernelF32()
		case run.wide:
			kern = cur().winoFor(winoWideCols) // the 14×32 kernel on the avx512 path
		}
		dw := make([]float32, len(want))
		label := fmt.Sprintf("threads %d, block %d tiles, kernel %s", run.threads, run.tiles, kern.name)
		sconvWinogradFilter(kern, winoGradF2, g, tc.n, x, dy, dw, run.threads, run.tiles)
		checkWinograd(t, label, dw, want, mag)
		sconvWinogradFilter(kern, winoGradF4, g, tc.n, x, dy, dw, run.threads, run.tiles)
		checkWinogradBound(t, label+" F(3×3, 4×4)", dw, want, mag, wino4GradBound)
	}
}

// TestWinogradGradTransforms checks the gradient-tile transform against A·e·Aᵀ and the filter
// output transform against Gᵀ·m·G written out with the matrices, on integer data (exact in
// float32), and the vector gradient-tile transform against the portable one bit for bit on random
// data, for channel counts around multiples of 8 and strides with gaps.
func TestWinogradGradTransforms(t *testing.T) { forEachISA(t, testWinogradGradTransforms) }

func testWinogradGradTransforms(t *testing.T) {
	am := [4][2]float64{{1, 0}, {1, 1}, {1, -1}, {0, -1}}
	gm := [4][3]float64{{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}}
	rng := rand.New(rand.NewPCG(55, 56))
	for _, c := range []int{1, 7, 8, 9, 16, 23, 40, 64} {
		rs, cs, ds := 3*c+5, c+3, 2*c+1
		src := make([]float32, rs+cs+c)
		for i := range src {
			src[i] = float32(rng.IntN(201) - 100)
		}
		got := make([]float32, 15*ds+c)
		winoDy(src, rs, cs, got, ds, c)
		for ch := 0; ch < c; ch++ {
			for i := 0; i < 4; i++ {
				for j := 0; j < 4; j++ {
					want := 0.0 // (A·e·Aᵀ)[i][j] = Σ_ab A[i][a]·e[a][b]·A[j][b]
					for a := 0; a < 2; a++ {
						for b := 0; b < 2; b++ {
							want += am[i][a] * float64(src[a*rs+b*cs+ch]) * am[j][b]
						}
					}
					if v := got[(4*i+j)*ds+ch]; float64(v) != want {
						t.Fatalf("gradient transform c=%d channel %d [%d][%d] = %g, want %g", c, ch, i, j, v, want)
					}
				}
			}
		}
		for i := range src {
			src[i] = float32(rng.NormFloat64())
		}
		got2 := make([]float32, len(got))
		winoDy(src, rs, cs, got, ds, c)
		winoDyGo(src, rs, cs, got2, ds, 0, c)
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(got2[i]) {
				t.Fatalf("gradient transform c=%d: element %d = %g, portable %g", c, i, got[i], got2[i])
			}
		}

		// Panels of nr channels ps apart, as the GEMM's B operand.
		for _, nr := range []int{4, 16, 32} {
			ps := 16*ds + 3
			panels := make([]float32, (c+nr-1)/nr*ps)
			winoDyPanels(src, rs, cs, panels, ds, ps, nr, c)
			for ch := 0; ch < c; ch++ {
				for xi := 0; xi < 16; xi++ {
					if v, w := panels[ch/nr*ps+xi*ds+ch%nr], got2[xi*ds+ch]; math.Float32bits(v) != math.Float32bits(w) {
						t.Fatalf("gradient transform panels c=%d nr=%d: channel %d, ξ %d = %g, want %g", c, nr, ch, xi, v, w)
					}
				}
			}
		}

		var s [winoMaxXi][]float32
		var out [9][]float32
		for i := range 16 {
			s[i] = make([]float32, c)
			for j := range s[i] {
				s[i][j] = float32(rng.IntN(201) - 100)
			}
		}
		for k := range out {
			out[k] = make([]float32, c)
		}
		winoFilterOutput(&s, &out, c)
		for ch := 0; ch < c; ch++ {
			for k := 0; k < 3; k++ {
				for l := 0; l < 3; l++ {
					want := 0.0 // (Gᵀ·m·G)[k][l] = Σ_ij G[i][k]·m[i][j]·G[j][l]
					for i := 0; i < 4; i++ {
						for j := 0; j < 4; j++ {
							want += gm[i][k] * float64(s[4*i+j][ch]) * gm[j][l]
						}
					}
					if v := out[3*k+l][ch]; float64(v) != want {
						t.Fatalf("filter output transform c=%d channel %d [%d][%d] = %g, want %g", c, ch, k, l, v, want)
					}
				}
			}
		}
	}
}

func TestSconvWinograd3x3FilterErrors(t *testing.T) {
	g := winoCase{1, 4, 4, 2, 3, 1, 1}.geometry()
	x := make([]float32, g.InputSize())
	dy := make([]float32, g.Pixels()*3)
	dw := make([]float32, 9*2*3)
	strided := g
	strided.StrideW = 2
	dilated := g
	dilated.DilationH = 2
	for _, e := range []struct {
		name string
		err  error
		want string
	}{
		{"stride", SconvWinograd3x3Filter(strided, 3, x, dy, dw), "unit strides"},
		{"dilation", SconvWinograd3x3Filter(dilated, 3, x, dy, dw), "unit strides and dilations"},
		{"short x", SconvWinograd3x3Filter(g, 3, x[:5], dy, dw), "x: 5 elements"},
		{"short dy", SconvWinograd3x3Filter(g, 3, x, dy[:7], dw), "dy: 7 elements"},
		{"short dw", SconvWinograd3x3Filter(g, 3, x, dy, dw[:17]), "dw: 17 elements"},
		{"negative n", SconvWinograd3x3Filter(g, -1, x, dy, dw), "negative output channels"},
	} {
		if e.err == nil || !strings.Contains(e.err.Error(), e.want) {
			t.Errorf("%s: error %v, want one containing %q", e.name, e.err, e.want)
		}
	}
	// No output pixels: the sum is empty.
	g0 := g
	g0.Batch = 0
	for i := range dw {
		dw[i] = 7
	}
	if err := SconvWinograd3x3Filter(g0, 3, nil, nil, dw); err != nil {
		t.Fatal(err)
	}
	for i, v := range dw {
		if v != 0 {
			t.Fatalf("Batch = 0: dw[%d] = %g, want 0", i, v)
		}
	}
}

// BenchmarkWinogradFilter compares the Winograd weight gradients F(3×3, 2×2) ("winograd") and
// F(3×3, 4×4) ("winograd4") with the im2col one (SconvIm2colT) on the resnet8x4 3×3 stride-1
// layers (batch 64, "same" padding). GFLOP/s counts the direct product's 2·pixels·9·InC·OutC
// flops for all, per second of wall time and per second of the process's CPU time (steadier on
// a shared machine); cpu-ms/op is the process's CPU time per call.
func BenchmarkWinogradFilter(b *testing.B) {
	for _, l := range []struct {
		name     string
		hw, c, n int
	}{
		{"32x32x64to64", 32, 64, 64},
		{"16x16x128to128", 16, 128, 128},
		{"8x8x256to256", 8, 256, 256},
		{"32x32x32to64", 32, 32, 64},
		{"32x32x16to16", 32, 16, 16},
		{"32x32x3to32", 32, 3, 32},
	} {
		g := winoCase{b: 64, h: l.hw, w: l.hw, c: l.c, pad: 1, padEnd: 1}.geometry()
		rng := rand.New(rand.NewPCG(3, 4))
		x := toF32(randSlice(rng, g.InputSize()))
		dy := toF32(randSlice(rng, g.Pixels()*l.n))
		dw := make([]float32, 9*l.c*l.n)
		flops := 2 * float64(g.Pixels()) * float64(g.PatchSize()) * float64(l.n)
		run := func(b *testing.B, fn func() error) {
			cpu0 := processCPUSeconds()
			for b.Loop() {
				if err := fn(); err != nil {
					b.Fatal(err)
				}
			}
			cpu := processCPUSeconds() - cpu0
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			b.ReportMetric(flops*float64(b.N)/cpu/1e9, "GFLOP/cpu-s")
			b.ReportMetric(1000*cpu/float64(b.N), "cpu-ms/op")
		}
		b.Run(l.name+"/winograd", func(b *testing.B) {
			run(b, func() error { return SconvWinograd3x3Filter(g, l.n, x, dy, dw) })
		})
		b.Run(l.name+"/winograd4", func(b *testing.B) {
			run(b, func() error { return SconvWinograd3x3FilterF4(g, l.n, x, dy, dw) })
		})
		b.Run(l.name+"/im2col", func(b *testing.B) {
			run(b, func() error { return SconvIm2colT(g, l.n, 1, x, dy, l.n, 0, dw, l.n) })
		})
	}
}

// checkGradForm checks the weight gradient dw of form f against the float64 want with the error
// bound of that form (F(3×3, 4×4): wino4GradBound units).
func checkGradForm(t *testing.T, f *winoGradForm, label string, dw []float32, want, mag []float64) {
	t.Helper()
	if f == winoGradF4 {
		checkWinogradBound(t, label, dw, want, mag, wino4GradBound)
		return
	}
	checkWinograd(t, label, dw, want, mag)
}

// TestSconvWinogradFilterByXi checks the weight gradient computed by ξ (sconvWinogradFilterByXi,
// both forms) against the float64 definition with every micro-kernel, chunks of 1 tile, a few
// tiles that leave a short last chunk, the default and more than all the tiles, and checks that
// 1, 2, 3 and 5 goroutines give the same bits for each chunk size. The shapes have channel
// counts off the micro-kernels' tiles (padding rows of V and columns of E) and borders on all
// sides.
func TestSconvWinogradFilterByXi(t *testing.T) { forEachISA(t, testSconvWinogradFilterByXi) }

func testSconvWinogradFilterByXi(t *testing.T) {
	rng := rand.New(rand.NewPCG(57, 58))
	for _, tc := range []winoCase{{3, 9, 11, 19, 37, 1, 1}, {2, 6, 6, 20, 70, 1, 1}, {1, 5, 5, 3, 2, 1, 1}, {2, 8, 8, 33, 48, 1, 1}} {
		g, x, dy, want, mag := tc.filterGradCase(rng)
		for _, kern := range append(testWinoKernels(), genericKernelF32()) {
			for _, f := range []*winoGradForm{winoGradF2, winoGradF4} {
				for _, chunk := range []int{1, 5, 0, 1000} {
					var first []float32
					for _, threads := range detThreads {
						dw := make([]float32, len(want))
						for i := range dw {
							dw[i] = float32(math.NaN()) // overwritten, never read
						}
						sconvWinogradFilterByXi(kern, f, g, tc.n, x, dy, dw, threads, chunk)
						label := fmt.Sprintf("%+v F(3×3, %d×%d) %s, chunk %d, %d goroutines", tc, f.in.m, f.in.m, kern.name, chunk, threads)
						if first == nil {
							first = dw
							checkGradForm(t, f, label, dw, want, mag)
							continue
						}
						if i := sameBits(dw, first); i >= 0 {
							t.Errorf("%s: dw[%d] = %g, one goroutine gives %g", label, i, dw[i], first[i])
						}
					}
				}
			}
		}
	}
}

// TestSconvWinogradFilterLargeM runs the entry points on a layer with large M_ξ (8×8 outputs,
// 264 → 264 channels: about resnet8x4's last layer, with part of a panel and of a vector group
// left over) against the float64 definition: F(3×3, 4×4), whose M_ξ exceed winoGradByXiMinBytes,
// runs by ξ and must give the bits of sconvWinogradFilterByXi called directly; F(3×3, 2×2) runs
// by blocks, on the avx512 path the larger blocks of winoGradLargeMBytes.
func TestSconvWinogradFilterLargeM(t *testing.T) { forEachISA(t, testSconvWinogradFilterLargeM) }

func testSconvWinogradFilterLargeM(t *testing.T) {
	rng := rand.New(rand.NewPCG(59, 60))
	tc := winoCase{2, 8, 8, 264, 264, 1, 1}
	g, x, dy, want, mag := tc.filterGradCase(rng)
	for _, f := range []*winoGradForm{winoGradF2, winoGradF4} {
		kern := cur().winoFor(tc.n)
		p := newWinoGradPlan(kern, f, g, tc.n)
		xis := f.in.a * f.in.a
		if byXi := 4*xis*p.cPad*p.nPad > winoGradByXiMinBytes; byXi != (f == winoGradF4) {
			t.Fatalf("F(3×3, %d×%d): M_ξ take %d bytes: by ξ %v", f.in.m, f.in.m, 4*xis*p.cPad*p.nPad, byXi)
		}
		dw := make([]float32, len(want))
		entry := SconvWinograd3x3Filter
		if f == winoGradF4 {
			entry = SconvWinograd3x3FilterF4
		}
		if err := entry(g, tc.n, x, dy, dw); err != nil {
			t.Fatal(err)
		}
		label := fmt.Sprintf("%+v F(3×3, %d×%d)", tc, f.in.m, f.in.m)
		checkGradForm(t, f, label, dw, want, mag)
		if f != winoGradF4 {
			continue
		}
		direct := make([]float32, len(want))
		sconvWinogradFilterByXi(kern, f, g, tc.n, x, dy, direct, 1, 0)
		if i := sameBits(dw, direct); i >= 0 {
			t.Errorf("%s: dw[%d] = %g, by ξ %g", label, i, dw[i], direct[i])
		}
	}
}

// TestWino4GradOutputVec checks the vector F(3×3, 4×4) output transform with the parts' sums
// (wino4GradOutputVec, where the path has it) bit for bit against the sums in order and
// wino4FilterOutput, for 1 to 3 parts, channel counts below, at and past multiples of 16 and
// strides with gaps.
func TestWino4GradOutputVec(t *testing.T) { forEachISA(t, testWino4GradOutputVec) }

func testWino4GradOutputVec(t *testing.T) {
	rng := rand.New(rand.NewPCG(61, 62))
	var scratch [winoMaxXi * 16]float32
	for _, n := range []int{5, 16, 35, 64} {
		for parts := 1; parts <= 3; parts++ {
			xs := n + 3
			ps := 36*xs + 7
			ks := n + 5
			m := make([]float32, parts*ps)
			for i := range m {
				m[i] = float32(rng.NormFloat64())
			}
			dw := make([]float32, 8*ks+n)
			done := wino4GradOutputVec(m, xs, parts, ps, dw, ks, n, &scratch)
			if want := 16 * (n / 16); cur().isa >= ISAAVX512 && done != want || cur().isa < ISAAVX512 && done != 0 {
				t.Fatalf("n=%d: %d channels done on path %s", n, done, cur().isa)
			}
			var s [winoMaxXi][]float32
			var out [9][]float32
			for xi := range 36 {
				s[xi] = make([]float32, n)
				for j := range n {
					v := m[xi*xs+j]
					for q := 1; q < parts; q++ {
						v += m[q*ps+xi*xs+j]
					}
					s[xi][j] = v
				}
			}
			for k := range out {
				out[k] = make([]float32, n)
			}
			wino4FilterOutput(&s, &out, n)
			for k := range out {
				for j := range done {
					if got, want := dw[k*ks+j], out[k][j]; math.Float32bits(got) != math.Float32bits(want) {
						t.Fatalf("n=%d, %d parts: dw[%d][%d] = %g, portable %g", n, parts, k, j, got, want)
					}
				}
			}
		}
	}
}
