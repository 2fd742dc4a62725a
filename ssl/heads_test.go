package ssl

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/internal/testutil"
)

// buildHead runs a head once (training mode) on x under ctx.In(scope) and returns its output.
func buildHead(t *testing.T, ctx *context.Context, scope string, cfg HeadConfig, x *tensors.Tensor) *tensors.Tensor {
	t.Helper()
	return context.MustExecOnce(testutil.Backend(), ctx, func(ctx *context.Context, x *graph.Node) *graph.Node {
		ctx.SetTraining(x.Graph(), true)
		return Head(ctx.In(scope), cfg, x)
	}, x)
}

func trainableParams(ctx *context.Context) int {
	n := 0
	for v := range ctx.IterVariables() {
		if v.Trainable && !strings.Contains(v.Scope(), "rng") && v.Name() != "rng_state" {
			n += v.Shape().Size()
		}
	}
	return n
}

func varNames(ctx *context.Context) []string {
	var out []string
	for v := range ctx.IterVariables() {
		if v.Trainable || strings.HasPrefix(v.Name(), "running_") {
			out = append(out, v.ScopeAndName())
		}
	}
	slices.Sort(out)
	return out
}

func randTensor(rng *rand.Rand, dims ...int) *tensors.Tensor {
	n := 1
	for _, d := range dims {
		n *= d
	}
	x := make([]float64, n)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	return tensors.FromFlatDataAndDimensions(x, dims...)
}

func TestHeadShapesAndScopes(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	x := randTensor(rng, 4, 6)

	ctx := context.New()
	y := buildHead(t, ctx, "proj", IFACDHead(5), x)
	if got := y.Shape().Dimensions; !reflect.DeepEqual(got, []int{4, 5}) {
		t.Fatalf("IFACD head output %v", got)
	}
	want := []string{"/proj/fc_0/biases", "/proj/fc_0/weights", "/proj/norm_0/offset", "/proj/norm_0/running_mean",
		"/proj/norm_0/running_var", "/proj/norm_0/scale"}
	if got := varNames(ctx); !reflect.DeepEqual(got, want) {
		t.Fatalf("IFACD head variables %v, want %v", got, want)
	}

	ctx = context.New()
	y = buildHead(t, ctx, "proj", IFACLRProjector(7, 3), x)
	if got := y.Shape().Dimensions; !reflect.DeepEqual(got, []int{4, 3}) {
		t.Fatalf("IFACLR projector output %v", got)
	}
	want = nil
	for i := 0; i < 3; i++ {
		want = append(want, fmt.Sprintf("/proj/fc_%d/biases", i), fmt.Sprintf("/proj/fc_%d/weights", i),
			fmt.Sprintf("/proj/norm_%d/offset", i), fmt.Sprintf("/proj/norm_%d/scale", i))
	}
	slices.Sort(want)
	if got := varNames(ctx); !reflect.DeepEqual(got, want) {
		t.Fatalf("IFACLR projector variables %v, want %v", got, want)
	}

	ctx = context.New()
	cfg := HeadConfig{Layers: 1, Out: 4, Norm: NormLayer, Act: ActGELU, LastAct: true,
		Tokens: TokenBlockConfig{Kind: TokenTransformer}}
	y = buildHead(t, ctx, "rescaler_00", cfg, randTensor(rng, 2, 3, 3, 4)) // a 3×3 map, 4 channels
	if got := y.Shape().Dimensions; !reflect.DeepEqual(got, []int{2, 4}) {
		t.Fatalf("transformer rescaler output %v", got)
	}
	want = []string{"/rescaler_00/block_0/attn_out/biases", "/rescaler_00/block_0/attn_out/weights",
		"/rescaler_00/block_0/k/biases", "/rescaler_00/block_0/k/weights",
		"/rescaler_00/block_0/mlp_0/biases", "/rescaler_00/block_0/mlp_0/weights",
		"/rescaler_00/block_0/mlp_1/biases", "/rescaler_00/block_0/mlp_1/weights",
		"/rescaler_00/block_0/norm_0/offset", "/rescaler_00/block_0/norm_0/scale",
		"/rescaler_00/block_0/norm_1/offset", "/rescaler_00/block_0/norm_1/scale",
		"/rescaler_00/block_0/q/biases", "/rescaler_00/block_0/q/weights",
		"/rescaler_00/block_0/v/biases", "/rescaler_00/block_0/v/weights",
		"/rescaler_00/fc_0/biases", "/rescaler_00/fc_0/weights",
		"/rescaler_00/norm_0/offset", "/rescaler_00/norm_0/scale"}
	if got := varNames(ctx); !reflect.DeepEqual(got, want) {
		t.Fatalf("transformer rescaler variables %v, want %v", got, want)
	}
}

func TestHeadParamsMatchVariables(t *testing.T) {
	rng := rand.New(rand.NewPCG(33, 34))
	cfgs := []HeadConfig{
		IFACDHead(8),
		IFACLRProjector(16, 8),
		{Layers: 2, Out: 5, Norm: NormBatch},
		{Layers: 2, Hidden: 9, Out: 5, Norm: NormNone, NoLastBias: true},
		{Layers: 3, Hidden: 9, Out: 5, Norm: NormLayer, Act: ActGELU, SkipLastNorm: true, NoLastBias: true},
		{Layers: 1, Out: 5, Norm: NormBatch, LastAct: true},
		{Layers: 1, Out: 6, Norm: NormLayer, Act: ActGELU, LastAct: true, Tokens: TokenBlockConfig{Kind: TokenTransformer, Blocks: 2}},
		{Layers: 2, Out: 6, Norm: NormBatch, LastAct: true, Tokens: TokenBlockConfig{Kind: TokenMixer, Tokens: 4}},
	}
	for i, cfg := range cfgs {
		var x *tensors.Tensor
		if cfg.Tokens.Kind == TokenNone {
			x = randTensor(rng, 3, 6)
		} else {
			x = randTensor(rng, 3, 2, 2, 6)
		}
		ctx := context.New()
		buildHead(t, ctx, "h", cfg, x)
		if got, want := trainableParams(ctx), HeadParams(cfg, 6); got != want || want == 0 {
			t.Fatalf("config %d %+v: %d trainable parameters built, HeadParams says %d", i, cfg, got, want)
		}
	}
	if n := HeadParams(HeadConfig{Layers: 4, Out: 2}, 3); n != 0 {
		t.Fatalf("invalid config: HeadParams = %d, want 0", n)
	}
}

// TestIFACDParameterTable reproduces the talk's IFACD parameter counts (METHODS.md §2.1): teacher +
// student + 2 × heads, where heads = one Linear+BN1d rescaler per used tap (C_l → d_t), the shared
// teacher projector (d_t → 128) and the student projector (d_s → 128).
func TestIFACDParameterTable(t *testing.T) {
	// The exact head count of resnet32x4→resnet8x4 ifacd2, from the formula.
	heads := 2*HeadParams(IFACDHead(256), 256) + HeadParams(IFACDHead(128), 256) + HeadParams(IFACDHead(128), 256)
	if want := 2*(256*256+256+2*256) + (256*128 + 128 + 2*128) + (256*128 + 128 + 2*128); heads != want {
		t.Fatalf("resnet32x4→resnet8x4 ifacd2 heads: %d, want %d", heads, want)
	}
	pairs := []struct {
		name             string
		teacher, student int   // parameters (§4.1)
		taps             []int // channels of the teacher's last three taps, forward order (§2.2)
		ds               int   // student final feature width
		want             [3]float64
	}{
		{"wrn_40_2→wrn_16_2", 2255156, 703284, []int{128, 128, 128}, 128, [3]float64{3.059, 3.093, 3.126}},
		{"wrn_40_2→wrn_40_1", 2255156, 569780, []int{128, 128, 128}, 64, [3]float64{2.909, 2.943, 2.976}},
		{"vgg13→vgg8", 9462180, 3965028, []int{256, 512, 512}, 512, [3]float64{14.218, 14.746, 15.011}},
		{"resnet56→resnet20", 861620, 278324, []int{64, 64, 64}, 64, [3]float64{1.183, 1.191, 1.200}},
		{"resnet32x4→resnet8x4", 7433860, 1233540, []int{256, 256, 256}, 256, [3]float64{8.933, 9.065, 9.198}},
		{"resnet110→resnet20", 1736564, 278324, []int{64, 64, 64}, 64, [3]float64{2.058, 2.066, 2.075}},
	}
	const featDim = 128
	for _, p := range pairs {
		dt := p.taps[len(p.taps)-1]
		for l := 1; l <= 3; l++ {
			h := HeadParams(IFACDHead(featDim), dt) + HeadParams(IFACDHead(featDim), p.ds)
			for _, c := range p.taps[3-l:] {
				h += HeadParams(IFACDHead(dt), c)
			}
			total := float64(p.teacher+p.student+2*h) / 1e6
			if got := math.Round(total*1000) / 1000; got != p.want[l-1] {
				t.Errorf("%s ifacd%d: %.6fM parameters, table says %.3fM", p.name, l, total, p.want[l-1])
			}
		}
	}
}

// Naive float64 references for the heads, from the variable values.

func varValue(t *testing.T, ctx *context.Context, scope, name string) []float64 {
	t.Helper()
	v := ctx.GetVariableByScopeAndName(scope, name)
	if v == nil {
		t.Fatalf("no variable %s/%s", scope, name)
	}
	return toF64(v.MustValue())
}

// randomiseVariables gives every trainable variable random values (so γ/β differ from 1/0).
func randomiseVariables(rng *rand.Rand, ctx *context.Context) {
	for v := range ctx.IterVariables() {
		if !v.Trainable || v.DType().IsInt() {
			continue
		}
		v.MustSetValue(randTensor(rng, v.Shape().Dimensions...))
	}
}

type mat struct {
	r, c int
	x    []float64
}

func (m mat) at(i, j int) float64 { return m.x[i*m.c+j] }

func naiveLinear(t *testing.T, ctx *context.Context, scope string, in mat, bias bool) mat {
	w := varValue(t, ctx, scope, "weights")
	out := len(w) / in.c
	var b []float64
	if bias {
		b = varValue(t, ctx, scope, "biases")
	}
	y := mat{in.r, out, make([]float64, in.r*out)}
	for i := 0; i < in.r; i++ {
		for o := 0; o < out; o++ {
			s := 0.0
			if bias {
				s = b[o]
			}
			for k := 0; k < in.c; k++ {
				s += in.at(i, k) * w[k*out+o]
			}
			y.x[i*out+o] = s
		}
	}
	return y
}

func naiveLN(t *testing.T, ctx *context.Context, scope string, in mat, eps float64) mat {
	g, b := varValue(t, ctx, scope, "scale"), varValue(t, ctx, scope, "offset")
	y := mat{in.r, in.c, make([]float64, len(in.x))}
	for i := 0; i < in.r; i++ {
		var mean, v float64
		for j := 0; j < in.c; j++ {
			mean += in.at(i, j)
		}
		mean /= float64(in.c)
		for j := 0; j < in.c; j++ {
			v += (in.at(i, j) - mean) * (in.at(i, j) - mean)
		}
		v /= float64(in.c)
		for j := 0; j < in.c; j++ {
			y.x[i*in.c+j] = (in.at(i, j)-mean)/math.Sqrt(v+eps)*g[j] + b[j]
		}
	}
	return y
}

func naiveBN(t *testing.T, ctx *context.Context, scope string, in mat) mat {
	g, b := varValue(t, ctx, scope, "scale"), varValue(t, ctx, scope, "offset")
	y := mat{in.r, in.c, make([]float64, len(in.x))}
	for j := 0; j < in.c; j++ {
		var mean, v float64
		for i := 0; i < in.r; i++ {
			mean += in.at(i, j)
		}
		mean /= float64(in.r)
		for i := 0; i < in.r; i++ {
			v += (in.at(i, j) - mean) * (in.at(i, j) - mean)
		}
		v /= float64(in.r)
		for i := 0; i < in.r; i++ {
			y.x[i*in.c+j] = (in.at(i, j)-mean)/math.Sqrt(v+1e-5)*g[j] + b[j]
		}
	}
	return y
}

func naiveGELU(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }

func mapMat(m mat, f func(float64) float64) mat {
	y := mat{m.r, m.c, make([]float64, len(m.x))}
	for i, v := range m.x {
		y.x[i] = f(v)
	}
	return y
}

func naiveMLP(t *testing.T, ctx *context.Context, scope string, cfg HeadConfig, x mat) mat {
	act := func(v float64) float64 { return math.Max(v, 0) }
	if cfg.Act == ActGELU {
		act = naiveGELU
	}
	eps := cfg.LNEpsilon
	if eps == 0 {
		eps = 1e-5
	}
	for i := 0; i < cfg.Layers; i++ {
		last := i == cfg.Layers-1
		x = naiveLinear(t, ctx, fmt.Sprintf("%s/fc_%d", scope, i), x, !(last && cfg.NoLastBias))
		if !last || !cfg.SkipLastNorm {
			ns := fmt.Sprintf("%s/norm_%d", scope, i)
			switch cfg.Norm {
			case NormBatch:
				x = naiveBN(t, ctx, ns, x)
			case NormLayer:
				x = naiveLN(t, ctx, ns, x, eps)
			}
		}
		if !last || cfg.LastAct {
			x = mapMat(x, act)
		}
	}
	return x
}

// runHeadAgain re-runs a built head (with its variables randomised) on x.
func runHeadAgain(t *testing.T, ctx *context.Context, scope string, cfg HeadConfig, x *tensors.Tensor) []float64 {
	t.Helper()
	return toF64(buildHead(t, ctx.Reuse(), scope, cfg, x))
}

func TestHeadMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(35, 36))
	const b, in = 5, 6
	xs := randTensor(rng, b, in)
	x := mat{b, in, toF64(xs)}
	for _, cfg := range []HeadConfig{
		IFACDHead(4),
		IFACLRProjector(7, 3),
		{Layers: 2, Hidden: 5, Out: 3, Norm: NormBatch, Act: ActReLU, LastAct: true},
		{Layers: 3, Hidden: 5, Out: 3, Norm: NormLayer, Act: ActGELU, SkipLastNorm: true, NoLastBias: true, LNEpsilon: 1e-3},
		{Layers: 2, Hidden: 5, Out: 3, Norm: NormNone, Act: ActGELU},
	} {
		ctx := context.New()
		buildHead(t, ctx, "h", cfg, xs)
		randomiseVariables(rng, ctx)
		got := runHeadAgain(t, ctx, "h", cfg, xs)
		want := naiveMLP(t, ctx, "/h", cfg, x)
		assertClose(t, fmt.Sprintf("%+v", cfg), got, want.x, 1e-10)
	}
}

// naiveTokens flattens [B, T, C] input into per-sample token matrices.
func naiveTokens(x []float64, b, tk, c int) []mat {
	out := make([]mat, b)
	for i := range out {
		out[i] = mat{tk, c, x[i*tk*c : (i+1)*tk*c]}
	}
	return out
}

func addMat(a, b mat) mat {
	y := mat{a.r, a.c, make([]float64, len(a.x))}
	for i := range a.x {
		y.x[i] = a.x[i] + b.x[i]
	}
	return y
}

func transposeMat(a mat) mat {
	y := mat{a.c, a.r, make([]float64, len(a.x))}
	for i := 0; i < a.r; i++ {
		for j := 0; j < a.c; j++ {
			y.x[j*a.r+i] = a.at(i, j)
		}
	}
	return y
}

func naiveTransformer(t *testing.T, ctx *context.Context, scope string, heads int, eps float64, x mat) mat {
	y := naiveLN(t, ctx, scope+"/norm_0", x, eps)
	q := naiveLinear(t, ctx, scope+"/q", y, true)
	k := naiveLinear(t, ctx, scope+"/k", y, true)
	v := naiveLinear(t, ctx, scope+"/v", y, true)
	c, tk := x.c, x.r
	dh := c / heads
	o := mat{tk, c, make([]float64, tk*c)}
	for h := 0; h < heads; h++ {
		for i := 0; i < tk; i++ {
			s := make([]float64, tk)
			m := math.Inf(-1)
			for j := 0; j < tk; j++ {
				for d := 0; d < dh; d++ {
					s[j] += q.at(i, h*dh+d) * k.at(j, h*dh+d)
				}
				s[j] /= math.Sqrt(float64(dh))
				m = math.Max(m, s[j])
			}
			var z float64
			for j := range s {
				s[j] = math.Exp(s[j] - m)
				z += s[j]
			}
			for d := 0; d < dh; d++ {
				var acc float64
				for j := 0; j < tk; j++ {
					acc += s[j] / z * v.at(j, h*dh+d)
				}
				o.x[i*c+h*dh+d] = acc
			}
		}
	}
	x = addMat(x, naiveLinear(t, ctx, scope+"/attn_out", o, true))
	y = naiveLN(t, ctx, scope+"/norm_1", x, eps)
	y = naiveLinear(t, ctx, scope+"/mlp_1", mapMat(naiveLinear(t, ctx, scope+"/mlp_0", y, true), naiveGELU), true)
	return addMat(x, y)
}

func naiveMixer(t *testing.T, ctx *context.Context, scope string, eps float64, x mat) mat {
	y := transposeMat(naiveLN(t, ctx, scope+"/norm_0", x, eps)) // [C, T]
	y = naiveLinear(t, ctx, scope+"/token_mlp_1", mapMat(naiveLinear(t, ctx, scope+"/token_mlp_0", y, true), naiveGELU), true)
	x = addMat(x, transposeMat(y))
	y = naiveLN(t, ctx, scope+"/norm_1", x, eps)
	y = naiveLinear(t, ctx, scope+"/channel_mlp_1", mapMat(naiveLinear(t, ctx, scope+"/channel_mlp_0", y, true), naiveGELU), true)
	return addMat(x, y)
}

func TestTokenHeadsMatchNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(37, 38))
	const b, h, w, c = 3, 2, 3, 4
	xs := randTensor(rng, b, h, w, c)
	for _, kind := range []TokenBlockKind{TokenTransformer, TokenMixer} {
		cfg := HeadConfig{Layers: 1, Out: 5, Norm: NormBatch, LastAct: true,
			Tokens: TokenBlockConfig{Kind: kind, Blocks: 2, Tokens: h * w, LNEpsilon: 1e-5}}
		ctx := context.New()
		buildHead(t, ctx, "rs", cfg, xs)
		randomiseVariables(rng, ctx)
		got := runHeadAgain(t, ctx, "rs", cfg, xs)

		pooled := mat{b, c, make([]float64, b*c)}
		for i, tok := range naiveTokens(toF64(xs), b, h*w, c) {
			for j := 0; j < 2; j++ {
				scope := fmt.Sprintf("/rs/block_%d", j)
				if kind == TokenTransformer {
					tok = naiveTransformer(t, ctx, scope, DefaultTokenHeads, 1e-5, tok)
				} else {
					tok = naiveMixer(t, ctx, scope, 1e-5, tok)
				}
			}
			for r := 0; r < tok.r; r++ {
				for k := 0; k < c; k++ {
					pooled.x[i*c+k] += tok.at(r, k) / float64(tok.r)
				}
			}
		}
		want := naiveMLP(t, ctx, "/rs", cfg, pooled)
		assertClose(t, kind.String(), got, want.x, 1e-10)
	}
}

func TestHeadGradient(t *testing.T) {
	// Finite differences of a 2-layer LN/GELU head (float64) with respect to its input, and a
	// backward pass through every head kind on the test backend.
	rng := rand.New(rand.NewPCG(39, 40))
	const b, in = 3, 4
	xs := randTensor(rng, b, in)
	cfg := HeadConfig{Layers: 2, Hidden: 5, Out: 3, Norm: NormLayer, Act: ActGELU}
	ctx := context.New()
	buildHead(t, ctx, "h", cfg, xs)
	randomiseVariables(rng, ctx)
	weights := randTensor(rng, b, 3)
	objective := func(ctx *context.Context, x, wt *graph.Node) *graph.Node {
		return graph.ReduceAllSum(graph.Mul(Head(ctx.In("h"), cfg, x), wt))
	}
	grad := toF64(context.MustExecOnce(testutil.Backend(), ctx.Reuse(), func(ctx *context.Context, x, wt *graph.Node) *graph.Node {
		return graph.Gradient(objective(ctx, x, wt), x)[0]
	}, xs, weights))
	x := toF64(xs)
	const step = 1e-6
	eval := func(v []float64) float64 {
		out := naiveMLP(t, ctx, "/h", cfg, mat{b, in, v})
		wt := toF64(weights)
		var s float64
		for i := range out.x {
			s += out.x[i] * wt[i]
		}
		return s
	}
	for i := range x {
		up, down := slices.Clone(x), slices.Clone(x)
		up[i] += step
		down[i] -= step
		fd := (eval(up) - eval(down)) / (2 * step)
		if math.Abs(fd-grad[i]) > 1e-6*(1+math.Abs(fd)) {
			t.Fatalf("d/dx[%d] = %.10g, finite difference %.10g", i, grad[i], fd)
		}
	}

	for _, cfg := range []HeadConfig{
		IFACDHead(4),
		{Layers: 1, Out: 4, Norm: NormLayer, Tokens: TokenBlockConfig{Kind: TokenTransformer}},
		{Layers: 1, Out: 4, Norm: NormBatch, Tokens: TokenBlockConfig{Kind: TokenMixer, Tokens: 4}},
	} {
		input := randTensor(rng, 2, 6)
		if cfg.Tokens.Kind != TokenNone {
			input = randTensor(rng, 2, 4, 6)
		}
		g := toF64(context.MustExecOnce(testutil.Backend(), context.New(), func(ctx *context.Context, x *graph.Node) *graph.Node {
			ctx.SetTraining(x.Graph(), true)
			y := Head(ctx.In("h"), cfg, x)
			return graph.Gradient(graph.ReduceAllSum(graph.Square(y)), x)[0]
		}, input))
		for _, v := range g {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("%+v: non-finite input gradient %v", cfg, g)
			}
		}
	}
}

func TestHeadConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg HeadConfig
		msg string
	}{
		{HeadConfig{Layers: 0, Out: 2}, "1 to 3"},
		{HeadConfig{Layers: 4, Out: 2}, "1 to 3"},
		{HeadConfig{Layers: 1}, "output width"},
		{HeadConfig{Layers: 2, Out: 2, Hidden: -1}, "hidden width"},
		{HeadConfig{Layers: 1, Out: 2, Norm: NormKind(5)}, "unknown norm"},
		{HeadConfig{Layers: 1, Out: 2, Act: ActKind(5)}, "unknown activation"},
		{HeadConfig{Layers: 1, Out: 2, Tokens: TokenBlockConfig{Kind: TokenMixer}}, "token count"},
		{HeadConfig{Layers: 1, Out: 2, Tokens: TokenBlockConfig{Kind: TokenBlockKind(7)}}, "unknown token block"},
	} {
		err := c.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Fatalf("%+v: error %v, want one containing %q", c.cfg, err, c.msg)
		}
	}
	for _, s := range []string{"bn", "ln", "none"} {
		if k, err := ParseNormKind(s); err != nil || k.String() != s {
			t.Fatalf("ParseNormKind(%s) = %v, %v", s, k, err)
		}
	}
	for _, s := range []string{"relu", "gelu"} {
		if k, err := ParseActKind(s); err != nil || k.String() != s {
			t.Fatalf("ParseActKind(%s) = %v, %v", s, k, err)
		}
	}
	if _, err := ParseNormKind("gn"); err == nil {
		t.Fatal("ParseNormKind(gn): want an error")
	}
}
