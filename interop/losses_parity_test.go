package interop

import (
	"math"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/distill"
	"github.com/ifa-toolkit/ifa/fit"
	"github.com/ifa-toolkit/ifa/internal/testutil"
	"github.com/ifa-toolkit/ifa/ssl"
)

// headValue is the deterministic value of an ifa head variable by its path (the golden script's
// head_value).
func headValue(path string, shape []int) *tensors.Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	leaf := path[strings.LastIndex(path, "/")+1:]
	out := make([]float32, n)
	for i, u := range detUniform(path, n) {
		var v float64
		switch leaf {
		case "weights":
			v = u * math.Sqrt(3.0/float64(shape[0]))
		case "scale":
			v = 1 + 0.2*u
		default:
			v = 0.1 * u
		}
		out[i] = float32(v)
	}
	return tensors.FromFlatDataAndDimensions(out, shape...)
}

// execOnce runs fn on ctx (training mode) with the inputs.
func execOnce(t *testing.T, ctx *context.Context, fn func(ctx *context.Context, in []*graph.Node) []*graph.Node, inputs ...any) []*tensors.Tensor {
	t.Helper()
	exec, err := context.NewExec(testutil.Backend(), ctx, func(ctx *context.Context, in []*graph.Node) []*graph.Node {
		ctx.SetTraining(in[0].Graph(), true)
		return fn(ctx, in)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer exec.Finalize()
	out, err := exec.Exec(inputs...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestLossParityWithPyTorch: KD, SupCon (with labels) and IFACD (its heads with deterministic
// weights) on the golden inputs give PyTorch's losses and gradients.
func TestLossParityWithPyTorch(t *testing.T) {
	g := loadGolden(t, "losses.safetensors")
	in := func(k string) *tensors.Tensor { return goldenTensor(t, g, k) }

	out := execOnce(t, context.New(), func(ctx *context.Context, x []*graph.Node) []*graph.Node {
		loss := distill.KDLoss(x[0], x[1], 4)
		return []*graph.Node{graph.Reshape(loss, 1), graph.Gradient(loss, x[0])[0]}
	}, in("kd.student"), in("kd.teacher"))
	compare(t, g, "kd.loss", out[0])
	compare(t, g, "kd.grad", out[1])

	out = execOnce(t, context.New(), func(ctx *context.Context, x []*graph.Node) []*graph.Node {
		loss := ssl.SupCon(ssl.L2Normalize(x[0]), x[1], ssl.SupConOptions{Temperature: 0.07, BaseTemperature: 0.07, Mode: ssl.ContrastAll})
		return []*graph.Node{graph.Reshape(loss, 1), graph.Gradient(loss, x[0])[0]}
	}, in("supcon.features"), in("supcon.labels"))
	compare(t, g, "supcon.loss", out[0])
	compare(t, g, "supcon.grad", out[1])

	// IFACD with feature width 16 and the last 2 of 3 teacher taps (the default ifacd2).
	ctx := context.New()
	ctx.SetParam(distill.ParamIFACDFeatDim, 16)
	ifacd := func(ctx *context.Context, x []*graph.Node) []*graph.Node {
		s := backbone.Features{Pooled: x[0]}
		tf := backbone.Features{TapVectors: x[1:]}
		loss := distill.IFACD{}.Loss(ctx, s, tf, distill.Step{})
		return []*graph.Node{graph.Reshape(loss, 1), graph.Gradient(loss, x[0])[0]}
	}
	args := []any{in("ifacd.student"), in("ifacd.tap.0"), in("ifacd.tap.1"), in("ifacd.tap.2")}
	execOnce(t, ctx, ifacd, args...) // creates the heads
	n := 0
	for v := range ctx.IterVariables() {
		if v.Trainable {
			if err := v.SetValue(headValue(v.ScopeAndName(), v.Shape().Dimensions)); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	if n != 4*4 { // proj_s, rescaler_01, rescaler_02, proj_t: weights, biases, scale, offset
		t.Fatalf("%d head variables, want 16", n)
	}
	out = execOnce(t, ctx.Reuse(), ifacd, args...)
	compare(t, g, "ifacd.loss", out[0])
	compare(t, g, "ifacd.grad.student", out[1])
}

// TestSGDParityWithPyTorch: two steps of SGD with momentum 0.9, Nesterov and weight decay 5e-4
// give torch.optim.SGD's parameters.
func TestSGDParityWithPyTorch(t *testing.T) {
	g := loadGolden(t, "losses.safetensors")
	ctx := context.New()
	w := ctx.VariableWithValue("w", goldenTensor(t, g, "sgd.w0"))
	b := ctx.VariableWithValue("b", goldenTensor(t, g, "sgd.b0"))
	opt := fit.Optimizer{Kind: fit.OptimizerSGD, Momentum: 0.9, Nesterov: true, WeightDecay: 5e-4, DecayBiasAndNorm: true}
	step := func(ctx *context.Context, x []*graph.Node) []*graph.Node {
		gr := x[0].Graph()
		logits := graph.Add(graph.MatMul(x[0], w.ValueGraph(gr)), graph.Reshape(b.ValueGraph(gr), 1, 3))
		loss := crossEntropy(logits, x[1])
		return []*graph.Node{opt.Update(ctx, loss, graph.Scalar(gr, dtypes.Float64, 0.1), 0, []*context.Variable{b, w})}
	}
	exec, err := context.NewExec(testutil.Backend(), ctx, step)
	if err != nil {
		t.Fatal(err)
	}
	defer exec.Finalize()
	for _, s := range []string{"1", "2"} {
		if _, err := exec.Exec(goldenTensor(t, g, "sgd.x"), goldenTensor(t, g, "sgd.y")); err != nil {
			t.Fatal(err)
		}
		wv, _ := w.Value()
		bv, _ := b.Value()
		compare(t, g, "sgd.w"+s, wv)
		compare(t, g, "sgd.b"+s, bv)
	}
}
