package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// inputGradGeometries are convGeometries without input dilation, plus the shapes where the
// phases matter: 3×3 stride 2 on even and odd sizes with asymmetric and no padding, stride 3
// (phases no tap reaches), 1×1 stride 2 (three phases of zeros), dilation 2 at stride 2, and
// channel counts that cut k into blocks inside a tap (300) and across taps.
func inputGradGeometries() []ConvGeometry {
	var gs []ConvGeometry
	for _, g := range convGeometries() {
		if g.InDilationH <= 1 && g.InDilationW <= 1 {
			gs = append(gs, g)
		}
	}
	out := func(in, k, s, d, pad, padEnd int) int { return (in+pad+padEnd-(k-1)*d-1)/s + 1 }
	for _, p := range []struct{ b, h, w, c, kh, kw, s, d, pt, pl, pe int }{
		{2, 8, 8, 20, 3, 3, 2, 1, 1, 1, 1},
		{2, 9, 11, 17, 3, 3, 2, 1, 0, 1, 1},
		{1, 10, 7, 3, 3, 3, 3, 1, 1, 1, 1},
		{2, 7, 9, 33, 1, 1, 2, 1, 0, 0, 0},
		{1, 11, 10, 6, 3, 3, 2, 2, 2, 2, 2},
		{1, 5, 6, 9, 3, 2, 2, 1, 1, 0, 0},
	} {
		gs = append(gs, ConvGeometry{
			Batch: p.b, InH: p.h, InW: p.w, InC: p.c, KH: p.kh, KW: p.kw,
			OutH: out(p.h, p.kh, p.s, p.d, p.pt, p.pe), OutW: out(p.w, p.kw, p.s, p.d, p.pl, p.pe),
			StrideH: p.s, StrideW: p.s, DilationH: p.d, DilationW: p.d, PadTop: p.pt, PadLeft: p.pl,
		})
	}
	return gs
}

func TestSconvInputGradientAgainstReference(t *testing.T) {
	forEachISA(t, testSconvInputGradientAgainstReference)
}

func testSconvInputGradientAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, g := range inputGradGeometries() {
		for _, outC := range []int{1, 5, 24, 40, 300} {
			if outC == 300 && g.PatchSize() > 200 {
				continue
			}
			w := toF32(randSlice(rng, g.PatchSize()*outC))
			dy := toF32(randSlice(rng, g.Pixels()*outC))
			want := naiveInputGradient(g, outC, fromF32(dy), fromF32(w))
			abs := func(x []float32) []float64 {
				y := fromF32(x)
				for i := range y {
					y[i] = math.Abs(y[i])
				}
				return y
			}
			mag := naiveInputGradient(g, outC, abs(dy), abs(w))
			dx := make([]float32, g.InputSize()+3)
			for i := range dx {
				dx[i] = float32(nan64()) // every element must be written
			}
			dx[g.InputSize()], dx[g.InputSize()+1], dx[g.InputSize()+2] = 12345, 12345, 12345
			if err := SconvInputGradient(g, outC, dy, w, dx); err != nil {
				t.Fatal(err)
			}
			for i := g.InputSize(); i < len(dx); i++ {
				if dx[i] != 12345 {
					t.Fatalf("%+v outC=%d: dx[%d] past the input written", g, outC, i)
				}
			}
			tc := gemmCase{m: g.Batch * g.InH * g.InW, n: g.InC, k: g.KH * g.KW * outC}
			checkResult(t, fmt.Sprintf("input gradient %+v outC=%d", g, outC), tc, fromF32(dx[:g.InputSize()]), g.InC, want, mag, 0x1p-24)
		}
	}
}

// TestSconvInputGradientClosedForm: with all-ones dy and w, dx[h, v, c] = outC times the number of
// (oh, ow, kh, kw) that read (h, v): at stride 2 with a 3×3 window and padding 1 on an 8×8 image,
// 4 at odd-odd pixels, 2 at odd-even and even-odd, 1 at even-even ones (the corners included).
func TestSconvInputGradientClosedForm(t *testing.T) {
	g := ConvGeometry{Batch: 1, InH: 8, InW: 8, InC: 3, KH: 3, KW: 3, OutH: 4, OutW: 4, StrideH: 2, StrideW: 2, PadTop: 1, PadLeft: 1}
	outC := 7
	ones := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = 1
		}
		return s
	}
	dx := make([]float32, g.InputSize())
	if err := SconvInputGradient(g, outC, ones(g.Pixels()*outC), ones(g.PatchSize()*outC), dx); err != nil {
		t.Fatal(err)
	}
	for h := 0; h < 8; h++ {
		for v := 0; v < 8; v++ {
			n := 1
			if h%2 == 1 && h < 7 {
				n *= 2
			}
			if v%2 == 1 && v < 7 {
				n *= 2
			}
			for c := 0; c < 3; c++ {
				if got := dx[(h*8+v)*3+c]; got != float32(n*outC) {
					t.Errorf("dx[%d, %d, %d] = %g, want %d", h, v, c, got, n*outC)
				}
			}
		}
	}
}

func TestSconvInputGradientErrors(t *testing.T) {
	g := ConvGeometry{Batch: 1, InH: 4, InW: 4, InC: 2, KH: 3, KW: 3, OutH: 2, OutW: 2, StrideH: 2, StrideW: 2, PadTop: 1, PadLeft: 1}
	dy, w, dx := make([]float32, g.Pixels()*3), make([]float32, g.PatchSize()*3), make([]float32, g.InputSize())
	dil := g
	dil.InDilationH = 2
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"input dilation", SconvInputGradient(dil, 3, dy, w, dx), "input-dilated convolution is not supported"},
		{"short dy", SconvInputGradient(g, 3, dy[:5], w, dx), "dy: 5 elements"},
		{"short w", SconvInputGradient(g, 3, dy, w[:5], dx), "w: 5 elements"},
		{"short dx", SconvInputGradient(g, 3, dy, w, dx[:5]), "dx: 5 elements"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, tc.err, tc.want)
		}
	}
}

func TestSconvInputDilatedAgainstReference(t *testing.T) {
	forEachISA(t, testSconvInputDilatedAgainstReference)
}

// testSconvInputDilatedAgainstReference checks SconvInputDilated against im2col of the dilated
// input with its zeros (naiveIm2col), with the weights in HWIO layout and in [KH, KW, n, InC]
// (the two layouts of a gradient's kernel), on the input-gradient geometries and on a transposed
// convolution with dilation 3 and a window wider than it.
func testSconvInputDilatedAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	gs := []ConvGeometry{{Batch: 2, InH: 4, InW: 5, InC: 19, KH: 4, KW: 5, OutH: 13, OutW: 15, InDilationH: 3, InDilationW: 3, PadTop: 2, PadLeft: 3}}
	for _, g := range inputGradGeometries() {
		gg, err := g.InputGradient(7)
		if err != nil {
			t.Fatal(err)
		}
		gs = append(gs, gg)
	}
	for _, g := range gs {
		for _, n := range []int{1, 6, 37} {
			x := toF32(randSlice(rng, g.InputSize()))
			col := naiveIm2col(g, fromF32(x))
			m, k := g.Pixels(), g.PatchSize()
			w := toF32(randSlice(rng, k*n)) // HWIO
			want, mag := refGemm(false, false, m, n, k, 1, col, k, fromF32(w), n, 0, make([]float64, m*n), n)
			hwoi := make([]float32, len(w))
			for s := 0; s < g.KH*g.KW; s++ {
				for c := 0; c < g.InC; c++ {
					for j := 0; j < n; j++ {
						hwoi[(s*n+j)*g.InC+c] = w[(s*g.InC+c)*n+j]
					}
				}
			}
			for _, layout := range []struct {
				name string
				w    []float32
				str  [4]int
			}{
				{"HWIO", w, [4]int{g.KW * g.InC * n, g.InC * n, n, 1}},
				{"HWOI", hwoi, [4]int{g.KW * n * g.InC, n * g.InC, 1, g.InC}},
			} {
				out := make([]float32, m*n)
				for i := range out {
					out[i] = float32(nan64())
				}
				if err := SconvInputDilated(g, n, x, layout.w, layout.str, out); err != nil {
					t.Fatal(err)
				}
				checkResult(t, fmt.Sprintf("%s %+v n=%d", layout.name, g, n), gemmCase{m: m, n: n, k: k}, fromF32(out), n, want, mag, 0x1p-24)
			}
		}
	}
}

// TestSconvInputGradientSameBitsAnyProcs: the phase products give identical bits on 1, 2, 3 and 5
// goroutines (blocks of rows cut by size, each summed by one goroutine); both shapes are large
// enough to be split.
func TestSconvInputGradientSameBitsAnyProcs(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	for _, g := range []ConvGeometry{
		{Batch: 32, InH: 16, InW: 16, InC: 64, KH: 3, KW: 3, OutH: 8, OutW: 8, StrideH: 2, StrideW: 2, PadTop: 1, PadLeft: 1},
		{Batch: 40, InH: 15, InW: 13, InC: 70, KH: 1, KW: 1, OutH: 8, OutW: 7, StrideH: 2, StrideW: 2},
	} {
		outC := 96
		dy := toF32(randSlice(rng, g.Pixels()*outC))
		w := toF32(randSlice(rng, g.PatchSize()*outC))
		var want []float32
		for _, procs := range detThreads {
			dx := make([]float32, g.InputSize())
			withProcs(procs, func() {
				if err := SconvInputGradient(g, outC, dy, w, dx); err != nil {
					t.Fatal(err)
				}
			})
			if want == nil {
				want = dx
				continue
			}
			if i := sameBits(dx, want); i >= 0 {
				t.Errorf("%+v, GOMAXPROCS %d: dx[%d] = %g, one goroutine gives %g", g, procs, i, dx[i], want[i])
			}
		}
	}
}
