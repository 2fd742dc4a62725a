package cnn

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
)

// BottleneckResNetConfig is the ImageNet-style ResNet with bottleneck blocks and a CIFAR stem (He et
// al. 2016, as in RepDistiller's resnetv2.py; the registry's "resnet50" is its ResNet50, Blocks
// 3/4/6/3, Width 64): a 3×3 stem conv (stride 1) + BN + ReLU to Width channels, four stages of
// bottleneck blocks with Width·2^(s−1) inner channels, 4× as many outputs and strides 1, 2, 2, 2, a
// global average pool and a linear classifier.
//
// Bottleneck block: ReLU(BN(conv1×1(x))) → ReLU(BN(conv3×3(·, stride))) → BN(conv1×1 to 4× the
// width) → + shortcut → ReLU, where the shortcut is a 1×1 conv (stride) + BN when the stride or the
// width changes (the first block of every stage), identity otherwise. Convolutions have no bias and
// Kaiming fan-out initialisation; BN starts at γ = 1, β = 0; the classifier has PyTorch's default
// Linear initialisation.
//
// Scopes: stem/{conv,bn}; stage_S/block_B/{conv_1,bn_1,conv_2,bn_2,conv_3,bn_3,shortcut/conv,
// shortcut/bn} with S = 1..4 (the reference's layer1..layer4) and B = 0..; fc.
//
// Input sizes: the stages halve the map three times (ceil for odd sizes): 32×32 gives a 4×4 final
// map, 28×28 gives 4×4 as well (28 → 14 → 7 → 4). The pool is global (the reference's adaptive
// average pool).
type BottleneckResNetConfig struct {
	// Blocks is the number of bottleneck blocks of each of the four stages (3, 4, 6, 3 for ResNet50).
	Blocks [4]int
	// Width is the stem's output width and the first stage's inner width (64 in the reference).
	Width int
}

// bottleneckExpansion is the ratio of a bottleneck block's output width to its inner width.
const bottleneckExpansion = 4

// Family implements Config.
func (c BottleneckResNetConfig) Family() Family { return FamilyBottleneckResNet }

// Validate implements Config.
func (c BottleneckResNetConfig) Validate() error {
	for s, n := range c.Blocks {
		if n < 1 {
			return fmt.Errorf("bottleneck resnet stage %d has %d blocks, want >= 1", s+1, n)
		}
	}
	if c.Width < 1 {
		return fmt.Errorf("bottleneck resnet width %d < 1", c.Width)
	}
	return nil
}

// build implements Config.
//
// Features: Stages = [f0 stem, f1..f4 stage outputs] (the reference's is_feat list without f5);
// PreactStages = [f0, then each stage's output before the last block's final ReLU]; Pooled = global
// average of f4; Taps = the ReLU outputs of every block of stage 4 in forward order (after bn_1, after
// bn_2, the block output; 9 taps for ResNet50, the last one being f4). METHODS.md §2.2 does not list
// ResNet50; this follows its rule, the last stage's ReLU outputs.
func (c BottleneckResNetConfig) build(ctx *context.Context, images *graph.Node, numClasses int) backbone.Features {
	x := relu(convBN(ctx.In("stem"), images, "conv", "bn", ConvOptions{Out: c.Width, Kernel: 3, Padding: 1}))
	f := backbone.Features{Stages: []*graph.Node{x}, PreactStages: []*graph.Node{x}}
	for s := 1; s <= 4; s++ {
		stageCtx := ctx.In(fmt.Sprintf("stage_%d", s))
		planes := c.Width << (s - 1)
		var preact *graph.Node
		for b := range c.Blocks[s-1] {
			stride := 1
			if b == 0 && s > 1 {
				stride = 2
			}
			var r1, r2 *graph.Node
			x, r1, r2, preact = bottleneckBlock(stageCtx.In(fmt.Sprintf("block_%d", b)), x, planes, stride)
			if s == 4 {
				f.Taps = append(f.Taps, r1, r2, x)
			}
		}
		f.Stages = append(f.Stages, x)
		f.PreactStages = append(f.PreactStages, preact)
	}
	return withHead(ctx, f, x, numClasses, LinearPyTorch)
}

// bottleneckBlock is the post-activation bottleneck block; x: [B, H, W, Cin] → out [B, ⌈H/stride⌉,
// ⌈W/stride⌉, 4·planes]. It also returns its two in-block ReLUs and the pre-ReLU sum.
func bottleneckBlock(ctx *context.Context, x *graph.Node, planes, stride int) (out, r1, r2, preact *graph.Node) {
	width := bottleneckExpansion * planes
	r1 = relu(convBN(ctx, x, "conv_1", "bn_1", ConvOptions{Out: planes, Kernel: 1}))
	r2 = relu(convBN(ctx, r1, "conv_2", "bn_2", ConvOptions{Out: planes, Kernel: 3, Stride: stride, Padding: 1}))
	h := convBN(ctx, r2, "conv_3", "bn_3", ConvOptions{Out: width, Kernel: 1})
	shortcut := x
	if stride != 1 || x.Shape().Dim(-1) != width {
		shortcut = convBN(ctx.In("shortcut"), x, "conv", "bn", ConvOptions{Out: width, Kernel: 1, Stride: stride})
	}
	preact = graph.Add(h, shortcut)
	return relu(preact), r1, r2, preact
}
