package cnn

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
)

// VGGConfig is a CIFAR VGG with batch norm (Simonyan & Zisserman 2015, as in RepDistiller's vgg.py):
// five groups of 3×3 conv (with bias) + BN + ReLU layers, where the last ReLU of each group is applied
// outside the group; 2×2 max-pools (stride 2) after groups 0, 1 and 2, and after group 3 only for
// 64-pixel-high inputs (as the reference); a global average pool; a linear classifier.
//
// Convolutions have N(0, 2/(k²·C_out)) weights and zero biases; BN starts at γ = 1, β = 0; the
// classifier has N(0, 0.01²) weights and zero biases.
//
// Scopes: group_G/{conv_J,bn_J} with G = 0..4 and J = 0.. within the group; fc.
//
// Input sizes: the pools floor odd sizes, so 32×32 inputs give maps of 32, 16, 8, 4, 4 pixels and
// 28×28 inputs (Fashion-MNIST) give 28, 14, 7, 3, 3.
type VGGConfig struct {
	// Groups are the output widths of the conv layers of each of the five groups.
	Groups [5][]int
}

// vggGroups are the named VGG configurations of the zoo.
func vggGroups() map[string][5][]int {
	return map[string][5][]int{
		"vgg8":  {{64}, {128}, {256}, {512}, {512}},
		"vgg11": {{64}, {128}, {256, 256}, {512, 512}, {512, 512}},
		"vgg13": {{64, 64}, {128, 128}, {256, 256}, {512, 512}, {512, 512}},
		"vgg16": {{64, 64}, {128, 128}, {256, 256, 256}, {512, 512, 512}, {512, 512, 512}},
		"vgg19": {{64, 64}, {128, 128}, {256, 256, 256, 256}, {512, 512, 512, 512}, {512, 512, 512, 512}},
	}
}

// Family implements Config.
func (c VGGConfig) Family() Family { return FamilyVGG }

// Validate implements Config.
func (c VGGConfig) Validate() error {
	for g, widths := range c.Groups {
		if len(widths) == 0 {
			return fmt.Errorf("vgg group %d has no layers", g)
		}
		for j, w := range widths {
			if w < 1 {
				return fmt.Errorf("vgg group %d layer %d: width %d < 1", g, j, w)
			}
		}
	}
	return nil
}

// build implements Config.
//
// Features: Stages = [f0..f4], the ReLU'd group outputs; PreactStages = [f0, f1..f4 before their
// ReLU] (f0 stays ReLU'd, as in the reference); Pooled = global average of f4; Taps = [f2, f3, f4]
// (METHODS.md §2.2).
func (c VGGConfig) build(ctx *context.Context, images *graph.Node, numClasses int) backbone.Features {
	var f backbone.Features
	h := images.Shape().Dim(1)
	x := images
	for gi, widths := range c.Groups {
		gctx := ctx.In(fmt.Sprintf("group_%d", gi))
		for j, w := range widths {
			x = convBN(gctx, x, fmt.Sprintf("conv_%d", j), fmt.Sprintf("bn_%d", j),
				ConvOptions{Out: w, Kernel: 3, Padding: 1, Bias: true})
			if j < len(widths)-1 {
				x = relu(x)
			}
		}
		pre := x
		x = relu(x)
		f.Stages = append(f.Stages, x)
		if gi == 0 {
			f.PreactStages = append(f.PreactStages, x)
		} else {
			f.PreactStages = append(f.PreactStages, pre)
		}
		if gi <= 2 || (gi == 3 && h == 64) {
			x = graph.MaxPool(x).Window(2).Strides(2).Done()
		}
	}
	f.Taps = []*graph.Node{f.Stages[2], f.Stages[3], f.Stages[4]}
	return withHead(ctx, f, x, numClasses, LinearNormal001)
}
