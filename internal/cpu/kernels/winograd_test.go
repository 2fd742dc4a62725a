package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// naiveConv3x3 is the definition of the stride-1 3×3 correlation in float64:
// out[b, oh, ow, o] = Σ x[b, oh−PadTop+kh, ow−PadLeft+kw, c]·w[kh·s0 + kw·s1 + c·s2 + o·s3], zero
// outside the image. It also returns Σ |x|·|w|, the magnitude that bounds rounding errors.
func naiveConv3x3(g ConvGeometry, n int, x, w []float64, s [4]int) (out, mag []float64) {
	out = make([]float64, g.Pixels()*n)
	mag = make([]float64, len(out))
	for b := 0; b < g.Batch; b++ {
		for oh := 0; oh < g.OutH; oh++ {
			for ow := 0; ow < g.OutW; ow++ {
				at := ((b*g.OutH+oh)*g.OutW + ow) * n
				for kh := 0; kh < 3; kh++ {
					for kw := 0; kw < 3; kw++ {
						ih, iw := oh-g.PadTop+kh, ow-g.PadLeft+kw
						if ih < 0 || iw < 0 || ih >= g.InH || iw >= g.InW {
							continue
						}
						for c := 0; c < g.InC; c++ {
							xv := x[((b*g.InH+ih)*g.InW+iw)*g.InC+c]
							for o := 0; o < n; o++ {
								wv := w[kh*s[0]+kw*s[1]+c*s[2]+o*s[3]]
								out[at+o] += xv * wv
								mag[at+o] += math.Abs(xv * wv)
							}
						}
					}
				}
			}
		}
	}
	return out, mag
}

// winoCase is one convolution of the Winograd tests: sizes, padding (top/left, bottom/right).
type winoCase struct {
	b, h, w, c, n int
	pad, padEnd   int
}

func (tc winoCase) geometry() ConvGeometry {
	return ConvGeometry{Batch: tc.b, InH: tc.h, InW: tc.w, InC: tc.c, KH: 3, KW: 3,
		OutH: tc.h + tc.pad + tc.padEnd - 2, OutW: tc.w + tc.pad + tc.padEnd - 2, PadTop: tc.pad, PadLeft: tc.pad}
}

// winoCases: odd and even sizes, channels below, at and past multiples of 8 and of the
// micro-kernel width, N = 1..3, padding 0, 1 and 2 ("full", as in the input gradient of a valid
// convolution), images smaller than a tile, and asymmetric padding.
var winoCases = []winoCase{
	{1, 5, 5, 3, 2, 1, 1},
	{2, 7, 9, 17, 19, 1, 1},
	{3, 8, 6, 16, 16, 0, 0},
	{1, 9, 11, 9, 33, 0, 0},
	{2, 6, 7, 24, 8, 2, 2},
	{1, 3, 3, 5, 7, 1, 1},
	{1, 2, 4, 11, 13, 1, 1},
	{3, 10, 10, 32, 40, 1, 1},
	{1, 4, 5, 1, 1, 1, 0},
	{2, 5, 8, 13, 21, 0, 1},
	{1, 13, 3, 7, 64, 1, 2},
	{2, 6, 6, 20, 70, 1, 1}, // winoWide, with a partly and a wholly padded half panel
}

// checkWinograd compares got with want (float64) and returns the largest error relative to the
// output scale max|want|; it fails where an error exceeds the rounding bound of the magnitude.
func checkWinograd(t *testing.T, label string, got []float32, want, mag []float64) float64 {
	t.Helper()
	// Winograd's transforms add up to 4×4 input and 4×4 output values (and the filter's 3×3)
	// around the GEMM: a few more roundings of sums no larger than a few times the magnitude.
	rel, _ := checkWinogradBound(t, label, got, want, mag, 64)
	return rel
}

// checkWinogradBound compares got with want (float64): it fails where an error exceeds
// k·2⁻²⁴·(mag + max|want|) (k roundings of the magnitude of the sum and of the output scale) and
// returns the largest error relative to max|want| and the largest in units of 2⁻²⁴·(mag + max|want|).
func checkWinogradBound(t *testing.T, label string, got []float32, want, mag []float64, k float64) (rel, units float64) {
	t.Helper()
	scale := 0.0
	for _, v := range want {
		scale = max(scale, math.Abs(v))
	}
	worst := 0.0
	bad := 0
	for i, v := range got {
		d := math.Abs(float64(v) - want[i])
		worst = max(worst, d)
		unit := 0x1p-24 * (mag[i] + scale)
		if unit > 0 {
			units = max(units, d/unit)
		}
		if d > k*unit || math.IsNaN(float64(v)) {
			if bad < 5 {
				t.Errorf("%s: element %d = %g, want %g (magnitude %g)", label, i, v, want[i], mag[i])
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d elements wrong", label, bad, len(got))
	}
	if scale == 0 {
		return worst, units
	}
	return worst / scale, units
}

func TestSconvWinograd3x3AgainstReference(t *testing.T) {
	forEachISA(t, testSconvWinograd3x3AgainstReference)
}

func testSconvWinograd3x3AgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	worstWino, worstIm2col := 0.0, 0.0
	for _, tc := range winoCases {
		g := tc.geometry()
		x := toF32(randSlice(rng, g.InputSize()))
		w := toF32(randSlice(rng, 9*tc.c*tc.n))
		s := HWIOStrides(tc.c, tc.n)
		want, mag := naiveConv3x3(g, tc.n, fromF32(x), fromF32(w), s)
		out := make([]float32, g.Pixels()*tc.n)
		for i := range out {
			out[i] = float32(math.NaN()) // overwritten, never read
		}
		if err := SconvWinograd3x3(g, tc.n, x, w, s, out); err != nil {
			t.Fatal(err)
		}
		label := fmt.Sprintf("%+v", tc)
		worstWino = max(worstWino, checkWinograd(t, label+" winograd", out, want, mag))
		direct := make([]float32, len(out))
		if err := SconvIm2col(g, tc.n, 1, x, w, tc.n, 0, direct, tc.n); err != nil {
			t.Fatal(err)
		}
		worstIm2col = max(worstIm2col, checkWinograd(t, label+" im2col", direct, want, mag))
		if worstWino > 1e-5 {
			t.Errorf("%s: error %.3g relative to the output scale, want ≤ 1e-5", label, worstWino)
		}
	}
	t.Logf("largest error relative to max|out|: winograd %.3g, im2col %.3g", worstWino, worstIm2col)
}

// TestSconvWinograd3x3Layouts reads the weights through other strides (the transposed HWOI
// layout of the input-gradient convolution, and a padded one) and computes with more input
// channels than one micro-kernel call takes (the kc blocking), with F(2×2) and F(4×4).
func TestSconvWinograd3x3Layouts(t *testing.T) { forEachISA(t, testSconvWinograd3x3Layouts) }

func testSconvWinograd3x3Layouts(t *testing.T) {
	rng := rand.New(rand.NewPCG(33, 34))
	for _, lc := range []struct {
		name string
		tc   winoCase
		s    func(c, n int) [4]int
	}{
		{"HWOI", winoCase{2, 6, 5, 12, 20, 1, 1}, func(c, n int) [4]int { return [4]int{3 * c * n, c * n, 1, c} }},
		{"padded OIHW-like", winoCase{1, 9, 7, 6, 9, 1, 1}, func(c, n int) [4]int { return [4]int{4, 1, 13, 13 * c} }},
		{"long sum", winoCase{1, 9, 6, 300, 18, 1, 1}, HWIOStrides},
		{"wide", winoCase{2, 8, 8, 64, 80, 1, 1}, HWIOStrides},
	} {
		g := lc.tc.geometry()
		s := lc.s(lc.tc.c, lc.tc.n)
		size := 2*s[0] + 2*s[1] + (lc.tc.c-1)*s[2] + (lc.tc.n-1)*s[3] + 1
		x := toF32(randSlice(rng, g.InputSize()))
		w := toF32(randSlice(rng, size))
		want, mag := naiveConv3x3(g, lc.tc.n, fromF32(x), fromF32(w), s)
		for _, form := range []struct {
			name  string
			conv  func(ConvGeometry, int, []float32, []float32, [4]int, []float32) error
			bound float64
		}{{"F2", SconvWinograd3x3, 64}, {"F4", SconvWinograd3x3F4, wino4Bound}} {
			out := make([]float32, g.Pixels()*lc.tc.n)
			if err := form.conv(g, lc.tc.n, x, w, s, out); err != nil {
				t.Fatal(err)
			}
			checkWinogradBound(t, lc.name+" "+form.name, out, want, mag, form.bound)
		}
	}
}

// TestSconvWinogradBlocking checks that the result does not depend on the block size, the number
// of goroutines or the micro-kernel: each tile's products are the same sums in the same order
// (bit-identical), and the portable 4×4 micro-kernel agrees with the reference.
func TestSconvWinogradBlocking(t *testing.T) {
	checkWinogradSameBits(t, winoF2, 64, rand.New(rand.NewPCG(35, 36)),
		[]winoCase{{3, 9, 11, 19, 37, 1, 1}, {2, 9, 7, 21, 70, 1, 1}},
		[]winoRun{{1, 6}, {2, 6}, {3, 12}, {4, 0}, {2, 30}})
}

// winoRun is a goroutine count and a block size (tiles per block, 0 for the default).
type winoRun struct{ threads, tiles int }

// checkWinogradSameBits runs form f on each case (inputs drawn from rng) with the goroutines and
// block sizes of runs and with each of detThreads at the default block size, on the path's Winograd
// micro-kernel and on the one it takes for the case's output channels (the wide kernel, where the
// path has one, sums in the narrow one's order): every run must give the bits of one block on one
// goroutine, and the portable micro-kernel must agree with the float64 reference within bound
// units (checkWinogradBound).
func checkWinogradSameBits(t *testing.T, f *winoForm, bound float64, rng *rand.Rand, cases []winoCase, runs []winoRun) {
	t.Helper()
	for _, th := range detThreads {
		runs = append(runs[:len(runs):len(runs)], winoRun{th, 0})
	}
	for _, tc := range cases {
		g := tc.geometry()
		x := toF32(randSlice(rng, g.InputSize()))
		w := toF32(randSlice(rng, 9*tc.c*tc.n))
		s := HWIOStrides(tc.c, tc.n)
		ref := make([]float32, g.Pixels()*tc.n)
		sconvWinograd(cur().wino, f, g, tc.n, x, w, s, ref, 1, 1000)
		for _, run := range runs {
			for _, kern := range []*kernel[float32]{cur().wino, cur().winoFor(tc.n)} {
				out := make([]float32, len(ref))
				sconvWinograd(kern, f, g, tc.n, x, w, s, out, run.threads, run.tiles)
				if i := sameBits(out, ref); i >= 0 {
					t.Fatalf("%s %+v, kernel %s: %d goroutines, block %d tiles: element %d = %g, one block gives %g",
						f.name, tc, kern.name, run.threads, run.tiles, i, out[i], ref[i])
				}
			}
		}
		want, mag := naiveConv3x3(g, tc.n, fromF32(x), fromF32(w), s)
		out := make([]float32, len(ref))
		sconvWinograd(genericKernelF32(), f, g, tc.n, x, w, s, out, 2, 8)
		checkWinogradBound(t, f.name+" portable micro-kernel", out, want, mag, bound)
	}
}

// TestWinogradTransforms checks the tile transforms against the matrix products Bᵀ·d·B and
// Aᵀ·m·A written out with the matrices, on integer data (exact in float32), and the vector
// transforms against the portable ones bit for bit on random data, for channel counts around
// multiples of 8 and strides with gaps.
func TestWinogradTransforms(t *testing.T) { forEachISA(t, testWinogradTransforms) }

func testWinogradTransforms(t *testing.T) {
	bt := [4][4]float64{{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}}
	at := [2][4]float64{{1, 1, 1, 0}, {0, 1, -1, -1}}
	rng := rand.New(rand.NewPCG(37, 38))
	for _, c := range []int{1, 7, 8, 9, 16, 23, 40} {
		rs, cs, ds := 5*c+3, c+2, 2*c+1
		src := make([]float32, 3*rs+3*cs+c)
		for i := range src {
			src[i] = float32(rng.IntN(201) - 100)
		}
		got := make([]float32, 15*ds+c)
		winoInput(src, rs, cs, got, ds, c)
		for ch := 0; ch < c; ch++ {
			for i := 0; i < 4; i++ {
				for j := 0; j < 4; j++ {
					want := 0.0 // (Bᵀ·d·B)[i][j] = Σ_kl Bᵀ[i][k]·d[k][l]·Bᵀ[j][l]
					for k := 0; k < 4; k++ {
						for l := 0; l < 4; l++ {
							want += bt[i][k] * float64(src[k*rs+l*cs+ch]) * bt[j][l]
						}
					}
					if v := got[(4*i+j)*ds+ch]; float64(v) != want {
						t.Fatalf("input transform c=%d channel %d [%d][%d] = %g, want %g", c, ch, i, j, v, want)
					}
				}
			}
		}
		ss, ors, ocs := 3*c+1, 4*c+5, c+1
		m := make([]float32, 15*ss+c)
		for i := range m {
			m[i] = float32(rng.IntN(201) - 100)
		}
		y := make([]float32, ors+ocs+c)
		winoOutput(m, ss, y, ors, ocs, c)
		for ch := 0; ch < c; ch++ {
			for a := 0; a < 2; a++ {
				for b := 0; b < 2; b++ {
					want := 0.0 // (Aᵀ·m·A)[a][b]
					for k := 0; k < 4; k++ {
						for l := 0; l < 4; l++ {
							want += at[a][k] * float64(m[(4*k+l)*ss+ch]) * at[b][l]
						}
					}
					if v := y[a*ors+b*ocs+ch]; float64(v) != want {
						t.Fatalf("output transform c=%d channel %d [%d][%d] = %g, want %g", c, ch, a, b, v, want)
					}
				}
			}
		}
		// Random data: the vector transforms perform the portable ones' operations in order.
		for i := range src {
			src[i] = float32(rng.NormFloat64())
		}
		for i := range m {
			m[i] = float32(rng.NormFloat64())
		}
		got2 := make([]float32, len(got))
		winoInput(src, rs, cs, got, ds, c)
		winoInputGo(src, rs, cs, got2, ds, 0, c)
		y2 := make([]float32, len(y))
		winoOutput(m, ss, y, ors, ocs, c)
		winoOutputGo(m, ss, y2, ors, ocs, 0, c)
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(got2[i]) {
				t.Fatalf("input transform c=%d: element %d = %g, portable %g", c, i, got[i], got2[i])
			}
		}
		for i := range y {
			if math.Float32bits(y[i]) != math.Float32bits(y2[i]) {
				t.Fatalf("output transform c=%d: element %d = %g, portable %g", c, i, y[i], y2[i])
			}
		}
	}
}

// TestWinogradFilterTransform checks the packed U_ξ = G·g·Gᵀ against the matrix product on
// integer filters (exact: G has entries 0, ±½, ±1) and the zero columns past the last channel.
func TestWinogradFilterTransform(t *testing.T) {
	for _, n := range []int{19, winoWideCols + 6} {
		testWinogradFilterTransform(t, cur().winoFor(n), 5, n)
	}
}

func testWinogradFilterTransform(t *testing.T, kern *kernel[float32], c, n int) {
	gm := [4][3]float64{{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}}
	rng := rand.New(rand.NewPCG(39, 40))
	w := make([]float32, 9*c*n)
	for i := range w {
		w[i] = float32(rng.IntN(41) - 20)
	}
	s := HWIOStrides(c, n)
	p := winoPlan{g: ConvGeometry{InC: c}, f: winoF2, kern: kern, n: n, nPad: (n + kern.nr - 1) / kern.nr * kern.nr}
	p.uStride = p.nPad * c
	p.u = make([]float32, 16*p.uStride)
	for i := range p.u {
		p.u[i] = float32(math.NaN())
	}
	p.transformFilter(w, s, 0, 2)
	p.transformFilter(w, s, 2, c)
	for ci := 0; ci < c; ci++ {
		for o := 0; o < p.nPad; o++ {
			at := (o/kern.nr)*kern.nr*c + ci*kern.nr + o%kern.nr
			for i := 0; i < 4; i++ {
				for j := 0; j < 4; j++ {
					want := 0.0
					if o < n {
						for k := 0; k < 3; k++ {
							for l := 0; l < 3; l++ {
								want += gm[i][k] * float64(w[k*s[0]+l*s[1]+ci*s[2]+o]) * gm[j][l]
							}
						}
					}
					if v := p.u[(4*i+j)*p.uStride+at]; float64(v) != want {
						t.Fatalf("kernel %s: U[%d][%d] channel %d→%d = %g, want %g", kern.name, i, j, ci, o, v, want)
					}
				}
			}
		}
	}
}

func TestSconvWinograd3x3Errors(t *testing.T) {
	g := winoCase{1, 4, 4, 2, 3, 1, 1}.geometry()
	x := make([]float32, g.InputSize())
	w := make([]float32, 9*2*3)
	out := make([]float32, g.Pixels()*3)
	s := HWIOStrides(2, 3)
	strided := g
	strided.StrideH = 2
	wide := g
	wide.KW = 5
	for _, e := range []struct {
		name string
		err  error
		want string
	}{
		{"stride", SconvWinograd3x3(strided, 3, x, w, s, out), "unit strides"},
		{"window", SconvWinograd3x3(wide, 3, x, w, s, out), "3×3 window"},
		{"short x", SconvWinograd3x3(g, 3, x[:5], w, s, out), "x: 5 elements"},
		{"short out", SconvWinograd3x3(g, 3, x, w, s, out[:7]), "out: 7 elements"},
		{"short w", SconvWinograd3x3(g, 3, x, w[:17], s, out), "w: 17 elements"},
		{"negative stride", SconvWinograd3x3(g, 3, x, w, [4]int{6, 2, -1, 1}, out), "negative weight stride"},
		{"negative n", SconvWinograd3x3(g, -1, x, w, s, out), "negative output channels"},
	} {
		if e.err == nil || !strings.Contains(e.err.Error(), e.want) {
			t.Errorf("%s: error %v, want one containing %q", e.name, e.err, e.want)
		}
	}
	// No input channels: the sum is empty.
	g0 := g
	g0.InC = 0
	for i := range out {
		out[i] = 7
	}
	if err := SconvWinograd3x3(g0, 3, nil, nil, s, out); err != nil {
		t.Fatal(err)
	}
	for i, v := range out {
		if v != 0 {
			t.Fatalf("InC = 0: out[%d] = %g, want 0", i, v)
		}
	}
	if !g.WinogradApplies() || strided.WinogradApplies() || wide.WinogradApplies() {
		t.Error("WinogradApplies: wrong answer")
	}
}

// benchLayer is a 3×3 stride-1 "same" convolution of hw×hw images with c → n channels, at batch
// 64, as the Winograd benchmarks time it.
type benchLayer struct {
	name     string
	hw, c, n int
}

// resnet8x4Layers are resnet8x4's 3×3 stride-1 layers with as many input as output channels.
var resnet8x4Layers = []benchLayer{{"32x32x64to64", 32, 64, 64}, {"16x16x128to128", 16, 128, 128}, {"8x8x256to256", 8, 256, 256}}

// inputs returns the layer's geometry, an input x and HWIO weights w drawn from the seed (1, 2),
// and an output buffer y.
func (l benchLayer) inputs() (g ConvGeometry, x, w, y []float32) {
	g = winoCase{b: 64, h: l.hw, w: l.hw, c: l.c, pad: 1, padEnd: 1}.geometry()
	rng := rand.New(rand.NewPCG(1, 2))
	x = toF32(randSlice(rng, g.InputSize()))
	w = toF32(randSlice(rng, 9*l.c*l.n))
	return g, x, w, make([]float32, g.Pixels()*l.n)
}

// BenchmarkWinograd compares Winograd F(2×2, 3×3) and F(4×4, 3×3) with the im2col GEMM (SconvIm2col) on the
// resnet8x4 3×3 layers (batch 64, "same" padding), F(4×4) also with the input gradient's
// transposed weight strides (winograd-f4-dgrad); GFLOP/s counts the direct convolution's
// 2·pixels·9·InC·OutC flops for both, so the ratio is the speed-up.
func BenchmarkWinograd(b *testing.B) {
	for _, l := range append(resnet8x4Layers, benchLayer{"32x32x32to64", 32, 32, 64}, benchLayer{"32x32x64to32", 32, 64, 32}) {
		g, x, w, y := l.inputs()
		flops := 2 * float64(g.Pixels()) * float64(g.PatchSize()) * float64(l.n)
		var cpu0 float64
		report := func(b *testing.B) {
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			b.ReportMetric(1000*(processCPUSeconds()-cpu0)/float64(b.N), "cpu-ms/op")
		}
		b.Run(l.name+"/winograd", func(b *testing.B) {
			cpu0 = processCPUSeconds()
			for b.Loop() {
				if err := SconvWinograd3x3(g, l.n, x, w, HWIOStrides(l.c, l.n), y); err != nil {
					b.Fatal(err)
				}
			}
			report(b)
		})
		b.Run(l.name+"/winograd-f4", func(b *testing.B) {
			cpu0 = processCPUSeconds()
			for b.Loop() {
				if err := SconvWinograd3x3F4(g, l.n, x, w, HWIOStrides(l.c, l.n), y); err != nil {
					b.Fatal(err)
				}
			}
			report(b)
		})
		b.Run(l.name+"/winograd-f4-dgrad", func(b *testing.B) {
			// The input gradient's layout: the weights read through transposed strides.
			s := [4]int{3 * l.c * l.n, l.c * l.n, 1, l.c}
			cpu0 = processCPUSeconds()
			for b.Loop() {
				if err := SconvWinograd3x3F4(g, l.n, x, w, s, y); err != nil {
					b.Fatal(err)
				}
			}
			report(b)
		})
		b.Run(l.name+"/im2col", func(b *testing.B) {
			cpu0 = processCPUSeconds()
			for b.Loop() {
				if err := SconvIm2col(g, l.n, 1, x, w, l.n, 0, y, l.n); err != nil {
					b.Fatal(err)
				}
			}
			report(b)
		})
	}
}
