package distill

import (
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/ifa-toolkit/ifa/internal/testutil"
)

// refAT is Σ_layers mean (Q̂_s − Q̂_t)², Q̂ = normalize(mean_c f²), from the formula.
func refAT(fs, ft []host) float64 {
	total := 0.0
	for l := range fs {
		s, t := refMatch(fs[l], ft[l])
		b, h, w := s.dims[0], s.dims[1], s.dims[2]
		q := func(x host, n int) []float64 {
			v := make([]float64, h*w)
			c := x.dims[3]
			for y := 0; y < h; y++ {
				for z := 0; z < w; z++ {
					for ch := 0; ch < c; ch++ {
						a := x.at4(n, y, z, ch)
						v[y*w+z] += a * a / float64(c)
					}
				}
			}
			return refNormalize(v)
		}
		sum := 0.0
		for n := 0; n < b; n++ {
			qs, qt := q(s, n), q(t, n)
			for i := range qs {
				d := qs[i] - qt[i]
				sum += d * d
			}
		}
		total += sum / float64(b*h*w)
	}
	return total
}

func atFn(n int) func(xs []*graph.Node) *graph.Node {
	return func(xs []*graph.Node) *graph.Node { return ATLoss(xs[:n], xs[n:]) }
}

func TestATLossReference(t *testing.T) {
	r := testRand()
	// Two layers: student larger (pooled down), then teacher larger; channels differ.
	fs := []host{randHost(r, 3, 4, 4, 2), randHost(r, 3, 2, 2, 3)}
	ft := []host{randHost(r, 3, 2, 2, 5), randHost(r, 3, 4, 4, 1)}
	want := refAT(fs, ft)
	for _, dt := range []dtypes.DType{dtypes.Float64, dtypes.Float32} {
		got := evalScalar(t, dt, atFn(2), append(fs, ft...)...)
		tol := 1e-12
		if dt == dtypes.Float32 {
			tol = 1e-5
		}
		assertClose(t, "ATLoss "+dt.String(), got, want, tol)
	}
	if want < 1e-3 {
		t.Fatalf("reference loss %g too small to be informative", want)
	}
}

func TestATLossIdenticalIsZero(t *testing.T) {
	r := testRand()
	f := randHost(r, 2, 4, 4, 3)
	got := evalScalar(t, dtypes.Float64, atFn(1), f, f)
	assertClose(t, "ATLoss(f, f)", got, 0, 1e-15)
	// Attention maps ignore a positive rescaling of the features.
	g := f.clone()
	for i := range g.data {
		g.data[i] *= 3
	}
	assertClose(t, "ATLoss(f, 3f)", evalScalar(t, dtypes.Float64, atFn(1), f, g), 0, 1e-14)
}

func TestATLossBatchPermutation(t *testing.T) {
	r := testRand()
	fs, ft := randHost(r, 4, 2, 2, 3), randHost(r, 4, 2, 2, 2)
	perm := []int{2, 0, 3, 1}
	a := evalScalar(t, dtypes.Float64, atFn(1), fs, ft)
	b := evalScalar(t, dtypes.Float64, atFn(1), fs.permuteBatch(perm), ft.permuteBatch(perm))
	assertClose(t, "permuted ATLoss", b, a, 1e-13)
}

func TestATLossGradient(t *testing.T) {
	r := testRand()
	fs, ft := randHost(r, 2, 4, 4, 2), randHost(r, 2, 2, 2, 3)
	checkGradient(t, "ATLoss", atFn(1), []host{fs, ft}, 0, 1e-6)
}

func TestAdaptiveAvgPool2D(t *testing.T) {
	r := testRand()
	x := randHost(r, 2, 5, 7, 3)
	for _, o := range [][2]int{{2, 3}, {5, 7}, {1, 1}, {3, 2}} {
		want := refAdaptivePool(x, o[0], o[1])
		e := graph.MustNewExec(testutil.Backend(), func(n *graph.Node) *graph.Node { return AdaptiveAvgPool2D(n, o[0], o[1]) })
		got := floats(e.MustExec(x.tensor(dtypes.Float64))[0])
		if len(got) != len(want.data) {
			t.Fatalf("pool to %v: %d values, want %d", o, len(got), len(want.data))
		}
		for i := range got {
			if !closeTo(got[i], want.data[i], 1e-13) {
				t.Fatalf("pool to %v: value %d = %g, want %g", o, i, got[i], want.data[i])
			}
		}
	}
}
