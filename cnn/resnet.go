package cnn

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
)

// ResNetConfig is a CIFAR ResNet (He et al. 2016, §4.2, as in RepDistiller's resnet.py): a 3×3 stem
// conv + BN + ReLU, three stages of n = (Depth−2)/6 post-activation basic blocks with strides 1, 2, 2,
// a global average pool and a linear classifier.
//
// Basic block: ReLU(BN(conv3×3(x, stride))) → BN(conv3×3) → + shortcut → ReLU, where the shortcut is a
// 1×1 conv (stride) + BN when the stride or the width changes, identity otherwise. Convolutions
// have no bias and Kaiming fan-out initialisation; BN starts at γ = 1, β = 0; the classifier has
// PyTorch's default Linear initialisation.
//
// Scopes: stem/{conv,bn}; stage_S/block_B/{conv_1,bn_1,conv_2,bn_2,shortcut/conv,shortcut/bn} with
// S = 1..3 and B = 0..n−1; fc.
//
// The reference pools with AvgPool2d(8), which is global pooling for 32×32 inputs; here the pool is
// always global, so other input sizes (e.g. 28×28 → final map 7×7) work too.
type ResNetConfig struct {
	// Depth is 6n+2 (8, 14, 20, 32, 44, 56, 110 in the zoo).
	Depth int
	// Widths: the stem's output channels, then the three stages' (16/16/32/64, or 32/64/128/256 for
	// the ×4 models).
	Widths [4]int
}

// Family implements Config.
func (c ResNetConfig) Family() Family { return FamilyResNet }

// Validate implements Config.
func (c ResNetConfig) Validate() error {
	if c.Depth < 8 || (c.Depth-2)%6 != 0 {
		return fmt.Errorf("resnet depth %d: want 6n+2 with n >= 1", c.Depth)
	}
	for i, w := range c.Widths {
		if w < 1 {
			return fmt.Errorf("resnet width %d (index %d) < 1", w, i)
		}
	}
	return nil
}

// BlocksPerStage is n = (Depth−2)/6.
func (c ResNetConfig) BlocksPerStage() int { return (c.Depth - 2) / 6 }

// build implements Config.
//
// Features: Stages = [f0 stem, f1, f2, f3 stage outputs]; PreactStages = [f0, then each stage's
// output before the last block's final ReLU]; Pooled = global average of f3; Taps = for every block of
// stage 3 its in-block ReLU (after conv_1/bn_1) and its output, in forward order — preceded by the
// stage-2 output when stage 3 has a single block (resnet8, resnet8x4; METHODS.md §2.2).
func (c ResNetConfig) build(ctx *context.Context, images *graph.Node, numClasses int) backbone.Features {
	n := c.BlocksPerStage()
	x := relu(convBN(ctx.In("stem"), images, "conv", "bn", ConvOptions{Out: c.Widths[0], Kernel: 3, Padding: 1}))
	f := backbone.Features{Stages: []*graph.Node{x}, PreactStages: []*graph.Node{x}}
	for s := 1; s <= 3; s++ {
		stageCtx := ctx.In(fmt.Sprintf("stage_%d", s))
		var preact *graph.Node
		for b := range n {
			stride := 1
			if b == 0 && s > 1 {
				stride = 2
			}
			var inner *graph.Node
			x, inner, preact = basicBlock(stageCtx.In(fmt.Sprintf("block_%d", b)), x, c.Widths[s], stride)
			if s == 3 {
				f.Taps = append(f.Taps, inner, x)
			}
		}
		if s == 2 && n == 1 {
			f.Taps = append(f.Taps, x)
		}
		f.Stages = append(f.Stages, x)
		f.PreactStages = append(f.PreactStages, preact)
	}
	return withHead(ctx, f, x, numClasses, LinearPyTorch)
}

// basicBlock is the post-activation basic block; x: [B, H, W, Cin] → out [B, H/stride, W/stride,
// planes]. It also returns the in-block ReLU (after conv_1/bn_1) and the pre-ReLU sum.
func basicBlock(ctx *context.Context, x *graph.Node, planes, stride int) (out, inner, preact *graph.Node) {
	inner = relu(convBN(ctx, x, "conv_1", "bn_1", ConvOptions{Out: planes, Kernel: 3, Stride: stride, Padding: 1}))
	h := convBN(ctx, inner, "conv_2", "bn_2", ConvOptions{Out: planes, Kernel: 3, Padding: 1})
	shortcut := x
	if stride != 1 || x.Shape().Dim(-1) != planes {
		shortcut = convBN(ctx.In("shortcut"), x, "conv", "bn", ConvOptions{Out: planes, Kernel: 1, Stride: stride})
	}
	preact = graph.Add(h, shortcut)
	return relu(preact), inner, preact
}
