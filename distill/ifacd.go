package distill

import (
	"fmt"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/internal/param"
	"github.com/ifa-toolkit/ifa/ssl"
)

// Intermediate-features-augmented contrastive distillation (IFACD; arkel23/
// IntermediateFeaturesAugmentedRepDistiller at 62a53e7, the code behind the talk's tables;
// METHODS.md §2.2–2.4): the student's final pooled feature and the teacher's last L pooled taps,
// each through its head, are the 1 + L views of one image in a label-free SupCon loss ('all'
// anchors, τ = τ_b = 0.07; Khosla et al. 2020, Eq. 2 in the reference's L_out form, §3.1).

// Tunables of IFACD, read from the context (searched from the ifacd scope up to the root), their
// defaults in ifacdParams.
const (
	// ParamIFACDLayers: L, the number of the teacher's last taps contrasted with the student
	// (ifacd1/2/3 = 1/2/3; the reference's --cont_no_l).
	ParamIFACDLayers = "ifacd_layers"

	// ParamIFACDFeatDim: the width of the projectors' output (the reference's feat_dim).
	ParamIFACDFeatDim = "ifacd_feat_dim"

	// ParamIFACDTemperature: τ, also used as the base temperature τ_b (the reference's nce_t).
	ParamIFACDTemperature = "ifacd_t"

	// ParamIFACDTapSource: which teacher layers are the taps. "taps": backbone.Features.TapVectors
	// (the last stage's ReLU outputs of a CNN, pooled; METHODS.md §2.2); "stages": the pooled stage
	// outputs f1..f_last (block outputs, the talk's tap-choice ablation, §9.1); "auto": taps when the
	// teacher has any, stages otherwise.
	ParamIFACDTapSource = "ifacd_tap_source"

	// ParamIFACDRescalerLayers: the number of linear layers of each rescaler, 1 to 3 (rs_no_l).
	ParamIFACDRescalerLayers = "ifacd_rs_layers"

	// ParamIFACDRescalerAdaptive: rescaler depth by tap (rs_no_l_ada): 1 for the final tap, 2 for the
	// one before, 3 for the others; overrides ParamIFACDRescalerLayers.
	ParamIFACDRescalerAdaptive = "ifacd_rs_adaptive"

	// ParamIFACDRescalerHidden: the hidden width of rescalers with 2 or 3 layers (rs_hid_dim).
	ParamIFACDRescalerHidden = "ifacd_rs_hidden"

	// ParamIFACDRescalerNorm: the rescalers' normalisation, "bn" (BatchNorm1d), "ln" or "none".
	ParamIFACDRescalerNorm = "ifacd_rs_norm"

	// ParamIFACDRescalerAct: the rescalers' hidden activation, "relu" or "gelu" (--rs_ln uses ln
	// and gelu).
	ParamIFACDRescalerAct = "ifacd_rs_act"

	// ParamIFACDRescalerBlock: Rescaler V2 (§2.6, §9.1): "transformer" or "mixer" blocks on the
	// unpooled tap (token grid) before pooling and the rescaler MLP; "none" rescales the pooled tap.
	// A comma-separated list chooses per tap, one kind for each of the L taps in forward order
	// ("none,transformer": a plain rescaler on the earlier tap, a Transformer block on the last).
	ParamIFACDRescalerBlock = "ifacd_rs_block"

	// ParamIFACDSeparateProjectors: one teacher projector per tap instead of one shared by all
	// taps (--proj_ind, the talk's future work).
	ParamIFACDSeparateProjectors = "ifacd_proj_separate"

	// ParamIFACDDetach: stop the gradient at the rescalers' input (rs_detach). The teacher is frozen,
	// so this matters only for a teacher trained jointly; with false the teacher features are not
	// constants in Loss.
	ParamIFACDDetach = "ifacd_rs_detach"
)

var ifacdParams = param.Table{
	{Key: ParamIFACDLayers, Default: 2, Doc: "IFACD: number L of the teacher's last taps contrasted with the student (ifacd1/2/3)"},
	{Key: ParamIFACDFeatDim, Default: 128, Doc: "IFACD: projector output width"},
	{Key: ParamIFACDTemperature, Default: 0.07, Doc: "IFACD: SupCon temperature τ (= base temperature)"},
	{Key: ParamIFACDTapSource, Default: IFACDTapsAuto, Doc: "IFACD: teacher layers: taps (the last stage's ReLU outputs), stages (stage outputs) or auto (taps when the teacher has them)"},
	{Key: ParamIFACDRescalerLayers, Default: 1, Doc: "IFACD: linear layers per rescaler, 1 to 3"},
	{Key: ParamIFACDRescalerAdaptive, Default: false, Doc: "IFACD: rescaler depth 3..3, 2, 1 from shallow to deep taps (overrides the rescaler layers)"},
	{Key: ParamIFACDRescalerHidden, Default: 128, Doc: "IFACD: hidden width of 2- and 3-layer rescalers"},
	{Key: ParamIFACDRescalerNorm, Default: "bn", Doc: "IFACD: rescaler normalisation: bn, ln or none"},
	{Key: ParamIFACDRescalerAct, Default: "relu", Doc: "IFACD: rescaler activation: relu or gelu"},
	{Key: ParamIFACDRescalerBlock, Default: "none", Doc: "IFACD: Rescaler V2 token blocks on the unpooled taps: none, transformer or mixer for every tap, or a comma-separated list with one per tap in forward order (none,transformer)"},
	{Key: ParamIFACDSeparateProjectors, Default: false, Doc: "IFACD: one teacher projector per tap instead of one shared"},
	{Key: ParamIFACDDetach, Default: true, Doc: "IFACD: stop the gradient at the rescalers' input (no effect on a frozen teacher's weights)"},
}

// Params implements Tunable.
func (IFACD) Params() param.Table { return ifacdParams }

// IFACD tap sources (ParamIFACDTapSource).
const (
	IFACDTapsAuto   = "auto"
	IFACDTapsTaps   = "taps"
	IFACDTapsStages = "stages"
)

// IFACDConfig is IFACD's configuration: the context parameters, parsed and validated.
type IFACDConfig struct {
	// Layers: L, the number of the teacher's last taps.
	Layers int
	// FeatDim: the projectors' output width.
	FeatDim int
	// Temperature: τ = τ_b.
	Temperature float64
	// TapSource: IFACDTapsAuto, IFACDTapsTaps or IFACDTapsStages.
	TapSource string
	// RescalerLayers (1 to 3), RescalerHidden, RescalerNorm and RescalerAct shape each rescaler
	// MLP; RescalerAdaptive overrides the depth per tap.
	RescalerLayers   int
	RescalerAdaptive bool
	RescalerHidden   int
	RescalerNorm     ssl.NormKind
	RescalerAct      ssl.ActKind
	// RescalerBlock: ssl.TokenNone, or the Rescaler V2 token blocks on the unpooled taps, for every
	// tap; RescalerBlocks, when set, overrides it per tap: one kind for each of the L taps, in
	// forward order (the parameter's comma-separated form, e.g. "none,transformer").
	RescalerBlock  ssl.TokenBlockKind
	RescalerBlocks []ssl.TokenBlockKind
	// SeparateProjectors: one teacher projector per tap.
	SeparateProjectors bool
	// Detach: stop the gradient at the rescalers' input.
	Detach bool
}

// DefaultIFACDConfig is the talk's configuration, the parameter table's defaults: ifacd2,
// Linear + BN1d heads, one shared teacher projector, feature width 128, τ = 0.07, detached
// rescaler input.
func DefaultIFACDConfig() IFACDConfig {
	c, err := IFACDConfigFromContext(context.New())
	if err != nil {
		panic(err) // invalid defaults in ifacdParams: caught by the tests
	}
	return c
}

// IFACDConfigFromContext reads the IFACD parameters from ctx (give it the ifacd scope, or any scope
// below which the parameters are visible).
func IFACDConfigFromContext(ctx *context.Context) (IFACDConfig, error) {
	c := IFACDConfig{
		Layers:             param.Get[int](ctx, ifacdParams, ParamIFACDLayers),
		FeatDim:            param.Get[int](ctx, ifacdParams, ParamIFACDFeatDim),
		Temperature:        param.Get[float64](ctx, ifacdParams, ParamIFACDTemperature),
		TapSource:          param.Get[string](ctx, ifacdParams, ParamIFACDTapSource),
		RescalerLayers:     param.Get[int](ctx, ifacdParams, ParamIFACDRescalerLayers),
		RescalerAdaptive:   param.Get[bool](ctx, ifacdParams, ParamIFACDRescalerAdaptive),
		RescalerHidden:     param.Get[int](ctx, ifacdParams, ParamIFACDRescalerHidden),
		SeparateProjectors: param.Get[bool](ctx, ifacdParams, ParamIFACDSeparateProjectors),
		Detach:             param.Get[bool](ctx, ifacdParams, ParamIFACDDetach),
	}
	var err error
	if c.RescalerNorm, err = ssl.ParseNormKind(param.Get[string](ctx, ifacdParams, ParamIFACDRescalerNorm)); err != nil {
		return c, fmt.Errorf("distill: ifacd: %s: %w", ParamIFACDRescalerNorm, err)
	}
	if c.RescalerAct, err = ssl.ParseActKind(param.Get[string](ctx, ifacdParams, ParamIFACDRescalerAct)); err != nil {
		return c, fmt.Errorf("distill: ifacd: %s: %w", ParamIFACDRescalerAct, err)
	}
	blocks := strings.Split(param.Get[string](ctx, ifacdParams, ParamIFACDRescalerBlock), ",")
	for _, block := range blocks {
		var kind ssl.TokenBlockKind
		switch strings.TrimSpace(block) {
		case "none":
			kind = ssl.TokenNone
		case "transformer":
			kind = ssl.TokenTransformer
		case "mixer":
			kind = ssl.TokenMixer
		default:
			return c, fmt.Errorf("distill: ifacd: %s %q: want none, transformer or mixer, or a comma-separated list of them, one per tap",
				ParamIFACDRescalerBlock, block)
		}
		c.RescalerBlocks = append(c.RescalerBlocks, kind)
	}
	c.RescalerBlock = c.RescalerBlocks[0]
	if len(c.RescalerBlocks) == 1 {
		c.RescalerBlocks = nil
	}
	return c, c.Validate()
}

// Validate reports the first invalid field.
func (c IFACDConfig) Validate() error {
	switch {
	case c.Layers < 1:
		return fmt.Errorf("distill: ifacd: %d teacher taps (%s), want >= 1", c.Layers, ParamIFACDLayers)
	case c.FeatDim < 1:
		return fmt.Errorf("distill: ifacd: feature width %d (%s), want >= 1", c.FeatDim, ParamIFACDFeatDim)
	case !(c.Temperature > 0):
		return fmt.Errorf("distill: ifacd: temperature %g (%s), want > 0", c.Temperature, ParamIFACDTemperature)
	case c.RescalerLayers < 1 || c.RescalerLayers > 3:
		return fmt.Errorf("distill: ifacd: %d rescaler layers (%s), want 1 to 3", c.RescalerLayers, ParamIFACDRescalerLayers)
	case c.RescalerHidden < 1:
		return fmt.Errorf("distill: ifacd: rescaler hidden width %d (%s), want >= 1", c.RescalerHidden, ParamIFACDRescalerHidden)
	case c.RescalerBlocks != nil && len(c.RescalerBlocks) != c.Layers:
		return fmt.Errorf("distill: ifacd: %d rescaler blocks (%s), want one for every tap or one per tap (%d)",
			len(c.RescalerBlocks), ParamIFACDRescalerBlock, c.Layers)
	}
	switch c.TapSource {
	case IFACDTapsAuto, IFACDTapsTaps, IFACDTapsStages:
	default:
		return fmt.Errorf("distill: ifacd: tap source %q (%s): want auto, taps or stages", c.TapSource, ParamIFACDTapSource)
	}
	return nil
}

// projector is the head of the student projector and of the teacher projector(s): Linear + BN1d to
// FeatDim.
func (c IFACDConfig) projector() ssl.HeadConfig { return ssl.IFACDHead(c.FeatDim) }

// rescaler is the head of the j-th of the n selected taps (forward order) onto the final tap's
// width dt; tokens is the tap's token count (H·W), used by the Rescaler V2 blocks.
func (c IFACDConfig) rescaler(j, n, dt, tokens int) ssl.HeadConfig {
	layers := c.RescalerLayers
	if c.RescalerAdaptive {
		layers = min(3, n-j)
	}
	h := ssl.HeadConfig{Layers: layers, Hidden: c.RescalerHidden, Out: dt, Norm: c.RescalerNorm, Act: c.RescalerAct}
	if kind := c.block(j); kind != ssl.TokenNone {
		h.Tokens = ssl.TokenBlockConfig{Kind: kind, Tokens: tokens}
	}
	return h
}

// block is the Rescaler V2 kind of the j-th selected tap (forward order).
func (c IFACDConfig) block(j int) ssl.TokenBlockKind {
	if c.RescalerBlocks != nil {
		return c.RescalerBlocks[j]
	}
	return c.RescalerBlock
}

// useStages resolves the tap source for a teacher that has taps (hasTaps) or not.
func (c IFACDConfig) useStages(hasTaps bool) bool {
	return c.TapSource == IFACDTapsStages || (c.TapSource == IFACDTapsAuto && !hasTaps)
}

// ifacdTapShape is what the heads need to know of one teacher tap.
type ifacdTapShape struct {
	width  int // C_l
	tokens int // H·W of the unpooled map (T of a token grid); 0 when only the vector is known
}

// tapShapes returns the shapes of the teacher taps IFACD would use, in forward order.
func (c IFACDConfig) tapShapes(t FeatureShapes) ([]ifacdTapShape, error) {
	hasTaps := len(t.TapVectors) > 0 || len(t.Taps) > 0
	var grids, vecs []shapes.Shape
	if c.useStages(hasTaps) {
		if len(t.Stages) < 2 {
			return nil, fmt.Errorf("distill: ifacd: the teacher has %d stage maps, want the stem and at least one stage (%s %s)",
				len(t.Stages), ParamIFACDTapSource, c.TapSource)
		}
		grids = t.Stages[1:]
	} else {
		if !hasTaps {
			return nil, fmt.Errorf("distill: ifacd: the teacher has no layer taps (%s %s)", ParamIFACDTapSource, c.TapSource)
		}
		grids, vecs = t.Taps, t.TapVectors
	}
	n := max(len(grids), len(vecs))
	out := make([]ifacdTapShape, n)
	for i := range out {
		var s shapes.Shape
		switch {
		case i < len(vecs):
			s = vecs[i]
		case i < len(grids):
			s = grids[i]
		}
		if !s.Ok() || s.Rank() < 2 {
			return nil, fmt.Errorf("distill: ifacd: teacher tap %d has shape %s, want [B, C] or a map", i, s)
		}
		out[i].width = s.Dim(-1)
		if i < len(grids) && grids[i].Ok() && grids[i].Rank() >= 3 {
			g := grids[i]
			out[i].tokens = g.Size() / (g.Dim(0) * g.Dim(-1))
			if vecs != nil && g.Dim(-1) != out[i].width {
				return nil, fmt.Errorf("distill: ifacd: teacher tap %d: map %s and vector %s differ in width", i, g, s)
			}
		}
	}
	return out, nil
}

// taps returns the teacher tap vectors ([B, C_l]) and, when available, the unpooled taps, in
// forward order, from the source the configuration selects.
func (c IFACDConfig) taps(t backbone.Features) (vecs, grids []*graph.Node) {
	hasTaps := len(t.TapVectors) > 0 || len(t.Taps) > 0
	if c.useStages(hasTaps) {
		if len(t.Stages) < 2 {
			panicf("distill: ifacd: the teacher has %d stage maps, want the stem and at least one stage", len(t.Stages))
		}
		grids = t.Stages[1:]
	} else {
		grids, vecs = t.Taps, t.TapVectors
	}
	if vecs == nil {
		vecs = make([]*graph.Node, len(grids))
		for i, g := range grids {
			vecs[i] = backbone.GlobalAvgPool(g)
		}
	}
	return vecs, grids
}

// IFACD is the registry entry for intermediate-features-augmented contrastive distillation
// (METHODS.md §2.2–2.4), with β = 0.8.
//
// The views of image i are v_{i,0} = normalize(p_s(s_i)), the student's pooled feature through the
// student projector, and v_{i,j} = normalize(p_t(r_ℓj(t_{i,ℓj}))) for the teacher's last L taps
// ℓ_1 < … < ℓ_L (the final tap included), each pooled tap through its own rescaler r_ℓ onto the
// final tap's width d_t and then the teacher projector p_t; stacked [B, 1+L, FeatDim] and
// contrasted with SupCon ('all' anchors, no labels, τ = τ_b = ParamIFACDTemperature). Every
// teacher view of an image is a positive of its student view and of its other teacher views; all
// views of the other images are negatives; there is no memory bank.
//
// Heads (trainable, under ifacd/): proj_s (Linear d_s → FeatDim + BN1d); rescaler_<ℓ> (ℓ the
// tap's 0-based index in forward order, two digits; Linear C_ℓ → d_t + BN1d by default); proj_t
// (Linear d_t → FeatDim + BN1d, shared by all taps, each call normalised with its own batch
// statistics) or, with ParamIFACDSeparateProjectors, proj_t_<ℓ>. The talk counts them twice in
// its parameter table (§2.1).
type IFACD struct{}

// Name implements Method.
func (IFACD) Name() string { return "ifacd" }

// DefaultBeta implements Weighted: 0.8. This is an assumption: the talk does not record IFACD's
// weight and the reference's default (0) would disable the term; 0.8 is CRD's weight, whose flags
// the reference keeps (METHODS.md §2.4).
func (IFACD) DefaultBeta() float64 { return 0.8 }

// RunLabel implements Labeled: ifacdL, L the number of teacher taps.
func (m IFACD) RunLabel(ctx *context.Context) (string, error) {
	cfg, err := IFACDConfigFromContext(ctx.In(m.Name()))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("ifacd%d", cfg.Layers), nil
}

// Check implements Method.
func (m IFACD) Check(ctx *context.Context, s, t FeatureShapes) error {
	_, _, err := m.resolve(ctx, s, t)
	return err
}

// resolve reads the configuration and checks the shapes; it returns the configuration and the
// shapes of all teacher taps.
func (m IFACD) resolve(ctx *context.Context, s, t FeatureShapes) (IFACDConfig, []ifacdTapShape, error) {
	cfg, err := IFACDConfigFromContext(ctx.In(m.Name()))
	if err != nil {
		return cfg, nil, err
	}
	if !s.Pooled.Ok() || s.Pooled.Rank() != 2 {
		return cfg, nil, fmt.Errorf("distill: ifacd: the student needs a pooled feature [B, D], got %s", s.Pooled)
	}
	taps, err := cfg.tapShapes(t)
	if err != nil {
		return cfg, nil, err
	}
	if cfg.Layers > len(taps) {
		return cfg, nil, fmt.Errorf("distill: ifacd: %s = %d, but the teacher has only %d taps", ParamIFACDLayers, cfg.Layers, len(taps))
	}
	b := s.Pooled.Dim(0)
	for i, ts := range t.TapVectors {
		if ts.Ok() && ts.Dim(0) != b {
			return cfg, nil, fmt.Errorf("distill: ifacd: student batch %d, teacher tap %d batch %d", b, i, ts.Dim(0))
		}
	}
	for j, ts := range taps[len(taps)-cfg.Layers:] {
		i := len(taps) - cfg.Layers + j
		switch cfg.block(j) {
		case ssl.TokenNone:
			continue
		case ssl.TokenTransformer:
			if ts.width%ssl.DefaultTokenHeads != 0 {
				return cfg, nil, fmt.Errorf("distill: ifacd: Rescaler V2 transformer: tap %d has %d channels, not divisible by %d heads",
					i, ts.width, ssl.DefaultTokenHeads)
			}
		}
		if ts.tokens == 0 {
			return cfg, nil, fmt.Errorf("distill: ifacd: Rescaler V2 (%s) needs the unpooled teacher taps; tap %d has none", ParamIFACDRescalerBlock, i)
		}
	}
	return cfg, taps, nil
}

// HeadParams implements WithHeads: the student projector, one rescaler per selected tap and the
// teacher projector (one per selected tap when separate), counted twice in the talk's convention.
func (m IFACD) HeadParams(ctx *context.Context, s, t FeatureShapes) (HeadParams, error) {
	cfg, taps, err := m.resolve(ctx, s, t)
	if err != nil {
		return HeadParams{}, err
	}
	dt := taps[len(taps)-1].width
	n := ssl.HeadParams(cfg.projector(), s.Pooled.Dim(1))
	sel := taps[len(taps)-cfg.Layers:]
	for j, ts := range sel {
		n += ssl.HeadParams(cfg.rescaler(j, len(sel), dt, ts.tokens), ts.width)
	}
	projT := ssl.HeadParams(cfg.projector(), dt)
	if cfg.SeparateProjectors {
		projT *= len(sel)
	}
	return HeadParams{Params: n + projT, CountedTwice: true}, nil
}

// Loss implements Method: L_IFACD, a scalar.
func (m IFACD) Loss(ctx *context.Context, s, t backbone.Features, _ Step) *graph.Node {
	ctx = ctx.In(m.Name())
	cfg, err := IFACDConfigFromContext(ctx)
	if err != nil {
		panic(err)
	}
	if s.Pooled == nil {
		panicf("distill: ifacd: the student has no pooled feature")
	}
	vecs, grids := cfg.taps(t)
	if len(vecs) < cfg.Layers {
		panicf("distill: ifacd: %s = %d, but the teacher has only %d taps", ParamIFACDLayers, cfg.Layers, len(vecs))
	}
	views, err := ssl.CDViews(s.Pooled, vecs, ssl.CDViewOptions{
		Taps: backbone.LayerSelect{Last: cfg.Layers}, TeacherGradient: !cfg.Detach,
	})
	if err != nil {
		panic(err)
	}
	dt := vecs[len(vecs)-1].Shape().Dim(-1)
	projT := ssl.SharedHead(ctx.In("proj_t"), cfg.projector())
	j := 0
	z := ssl.EmbedViews(views, func(v ssl.View) *graph.Node {
		if v.Source == ssl.SourceStudent {
			return ssl.Head(ctx.In("proj_s"), cfg.projector(), v.Input)
		}
		in, tokens := v.Input, 0
		if cfg.block(j) != ssl.TokenNone {
			if v.Layer >= len(grids) || grids[v.Layer] == nil || grids[v.Layer].Rank() < 3 {
				panicf("distill: ifacd: Rescaler V2 needs the unpooled teacher tap %d", v.Layer)
			}
			in = grids[v.Layer]
			if v.Detached {
				in = graph.StopGradient(in)
			}
			tokens = in.Shape().Size() / (in.Shape().Dim(0) * in.Shape().Dim(-1))
		}
		r := ssl.Head(ctx.In(fmt.Sprintf("rescaler_%02d", v.Layer)), cfg.rescaler(j, cfg.Layers, dt, tokens), in)
		j++
		if cfg.SeparateProjectors {
			return ssl.Head(ctx.In(fmt.Sprintf("proj_t_%02d", v.Layer)), cfg.projector(), r)
		}
		return projT(r)
	})
	return ssl.SupCon(z, nil, ssl.SupConOptions{
		Temperature: cfg.Temperature, BaseTemperature: cfg.Temperature, Mode: ssl.ContrastAll,
	})
}
