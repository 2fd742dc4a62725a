package cpu

import (
	"math"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
)

// TestDotSmall32 checks dotSmall32 against a float64 product written from the definition, for
// every transposition, odd sizes around the row blocks (3, 4) and the 8-lane column steps, and
// row strides larger than the matrices (C's padding columns must stay untouched).
func TestDotSmall32(t *testing.T) {
	rng := newRng(92)
	for _, transA := range []bool{false, true} {
		for _, transB := range []bool{false, true} {
			for _, m := range []int{1, 2, 3, 4, 5, 7, 17} {
				for _, n := range []int{1, 5, 8, 9, 16, 17, 24} {
					for _, k := range []int{1, 3, 16, 17} {
						rowsA, colsA := m, k
						if transA {
							rowsA, colsA = k, m
						}
						rowsB, colsB := k, n
						if transB {
							rowsB, colsB = n, k
						}
						lda, ldb, ldc := colsA+2, colsB+1, n+3
						a := make([]float32, rowsA*lda)
						b := make([]float32, rowsB*ldb)
						c := make([]float32, m*ldc)
						for i := range a {
							a[i] = float32(rng.NormFloat64())
						}
						for i := range b {
							b[i] = float32(rng.NormFloat64())
						}
						for i := range c {
							c[i] = 7 // padding sentinel
						}
						pb := make([]float32, k*((n+7)/8*8))
						dotSmall32(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, pb)
						for i := 0; i < m; i++ {
							for j := 0; j < ldc; j++ {
								got := float64(c[i*ldc+j])
								if j >= n {
									if got != 7 {
										t.Fatalf("tA=%v tB=%v %dx%dx%d: padding C[%d,%d] written: %g", transA, transB, m, n, k, i, j, got)
									}
									continue
								}
								var want, mag float64
								for p := 0; p < k; p++ {
									var av, bv float32
									if transA {
										av = a[p*lda+i]
									} else {
										av = a[i*lda+p]
									}
									if transB {
										bv = b[j*ldb+p]
									} else {
										bv = b[p*ldb+j]
									}
									want += float64(av) * float64(bv)
									mag += math.Abs(float64(av) * float64(bv))
								}
								if math.Abs(got-want) > 1e-6*mag+1e-30 {
									t.Fatalf("tA=%v tB=%v %dx%dx%d: C[%d,%d] = %g, want %g", transA, transB, m, n, k, i, j, got, want)
								}
							}
						}
					}
				}
			}
		}
	}
}

// TestAttentionDots checks the batched products of multi-head attention (scores q·kᵀ, the
// probabilities times the values, and their gradients, which read operands transposed) on the cpu
// backend against the same graph in float64, on odd head sizes.
func TestAttentionDots(t *testing.T) {
	rng := newRng(93)
	q := randTensor(rng, dtypes.Float32, 3, 2, 17, 5)
	k := randTensor(rng, dtypes.Float32, 3, 2, 13, 5)
	v := randTensor(rng, dtypes.Float32, 3, 2, 13, 9)
	fn := func(xs []*graph.Node) []*graph.Node {
		q, k, v := xs[0], xs[1], xs[2]
		scores := graph.DotGeneral(q, []int{3}, []int{0, 1}, k, []int{3}, []int{0, 1})
		out := graph.DotGeneral(scores, []int{3}, []int{0, 1}, v, []int{2}, []int{0, 1})
		loss := graph.ReduceAllSum(graph.Mul(out, out))
		return append([]*graph.Node{scores, out}, graph.Gradient(loss, q, k, v)...)
	}
	got, _ := runGraph(t, testCPU(), fn, q, k, v)
	want, _ := runGraph(t, testCPU(), fn, toF64Tensor(t, q), toF64Tensor(t, k), toF64Tensor(t, v))
	for i := range got {
		assertClose(t, got[i], want[i], 2e-5, "output %d", i)
	}
}
