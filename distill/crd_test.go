package distill

import (
	"math"
	"slices"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/internal/testutil"
)

func TestCRDSamplerExactMode(t *testing.T) {
	labels := []int{0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 3, 3}
	s, err := NewCRDSampler(labels, 5, 42)
	if err != nil {
		t.Fatal(err)
	}
	indices := []int{3, 7, 12, 2}
	batchLabels := []int{0, 1, 3, 2}
	a, err := s.Sample(10, indices, batchLabels)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := s.Sample(10, indices, batchLabels)
	if !slices.Equal(a, b) {
		t.Fatal("same seed, step and batch gave different samples")
	}
	c, _ := s.Sample(11, indices, batchLabels)
	if slices.Equal(a, c) {
		t.Error("a different step gave the same samples")
	}
	// A row depends only on its own sample: the same index in another batch gets the same row.
	d, _ := s.Sample(10, []int{12, 5}, []int{3, 2})
	if !slices.Equal(d[:6], a[2*6:3*6]) {
		t.Errorf("row of sample 12 depends on the batch: %v vs %v", d[:6], a[12:18])
	}
	other, _ := NewCRDSampler(labels, 5, 43)
	if e, _ := other.Sample(10, indices, batchLabels); slices.Equal(a, e) {
		t.Error("a different seed gave the same samples")
	}
	for i, idx := range indices {
		row := a[i*6 : (i+1)*6]
		if int(row[0]) != idx {
			t.Errorf("row %d starts with %d, want its own index %d", i, row[0], idx)
		}
		seen := map[int32]bool{}
		for _, n := range row[1:] {
			if labels[n] == batchLabels[i] {
				t.Errorf("row %d (class %d): negative %d has the same class", i, batchLabels[i], n)
			}
			if seen[n] {
				t.Errorf("row %d: negative %d drawn twice although the class has enough negatives", i, n)
			}
			seen[n] = true
		}
	}
	// Over many steps every negative of a class is drawn and none of its own class.
	counts := make(map[int32]int)
	for step := int64(0); step < 200; step++ {
		r, _ := s.Sample(step, []int{0}, []int{0})
		for _, n := range r[1:] {
			counts[n]++
		}
	}
	for i, l := range labels {
		if l != 0 && counts[int32(i)] == 0 {
			t.Errorf("negative %d (class %d) never drawn for class 0", i, l)
		}
		if l == 0 && counts[int32(i)] != 0 {
			t.Errorf("same-class sample %d drawn as a negative", i)
		}
	}
}

func TestCRDSamplerWithReplacement(t *testing.T) {
	labels := []int{0, 0, 0, 1, 1} // class 0 has only 2 negatives
	s, err := NewCRDSampler(labels, 6, 1)
	if err != nil {
		t.Fatal(err)
	}
	row, err := s.Sample(0, []int{1}, []int{0})
	if err != nil {
		t.Fatal(err)
	}
	if len(row) != 7 || row[0] != 1 {
		t.Fatalf("row = %v", row)
	}
	for _, n := range row[1:] {
		if n != 3 && n != 4 {
			t.Errorf("negative %d is not of class 1", n)
		}
	}
	ts, err := s.Make(0, []int{1, 3}, []int{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := s.Specs(2)[0].Shape; !ts[0].Shape().Equal(want) {
		t.Errorf("Make shape %s, Specs %s", ts[0].Shape(), want)
	}
}

func TestCRDSamplerErrors(t *testing.T) {
	if _, err := NewCRDSampler([]int{2, 2, 2}, 4, 0); err == nil {
		t.Error("single-class training set accepted")
	}
	if _, err := NewCRDSampler([]int{0, 1}, 0, 0); err == nil {
		t.Error("K = 0 accepted")
	}
	if _, err := NewCRDSampler([]int{0, -1}, 1, 0); err == nil {
		t.Error("negative label accepted")
	}
	s, _ := NewCRDSampler([]int{0, 1, 0, 1}, 2, 0)
	for name, c := range map[string][2][]int{
		"label mismatch":  {{0, 1}, {0, 0}},
		"out of range":    {{0, 4}, {0, 1}},
		"duplicate index": {{1, 1}, {1, 1}},
		"length mismatch": {{0, 1}, {0}},
	} {
		if _, err := s.Sample(0, c[0], c[1]); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func refNCE(p [][]float64, n int) float64 {
	m := float64(len(p[0]) - 1)
	mPn := m / float64(n)
	s := 0.0
	for _, row := range p {
		s += math.Log(row[0] / (row[0] + mPn + 1e-7))
		for _, v := range row[1:] {
			s += math.Log(mPn / (v + mPn + 1e-7))
		}
	}
	return -s / float64(len(p))
}

func TestCRDNCELossReference(t *testing.T) {
	r := testRand()
	p := newHost(3, 5)
	rowsP := make([][]float64, 3)
	for i := range p.data {
		p.data[i] = math.Exp(r.NormFloat64()) * 1e-3
	}
	for i := range rowsP {
		rowsP[i] = p.data[i*5 : (i+1)*5]
	}
	fn := func(xs []*graph.Node) *graph.Node { return CRDNCELoss(xs[0], 100) }
	want := refNCE(rowsP, 100)
	assertClose(t, "CRDNCELoss f64", evalScalar(t, dtypes.Float64, fn, p), want, 1e-13)
	assertClose(t, "CRDNCELoss f32", evalScalar(t, dtypes.Float32, fn, p), want, 1e-5)
	// Closed form: p_pos = m/n and p_neg = 0 give log 2 per row, up to the ε terms.
	q := host{dims: []int{1, 3}, data: []float64{0.02, 0, 0}}
	closed := -(math.Log(0.02/(0.04+1e-7)) + 2*math.Log(0.02/(0.02+1e-7)))
	assertClose(t, "CRDNCELoss closed form", evalScalar(t, dtypes.Float64, fn, q), closed, 1e-14)
	assertClose(t, "CRDNCELoss closed form vs log 2", closed, math.Log(2), 2e-5)
}

// TestCRDNCEGradient checks the gradient of the NCE loss through the scores with respect to the
// embedding, with Z fixed.
func TestCRDNCEGradient(t *testing.T) {
	r := testRand()
	w, v := randHost(r, 2, 4, 3), randHost(r, 2, 3)
	fn := func(xs []*graph.Node) *graph.Node {
		vn := l2Normalize(xs[1], 1, normalizeEpsilon)
		p := graph.DivScalar(CRDScores(xs[0], vn, 0.5), 40)
		return CRDNCELoss(p, 50)
	}
	checkGradient(t, "CRD NCE ∘ scores", fn, []host{w, v}, 1, 1e-6)
}

func TestCRDBankUpdateExact(t *testing.T) {
	r := testRand()
	bank, v := randHost(r, 5, 3), randHost(r, 2, 3)
	idx := []int32{3, 1}
	e := graph.MustNewExec(testutil.Backend(), func(b, i, x *graph.Node) *graph.Node { return CRDBankUpdate(b, i, x, 0.5) })
	got := floats(e.MustExec(bank.tensor(dtypes.Float64), tensors.FromValue(idx), v.tensor(dtypes.Float64))[0])
	want := bank.clone()
	for k, row := range idx {
		u := make([]float64, 3)
		for d := range u {
			u[d] = 0.5*bank.data[int(row)*3+d] + 0.5*v.data[k*3+d]
		}
		copy(want.data[int(row)*3:], refNormalize(u))
	}
	for i := range got {
		if math.Abs(got[i]-want.data[i]) > 1e-15 {
			t.Fatalf("bank value %d = %.17g, want %.17g", i, got[i], want.data[i])
		}
	}
}

// crdNaive recomputes CRD from its variables: the loss and the two sides' fresh Z.
type crdVars struct {
	ws, bs, wt, bt []float64 // embeddings [din, dim], [dim]
	ms, mt         []float64 // banks [N, dim]
}

func readCRDVars(t *testing.T, ctx *context.Context) crdVars {
	get := func(scope, name string) []float64 {
		v := ctx.InspectVariable(scope, name)
		if v == nil {
			t.Fatalf("variable %s/%s missing", scope, name)
		}
		return floats(v.MustValue())
	}
	return crdVars{
		ws: get("/crd/embed_s", "weights"), bs: get("/crd/embed_s", "biases"),
		wt: get("/crd/embed_t", "weights"), bt: get("/crd/embed_t", "biases"),
		ms: get("/crd/memory", "bank_s"), mt: get("/crd/memory", "bank_t"),
	}
}

func refEmbed(x host, w, b []float64) [][]float64 {
	dim := len(b)
	out := make([][]float64, x.dims[0])
	for i, row := range hostRows(x) {
		e := append([]float64(nil), b...)
		for d := 0; d < dim; d++ {
			for k := range row {
				e[d] += row[k] * w[k*dim+d]
			}
		}
		out[i] = refNormalize(e)
	}
	return out
}

// refCRD returns the loss with the given Z (or fresh ones when z is nil), and the Z used.
func refCRD(v crdVars, xs, xt host, idx [][]int32, n int, temp float64, z []float64) (float64, []float64) {
	es, et := refEmbed(xs, v.ws, v.bs), refEmbed(xt, v.wt, v.bt)
	dim := len(v.bs)
	scores := func(bank []float64, e [][]float64) [][]float64 {
		out := make([][]float64, len(idx))
		for i := range idx {
			for _, j := range idx[i] {
				out[i] = append(out[i], math.Exp(vdot(bank[int(j)*dim:(int(j)+1)*dim], e[i])/temp))
			}
		}
		return out
	}
	outS, outT := scores(v.mt, es), scores(v.ms, et)
	if z == nil {
		mean := func(p [][]float64) float64 {
			s, c := 0.0, 0
			for _, r := range p {
				for _, x := range r {
					s += x
					c++
				}
			}
			return s / float64(c) * float64(n)
		}
		z = []float64{mean(outS), mean(outT)}
	}
	div := func(p [][]float64, zz float64) [][]float64 {
		for _, r := range p {
			for k := range r {
				r[k] /= zz
			}
		}
		return p
	}
	return refNCE(div(outS, z[0]), n) + refNCE(div(outT, z[1]), n), z
}

// TestCRDMethod runs two training steps of the registry's CRD and checks the loss, Z being fixed
// by the first batch, and the momentum update of both banks, against the naive reference.
func TestCRDMethod(t *testing.T) {
	const n, k, dim, temp = 8, 3, 4, 0.5
	labels := []int{0, 0, 1, 1, 2, 2, 3, 3}
	sampler, err := NewCRDSampler(labels, k, 9)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.New().Checked(false)
	ctx.SetParams(map[string]any{ParamCRDFeatDim: dim, ParamCRDTemperature: temp})
	build := func(training bool) *context.Exec {
		return context.MustNewExec(testutil.Backend(), ctx, func(ctx *context.Context, xs []*graph.Node) *graph.Node {
			ctx.SetTraining(xs[0].Graph(), training)
			s, te := backbone.Features{Pooled: xs[0]}, backbone.Features{Pooled: xs[1]}
			return CRD{}.Loss(ctx, s, te, Step{Extra: []*graph.Node{xs[2]}, DatasetSize: n})
		})
	}
	evalExec, trainExec := build(false), build(true)
	r := testRand()
	batch := func(step int64, indices []int) (host, host, *tensors.Tensor, [][]int32) {
		bl := make([]int, len(indices))
		for i, j := range indices {
			bl[i] = labels[j]
		}
		flat, err := sampler.Sample(step, indices, bl)
		if err != nil {
			t.Fatal(err)
		}
		idx := make([][]int32, len(indices))
		for i := range idx {
			idx[i] = flat[i*(k+1) : (i+1)*(k+1)]
		}
		return randHost(r, len(indices), 5), randHost(r, len(indices), 6), tensors.FromFlatDataAndDimensions(flat, len(indices), k+1), idx
	}
	run := func(e *context.Exec, xs, xt host, idx *tensors.Tensor) float64 {
		return floats(e.MustExec(xs.tensor(dtypes.Float64), xt.tensor(dtypes.Float64), idx)[0])[0]
	}

	// Step 1: an evaluation pass creates the variables and changes nothing.
	xs, xt, idxT, idx := batch(0, []int{1, 6, 3})
	lossEval := run(evalExec, xs, xt, idxT)
	v0 := readCRDVars(t, ctx)
	want, z := refCRD(v0, xs, xt, idx, n, temp, nil)
	assertClose(t, "CRD eval loss", lossEval, want, 1e-12)
	if zset := ctx.InspectVariable("/crd/memory", "z_set").MustValue().Value().(int32); zset != 0 {
		t.Fatalf("z_set = %d after an evaluation pass, want 0", zset)
	}
	for _, bank := range [][]float64{v0.ms, v0.mt} {
		bound := math.Sqrt(3.0 / dim)
		for _, x := range bank {
			if math.Abs(x) > bound {
				t.Fatalf("bank initial value %g outside ±%g", x, bound)
			}
		}
	}

	// Step 1 in training: same loss, Z set from this batch, banks updated at the batch's indices.
	assertClose(t, "CRD train loss (step 1)", run(trainExec, xs, xt, idxT), want, 1e-12)
	mem := "/crd/memory"
	if zset := ctx.InspectVariable(mem, "z_set").MustValue().Value().(int32); zset != 1 {
		t.Fatalf("z_set = %d after a training step, want 1", zset)
	}
	zs := floats(ctx.InspectVariable(mem, "z_s").MustValue())[0]
	zt := floats(ctx.InspectVariable(mem, "z_t").MustValue())[0]
	assertClose(t, "Z_s", zs, z[0], 1e-12)
	assertClose(t, "Z_t", zt, z[1], 1e-12)
	v1 := readCRDVars(t, ctx)
	es, et := refEmbed(xs, v0.ws, v0.bs), refEmbed(xt, v0.wt, v0.bt)
	for name, c := range map[string]struct {
		old, new []float64
		e        [][]float64
	}{"bank_s": {v0.ms, v1.ms, es}, "bank_t": {v0.mt, v1.mt, et}} {
		want := append([]float64(nil), c.old...)
		for i, row := range idx {
			j := int(row[0])
			u := make([]float64, dim)
			for d := range u {
				u[d] = 0.5*c.old[j*dim+d] + 0.5*c.e[i][d]
			}
			copy(want[j*dim:], refNormalize(u))
		}
		// The banks start from random initial values, so the bound leaves room for a few ulps of
		// the normalisation's rounding (1e-15 failed about once in a hundred runs).
		for i := range want {
			if math.Abs(c.new[i]-want[i]) > 1e-13 {
				t.Fatalf("%s value %d = %.17g, want %.17g", name, i, c.new[i], want[i])
			}
		}
	}

	// Step 2: a new batch keeps Z from step 1.
	xs2, xt2, idxT2, idx2 := batch(1, []int{0, 7, 4})
	want2, _ := refCRD(v1, xs2, xt2, idx2, n, temp, z)
	fresh, _ := refCRD(v1, xs2, xt2, idx2, n, temp, nil)
	if closeTo(want2, fresh, 1e-6) {
		t.Fatalf("test batch too weak: fixed-Z and fresh-Z losses agree (%g)", want2)
	}
	assertClose(t, "CRD train loss (step 2, Z fixed)", run(trainExec, xs2, xt2, idxT2), want2, 1e-12)
	assertClose(t, "Z_s after step 2", floats(ctx.InspectVariable(mem, "z_s").MustValue())[0], zs, 0)

	// Head parameters: both embeddings, counted twice in the talk's convention.
	hp, err := CRD{}.HeadParams(ctx, FeatureShapes{Pooled: shapesOfHosts(xs)[0]}, FeatureShapes{Pooled: shapesOfHosts(xt)[0]})
	if err != nil {
		t.Fatal(err)
	}
	if got := trainableParams(ctx, "/crd"); hp.Params != got || !hp.CountedTwice || hp.Reported() != 2*got {
		t.Errorf("CRD HeadParams = %+v, trainable variables hold %d", hp, got)
	}
}

// TestCRDBankScoresPaths checks that scoring the whole bank and gathering rows agree, values and
// gradients.
func TestCRDBankScoresPaths(t *testing.T) {
	r := testRand()
	bank, v := randHost(r, 7, 3), randHost(r, 2, 3)
	idx := tensors.FromValue([][]int32{{4, 0, 6}, {1, 1, 5}})
	var res [2][]float64
	for i, via := range []bool{false, true} {
		e := graph.MustNewExec(testutil.Backend(), func(b, ix, x *graph.Node) (*graph.Node, *graph.Node) {
			s := crdBankScores(b, ix, x, 0.5, via)
			l := graph.ReduceAllSum(graph.Mul(s, graph.Iota(x.Graph(), s.Shape(), 1)))
			return s, graph.Gradient(l, x)[0]
		})
		out := e.MustExec(bank.tensor(dtypes.Float64), idx, v.tensor(dtypes.Float64))
		res[i] = append(floats(out[0]), floats(out[1])...)
	}
	// Direct values for row 1, column 2: exp(⟨bank[5], v[1]⟩/0.5).
	want := math.Exp(vdot(bank.data[15:18], v.data[3:6]) / 0.5)
	assertClose(t, "score[1][2]", res[0][5], want, 1e-14)
	for j := range res[0] {
		assertClose(t, "matmul path vs gather path", res[1][j], res[0][j], 1e-13)
	}
	if crdScoresViaMatMul(50000, 16385, 128) != true || crdScoresViaMatMul(3_000_000, 16385, 128) != false {
		t.Error("path choice: CIFAR should use the product, a 3M-sample set the gather")
	}
}
