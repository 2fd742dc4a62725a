package distill

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/ifa-toolkit/ifa/internal/testutil"
)

// naiveKD transcribes T² · mean_b KL(softmax(t_b/T) ‖ softmax(s_b/T)) in float64.
func naiveKD(s, t [][]float64, temp float64) float64 {
	softmax := func(x []float64) []float64 {
		m := math.Inf(-1)
		for _, v := range x {
			m = math.Max(m, v/temp)
		}
		var z float64
		p := make([]float64, len(x))
		for i, v := range x {
			p[i] = math.Exp(v/temp - m)
			z += p[i]
		}
		for i := range p {
			p[i] /= z
		}
		return p
	}
	var total float64
	for b := range s {
		ps, pt := softmax(s[b]), softmax(t[b])
		for c := range ps {
			if pt[c] > 0 {
				total += pt[c] * math.Log(pt[c]/ps[c])
			}
		}
	}
	return temp * temp * total / float64(len(s))
}

func randLogits(rng *rand.Rand, b, c int, scale float64) [][]float64 {
	out := make([][]float64, b)
	for i := range out {
		out[i] = make([]float64, c)
		for j := range out[i] {
			out[i][j] = scale * rng.NormFloat64()
		}
	}
	return out
}

// kdWithGrads returns the loss and its gradients with respect to student and teacher.
func kdWithGrads(t *testing.T, s, te *tensors.Tensor, temp float64) (float64, []float64, []float64) {
	t.Helper()
	outs := graph.MustExecOnceN(testutil.Backend(), func(x, y *graph.Node) (*graph.Node, *graph.Node, *graph.Node) {
		loss := KDLoss(x, y, temp)
		grads := graph.Gradient(loss, x, y)
		return loss, grads[0], grads[1]
	}, s, te)
	return flat(outs[0])[0], flat(outs[1]), flat(outs[2])
}

func flat(t *tensors.Tensor) []float64 {
	var out []float64
	t.MustConstFlatData(func(f any) {
		switch x := f.(type) {
		case []float64:
			out = append(out, x...)
		case []float32:
			for _, v := range x {
				out = append(out, float64(v))
			}
		}
	})
	return out
}

func toF32(x [][]float64) [][]float32 {
	out := make([][]float32, len(x))
	for i := range x {
		out[i] = make([]float32, len(x[i]))
		for j := range x[i] {
			out[i][j] = float32(x[i][j])
		}
	}
	return out
}

func TestKDLossMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, temp := range []float64{1, 4, 0.5} {
		s, te := randLogits(rng, 5, 7, 3), randLogits(rng, 5, 7, 3)
		want := naiveKD(s, te, temp)
		got, _, _ := kdWithGrads(t, tensors.FromValue(s), tensors.FromValue(te), temp)
		if math.Abs(got-want) > 1e-12*(1+want) {
			t.Fatalf("T=%g: KDLoss = %.17g, naive %.17g", temp, got, want)
		}
		got32, _, _ := kdWithGrads(t, tensors.FromValue(toF32(s)), tensors.FromValue(toF32(te)), temp)
		if math.Abs(got32-want) > 1e-5*(1+want) {
			t.Fatalf("T=%g float32: KDLoss = %.9g, naive %.17g", temp, got32, want)
		}
	}
}

func TestKDLossClosedForms(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	// Student = teacher: 0, with zero gradient.
	s := randLogits(rng, 4, 6, 5)
	loss, gs, _ := kdWithGrads(t, tensors.FromValue(s), tensors.FromValue(s), 4)
	if math.Abs(loss) > 1e-14 {
		t.Fatalf("student = teacher: loss %g, want 0", loss)
	}
	for i, g := range gs {
		if math.Abs(g) > 1e-14 {
			t.Fatalf("student = teacher: d/ds[%d] = %g, want 0", i, g)
		}
	}
	// A shift of every logit of a row leaves the softmax unchanged: still 0.
	shifted := make([][]float64, len(s))
	for i := range s {
		for _, v := range s[i] {
			shifted[i] = append(shifted[i], v+float64(i)*10-3)
		}
	}
	loss, _, _ = kdWithGrads(t, tensors.FromValue(shifted), tensors.FromValue(s), 4)
	if math.Abs(loss) > 1e-12 {
		t.Fatalf("shifted student: loss %g, want 0", loss)
	}
	// Two classes, uniform student, teacher (a, 0): p = σ(a/T),
	// loss = T²·[p·log(2p) + (1−p)·log(2(1−p))].
	const a, temp = 3.0, 2.0
	p := 1 / (1 + math.Exp(-a/temp))
	want := temp * temp * (p*math.Log(2*p) + (1-p)*math.Log(2*(1-p)))
	loss, gs, _ = kdWithGrads(t, tensors.FromValue([][]float64{{0, 0}}), tensors.FromValue([][]float64{{a, 0}}), temp)
	if math.Abs(loss-want) > 1e-13 {
		t.Fatalf("two classes: loss %.17g, want %.17g", loss, want)
	}
	// d/ds = T·(softmax(s/T) − softmax(t/T)) / B.
	wantG := []float64{temp * (0.5 - p), temp * (0.5 - (1 - p))}
	for i := range gs {
		if math.Abs(gs[i]-wantG[i]) > 1e-13 {
			t.Fatalf("two classes: d/ds = %v, want %v", gs, wantG)
		}
	}
}

func TestKDLossGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const b, c, temp = 3, 4, 4.0
	s, te := randLogits(rng, b, c, 4), randLogits(rng, b, c, 4)
	_, gs, gt := kdWithGrads(t, tensors.FromValue(s), tensors.FromValue(te), temp)
	const h = 1e-6
	check := func(name string, x [][]float64, grad []float64) {
		for i := range x {
			for j := range x[i] {
				orig := x[i][j]
				x[i][j] = orig + h
				up := naiveKD(s, te, temp)
				x[i][j] = orig - h
				down := naiveKD(s, te, temp)
				x[i][j] = orig
				fd := (up - down) / (2 * h)
				if math.Abs(fd-grad[i*c+j]) > 1e-7*(1+math.Abs(fd)) {
					t.Fatalf("d/d%s[%d,%d] = %.12g, finite difference %.12g", name, i, j, grad[i*c+j], fd)
				}
			}
		}
	}
	check("student", s, gs)
	check("teacher", te, gt)
}

func TestKDLossPermutationAndContext(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	s, te := randLogits(rng, 6, 5, 2), randLogits(rng, 6, 5, 2)
	perm := rng.Perm(6)
	ps, pt := make([][]float64, 6), make([][]float64, 6)
	for i, p := range perm {
		ps[i], pt[i] = s[p], te[p]
	}
	a, _, _ := kdWithGrads(t, tensors.FromValue(s), tensors.FromValue(te), 4)
	b, _, _ := kdWithGrads(t, tensors.FromValue(ps), tensors.FromValue(pt), 4)
	if math.Abs(a-b) > 1e-13 {
		t.Fatalf("permuted batch: %g vs %g", b, a)
	}

}
