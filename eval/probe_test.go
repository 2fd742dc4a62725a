package eval

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/ifa-toolkit/ifa/internal/testutil"
)

// TestProbeStepMatchesNaive checks one SGD-momentum step of softmax cross-entropy against the
// closed-form gradient (softmax − onehot) computed in float64.
func TestProbeStepMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const bsz, d, c = 5, 4, 3
	const lr, mom, wd = 0.3, 0.9, 0.01
	rnd := func(n int) []float32 {
		out := make([]float32, n)
		for i := range out {
			out[i] = float32(r.NormFloat64())
		}
		return out
	}
	w, b, vw, vb, x := rnd(d*c), rnd(c), rnd(d*c), rnd(c), rnd(bsz*d)
	y := []int32{0, 2, 1, 2, 0}
	exec := graph.MustNewExec(testutil.Backend(), func(in []*graph.Node) []*graph.Node {
		nw, nb, nvw, nvb, loss := ProbeStepGraph(in[0], in[1], in[2], in[3], in[4], in[5], in[6], mom, wd)
		return []*graph.Node{nw, nb, nvw, nvb, loss}
	})
	out := exec.MustExec(tensors.FromFlatDataAndDimensions(w, d, c), b, tensors.FromFlatDataAndDimensions(vw, d, c), vb,
		tensors.FromFlatDataAndDimensions(x, bsz, d), y, float32(lr))

	// Naive float64 reference.
	gw := make([]float64, d*c)
	gb := make([]float64, c)
	var loss float64
	for i := range bsz {
		logits := make([]float64, c)
		for k := range c {
			logits[k] = float64(b[k])
			for j := range d {
				logits[k] += float64(x[i*d+j]) * float64(w[j*c+k])
			}
		}
		m := math.Max(logits[0], math.Max(logits[1], logits[2]))
		var z float64
		for _, v := range logits {
			z += math.Exp(v - m)
		}
		loss += (m + math.Log(z) - logits[y[i]]) / bsz
		for k := range c {
			g := math.Exp(logits[k]-m) / z
			if int32(k) == y[i] {
				g--
			}
			g /= bsz
			gb[k] += g
			for j := range d {
				gw[j*c+k] += g * float64(x[i*d+j])
			}
		}
	}
	wantVW, wantW := make([]float64, d*c), make([]float64, d*c)
	for i := range gw {
		wantVW[i] = mom*float64(vw[i]) + gw[i] + wd*float64(w[i])
		wantW[i] = float64(w[i]) - lr*wantVW[i]
	}
	wantVB, wantB := make([]float64, c), make([]float64, c)
	for k := range c {
		wantVB[k] = mom*float64(vb[k]) + gb[k]
		wantB[k] = float64(b[k]) - lr*wantVB[k]
	}
	check := func(name string, got *tensors.Tensor, want []float64) {
		g := tensors.MustCopyFlatData[float32](got)
		for i := range want {
			if math.Abs(float64(g[i])-want[i]) > 1e-5*math.Max(1, math.Abs(want[i])) {
				t.Errorf("%s[%d] = %g, want %g", name, i, g[i], want[i])
			}
		}
	}
	check("W", out[0], wantW)
	check("b", out[1], wantB)
	check("vW", out[2], wantVW)
	check("vb", out[3], wantVB)
	check("loss", out[4], []float64{loss})
}

// separable draws n points in d dimensions labelled by the nearest of c well-separated centres.
func separable(r *rand.Rand, centres [][]float64, n int) FeatureSet {
	return clustered(r, centres, n, 0.3)
}

func TestLinearProbeSeparable(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	centres := randomCentres(r, 6, 12)
	for i := range centres {
		for j := range centres[i] {
			centres[i][j] *= 3
		}
	}
	train, test := separable(r, centres, 1200), separable(r, centres, 400)
	// Shift and scale the raw features so standardisation matters.
	for _, f := range []FeatureSet{train, test} {
		for i := range f.X {
			f.X[i] = f.X[i]*40 + 100
		}
	}
	for _, norm := range []Normalization{NormStandardize, NormL2} {
		res, err := LinearProbe(testutil.Backend(), train, test, ProbeOptions{Epochs: 8, BatchSize: 64, LR: 0.1, Normalization: norm})
		if norm == NormL2 {
			// L2-normalised features all point along the +100 offset: the classes stay separable but
			// at a tiny scale, so only check that training ran and decreased the loss.
			if err != nil || res.EpochLoss[len(res.EpochLoss)-1] >= res.EpochLoss[0] {
				t.Errorf("%s: %v, losses %v", norm, err, res.EpochLoss)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if res.Test.Top1 < 0.99 || res.Train.Top1 < 0.99 || res.Test.Top5 != 1 {
			t.Errorf("%s: train %v, test %v, losses %v", norm, res.Train, res.Test, res.EpochLoss)
		}
		if len(res.EpochLoss) != 8 || res.EpochLoss[7] >= res.EpochLoss[0] {
			t.Errorf("%s: epoch losses %v", norm, res.EpochLoss)
		}
	}
}

// TestLinearProbeChance: with random labels the test accuracy stays near chance, so the probe
// cannot see the test labels.
func TestLinearProbeChance(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	centres := randomCentres(r, 4, 8)
	train, test := clustered(r, centres, 800, 0.5), clustered(r, centres, 800, 0.5)
	for i := range test.Labels {
		test.Labels[i] = int32(r.IntN(4))
	}
	res, err := LinearProbe(testutil.Backend(), train, test, ProbeOptions{Epochs: 3, BatchSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	if res.Train.Top1 < 0.9 || math.Abs(res.Test.Top1-0.25) > 0.06 {
		t.Errorf("train %v, random-label test %v (want near 25%%)", res.Train, res.Test)
	}
}

func TestNormalizer(t *testing.T) {
	f := FeatureSet{X: []float32{1, 5, 2, 5, 3, 5, 6, 5}, Labels: []int32{0, 1, 0, 1}, N: 4, D: 2}
	n, err := newNormalizer(f, NormStandardize)
	if err != nil {
		t.Fatal(err)
	}
	x := n.apply(f)
	// Column 0: 1,2,3,6 (mean 3, std √3.5); column 1 is constant: centred only.
	s := math.Sqrt(3.5)
	want := []float64{-2 / s, 0, -1 / s, 0, 0, 0, 3 / s, 0}
	for i := range want {
		if math.Abs(float64(x[i])-want[i]) > 1e-6 {
			t.Errorf("x[%d] = %g, want %g", i, x[i], want[i])
		}
	}
	if _, err := newNormalizer(f, "zca"); err == nil {
		t.Error("unknown normalization accepted")
	}
}

func TestLinearProbeErrors(t *testing.T) {
	be := testutil.Backend()
	f := FeatureSet{X: []float32{1, 0, 0, 1}, Labels: []int32{0, 1}, N: 2, D: 2}
	g := FeatureSet{X: []float32{1, 0, 0}, Labels: []int32{0}, N: 1, D: 3}
	huge := FeatureSet{X: []float32{1e20, 0, 0, 1e20}, Labels: []int32{0, 1}, N: 2, D: 2}
	for name, tc := range map[string]struct {
		train, test FeatureSet
		opts        ProbeOptions
	}{
		"width":    {f, g, ProbeOptions{}},
		"lr":       {f, f, ProbeOptions{LR: -1}},
		"momentum": {f, f, ProbeOptions{Momentum: 1}},
		"classes":  {f, f, ProbeOptions{NumClasses: 1}},
		"norm":     {f, f, ProbeOptions{Normalization: "zca"}},
		"diverge":  {huge, huge, ProbeOptions{LR: 1, Epochs: 3, Normalization: NormNone}},
	} {
		if _, err := LinearProbe(be, tc.train, tc.test, tc.opts); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}
