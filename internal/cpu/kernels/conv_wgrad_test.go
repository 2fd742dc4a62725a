package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestWeightGradInPlaceSplits checks the in-place weight gradient (sconvWeightGradInPlace, the
// avx512 path) against the float64 im2col product on layers that split it in every way: two
// 32-channel slabs, groups of window positions, runs of 14-row tiles with rows left below the last
// one (by 4-row tiles, the last moved up), slabs and runs of rows at once; stride 2 with padding,
// 1×1 windows; alpha and beta ≠ 0 with a row stride beyond n; and checks that GOMAXPROCS 1, 2, 3
// and 5 give the same bits.
func TestWeightGradInPlaceSplits(t *testing.T) {
	if !hasSegKernel || DetectedISA() < ISAAVX512 {
		t.Skip("no AVX-512 in-place weight gradient on this processor or build")
	}
	prev, err := SetISA(ISAAVX512)
	if err != nil {
		t.Fatal(err)
	}
	defer SetISA(prev)
	rng := rand.New(rand.NewPCG(81, 82))
	for _, c := range []struct {
		g ConvGeometry
		n int
	}{
		{ConvGeometry{Batch: 16, InH: 9, InW: 11, InC: 64, KH: 3, KW: 3, OutH: 5, OutW: 6, StrideH: 2, StrideW: 2, PadTop: 1, PadLeft: 1}, 47},
		{ConvGeometry{Batch: 16, InH: 16, InW: 16, InC: 32, KH: 1, KW: 1, OutH: 16, OutW: 16}, 61},
		{ConvGeometry{Batch: 24, InH: 12, InW: 12, InC: 32, KH: 3, KW: 3, OutH: 12, OutW: 12, PadTop: 1, PadLeft: 1}, 14},
		{ConvGeometry{Batch: 16, InH: 16, InW: 16, InC: 64, KH: 1, KW: 1, OutH: 16, OutW: 16}, 61},
	} {
		g, n := c.g, c.n
		if !wgradInPlace(g.norm(), n) {
			t.Fatalf("%+v, n=%d: not computed in place", g, n)
		}
		x := toF32(randSlice(rng, g.InputSize()))
		dy := toF32(randSlice(rng, g.Pixels()*n))
		col := naiveIm2col(g, fromF32(x))
		m, k := g.Pixels(), g.PatchSize()
		ldw := n + 3
		dw0 := toF32(randSlice(rng, k*ldw))
		tc := gemmCase{m: k, n: n, k: m, alpha: -1.5, beta: 0.5, padC: ldw - n}
		want, mag := refGemm(true, false, k, n, m, tc.alpha, col, k, fromF32(dy), n, tc.beta, fromF32(dw0), ldw)
		var first []float32
		for _, procs := range detThreads {
			dw := maskPad32(append([]float32(nil), dw0...), n, ldw)
			withProcs(procs, func() {
				if err := SconvIm2colT(g, n, float32(tc.alpha), x, dy, n, float32(tc.beta), dw, ldw); err != nil {
					t.Fatal(err)
				}
			})
			label := fmt.Sprintf("%+v n=%d GOMAXPROCS %d", g, n, procs)
			// Every run against the reference: a tile that a split leaves out would otherwise
			// keep the previous run's sums in the pooled accumulator, the same bits.
			checkResult(t, label, tc, fromF32(dw), ldw, want, mag, 0x1p-24)
			if first == nil {
				first = dw
				continue
			}
			if i := sameBits(dw, first); i >= 0 {
				t.Errorf("%s: dw[%d] = %g, one goroutine gives %g", label, i, dw[i], first[i])
			}
		}
	}
}
