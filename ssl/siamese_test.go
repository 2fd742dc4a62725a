package ssl

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/internal/testutil"
)

// Naive float64 transcriptions of METHODS.md §10.1–10.5. online[l][v][i] is the prediction of
// layer l, crop v, image i; targets[g][i] the target of global crop g, image i.

func naiveCos(p, t []float64) float64 {
	var pt, pp, tt float64
	for k := range p {
		pt += p[k] * t[k]
		pp += p[k] * p[k]
		tt += t[k] * t[k]
	}
	return pt / (math.Max(math.Sqrt(pp), 1e-12) * math.Max(math.Sqrt(tt), 1e-12))
}

// naivePairs returns c/(|S|·P) · Σ_{l, v, g≠v} term(l, v, g), P = G(G+M−1).
func naivePairs(online [][][][]float64, targets [][][]float64, c float64, term func(p, t [][]float64) float64) float64 {
	var sum float64
	for _, row := range online {
		for v, p := range row {
			for g, t := range targets {
				if g != v {
					sum += term(p, t)
				}
			}
		}
	}
	return c * sum / float64(len(online)*len(targets)*(len(online[0])-1))
}

func naiveBYOL(online [][][][]float64, targets [][][]float64) float64 {
	return naivePairs(online, targets, 2, func(p, t [][]float64) float64 {
		var s float64
		for i := range p {
			s += 2 - 2*naiveCos(p[i], t[i])
		}
		return s / float64(len(p))
	})
}

func naiveSimSiam(online [][][][]float64, targets [][][]float64) float64 {
	return naivePairs(online, targets, 1, func(p, t [][]float64) float64 {
		var s float64
		for i := range p {
			s -= naiveCos(p[i], t[i])
		}
		return s / float64(len(p))
	})
}

func naiveMoCo(online [][][][]float64, keys [][][]float64, tau float64) float64 {
	return naivePairs(online, keys, 2, func(q, k [][]float64) float64 {
		var s float64
		for i := range q {
			var den float64
			for j := range k {
				den += math.Exp(naiveCos(q[i], k[j]) / tau)
			}
			s += -math.Log(math.Exp(naiveCos(q[i], k[i])/tau) / den)
		}
		return 2 * tau * s / float64(len(q))
	})
}

// pairLossFn is one of BYOLLoss, SimSiamLoss, MoCoV3Loss (τ bound).
type pairLossFn func(online [][]*graph.Node, targets []*graph.Node) *graph.Node

// runPairLoss evaluates fn on the test backend in float64 and returns the loss and its gradient
// with respect to every online value (flattened [l][v][i][d]).
func runPairLoss(t *testing.T, fn pairLossFn, online [][][][]float64, targets [][][]float64) (float64, []float64) {
	t.Helper()
	ns, nv, b, d := len(online), len(online[0]), len(online[0][0]), len(online[0][0][0])
	var flatO, flatT []float64
	for _, row := range online {
		for _, p := range row {
			for _, x := range p {
				flatO = append(flatO, x...)
			}
		}
	}
	for _, tg := range targets {
		for _, x := range tg {
			flatT = append(flatT, x...)
		}
	}
	outs := graph.MustExecOnceN(testutil.Backend(), func(o, tg *graph.Node) (*graph.Node, *graph.Node) {
		var on [][]*graph.Node
		for l := range ns {
			var row []*graph.Node
			for v := range nv {
				row = append(row, graph.Reshape(graph.Slice(o, graph.AxisElem(l), graph.AxisElem(v)), b, d))
			}
			on = append(on, row)
		}
		var ts []*graph.Node
		for g := range len(targets) {
			ts = append(ts, graph.Reshape(graph.Slice(tg, graph.AxisElem(g)), b, d))
		}
		loss := fn(on, ts)
		return loss, graph.Gradient(loss, o)[0]
	}, tensors.FromFlatDataAndDimensions(flatO, ns, nv, b, d), tensors.FromFlatDataAndDimensions(flatT, len(targets), b, d))
	return toF64(outs[0])[0], toF64(outs[1])
}

// worked is METHODS.md §10.5's worked example: B = 2, D = 3, S = {1, 2}.
var (
	workedP = [][][][]float64{
		{{{1, 0, 0}, {0, 1, 1}}, {{1, 1, 0}, {1, 0, 1}}},  // l = 1: view a, view b
		{{{2, 1, 0}, {0, 0, 3}}, {{0, 2, 1}, {1, -1, 2}}}, // l = 2
	}
	workedT = [][][]float64{{{1, 0, 1}, {0, 2, 1}}, {{2, 1, 1}, {0, 1, 1}}} // EMA targets, a and b
	workedZ = [][][]float64{{{1, 2, 0}, {0, 0, 1}}, {{1, 0, 0}, {1, 1, 1}}} // online z_L (lwsimsiam)
)

func mocoFn(tau float64) pairLossFn {
	return func(o [][]*graph.Node, k []*graph.Node) *graph.Node { return MoCoV3Loss(o, k, tau) }
}

// The layer-wise definitions on the worked example of METHODS.md §10.5, and S = {L} giving the
// base methods' values.
func TestLayerwiseWorkedExample(t *testing.T) {
	last := workedP[1:]
	cases := []struct {
		name   string
		fn     pairLossFn
		online [][][][]float64
		tg     [][][]float64
		want   float64
	}{
		{"lwbyol", BYOLLoss, workedP, workedT, 1.7155350883383869},
		{"byol", BYOLLoss, last, workedT, 2.0637945236213375},
		{"lwmocov3", mocoFn(0.2), workedP, workedT, 1.2706172095779014},
		{"mocov3", mocoFn(0.2), last, workedT, 1.6092279355624737},
		{"lwmocov3_layer1", mocoFn(0.2), workedP[:1], workedT, 0.9320064835933289},
		{"lwsimsiam", SimSiamLoss, workedP, workedZ, -0.8200700876602569},
		{"simsiam", SimSiamLoss, last, workedZ, -0.772068510279317},
	}
	for _, c := range cases {
		got, _ := runPairLoss(t, c.fn, c.online, c.tg)
		if math.Abs(got-c.want) > 1e-12 {
			t.Errorf("%s: %.17g, want %.17g", c.name, got, c.want)
		}
	}
	// The per-term values of the lwbyol table: layer 1, a→b, image 2 is 0 (same direction); layer 2,
	// b→a, image 2 is 2 (orthogonal).
	if c := naiveCos(workedP[0][0][1], workedT[1][1]); math.Abs(2-2*c) > 1e-15 {
		t.Errorf("l=1 a→b image 2: %g, want 0", 2-2*c)
	}
	if c := naiveCos(workedP[1][1][1], workedT[0][1]); math.Abs(2-2*c-2) > 1e-15 {
		t.Errorf("l=2 b→a image 2: %g, want 2", 2-2*c)
	}
}

func randRows(rng *rand.Rand, b, d int) [][]float64 {
	out := make([][]float64, b)
	for i := range out {
		out[i] = make([]float64, d)
		for k := range out[i] {
			out[i][k] = rng.NormFloat64()
		}
	}
	return out
}

// Each loss against its float64 reference with random inputs (several layers, multi-crop), and
// its gradient against central differences of the reference.
func TestPredictorLossesMatchNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	type naiveFn func(o [][][][]float64, tg [][][]float64) float64
	losses := []struct {
		name  string
		fn    pairLossFn
		naive naiveFn
	}{
		{"byol", BYOLLoss, naiveBYOL},
		{"simsiam", SimSiamLoss, naiveSimSiam},
		{"mocov3", mocoFn(0.2), func(o [][][][]float64, k [][][]float64) float64 { return naiveMoCo(o, k, 0.2) }},
		{"mocov3_tau1", mocoFn(1), func(o [][][][]float64, k [][][]float64) float64 { return naiveMoCo(o, k, 1) }},
	}
	for _, shape := range []struct{ layers, crops, b, d int }{{1, 2, 4, 3}, {3, 2, 3, 5}, {2, 5, 4, 4}} {
		online := make([][][][]float64, shape.layers)
		for l := range online {
			for range shape.crops {
				online[l] = append(online[l], randRows(rng, shape.b, shape.d))
			}
		}
		targets := [][][]float64{randRows(rng, shape.b, shape.d), randRows(rng, shape.b, shape.d)}
		for _, c := range losses {
			name := fmt.Sprintf("%s/S=%d/crops=%d", c.name, shape.layers, shape.crops)
			got, grad := runPairLoss(t, c.fn, online, targets)
			want := c.naive(online, targets)
			if math.Abs(got-want) > 1e-12*(1+math.Abs(want)) {
				t.Errorf("%s: %.17g, want %.17g", name, got, want)
			}
			// Central differences on a few coordinates.
			k := 0
			for l := range online {
				for v := range online[l] {
					for i := range online[l][v] {
						for j := range online[l][v][i] {
							if k%3 == 0 {
								x := online[l][v][i][j]
								const h = 1e-6
								online[l][v][i][j] = x + h
								up := c.naive(online, targets)
								online[l][v][i][j] = x - h
								down := c.naive(online, targets)
								online[l][v][i][j] = x
								if num := (up - down) / (2 * h); math.Abs(num-grad[k]) > 1e-6 {
									t.Errorf("%s: ∂L/∂online[%d][%d][%d][%d] = %g, numeric %g", name, l, v, i, j, grad[k], num)
								}
							}
							k++
						}
					}
				}
			}
		}
	}
}

// Closed forms: identical directions give BYOL 0 and SimSiam −1; orthogonal ones give BYOL 2 per
// pair; MoCo v3 with orthonormal queries and keys (q_i·k_j = δ_ij) gives
// 2·2τ·(−1/τ + log(e^{1/τ} + B − 1)) for the two directions.
func TestPredictorLossClosedForms(t *testing.T) {
	p := [][]float64{{1, 0, 0}, {0, 2, 0}, {0, 0, 3}}
	same := [][]float64{{2, 0, 0}, {0, 1, 0}, {0, 0, 1}}
	orth := [][]float64{{0, 1, 0}, {0, 0, 1}, {1, 0, 0}}
	one := [][][][]float64{{p, p}}
	if got, _ := runPairLoss(t, BYOLLoss, one, [][][]float64{same, same}); math.Abs(got) > 1e-15 {
		t.Errorf("BYOL identical: %g, want 0", got)
	}
	if got, _ := runPairLoss(t, BYOLLoss, one, [][][]float64{orth, orth}); math.Abs(got-4) > 1e-15 {
		t.Errorf("BYOL orthogonal: %g, want 4 (2 per direction)", got)
	}
	if got, _ := runPairLoss(t, SimSiamLoss, one, [][][]float64{same, same}); math.Abs(got+1) > 1e-15 {
		t.Errorf("SimSiam identical: %g, want -1", got)
	}
	tau := 0.2
	want := 2 * 2 * tau * (-1/tau + math.Log(math.Exp(1/tau)+2))
	if got, _ := runPairLoss(t, mocoFn(tau), one, [][][]float64{same, same}); math.Abs(got-want) > 1e-12 {
		t.Errorf("MoCo v3 orthonormal: %.17g, want %.17g", got, want)
	}
}

// With S = {L}, each layer-wise variant is its base method to the last bit (same variables, same
// graph); and only the selected layers get gradient, never the targets.
func TestLayerwiseIdentityAndGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	images := randImages(rng, 6, 2, 2, 2, 1)
	widths := []int{5, 5, 5, 5}
	enc := toyEncoder(widths)
	small := HeadConfig{Layers: 2, Hidden: 8, Out: 4, Norm: NormBatch, Act: ActReLU, SkipLastNorm: true}
	for _, pair := range [][2]Method{{"byol", "lwbyol"}, {"simsiam", "lwsimsiam"}, {"mocov3", "lwmocov3"}} {
		base := PretrainConfig{Method: pair[0], Projector: small, Predictor: small}
		lw := base
		lw.Method = pair[1]
		lw.Layers = backbone.LayerSelect{Indices: []int{-1}}
		ctx := context.New()
		exec, err := context.NewExec(testutil.Backend(), ctx, func(ctx *context.Context, x *graph.Node) (*graph.Node, *graph.Node) {
			ctx.SetTraining(x.Graph(), true)
			a := PretrainLoss(ctx, enc, base, x, nil).Loss
			b := PretrainLoss(ctx.Reuse(), enc, lw, x, nil).Loss
			return a, b
		})
		if err != nil {
			t.Fatal(err)
		}
		outs, err := exec.Exec(images)
		if err != nil {
			t.Fatal(err)
		}
		a, b := toF64(outs[0])[0], toF64(outs[1])[0]
		if a != b || math.IsNaN(a) {
			t.Errorf("%s %v != %s %v with S = {L}", pair[0], a, pair[1], b)
		}

		for _, detach := range []bool{false, true} {
			cfg := lw
			cfg.Layers = backbone.LayerSelect{Indices: []int{1, -1}}
			cfg.DetachIntermediate = detach
			_, loss, grads := pretrainGrads(t, context.New(), enc, cfg, images, nil)
			if math.IsNaN(loss) {
				t.Fatalf("%s: NaN loss", cfg.Method)
			}
			for l := range widths {
				g := grads[fmt.Sprintf("/encoder/layer_%d/w", l)]
				want := l == 3 || (l == 1 && !detach)
				if want && !(g > 1e-9) {
					t.Errorf("%s detach=%v: layer %d gradient %g, want > 0", cfg.Method, detach, l, g)
				}
				if !want && g != 0 {
					t.Errorf("%s detach=%v: layer %d gradient %g, want exactly 0", cfg.Method, detach, l, g)
				}
			}
			for name, g := range grads {
				if strings.HasPrefix(name, "/target_") {
					t.Errorf("%s: target variable %s is trainable (gradient %g)", cfg.Method, name, g)
				}
				if (strings.HasPrefix(name, "/predictor/") || strings.HasPrefix(name, "/projector/")) && strings.HasSuffix(name, "weights") && !(g > 0) {
					t.Errorf("%s: head %s gets no gradient", cfg.Method, name)
				}
			}
		}
	}
}

// The momentum methods declare their target scopes; the targets mirror the online variables.
func TestMomentumTargetsMirrorOnline(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	images := randImages(rng, 4, 2, 2, 2, 1)
	for _, m := range Methods() {
		ctx := context.New()
		cfg := PretrainConfig{Method: m, Projector: HeadConfig{Layers: 2, Hidden: 6, Out: 4, Norm: NormBatch, Act: ActReLU}}
		var lbl *tensors.Tensor
		if m.NeedsLabels() {
			lbl = tensors.FromFlatDataAndDimensions([]int32{0, 1, 0, 1}, 4)
		}
		x := images
		if m.Augmentations() == 1 {
			x = randImages(rng, 4, 2, 2, 1)
		}
		pretrainGrads(t, ctx, toyEncoder([]int{3, 3, 3}), cfg, x, lbl)
		pairs := m.Targets()
		if (len(pairs) > 0) != strings.Contains("byol lwbyol mocov3 lwmocov3", string(m)) {
			t.Errorf("%s: targets %v", m, pairs)
		}
		for _, p := range pairs {
			n := 0
			for v := range ctx.IterVariables() {
				if rel, ok := strings.CutPrefix(v.Scope(), "/"+p.Online); ok && (rel == "" || rel[0] == '/') {
					tv := ctx.InspectVariableIfLoaded("/"+p.Target+rel, v.Name())
					if tv == nil || !tv.Shape().Equal(v.Shape()) || tv.Trainable {
						t.Errorf("%s: %s has no non-trainable target of its shape (%v)", m, v.ScopeAndName(), tv)
					}
					n++
				}
			}
			if n == 0 {
				t.Errorf("%s: no variables under %s", m, p.Online)
			}
		}
	}
}
