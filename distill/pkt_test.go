package distill

import (
	"math"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
)

// refPKT is mean_{ij} Q_t·log((Q_t+ε)/(Q_s+ε)) with Q the row-normalised (cos+1)/2.
func refPKT(fs, ft host) float64 {
	const eps = 1e-7
	q := func(x host) [][]float64 {
		r := hostRows(x)
		n := make([][]float64, len(r))
		for i, v := range r {
			norm := math.Sqrt(vdot(v, v)) + eps
			n[i] = make([]float64, len(v))
			for k := range v {
				n[i][k] = v[k] / norm
			}
		}
		out := make([][]float64, len(r))
		for i := range n {
			out[i] = make([]float64, len(r))
			sum := 0.0
			for j := range n {
				out[i][j] = (vdot(n[i], n[j]) + 1) / 2
				sum += out[i][j]
			}
			for j := range out[i] {
				out[i][j] /= sum
			}
		}
		return out
	}
	qs, qt := q(fs), q(ft)
	s := 0.0
	for i := range qs {
		for j := range qs {
			s += qt[i][j] * math.Log((qt[i][j]+eps)/(qs[i][j]+eps))
		}
	}
	return s / float64(len(qs)*len(qs))
}

func pktFn(xs []*graph.Node) *graph.Node { return PKTLoss(xs[0], xs[1]) }

func TestPKTLossReference(t *testing.T) {
	r := testRand()
	fs, ft := randHost(r, 5, 4), randHost(r, 5, 7)
	want := refPKT(fs, ft)
	assertClose(t, "PKTLoss f64", evalScalar(t, dtypes.Float64, pktFn, fs, ft), want, 1e-12)
	assertClose(t, "PKTLoss f32", evalScalar(t, dtypes.Float32, pktFn, fs, ft), want, 1e-5)
	if want < 1e-4 {
		t.Fatalf("reference loss %g too small to be informative", want)
	}
}

func TestPKTLossClosedForms(t *testing.T) {
	r := testRand()
	f := randHost(r, 4, 3)
	assertClose(t, "PKTLoss(f, f)", evalScalar(t, dtypes.Float64, pktFn, f, f), 0, 1e-15)
	// A zero row normalises to 0 (no NaN): its probabilities are uniform, as in the reference.
	z := f.clone()
	for k := 0; k < 3; k++ {
		z.data[k] = 0
	}
	assertClose(t, "PKTLoss with a zero row", evalScalar(t, dtypes.Float64, pktFn, z, f), refPKT(z, f), 1e-12)
}

func TestPKTLossBatchPermutation(t *testing.T) {
	r := testRand()
	fs, ft := randHost(r, 4, 3), randHost(r, 4, 5)
	perm := []int{1, 3, 2, 0}
	a := evalScalar(t, dtypes.Float64, pktFn, fs, ft)
	b := evalScalar(t, dtypes.Float64, pktFn, fs.permuteBatch(perm), ft.permuteBatch(perm))
	assertClose(t, "permuted PKTLoss", b, a, 1e-13)
}

func TestPKTLossGradient(t *testing.T) {
	r := testRand()
	checkGradient(t, "PKTLoss", pktFn, []host{randHost(r, 4, 3), randHost(r, 4, 5)}, 0, 1e-6)
}
