package cnn

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/internal/testutil"
)

// TestGradientsMatchFiniteDifferences checks, for a small member of each family in training mode,
// the gradient of L = Σ w ⊙ logits with respect to a conv kernel — and, in the "deep" cases, to the
// images — against central finite differences of the float64 reference.
//
// A convolution's backward pass needs the Reverse op, which GoMLX simplego v0.26 lacks: on such a
// backend the conv cases are skipped; the classifier cases need no such op and always run (they
// check the harness itself).
func TestGradientsMatchFiniteDifferences(t *testing.T) {
	resnet := ResNetConfig{Depth: 8, Widths: [4]int{2, 3, 3, 4}}
	wrn := WRNConfig{Depth: 10, Widen: 1}
	vgg := VGGConfig{Groups: [5][]int{{2}, {3, 2}, {3}, {3}, {4}}}
	bottleneck := BottleneckResNetConfig{Blocks: [4]int{1, 1, 1, 2}, Width: 1}
	shuffleV1 := ShuffleNetV1Config{Stem: 12, Outputs: [3]int{24, 36, 60}, Blocks: [3]int{2, 1, 1}, Groups: 3}
	shuffleV2 := ShuffleNetV2Config{Stem: 3, Widths: [4]int{4, 6, 8, 5}, Blocks: [3]int{1, 1, 1}}
	cases := []struct {
		name string
		cfg  Config
		in   MapShape
		conv string // scope of the weights checked
		deep bool   // also the images' gradient, through every layer
	}{
		{"resnet8_narrow/fc", resnet, MapShape{5, 5, 2}, "/fc", false},
		{"wrn_10_1/fc", wrn, MapShape{4, 4, 1}, "/fc", false},
		{"vgg_narrow/fc", vgg, MapShape{8, 8, 2}, "/fc", false},
		{"resnet8_narrow/last_conv", resnet, MapShape{5, 5, 2}, "/stage_3/block_0/conv_2", false},
		{"wrn_10_1/last_conv", wrn, MapShape{4, 4, 1}, "/stage_3/block_0/conv_2", false},
		{"vgg_narrow/last_conv", vgg, MapShape{8, 8, 2}, "/group_4/conv_0", false},
		{"resnet8_narrow/deep", resnet, MapShape{5, 5, 2}, "/stage_2/block_0/conv_1", true},
		{"wrn_10_1/deep", wrn, MapShape{4, 4, 1}, "/stage_2/block_0/shortcut/conv", true},
		{"vgg_narrow/deep", vgg, MapShape{8, 8, 2}, "/group_1/conv_0", true},
		{"bottleneck_narrow/fc", bottleneck, MapShape{5, 5, 2}, "/fc", false},
		{"bottleneck_narrow/last_conv", bottleneck, MapShape{5, 5, 2}, "/stage_4/block_1/conv_3", false},
		{"bottleneck_narrow/deep", bottleneck, MapShape{5, 5, 2}, "/stage_2/block_0/conv_2", true},
		{"shufflev1_narrow/deep", shuffleV1, MapShape{5, 5, 2}, "/stage_1/block_1/conv_1", true},
		{"shufflev2_narrow/deep", shuffleV2, MapShape{5, 5, 2}, "/stage_2/block_1/conv_1", true},
		// The depthwise convolutions: the basic block's (stride 1) and the down-sampling block's
		// (stride 2).
		{"shufflev2_narrow/depthwise", shuffleV2, MapShape{5, 5, 2}, "/stage_2/block_1/conv_2", false},
		{"shufflev2_narrow/depthwise_stride2", shuffleV2, MapShape{5, 5, 2}, "/stage_2/block_0/conv_4", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec, err := NewSpec(c.name, c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			const batch, classes = 2, 3
			rng := rand.New(rand.NewPCG(21, 22))
			ctx := context.New()
			ctx.SetParam(context.ParamInitialSeed, int64(3))
			x32, x64 := randomInput(rng, batch, c.in.H, c.in.W, c.in.C)
			w32, w64 := randomInput(rng, batch, 1, 1, classes)
			outs, err := context.ExecOnceN(testutil.Backend(), ctx, func(ctx *context.Context, x, w *graph.Node) []*graph.Node {
				g := x.Graph()
				ctx.SetTraining(g, true)
				f := spec.Build(ctx, x, classes)
				loss := graph.ReduceAllSum(graph.Mul(f.Logits, graph.Reshape(w, batch, classes)))
				kernel := ctx.GetVariableByScopeAndName(c.conv, weightsName).ValueGraph(g)
				if !c.deep {
					return graph.Gradient(loss, kernel)
				}
				return graph.Gradient(loss, kernel, x)
			}, tensors.FromFlatDataAndDimensions(x32, batch, c.in.H, c.in.W, c.in.C),
				tensors.FromFlatDataAndDimensions(w32, batch, 1, 1, classes))
			if err != nil {
				if c.conv != "/fc" && strings.Contains(err.Error(), "not implemented") {
					t.Skipf("backend lacks an op the backward pass needs: %v", err)
				}
				t.Fatal(err)
			}
			r := varReader{t: t, ctx: ctx, override: map[string][]float64{}}
			kernel := r.get(c.conv, weightsName)
			loss := func(x map4) float64 {
				f := naiveModel(t, r, c.cfg, x, true)
				l := 0.0
				for n, row := range f.logits {
					for k, v := range row {
						l += v * w64.d[n*classes+k]
					}
				}
				return l
			}
			const h = 1e-5
			// numeric returns finite differences at up to 48 evenly spread entries of v (NaN elsewhere,
			// which gradClose skips): the reference forward is slow for wide kernels.
			numeric := func(v []float64) []float64 {
				out := make([]float64, len(v))
				step := max(1, len(v)/48)
				for i := range out {
					out[i] = math.NaN()
				}
				for i := 0; i < len(v); i += step {
					old := v[i]
					v[i] = old + h
					up := loss(x64)
					v[i] = old - h
					down := loss(x64)
					v[i] = old
					out[i] = (up - down) / (2 * h)
				}
				return out
			}
			r.override[c.conv+"/"+weightsName] = kernel
			gradClose(t, "dL/dkernel "+c.conv, tensors.MustCopyFlatData[float32](outs[0]), numeric(kernel))
			if c.deep {
				gradClose(t, "dL/dimages", tensors.MustCopyFlatData[float32](outs[1]), numeric(x64.d))
			}
		})
	}
}

// gradClose compares gradients with a tolerance relative to the largest reference entry; NaN
// reference entries are not checked.
func gradClose(t *testing.T, what string, got []float32, want []float64) {
	t.Helper()
	scale := 0.0
	for _, w := range want {
		if !math.IsNaN(w) {
			scale = math.Max(scale, math.Abs(w))
		}
	}
	if scale == 0 {
		t.Fatalf("%s: reference gradient is all zero", what)
	}
	for i := range got {
		if math.IsNaN(want[i]) {
			continue
		}
		if d := math.Abs(float64(got[i]) - want[i]); !(d <= 2e-3*scale) {
			t.Fatalf("%s[%d] = %v, finite differences %v (|diff| %.3g, scale %.3g)", what, i, got[i], want[i], d, scale)
		}
	}
}
