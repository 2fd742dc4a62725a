package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// naiveIm2col materialises im2col(x) as a [Pixels, PatchSize] float64 matrix, from the definition.
func naiveIm2col(g ConvGeometry, x []float64) []float64 {
	g = g.norm()
	cols := g.PatchSize()
	out := make([]float64, g.Pixels()*cols)
	for b := 0; b < g.Batch; b++ {
		for oh := 0; oh < g.OutH; oh++ {
			for ow := 0; ow < g.OutW; ow++ {
				row := (b*g.OutH+oh)*g.OutW + ow
				for kh := 0; kh < g.KH; kh++ {
					for kw := 0; kw < g.KW; kw++ {
						for c := 0; c < g.InC; c++ {
							uh := oh*g.StrideH - g.PadTop + kh*g.DilationH
							uw := ow*g.StrideW - g.PadLeft + kw*g.DilationW
							ih, iw := uh/g.InDilationH, uw/g.InDilationW
							v := 0.0
							if uh >= 0 && uw >= 0 && uh%g.InDilationH == 0 && uw%g.InDilationW == 0 && ih < g.InH && iw < g.InW {
								v = x[((b*g.InH+ih)*g.InW+iw)*g.InC+c]
							}
							out[row*cols+(kh*g.KW+kw)*g.InC+c] = v
						}
					}
				}
			}
		}
	}
	return out
}

// transpose returns the transpose of the rows×cols matrix x.
func transpose(x []float64, rows, cols int) []float64 {
	t := make([]float64, len(x))
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			t[j*rows+i] = x[i*cols+j]
		}
	}
	return t
}

func randSlice(rng *rand.Rand, n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = rng.Float64()*2 - 1
	}
	return s
}

// convGeometries covers padding, strides, dilation, 1×1 windows, odd channel counts and windows
// larger than the image.
func convGeometries() []ConvGeometry {
	out := func(in, k, s, d, pad, padEnd int) int { return (in+pad+padEnd-(k-1)*d-1)/s + 1 }
	var gs []ConvGeometry
	for _, p := range []struct{ b, h, w, c, kh, kw, s, d, pt, pl, pe int }{
		{2, 8, 8, 3, 3, 3, 1, 1, 1, 1, 1},     // "same" 3×3
		{1, 9, 7, 5, 3, 3, 2, 1, 1, 1, 1},     // stride 2, odd sizes
		{3, 6, 6, 16, 1, 1, 1, 1, 0, 0, 0},    // 1×1
		{1, 10, 9, 2, 3, 2, 1, 2, 2, 1, 2},    // dilation 2, asymmetric window
		{2, 4, 4, 7, 5, 5, 1, 1, 2, 2, 2},     // window larger than the valid area
		{1, 12, 12, 1, 4, 4, 4, 1, 0, 0, 0},   // patchify (ViT-style)
		{4, 16, 16, 19, 3, 3, 1, 1, 1, 1, 1},  // several blocks
		{2, 7, 7, 3, 3, 3, 2, 1, -1, -1, 0},   // negative padding (cropping)
		{2, 6, 29, 4, 3, 3, 2, 1, 1, 1, 1},    // stride 2, output rows wider than a tile
		{1, 3, 20, 2, 3, 3, 1, 1, 4, 4, 4},    // tiles whose segments read only padding
		{2, 4, 33, 3, 3, 3, 1, 1, 1, 1, 1},    // 3-channel first layer, rows of ≥ 2 row tiles of every kernel (in place)
		{1, 5, 61, 3, 3, 3, 2, 1, 1, 1, 1},    // the same at stride 2
		{2, 9, 11, 37, 3, 3, 2, 1, 1, 0, 1},   // stride 2, odd sizes, asymmetric padding, 37 channels (16-step vector blocks and a tail)
		{2, 9, 7, 32, 1, 1, 2, 1, 0, 0, 0},    // 1×1 stride 2 on odd sizes
		{2, 13, 12, 7, 7, 4, 2, 1, 3, 1, 2},   // few channels, a window of 196 values (several blocks of 14-row panels), stride 2
		{1, 23, 23, 1, 10, 10, 1, 2, 1, 1, 1}, // one channel, dilated 10×10 window: 100 runs of one value per pixel
		{2, 9, 11, 64, 3, 3, 2, 1, 1, 0, 1},   // stride 2, odd sizes, asymmetric padding, channels in whole 32-column tiles (in place)
		{1, 6, 7, 32, 3, 3, 1, 2, 2, 2, 1},    // dilation 2, 32 channels
		{2, 5, 7, 32, 1, 1, 1, 1, 0, 0, 0},    // 1×1, 32 channels: one run of steps over rows and images
		{4, 31, 33, 32, 3, 3, 2, 1, 1, 1, 1},  // 1088 pixels: several parts and blocks of the weight gradient's sum
		{2, 12, 23, 48, 3, 3, 2, 1, 1, 0, 1},  // stride 2, asymmetric padding, 11-pixel output rows (tiles of 8 overlap)
		{1, 14, 20, 32, 3, 3, 1, 2, 2, 2, 1},  // dilation 2, 19-pixel output rows
	} {
		gs = append(gs, ConvGeometry{
			Batch: p.b, InH: p.h, InW: p.w, InC: p.c, KH: p.kh, KW: p.kw,
			OutH: out(p.h, p.kh, p.s, p.d, p.pt, p.pe), OutW: out(p.w, p.kw, p.s, p.d, p.pl, p.pe),
			StrideH: p.s, StrideW: p.s, DilationH: p.d, DilationW: p.d, PadTop: p.pt, PadLeft: p.pl,
		})
	}
	// Input dilation, as in a transposed convolution: 5×5 input dilated by 2, 3×3 window, pad 2.
	gs = append(gs, ConvGeometry{Batch: 2, InH: 5, InW: 5, InC: 4, KH: 3, KW: 3, OutH: 11, OutW: 10,
		InDilationH: 2, InDilationW: 2, PadTop: 2, PadLeft: 1})
	return gs
}

// naiveInputGradient computes dx[b, ih, iw, c] = Σ dy[b, oh, ow, o]·w[kh, kw, c, o] over the
// (oh, ow, kh, kw) that read input pixel (ih, iw), from the definition (no input dilation).
func naiveInputGradient(g ConvGeometry, outC int, dy, w []float64) []float64 {
	g = g.norm()
	dx := make([]float64, g.InputSize())
	for b := 0; b < g.Batch; b++ {
		for oh := 0; oh < g.OutH; oh++ {
			for ow := 0; ow < g.OutW; ow++ {
				for kh := 0; kh < g.KH; kh++ {
					for kw := 0; kw < g.KW; kw++ {
						ih := oh*g.StrideH - g.PadTop + kh*g.DilationH
						iw := ow*g.StrideW - g.PadLeft + kw*g.DilationW
						if ih < 0 || ih >= g.InH || iw < 0 || iw >= g.InW {
							continue
						}
						for c := 0; c < g.InC; c++ {
							for o := 0; o < outC; o++ {
								dx[((b*g.InH+ih)*g.InW+iw)*g.InC+c] += dy[((b*g.OutH+oh)*g.OutW+ow)*outC+o] * w[((kh*g.KW+kw)*g.InC+c)*outC+o]
							}
						}
					}
				}
			}
		}
	}
	return dx
}

func TestConvInputGradient(t *testing.T) { forEachISA(t, testConvInputGradient) }

func testConvInputGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, g := range convGeometries() {
		if g.InDilationH > 1 {
			continue
		}
		for _, outC := range []int{1, 5, 24} {
			w := toF32(randSlice(rng, g.PatchSize()*outC))
			dy := toF32(randSlice(rng, g.Pixels()*outC))
			want := naiveInputGradient(g, outC, fromF32(dy), fromF32(w))
			gg, err := g.InputGradient(outC)
			if err != nil {
				t.Fatal(err)
			}
			if gg.Pixels() != g.InputSize()/g.InC {
				t.Fatalf("%+v: input-gradient geometry has %d pixels, want %d", g, gg.Pixels(), g.InputSize()/g.InC)
			}
			wf, err := FlipHWIO(g.KH, g.KW, g.InC, outC, w)
			if err != nil {
				t.Fatal(err)
			}
			dx := make([]float32, g.InputSize())
			if err := SconvIm2col(gg, g.InC, 1, dy, wf, g.InC, 0, dx, g.InC); err != nil {
				t.Fatal(err)
			}
			// Magnitude bound from |dy|·|w| sums: reuse the gradient with absolute values.
			abs := func(x []float32) []float64 {
				y := fromF32(x)
				for i := range y {
					y[i] = math.Abs(y[i])
				}
				return y
			}
			mag := naiveInputGradient(g, outC, abs(dy), abs(w))
			tc := gemmCase{m: g.Batch * g.InH * g.InW, n: g.InC, k: gg.PatchSize()}
			checkResult(t, fmt.Sprintf("input gradient %+v outC=%d", g, outC), tc, fromF32(dx), g.InC, want, mag, 0x1p-24)
		}
	}
}

func TestSconvIm2colAgainstReference(t *testing.T) { forEachISA(t, testSconvIm2colAgainstReference) }

func testSconvIm2colAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, g := range convGeometries() {
		for _, n := range []int{1, 16, 21, 64, 74} {
			x := toF32(randSlice(rng, g.InputSize()))
			col := naiveIm2col(g, fromF32(x))
			m, k := g.Pixels(), g.PatchSize()
			tc := gemmCase{m: m, n: n, k: k, alpha: 1.5, beta: 0.5, padC: 1}
			w := toF32(randSlice(rng, k*n))
			outInit := randSlice(rng, m*(n+1))
			want, mag := refGemm(false, false, m, n, k, tc.alpha, col, k, fromF32(w), n, tc.beta, fromF32(toF32(outInit)), n+1)
			out := toF32(outInit)
			for i := range out {
				if i%(n+1) == n {
					out[i] = 12345
				}
			}
			if err := SconvIm2col(g, n, float32(tc.alpha), x, w, n, float32(tc.beta), out, n+1); err != nil {
				t.Fatal(err)
			}
			checkResult(t, fmt.Sprintf("forward %+v", g), tc, fromF32(out), n+1, want, mag, 0x1p-24)
			// beta == 0 over NaNs.
			tc0 := gemmCase{m: m, n: n, k: k, alpha: 1.5, padC: 1}
			want0, mag0 := refGemm(false, false, m, n, k, tc0.alpha, col, k, fromF32(w), n, 0, nil, n+1)
			out0 := maskPad32(make([]float32, m*(n+1)), n, n+1)
			for i := range out0 {
				if i%(n+1) < n {
					out0[i] = float32(nan64())
				}
			}
			if err := SconvIm2col(g, n, float32(tc0.alpha), x, w, n, 0, out0, n+1); err != nil {
				t.Fatal(err)
			}
			checkResult(t, fmt.Sprintf("forward beta 0 %+v", g), tc0, fromF32(out0), n+1, want0, mag0, 0x1p-24)

			// Weight gradient: dw = alpha·im2col(x)ᵀ·dy + beta·dw, with beta = 0 over NaNs, and
			// beta ≠ 0 with a row stride beyond n.
			dy := toF32(randSlice(rng, m*n))
			for _, beta := range []float64{0, 0.75} {
				ldw := n + int(beta*4)
				tcT := gemmCase{m: k, n: n, k: m, alpha: -1, beta: beta, padC: ldw - n}
				dw0 := toF32(randSlice(rng, k*ldw))
				wantT, magT := refGemm(true, false, k, n, m, -1, col, k, fromF32(dy), n, beta, fromF32(dw0), ldw)
				dw := maskPad32(dw0, n, ldw)
				if beta == 0 {
					for i := range dw {
						if i%ldw < n {
							dw[i] = float32(nan64())
						}
					}
				}
				if err := SconvIm2colT(g, n, -1, x, dy, n, float32(beta), dw, ldw); err != nil {
					t.Fatal(err)
				}
				checkResult(t, fmt.Sprintf("weight gradient %+v", g), tcT, fromF32(dw), ldw, wantT, magT, 0x1p-24)
			}
		}
	}
}

func nan64() float64 {
	var zero float64
	return zero / zero
}

func TestConvErrors(t *testing.T) {
	g := convGeometries()[0]
	x := make([]float32, g.InputSize())
	w := make([]float32, g.PatchSize()*4)
	out := make([]float32, g.Pixels()*4)
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"stride", SconvIm2col(ConvGeometry{Batch: 1, InH: 1, InW: 1, InC: 1, KH: 1, KW: 1, OutH: 1, OutW: 1, StrideH: -1}, 4, 1, x, w, 4, 0, out, 4), "negative stride"},
		{"window", SconvIm2col(ConvGeometry{Batch: 1, InH: 1, InW: 1, InC: 1, OutH: 1, OutW: 1}, 4, 1, x, w, 4, 0, out, 4), "window 0×0"},
		{"short x", SconvIm2col(g, 4, 1, x[:10], w, 4, 0, out, 4), "x: 10 elements"},
		{"short out", SconvIm2col(g, 4, 1, x, w, 4, 0, out[:7], 4), "out: 7 elements"},
		{"short dw", SconvIm2colT(g, 4, 1, x, out, 4, 0, w[:5], 4), "dw: 5 elements"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, tc.err, tc.want)
		}
	}
}

func TestSgemmBatchedAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, tc := range []struct {
		transA, transB bool
		batch, m, n, k int
		shareA, shareB bool
	}{
		{false, true, 6, 13, 13, 8, false, false},    // attention scores, parallel over the batch
		{false, false, 5, 13, 8, 13, false, false},   // attention · values
		{true, false, 3, 7, 9, 5, false, true},       // shared B
		{false, false, 2, 150, 100, 90, true, false}, // large products, shared A
		{false, false, 1, 3, 4, 5, false, false},
	} {
		ar, ac := tc.m, tc.k
		if tc.transA {
			ar, ac = tc.k, tc.m
		}
		br, bc := tc.k, tc.n
		if tc.transB {
			br, bc = tc.n, tc.k
		}
		lda, ldb, ldc := ac+1, bc+2, tc.n+3
		sa, sb, sc := ar*lda+5, br*ldb, tc.m*ldc+1
		if tc.shareA {
			sa = 0
		}
		if tc.shareB {
			sb = 0
		}
		a := toF32(randSlice(rng, sa*(tc.batch-1)+ar*lda))
		b := toF32(randSlice(rng, sb*(tc.batch-1)+br*ldb))
		c0 := randSlice(rng, sc*(tc.batch-1)+tc.m*ldc)
		c := toF32(c0)
		for _, kern := range testKernelsF32() {
			for _, threads := range []int{1, 2} {
				copy(c, toF32(c0))
				gemmBatched(kern, "SgemmBatched", tc.transA, tc.transB, tc.batch, tc.m, tc.n, tc.k, 0.5, a, lda, sa, b, ldb, sb, 2, c, ldc, sc, threads)
				for bi := 0; bi < tc.batch; bi++ {
					want, mag := refGemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, 0.5, fromF32(a[bi*sa:]), lda, fromF32(b[bi*sb:]), ldb, 2, fromF32(toF32(c0[bi*sc:])), ldc)
					got := fromF32(c[bi*sc : bi*sc+(tc.m-1)*ldc+tc.n])
					checkResult(t, fmt.Sprintf("%s/threads=%d/batch %d", kern.name, threads, bi), gemmCase{m: tc.m, n: tc.n, k: tc.k}, maskPad(got, tc.n, ldc), ldc, want, mag, 0x1p-24)
				}
			}
		}
		copy(c, toF32(c0))
		SgemmBatched(tc.transA, tc.transB, tc.batch, tc.m, tc.n, tc.k, 0.5, a, lda, sa, b, ldb, sb, 2, c, ldc, sc)
		d := fromF32(toF32(c0))
		DgemmBatched(tc.transA, tc.transB, tc.batch, tc.m, tc.n, tc.k, 0.5, fromF32(a), lda, sa, fromF32(b), ldb, sb, 2, d, ldc, sc)
		for bi := 0; bi < tc.batch; bi++ {
			want, mag := refGemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, 0.5, fromF32(a[bi*sa:]), lda, fromF32(b[bi*sb:]), ldb, 2, fromF32(toF32(c0[bi*sc:])), ldc)
			checkResult(t, "SgemmBatched", gemmCase{m: tc.m, n: tc.n, k: tc.k}, maskPad(fromF32(c[bi*sc:bi*sc+(tc.m-1)*ldc+tc.n]), tc.n, ldc), ldc, want, mag, 0x1p-24)
			checkResult(t, "DgemmBatched", gemmCase{m: tc.m, n: tc.n, k: tc.k}, maskPad(d[bi*sc:bi*sc+(tc.m-1)*ldc+tc.n], tc.n, ldc), ldc, want, mag, 0x1p-24)
		}
	}
}

// maskPad32 returns a copy of x whose padding columns hold checkResult's sentinel.
func maskPad32(x []float32, n, ld int) []float32 {
	y := append([]float32(nil), x...)
	for i := range y {
		if i%ld >= n {
			y[i] = 12345
		}
	}
	return y
}

// maskPad sets the padding columns of a strided matrix to checkResult's sentinel.
func maskPad(x []float64, n, ld int) []float64 {
	for i := range x {
		if i%ld >= n {
			x[i] = 12345
		}
	}
	return x
}

func TestSgemmBatchedOverlapPanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "overlap") {
			t.Errorf("panic %v, want an overlap message", r)
		}
	}()
	c := make([]float32, 100)
	SgemmBatched(false, false, 2, 3, 3, 3, 1, make([]float32, 9), 3, 0, make([]float32, 9), 3, 0, 0, c, 3, 4)
}

// TestSconvFewChannelsAgainstReference: the image-by-image forward convolution against the
// float64 definition, with alpha, beta, a row stride beyond n and n from 1 to several column
// tiles, on every kernel path; and with the very bits of Sgemm on the materialised im2col matrix
// (the product it replaces).
func TestSconvFewChannelsAgainstReference(t *testing.T) {
	forEachISA(t, testSconvFewChannelsAgainstReference)
}

func testSconvFewChannelsAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	gs := append(convGeometries(),
		// Stride 2 and dilation 2 along H only, asymmetric padding.
		ConvGeometry{Batch: 2, InH: 9, InW: 10, InC: 3, KH: 3, KW: 3, OutH: 4, OutW: 9, StrideH: 2, DilationH: 2, PadTop: 2, PadLeft: 0},
		// Cropping along W (negative padding), a 2×5 window.
		ConvGeometry{Batch: 3, InH: 6, InW: 11, InC: 2, KH: 2, KW: 5, OutH: 6, OutW: 5, PadTop: 1, PadLeft: -1},
		// The stem of resnet8x4 on 3 images.
		ConvGeometry{Batch: 3, InH: 32, InW: 32, InC: 3, KH: 3, KW: 3, OutH: 32, OutW: 32, PadTop: 1, PadLeft: 1},
	)
	for _, g := range gs {
		x := toF32(randSlice(rng, g.InputSize()))
		col := naiveIm2col(g, fromF32(x))
		m, k := g.Pixels(), g.PatchSize()
		for _, n := range []int{1, 16, 21, 74} {
			for _, beta := range []float64{0, 0.5} {
				tc := gemmCase{m: m, n: n, k: k, alpha: 1.5, beta: beta, padC: 1}
				w := toF32(randSlice(rng, k*n))
				outInit := randSlice(rng, m*(n+1))
				want, mag := refGemm(false, false, m, n, k, tc.alpha, col, k, fromF32(w), n, tc.beta, fromF32(toF32(outInit)), n+1)
				out := maskPad32(toF32(outInit), n, n+1)
				if beta == 0 {
					for i := range out {
						if i%(n+1) < n {
							out[i] = float32(nan64())
						}
					}
				}
				if err := SconvFewChannels(g, n, float32(tc.alpha), x, w, n, float32(tc.beta), out, n+1); err != nil {
					t.Fatal(err)
				}
				label := fmt.Sprintf("few channels %+v n=%d beta=%g", g, n, beta)
				checkResult(t, label, tc, fromF32(out), n+1, want, mag, 0x1p-24)
				if beta != 0 && n == 16 {
					// alpha == 0: out = beta·out, x and w not read.
					got := toF32(outInit)
					if err := SconvFewChannels(g, n, 0, x, w, n, float32(beta), got, n+1); err != nil {
						t.Fatal(err)
					}
					for i, v := range toF32(outInit) {
						if i%(n+1) < n && got[i] != float32(beta)*v {
							t.Fatalf("%s alpha 0: out[%d] = %g, want %g", label, i, got[i], float32(beta)*v)
						}
					}
				}
				if beta == 0 && m*n*k > smallProduct {
					gemmOut := make([]float32, m*(n+1))
					Sgemm(false, false, m, n, k, 1.5, toF32(col), k, w, n, 0, gemmOut, n+1)
					for i := range gemmOut {
						if i%(n+1) < n && math.Float32bits(gemmOut[i]) != math.Float32bits(out[i]) {
							t.Fatalf("%s: out[%d] = %g, Sgemm on im2col gives %g", label, i, out[i], gemmOut[i])
						}
					}
				}
			}
		}
	}
}
