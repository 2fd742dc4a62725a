package runner

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/shapes"

	"github.com/ifa-toolkit/ifa/cnn"
	"github.com/ifa-toolkit/ifa/distill"
	"github.com/ifa-toolkit/ifa/rundir"
	"github.com/ifa-toolkit/ifa/vit"
)

// Models lists (the options of `ifa models`) the model zoo — the CNNs, and the ViT and
// MLP-Mixer configurations that fit the input (vit:CONFIG, mixer:CONFIG) — with trainable parameter
// counts and feature shapes, computed by building each model's graph (nothing is run). A ViT's or
// Mixer's stages and taps are its blocks' token grids, as ifa distill sees them.
type Models struct {
	Format  string   `help:"Output: text (a table), or json (an array of objects with name, family, params, stages, taps, tap_widths, feature_dim, ...)." enum:"text,json,table" default:"text"`
	Classes int      `help:"Number of classes of the classifier counted in the parameters (0: no classifier)." default:"100"`
	Input   string   `help:"Input image shape HxWxC used for the feature shapes, e.g. 32x32x3 (CIFAR) or 28x28x1 (Fashion-MNIST)." default:"32x32x3"`
	Names   []string `arg:"" optional:"" help:"Models to list (default: every CNN, and the vit:CONFIG and mixer:CONFIG whose patch divides --input)."`
}

// Run describes the selected models on env.Backend, building each one's graph.
func (c *Models) Run(env Env) ([]cnn.Info, error) {
	backend := env.Backend
	if c.Classes < 0 {
		return nil, fmt.Errorf("models: --classes %d < 0", c.Classes)
	}
	input, err := cnn.ParseMapShape(c.Input)
	if err != nil {
		return nil, fmt.Errorf("models: --input: %w", err)
	}
	names := c.Names
	if len(names) == 0 {
		names = cnn.Names()
		for _, kind := range []struct {
			prefix string
			names  []string
		}{{"vit:", vit.Names()}, {"mixer:", vit.MixerNames()}} {
			for _, n := range kind.names {
				if _, err := rundir.ModelNamed(kind.prefix+n, c.Classes, rundir.DataSpec{Height: input.H, Width: input.W, Channels: input.C}, ""); err == nil {
					names = append(names, kind.prefix+n)
				}
			}
		}
	}
	infos := make([]cnn.Info, 0, len(names))
	for _, name := range names {
		info, err := DescribeModel(backend, name, input, c.Classes)
		if err != nil {
			return nil, fmt.Errorf("models: %w", err)
		}
		infos = append(infos, info)
	}
	return infos, nil
}

// DescribeModel describes a CNN of the zoo (cnn.Spec.Describe), or a ViT or Mixer as ifa distill
// sees it: its stages and taps are its blocks' token grids.
func DescribeModel(backend backends.Backend, name string, input cnn.MapShape, classes int) (cnn.Info, error) {
	if spec, err := cnn.Get(name); err == nil {
		return spec.Describe(backend, input, classes)
	}
	rec, err := rundir.ModelNamed(name, classes, rundir.DataSpec{Height: input.H, Width: input.W, Channels: input.C}, "")
	if err != nil {
		return cnn.Info{}, err
	}
	fs, params, err := distill.DescribeEncoder(backend, ViewOf(rec, nil).Wrap(rec.Features), input.H, input.W, input.C)
	if err != nil {
		return cnn.Info{}, fmt.Errorf("%s: %w", name, err)
	}
	info := cnn.Info{Name: name, Family: cnn.Family(rec.Family), Input: input, NumClasses: classes, Params: int(params),
		FeatureDim: fs.Pooled.Dim(-1)}
	grid := func(s shapes.Shape) cnn.MapShape { return cnn.MapShape{H: s.Dim(1), W: s.Dim(2), C: s.Dim(3)} }
	for _, s := range fs.Stages[1:] {
		info.Stages = append(info.Stages, grid(s))
	}
	for _, s := range fs.Taps {
		info.Taps = append(info.Taps, grid(s))
		info.TapWidths = append(info.TapWidths, s.Dim(-1))
	}
	return info, nil
}
