package cnn

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/internal/nn"
)

// WRNConfig is a Wide ResNet WRN-Depth-Widen (Zagoruyko & Komodakis 2016, as in RepDistiller's
// wrn.py, dropout 0): a 3×3 stem conv to 16 channels (no BN), three stages of n = (Depth−4)/6
// pre-activation blocks of widths 16k, 32k, 64k with strides 1, 2, 2, then a final BN + ReLU, a
// global average pool and a linear classifier.
//
// Block: a = ReLU(BN(x)); h = conv3×3(a, stride); h = conv3×3(ReLU(BN(h))); out = h + shortcut,
// where the shortcut is x when the width is unchanged and a 1×1 conv (stride) of a otherwise.
// Convolutions have no bias and N(0, 2/(k²·C_out)) weights; BN starts at γ = 1, β = 0; the classifier
// has PyTorch's default Linear weights and zero biases.
//
// Scopes: stem/conv; stage_S/block_B/{bn_1,conv_1,bn_2,conv_2,shortcut/conv}; final_bn; fc.
//
// The pool is global (the reference's avg_pool2d(8) on 32×32 inputs), so 28×28 inputs give 7×7 final
// maps and work unchanged.
type WRNConfig struct {
	// Depth is 6n+4 (16 or 40 in the zoo).
	Depth int
	// Widen is the width multiplier k (1 or 2 in the zoo).
	Widen int
}

// Family implements Config.
func (c WRNConfig) Family() Family { return FamilyWRN }

// Validate implements Config.
func (c WRNConfig) Validate() error {
	if c.Depth < 10 || (c.Depth-4)%6 != 0 {
		return fmt.Errorf("wrn depth %d: want 6n+4 with n >= 1", c.Depth)
	}
	if c.Widen < 1 {
		return fmt.Errorf("wrn widen factor %d < 1", c.Widen)
	}
	return nil
}

// BlocksPerStage is n = (Depth−4)/6.
func (c WRNConfig) BlocksPerStage() int { return (c.Depth - 4) / 6 }

// build implements Config.
//
// Features: Stages = [f0 stem conv, f1, f2, f3 raw stage sums]; PreactStages = [f0, BN_1 of stage 2's
// first block applied to f1, BN_1 of stage 3's first block applied to f2, final_bn(f3)] (BN'd, not
// ReLU'd); Pooled = global average of ReLU(final_bn(f3)); Taps = [the last block's first ReLU(BN_1(x)),
// its ReLU after BN_2, ReLU(final_bn(f3))] (METHODS.md §2.2).
func (c WRNConfig) build(ctx *context.Context, images *graph.Node, numClasses int) backbone.Features {
	n := c.BlocksPerStage()
	x := Conv2D(ctx.In("stem").In("conv"), images, ConvOptions{Out: 16, Kernel: 3, Padding: 1})
	f := backbone.Features{Stages: []*graph.Node{x}, PreactStages: []*graph.Node{x}}
	var a1, a2 *graph.Node
	for s := 1; s <= 3; s++ {
		width := 16 * c.Widen << (s - 1)
		stageCtx := ctx.In(fmt.Sprintf("stage_%d", s))
		for b := range n {
			stride := 1
			if b == 0 && s > 1 {
				stride = 2
			}
			var bn1 *graph.Node
			x, bn1, a1, a2 = wrnBlock(stageCtx.In(fmt.Sprintf("block_%d", b)), x, width, stride)
			if b == 0 && s > 1 {
				f.PreactStages = append(f.PreactStages, bn1)
			}
		}
		f.Stages = append(f.Stages, x)
	}
	final := nn.BatchNorm(ctx.In("final_bn"), x)
	f.PreactStages = append(f.PreactStages, final)
	out := relu(final)
	f.Taps = []*graph.Node{a1, a2, out}
	return withHead(ctx, f, out, numClasses, LinearZeroBias)
}

// wrnBlock is the pre-activation block; x: [B, H, W, Cin] → out [B, H/stride, W/stride, width].
// It also returns BN_1(x), a1 = ReLU(BN_1(x)) and a2 = ReLU(BN_2(conv_1(a1))).
func wrnBlock(ctx *context.Context, x *graph.Node, width, stride int) (out, bn1, a1, a2 *graph.Node) {
	bn1 = nn.BatchNorm(ctx.In("bn_1"), x)
	a1 = relu(bn1)
	h := Conv2D(ctx.In("conv_1"), a1, ConvOptions{Out: width, Kernel: 3, Stride: stride, Padding: 1})
	a2 = relu(nn.BatchNorm(ctx.In("bn_2"), h))
	h = Conv2D(ctx.In("conv_2"), a2, ConvOptions{Out: width, Kernel: 3, Padding: 1})
	shortcut := x
	if x.Shape().Dim(-1) != width {
		shortcut = Conv2D(ctx.In("shortcut").In("conv"), a1, ConvOptions{Out: width, Kernel: 1, Stride: stride})
	} else if stride != 1 {
		panic(errorf("wrn block %s: stride %d with unchanged width %d has no shortcut", ctx.Scope(), stride, width))
	}
	return graph.Add(h, shortcut), bn1, a1, a2
}
