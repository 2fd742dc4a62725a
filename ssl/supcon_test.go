package ssl

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/ifa-toolkit/ifa/internal/testutil"
)

// naiveSupCon is a plain float64 transcription of METHODS.md §3.1 (and §3.2 for the L_in form),
// one anchor at a time. f is [B][V][D]; labels is nil or [B]. It returns the per-anchor losses in
// view-major order and their mean.
func naiveSupCon(f [][][]float64, labels []int, tau, baseTau float64, mode ContrastMode, in bool) ([]float64, float64) {
	b, v := len(f), len(f[0])
	n := b * v
	c := func(k int) []float64 { return f[k%b][k/b] }
	nA := n
	if mode == ContrastOne {
		nA = b
	}
	scale := 1.0
	if baseTau != 0 {
		scale = tau / baseTau
	}
	per := make([]float64, nA)
	var total float64
	for i := 0; i < nA; i++ {
		a := c(i)
		var den, posExp, posLog float64
		var nPos int
		logit := func(k int) float64 {
			var s float64
			for j := range a {
				s += a[j] * c(k)[j]
			}
			return s / tau
		}
		for k := 0; k < n; k++ {
			if k != i {
				den += math.Exp(logit(k))
			}
		}
		for k := 0; k < n; k++ {
			if k == i {
				continue
			}
			isPos := k%b == i%b
			if labels != nil {
				isPos = labels[k%b] == labels[i%b]
			}
			if !isPos {
				continue
			}
			nPos++
			posExp += math.Exp(logit(k))
			posLog += logit(k) - math.Log(den)
		}
		if nPos > 0 {
			if in {
				per[i] = -scale * math.Log(posExp/den)
			} else {
				per[i] = -scale * posLog / float64(nPos)
			}
		}
		total += per[i]
	}
	return per, total / float64(nA)
}

// randUnit returns B×V×D random vectors, each L2-normalised.
func randUnit(rng *rand.Rand, b, v, d int) [][][]float64 {
	f := make([][][]float64, b)
	for i := range f {
		f[i] = make([][]float64, v)
		for j := range f[i] {
			x := make([]float64, d)
			var s float64
			for k := range x {
				x[k] = rng.NormFloat64()
				s += x[k] * x[k]
			}
			for k := range x {
				x[k] /= math.Sqrt(s)
			}
			f[i][j] = x
		}
	}
	return f
}

func flat3(f [][][]float64) []float64 {
	var out []float64
	for _, a := range f {
		for _, x := range a {
			out = append(out, x...)
		}
	}
	return out
}

func tensor3(f [][][]float64) *tensors.Tensor {
	return tensors.FromFlatDataAndDimensions(flat3(f), len(f), len(f[0]), len(f[0][0]))
}

func tensor3f32(f [][][]float64) *tensors.Tensor {
	x := flat3(f)
	y := make([]float32, len(x))
	for i := range x {
		y[i] = float32(x[i])
	}
	return tensors.FromFlatDataAndDimensions(y, len(f), len(f[0]), len(f[0][0]))
}

func labelTensor(labels []int) *tensors.Tensor {
	y := make([]int32, len(labels))
	for i, l := range labels {
		y[i] = int32(l)
	}
	return tensors.FromFlatDataAndDimensions(y, len(y))
}

type lossFn func(features, labels *graph.Node, opts SupConOptions) *graph.Node

// runPerAnchor evaluates a per-anchor loss function and its mean on the test backend.
func runPerAnchor(t *testing.T, fn lossFn, f *tensors.Tensor, labels []int, opts SupConOptions) ([]float64, float64) {
	t.Helper()
	backend := testutil.Backend()
	var outs []*tensors.Tensor
	if labels == nil {
		outs = graph.MustExecOnceN(backend, func(x *graph.Node) (*graph.Node, *graph.Node) {
			per := fn(x, nil, opts)
			return per, graph.ReduceAllMean(per)
		}, f)
	} else {
		outs = graph.MustExecOnceN(backend, func(x, y *graph.Node) (*graph.Node, *graph.Node) {
			per := fn(x, y, opts)
			return per, graph.ReduceAllMean(per)
		}, f, labelTensor(labels))
	}
	return toF64(outs[0]), toF64(outs[1])[0]
}

func toF64(t *tensors.Tensor) []float64 {
	switch v := t.Value().(type) {
	case float64:
		return []float64{v}
	case float32:
		return []float64{float64(v)}
	case []float64:
		return v
	case []float32:
		out := make([]float64, len(v))
		for i := range v {
			out[i] = float64(v[i])
		}
		return out
	}
	var out []float64
	t.MustConstFlatData(func(flat any) {
		switch x := flat.(type) {
		case []float64:
			out = append(out, x...)
		case []float32:
			for _, e := range x {
				out = append(out, float64(e))
			}
		}
	})
	return out
}

func assertClose(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.IsNaN(got[i]) || math.Abs(got[i]-want[i]) > tol*(1+math.Abs(want[i])) {
			t.Fatalf("%s[%d] = %.17g, want %.17g (tol %g)\ngot  %v\nwant %v", what, i, got[i], want[i], tol, got, want)
		}
	}
}

// workedExample is METHODS.md §3.3.
var workedExample = [][][]float64{
	{{1, 0, 0}, {0.8, 0.6, 0}},
	{{0, 1, 0}, {0, 0.6, 0.8}},
	{{0, 0, 1}, {0.6, 0, 0.8}},
}

func TestSupConWorkedExample(t *testing.T) {
	wantPer := []float64{0.8224237341899894, 1.0659453661573972, 0.9576973442019563,
		1.0347106845686747, 1.502985549602376, 1.1396448290690762}
	const wantLoss = 1.0872345846315783
	opts := SupConOptions{Temperature: 0.5, BaseTemperature: 0.5}

	naivePer, naiveLoss := naiveSupCon(workedExample, nil, 0.5, 0.5, ContrastAll, false)
	assertClose(t, "naive per-anchor", naivePer, wantPer, 1e-13)
	assertClose(t, "naive loss", []float64{naiveLoss}, []float64{wantLoss}, 1e-13)

	per, loss := runPerAnchor(t, SupConPerAnchor, tensor3(workedExample), nil, opts)
	assertClose(t, "float64 per-anchor", per, wantPer, 1e-13)
	assertClose(t, "float64 loss", []float64{loss}, []float64{wantLoss}, 1e-13)

	per32, loss32 := runPerAnchor(t, SupConPerAnchor, tensor3f32(workedExample), nil, opts)
	assertClose(t, "float32 per-anchor", per32, wantPer, 2e-6)
	assertClose(t, "float32 loss", []float64{loss32}, []float64{wantLoss}, 2e-6)

	// The same value through NT-Xent on the two views.
	z1 := tensors.FromValue([][]float64{workedExample[0][0], workedExample[1][0], workedExample[2][0]})
	z2 := tensors.FromValue([][]float64{workedExample[0][1], workedExample[1][1], workedExample[2][1]})
	nt := graph.MustExecOnce(testutil.Backend(), func(a, b *graph.Node) *graph.Node { return NTXent(a, b, 0.5) }, z1, z2)
	assertClose(t, "NTXent", toF64(nt), []float64{wantLoss}, 1e-13)
}

func TestSupConMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const b, d = 5, 4
	labels := []int{0, 2, 0, 1, 2} // sample 3 is alone in its class
	for v := 1; v <= 4; v++ {
		f := randUnit(rng, b, v, d)
		for _, mode := range []ContrastMode{ContrastAll, ContrastOne} {
			for _, withLabels := range []bool{false, true} {
				for _, taus := range [][2]float64{{0.5, 0}, {0.1, 0.07}, {0.2, 0.2}} {
					for _, in := range []bool{false, true} {
						var y []int
						if withLabels {
							y = labels
						}
						fn, name := lossFn(SupConPerAnchor), "out"
						if in {
							fn, name = SupConInPerAnchor, "in"
						}
						opts := SupConOptions{Temperature: taus[0], BaseTemperature: taus[1], Mode: mode}
						what := fmt.Sprintf("V=%d mode=%s labels=%v tau=%v form=%s", v, mode, withLabels, taus, name)
						wantPer, wantLoss := naiveSupCon(f, y, taus[0], taus[1], mode, in)
						per, loss := runPerAnchor(t, fn, tensor3(f), y, opts)
						assertClose(t, what+" per-anchor", per, wantPer, 1e-12)
						assertClose(t, what+" loss", []float64{loss}, []float64{wantLoss}, 1e-12)
						if v == 3 && taus[0] == 0.1 {
							per32, _ := runPerAnchor(t, fn, tensor3f32(f), y, opts)
							assertClose(t, what+" float32 per-anchor", per32, wantPer, 1e-5)
						}
					}
				}
			}
		}
	}
}

func TestSupConLabelDTypes(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	f := randUnit(rng, 4, 2, 3)
	labels := []int{1, 0, 1, 7}
	_, want := naiveSupCon(f, labels, 0.1, 0, ContrastAll, false)
	opts := SupConOptions{Temperature: 0.1}
	for _, y := range []*tensors.Tensor{
		tensors.FromValue([]int64{1, 0, 1, 7}),
		tensors.FromValue([]uint8{1, 0, 1, 7}),
		tensors.FromFlatDataAndDimensions([]int16{1, 0, 1, 7}, 4),
	} {
		got := graph.MustExecOnce(testutil.Backend(), func(x, lab *graph.Node) *graph.Node { return SupCon(x, lab, opts) },
			tensor3(f), y)
		assertClose(t, "labels "+y.DType().String(), toF64(got), []float64{want}, 1e-12)
	}
}

func TestSupConClosedForms(t *testing.T) {
	// All features identical: every logit equal, so log p = −log(N−1) for each positive.
	const b, v = 4, 3
	f := make([][][]float64, b)
	for i := range f {
		f[i] = make([][]float64, v)
		for j := range f[i] {
			f[i][j] = []float64{0.6, 0, 0.8}
		}
	}
	for _, taus := range [][2]float64{{0.5, 0}, {0.1, 0.07}} {
		scale := 1.0
		if taus[1] != 0 {
			scale = taus[0] / taus[1]
		}
		want := math.Log(float64(b*v-1)) * scale
		for _, mode := range []ContrastMode{ContrastAll, ContrastOne} {
			opts := SupConOptions{Temperature: taus[0], BaseTemperature: taus[1], Mode: mode}
			_, got := runPerAnchor(t, SupConPerAnchor, tensor3(f), nil, opts)
			assertClose(t, fmt.Sprintf("identical %v %s", taus, mode), []float64{got}, []float64{want}, 1e-12)
			_, gotIn := runPerAnchor(t, SupConInPerAnchor, tensor3(f), nil, opts)
			// L_in: the V−1 positives sum inside the log: log((N−1)/(V−1)).
			wantIn := math.Log(float64(b*v-1)/float64(v-1)) * scale
			assertClose(t, fmt.Sprintf("identical L_in %v %s", taus, mode), []float64{gotIn}, []float64{wantIn}, 1e-12)
		}
	}

	// V = 1 with all-distinct labels: no anchor has a positive, the loss is exactly 0.
	rng := rand.New(rand.NewPCG(5, 6))
	g := randUnit(rng, 4, 1, 3)
	per, loss := runPerAnchor(t, SupConPerAnchor, tensor3(g), []int{0, 1, 2, 3}, SupConOptions{Temperature: 0.1})
	assertClose(t, "no positives", append(per, loss), []float64{0, 0, 0, 0, 0}, 0)

	// A single contrast point: 0.
	_, loss = runPerAnchor(t, SupConPerAnchor, tensor3([][][]float64{{{1, 0}}}), []int{3}, SupConOptions{Temperature: 0.1})
	assertClose(t, "single point", []float64{loss}, []float64{0}, 0)

	// Two samples, two views, no labels, orthogonal samples, aligned views: each anchor sees its
	// positive at logit 1/τ and two negatives at 0: L = −log(e^{1/τ} / (e^{1/τ} + 2)).
	h := [][][]float64{{{1, 0}, {1, 0}}, {{0, 1}, {0, 1}}}
	const tau = 0.25
	want := -math.Log(math.Exp(1/tau) / (math.Exp(1/tau) + 2))
	_, loss = runPerAnchor(t, SupConPerAnchor, tensor3(h), nil, SupConOptions{Temperature: tau})
	assertClose(t, "two pairs", []float64{loss}, []float64{want}, 1e-13)
}

func TestSupConPermutationInvariance(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const b, v, d = 6, 3, 5
	f := randUnit(rng, b, v, d)
	labels := []int{0, 1, 0, 2, 1, 3}
	perm := rng.Perm(b)
	pf := make([][][]float64, b)
	pl := make([]int, b)
	for i, p := range perm {
		pf[i] = f[p]
		pl[i] = labels[p]
	}
	for _, mode := range []ContrastMode{ContrastAll, ContrastOne} {
		for _, y := range [][2][]int{{nil, nil}, {labels, pl}} {
			opts := SupConOptions{Temperature: 0.2, Mode: mode}
			per, loss := runPerAnchor(t, SupConPerAnchor, tensor3(f), y[0], opts)
			pper, ploss := runPerAnchor(t, SupConPerAnchor, tensor3(pf), y[1], opts)
			assertClose(t, "permuted loss", []float64{ploss}, []float64{loss}, 1e-13)
			// Anchor (view j, sample i) of the permuted batch is anchor (view j, sample perm[i]).
			want := make([]float64, len(pper))
			for k := range pper {
				j, i := k/b, k%b
				want[k] = per[j*b+perm[i]]
			}
			assertClose(t, "permuted per-anchor", pper, want, 1e-13)
		}
	}
}

// gradOf evaluates fn and its gradient with respect to the features.
func gradOf(t *testing.T, fn func(x, y *graph.Node) *graph.Node, f *tensors.Tensor, labels []int) (float64, []float64) {
	t.Helper()
	backend := testutil.Backend()
	var outs []*tensors.Tensor
	if labels == nil {
		outs = graph.MustExecOnceN(backend, func(x *graph.Node) (*graph.Node, *graph.Node) {
			loss := fn(x, nil)
			return loss, graph.Gradient(loss, x)[0]
		}, f)
	} else {
		outs = graph.MustExecOnceN(backend, func(x, y *graph.Node) (*graph.Node, *graph.Node) {
			loss := fn(x, y)
			return loss, graph.Gradient(loss, x)[0]
		}, f, labelTensor(labels))
	}
	var grad []float64
	outs[1].MustConstFlatData(func(flat any) {
		switch x := flat.(type) {
		case []float64:
			grad = append(grad, x...)
		case []float32:
			for _, e := range x {
				grad = append(grad, float64(e))
			}
		}
	})
	return toF64(outs[0])[0], grad
}

func TestSupConGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	const b, v, d = 3, 2, 3
	f := randUnit(rng, b, v, d)
	x := flat3(f)
	labels := []int{0, 1, 0}
	for _, mode := range []ContrastMode{ContrastAll, ContrastOne} {
		for _, y := range [][]int{nil, labels} {
			for _, in := range []bool{false, true} {
				opts := SupConOptions{Temperature: 0.3, BaseTemperature: 0.07, Mode: mode}
				fn := func(xx, yy *graph.Node) *graph.Node { return SupCon(xx, yy, opts) }
				if in {
					fn = func(xx, yy *graph.Node) *graph.Node { return SupConIn(xx, yy, opts) }
				}
				_, grad := gradOf(t, fn, tensor3(f), y)
				// Central finite differences of the naive reference (it is defined for any input).
				const h = 1e-6
				for i := range x {
					up, down := append([]float64(nil), x...), append([]float64(nil), x...)
					up[i] += h
					down[i] -= h
					_, lu := naiveSupCon(unflat3(up, b, v, d), y, opts.Temperature, opts.BaseTemperature, mode, in)
					_, ld := naiveSupCon(unflat3(down, b, v, d), y, opts.Temperature, opts.BaseTemperature, mode, in)
					fd := (lu - ld) / (2 * h)
					if math.Abs(fd-grad[i]) > 1e-6*(1+math.Abs(fd)) {
						t.Fatalf("mode=%s labels=%v in=%v: d/dx[%d] = %.12g, finite difference %.12g", mode, y, in, i, grad[i], fd)
					}
				}
			}
		}
	}
}

func unflat3(x []float64, b, v, d int) [][][]float64 {
	f := make([][][]float64, b)
	for i := range f {
		f[i] = make([][]float64, v)
		for j := range f[i] {
			f[i][j] = x[(i*v+j)*d : (i*v+j+1)*d]
		}
	}
	return f
}

func TestSupConNoNaN(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	cases := []struct {
		name   string
		f      [][][]float64
		labels []int
		tau    float64
	}{
		{"V=1 labels, some anchors alone", randUnit(rng, 5, 1, 4), []int{0, 1, 0, 2, 3}, 0.07},
		{"V=1 labels, every anchor alone", randUnit(rng, 3, 1, 4), []int{0, 1, 2}, 0.07},
		{"opposite points, tiny tau", [][][]float64{{{1, 0}, {1, 0}}, {{-1, 0}, {-1, 0}}}, nil, 0.005},
		{"opposite points, tiny tau, labels", [][][]float64{{{1, 0}}, {{-1, 0}}, {{-1, 0}}}, []int{0, 1, 1}, 0.005},
		{"single point", [][][]float64{{{0, 1}}}, []int{4}, 0.1},
	}
	for _, c := range cases {
		for _, mode := range []ContrastMode{ContrastAll, ContrastOne} {
			for _, in := range []bool{false, true} {
				opts := SupConOptions{Temperature: c.tau, Mode: mode}
				fn := func(x, y *graph.Node) *graph.Node { return SupCon(x, y, opts) }
				if in {
					fn = func(x, y *graph.Node) *graph.Node { return SupConIn(x, y, opts) }
				}
				for _, ft := range []*tensors.Tensor{tensor3(c.f), tensor3f32(c.f)} {
					loss, grad := gradOf(t, fn, ft, c.labels)
					bad := math.IsNaN(loss) || math.IsInf(loss, 0)
					for _, g := range grad {
						bad = bad || math.IsNaN(g) || math.IsInf(g, 0)
					}
					if bad {
						t.Fatalf("%s mode=%s in=%v %s: loss %v, grad %v", c.name, mode, in, ft.DType(), loss, grad)
					}
				}
			}
		}
	}
}

// naiveNTXent is SimCLR's loss written as a cross-entropy over 2B anchors, each with one positive
// (its other view) and 2B−2 negatives.
func naiveNTXent(z1, z2 [][]float64, tau float64) float64 {
	b := len(z1)
	all := append(append([][]float64(nil), z1...), z2...)
	dot := func(a, c []float64) float64 {
		var s float64
		for i := range a {
			s += a[i] * c[i]
		}
		return s
	}
	var total float64
	for i := range all {
		p := (i + b) % (2 * b)
		var den float64
		for k := range all {
			if k != i {
				den += math.Exp(dot(all[i], all[k]) / tau)
			}
		}
		total += -math.Log(math.Exp(dot(all[i], all[p])/tau) / den)
	}
	return total / float64(2*b)
}

func TestNTXent(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	f := randUnit(rng, 6, 2, 5)
	z1 := make([][]float64, 6)
	z2 := make([][]float64, 6)
	for i := range f {
		z1[i], z2[i] = f[i][0], f[i][1]
	}
	const tau = 0.2
	got := graph.MustExecOnce(testutil.Backend(), func(a, b *graph.Node) *graph.Node { return NTXent(a, b, tau) },
		tensors.FromValue(z1), tensors.FromValue(z2))
	want := naiveNTXent(z1, z2, tau)
	assertClose(t, "NTXent vs naive", toF64(got), []float64{want}, 1e-12)
	_, sup := runPerAnchor(t, SupConPerAnchor, tensor3(f), nil, SupConOptions{Temperature: tau})
	assertClose(t, "NTXent vs SupCon", toF64(got), []float64{sup}, 1e-12)
}

func TestSupConInEqualsOutWithOnePositive(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	// V = 2, no labels: exactly one positive per anchor.
	f := randUnit(rng, 5, 2, 4)
	for _, mode := range []ContrastMode{ContrastAll, ContrastOne} {
		opts := SupConOptions{Temperature: 0.1, Mode: mode}
		out, _ := runPerAnchor(t, SupConPerAnchor, tensor3(f), nil, opts)
		in, _ := runPerAnchor(t, SupConInPerAnchor, tensor3(f), nil, opts)
		assertClose(t, "L_in vs L_out, one positive", in, out, 1e-12)
	}
	// V = 1 with labels pairing the samples: again one positive each.
	g := randUnit(rng, 4, 1, 4)
	y := []int{0, 1, 1, 0}
	out, _ := runPerAnchor(t, SupConPerAnchor, tensor3(g), y, SupConOptions{Temperature: 0.1})
	in, _ := runPerAnchor(t, SupConInPerAnchor, tensor3(g), y, SupConOptions{Temperature: 0.1})
	assertClose(t, "L_in vs L_out, label pairs", in, out, 1e-12)
	// With several positives they differ (Jensen: L_in ≤ L_out).
	h := randUnit(rng, 4, 3, 4)
	_, lo := runPerAnchor(t, SupConPerAnchor, tensor3(h), nil, SupConOptions{Temperature: 0.1})
	_, li := runPerAnchor(t, SupConInPerAnchor, tensor3(h), nil, SupConOptions{Temperature: 0.1})
	if !(li < lo-1e-9) {
		t.Fatalf("with 2 positives per anchor L_in (%g) should be below L_out (%g)", li, lo)
	}
}

func TestSupConOptionsValidation(t *testing.T) {
	for _, opts := range []SupConOptions{{Temperature: 0}, {Temperature: -1}, {Temperature: 0.1, BaseTemperature: -1},
		{Temperature: 0.1, Mode: ContrastMode(7)}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Fatalf("options %+v: want a panic", opts)
				}
			}()
			opts.scale()
		}()
	}
	if m, err := ParseContrastMode("one"); err != nil || m != ContrastOne || m.String() != "one" {
		t.Fatalf("ParseContrastMode(one) = %v, %v", m, err)
	}
	if _, err := ParseContrastMode("some"); err == nil {
		t.Fatal("ParseContrastMode(some): want an error")
	}
}

func BenchmarkSupCon(b *testing.B) {
	rng := rand.New(rand.NewPCG(17, 18))
	const bs, v, d = 256, 3, 128
	f := tensor3f32(randUnit(rng, bs, v, d))
	exec := graph.MustNewExec(testutil.Backend(), func(x *graph.Node) (*graph.Node, *graph.Node) {
		loss := SupCon(x, nil, SupConOptions{Temperature: 0.5})
		return loss, graph.Gradient(loss, x)[0]
	})
	exec.MustExec(f) // compile outside the timed loop
	b.ResetTimer()
	for b.Loop() {
		outs := exec.MustExec(f)
		for _, o := range outs {
			o.FinalizeAll()
		}
	}
}

func BenchmarkSupConForward(b *testing.B) {
	rng := rand.New(rand.NewPCG(17, 18))
	const bs, v, d = 256, 3, 128
	f := tensor3f32(randUnit(rng, bs, v, d))
	exec := graph.MustNewExec(testutil.Backend(), func(x *graph.Node) *graph.Node {
		return SupCon(x, nil, SupConOptions{Temperature: 0.5})
	})
	exec.MustExec(f)
	b.ResetTimer()
	for b.Loop() {
		exec.MustExec(f)[0].FinalizeAll()
	}
}
