package kernels

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestPackVectorLoops checks that packA and packB give the same panels with the AVX-512 packing
// loops as with the scalar ones (the avx2 path), bit for bit, on both layouts of each operand,
// full and partial tiles, step counts below, at and around multiples of 16, row strides beyond
// the row length and alpha ≠ 1.
func TestPackVectorLoops(t *testing.T) {
	if DetectedISA() < ISAAVX512 {
		t.Skip("no AVX-512 on this processor")
	}
	rng := rand.New(rand.NewPCG(7, 8))
	fill := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = rng.Float32()*2 - 1
		}
		return x
	}
	scalar := func(f func()) {
		prev, err := SetISA(ISAAVX2)
		if err != nil {
			t.Fatal(err)
		}
		defer SetISA(prev)
		f()
	}
	for _, kb := range []int{1, 15, 16, 17, 31, 48, 100, 256} {
		for _, tile := range []int{6, 14, 16, 32} {
			for _, trans := range []bool{false, true} {
				for _, alpha := range []float32{1, 0.5} {
					rows := 3*tile + 1 + rng.IntN(tile) // full tiles and a partial one
					i0, p0, pad := rng.IntN(3), rng.IntN(5), rng.IntN(3)
					// op(X) is rows×kb from (i0, p0); stored rows×steps, or steps×rows when trans.
					ld := p0 + kb + pad
					n := (i0 + rows) * ld
					if trans {
						ld = i0 + rows + pad
						n = (p0 + kb) * ld
					}
					x := fill(n)
					panels := (rows + tile - 1) / tile * tile * kb
					fast, slow := make([]float32, panels), make([]float32, panels)
					if alpha == 1 {
						packA(fast, trans, x, ld, i0, rows, p0, kb, tile)
						scalar(func() { packA(slow, trans, x, ld, i0, rows, p0, kb, tile) })
						if !slices.Equal(fast, slow) {
							t.Errorf("packA trans=%v rows=%d kb=%d mr=%d: vector and scalar panels differ", trans, rows, kb, tile)
						}
					}
					// packB: op(B) is kb×rows (steps × columns); stored kb×cols, or cols×kb when trans.
					ldb := i0 + rows + pad
					nb := (p0 + kb) * ldb
					if trans {
						ldb = p0 + kb + pad
						nb = (i0 + rows) * ldb
					}
					y := fill(nb)
					clear(fast)
					clear(slow)
					packB(fast, trans, y, ldb, p0, kb, i0, rows, alpha, tile)
					scalar(func() { packB(slow, trans, y, ldb, p0, kb, i0, rows, alpha, tile) })
					if !slices.Equal(fast, slow) {
						t.Errorf("packB trans=%v cols=%d kb=%d nr=%d alpha=%v: vector and scalar panels differ", trans, rows, kb, tile, alpha)
					}
				}
			}
		}
	}
}
