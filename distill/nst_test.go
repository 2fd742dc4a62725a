package distill

import (
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
)

// refNST is Σ_layers mean K_tt + mean K_ss − 2 mean K_st, k(a, b) = (â·b̂)², â the L2-normalised
// spatial vector of one channel.
func refNST(fs, ft []host) float64 {
	total := 0.0
	for l := range fs {
		s, t := refMatch(fs[l], ft[l])
		b, hw := s.dims[0], s.dims[1]*s.dims[2]
		chans := func(x host, n int) [][]float64 {
			c := x.dims[3]
			out := make([][]float64, c)
			for ch := range out {
				v := make([]float64, hw)
				for p := 0; p < hw; p++ {
					v[p] = x.data[(n*hw+p)*c+ch]
				}
				out[ch] = refNormalize(v)
			}
			return out
		}
		kmean := func(a, c [][][]float64) float64 {
			s, cnt := 0.0, 0
			for n := range a {
				for i := range a[n] {
					for j := range c[n] {
						k := vdot(a[n][i], c[n][j])
						s += k * k
						cnt++
					}
				}
			}
			return s / float64(cnt)
		}
		var cs, ct [][][]float64
		for n := 0; n < b; n++ {
			cs, ct = append(cs, chans(s, n)), append(ct, chans(t, n))
		}
		total += kmean(ct, ct) + kmean(cs, cs) - 2*kmean(cs, ct)
	}
	return total
}

func nstFn(n int) func(xs []*graph.Node) *graph.Node {
	return func(xs []*graph.Node) *graph.Node { return NSTLoss(xs[:n], xs[n:]) }
}

func TestNSTLossReference(t *testing.T) {
	r := testRand()
	fs := []host{randHost(r, 2, 4, 4, 3), randHost(r, 2, 2, 2, 2)}
	ft := []host{randHost(r, 2, 2, 2, 4), randHost(r, 2, 2, 2, 5)}
	want := refNST(fs, ft)
	assertClose(t, "NSTLoss f64", evalScalar(t, dtypes.Float64, nstFn(2), append(fs, ft...)...), want, 1e-12)
	assertClose(t, "NSTLoss f32", evalScalar(t, dtypes.Float32, nstFn(2), append(fs, ft...)...), want, 1e-5)
	if want < 1e-3 {
		t.Fatalf("reference loss %g too small to be informative", want)
	}
}

func TestNSTLossClosedForms(t *testing.T) {
	r := testRand()
	f := randHost(r, 3, 2, 2, 4)
	assertClose(t, "NSTLoss(f, f)", evalScalar(t, dtypes.Float64, nstFn(1), f, f), 0, 1e-14)
	// Permuting the teacher's channels leaves the kernel means, hence the loss, unchanged.
	g := newHost(f.dims...)
	perm := []int{2, 0, 3, 1}
	for i := 0; i < len(f.data)/4; i++ {
		for c := 0; c < 4; c++ {
			g.data[i*4+c] = f.data[i*4+perm[c]]
		}
	}
	assertClose(t, "NSTLoss(f, channel-permuted f)", evalScalar(t, dtypes.Float64, nstFn(1), f, g), 0, 1e-14)
}

func TestNSTLossBatchPermutation(t *testing.T) {
	r := testRand()
	fs, ft := randHost(r, 3, 2, 2, 2), randHost(r, 3, 2, 2, 3)
	perm := []int{2, 0, 1}
	a := evalScalar(t, dtypes.Float64, nstFn(1), fs, ft)
	b := evalScalar(t, dtypes.Float64, nstFn(1), fs.permuteBatch(perm), ft.permuteBatch(perm))
	assertClose(t, "permuted NSTLoss", b, a, 1e-13)
}

func TestNSTLossGradient(t *testing.T) {
	r := testRand()
	checkGradient(t, "NSTLoss", nstFn(1), []host{randHost(r, 2, 2, 2, 3), randHost(r, 2, 4, 4, 2)}, 0, 1e-6)
}
