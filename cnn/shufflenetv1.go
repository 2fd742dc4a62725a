package cnn

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
)

// ShuffleNetV1Config is the CIFAR ShuffleNet of RepDistiller's ShuffleNetv1.py (Zhang et al. 2018);
// the registry's "shufflev1" is its ShuffleV1: Stem 24, Outputs 240/480/960, Blocks 4/8/4, Groups 3.
// A 1×1 stem conv (stride 1) + BN + ReLU to Stem channels, three stages of bottlenecks, a global
// average pool and a linear classifier (no final conv).
//
// Bottleneck with input width Cin and output width out: m = ⌊out'/4⌋ inner channels, where out' = out
// − Cin for the first block of a stage and out' = out otherwise;
//
//	h = ReLU(BN(conv1×1(x, groups g)))       g = 1 for the very first block (input = the stem), else Groups
//	h = shuffle(h, g)                        channel shuffle
//	h = BN(depthwise conv3×3(h, stride))     stride 2 for the first block of a stage, else 1
//	h = BN(conv1×1(h → out', groups Groups))
//	out = ReLU(concat(h, avgpool3×3/2(x)))   first block of a stage (stride 2): Cin + out' = out channels
//	out = ReLU(h + x)                        other blocks
//
// The average pool pads by 1 and counts the padding (PyTorch's AvgPool2d(3, 2, 1) default: every
// window is divided by 9). Channel shuffle with g groups maps channel i·g + j of the output to
// channel j·(C/g) + i of the input. Convolutions have no bias; every layer keeps PyTorch's default
// initialisation, as the reference does not set one: convolutions and the classifier U(±1/√fanIn)
// (classifier biases too), BN γ = 1, β = 0.
//
// Scopes: stem/{conv,bn}; stage_S/block_B/{conv_1,bn_1,conv_2,bn_2,conv_3,bn_3} with S = 1..3 (the
// reference's layer1..layer3) and B = 0..; fc.
//
// Input sizes: the stages halve the map (ceil for odd sizes): 32×32 gives a 4×4 final map, 28×28
// gives 4×4 (28 → 14 → 7 → 4). The pool is global (the reference's avg_pool2d(4) on 32×32 inputs).
type ShuffleNetV1Config struct {
	// Stem is the stem's output width (24).
	Stem int
	// Outputs are the three stages' output widths (240, 480, 960).
	Outputs [3]int
	// Blocks are the three stages' block counts (4, 8, 4).
	Blocks [3]int
	// Groups is the group count of the 1×1 convolutions and of the channel shuffle (3).
	Groups int
}

// Family implements Config.
func (c ShuffleNetV1Config) Family() Family { return FamilyShuffleNetV1 }

// shuffleV1Block is the geometry of one bottleneck.
type shuffleV1Block struct {
	in, out, mid, g, stride int // out is the width of conv_3 (out' above)
}

// blocks lists the geometry of every block, stage by stage.
func (c ShuffleNetV1Config) blocks() [3][]shuffleV1Block {
	var out [3][]shuffleV1Block
	in := c.Stem
	for s := range 3 {
		for b := range c.Blocks[s] {
			blk := shuffleV1Block{in: in, out: c.Outputs[s], g: c.Groups, stride: 1}
			if b == 0 {
				blk.out -= in
				blk.stride = 2
			}
			if s == 0 && b == 0 {
				blk.g = 1
			}
			blk.mid = blk.out / 4
			out[s] = append(out[s], blk)
			in = c.Outputs[s]
		}
	}
	return out
}

// Validate implements Config.
func (c ShuffleNetV1Config) Validate() error {
	if c.Stem < 1 || c.Groups < 1 {
		return fmt.Errorf("shufflenetv1 stem width %d and groups %d must be >= 1", c.Stem, c.Groups)
	}
	for s := range 3 {
		if c.Blocks[s] < 1 {
			return fmt.Errorf("shufflenetv1 stage %d has %d blocks, want >= 1", s+1, c.Blocks[s])
		}
	}
	for s, stage := range c.blocks() {
		for b, blk := range stage {
			if blk.mid < 1 || blk.in%blk.g != 0 || blk.mid%blk.g != 0 || blk.mid%c.Groups != 0 || blk.out%c.Groups != 0 {
				return fmt.Errorf("shufflenetv1 stage %d block %d: widths %d → %d → %d do not split into groups of %d and %d",
					s+1, b, blk.in, blk.mid, blk.out, blk.g, c.Groups)
			}
		}
	}
	return nil
}

// build implements Config.
//
// Features: Stages = [f0 stem, f1..f3 stage outputs]; PreactStages = [f0, then each stage's output
// before the last block's final ReLU]; Pooled = global average of f3; Taps = the ReLU outputs of the
// blocks of stage 3 in forward order, per block ReLU(bn_1) (before the shuffle), ReLU(bn_2) and the
// block output: 12 taps for ShuffleV1, the last one being f3. METHODS.md §2.2 does not list
// ShuffleNets; this follows its rule, the last stage's ReLU outputs.
func (c ShuffleNetV1Config) build(ctx *context.Context, images *graph.Node, numClasses int) backbone.Features {
	x := relu(convBN(ctx.In("stem"), images, "conv", "bn", ConvOptions{Out: c.Stem, Kernel: 1, Init: ConvPyTorch}))
	f := backbone.Features{Stages: []*graph.Node{x}, PreactStages: []*graph.Node{x}}
	for s, stage := range c.blocks() {
		stageCtx := ctx.In(fmt.Sprintf("stage_%d", s+1))
		var preact *graph.Node
		for b, blk := range stage {
			var r1, r2 *graph.Node
			x, r1, r2, preact = shuffleV1Bottleneck(stageCtx.In(fmt.Sprintf("block_%d", b)), x, blk, c.Groups)
			if s == 2 {
				f.Taps = append(f.Taps, r1, r2, x)
			}
		}
		f.Stages = append(f.Stages, x)
		f.PreactStages = append(f.PreactStages, preact)
	}
	return withHead(ctx, f, x, numClasses, LinearPyTorch)
}

// shuffleV1Bottleneck is one ShuffleNet unit; it also returns its two in-block ReLUs (after bn_1,
// before the shuffle, and after bn_2) and the pre-ReLU output.
func shuffleV1Bottleneck(ctx *context.Context, x *graph.Node, blk shuffleV1Block, groups int) (out, r1, r2, preact *graph.Node) {
	r1 = relu(convBN(ctx, x, "conv_1", "bn_1", ConvOptions{Out: blk.mid, Kernel: 1, Groups: blk.g, Init: ConvPyTorch}))
	h := channelShuffle(r1, blk.g)
	r2 = relu(convBN(ctx, h, "conv_2", "bn_2",
		ConvOptions{Out: blk.mid, Kernel: 3, Stride: blk.stride, Padding: 1, Groups: blk.mid, Init: ConvPyTorch}))
	h = convBN(ctx, r2, "conv_3", "bn_3", ConvOptions{Out: blk.out, Kernel: 1, Groups: groups, Init: ConvPyTorch})
	if blk.stride == 2 {
		preact = graph.Concatenate([]*graph.Node{h, avgPool3x3s2(x)}, -1)
	} else {
		preact = graph.Add(h, x)
	}
	return relu(preact), r1, r2, preact
}

// channelShuffle permutes the channels of x [B, H, W, C] as PyTorch's view(g, C/g).transpose: output
// channel i·g + j is input channel j·(C/g) + i. g = 1 returns x.
func channelShuffle(x *graph.Node, g int) *graph.Node {
	if g == 1 {
		return x
	}
	d := x.Shape().Dimensions
	c := d[3]
	y := graph.Reshape(x, d[0], d[1], d[2], g, c/g)
	y = graph.TransposeAllAxes(y, 0, 1, 2, 4, 3)
	return graph.Reshape(y, d[0], d[1], d[2], c)
}

// avgPool3x3s2 is PyTorch's AvgPool2d(3, stride=2, padding=1) with count_include_pad: the sum of
// each zero-padded 3×3 window divided by 9; [B, H, W, C] → [B, ⌈H/2⌉, ⌈W/2⌉, C].
func avgPool3x3s2(x *graph.Node) *graph.Node {
	sum := graph.SumPool(x).Window(3).Strides(2).PaddingPerDim([][2]int{{1, 1}, {1, 1}}).Done()
	return graph.MulScalar(sum, 1.0/9)
}
