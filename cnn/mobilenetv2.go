package cnn

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
)

// mobileNetV2Stages are the (expansion, channels, blocks, stride) rows of MobileNetV2 at width 1; the
// expansion of every row but the first is the config's Expansion.
var mobileNetV2Stages = [7][4]int{{1, 16, 1, 1}, {0, 24, 2, 1}, {0, 32, 3, 2}, {0, 64, 4, 2}, {0, 96, 3, 1}, {0, 160, 3, 2}, {0, 320, 1, 1}}

// MobileNetV2Config is the CIFAR MobileNetV2 of RepDistiller's mobilenetv2.py (Sandler et al. 2018):
// a 3×3 stride-2 stem conv + BN + ReLU to 32·WidthMult channels, seven stages of inverted-residual
// blocks (1×1 expansion conv + BN + ReLU, 3×3 depthwise conv + BN + ReLU, 1×1 projection conv + BN;
// identity residual when the stride is 1 and the width is unchanged), a 1×1 conv + BN + ReLU to 1280
// channels, a global average pool and a linear classifier. The registry's "mobilenetv2" is the
// reference's "mobile_half": Expansion 6, WidthMult 0.5.
//
// Convolutions have no bias and N(0, 2/(k²·C_out)) weights; BN starts at γ = 1, β = 0; the classifier
// has N(0, 0.01²) weights and zero biases.
//
// Scopes: stem/{conv,bn}; stage_S/block_B/{expand,depthwise,project}/{conv,bn} with S = 0..6 (the
// reference's blocks[S]); head/{conv,bn}; fc.
//
// Input sizes: the stem and three stages halve the map (ceil for odd sizes), so 32×32 gives a 2×2
// final map and 28×28 gives 2×2 as well (28 → 14 → 7 → 4 → 2).
type MobileNetV2Config struct {
	// Expansion is the expansion ratio t of stages 1..6 (6 in the reference).
	Expansion int
	// WidthMult scales every width except the final 1280 (0.5 in the reference).
	WidthMult float64
}

// Family implements Config.
func (c MobileNetV2Config) Family() Family { return FamilyMobileNetV2 }

// Validate implements Config.
func (c MobileNetV2Config) Validate() error {
	if c.Expansion < 1 {
		return fmt.Errorf("mobilenetv2 expansion %d < 1", c.Expansion)
	}
	if !(c.WidthMult > 0) || int(8*c.WidthMult) < 1 {
		return fmt.Errorf("mobilenetv2 width multiplier %v leaves a stage without channels", c.WidthMult)
	}
	return nil
}

// build implements Config.
//
// Features: Stages = [f0 stem, f1 after stage 1, f2 after stage 2, f3 after stage 4, f4 after stage
// 6] as in the reference's is_feat; PreactStages = Stages (the stage outputs have no final ReLU);
// Pooled = the global average of the 1280-channel head; Taps = [the last block's expansion ReLU, its
// depthwise ReLU, the head's ReLU] (the last stage's ReLU outputs; METHODS.md §2.2 does not list
// MobileNetV2 taps, this is ifa's choice).
func (c MobileNetV2Config) build(ctx *context.Context, images *graph.Node, numClasses int) backbone.Features {
	width := func(ch int) int { return int(float64(ch) * c.WidthMult) }
	x := relu(convBN(ctx.In("stem"), images, "conv", "bn", ConvOptions{Out: width(32), Kernel: 3, Stride: 2, Padding: 1}))
	f := backbone.Features{Stages: []*graph.Node{x}}
	var expanded, depthwise *graph.Node
	for s, row := range mobileNetV2Stages {
		t := row[0]
		if t == 0 {
			t = c.Expansion
		}
		for b := range row[2] {
			stride := 1
			if b == 0 {
				stride = row[3]
			}
			x, expanded, depthwise = invertedResidual(ctx.In(fmt.Sprintf("stage_%d", s)).In(fmt.Sprintf("block_%d", b)),
				x, width(row[1]), stride, t)
		}
		if s == 1 || s == 2 || s == 4 || s == 6 {
			f.Stages = append(f.Stages, x)
		}
	}
	f.PreactStages = f.Stages
	head := relu(convBN(ctx.In("head"), x, "conv", "bn", ConvOptions{Out: max(1280, width(1280)), Kernel: 1}))
	f.Taps = []*graph.Node{expanded, depthwise, head}
	return withHead(ctx, f, head, numClasses, LinearNormal001)
}

// invertedResidual is MobileNetV2's block; x: [B, H, W, Cin] → [B, ⌈H/stride⌉, ⌈W/stride⌉, out]. It
// also returns its two ReLU outputs (after the expansion and after the depthwise conv).
func invertedResidual(ctx *context.Context, x *graph.Node, out, stride, expansion int) (y, expanded, depthwise *graph.Node) {
	cin := x.Shape().Dim(-1)
	hidden := cin * expansion
	expanded = relu(convBN(ctx.In("expand"), x, "conv", "bn", ConvOptions{Out: hidden, Kernel: 1}))
	depthwise = relu(convBN(ctx.In("depthwise"), expanded, "conv", "bn",
		ConvOptions{Out: hidden, Kernel: 3, Stride: stride, Padding: 1, Groups: hidden}))
	y = convBN(ctx.In("project"), depthwise, "conv", "bn", ConvOptions{Out: out, Kernel: 1})
	if stride == 1 && cin == out {
		y = graph.Add(y, x)
	}
	return y, expanded, depthwise
}
