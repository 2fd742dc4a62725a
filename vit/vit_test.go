package vit

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/internal/nn"
	"github.com/ifa-toolkit/ifa/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// tiny is a small configuration the naive reference can run quickly.
func tiny() Config {
	return Config{Name: "tiny", Dim: 8, MLPDim: 12, Heads: 2, Depth: 2, Patch: 2, ImageHeight: 4, ImageWidth: 6,
		Channels: 3, NumClasses: 5, LayerNormEps: 1e-6, Pooling: PoolCLS}
}

// hostFeatures are an encoder's outputs on the host: taps, vectors, pooled vector, logits.
type hostFeatures struct {
	taps, vectors []*tensors.Tensor
	pooled        *tensors.Tensor
	logits        *tensors.Tensor
}

// runFeatures runs the ViT and returns its outputs on the host.
func runFeatures(t *testing.T, ctx *context.Context, m *Model, images *tensors.Tensor, training bool) hostFeatures {
	t.Helper()
	return runEncoder(t, ctx, m.Features, m.Config().Depth, images, training)
}

// runEncoder runs an encoder with depth layers (a ViT's or a Mixer's Features) and returns its
// outputs on the host.
func runEncoder(t *testing.T, ctx *context.Context, features func(*context.Context, *graph.Node) backbone.Features,
	depth int, images *tensors.Tensor, training bool) hostFeatures {
	t.Helper()
	if ctx.NumVariables() > 0 {
		ctx = ctx.Reuse()
	}
	exec := context.MustNewExec(testutil.Backend(), ctx, func(ctx *context.Context, x *graph.Node) []*graph.Node {
		ctx.SetTraining(x.Graph(), training)
		f := features(ctx, x)
		out := append([]*graph.Node{}, f.Taps...)
		out = append(out, f.TapVectors...)
		out = append(out, f.Pooled)
		if f.Logits != nil {
			out = append(out, f.Logits)
		}
		return out
	})
	res, err := exec.Exec(images)
	if err != nil {
		t.Fatal(err)
	}
	h := hostFeatures{taps: res[:depth], vectors: res[depth : 2*depth], pooled: res[2*depth]}
	if len(res) > 2*depth+1 {
		h.logits = res[2*depth+1]
	}
	return h
}

// randomizeVariables replaces every variable with N(0, 0.5²) values so that gains, offsets and
// biases are all exercised by the reference comparison.
func randomizeVariables(t *testing.T, ctx *context.Context, r *rand.Rand) {
	for v := range ctx.IterVariables() {
		if v.DType() != dtypes.Float32 {
			continue
		}
		x := tensors.FromFlatDataAndDimensions(toF32(randSlice(r, v.Shape().Size(), 0.5)), v.Shape().Dimensions...)
		if err := v.SetValue(x); err != nil {
			t.Fatal(err)
		}
	}
}

func newCtx() *context.Context {
	ctx := context.New()
	ctx.SetParam(context.ParamInitialSeed, int64(7))
	return ctx
}

func TestForwardMatchesNaiveReference(t *testing.T) {
	for _, pooling := range []Pooling{PoolCLS, PoolMean} {
		t.Run(string(pooling), func(t *testing.T) {
			c := tiny().WithPooling(pooling)
			m, err := New(c)
			if err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(1, 2))
			const b = 2
			imgs := randSlice(r, b*c.ImageHeight*c.ImageWidth*c.Channels, 1)
			images := tensors.FromFlatDataAndDimensions(toF32(imgs), b, c.ImageHeight, c.ImageWidth, c.Channels)
			ctx := newCtx()
			runFeatures(t, ctx, m, images, false) // creates and initialises the variables
			randomizeVariables(t, ctx, r)
			got := runFeatures(t, ctx, m, images, false)

			per := c.ImageHeight * c.ImageWidth * c.Channels
			tol := 2e-4
			for i := range b {
				ref := refForward(t, ctx, c, imgs[i*per:(i+1)*per])
				for l := range c.Depth {
					tap := toF64(t, got.taps[l])
					if want := []int{b, c.NumTokens(), c.Dim}; !got.taps[l].Shape().Equal(shapes.Make(dtypes.Float32, want...)) {
						t.Fatalf("tap %d shape %s, want %v", l, got.taps[l].Shape(), want)
					}
					n := c.NumTokens() * c.Dim
					var flat []float64
					for _, tok := range ref.taps[l] {
						flat = append(flat, tok...)
					}
					if diff := maxAbsDiff(tap[i*n:(i+1)*n], flat); diff > tol*scale(flat) {
						t.Errorf("image %d tap %d: max diff %g", i, l, diff)
					}
					vec := toF64(t, got.vectors[l])[i*c.Dim : (i+1)*c.Dim]
					if diff := maxAbsDiff(vec, ref.vectors[l]); diff > tol*scale(ref.vectors[l]) {
						t.Errorf("image %d vector %d: max diff %g", i, l, diff)
					}
				}
				pooled := toF64(t, got.pooled)[i*c.Dim : (i+1)*c.Dim]
				if diff := maxAbsDiff(pooled, ref.vectors[c.Depth-1]); diff > tol*scale(pooled) {
					t.Errorf("image %d pooled: max diff %g", i, diff)
				}
				logits := toF64(t, got.logits)[i*c.NumClasses : (i+1)*c.NumClasses]
				if diff := maxAbsDiff(logits, ref.logits); diff > tol*scale(ref.logits) {
					t.Errorf("image %d logits: max diff %g (%v vs %v)", i, diff, logits, ref.logits)
				}
			}
		})
	}
}

// scale is max(1, max |x|), for relative tolerances.
func scale(x []float64) float64 {
	s := 1.0
	for _, v := range x {
		s = max(s, math.Abs(v))
	}
	return s
}

func TestAttentionMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct{ b, tq, s, d, heads int }{{2, 5, 5, 8, 2}, {1, 3, 7, 12, 3}, {2, 4, 4, 6, 1}} {
		q, k, v := randSlice(r, tc.b*tc.tq*tc.d, 1.5), randSlice(r, tc.b*tc.s*tc.d, 1.5), randSlice(r, tc.b*tc.s*tc.d, 1)
		got, err := graph.ExecOnce(testutil.Backend(), func(q, k, v *graph.Node) *graph.Node {
			return nn.Attention(q, k, v, tc.heads)
		}, tensors.FromFlatDataAndDimensions(q, tc.b, tc.tq, tc.d), tensors.FromFlatDataAndDimensions(k, tc.b, tc.s, tc.d),
			tensors.FromFlatDataAndDimensions(v, tc.b, tc.s, tc.d))
		if err != nil {
			t.Fatal(err)
		}
		gotF := tensors.MustCopyFlatData[float64](got)
		rows := func(x []float64, bi, n int) [][]float64 {
			out := make([][]float64, n)
			for i := range out {
				out[i] = x[(bi*n+i)*tc.d : (bi*n+i+1)*tc.d]
			}
			return out
		}
		for bi := range tc.b {
			ref := refAttention(rows(q, bi, tc.tq), rows(k, bi, tc.s), rows(v, bi, tc.s), tc.heads)
			for i := range ref {
				if diff := maxAbsDiff(gotF[(bi*tc.tq+i)*tc.d:(bi*tc.tq+i+1)*tc.d], ref[i]); diff > 1e-12 {
					t.Errorf("%+v: batch %d query %d: max diff %g", tc, bi, i, diff)
				}
			}
		}
	}
}

// TestAttentionScaleClosedForm: with one head, identical keys give uniform weights, and two keys
// whose logits differ by √d·c give weights softmax(c, 0), which checks the 1/√d_h scaling.
func TestAttentionScaleClosedForm(t *testing.T) {
	const d = 4
	q := []float64{1, 1, 1, 1}
	k := []float64{1, 1, 1, 1, 0, 0, 0, 0} // q·k0 = 4, q·k1 = 0: scaled logits 4/√4 = 2 and 0
	v := []float64{1, 0, 0, 0, 0, 1, 0, 0}
	got, err := graph.ExecOnce(testutil.Backend(), func(q, k, v *graph.Node) *graph.Node {
		return nn.Attention(q, k, v, 1)
	}, tensors.FromFlatDataAndDimensions(q, 1, 1, d), tensors.FromFlatDataAndDimensions(k, 1, 2, d),
		tensors.FromFlatDataAndDimensions(v, 1, 2, d))
	if err != nil {
		t.Fatal(err)
	}
	w0 := math.Exp(2) / (math.Exp(2) + 1)
	want := []float64{w0, 1 - w0, 0, 0}
	if diff := maxAbsDiff(tensors.MustCopyFlatData[float64](got), want); diff > 1e-12 {
		t.Errorf("got %v, want %v", tensors.MustCopyFlatData[float64](got), want)
	}
}

func TestGELUAndNormalize(t *testing.T) {
	xs := []float64{-4, -1.5, -0.3, 0, 0.2, 1, 3.7}
	got, err := graph.MustNewExec(testutil.Backend(), func(x *graph.Node) []*graph.Node {
		return []*graph.Node{GELU(x), nn.Normalize(graph.Reshape(x, 1, len(xs)), 1e-5)}
	}).Exec(xs)
	if err != nil {
		t.Fatal(err)
	}
	gelu := tensors.MustCopyFlatData[float64](got[0])
	for i, x := range xs {
		if want := refGELU(x); math.Abs(gelu[i]-want) > 1e-12 {
			t.Errorf("GELU(%g) = %g, want %g", x, gelu[i], want)
		}
	}
	ones := make([]float64, len(xs))
	for i := range ones {
		ones[i] = 1
	}
	want := refLayerNorm(xs, ones, make([]float64, len(xs)), 1e-5)
	if diff := maxAbsDiff(tensors.MustCopyFlatData[float64](got[1]), want); diff > 1e-12 {
		t.Errorf("Normalize: max diff %g", diff)
	}
	// Closed form: GELU(0) = 0, GELU(1) = Φ(1) = 0.8413447460685429.
	if math.Abs(gelu[3]) > 0 || math.Abs(gelu[5]-0.8413447460685429) > 1e-12 {
		t.Errorf("GELU(0) = %g, GELU(1) = %g", gelu[3], gelu[5])
	}
}

// buildOnly builds (without compiling or running) the model graph for a batch of 2 images and
// returns the features and the context holding the variables.
func buildOnly(t *testing.T, c Config) (backbone.Features, *context.Context) {
	t.Helper()
	m, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	g := graph.NewGraph(testutil.Backend(), "vit_"+c.Name)
	images := graph.Parameter(g, "images", shapes.Make(dtypes.Float32, 2, c.ImageHeight, c.ImageWidth, c.Channels))
	ctx := context.New()
	return m.Features(ctx, images), ctx
}

func checkShapes(t *testing.T, c Config, f backbone.Features) {
	t.Helper()
	checkEncoderShapes(t, c.Name, c.Depth, c.NumTokens(), c.Dim, c.NumClasses, f)
}

// checkEncoderShapes checks the outputs of an encoder built on 2 images: depth taps [2, tokens, dim]
// with their [2, dim] vectors, Pooled = the last vector, and [2, classes] logits (none for 0 classes).
func checkEncoderShapes(t *testing.T, name string, depth, tokens, dim, classes int, f backbone.Features) {
	t.Helper()
	if len(f.Taps) != depth || len(f.TapVectors) != depth {
		t.Fatalf("%s: %d taps and %d vectors, want %d", name, len(f.Taps), len(f.TapVectors), depth)
	}
	for l := range depth {
		if got, want := f.Taps[l].Shape().Dimensions, []int{2, tokens, dim}; !equalInts(got, want) {
			t.Errorf("%s tap %d: %v, want %v", name, l, got, want)
		}
		if got, want := f.TapVectors[l].Shape().Dimensions, []int{2, dim}; !equalInts(got, want) {
			t.Errorf("%s vector %d: %v, want %v", name, l, got, want)
		}
	}
	if f.Pooled != f.TapVectors[depth-1] {
		t.Errorf("%s: Pooled is not the last layer's vector", name)
	}
	if classes > 0 {
		if f.Logits == nil || !equalInts(f.Logits.Shape().Dimensions, []int{2, classes}) {
			t.Errorf("%s: logits %v, want [2 %d]", name, f.Logits, classes)
		}
	} else if f.Logits != nil {
		t.Errorf("%s: logits without a head", name)
	}
}

func equalInts(a, b []int) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

// TestRegistryBuildsEveryConfig builds the graph of every registered config (and two patch
// variants) and checks the output shapes and that the variables add up to ParamCount.
func TestRegistryBuildsEveryConfig(t *testing.T) {
	var cfgs []Config
	for _, name := range append(Names(), "ti_4", "s_8") {
		c, err := Get(name)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(name, "_") {
			c = c.WithImage(32, 32, 3)
		}
		cfgs = append(cfgs, c, c.WithClasses(10).WithPooling(PoolMean))
	}
	for _, c := range cfgs {
		f, ctx := buildOnly(t, c)
		checkShapes(t, c, f)
		if got := ctx.NumParameters(); got != c.ParamCount() {
			t.Errorf("%s: %d parameters in the context, ParamCount says %d", c, got, c.ParamCount())
		}
	}
}

// TestParamCountKnownValues checks the formula against published counts: timm's
// vit_base_patch16_224 (86,567,656 with a 1000-class head and the final norm) and
// vit_tiny/small_patch16_224 (5,717,416 and 22,050,664).
func TestParamCountKnownValues(t *testing.T) {
	for name, want := range map[string]int{"b_16": 86_567_656, "ti_16": 5_717_416, "s_16": 22_050_664} {
		c, err := Get(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.WithClasses(1000).ParamCount(); got != want {
			t.Errorf("%s: ParamCount %d, want %d", name, got, want)
		}
	}
	c, _ := Get("nano")
	// patch 4·4·1·64+64, cls 64, pos 50·64, 4 blocks of (4·64 + 3·64²+3·64 + 64²+64 + 2·64·128+128+64), norm 128.
	want := 1088 + 64 + 3200 + 4*(256+12480+4160+16384+192) + 128
	if got := c.ParamCount(); got != want {
		t.Errorf("nano: %d, want %d", got, want)
	}
}

// TestScopesGolden pins the variable paths and shapes (the checkpoint format) of nano with a
// 10-class head. Run with -update to rewrite after a deliberate change (which needs a checkpoint
// migration).
func TestScopesGolden(t *testing.T) {
	c, _ := Get("nano")
	_, ctx := buildOnly(t, c.WithClasses(10))
	checkScopesGolden(t, ctx, "scopes_nano.golden", "TestScopesGolden")
}

func TestSharedNormAndMeanPooling(t *testing.T) {
	c := tiny()
	_, ctx := buildOnly(t, c)
	n := 0
	for v := range ctx.IterVariables() {
		if strings.Contains(v.ScopeAndName(), ScopeNorm) {
			n++
		}
	}
	if n != 2 {
		t.Errorf("CLS pooling: %d norm_layer variables, want gain and offset shared by all layers", n)
	}
	_, ctx = buildOnly(t, c.WithPooling(PoolMean))
	for v := range ctx.IterVariables() {
		if strings.Contains(v.ScopeAndName(), ScopeNorm) {
			t.Errorf("mean pooling created %s", v.ScopeAndName())
		}
	}
}

func TestDropoutOnlyWhenTraining(t *testing.T) {
	c := tiny().WithDropout(0.5)
	m, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 6))
	images := tensors.FromFlatDataAndDimensions(toF32(randSlice(r, 2*c.ImageHeight*c.ImageWidth*c.Channels, 1)),
		2, c.ImageHeight, c.ImageWidth, c.Channels)
	ctx := newCtx()
	eval1 := toF64(t, runFeatures(t, ctx, m, images, false).pooled)
	eval2 := toF64(t, runFeatures(t, ctx, m, images, false).pooled)
	if maxAbsDiff(eval1, eval2) != 0 {
		t.Error("evaluation is not deterministic")
	}
	train := toF64(t, runFeatures(t, ctx, m, images, true).pooled)
	if maxAbsDiff(eval1, train) < 1e-6 {
		t.Error("dropout 0.5 had no effect in training mode")
	}
	ctx.SetParam(nn.FrozenParam, true)
	frozen := toF64(t, runFeatures(t, ctx, m, images, true).pooled)
	if maxAbsDiff(eval1, frozen) != 0 {
		t.Error("dropout active in a frozen scope")
	}
}

func TestConfigValidation(t *testing.T) {
	good := tiny()
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]Config{
		"heads":   func() Config { c := good; c.Heads = 3; return c }(),
		"patch":   good.WithPatch(4),
		"image":   good.WithImage(0, 6, 3),
		"dropout": good.WithDropout(1),
		"pooling": good.WithPooling("max"),
		"eps":     func() Config { c := good; c.LayerNormEps = 0; return c }(),
		"classes": good.WithClasses(-1),
		"depth":   func() Config { c := good; c.Depth = 0; return c }(),
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: want a validation error", name)
		}
		if _, err := New(c); err == nil {
			t.Errorf("%s: New accepted an invalid config", name)
		}
	}
	for _, bad := range []string{"xl", "ti_", "ti_x", "ti_0"} {
		if _, err := Get(bad); err == nil {
			t.Errorf("Get(%q): want an error", bad)
		}
	}
	c, err := Get("TI_4")
	if err != nil || c.Patch != 4 || c.Dim != 192 || c.Name != "ti_4" {
		t.Errorf("Get(TI_4) = %+v, %v", c, err)
	}
}

func TestTruncatedNormalInit(t *testing.T) {
	ctx := newCtx()
	got, err := context.ExecOnce(testutil.Backend(), ctx, func(ctx *context.Context, g *graph.Graph) *graph.Node {
		return TruncatedNormal(ctx, InitStd)(g, shapes.Make(dtypes.Float32, 200, 100))
	})
	if err != nil {
		t.Fatal(err)
	}
	x := tensors.MustCopyFlatData[float32](got)
	var sum, sq float64
	for _, v := range x {
		if math.Abs(float64(v)) > 2*InitStd+1e-7 {
			t.Fatalf("value %g outside ±2σ", v)
		}
		sum += float64(v)
		sq += float64(v) * float64(v)
	}
	n := float64(len(x))
	mean, std := sum/n, math.Sqrt(sq/n)
	// The std of N(0,1) truncated at ±2 is 0.8796.
	if math.Abs(mean) > 0.001 || math.Abs(std/InitStd-0.8796) > 0.02 {
		t.Errorf("mean %g, std %g (%.4f σ), want 0 and 0.8796 σ", mean, std, std/InitStd)
	}
}

// truncatedNormalLoop is TruncatedNormal written as its definition reads: a normal draw and 8
// redraws, each a separate ctx.RandomNormal call, every value beyond ±2 replaced by the next draw.
func truncatedNormalLoop(ctx *context.Context, g *graph.Graph, shape shapes.Shape, std float64) *graph.Node {
	x := ctx.RandomNormal(g, shape)
	limit := graph.Scalar(g, shape.DType, truncationSigmas)
	for range truncationDraws - 1 {
		redraw := ctx.RandomNormal(g, shape)
		x = graph.Where(graph.GreaterThan(graph.Abs(x), limit), redraw, x)
	}
	return graph.MulScalar(graph.Clip(x, graph.Neg(limit), limit), std)
}

// TestTruncatedNormalSameBitsAsLoop checks that TruncatedNormal's grouped generator calls give the
// bits of the 18 calls they replace on the cpu backend, and leave the generator where those leave it
// (the next draw is the same): for sizes that fill the generator's blocks and sizes that do not,
// with all 9 draws in one call and split over several (smaller word bounds). The figures of runs
// initialised before the grouping are thereby unchanged.
func TestTruncatedNormalSameBitsAsLoop(t *testing.T) {
	for _, maxWords := range []int{maxDrawWords, 2000, 600} {
		for _, shape := range []shapes.Shape{
			shapes.Make(dtypes.Float32, 200, 100), shapes.Make(dtypes.Float32, 3, 5, 7),
			shapes.Make(dtypes.Float32, 1), shapes.Make(dtypes.Float32, 1, 2, 64),
			shapes.Make(dtypes.Float64, 3, 3), shapes.Make(dtypes.Float64, 4, 6),
		} {
			got := testutil.DrawBits(t, 7, func(ctx *context.Context, g *graph.Graph) *graph.Node {
				return truncatedNormal(ctx, InitStd, maxWords)(g, shape)
			})
			want := testutil.DrawBits(t, 7, func(ctx *context.Context, g *graph.Graph) *graph.Node {
				return truncatedNormalLoop(ctx, g, shape, InitStd)
			})
			if !slices.Equal(got, want) {
				t.Errorf("%s, at most %d words per call: the bits (or the next draw) differ from 18 separate calls'", shape, maxWords)
			}
		}
	}
}

func TestNanoForward(t *testing.T) {
	c, err := Get("nano")
	if err != nil {
		t.Fatal(err)
	}
	c = c.WithClasses(10)
	m, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(9, 9))
	images := tensors.FromFlatDataAndDimensions(toF32(randSlice(r, 2*28*28, 1)), 2, 28, 28, 1)
	got := runFeatures(t, newCtx(), m, images, true)
	if want := []int{2, 50, 64}; !equalInts(got.taps[3].Shape().Dimensions, want) {
		t.Errorf("last tap %v, want %v", got.taps[3].Shape().Dimensions, want)
	}
	if want := []int{2, 10}; !equalInts(got.logits.Shape().Dimensions, want) {
		t.Errorf("logits %v, want %v", got.logits.Shape().Dimensions, want)
	}
	for _, v := range toF64(t, got.logits) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Fatalf("non-finite logits %v", toF64(t, got.logits))
		}
	}
	// The CLS vector goes through a fresh LayerNorm (gain 1, offset 0): zero mean, unit variance.
	vec := toF64(t, got.pooled)[:64]
	var mean, sq float64
	for _, v := range vec {
		mean += v / 64
		sq += v * v / 64
	}
	if math.Abs(mean) > 1e-5 || math.Abs(sq-1) > 1e-3 {
		t.Errorf("pooled CLS vector mean %g, mean square %g, want 0 and 1", mean, sq)
	}
}

// TestGradientFiniteDifferences checks the backward pass through the whole model (float64) against
// central differences of the loss Σ logits·w with respect to a few input pixels.
func TestGradientFiniteDifferences(t *testing.T) {
	c := tiny()
	m, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	checkImageGradient(t, rand.New(rand.NewPCG(11, 12)), [4]int{c.ImageHeight, c.ImageWidth, c.Channels, c.NumClasses},
		[]int{0, 5, 17, 40, -1}, m.Features)
}

// checkImageGradient compares, for a batch of 2 random float64 images of dims [H, W, C] and a model
// with K classes (dims = H, W, C, K) whose variables are then randomised, the gradient of
// L = Σ logits·w with respect to the given pixels (negative: from the end) with central finite
// differences, and checks that every trainable variable gets a non-zero, finite gradient.
func checkImageGradient(t *testing.T, r *rand.Rand, dims [4]int, pixels []int,
	features func(*context.Context, *graph.Node) backbone.Features) {
	t.Helper()
	const b = 2
	h, w, ch, classes := dims[0], dims[1], dims[2], dims[3]
	n := b * h * w * ch
	x := randSlice(r, n, 1)
	wts := randSlice(r, b*classes, 1)
	ctx := newCtx()
	exec := context.MustNewExec(testutil.Backend(), ctx, func(ctx *context.Context, images, weights *graph.Node) []*graph.Node {
		f := features(ctx, images)
		loss := graph.ReduceAllSum(graph.Mul(f.Logits, weights))
		// Every trainable variable must be differentiable on the test backend.
		varGrads := ctx.BuildTrainableVariablesGradientsGraph(loss)
		if len(varGrads) != ctx.NumVariables() {
			t.Errorf("%d variable gradients for %d variables", len(varGrads), ctx.NumVariables())
		}
		gradNorm := graph.ScalarZero(images.Graph(), images.DType())
		for _, vg := range varGrads {
			gradNorm = graph.Add(gradNorm, graph.ReduceAllSum(graph.Square(vg)))
		}
		return []*graph.Node{loss, graph.Gradient(loss, images)[0], gradNorm}
	})
	run := func(x []float64) (float64, []float64) {
		res, err := exec.Exec(tensors.FromFlatDataAndDimensions(x, b, h, w, ch),
			tensors.FromFlatDataAndDimensions(wts, b, classes))
		if err != nil {
			t.Fatal(err)
		}
		if gn := tensors.MustCopyFlatData[float64](res[2])[0]; !(gn > 0) || math.IsInf(gn, 0) {
			t.Fatalf("variable gradient norm² %g", gn)
		}
		return tensors.MustCopyFlatData[float64](res[0])[0], tensors.MustCopyFlatData[float64](res[1])
	}
	run(x)
	randomizeVariables64(t, ctx, r)
	_, grad := run(x)
	const step = 1e-5
	for _, i := range pixels {
		if i < 0 {
			i += n
		}
		xp, xm := append([]float64(nil), x...), append([]float64(nil), x...)
		xp[i] += step
		xm[i] -= step
		lp, _ := run(xp)
		lm, _ := run(xm)
		fd := (lp - lm) / (2 * step)
		if math.Abs(fd-grad[i]) > 1e-6*max(1, math.Abs(fd)) {
			t.Errorf("pixel %d: autodiff %g, finite differences %g", i, grad[i], fd)
		}
	}
}

func randomizeVariables64(t *testing.T, ctx *context.Context, r *rand.Rand) {
	for v := range ctx.IterVariables() {
		if v.DType() != dtypes.Float64 {
			continue
		}
		if err := v.SetValue(tensors.FromFlatDataAndDimensions(randSlice(r, v.Shape().Size(), 0.5), v.Shape().Dimensions...)); err != nil {
			t.Fatal(err)
		}
	}
}

// checkScopesGolden compares the variables of ctx (scope, shape, trainable) with testdata/file;
// -update rewrites the file.
func checkScopesGolden(t *testing.T, ctx *context.Context, file, test string) {
	t.Helper()
	var lines []string
	for v := range ctx.IterVariables() {
		lines = append(lines, fmt.Sprintf("%s %v trainable=%v", v.ScopeAndName(), v.Shape().Dimensions, v.Trainable))
	}
	got := strings.Join(lines, "\n") + "\n"
	path := filepath.Join("testdata", file)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, test)
	}
	if got != string(want) {
		t.Errorf("variable scopes changed:\n--- got\n%s--- want\n%s", got, want)
	}
}
