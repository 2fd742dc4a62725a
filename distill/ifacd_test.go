package distill

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/internal/nn"
	"github.com/ifa-toolkit/ifa/internal/testutil"
	"github.com/ifa-toolkit/ifa/ssl"
)

// ifacdCase is a tiny IFACD problem: a student pooled feature [B, Ds] and teacher tap vectors
// [B, C_l], optionally with unpooled taps [B, 2, 2, C_l].
type ifacdCase struct {
	student host
	taps    []host
	grids   []host
}

func newIFACDCase(r *rand.Rand, b, ds int, widths ...int) ifacdCase {
	c := ifacdCase{student: randHost(r, b, ds)}
	for _, w := range widths {
		g := randHost(r, b, 2, 2, w)
		c.grids = append(c.grids, g)
		c.taps = append(c.taps, refGlobalPool(g))
	}
	return c
}

// refGlobalPool averages a [B, H, W, C] array over H and W.
func refGlobalPool(x host) host {
	b, h, w, c := x.dims[0], x.dims[1], x.dims[2], x.dims[3]
	out := newHost(b, c)
	for n := 0; n < b; n++ {
		for ch := 0; ch < c; ch++ {
			s := 0.0
			for y := 0; y < h; y++ {
				for z := 0; z < w; z++ {
					s += x.at4(n, y, z, ch)
				}
			}
			out.data[n*c+ch] = s / float64(h*w)
		}
	}
	return out
}

func (c ifacdCase) hosts(withGrids bool) []host {
	hs := append([]host{c.student}, c.taps...)
	if withGrids {
		hs = append(hs, c.grids...)
	}
	return hs
}

// features rebuilds the Features from the graph inputs laid out by hosts.
func (c ifacdCase) features(xs []*graph.Node, withGrids bool) (s, t backbone.Features) {
	n := len(c.taps)
	s = backbone.Features{Pooled: xs[0]}
	t = backbone.Features{TapVectors: xs[1 : 1+n]}
	if withGrids {
		t.Taps = xs[1+n : 1+2*n]
	}
	return s, t
}

// ifacdExec compiles the IFACD loss of the case in training mode on ctx.
func ifacdExec(t *testing.T, ctx *context.Context, c ifacdCase, withGrids bool) *context.Exec {
	t.Helper()
	e, err := context.NewExec(testutil.Backend(), ctx.Checked(false), func(ctx *context.Context, xs []*graph.Node) *graph.Node {
		ctx.SetTraining(xs[0].Graph(), true)
		s, te := c.features(xs, withGrids)
		return IFACD{}.Loss(ctx, s, te, Step{})
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func runScalar(t *testing.T, e *context.Exec, dt dtypes.DType, hs []host) float64 {
	t.Helper()
	out, err := e.Exec(anys(toTensors(dt, hs))...)
	if err != nil {
		t.Fatal(err)
	}
	return floats(out[0])[0]
}

// perturbNorms sets every norm scale and offset under scope to random values, so the reference must
// read them.
func perturbNorms(ctx *context.Context, r *rand.Rand, dt dtypes.DType) {
	for v := range ctx.IterVariables() {
		if v.Name() != "scale" && v.Name() != "offset" {
			continue
		}
		h := randHost(r, v.Shape().Dimensions...)
		for i := range h.data {
			h.data[i] = 0.5*h.data[i] + map[bool]float64{true: 1, false: 0}[v.Name() == "scale"]
		}
		if err := v.SetValue(h.tensor(dt)); err != nil {
			panic(err)
		}
	}
}

// Naive float64 references.

func varHost(t *testing.T, ctx *context.Context, scope, name string) host {
	t.Helper()
	v := ctx.GetVariableByScopeAndName(scope, name)
	if v == nil {
		t.Fatalf("no variable %s/%s", scope, name)
	}
	return host{dims: v.Shape().Dimensions, data: floats(v.MustValue())}
}

func refLinearRows(x [][]float64, w, b host) [][]float64 {
	in, out := w.dims[0], w.dims[1]
	y := make([][]float64, len(x))
	for i, row := range x {
		y[i] = make([]float64, out)
		for o := 0; o < out; o++ {
			s := b.data[o]
			for k := 0; k < in; k++ {
				s += row[k] * w.data[k*out+o]
			}
			y[i][o] = s
		}
	}
	return y
}

// refBatchNormTrain normalises each column with the batch mean and biased variance (eps 1e-5).
func refBatchNormTrain(x [][]float64, gamma, beta host) [][]float64 {
	n, c := len(x), len(x[0])
	y := make([][]float64, n)
	for i := range y {
		y[i] = make([]float64, c)
	}
	for j := 0; j < c; j++ {
		mean, vr := 0.0, 0.0
		for i := 0; i < n; i++ {
			mean += x[i][j]
		}
		mean /= float64(n)
		for i := 0; i < n; i++ {
			vr += (x[i][j] - mean) * (x[i][j] - mean)
		}
		vr /= float64(n)
		for i := 0; i < n; i++ {
			y[i][j] = (x[i][j]-mean)/math.Sqrt(vr+1e-5)*gamma.data[j] + beta.data[j]
		}
	}
	return y
}

// refLayerNorm normalises each row (eps 1e-5).
func refLayerNorm(x [][]float64, gamma, beta host) [][]float64 {
	y := make([][]float64, len(x))
	for i, row := range x {
		mean, vr := 0.0, 0.0
		for _, v := range row {
			mean += v
		}
		mean /= float64(len(row))
		for _, v := range row {
			vr += (v - mean) * (v - mean)
		}
		vr /= float64(len(row))
		y[i] = make([]float64, len(row))
		for j, v := range row {
			y[i][j] = (v-mean)/math.Sqrt(vr+1e-5)*gamma.data[j] + beta.data[j]
		}
	}
	return y
}

func refAct(x [][]float64, gelu bool) [][]float64 {
	y := make([][]float64, len(x))
	for i, row := range x {
		y[i] = make([]float64, len(row))
		for j, v := range row {
			if gelu {
				y[i][j] = v * 0.5 * (1 + math.Erf(v/math.Sqrt2))
			} else {
				y[i][j] = math.Max(v, 0)
			}
		}
	}
	return y
}

// refHead applies a plain MLP head (Linear → norm → act per hidden layer, Linear → norm last)
// with the variables under scope.
func refHead(t *testing.T, ctx *context.Context, scope string, layers int, norm ssl.NormKind, gelu bool, x [][]float64) [][]float64 {
	for i := 0; i < layers; i++ {
		fc := fmt.Sprintf("%s/fc_%d", scope, i)
		x = refLinearRows(x, varHost(t, ctx, fc, "weights"), varHost(t, ctx, fc, "biases"))
		ns := fmt.Sprintf("%s/norm_%d", scope, i)
		switch norm {
		case ssl.NormBatch:
			x = refBatchNormTrain(x, varHost(t, ctx, ns, "scale"), varHost(t, ctx, ns, "offset"))
		case ssl.NormLayer:
			x = refLayerNorm(x, varHost(t, ctx, ns, "scale"), varHost(t, ctx, ns, "offset"))
		}
		if i < layers-1 {
			x = refAct(x, gelu)
		}
	}
	return x
}

// refSupConUnlabelled is SupCon 'all' without labels written from the formula (METHODS.md §3.1):
// views[v][b] are L2-normalised; contrast point k is view ⌊k/B⌋ of sample k mod B; every other
// point of the same sample is a positive.
func refSupConUnlabelled(views [][][]float64, tau, baseTau float64) float64 {
	v, b := len(views), len(views[0])
	n := v * b
	c := func(k int) []float64 { return views[k/b][k%b] }
	total := 0.0
	for i := 0; i < n; i++ {
		logits := make([]float64, n)
		den := 0.0
		for k := 0; k < n; k++ {
			logits[k] = vdot(c(i), c(k)) / tau
			if k != i {
				den += math.Exp(logits[k])
			}
		}
		sum, cnt := 0.0, 0
		for k := 0; k < n; k++ {
			if k != i && k%b == i%b {
				sum += logits[k] - math.Log(den)
				cnt++
			}
		}
		if cnt > 0 {
			total += -(tau / baseTau) * sum / float64(cnt)
		}
	}
	return total / float64(n)
}

func normRows(x [][]float64) [][]float64 {
	out := make([][]float64, len(x))
	for i, r := range x {
		out[i] = refNormalize(r)
	}
	return out
}

// refIFACD is L_IFACD with plain heads, from the variables in ctx.
func refIFACD(t *testing.T, ctx *context.Context, c ifacdCase, cfg IFACDConfig) float64 {
	gelu := cfg.RescalerAct == ssl.ActGELU
	views := [][][]float64{normRows(refHead(t, ctx, "/ifacd/proj_s", 1, ssl.NormBatch, false, hostRows(c.student)))}
	n := len(c.taps)
	for j, l := 0, n-cfg.Layers; l < n; j, l = j+1, l+1 {
		layers := cfg.RescalerLayers
		if cfg.RescalerAdaptive {
			layers = min(3, cfg.Layers-j)
		}
		r := refHead(t, ctx, fmt.Sprintf("/ifacd/rescaler_%02d", l), layers, cfg.RescalerNorm, gelu, hostRows(c.taps[l]))
		proj := "/ifacd/proj_t"
		if cfg.SeparateProjectors {
			proj = fmt.Sprintf("/ifacd/proj_t_%02d", l)
		}
		views = append(views, normRows(refHead(t, ctx, proj, 1, ssl.NormBatch, false, r)))
	}
	return refSupConUnlabelled(views, cfg.Temperature, cfg.Temperature)
}

// seededContext returns a fresh context whose random initialisation is reproducible.
func seededContext(t *testing.T) *context.Context {
	t.Helper()
	ctx := context.New()
	if err := ctx.SetRNGStateFromSeed(17); err != nil {
		t.Fatal(err)
	}
	return ctx
}

func setIFACDParams(ctx *context.Context, p map[string]any) {
	for k, v := range p {
		ctx.SetParam(k, v)
	}
}

// TestIFACDLossMatchesNaiveReference compares L_IFACD with the float64 reference for ifacd1/2/3,
// shared and separate projectors, and deeper LN/GELU and adaptive rescalers, with random norm
// parameters.
func TestIFACDLossMatchesNaiveReference(t *testing.T) {
	cases := []map[string]any{
		{ParamIFACDLayers: 1},
		{ParamIFACDLayers: 2},
		{ParamIFACDLayers: 3},
		{ParamIFACDLayers: 2, ParamIFACDSeparateProjectors: true},
		{ParamIFACDLayers: 3, ParamIFACDRescalerLayers: 2, ParamIFACDRescalerNorm: "ln", ParamIFACDRescalerAct: "gelu", ParamIFACDRescalerHidden: 5},
		{ParamIFACDLayers: 3, ParamIFACDRescalerAdaptive: true, ParamIFACDRescalerHidden: 3, ParamIFACDTemperature: 0.5},
	}
	for i, p := range cases {
		for _, dt := range []dtypes.DType{dtypes.Float64, dtypes.Float32} {
			t.Run(fmt.Sprintf("%d/%s", i, dt), func(t *testing.T) {
				r := rand.New(rand.NewPCG(uint64(i), 3))
				c := newIFACDCase(r, 4, 5, 3, 4, 6)
				ctx := seededContext(t)
				ctx.SetParam(ParamIFACDFeatDim, 4)
				setIFACDParams(ctx, p)
				cfg, err := IFACDConfigFromContext(ctx)
				if err != nil {
					t.Fatal(err)
				}
				e := ifacdExec(t, ctx, c, false)
				runScalar(t, e, dt, c.hosts(false)) // creates the variables
				perturbNorms(ctx, r, dt)
				got := runScalar(t, e, dt, c.hosts(false))
				want := refIFACD(t, ctx, c, cfg)
				tol := 1e-10
				if dt == dtypes.Float32 {
					tol = 2e-5
				}
				assertClose(t, "L_IFACD", got, want, tol)
				if math.Abs(want) < 1e-3 {
					t.Errorf("reference loss %g is ~0: the comparison is weak", want)
				}
			})
		}
	}
}

// TestIFACDSingleImageClosedForm: with B = 1 every BatchNorm output is its offset β = 0, so every
// view embeds to 0, every logit is 0 and each anchor's V − 1 = L positives share the denominator:
// the loss is log L.
func TestIFACDSingleImageClosedForm(t *testing.T) {
	for _, l := range []int{1, 2, 3} {
		c := newIFACDCase(testRand(), 1, 5, 3, 4, 6)
		ctx := seededContext(t)
		ctx.SetParam(ParamIFACDLayers, l)
		got := runScalar(t, ifacdExec(t, ctx, c, false), dtypes.Float64, c.hosts(false))
		assertClose(t, fmt.Sprintf("ifacd%d on one image", l), got, math.Log(float64(l)), 1e-12)
	}
}

// TestIFACDPermutationInvariant: permuting the batch (student and teacher alike) leaves the loss
// unchanged; permuting the teacher alone changes it.
func TestIFACDPermutationInvariant(t *testing.T) {
	c := newIFACDCase(testRand(), 5, 5, 3, 4, 6)
	ctx := seededContext(t)
	ctx.SetParam(ParamIFACDLayers, 3)
	e := ifacdExec(t, ctx, c, false)
	base := runScalar(t, e, dtypes.Float64, c.hosts(false))
	perm := []int{3, 0, 4, 1, 2}
	p := ifacdCase{student: c.student.permuteBatch(perm)}
	for _, tp := range c.taps {
		p.taps = append(p.taps, tp.permuteBatch(perm))
	}
	assertClose(t, "permuted batch", runScalar(t, e, dtypes.Float64, p.hosts(false)), base, 1e-10)
	p.student = c.student
	if got := runScalar(t, e, dtypes.Float64, p.hosts(false)); closeTo(got, base, 1e-6) {
		t.Errorf("permuting only the teacher left the loss at %g", got)
	}
}

// TestIFACDGradient checks the gradient with respect to the student feature against central
// finite differences (float64, fixed head variables).
func TestIFACDGradient(t *testing.T) {
	c := newIFACDCase(testRand(), 3, 4, 3, 5)
	ctx := seededContext(t)
	ctx.SetParam(ParamIFACDFeatDim, 3)
	e, err := context.NewExec(testutil.Backend(), ctx.Checked(false), func(ctx *context.Context, xs []*graph.Node) (*graph.Node, *graph.Node) {
		ctx.SetTraining(xs[0].Graph(), true)
		s, te := c.features(xs, false)
		l := IFACD{}.Loss(ctx, s, te, Step{})
		return l, graph.Gradient(l, xs[0])[0]
	})
	if err != nil {
		t.Fatal(err)
	}
	run := func(hs []host) (float64, []float64) {
		out := e.MustExec(anys(toTensors(dtypes.Float64, hs))...)
		return floats(out[0])[0], floats(out[1])
	}
	_, analytic := run(c.hosts(false))
	const h = 1e-6
	nonzero := false
	for j := range c.student.data {
		plus, minus := c.student.clone(), c.student.clone()
		plus.data[j] += h
		minus.data[j] -= h
		lp, _ := run(append([]host{plus}, c.taps...))
		lm, _ := run(append([]host{minus}, c.taps...))
		numeric := (lp - lm) / (2 * h)
		if !closeTo(analytic[j], numeric, 1e-5) {
			t.Errorf("d/ds[%d]: analytic %.10g, numeric %.10g", j, analytic[j], numeric)
		}
		nonzero = nonzero || math.Abs(numeric) > 1e-6
	}
	if !nonzero {
		t.Error("every numeric derivative is ~0: the check cannot fail")
	}
}

// tinyDistillGraph builds a toy student (one linear layer, /student) and teacher (three linear
// layers whose outputs are the taps, /teacher) on x: [B, 6] and returns the IFACD loss.
func tinyDistillGraph(ctx *context.Context, x *graph.Node) *graph.Node {
	s := backbone.Features{Pooled: nn.Linear(ctx.InAbsPath("/student/fc"), x, 5)}
	tc := ctx.InAbsPath("/teacher")
	t1 := graph.Tanh(nn.Linear(tc.In("l1"), x, 3))
	t2 := graph.Tanh(nn.Linear(tc.In("l2"), t1, 4))
	t3 := graph.Tanh(nn.Linear(tc.In("l3"), t2, 6))
	return IFACD{}.Loss(ctx, s, backbone.Features{TapVectors: []*graph.Node{t1, t2, t3}}, Step{})
}

// TestIFACDTrainingStepGradients takes the gradient of the loss with respect to every variable —
// the teacher's left trainable on purpose — and checks that the student and every head get a
// non-zero gradient while the teacher gets exactly zero (the rescalers' input is detached).
// Without the detachment the teacher does get gradient, so the check can fail.
func TestIFACDTrainingStepGradients(t *testing.T) {
	x := randHost(testRand(), 4, 6)
	for _, detach := range []bool{true, false} {
		t.Run(fmt.Sprintf("detach=%v", detach), func(t *testing.T) {
			ctx := seededContext(t)
			ctx.SetParam(ParamIFACDLayers, 3)
			ctx.SetParam(ParamIFACDDetach, detach)
			var names []string
			e, err := context.NewExec(testutil.Backend(), ctx, func(ctx *context.Context, x *graph.Node) []*graph.Node {
				g := x.Graph()
				ctx.SetTraining(g, true)
				loss := tinyDistillGraph(ctx, x)
				var vars []*graph.Node
				names = nil
				for v := range ctx.IterVariables() {
					if v.Trainable {
						names = append(names, v.ScopeAndName())
						vars = append(vars, v.ValueGraph(g))
					}
				}
				return graph.Gradient(loss, vars...)
			})
			if err != nil {
				t.Fatal(err)
			}
			grads, err := e.Exec(x.tensor(dtypes.Float32))
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for i, name := range names {
				norm := 0.0
				for _, v := range floats(grads[i]) {
					if math.IsNaN(v) || math.IsInf(v, 0) {
						t.Fatalf("%s: non-finite gradient", name)
					}
					norm += v * v
				}
				top := strings.Split(strings.TrimPrefix(name, "/"), "/")[0]
				seen[top] = true
				switch {
				case top == "teacher" && detach && norm != 0:
					t.Errorf("teacher variable %s gets gradient (norm² %g)", name, norm)
				case top == "teacher" && !detach && norm == 0 && strings.Contains(name, "weights"):
					t.Errorf("without detachment teacher variable %s gets no gradient", name)
				case top != "teacher" && norm == 0 && !strings.HasSuffix(name, "/biases"):
					// Biases before a BatchNorm are cancelled by its centring (zero gradient).
					t.Errorf("trainable %s gets no gradient", name)
				}
			}
			for _, s := range []string{"student", "teacher", "ifacd"} {
				if !seen[s] {
					t.Errorf("no variables under /%s: %v", s, names)
				}
			}
			for _, h := range []string{"/ifacd/proj_s/", "/ifacd/proj_t/", "/ifacd/rescaler_00/", "/ifacd/rescaler_01/", "/ifacd/rescaler_02/"} {
				if !slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, h) }) {
					t.Errorf("no head variables under %s: %v", h, names)
				}
			}
		})
	}
}

// TestIFACDHeadParamsMatchTheTalk reproduces METHODS.md §2.1's parameter counts (teacher + student
// + heads counted twice, in millions to 3 decimals) for resnet32x4 → resnet8x4 and vgg13 → vgg8,
// from the tap shapes of §2.2 and the model sizes of §4.1.
func TestIFACDHeadParamsMatchTheTalk(t *testing.T) {
	vec := func(c int) shapes.Shape { return shapes.Make(dtypes.Float32, 1, c) }
	mp := func(h, c int) shapes.Shape { return shapes.Make(dtypes.Float32, 1, h, h, c) }
	resnet32x4 := FeatureShapes{Pooled: vec(256)}
	for range 10 {
		resnet32x4.Taps = append(resnet32x4.Taps, mp(8, 256))
		resnet32x4.TapVectors = append(resnet32x4.TapVectors, vec(256))
	}
	vgg13 := FeatureShapes{Pooled: vec(512), Taps: []shapes.Shape{mp(8, 256), mp(4, 512), mp(4, 512)},
		TapVectors: []shapes.Shape{vec(256), vec(512), vec(512)}}
	pairs := []struct {
		name      string
		t, s      FeatureShapes
		tsParams  int
		wantM     [3]float64
		wantHeads [3]int
	}{
		{"resnet32x4→resnet8x4", resnet32x4, FeatureShapes{Pooled: vec(256)}, 7_433_860 + 1_233_540,
			[3]float64{8.933, 9.065, 9.198}, [3]int{132_608, 198_912, 265_216}},
		{"vgg13→vgg8", vgg13, FeatureShapes{Pooled: vec(512)}, 9_462_180 + 3_965_028,
			[3]float64{14.218, 14.746, 15.011}, [3]int{395_520, 659_200, 791_808}},
	}
	for _, p := range pairs {
		for l := 1; l <= 3; l++ {
			ctx := seededContext(t)
			ctx.SetParam(ParamIFACDLayers, l)
			hp, err := IFACD{}.HeadParams(ctx, p.s, p.t)
			if err != nil {
				t.Fatalf("%s ifacd%d: %v", p.name, l, err)
			}
			if !hp.CountedTwice || hp.Params != p.wantHeads[l-1] {
				t.Errorf("%s ifacd%d: heads %+v, want %d counted twice", p.name, l, hp, p.wantHeads[l-1])
			}
			total := float64(p.tsParams+hp.Reported()) / 1e6
			if got := math.Round(total*1000) / 1000; got != p.wantM[l-1] {
				t.Errorf("%s ifacd%d: %.6fM parameters, the talk's count is %.3fM", p.name, l, total, p.wantM[l-1])
			}
		}
	}
}

// TestIFACDHeadParamsMatchCreatedVariables builds IFACD with non-default heads (separate
// projectors, deep and adaptive rescalers, Rescaler V2) and checks HeadParams against the
// trainable variables the loss created.
func TestIFACDHeadParamsMatchCreatedVariables(t *testing.T) {
	cases := []map[string]any{
		{},
		{ParamIFACDSeparateProjectors: true, ParamIFACDLayers: 3},
		{ParamIFACDRescalerLayers: 3, ParamIFACDRescalerNorm: "ln", ParamIFACDRescalerAct: "gelu"},
		{ParamIFACDRescalerAdaptive: true, ParamIFACDLayers: 3, ParamIFACDRescalerNorm: "none"},
		{ParamIFACDRescalerBlock: "transformer", ParamIFACDLayers: 3},
		{ParamIFACDRescalerBlock: "mixer", ParamIFACDLayers: 2},
		{ParamIFACDRescalerBlock: "none,transformer,mixer", ParamIFACDLayers: 3},
		{ParamIFACDRescalerBlock: "mixer,none", ParamIFACDLayers: 2},
		{ParamIFACDTapSource: IFACDTapsStages, ParamIFACDLayers: 2},
	}
	for i, p := range cases {
		t.Run(fmt.Sprint(p), func(t *testing.T) {
			c := newIFACDCase(rand.New(rand.NewPCG(uint64(i), 5)), 3, 6, 4, 6, 8)
			ctx := seededContext(t)
			ctx.SetParam(ParamIFACDFeatDim, 8)
			setIFACDParams(ctx, p)
			stages := p[ParamIFACDTapSource] == IFACDTapsStages
			e, err := context.NewExec(testutil.Backend(), ctx, func(ctx *context.Context, xs []*graph.Node) *graph.Node {
				ctx.SetTraining(xs[0].Graph(), true)
				s, te := c.features(xs, true)
				if stages {
					te = backbone.Features{Stages: append([]*graph.Node{xs[0]}, te.Taps[:2]...)}
				}
				return IFACD{}.Loss(ctx, s, te, Step{})
			})
			if err != nil {
				t.Fatal(err)
			}
			loss := floats(e.MustExec(anys(toTensors(dtypes.Float32, c.hosts(true)))...)[0])[0]
			if math.IsNaN(loss) || loss <= 0 {
				t.Errorf("loss %g", loss)
			}
			sh := shapesOfHosts(c.hosts(true)...)
			n := len(c.taps)
			sf := FeatureShapes{Pooled: sh[0]}
			tf := FeatureShapes{TapVectors: sh[1 : 1+n], Taps: sh[1+n:]}
			if stages {
				tf = FeatureShapes{Stages: append([]shapes.Shape{sh[0]}, sh[1+n:1+n+2]...)}
			}
			hp, err := IFACD{}.HeadParams(ctx, sf, tf)
			if err != nil {
				t.Fatal(err)
			}
			if got := trainableParams(ctx, "/ifacd"); got != hp.Params || got == 0 {
				t.Errorf("HeadParams %d, created %d trainable parameters", hp.Params, got)
			}
		})
	}
}

func TestIFACDCheckRejects(t *testing.T) {
	vec := func(b, c int) shapes.Shape { return shapes.Make(dtypes.Float32, b, c) }
	s := FeatureShapes{Pooled: vec(2, 8)}
	twoTaps := FeatureShapes{TapVectors: []shapes.Shape{vec(2, 4), vec(2, 6)}}
	for _, tc := range []struct {
		params map[string]any
		s, t   FeatureShapes
		want   string
	}{
		{map[string]any{ParamIFACDLayers: 3}, s, twoTaps, "only 2 taps"},
		{map[string]any{ParamIFACDLayers: 0}, s, twoTaps, "want >= 1"},
		{map[string]any{ParamIFACDRescalerLayers: 4}, s, twoTaps, "rescaler layers"},
		{map[string]any{ParamIFACDRescalerNorm: "gn"}, s, twoTaps, "norm"},
		{map[string]any{ParamIFACDRescalerBlock: "mixer"}, s, twoTaps, "unpooled"},
		{map[string]any{ParamIFACDRescalerBlock: "none,mixer"}, s, twoTaps, "tap 1 has none"},
		{map[string]any{ParamIFACDRescalerBlock: "none,none,none"}, s, twoTaps, "one per tap (2)"},
		{map[string]any{ParamIFACDRescalerBlock: "none,conv"}, s, twoTaps, "comma-separated"},
		{map[string]any{ParamIFACDTapSource: "blocks"}, s, twoTaps, "tap source"},
		{nil, FeatureShapes{}, twoTaps, "pooled"},
		{nil, s, FeatureShapes{}, "stage maps"},
		{nil, FeatureShapes{Pooled: vec(3, 8)}, twoTaps, "batch"},
	} {
		ctx := context.New()
		setIFACDParams(ctx, tc.params)
		err := IFACD{}.Check(ctx, tc.s, tc.t)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want one mentioning %q", tc.params, err, tc.want)
		}
	}
	if err := (IFACD{}).Check(context.New(), s, twoTaps); err != nil {
		t.Errorf("valid shapes rejected: %v", err)
	}
}

func TestIFACDRegistered(t *testing.T) {
	m, err := Get("ifacd")
	if err != nil {
		t.Fatal(err)
	}
	if DefaultBeta(m) != 0.8 {
		t.Errorf("β = %g, want 0.8", DefaultBeta(m))
	}
	keys := map[string]bool{}
	for _, p := range ParamsOf(m) {
		if keys[p.Key] || !strings.HasPrefix(p.Key, "ifacd_") {
			t.Errorf("param %q repeated or outside the ifacd_ prefix", p.Key)
		}
		keys[p.Key] = true
	}
	// The talk's configuration (METHODS.md §2.2–2.4).
	want := IFACDConfig{Layers: 2, FeatDim: 128, Temperature: 0.07, TapSource: IFACDTapsAuto, RescalerLayers: 1,
		RescalerHidden: 128, RescalerNorm: ssl.NormBatch, RescalerAct: ssl.ActReLU, RescalerBlock: ssl.TokenNone, Detach: true}
	if got := DefaultIFACDConfig(); !reflect.DeepEqual(got, want) {
		t.Errorf("default config %+v, want the talk's %+v", got, want)
	}
	if label, err := RunLabel(m, context.New()); err != nil || label != "ifacd2" {
		t.Errorf("run label %q (%v), want ifacd2", label, err)
	}
}

// TestIFACDPerTapRescalerBlocks checks the per-tap Rescaler V2 list: "mixer,mixer" is "mixer" for
// both taps (same variables, same loss bits), and "none,mixer" builds a Mixer block on the last tap
// only (its variables under rescaler_02, none under rescaler_01) and a different loss.
func TestIFACDPerTapRescalerBlocks(t *testing.T) {
	c := newIFACDCase(rand.New(rand.NewPCG(3, 9)), 3, 6, 4, 6, 8)
	loss := func(block string) (float64, *context.Context) {
		ctx := seededContext(t)
		setIFACDParams(ctx, map[string]any{ParamIFACDFeatDim: 8, ParamIFACDLayers: 2, ParamIFACDRescalerBlock: block})
		e := ifacdExec(t, ctx, c, true)
		return floats(e.MustExec(anys(toTensors(dtypes.Float32, c.hosts(true)))...)[0])[0], ctx
	}
	tokenVars := func(ctx *context.Context, scope string) int {
		n := 0
		for v := range ctx.IterVariables() {
			if strings.HasPrefix(v.Scope(), "/ifacd/"+scope+"/") && strings.Contains(v.Scope(), "/block_") {
				n++
			}
		}
		return n
	}
	one, _ := loss("mixer")
	both, _ := loss("mixer,mixer")
	mixed, ctx := loss("none,mixer")
	if one != both {
		t.Errorf("mixer,mixer gives %v, mixer %v: want the same bits", both, one)
	}
	if mixed == one || math.IsNaN(mixed) {
		t.Errorf("none,mixer gives %v, the same as mixer on both taps (%v)", mixed, one)
	}
	if a, b := tokenVars(ctx, "rescaler_01"), tokenVars(ctx, "rescaler_02"); a != 0 || b == 0 {
		t.Errorf("none,mixer: %d token-block variables on tap 1, %d on tap 2; want 0 and some", a, b)
	}
}
