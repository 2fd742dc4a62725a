package vit

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/internal/testutil"
)

// tinyMixer is a small configuration the naive reference can run quickly: a 2×3 grid of 6 tokens.
func tinyMixer() MixerConfig {
	return MixerConfig{Name: "tiny", Dim: 6, TokenMLPDim: 5, ChannelMLPDim: 7, Depth: 2, Patch: 2,
		ImageHeight: 4, ImageWidth: 6, Channels: 3, NumClasses: 5, LayerNormEps: 1e-6}
}

// refMixerForward is the naive MLP-Mixer of one image img [H][W][C] (flattened channels-last),
// written from the formulas of Tolstikhin et al. with the model's variables under the root scope.
func refMixerForward(t *testing.T, ctx *context.Context, c MixerConfig, img []float64) refOutput {
	p := refParams{t: t, ctx: ctx}
	d, pp := c.Dim, c.Patch
	we, be := p.mat("/" + ScopePatchEmbed)
	var x [][]float64 // [N][D]
	for pr := 0; pr < c.ImageHeight/pp; pr++ {
		for pc := 0; pc < c.ImageWidth/pp; pc++ {
			var patch []float64
			for py := range pp {
				for px := range pp {
					for ch := range c.Channels {
						patch = append(patch, img[((pr*pp+py)*c.ImageWidth+pc*pp+px)*c.Channels+ch])
					}
				}
			}
			x = append(x, vecMat(patch, we, be))
		}
	}
	n := len(x)
	gelu := func(v []float64) []float64 {
		for i := range v {
			v[i] = refGELU(v[i])
		}
		return v
	}
	var out refOutput
	for l := range c.Depth {
		s := "/" + BlockScope(l)
		g1, o1 := p.vec(s+"/norm1", "gain"), p.vec(s+"/norm1", "offset")
		w1, b1 := p.mat(s + "/token_mlp/fc1")
		w2, b2 := p.mat(s + "/token_mlp/fc2")
		g2, o2 := p.vec(s+"/norm2", "gain"), p.vec(s+"/norm2", "offset")
		w3, b3 := p.mat(s + "/channel_mlp/fc1")
		w4, b4 := p.mat(s + "/channel_mlp/fc2")
		// Token mixing: for every channel e, the column (LN1(x)[t][e])_t goes through the token MLP.
		normed := make([][]float64, n)
		for tok := range x {
			normed[tok] = refLayerNorm(x[tok], g1, o1, c.LayerNormEps)
		}
		a := make([][]float64, n)
		for tok := range a {
			a[tok] = append([]float64(nil), x[tok]...)
		}
		for e := range d {
			col := make([]float64, n)
			for tok := range n {
				col[tok] = normed[tok][e]
			}
			mixed := vecMat(gelu(vecMat(col, w1, b1)), w2, b2)
			for tok := range n {
				a[tok][e] += mixed[tok]
			}
		}
		// Channel mixing, token by token.
		for tok := range a {
			m := vecMat(gelu(vecMat(refLayerNorm(a[tok], g2, o2, c.LayerNormEps), w3, b3)), w4, b4)
			for e := range d {
				a[tok][e] += m[e]
			}
		}
		x = a
		out.taps = append(out.taps, x)
		vec := make([]float64, d)
		for _, tok := range x {
			ln := refLayerNorm(tok, p.vec("/"+ScopeNorm, "gain"), p.vec("/"+ScopeNorm, "offset"), c.LayerNormEps)
			for e := range d {
				vec[e] += ln[e] / float64(n)
			}
		}
		out.vectors = append(out.vectors, vec)
	}
	if c.NumClasses > 0 {
		wh, bh := p.mat("/" + ScopeHead)
		out.logits = vecMat(out.vectors[len(out.vectors)-1], wh, bh)
	}
	return out
}

// runMixer runs the model in inference mode and returns its outputs on the host.
func runMixer(t *testing.T, ctx *context.Context, m *Mixer, images *tensors.Tensor) hostFeatures {
	t.Helper()
	return runEncoder(t, ctx, m.Features, m.Config().Depth, images, false)
}

func TestMixerForwardMatchesNaiveReference(t *testing.T) {
	c := tinyMixer()
	m, err := NewMixer(c)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(21, 22))
	const b = 2
	imgs := randSlice(r, b*c.ImageHeight*c.ImageWidth*c.Channels, 1)
	images := tensors.FromFlatDataAndDimensions(toF32(imgs), b, c.ImageHeight, c.ImageWidth, c.Channels)
	ctx := newCtx()
	runMixer(t, ctx, m, images) // creates and initialises the variables
	randomizeVariables(t, ctx, r)
	got := runMixer(t, ctx, m, images)

	per := c.ImageHeight * c.ImageWidth * c.Channels
	n := c.NumTokens()
	const tol = 2e-4
	for i := range b {
		ref := refMixerForward(t, ctx, c, imgs[i*per:(i+1)*per])
		for l := range c.Depth {
			if want := shapes.Make(dtypes.Float32, b, n, c.Dim); !got.taps[l].Shape().Equal(want) {
				t.Fatalf("tap %d shape %s, want %s", l, got.taps[l].Shape(), want)
			}
			var flat []float64
			for _, tok := range ref.taps[l] {
				flat = append(flat, tok...)
			}
			tap := toF64(t, got.taps[l])[i*n*c.Dim : (i+1)*n*c.Dim]
			if diff := maxAbsDiff(tap, flat); diff > tol*scale(flat) {
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
}

// TestMixerTokenMixingCrossesTokens: changing one patch changes the tap at every token after one
// block (token mixing), while with the token MLP's output weights and biases at zero only that
// token's output changes.
func TestMixerTokenMixingCrossesTokens(t *testing.T) {
	c := tinyMixer()
	c.Depth = 1
	m, err := NewMixer(c)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 5))
	imgs := randSlice(r, c.ImageHeight*c.ImageWidth*c.Channels, 1)
	other := append([]float64(nil), imgs...)
	other[0] += 1 // pixel (0, 0): token 0
	tensor := func(x []float64) *tensors.Tensor {
		return tensors.FromFlatDataAndDimensions(toF32(x), 1, c.ImageHeight, c.ImageWidth, c.Channels)
	}
	ctx := newCtx()
	runMixer(t, ctx, m, tensor(imgs))
	randomizeVariables(t, ctx, r)
	changedTokens := func() int {
		a := toF64(t, runMixer(t, ctx, m, tensor(imgs)).taps[0])
		b := toF64(t, runMixer(t, ctx, m, tensor(other)).taps[0])
		n := 0
		for tok := range c.NumTokens() {
			if maxAbsDiff(a[tok*c.Dim:(tok+1)*c.Dim], b[tok*c.Dim:(tok+1)*c.Dim]) > 1e-6 {
				n++
			}
		}
		return n
	}
	if got := changedTokens(); got != c.NumTokens() {
		t.Errorf("with token mixing, %d of %d tokens changed", got, c.NumTokens())
	}
	for _, name := range []string{"weights", "biases"} {
		v := ctx.GetVariableByScopeAndName("/"+BlockScope(0)+"/token_mlp/fc2", name)
		if err := v.SetValue(tensors.FromShape(v.Shape())); err != nil {
			t.Fatal(err)
		}
	}
	if got := changedTokens(); got != 1 {
		t.Errorf("without token mixing, %d tokens changed, want 1", got)
	}
}

// TestMixerRegistryAndParamCounts builds every registered config (and a patch variant, with and
// without a head), checks the output shapes and that the variables add up to ParamCount, and checks
// ParamCount against a published count and a hand count.
func TestMixerRegistryAndParamCounts(t *testing.T) {
	for _, name := range append(MixerNames(), "s_32", "nano_7") {
		base, err := GetMixer(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []MixerConfig{base, base.WithClasses(10)} {
			m, err := NewMixer(c)
			if err != nil {
				t.Fatal(err)
			}
			g := graph.NewGraph(testutil.Backend(), "mixer_"+c.Name)
			images := graph.Parameter(g, "images", shapes.Make(dtypes.Float32, 2, c.ImageHeight, c.ImageWidth, c.Channels))
			ctx := context.New()
			f := m.Features(ctx, images)
			checkEncoderShapes(t, c.Name, c.Depth, c.NumTokens(), c.Dim, c.NumClasses, f)
			if got := ctx.NumParameters(); got != c.ParamCount() {
				t.Errorf("%s: %d parameters in the context, ParamCount says %d", c, got, c.ParamCount())
			}
			g.Finalize()
		}
	}
	// timm's mixer_b16_224: 59,880,472 parameters with its 1000-class head.
	b, _ := GetMixer("b_16")
	if got := b.WithClasses(1000).ParamCount(); got != 59_880_472 {
		t.Errorf("b_16: ParamCount %d, want 59,880,472", got)
	}
	// nano: patch 4·4·1·64+64; 49 tokens; 4 blocks of 4·64 (LayerNorms) + 49·32+32 + 32·49+49 (token
	// MLP) + 64·128+128 + 128·64+64 (channel MLP); norm_layer 2·64.
	nano, _ := GetMixer("nano")
	if want := 1088 + 4*(256+1600+1617+8320+8256) + 128; nano.ParamCount() != want {
		t.Errorf("nano: ParamCount %d, want %d", nano.ParamCount(), want)
	}
}

// TestMixerScopesGolden pins the variable paths and shapes (the checkpoint format) of the nano
// Mixer with a 10-class head. Run with -update to rewrite after a deliberate change.
func TestMixerScopesGolden(t *testing.T) {
	c, _ := GetMixer("nano")
	m, err := NewMixer(c.WithClasses(10))
	if err != nil {
		t.Fatal(err)
	}
	g := graph.NewGraph(testutil.Backend(), "mixer_nano")
	defer g.Finalize()
	ctx := context.New()
	m.Features(ctx, graph.Parameter(g, "images", shapes.Make(dtypes.Float32, 2, 28, 28, 1)))
	checkScopesGolden(t, ctx, "scopes_mixer_nano.golden", "TestMixerScopesGolden")
}

func TestMixerConfigValidation(t *testing.T) {
	good := tinyMixer()
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]MixerConfig{
		"patch":   good.WithPatch(4),
		"image":   good.WithImage(0, 6, 3),
		"eps":     func() MixerConfig { c := good; c.LayerNormEps = 0; return c }(),
		"classes": good.WithClasses(-1),
		"depth":   func() MixerConfig { c := good; c.Depth = 0; return c }(),
		"token":   func() MixerConfig { c := good; c.TokenMLPDim = 0; return c }(),
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: want a validation error", name)
		}
		if _, err := NewMixer(c); err == nil {
			t.Errorf("%s: NewMixer accepted an invalid config", name)
		}
	}
	for _, bad := range []string{"ti", "nano_", "nano_x", "nano_0", ""} {
		if _, err := GetMixer(bad); err == nil {
			t.Errorf("GetMixer(%q): want an error", bad)
		}
	}
	c, err := GetMixer("S_32")
	if err != nil || c.Patch != 32 || c.Dim != 512 || c.Name != "s_32" || c.LayerNormEps != MixerLayerNormEps {
		t.Errorf("GetMixer(S_32) = %+v, %v", c, err)
	}
}

// TestMixerGradientFiniteDifferences checks the backward pass through the whole model (float64)
// against central differences of Σ logits·w with respect to a few input pixels, and that every
// variable gets a gradient.
func TestMixerGradientFiniteDifferences(t *testing.T) {
	c := tinyMixer()
	m, err := NewMixer(c)
	if err != nil {
		t.Fatal(err)
	}
	checkImageGradient(t, rand.New(rand.NewPCG(13, 14)), [4]int{c.ImageHeight, c.ImageWidth, c.Channels, c.NumClasses},
		[]int{0, 7, 23, 50, -1}, m.Features)
}

// TestTokenGrid checks that TokenGrid puts token r·cols + c at grid cell (r, c), drops a ViT's CLS
// token and refuses token counts that fit neither.
func TestTokenGrid(t *testing.T) {
	const b, rows, cols, d = 2, 2, 3, 4
	for _, cls := range []int{0, 1} {
		tokens := cls + rows*cols
		x := make([]float64, b*tokens*d)
		for i := range x {
			x[i] = float64(i)
		}
		got, err := graph.ExecOnce(testutil.Backend(), func(tap *graph.Node) *graph.Node {
			return TokenGrid(tap, rows, cols)
		}, tensors.FromFlatDataAndDimensions(x, b, tokens, d))
		if err != nil {
			t.Fatal(err)
		}
		if !equalInts(got.Shape().Dimensions, []int{b, rows, cols, d}) {
			t.Fatalf("cls=%d: shape %v", cls, got.Shape().Dimensions)
		}
		v := tensors.MustCopyFlatData[float64](got)
		for n := range b {
			for r := range rows {
				for c := range cols {
					for e := range d {
						want := x[(n*tokens+cls+r*cols+c)*d+e]
						if g := v[((n*rows+r)*cols+c)*d+e]; g != want {
							t.Fatalf("cls=%d: grid[%d,%d,%d,%d] = %g, want %g", cls, n, r, c, e, g, want)
						}
					}
				}
			}
		}
	}
	_, err := graph.ExecOnce(testutil.Backend(), func(tap *graph.Node) *graph.Node {
		return TokenGrid(tap, rows, cols)
	}, tensors.FromShape(shapes.Make(dtypes.Float32, 1, 8, d)))
	if err == nil || !strings.Contains(err.Error(), "grid") {
		t.Errorf("8 tokens on a 2x3 grid: err %v", err)
	}
	vc, _ := Get("nano")
	if r, c := vc.Grid(); r != 7 || c != 7 {
		t.Errorf("vit nano grid %dx%d, want 7x7", r, c)
	}
	mc, _ := GetMixer("s")
	if r, c := mc.WithImage(224, 160, 3).Grid(); r != 14 || c != 10 || mc.NumTokens() != 196 {
		t.Errorf("mixer s grid %dx%d (%d tokens), want 14x10 (196 at 224x224)", r, c, mc.NumTokens())
	}
}
