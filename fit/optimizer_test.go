package fit

import (
	"math"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/internal/testutil"
)

// quadParam is one parameter of the closed-form test loss L = Σ c⊙p + ½‖p‖², whose gradient is
// c + p.
type quadParam struct {
	name  string
	init  []float64
	shape []int
	c     []float64
}

var quadParams = []quadParam{
	{name: "weights", init: []float64{0.5, -1, 2, 0.25, -0.75, 1.5}, shape: []int{3, 2}, c: []float64{0.3, -0.2, 0.1, 0.7, -0.4, 0.05}},
	{name: "biases", init: []float64{0.2, -0.3}, shape: []int{2}, c: []float64{-0.5, 0.6}},
}

// runQuad runs len(lrs) optimiser steps on the quadratic loss and returns the final parameter
// values (float64) by name, and the gradient norms before clipping.
func runQuad(t *testing.T, opt Optimizer, clip float64, lrs []float64) (map[string][]float64, []float64) {
	t.Helper()
	ctx := context.New()
	step := func(ctx *context.Context, lr *graph.Node) *graph.Node {
		g := lr.Graph()
		var loss *graph.Node
		for _, qp := range quadParams {
			init := make([]float32, len(qp.init))
			for i, x := range qp.init {
				init[i] = float32(x)
			}
			v := ctx.In("model").Checked(false).VariableWithValue(qp.name, tensors.FromFlatDataAndDimensions(init, qp.shape...))
			p := v.ValueGraph(g)
			c32 := make([]float32, len(qp.c))
			for i, x := range qp.c {
				c32[i] = float32(x)
			}
			c := graph.Const(g, tensors.FromFlatDataAndDimensions(c32, qp.shape...))
			l := graph.Add(graph.ReduceAllSum(graph.Mul(c, p)), graph.MulScalar(graph.ReduceAllSum(graph.Square(p)), 0.5))
			if loss == nil {
				loss = l
			} else {
				loss = graph.Add(loss, l)
			}
		}
		return opt.Update(ctx, loss, lr, clip, TrainableVariables(ctx, g))
	}
	exec, err := context.NewExec(testutil.Backend(), ctx, step)
	if err != nil {
		t.Fatal(err)
	}
	var norms []float64
	for _, lr := range lrs {
		out, err := exec.Exec(lr)
		if err != nil {
			t.Fatal(err)
		}
		norms = append(norms, tensors.ToScalar[float64](out[0]))
	}
	res := map[string][]float64{}
	for _, qp := range quadParams {
		v := ctx.GetVariableByScopeAndName("/model", qp.name)
		vals := tensors.MustCopyFlatData[float32](v.MustValue())
		f := make([]float64, len(vals))
		for i, x := range vals {
			f[i] = float64(x)
		}
		res[qp.name] = f
	}
	return res, norms
}

// refQuad is the float64 reference of the same steps, written from the PyTorch formulas.
func refQuad(opt Optimizer, clip float64, lrs []float64) (map[string][]float64, []float64) {
	p := map[string][]float64{}
	buf := map[string][]float64{}
	m := map[string][]float64{}
	v := map[string][]float64{}
	for _, qp := range quadParams {
		p[qp.name] = append([]float64(nil), qp.init...)
		buf[qp.name] = make([]float64, len(qp.init))
		m[qp.name] = make([]float64, len(qp.init))
		v[qp.name] = make([]float64, len(qp.init))
	}
	b1, b2, eps := opt.adamParams()
	var norms []float64
	for t, lr := range lrs {
		grads := map[string][]float64{}
		sq := 0.0
		for _, qp := range quadParams {
			gr := make([]float64, len(qp.init))
			for i := range gr {
				gr[i] = qp.c[i] + p[qp.name][i]
				sq += gr[i] * gr[i]
			}
			grads[qp.name] = gr
		}
		norm := math.Sqrt(sq)
		norms = append(norms, norm)
		coef := 1.0
		if clip > 0 {
			coef = math.Min(1, clip/(norm+1e-6))
		}
		for _, qp := range quadParams {
			decays := opt.WeightDecay > 0 && (opt.DecayBiasAndNorm || len(qp.shape) > 1)
			for i := range qp.init {
				gr := grads[qp.name][i] * coef
				x := p[qp.name][i]
				switch opt.Kind {
				case OptimizerSGD:
					d := gr
					if decays {
						d += opt.WeightDecay * x
					}
					if opt.Momentum != 0 {
						buf[qp.name][i] = opt.Momentum*buf[qp.name][i] + d
						if opt.Nesterov {
							d += opt.Momentum * buf[qp.name][i]
						} else {
							d = buf[qp.name][i]
						}
					}
					p[qp.name][i] = x - lr*d
				case OptimizerAdamW:
					if decays {
						x *= 1 - lr*opt.WeightDecay
					}
					m[qp.name][i] = b1*m[qp.name][i] + (1-b1)*gr
					v[qp.name][i] = b2*v[qp.name][i] + (1-b2)*gr*gr
					bc1 := 1 - math.Pow(b1, float64(t+1))
					bc2 := 1 - math.Pow(b2, float64(t+1))
					denom := math.Sqrt(v[qp.name][i])/math.Sqrt(bc2) + eps
					p[qp.name][i] = x - lr/bc1*m[qp.name][i]/denom
				}
			}
		}
	}
	return p, norms
}

func TestOptimizerStepsMatchReference(t *testing.T) {
	lrs := []float64{0.1, 0.05, 0.2}
	cases := []struct {
		name string
		opt  Optimizer
		clip float64
	}{
		{"sgd_plain", Optimizer{Kind: OptimizerSGD}, 0},
		{"sgd_momentum", Optimizer{Kind: OptimizerSGD, Momentum: 0.9}, 0},
		{"sgd_momentum_wd_all", Optimizer{Kind: OptimizerSGD, Momentum: 0.9, WeightDecay: 5e-2, DecayBiasAndNorm: true}, 0},
		{"sgd_nesterov_wd_all", Optimizer{Kind: OptimizerSGD, Momentum: 0.9, Nesterov: true, WeightDecay: 5e-2, DecayBiasAndNorm: true}, 0},
		{"sgd_nesterov_wd_exclude", Optimizer{Kind: OptimizerSGD, Momentum: 0.9, Nesterov: true, WeightDecay: 5e-2}, 0},
		{"sgd_nesterov_clip", Optimizer{Kind: OptimizerSGD, Momentum: 0.9, Nesterov: true}, 0.5},
		{"adamw", Optimizer{Kind: OptimizerAdamW}, 0},
		{"adamw_wd_all", Optimizer{Kind: OptimizerAdamW, WeightDecay: 0.3, DecayBiasAndNorm: true}, 0},
		{"adamw_wd_exclude", Optimizer{Kind: OptimizerAdamW, WeightDecay: 0.3, Beta1: 0.8, Beta2: 0.95, Epsilon: 1e-6}, 0},
		{"adamw_clip", Optimizer{Kind: OptimizerAdamW, WeightDecay: 0.3}, 1.0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, gotNorms := runQuad(t, tc.opt, tc.clip, lrs)
			want, wantNorms := refQuad(tc.opt, tc.clip, lrs)
			for name, w := range want {
				for i := range w {
					if d := math.Abs(got[name][i] - w[i]); d > 1e-5*(1+math.Abs(w[i])) {
						t.Errorf("%s[%d] = %.8g, want %.8g (diff %.3g)", name, i, got[name][i], w[i], d)
					}
				}
			}
			for i := range wantNorms {
				if d := math.Abs(gotNorms[i] - wantNorms[i]); d > 1e-5*wantNorms[i] {
					t.Errorf("grad norm at step %d = %.8g, want %.8g", i, gotNorms[i], wantNorms[i])
				}
			}
		})
	}
}

// The exclusion rule must change the result: a run with decay excluded differs from decay on all
// exactly in the 1-D parameter.
func TestWeightDecayExclusionRule(t *testing.T) {
	lrs := []float64{0.1, 0.1}
	all, _ := runQuad(t, Optimizer{Kind: OptimizerSGD, Momentum: 0.9, WeightDecay: 0.1, DecayBiasAndNorm: true}, 0, lrs)
	excl, _ := runQuad(t, Optimizer{Kind: OptimizerSGD, Momentum: 0.9, WeightDecay: 0.1}, 0, lrs)
	none, _ := runQuad(t, Optimizer{Kind: OptimizerSGD, Momentum: 0.9}, 0, lrs)
	for i := range all["weights"] {
		if all["weights"][i] != excl["weights"][i] {
			t.Errorf("weights[%d]: decay-all %v != exclude %v: the 2-D weights must be decayed by both", i, all["weights"][i], excl["weights"][i])
		}
	}
	for i := range none["biases"] {
		if excl["biases"][i] != none["biases"][i] {
			t.Errorf("biases[%d]: exclude %v != no-decay %v: biases must get no decay", i, excl["biases"][i], none["biases"][i])
		}
		if all["biases"][i] == none["biases"][i] {
			t.Errorf("biases[%d]: decay-all left the bias as without decay", i)
		}
	}
}

// Clipping: with a threshold below the gradient norm, plain SGD moves by exactly lr·clip in
// gradient direction (up to the 1e-6 of the formula).
func TestGradientClippingClosedForm(t *testing.T) {
	got, norms := runQuad(t, Optimizer{Kind: OptimizerSGD}, 0.1, []float64{1})
	scale := 0.1 / (norms[0] + 1e-6)
	moved := 0.0
	for _, qp := range quadParams {
		for i := range qp.init {
			gr := qp.c[i] + qp.init[i]
			want := qp.init[i] - scale*gr
			if d := math.Abs(got[qp.name][i] - want); d > 1e-6 {
				t.Errorf("%s[%d] = %v, want %v", qp.name, i, got[qp.name][i], want)
			}
			moved += (got[qp.name][i] - qp.init[i]) * (got[qp.name][i] - qp.init[i])
		}
	}
	if d := math.Abs(math.Sqrt(moved) - 0.1); d > 1e-5 {
		t.Errorf("clipped step length %v, want 0.1", math.Sqrt(moved))
	}
	if norms[0] < 1 {
		t.Fatalf("test premise: gradient norm %v should exceed the clip threshold", norms[0])
	}
}
