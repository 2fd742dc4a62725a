package distill

import (
	"math"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/ifa-toolkit/ifa/internal/testutil"
)

func refSmoothL1(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		d := math.Abs(a[i] - b[i])
		if d < 1 {
			s += 0.5 * d * d
		} else {
			s += d - 0.5
		}
	}
	return s / float64(len(a))
}

// refRKDPotentials returns ψ_D (B² entries) and ψ_A (B³ entries) from direct differences.
func refRKDPotentials(x host) ([]float64, []float64) {
	r := hostRows(x)
	b := len(r)
	diff := func(i, j int) []float64 {
		d := make([]float64, len(r[i]))
		for k := range d {
			d[k] = r[j][k] - r[i][k]
		}
		return d
	}
	dist := make([]float64, b*b)
	sum, cnt := 0.0, 0
	for i := 0; i < b; i++ {
		for j := 0; j < b; j++ {
			if i == j {
				continue
			}
			d := diff(i, j)
			dist[i*b+j] = math.Sqrt(math.Max(vdot(d, d), 1e-12))
			sum += dist[i*b+j]
			cnt++
		}
	}
	for i := range dist {
		dist[i] /= sum / float64(cnt)
	}
	ang := make([]float64, b*b*b)
	for i := 0; i < b; i++ {
		for j := 0; j < b; j++ {
			for k := 0; k < b; k++ {
				ang[(i*b+j)*b+k] = vdot(refNormalize(diff(i, j)), refNormalize(diff(i, k)))
			}
		}
	}
	return dist, ang
}

func refRKD(fs, ft host, wd, wa float64) float64 {
	ds, as := refRKDPotentials(fs)
	dt, at := refRKDPotentials(ft)
	return wd*refSmoothL1(ds, dt) + wa*refSmoothL1(as, at)
}

func rkdFn(wd, wa float64) func(xs []*graph.Node) *graph.Node {
	return func(xs []*graph.Node) *graph.Node { return RKDLoss(xs[0], xs[1], wd, wa) }
}

func TestRKDLossReference(t *testing.T) {
	r := testRand()
	fs, ft := randHost(r, 5, 4), randHost(r, 5, 6)
	// Scale the teacher so some distance differences exceed 1 (the linear branch of smooth L1).
	for i := range ft.data {
		ft.data[i] *= 1 + float64(i%5)
	}
	for _, w := range [][2]float64{{25, 50}, {1, 0}, {0, 1}} {
		want := refRKD(fs, ft, w[0], w[1])
		assertClose(t, "RKDLoss f64", evalScalar(t, dtypes.Float64, rkdFn(w[0], w[1]), fs, ft), want, 1e-11)
		assertClose(t, "RKDLoss f32", evalScalar(t, dtypes.Float32, rkdFn(w[0], w[1]), fs, ft), want, 1e-4)
		if want < 1e-3 {
			t.Fatalf("reference loss %g too small to be informative", want)
		}
	}
}

func TestRKDLossClosedForms(t *testing.T) {
	r := testRand()
	f := randHost(r, 4, 3)
	assertClose(t, "RKDLoss(f, f)", evalScalar(t, dtypes.Float64, rkdFn(25, 50), f, f), 0, 1e-12)
	// Both potentials are invariant to scaling, translation and rotation of the embedding.
	g := newHost(4, 3)
	for i := 0; i < 4; i++ {
		x, y, z := f.data[3*i], f.data[3*i+1], f.data[3*i+2]
		g.data[3*i], g.data[3*i+1], g.data[3*i+2] = 2*(0.6*x-0.8*y)+1, 2*(0.8*x+0.6*y)-3, 2*z+0.5
	}
	assertClose(t, "RKDLoss(f, similarity transform of f)", evalScalar(t, dtypes.Float64, rkdFn(25, 50), f, g), 0, 1e-11)
	// With two samples both normalised distances are 1 and every angle term is 0 or 1 alike: zero.
	a, b := randHost(r, 2, 3), randHost(r, 2, 5)
	assertClose(t, "RKDLoss with B = 2", evalScalar(t, dtypes.Float64, rkdFn(25, 50), a, b), 0, 1e-12)
}

func TestRKDLossBatchPermutation(t *testing.T) {
	r := testRand()
	fs, ft := randHost(r, 4, 3), randHost(r, 4, 2)
	perm := []int{2, 3, 0, 1}
	a := evalScalar(t, dtypes.Float64, rkdFn(25, 50), fs, ft)
	b := evalScalar(t, dtypes.Float64, rkdFn(25, 50), fs.permuteBatch(perm), ft.permuteBatch(perm))
	assertClose(t, "permuted RKDLoss", b, a, 1e-12)
}

func TestRKDLossGradient(t *testing.T) {
	r := testRand()
	fs, ft := randHost(r, 4, 3), randHost(r, 4, 2)
	checkGradient(t, "RKDLoss", rkdFn(25, 50), []host{fs, ft}, 0, 1e-6)
	// The teacher is a constant: no gradient flows to it.
	e := graph.MustNewExec(testutil.Backend(), func(s, te *graph.Node) *graph.Node {
		return graph.ReduceAllSum(graph.Abs(graph.Gradient(RKDLoss(s, te, 25, 50), te)[0]))
	})
	if g := floats(e.MustExec(fs.tensor(dtypes.Float64), ft.tensor(dtypes.Float64))[0])[0]; g != 0 {
		t.Errorf("teacher gradient sum |g| = %g, want 0", g)
	}
}
