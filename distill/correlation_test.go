package distill

import (
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
)

func refCC(es, et host) float64 {
	rs, rt := hostRows(es), hostRows(et)
	b := len(rs)
	s := 0.0
	for i := 0; i < b-1; i++ {
		for d := range rs[i] {
			a := rs[i][d] - rt[i][d]
			c := rs[i+1][d] - rt[i+1][d]
			if a < 0 {
				a = -a
			}
			if c < 0 {
				c = -c
			}
			s += a * c
		}
	}
	return s / float64(b-1)
}

func ccFn(xs []*graph.Node) *graph.Node { return CCLoss(xs[0], xs[1]) }

func TestCCLossReference(t *testing.T) {
	r := testRand()
	es, et := randHost(r, 5, 4), randHost(r, 5, 4)
	want := refCC(es, et)
	assertClose(t, "CCLoss f64", evalScalar(t, dtypes.Float64, ccFn, es, et), want, 1e-13)
	assertClose(t, "CCLoss f32", evalScalar(t, dtypes.Float32, ccFn, es, et), want, 1e-5)
	if want < 1e-2 {
		t.Fatalf("reference loss %g too small to be informative", want)
	}
}

func TestCCLossClosedForms(t *testing.T) {
	r := testRand()
	e := randHost(r, 4, 3)
	assertClose(t, "CCLoss(e, e)", evalScalar(t, dtypes.Float64, ccFn, e, e), 0, 0)
	// B = 2, δ_0 = (1, 2), δ_1 = (3, 1): loss = 1·3 + 2·1 = 5.
	s := host{dims: []int{2, 2}, data: []float64{1, -2, 3, 1}}
	z := newHost(2, 2)
	assertClose(t, "CCLoss closed form", evalScalar(t, dtypes.Float64, ccFn, s, z), 5, 1e-15)
}

func TestCCLossGradient(t *testing.T) {
	r := testRand()
	checkGradient(t, "CCLoss", ccFn, []host{randHost(r, 4, 3), randHost(r, 4, 3)}, 0, 1e-6)
}
