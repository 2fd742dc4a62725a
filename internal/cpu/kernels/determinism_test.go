package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// detThreads are the goroutine counts every parallel kernel must give the same bits for.
var detThreads = []int{1, 2, 3, 5}

// sameBits reports the first index at which got and want differ bit for bit (-1 if none).
func sameBits[T float](got, want []T) int {
	for i := range want {
		if bitsOf(got[i]) != bitsOf(want[i]) {
			return i
		}
	}
	return -1
}

func bitsOf[T float](v T) uint64 {
	switch x := any(v).(type) {
	case float32:
		return uint64(math.Float32bits(x))
	default:
		return math.Float64bits(any(v).(float64))
	}
}

// withProcs runs fn with runtime.GOMAXPROCS(n), restoring the previous value.
func withProcs(n int, fn func()) {
	old := runtime.GOMAXPROCS(n)
	defer runtime.GOMAXPROCS(old)
	fn()
}

// detGemmCases cover every driver: serial, blocks of C on several goroutines (packed and read in
// place, several column blocks), and sums split along k (both A layouts, beta 0 and ≠ 0).
var detGemmCases = []gemmCase{
	{m: 97, n: 131, k: 300, alpha: 1, beta: 0},
	{transA: true, transB: true, m: 130, n: 70, k: 257, alpha: -0.5, beta: 1.5, padA: 3, padB: 1, padC: 2},
	{m: 300, n: 20, k: 150, alpha: 1, beta: 0.25},                                    // narrow: A read in place
	{m: 64, n: 1100, k: 80, alpha: 2, beta: 0},                                       // more than one column block
	{transB: true, m: 45, n: 2090, k: 70, alpha: 0.5, beta: -1.25, padB: 3, padC: 1}, // split by columns (2, 3 goroutines)
	{transA: true, m: 40, n: 33, k: 2100, alpha: 1, beta: 0.5, padA: 3, padC: 2},     // split along k
	{transB: true, m: 21, n: 50, k: 7000, alpha: -0.5, beta: 0, padB: 1},
	{m: 3, n: 5, k: 1 << 16, alpha: 1, beta: 1},
}

// TestGemmSameBitsAnyThreads: every product gives identical bits on 1, 2, 3 and 5 goroutines, in
// float32 and float64, with the micro-kernels of every path this processor supports.
func TestGemmSameBitsAnyThreads(t *testing.T) {
	rng := rand.New(rand.NewPCG(71, 72))
	for _, tc := range detGemmCases {
		a, lda, b, ldb, c, ldc := tc.operands(rng)
		a32, b32 := toF32(a), toF32(b)
		for _, kern := range append(testKernelsF32(), smallBlocks(cur().s)) {
			var want []float32
			for _, threads := range detThreads {
				got := toF32(c)
				gemm(kern, aSource[float32]{trans: tc.transA, a: a32, lda: lda}, tc.transB, tc.m, tc.n, tc.k, float32(tc.alpha), b32, ldb, float32(tc.beta), got, ldc, threads)
				if want == nil {
					want = got
					continue
				}
				if i := sameBits(got, want); i >= 0 {
					t.Errorf("%s %v: %d goroutines: C[%d] = %g, one goroutine gives %g", kern.name, tc, threads, i, got[i], want[i])
				}
			}
		}
		for _, kern := range testKernelsF64() {
			var want []float64
			for _, threads := range detThreads {
				got := append([]float64(nil), c...)
				gemm(kern, aSource[float64]{trans: tc.transA, a: a, lda: lda}, tc.transB, tc.m, tc.n, tc.k, tc.alpha, b, ldb, tc.beta, got, ldc, threads)
				if want == nil {
					want = got
					continue
				}
				if i := sameBits(got, want); i >= 0 {
					t.Errorf("%s %v: %d goroutines: C[%d] = %g, one goroutine gives %g", kern.name, tc, threads, i, got[i], want[i])
				}
			}
		}
	}
}

// TestSplitKPartsDependOnSizeOnly: the split along k is chosen, and cut, from the sizes alone.
func TestSplitKPartsDependOnSizeOnly(t *testing.T) {
	for _, tc := range []struct {
		m, n, k int
		split   bool
		parts   int
	}{
		{40, 33, 2100, true, 4},
		{3, 5, 1 << 16, true, 12},
		{1024, 1024, 4096, true, 4}, // the parts' buffers capped: 4·2^20 elements
		{8, 8, 1023, false, 0},      // too short
		{600, 600, 1100, false, 0},  // k < 2·max(m, n)
		{2, 2, 1100, false, 0},      // too little work to share
	} {
		if got := splitsK(tc.m, tc.n, tc.k); got != tc.split {
			t.Errorf("splitsK(%d, %d, %d) = %v, want %v", tc.m, tc.n, tc.k, got, tc.split)
		}
		if !tc.split {
			continue
		}
		if got := splitKParts(tc.m, tc.n, tc.k); got != tc.parts {
			t.Errorf("splitKParts(%d, %d, %d) = %d, want %d", tc.m, tc.n, tc.k, got, tc.parts)
		}
	}
}

// TestBatchedSameBitsAnyThreads: strided batches, small (spread over the batch) and large (each
// product split), give identical bits on any number of goroutines.
func TestBatchedSameBitsAnyThreads(t *testing.T) {
	rng := rand.New(rand.NewPCG(73, 74))
	for _, tc := range []struct{ batch, m, n, k int }{{12, 9, 17, 33}, {3, 40, 30, 3000}, {2, 130, 90, 200}, {2, 200, 150, 200}} {
		a := toF32(randSlice(rng, tc.batch*tc.m*tc.k))
		b := toF32(randSlice(rng, tc.batch*tc.k*tc.n))
		c0 := toF32(randSlice(rng, tc.batch*tc.m*tc.n))
		var want []float32
		for _, threads := range detThreads {
			got := append([]float32(nil), c0...)
			gemmBatched(cur().s, "test", false, true, tc.batch, tc.m, tc.n, tc.k, 1.5, a, tc.k, tc.m*tc.k, b, tc.k, tc.k*tc.n, 0.5, got, tc.n, tc.m*tc.n, threads)
			if want == nil {
				want = got
				continue
			}
			if i := sameBits(got, want); i >= 0 {
				t.Errorf("batch %+v, %d goroutines: C[%d] = %g, one goroutine gives %g", tc, threads, i, got[i], want[i])
			}
		}
	}
}

// TestConvSameBitsAnyProcs: the im2col convolution, the image-by-image one (SconvFewChannels) and
// the weight gradient (split by columns of dwᵀ) give identical bits for GOMAXPROCS 1, 2, 3
// and 5.
func TestConvSameBitsAnyProcs(t *testing.T) {
	rng := rand.New(rand.NewPCG(75, 76))
	for _, g := range []ConvGeometry{
		{Batch: 8, InH: 16, InW: 16, InC: 16, KH: 3, KW: 3, OutH: 16, OutW: 16, PadTop: 1, PadLeft: 1},
		{Batch: 4, InH: 15, InW: 15, InC: 5, KH: 3, KW: 3, OutH: 7, OutW: 7, StrideH: 2, StrideW: 2},
		{Batch: 16, InH: 17, InW: 16, InC: 32, KH: 3, KW: 3, OutH: 9, OutW: 8, StrideH: 2, StrideW: 2, PadTop: 1, PadLeft: 1},
	} {
		n := 24
		if g.InC == 32 {
			n = 64 // the forward's in-place tiles too
		}
		x := toF32(randSlice(rng, g.InputSize()))
		w := toF32(randSlice(rng, g.PatchSize()*n))
		dy := toF32(randSlice(rng, g.Pixels()*n))
		var wantOut, wantDW, wantRows []float32
		for _, procs := range detThreads {
			out := make([]float32, g.Pixels()*n)
			rows := make([]float32, g.Pixels()*n) // SconvFewChannels
			dw := make([]float32, g.PatchSize()*n)
			withProcs(procs, func() {
				if err := SconvIm2col(g, n, 1, x, w, n, 0, out, n); err != nil {
					t.Fatal(err)
				}
				if err := SconvIm2colT(g, n, 1, x, dy, n, 0, dw, n); err != nil {
					t.Fatal(err)
				}
				if err := SconvFewChannels(g, n, 1, x, w, n, 0, rows, n); err != nil {
					t.Fatal(err)
				}
			})
			if wantOut == nil {
				wantOut, wantDW, wantRows = out, dw, rows
				continue
			}
			if i := sameBits(rows, wantRows); i >= 0 {
				t.Errorf("%+v, GOMAXPROCS %d: SconvFewChannels out[%d] = %g, one goroutine gives %g", g, procs, i, rows[i], wantRows[i])
			}
			if i := sameBits(out, wantOut); i >= 0 {
				t.Errorf("%+v, GOMAXPROCS %d: out[%d] = %g, one goroutine gives %g", g, procs, i, out[i], wantOut[i])
			}
			if i := sameBits(dw, wantDW); i >= 0 {
				t.Errorf("%+v, GOMAXPROCS %d: dw[%d] = %g, one goroutine gives %g", g, procs, i, dw[i], wantDW[i])
			}
		}
	}
}

// TestWinogradSameBitsAnyThreads: the Winograd convolution and weight gradient (F(3×3, 2×2) and
// F(3×3, 4×4)) give identical bits on 1, 2, 3 and 5 goroutines (with the default blocking, which
// must not depend on them).
func TestWinogradSameBitsAnyThreads(t *testing.T) {
	rng := rand.New(rand.NewPCG(77, 78))
	for i, tc := range []winoCase{{48, 16, 16, 8, 12, 1, 1}, {4, 16, 16, 16, 24, 1, 1}, {2, 9, 11, 19, 37, 1, 1}, {1, 5, 5, 3, 2, 1, 1}} {
		g := tc.geometry()
		if _, parts := winoGradSplit(tc.b*((g.OutH+3)/4)*((g.OutW+3)/4), 36, 16, 16, 0, false); i == 0 && parts < 3 {
			t.Fatalf("%+v: %d F(4×4) parts; the test wants several", tc, parts)
		}
		x := toF32(randSlice(rng, g.InputSize()))
		w := toF32(randSlice(rng, 9*tc.c*tc.n))
		dy := toF32(randSlice(rng, g.Pixels()*tc.n))
		for _, kern := range testWinoKernels() {
			var wantOut, wantDW, wantDW4 []float32
			for _, threads := range detThreads {
				out := make([]float32, g.Pixels()*tc.n)
				dw := make([]float32, 9*tc.c*tc.n)
				dw4 := make([]float32, 9*tc.c*tc.n)
				sconvWinograd(kern, winoF2, g, tc.n, x, w, HWIOStrides(tc.c, tc.n), out, threads, 0)
				sconvWinogradFilter(kern, winoGradF2, g, tc.n, x, dy, dw, threads, 0)
				sconvWinogradFilter(kern, winoGradF4, g, tc.n, x, dy, dw4, threads, 0)
				if wantOut == nil {
					wantOut, wantDW, wantDW4 = out, dw, dw4
					continue
				}
				label := fmt.Sprintf("%s %+v, %d goroutines", kern.name, tc, threads)
				if i := sameBits(out, wantOut); i >= 0 {
					t.Errorf("%s: out[%d] = %g, one goroutine gives %g", label, i, out[i], wantOut[i])
				}
				if i := sameBits(dw, wantDW); i >= 0 {
					t.Errorf("%s: dw[%d] = %g, one goroutine gives %g", label, i, dw[i], wantDW[i])
				}
				if i := sameBits(dw4, wantDW4); i >= 0 {
					t.Errorf("%s: F(3×3, 4×4) dw[%d] = %g, one goroutine gives %g", label, i, dw4[i], wantDW4[i])
				}
			}
		}
	}
}
