package ssl

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/internal/testutil"
)

// toyEncoder has L independent layers: tap_l = tanh(flatten(images)·W_l), W_l in "layer_<l>" with
// widths[l] outputs. Independence makes the gradient reaching each layer's weights show which views
// pass gradient to the encoder.
func toyEncoder(widths []int) EncoderFn {
	return func(ctx *context.Context, images *graph.Node) backbone.Features {
		b := images.Shape().Dim(0)
		x := graph.Reshape(images, b, -1)
		var f backbone.Features
		for l, w := range widths {
			wt := ctx.In(fmt.Sprintf("layer_%d", l)).VariableWithShape("w", shapes.Make(x.DType(), x.Shape().Dim(1), w)).ValueGraph(images.Graph())
			f.TapVectors = append(f.TapVectors, graph.Tanh(graph.MatMul(x, wt)))
		}
		f.Pooled = f.TapVectors[len(f.TapVectors)-1]
		return f
	}
}

// pretrainGrads builds the loss on images and returns the embeddings' shape, the loss and the
// gradient norm of every trainable variable, by scope/name.
func pretrainGrads(t *testing.T, ctx *context.Context, enc EncoderFn, cfg PretrainConfig, images, labels *tensors.Tensor) ([]int, float64, map[string]float64) {
	t.Helper()
	var names []string
	var dims []int
	fn := func(ctx *context.Context, in []*graph.Node) []*graph.Node {
		ctx.SetTraining(in[0].Graph(), true)
		var lbl *graph.Node
		if len(in) > 1 {
			lbl = in[1]
		}
		out := PretrainLoss(ctx, enc, cfg, in[0], lbl)
		dims = out.Embeddings.Shape().Dimensions
		res := []*graph.Node{out.Loss}
		for v := range ctx.IterVariables() {
			if !v.Trainable {
				continue
			}
			names = append(names, v.ScopeAndName())
			gr := graph.Gradient(out.Loss, v.ValueGraph(in[0].Graph()))[0]
			res = append(res, graph.Sqrt(graph.ReduceAllSum(graph.Square(gr))))
		}
		return res
	}
	args := []any{images}
	if labels != nil {
		args = append(args, labels)
	}
	exec, err := context.NewExec(testutil.Backend(), ctx, fn)
	if err != nil {
		t.Fatal(err)
	}
	outs, err := exec.Exec(args...)
	if err != nil {
		t.Fatal(err)
	}
	norms := map[string]float64{}
	for i, n := range names {
		norms[n] = toF64(outs[i+1])[0]
	}
	return dims, toF64(outs[0])[0], norms
}

func randImages(rng *rand.Rand, dims ...int) *tensors.Tensor { return randTensor(rng, dims...) }

func TestLWCLRGradientOnlyThroughLastLayer(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	images := randImages(rng, 6, 2, 2, 1)
	widths := []int{5, 5, 5, 5}
	for _, k := range []int{2, 3, 4} {
		for _, interGrad := range []bool{false, true} {
			name := fmt.Sprintf("last:%d/intermediate_grad=%v", k, interGrad)
			t.Run(name, func(t *testing.T) {
				cfg := DefaultPretrainConfig()
				cfg.Layers = backbone.LayerSelect{Last: k}
				cfg.Projector = IFACLRProjector(8, 4)
				cfg.IntermediateGradient = interGrad
				dims, loss, grads := pretrainGrads(t, context.New(), toyEncoder(widths), cfg, images, nil)
				if dims[0] != 6 || dims[1] != k || dims[2] != 4 {
					t.Fatalf("embeddings %v, want [6, %d, 4] (views = k)", dims, k)
				}
				if !(loss > 0) || math.IsInf(loss, 0) {
					t.Fatalf("loss %v", loss)
				}
				for l := range widths {
					g := grads[fmt.Sprintf("/encoder/layer_%d/w", l)]
					inViews := l >= len(widths)-k
					wantGrad := l == len(widths)-1 || (interGrad && inViews)
					if wantGrad && !(g > 1e-8) {
						t.Errorf("layer %d: gradient norm %g, want > 0", l, g)
					}
					if !wantGrad && g != 0 {
						t.Errorf("layer %d: gradient norm %g, want exactly 0 (stop-gradient or not a view)", l, g)
					}
				}
				// The shared projector trains from every view.
				for name, g := range grads {
					if strings.HasPrefix(name, "/projector/") && !(g > 0) {
						t.Errorf("%s: gradient norm %g, want > 0", name, g)
					}
				}
			})
		}
	}
}

func TestPretrainViewCounts(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	two := randImages(rng, 4, 2, 2, 2, 1)
	labels := tensors.FromFlatDataAndDimensions([]int32{0, 1, 0, 1}, 4)
	widths := []int{3, 3, 3}
	cases := []struct {
		method Method
		layers string
		views  int
	}{
		{MethodSimLWCLR, "last:2", 3},
		{MethodSimLWCLR, "all", 4},
		{MethodSimCLR, "all", 2},
		{MethodSupCon, "last:2", 2},
	}
	for _, c := range cases {
		cfg := DefaultPretrainConfig()
		cfg.Method = c.method
		cfg.Layers, _ = backbone.ParseLayerSelect(c.layers)
		cfg.Projector = IFACLRProjector(4, 4)
		var lbl *tensors.Tensor
		if c.method.NeedsLabels() {
			lbl = labels
		}
		dims, loss, grads := pretrainGrads(t, context.New(), toyEncoder(widths), cfg, two, lbl)
		if dims[1] != c.views {
			t.Errorf("%s %s: %d views, want %d", c.method, c.layers, dims[1], c.views)
		}
		if !(loss > 0) {
			t.Errorf("%s: loss %v", c.method, loss)
		}
		if g := grads["/encoder/layer_2/w"]; !(g > 0) {
			t.Errorf("%s: last layer gradient %g", c.method, g)
		}
	}
}

// TestPretrainLossMatchesNaive checks the wiring numerically: with a linear projector and no norm,
// the loss equals SupCon (float64 reference, written from the formula in supcon_test.go) of the
// L2-normalised projected views, with the rescaler applied to the narrower layer.
func TestPretrainLossMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const b, pix = 5, 4
	images := randImages(rng, b, 2, 2, 1)
	widths := []int{3, 4, 4}
	cfg := DefaultPretrainConfig()
	cfg.Layers = backbone.LayerSelect{All: true}
	cfg.Projector = HeadConfig{Layers: 1, Out: 3, Norm: NormNone}
	cfg.Rescaler = HeadConfig{Layers: 1, Norm: NormNone}
	cfg.Temperature = 0.3
	ctx := context.New()
	_, loss, _ := pretrainGrads(t, ctx, toyEncoder(widths), cfg, images, nil)
	if ctx.GetVariableByScopeAndName("/rescaler_00/fc_0", "weights") == nil || ctx.GetVariableByScopeAndName("/rescaler_01/fc_0", "weights") != nil {
		t.Fatalf("want a rescaler for layer 0 (width 3) only")
	}

	x := toF64(images)
	linear := func(in []float64, scope string, out int) []float64 {
		w, bias := varValue(t, ctx, scope, "weights"), varValue(t, ctx, scope, "biases")
		nIn := len(w) / out
		y := make([]float64, out)
		for j := range out {
			y[j] = bias[j]
			for i := range nIn {
				y[j] += in[i] * w[i*out+j]
			}
		}
		return y
	}
	tap := func(s, l int) []float64 {
		w := varValue(t, ctx, fmt.Sprintf("/encoder/layer_%d", l), "w")
		out := make([]float64, widths[l])
		for j := range out {
			for i := range pix {
				out[j] += x[s*pix+i] * w[i*widths[l]+j]
			}
			out[j] = math.Tanh(out[j])
		}
		return out
	}
	order := []int{2, 0, 1} // the last layer first, then the others in forward order
	f := make([][][]float64, b)
	for s := range b {
		for _, l := range order {
			v := tap(s, l)
			if widths[l] != widths[2] {
				v = linear(v, "/rescaler_00/fc_0", widths[2])
			}
			z := linear(v, "/projector/fc_0", 3)
			var n float64
			for _, e := range z {
				n += e * e
			}
			n = math.Sqrt(n)
			for i := range z {
				z[i] /= n
			}
			f[s] = append(f[s], z)
		}
	}
	_, want := naiveSupCon(f, nil, 0.3, 0.3, ContrastAll, false)
	if math.Abs(loss-want) > 1e-9*math.Max(1, math.Abs(want)) {
		t.Fatalf("loss %.12g, naive %.12g", loss, want)
	}
}

func TestPretrainConfigErrors(t *testing.T) {
	if _, err := ParseMethod("nope"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("ParseMethod(nope): %v", err)
	}
	cfg := DefaultPretrainConfig()
	cfg.Temperature = -1
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "temperature") {
		t.Fatalf("temperature -1: %v", err)
	}
	cfg.Temperature = 0 // the method's default
	if err := cfg.Validate(); err != nil || cfg.WithDefaults().Temperature != DefaultTemperature {
		t.Fatalf("temperature 0: %v, default %g", err, cfg.WithDefaults().Temperature)
	}
	cfg = DefaultPretrainConfig()
	cfg.Layers = backbone.LayerSelect{Last: 1}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "last:2") {
		t.Fatalf("lwclr last:1: %v", err)
	}
	cfg = DefaultPretrainConfig()
	cfg.Projector.Layers = 4
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "projector") {
		t.Fatalf("projector with 4 layers: %v", err)
	}
	if MethodLWCLR.Augmentations() != 1 || MethodSimCLR.Augmentations() != 2 || !MethodSupCon.NeedsLabels() {
		t.Fatal("method properties")
	}
}
