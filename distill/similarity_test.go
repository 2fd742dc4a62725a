package distill

import (
	"math"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
)

// refSP is ‖G_t − G_s‖²_F / B² with G = row-normalised F·Fᵀ.
func refSP(fs, ft host) float64 {
	gram := func(x host) [][]float64 {
		r := hostRows(x)
		g := make([][]float64, len(r))
		for i := range r {
			g[i] = make([]float64, len(r))
			for j := range r {
				g[i][j] = vdot(r[i], r[j])
			}
			g[i] = refNormalize(g[i])
		}
		return g
	}
	gs, gt := gram(fs), gram(ft)
	b := len(gs)
	s := 0.0
	for i := range gs {
		for j := range gs {
			d := gt[i][j] - gs[i][j]
			s += d * d
		}
	}
	return s / float64(b*b)
}

func spFn(xs []*graph.Node) *graph.Node { return SPLoss(xs[0], xs[1]) }

func TestSPLossReference(t *testing.T) {
	r := testRand()
	fs, ft := randHost(r, 5, 2, 2, 3), randHost(r, 5, 4, 4, 2)
	want := refSP(fs, ft)
	assertClose(t, "SPLoss f64", evalScalar(t, dtypes.Float64, spFn, fs, ft), want, 1e-12)
	assertClose(t, "SPLoss f32", evalScalar(t, dtypes.Float32, spFn, fs, ft), want, 1e-5)
	if want < 1e-3 {
		t.Fatalf("reference loss %g too small to be informative", want)
	}
}

func TestSPLossClosedForm(t *testing.T) {
	r := testRand()
	f := randHost(r, 4, 2, 2, 3)
	assertClose(t, "SPLoss(f, f)", evalScalar(t, dtypes.Float64, spFn, f, f), 0, 1e-15)
	// Orthogonal student samples give G_s = I. Parallel teacher samples (1,1) and (2,2) give
	// F·Fᵀ = [[2,4],[4,8]], whose rows both normalise to (1,2)/√5; so
	// ‖G_t − G_s‖² = (1/√5−1)² + 4/5 + 1/5 + (2/√5−1)² = 4 − 6/√5.
	s := host{dims: []int{2, 2}, data: []float64{1, 0, 0, 1}}
	tt := host{dims: []int{2, 2}, data: []float64{1, 1, 2, 2}}
	want := (4 - 6/math.Sqrt(5)) / 4
	assertClose(t, "SPLoss closed form", evalScalar(t, dtypes.Float64, spFn, s, tt), want, 1e-14)
}

func TestSPLossBatchPermutation(t *testing.T) {
	r := testRand()
	fs, ft := randHost(r, 4, 6), randHost(r, 4, 3)
	perm := []int{3, 1, 0, 2}
	a := evalScalar(t, dtypes.Float64, spFn, fs, ft)
	b := evalScalar(t, dtypes.Float64, spFn, fs.permuteBatch(perm), ft.permuteBatch(perm))
	assertClose(t, "permuted SPLoss", b, a, 1e-13)
}

func TestSPLossGradient(t *testing.T) {
	r := testRand()
	checkGradient(t, "SPLoss", spFn, []host{randHost(r, 3, 2, 2, 2), randHost(r, 3, 5)}, 0, 1e-6)
}
