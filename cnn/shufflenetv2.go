package cnn

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
)

// ShuffleNetV2Config is the CIFAR ShuffleNetV2 of RepDistiller's ShuffleNetv2.py (Ma et al. 2018);
// the registry's "shufflev2" is its ShuffleV2 (net size 1): Stem 24, Widths 116/232/464/1024, Blocks
// 3/7/3. A 1×1 stem conv (stride 1) + BN + ReLU to Stem channels; three stages, each a down-sampling
// block followed by Blocks[s] basic blocks; a 1×1 conv + BN + ReLU to Widths[3] channels ("head"); a
// global average pool and a linear classifier.
//
// Down-sampling block, input x with Cin channels, output width w, m = w/2:
//
//	left  = ReLU(BN(conv1×1(BN(depthwise conv3×3/2(x)) → m)))
//	right = ReLU(BN(conv1×1(BN(depthwise conv3×3/2(ReLU(BN(conv1×1(x → m))))))))
//	out   = shuffle(concat(left, right), 2)
//
// Basic block, input x with w channels: x1, x2 = the first and the last w/2 channels;
// p = BN(conv1×1(BN(depthwise conv3×3(ReLU(BN(conv1×1(x2))))))); out = shuffle(concat(x1, ReLU(p)), 2).
//
// Channel shuffle with 2 groups maps output channel 2i + j to input channel j·(C/2) + i. Convolutions
// have no bias; every layer keeps PyTorch's default initialisation, as the reference does not set one:
// convolutions and the classifier U(±1/√fanIn) (classifier biases too), BN γ = 1, β = 0.
//
// Scopes: stem/{conv,bn}; stage_S/block_0/{conv_1..conv_5,bn_1..bn_5} (the down-sampling block, in
// the reference's order: conv_1, conv_2 left, conv_3..conv_5 right); stage_S/block_B/{conv_1..conv_3,
// bn_1..bn_3} for the basic blocks B = 1..Blocks[s]; head/{conv,bn}; fc. Block B is the reference's
// layerS[B].
//
// Input sizes: the stages halve the map (ceil for odd sizes): 32×32 gives a 4×4 final map, 28×28
// gives 4×4 (28 → 14 → 7 → 4). The pool is global (the reference's avg_pool2d(4) on 32×32 inputs).
type ShuffleNetV2Config struct {
	// Stem is the stem's output width (24).
	Stem int
	// Widths are the three stages' output widths and the head's (116, 232, 464, 1024).
	Widths [4]int
	// Blocks are the numbers of basic blocks after each stage's down-sampling block (3, 7, 3).
	Blocks [3]int
}

// Family implements Config.
func (c ShuffleNetV2Config) Family() Family { return FamilyShuffleNetV2 }

// Validate implements Config.
func (c ShuffleNetV2Config) Validate() error {
	if c.Stem < 1 || c.Widths[3] < 1 {
		return fmt.Errorf("shufflenetv2 stem width %d and head width %d must be >= 1", c.Stem, c.Widths[3])
	}
	for s := range 3 {
		if c.Widths[s] < 2 || c.Widths[s]%2 != 0 {
			return fmt.Errorf("shufflenetv2 stage %d width %d: want an even width >= 2", s+1, c.Widths[s])
		}
		if c.Blocks[s] < 1 {
			return fmt.Errorf("shufflenetv2 stage %d has %d basic blocks, want >= 1", s+1, c.Blocks[s])
		}
	}
	return nil
}

// build implements Config.
//
// Features: Stages = [f0 stem, f1..f3 stage outputs (after the last shuffle)]; PreactStages = [f0,
// then for each stage concat(x1, p) of its last block: before the final ReLU and, as in the reference,
// before the shuffle]; Pooled = global average of the
// head's ReLU; Taps = the ReLU outputs of stage 3 in forward order — the down-sampling block's
// ReLU(bn_2) (left), ReLU(bn_3) and ReLU(bn_5) (right), then per basic block ReLU(bn_1) and ReLU(bn_3)
// (half-width maps) — and the head's ReLU: 10 taps for ShuffleV2. METHODS.md §2.2 does not list
// ShuffleNets; this follows its rule, the last stage's ReLU outputs, and adds the head as for
// MobileNetV2.
func (c ShuffleNetV2Config) build(ctx *context.Context, images *graph.Node, numClasses int) backbone.Features {
	x := relu(convBN(ctx.In("stem"), images, "conv", "bn", ConvOptions{Out: c.Stem, Kernel: 1, Init: ConvPyTorch}))
	f := backbone.Features{Stages: []*graph.Node{x}, PreactStages: []*graph.Node{x}}
	for s := range 3 {
		stageCtx := ctx.In(fmt.Sprintf("stage_%d", s+1))
		var taps []*graph.Node
		x, taps = shuffleV2Down(stageCtx.In("block_0"), x, c.Widths[s])
		var preact *graph.Node
		for b := 1; b <= c.Blocks[s]; b++ {
			var r1, r3 *graph.Node
			x, r1, r3, preact = shuffleV2Basic(stageCtx.In(fmt.Sprintf("block_%d", b)), x)
			taps = append(taps, r1, r3)
		}
		if s == 2 {
			f.Taps = taps
		}
		f.Stages = append(f.Stages, x)
		f.PreactStages = append(f.PreactStages, preact)
	}
	head := relu(convBN(ctx.In("head"), x, "conv", "bn", ConvOptions{Out: c.Widths[3], Kernel: 1, Init: ConvPyTorch}))
	f.Taps = append(f.Taps, head)
	return withHead(ctx, f, head, numClasses, LinearPyTorch)
}

// shuffleV2Down is the down-sampling block; x: [B, H, W, Cin] → [B, ⌈H/2⌉, ⌈W/2⌉, width]. It also
// returns its three ReLU outputs in forward order.
func shuffleV2Down(ctx *context.Context, x *graph.Node, width int) (out *graph.Node, relus []*graph.Node) {
	cin, mid := x.Shape().Dim(-1), width/2
	left := convBN(ctx, x, "conv_1", "bn_1", ConvOptions{Out: cin, Kernel: 3, Stride: 2, Padding: 1, Groups: cin, Init: ConvPyTorch})
	left = relu(convBN(ctx, left, "conv_2", "bn_2", ConvOptions{Out: mid, Kernel: 1, Init: ConvPyTorch}))
	r3 := relu(convBN(ctx, x, "conv_3", "bn_3", ConvOptions{Out: mid, Kernel: 1, Init: ConvPyTorch}))
	right := convBN(ctx, r3, "conv_4", "bn_4", ConvOptions{Out: mid, Kernel: 3, Stride: 2, Padding: 1, Groups: mid, Init: ConvPyTorch})
	right = relu(convBN(ctx, right, "conv_5", "bn_5", ConvOptions{Out: mid, Kernel: 1, Init: ConvPyTorch}))
	return channelShuffle(graph.Concatenate([]*graph.Node{left, right}, -1), 2), []*graph.Node{left, r3, right}
}

// shuffleV2Basic is the split basic block; x: [B, H, W, C] → out of the same shape. It also returns
// its two ReLU outputs (after bn_1 and bn_3, C/2 channels each) and concat(x1, p) before the final
// ReLU and the shuffle.
func shuffleV2Basic(ctx *context.Context, x *graph.Node) (out, r1, r3, preact *graph.Node) {
	c := x.Shape().Dim(-1)
	half := c / 2
	x1 := graph.Slice(x, graph.AxisRange(), graph.AxisRange(), graph.AxisRange(), graph.AxisRange(0, half))
	x2 := graph.Slice(x, graph.AxisRange(), graph.AxisRange(), graph.AxisRange(), graph.AxisRange(half, c))
	r1 = relu(convBN(ctx, x2, "conv_1", "bn_1", ConvOptions{Out: half, Kernel: 1, Init: ConvPyTorch}))
	h := convBN(ctx, r1, "conv_2", "bn_2", ConvOptions{Out: half, Kernel: 3, Padding: 1, Groups: half, Init: ConvPyTorch})
	p := convBN(ctx, h, "conv_3", "bn_3", ConvOptions{Out: half, Kernel: 1, Init: ConvPyTorch})
	r3 = relu(p)
	preact = graph.Concatenate([]*graph.Node{x1, p}, -1)
	return channelShuffle(graph.Concatenate([]*graph.Node{x1, r3}, -1), 2), r1, r3, preact
}
