package distill

import (
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// refFSP is Σ_pairs mean_{n,j,i} (G_s − G_t)², G[n, j, i] = (1/HW) Σ_p b[n, p, j]·a[n, p, i] for the
// pair (a, b) after pooling the larger map to the smaller's grid.
func refFSP(fs, ft []host) float64 {
	gram := func(a, b host) []float64 {
		a, b = refMatch(a, b)
		n, hw, ca, cb := a.dims[0], a.dims[1]*a.dims[2], a.dims[3], b.dims[3]
		g := make([]float64, n*cb*ca)
		for s := 0; s < n; s++ {
			for j := 0; j < cb; j++ {
				for i := 0; i < ca; i++ {
					sum := 0.0
					for p := 0; p < hw; p++ {
						sum += b.data[(s*hw+p)*cb+j] * a.data[(s*hw+p)*ca+i]
					}
					g[(s*cb+j)*ca+i] = sum / float64(hw)
				}
			}
		}
		return g
	}
	total := 0.0
	for l := 0; l+1 < len(fs); l++ {
		gs, gt := gram(fs[l], fs[l+1]), gram(ft[l], ft[l+1])
		sum := 0.0
		for k := range gs {
			d := gs[k] - gt[k]
			sum += d * d
		}
		total += sum / float64(len(gs))
	}
	return total
}

func fspFn(n int) func(xs []*graph.Node) *graph.Node {
	return func(xs []*graph.Node) *graph.Node { return FSPLoss(xs[:n], xs[n:]) }
}

func TestFSPLossReference(t *testing.T) {
	r := testRand()
	// The student's second map is larger than its first (pooled down); the teacher's grids differ.
	fs := []host{randHost(r, 2, 2, 2, 3), randHost(r, 2, 4, 4, 2), randHost(r, 2, 2, 2, 4)}
	ft := []host{randHost(r, 2, 4, 4, 3), randHost(r, 2, 2, 2, 2), randHost(r, 2, 1, 1, 4)}
	want := refFSP(fs, ft)
	assertClose(t, "FSPLoss f64", evalScalar(t, dtypes.Float64, fspFn(3), append(fs, ft...)...), want, 1e-12)
	assertClose(t, "FSPLoss f32", evalScalar(t, dtypes.Float32, fspFn(3), append(fs, ft...)...), want, 1e-5)
	if want < 1e-3 {
		t.Fatalf("reference loss %g too small to be informative", want)
	}
}

func TestFSPLossClosedForms(t *testing.T) {
	r := testRand()
	a, b := randHost(r, 2, 2, 2, 3), randHost(r, 2, 2, 2, 2)
	assertClose(t, "FSPLoss(f, f)", evalScalar(t, dtypes.Float64, fspFn(2), a, b, a, b), 0, 1e-14)
	// One position, one channel each: G = a·b, so the loss is mean_n (a_s·b_s − a_t·b_t)².
	one := func(vs ...float64) host { h := newHost(len(vs), 1, 1, 1); copy(h.data, vs); return h }
	as, bs, at, bt := one(1, 2), one(3, -1), one(2, 0), one(1, 5)
	want := ((3.0-2)*(3.0-2) + (-2.0-0)*(-2.0-0)) / 2
	assertClose(t, "FSPLoss 1x1", evalScalar(t, dtypes.Float64, fspFn(2), as, bs, at, bt), want, 1e-14)
}

func TestFSPLossGradient(t *testing.T) {
	r := testRand()
	checkGradient(t, "FSPLoss", fspFn(2), []host{randHost(r, 2, 4, 4, 2), randHost(r, 2, 2, 2, 3),
		randHost(r, 2, 2, 2, 2), randHost(r, 2, 2, 2, 3)}, 0, 1e-6)
}

func TestFSPCheck(t *testing.T) {
	s := FeatureShapes{Stages: shapesOfHosts(newHost(2, 4, 4, 3), newHost(2, 2, 2, 4))}
	if err := (FSP{}).Check(context.New(), s, s); err != nil {
		t.Fatal(err)
	}
	other := FeatureShapes{Stages: shapesOfHosts(newHost(2, 4, 4, 3), newHost(2, 2, 2, 5))}
	if err := (FSP{}).Check(context.New(), s, other); err == nil {
		t.Error("accepted stages with different channel counts")
	}
	if err := (FSP{}).Check(context.New(), s, FeatureShapes{Stages: s.Stages[:1]}); err == nil {
		t.Error("accepted a teacher with one stage map")
	}
}
