package cnn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/internal/nn"
	"github.com/ifa-toolkit/ifa/internal/testutil"
)

// randomInput returns a deterministic batch [B, H, W, C] as float32 (for the graph) and float64.
func randomInput(rng *rand.Rand, b, h, w, c int) ([]float32, map4) {
	m := newMap4(b, h, w, c)
	f := make([]float32, len(m.d))
	for i := range f {
		f[i] = float32(rng.NormFloat64())
		m.d[i] = float64(f[i])
	}
	return f, m
}

// randomiseState gives BN parameters, running statistics and biases non-trivial values so the
// reference comparison exercises them.
func randomiseState(t *testing.T, ctx *context.Context, rng *rand.Rand) {
	t.Helper()
	for v := range ctx.IterVariables() {
		lo, hi := 0.0, 0.0
		switch v.Name() {
		case "scale":
			lo, hi = 0.5, 1.5
		case "offset", "biases":
			lo, hi = -0.5, 0.5
		case "running_mean":
			lo, hi = -0.3, 0.3
		case "running_var":
			lo, hi = 0.5, 2
		default:
			continue
		}
		data := make([]float32, v.Shape().Size())
		for i := range data {
			data[i] = float32(lo + (hi-lo)*rng.Float64())
		}
		if err := v.SetValue(tensors.FromFlatDataAndDimensions(data, v.Shape().Dimensions...)); err != nil {
			t.Fatal(err)
		}
	}
}

func closeTo(t *testing.T, what string, got []float32, want []float64) {
	t.Helper()
	closeToRel(t, what, got, want, 1e-4)
}

// closeToRel compares float32 results with a float64 reference at a tolerance of rel times the
// reference's largest magnitude (at least rel).
func closeToRel(t *testing.T, what string, got []float32, want []float64, rel float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	scale := 0.0
	for _, w := range want {
		scale = math.Max(scale, math.Abs(w))
	}
	tol := rel * math.Max(scale, 1)
	for i := range got {
		if d := math.Abs(float64(got[i]) - want[i]); d > tol || math.IsNaN(float64(got[i])) {
			t.Fatalf("%s[%d] = %v, reference %v (|diff| %.3g > tol %.3g)", what, i, got[i], want[i], d, tol)
		}
	}
}

func flatRows(rows [][]float64) []float64 { return slices.Concat(rows...) }

// TestModelsMatchNaiveReference runs small members of each family in training (batch statistics)
// and evaluation (running statistics) mode and compares every output with the float64 reference.
func TestModelsMatchNaiveReference(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		in   MapShape
	}{
		{"resnet8_narrow", ResNetConfig{Depth: 8, Widths: [4]int{3, 4, 5, 6}}, MapShape{7, 7, 2}},
		{"resnet14_narrow", ResNetConfig{Depth: 14, Widths: [4]int{4, 4, 5, 6}}, MapShape{8, 8, 3}},
		{"wrn_16_1", WRNConfig{Depth: 16, Widen: 1}, MapShape{6, 6, 1}},
		{"wrn_10_2", WRNConfig{Depth: 10, Widen: 2}, MapShape{5, 5, 3}},
		{"vgg_narrow", VGGConfig{Groups: [5][]int{{3}, {4, 4}, {5}, {6, 3}, {6}}}, MapShape{9, 9, 3}},
		{"vgg_narrow_64px", VGGConfig{Groups: [5][]int{{2}, {2}, {3}, {3}, {3, 2}}}, MapShape{64, 64, 1}},
		{"mobilenetv2_narrow", MobileNetV2Config{Expansion: 2, WidthMult: 0.25}, MapShape{17, 17, 3}},
		{"resnet_bottleneck_narrow", BottleneckResNetConfig{Blocks: [4]int{1, 2, 1, 2}, Width: 2}, MapShape{9, 9, 2}},
		{"shufflev1_narrow", ShuffleNetV1Config{Stem: 12, Outputs: [3]int{24, 48, 96}, Blocks: [3]int{2, 1, 2}, Groups: 3}, MapShape{11, 11, 3}},
		{"shufflev2_narrow", ShuffleNetV2Config{Stem: 4, Widths: [4]int{8, 12, 16, 20}, Blocks: [3]int{1, 2, 2}}, MapShape{9, 9, 2}},
	}
	for _, c := range cases {
		for _, train := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/train=%v", c.name, train), func(t *testing.T) {
				spec, err := NewSpec(c.name, c.cfg)
				if err != nil {
					t.Fatal(err)
				}
				const batch, classes = 3, 7
				rng := rand.New(rand.NewPCG(11, 17))
				ctx := context.New()
				ctx.SetParam(context.ParamInitialSeed, int64(5))
				exec, err := context.NewExec(testutil.Backend(), ctx, func(ctx *context.Context, images *graph.Node) []*graph.Node {
					ctx.SetTraining(images.Graph(), train)
					return featureOutputs(spec.Build(ctx, images, classes))
				})
				if err != nil {
					t.Fatal(err)
				}
				defer exec.Finalize()
				in32, in64 := randomInput(rng, batch, c.in.H, c.in.W, c.in.C)
				input := tensors.FromFlatDataAndDimensions(in32, batch, c.in.H, c.in.W, c.in.C)
				if _, err := exec.Exec(input); err != nil { // initialises the variables
					t.Fatal(err)
				}
				randomiseState(t, ctx, rng)
				r := varReader{t: t, ctx: ctx}
				want := naiveModel(t, r, c.cfg, in64, train)
				outs, err := exec.Exec(input)
				if err != nil {
					t.Fatal(err)
				}
				got := func(i int) []float32 { return tensors.MustCopyFlatData[float32](outs[i]) }
				// Training-mode batch norm over 2 images normalises by statistics of very few values
				// in the deep, small-map layers, which amplifies float32 rounding (and its dependence
				// on the kernels' summation order) about tenfold; structural errors are O(1).
				rel := 1e-4
				if train {
					rel = 1e-3
				}
				closeTo := func(t *testing.T, what string, got []float32, want []float64) {
					t.Helper()
					closeToRel(t, what, got, want, rel)
				}
				k := 0
				closeTo(t, "logits", got(k), flatRows(want.logits))
				k++
				closeTo(t, "pooled", got(k), flatRows(want.pooled))
				k++
				for _, group := range []struct {
					name string
					maps []map4
				}{{"stages", want.stages}, {"preact", want.preactStages}, {"taps", want.taps}} {
					for i, m := range group.maps {
						if d := outs[k].Shape().Dimensions; !slices.Equal(d, []int{m.b, m.h, m.w, m.c}) {
							t.Fatalf("%s[%d]: shape %v, want %v", group.name, i, d, []int{m.b, m.h, m.w, m.c})
						}
						closeTo(t, fmt.Sprintf("%s[%d]", group.name, i), got(k), m.d)
						k++
					}
				}
				for i, m := range want.taps {
					closeTo(t, fmt.Sprintf("tap_vectors[%d]", i), got(k), flatRows(naiveGAP(m)))
					k++
				}
				if k != len(outs) {
					t.Fatalf("%d outputs, compared %d", len(outs), k)
				}
			})
		}
	}
}

// TestConv2DMatchesNaive checks the conv helper against the naive convolution for strides, padding,
// dilation and bias on odd sizes.
func TestConv2DMatchesNaive(t *testing.T) {
	cases := []ConvOptions{
		{Out: 4, Kernel: 3, Padding: 1},
		{Out: 4, Kernel: 3, Stride: 2, Padding: 1, Bias: true},
		{Out: 3, Kernel: 1, Stride: 2},
		{Out: 2, Kernel: 3, Dilation: 2, Padding: 2, Bias: true},
		{Out: 5, Kernel: 2, Stride: 3},
		{Out: 6, Kernel: 3, Stride: 2, Padding: 1, Groups: 3},
		{Out: 3, Kernel: 3, Padding: 1, Groups: 3},
	}
	for _, opts := range cases {
		t.Run(fmt.Sprintf("%+v", opts), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			const b, h, w, cin = 2, 7, 6, 3
			ctx := context.New()
			// Pre-existing variables keep their values: random weights and biases.
			groups := max(opts.Groups, 1)
			wv, w64 := randomInput(rng, opts.Kernel, opts.Kernel, cin/groups, opts.Out)
			ctx.In("conv").VariableWithValue(weightsName, tensors.FromFlatDataAndDimensions(wv, opts.Kernel, opts.Kernel, cin/groups, opts.Out))
			var bias []float64
			if opts.Bias {
				bv, b64 := randomInput(rng, 1, 1, 1, opts.Out)
				ctx.In("conv").VariableWithValue(biasesName, tensors.FromFlatDataAndDimensions(bv, opts.Out))
				bias = b64.d
			}
			x32, x64 := randomInput(rng, b, h, w, cin)
			out, err := context.ExecOnce(testutil.Backend(), ctx, func(ctx *context.Context, x *graph.Node) *graph.Node {
				return Conv2D(ctx.In("conv").Checked(false), x, opts)
			}, tensors.FromFlatDataAndDimensions(x32, b, h, w, cin))
			if err != nil {
				t.Fatal(err)
			}
			want := naiveGroupConv(x64, w64.d, opts.Kernel, opts.Out, bias, max(opts.Stride, 1), opts.Padding, max(opts.Dilation, 1), groups)
			if d := out.Shape().Dimensions; !slices.Equal(d, []int{want.b, want.h, want.w, want.c}) {
				t.Fatalf("shape %v, want %v", d, []int{want.b, want.h, want.w, want.c})
			}
			closeTo(t, "conv", tensors.MustCopyFlatData[float32](out), want.d)
		})
	}
}

// moments returns the mean and standard deviation of v.
func moments(v []float64) (mean, std float64) {
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	for _, x := range v {
		std += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(std / float64(len(v)))
}

// initialised builds and runs the registered model once so its variables hold their initial values.
func initialised(t *testing.T, name string, in MapShape) varReader {
	t.Helper()
	spec, err := Get(name)
	if err != nil {
		t.Fatal(err)
	}
	return initialisedSpec(t, spec, in)
}

// initialisedSpec is initialised for any spec.
func initialisedSpec(t *testing.T, spec Spec, in MapShape) varReader {
	t.Helper()
	ctx := context.New()
	ctx.SetParam(context.ParamInitialSeed, int64(9))
	_, err := context.ExecOnce(testutil.Backend(), ctx, func(ctx *context.Context, x *graph.Node) *graph.Node {
		return spec.Build(ctx, x, 100).Logits
	}, tensors.FromShape(shapeOf(1, in.H, in.W, in.C)))
	if err != nil {
		t.Fatal(err)
	}
	return varReader{t: t, ctx: ctx}
}

// TestInitialisation checks the reference initialisation statistics (METHODS.md §4.1 Init).
func TestInitialisation(t *testing.T) {
	checkNormal := func(t *testing.T, what string, v []float64, std float64) {
		t.Helper()
		m, s := moments(v)
		// Relative standard error of a sample std is about 1/√(2n).
		if tol := 4 / math.Sqrt(2*float64(len(v))); math.Abs(s/std-1) > tol || math.Abs(m) > 4*std/math.Sqrt(float64(len(v))) {
			t.Errorf("%s: mean %.4g std %.4g, want N(0, %.4g²) (n=%d)", what, m, s, std, len(v))
		}
	}
	checkUniform := func(t *testing.T, what string, v []float64, bound float64) {
		t.Helper()
		for _, x := range v {
			if math.Abs(x) > bound {
				t.Fatalf("%s: %v outside ±%v", what, x, bound)
			}
		}
		checkNormal(t, what, v, bound/math.Sqrt(3))
	}
	checkConst := func(t *testing.T, what string, v []float64, c float64) {
		t.Helper()
		for _, x := range v {
			if x != c {
				t.Fatalf("%s: %v, want all %v", what, x, c)
			}
		}
	}
	checkBNs := func(t *testing.T, r varReader) {
		n := 0
		for v := range r.ctx.IterVariables() {
			want := map[string]float64{"scale": 1, "offset": 0, "running_mean": 0, "running_var": 1}
			if c, ok := want[v.Name()]; ok {
				checkConst(t, v.ScopeAndName(), r.get(v.Scope(), v.Name()), c)
				n++
			}
		}
		if n == 0 {
			t.Error("no batch-norm variables found")
		}
	}
	t.Run("resnet", func(t *testing.T) {
		r := initialised(t, "resnet8", MapShape{8, 8, 3})
		checkNormal(t, "stage_3 conv_2", r.get("/stage_3/block_0/conv_2", "weights"), math.Sqrt(2.0/(9*64)))
		checkNormal(t, "stage_3 shortcut", r.get("/stage_3/block_0/shortcut/conv", "weights"), math.Sqrt(2.0/64))
		checkUniform(t, "fc weights", r.get("/fc", "weights"), 1/math.Sqrt(64))
		checkUniform(t, "fc biases", r.get("/fc", "biases"), 1/math.Sqrt(64))
		checkBNs(t, r)
	})
	t.Run("wrn", func(t *testing.T) {
		r := initialised(t, "wrn_16_2", MapShape{8, 8, 3})
		checkNormal(t, "stage_3 conv_2", r.get("/stage_3/block_1/conv_2", "weights"), math.Sqrt(2.0/(9*128)))
		checkUniform(t, "fc weights", r.get("/fc", "weights"), 1/math.Sqrt(128))
		checkConst(t, "fc biases", r.get("/fc", "biases"), 0)
		checkBNs(t, r)
	})
	t.Run("vgg", func(t *testing.T) {
		r := initialised(t, "vgg8", MapShape{8, 8, 3})
		checkNormal(t, "group_3 conv", r.get("/group_3/conv_0", "weights"), math.Sqrt(2.0/(9*512)))
		checkConst(t, "group_3 conv biases", r.get("/group_3/conv_0", "biases"), 0)
		checkNormal(t, "fc weights", r.get("/fc", "weights"), 0.01)
		checkConst(t, "fc biases", r.get("/fc", "biases"), 0)
		checkBNs(t, r)
	})
	t.Run("resnet_bottleneck", func(t *testing.T) {
		// ResNet50's rules at a quarter of its width (initialising 23.7M parameters takes seconds).
		spec, err := NewSpec("resnet50_quarter", BottleneckResNetConfig{Blocks: [4]int{3, 4, 6, 3}, Width: 16})
		if err != nil {
			t.Fatal(err)
		}
		r := initialisedSpec(t, spec, MapShape{8, 8, 3})
		checkNormal(t, "stage_4 conv_2", r.get("/stage_4/block_2/conv_2", "weights"), math.Sqrt(2.0/(9*128)))
		checkNormal(t, "stage_4 conv_3", r.get("/stage_4/block_2/conv_3", "weights"), math.Sqrt(2.0/512))
		checkNormal(t, "stage_2 shortcut", r.get("/stage_2/block_0/shortcut/conv", "weights"), math.Sqrt(2.0/128))
		checkUniform(t, "fc weights", r.get("/fc", "weights"), 1/math.Sqrt(512))
		checkUniform(t, "fc biases", r.get("/fc", "biases"), 1/math.Sqrt(512))
		checkBNs(t, r)
	})
	// The ShuffleNets keep PyTorch's default initialisation: U(±1/√fanIn), fanIn = k²·Cin/groups.
	t.Run("shufflev1", func(t *testing.T) {
		r := initialised(t, "shufflev1", MapShape{8, 8, 3})
		checkUniform(t, "grouped conv_3", r.get("/stage_3/block_1/conv_3", "weights"), 1/math.Sqrt(240/3))
		checkUniform(t, "grouped conv_1", r.get("/stage_2/block_3/conv_1", "weights"), 1/math.Sqrt(480/3))
		checkUniform(t, "depthwise conv_2", r.get("/stage_3/block_1/conv_2", "weights"), 1/math.Sqrt(9))
		checkUniform(t, "fc weights", r.get("/fc", "weights"), 1/math.Sqrt(960))
		checkUniform(t, "fc biases", r.get("/fc", "biases"), 1/math.Sqrt(960))
		checkBNs(t, r)
	})
	t.Run("shufflev2", func(t *testing.T) {
		r := initialised(t, "shufflev2", MapShape{8, 8, 3})
		checkUniform(t, "head conv", r.get("/head/conv", "weights"), 1/math.Sqrt(464))
		checkUniform(t, "conv_1", r.get("/stage_3/block_2/conv_1", "weights"), 1/math.Sqrt(232))
		checkUniform(t, "depthwise conv_4", r.get("/stage_2/block_0/conv_4", "weights"), 1/math.Sqrt(9))
		checkUniform(t, "fc weights", r.get("/fc", "weights"), 1/math.Sqrt(1024))
		checkBNs(t, r)
	})
	t.Run("mobilenetv2", func(t *testing.T) {
		r := initialised(t, "mobilenetv2", MapShape{8, 8, 3})
		checkNormal(t, "depthwise conv", r.get("/stage_5/block_2/depthwise/conv", "weights"), math.Sqrt(2.0/(9*480)))
		checkNormal(t, "head conv", r.get("/head/conv", "weights"), math.Sqrt(2.0/1280))
		checkNormal(t, "fc weights", r.get("/fc", "weights"), 0.01)
		checkConst(t, "fc biases", r.get("/fc", "biases"), 0)
		checkBNs(t, r)
	})
}

// TestFrozenScope checks that a model built under a frozen scope keeps its running statistics in a
// training graph while an unfrozen one updates them.
func TestFrozenScope(t *testing.T) {
	spec, err := Get("resnet8")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.New()
	ctx.SetParam(context.ParamInitialSeed, int64(2))
	ctx.In("teacher").SetParam(nn.FrozenParam, true)
	rng := rand.New(rand.NewPCG(1, 2))
	x32, _ := randomInput(rng, 2, 8, 8, 3)
	_, err = context.ExecOnce(testutil.Backend(), ctx, func(ctx *context.Context, x *graph.Node) *graph.Node {
		ctx.SetTraining(x.Graph(), true)
		return graph.Add(spec.Build(ctx.In("teacher"), x, 10).Logits, spec.Build(ctx.In("student"), x, 10).Logits)
	}, tensors.FromFlatDataAndDimensions(x32, 2, 8, 8, 3))
	if err != nil {
		t.Fatal(err)
	}
	r := varReader{t: t, ctx: ctx}
	for _, who := range []string{"teacher", "student"} {
		mean := r.get("/"+who+"/stem/bn", "running_mean")
		changed := slices.ContainsFunc(mean, func(v float64) bool { return v != 0 })
		if frozen := strings.HasPrefix(who, "teacher"); changed == frozen {
			t.Errorf("%s: running mean changed=%v, frozen=%v", who, changed, frozen)
		}
	}
}
