package distill

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/internal/nn"
	"github.com/ifa-toolkit/ifa/internal/param"
)

// HintLoss is the FitNets hint loss (Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015,
// Eq. (3), L_HT = ½‖u_h − r(v_g)‖²) in RepDistiller's form: the mean squared error over all
// elements between the regressed student map and the teacher map, both [B, H, W, C].
func HintLoss(regressed, teacher *graph.Node) *graph.Node {
	if !regressed.Shape().EqualDimensions(teacher.Shape()) {
		panicf("distill: hint: regressed student %s and teacher %s differ", regressed.Shape(), teacher.Shape())
	}
	return graph.ReduceAllMean(graph.Square(graph.Sub(regressed, teacher)))
}

// convRegSpec picks the ConvReg convolution for a student map [B, sH, sW, sC] and a teacher map
// [B, tH, tW, tC]: conv 3×3 stride 2 pad 1 when sH = 2·tH; transposed conv 4×4 stride 2 pad 1
// when 2·sH = tH; otherwise, when sH ≥ tH, a conv with kernel (1+sH−tH)×(1+sW−tW).
func convRegSpec(s, t shapes.Shape) (conv2dSpec, error) {
	if s.Rank() != 4 || t.Rank() != 4 {
		return conv2dSpec{}, fmt.Errorf("distill: hint: ConvReg wants [B, H, W, C] maps, got student %s and teacher %s", s, t)
	}
	sh, sw, th, tw, tc := s.Dim(1), s.Dim(2), t.Dim(1), t.Dim(2), t.Dim(3)
	switch {
	case sh == 2*th:
		return conv2dSpec{kh: 3, kw: 3, out: tc, stride: 2, pad: 1, bias: true}, nil
	case 2*sh == th:
		return conv2dSpec{kh: 4, kw: 4, out: tc, pad: 1, transposed: true, bias: true}, nil
	case sh >= th && sw >= tw:
		return conv2dSpec{kh: 1 + sh - th, kw: 1 + sw - tw, out: tc, stride: 1, bias: true}, nil
	}
	return conv2dSpec{}, fmt.Errorf("distill: hint: ConvReg cannot map a student map %s to a teacher map %s", s, t)
}

// ConvReg is FitNets' regressor in RepDistiller's form: a convolution chosen by convRegSpec
// (with bias) mapping the student map s: [B, sH, sW, sC] to the teacher's shape
// [B, tH, tW, tC], then BatchNorm (internal/nn, scope "bn") and ReLU. Convolution variables
// live in ctx.In("conv").
func ConvReg(ctx *context.Context, s *graph.Node, teacher shapes.Shape) *graph.Node {
	spec, err := convRegSpec(s.Shape(), teacher)
	if err != nil {
		panic(err)
	}
	y := conv2d(ctx.In("conv"), s, spec)
	y = nn.BatchNorm(ctx.In("bn"), y)
	return graph.Max(y, graph.ZerosLike(y))
}

// Hint is the registry entry for FitNets: HintLoss(ConvReg(f_s[h]), f_t[h]) on the stage maps
// Stages[h], h = ParamHintLayer (2); the regressor lives in scope hint/conv_reg; β = 100.
type Hint struct{}

// ParamHintLayer: which student/teacher stage map FitNets matches (RepDistiller hint_layer).
const ParamHintLayer = "hint_layer"

var hintParams = param.Table{
	{Key: ParamHintLayer, Default: 2, Doc: "FitNets: the stage map index matched (f[hint_layer])"},
}

// Params implements Tunable.
func (Hint) Params() param.Table { return hintParams }

// Name implements Method.
func (Hint) Name() string { return "hint" }

// DefaultBeta implements Weighted.
func (Hint) DefaultBeta() float64 { return 100 }

func (m Hint) layerShapes(ctx *context.Context, s, t FeatureShapes) (shapes.Shape, shapes.Shape, error) {
	h := param.Get[int](ctx.In(m.Name()), hintParams, ParamHintLayer)
	if h < 0 || h >= len(s.Stages) || h >= len(t.Stages) {
		return shapes.Shape{}, shapes.Shape{}, fmt.Errorf("distill: hint: %s = %d out of range: student has %d stage maps, teacher %d", ParamHintLayer, h, len(s.Stages), len(t.Stages))
	}
	for _, side := range []struct {
		name string
		f    FeatureShapes
	}{{"student", s}, {"teacher", t}} {
		if !side.f.Stages[h].Ok() {
			return shapes.Shape{}, shapes.Shape{}, fmt.Errorf("distill: hint: %s = %d: the %s has no map there (a ViT or MLP-Mixer has no stem map f0: choose %s >= 1)",
				ParamHintLayer, h, side.name, ParamHintLayer)
		}
	}
	return s.Stages[h], t.Stages[h], nil
}

// Check implements Method.
func (m Hint) Check(ctx *context.Context, s, t FeatureShapes) error {
	ss, ts, err := m.layerShapes(ctx, s, t)
	if err != nil {
		return err
	}
	if _, err := convRegSpec(ss, ts); err != nil {
		return err
	}
	if ss.Dim(0) != ts.Dim(0) {
		return fmt.Errorf("distill: hint: batch sizes differ: student %s, teacher %s", ss, ts)
	}
	return nil
}

// HeadParams implements WithHeads: the ConvReg convolution (weights and bias) and its BatchNorm scale
// and offset, counted once (METHODS.md §2.1).
func (m Hint) HeadParams(ctx *context.Context, s, t FeatureShapes) (HeadParams, error) {
	if err := m.Check(ctx, s, t); err != nil {
		return HeadParams{}, err
	}
	ss, ts, _ := m.layerShapes(ctx, s, t)
	spec, _ := convRegSpec(ss, ts)
	return HeadParams{Params: spec.kh*spec.kw*ss.Dim(3)*spec.out + spec.out + 2*spec.out}, nil
}

// Loss implements Method.
func (m Hint) Loss(ctx *context.Context, s, t backbone.Features, _ Step) *graph.Node {
	ctx = ctx.In(m.Name())
	h := param.Get[int](ctx, hintParams, ParamHintLayer)
	if h < 0 || h >= len(s.Stages) || h >= len(t.Stages) {
		panicf("distill: hint: %s = %d out of range: student has %d stage maps, teacher %d", ParamHintLayer, h, len(s.Stages), len(t.Stages))
	}
	ft := graph.StopGradient(t.Stages[h])
	return HintLoss(ConvReg(ctx.In("conv_reg"), s.Stages[h], ft.Shape()), ft)
}
