package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/gomlx/gomlx/backends"

	"github.com/gomlx/gomlx/pkg/core/shapes"

	"github.com/ifa-toolkit/ifa/cnn"
	"github.com/ifa-toolkit/ifa/distill"
	"github.com/ifa-toolkit/ifa/rundir"
	"github.com/ifa-toolkit/ifa/runner"
	"github.com/ifa-toolkit/ifa/vit"
)

// ModelsCmd is the `ifa models` command: it lists the model zoo — the CNNs, and the ViT and
// MLP-Mixer configurations that fit the input (vit:CONFIG, mixer:CONFIG) — with trainable parameter
// counts and feature shapes, computed by building each model's graph (nothing is run). A ViT's or
// Mixer's stages and taps are its blocks' token grids, as ifa distill sees them.
type ModelsCmd struct {
	Format  string   `help:"Output: text (a table), or json (an array of objects with name, family, params, stages, taps, tap_widths, feature_dim, ...)." enum:"text,json,table" default:"text"`
	Classes int      `help:"Number of classes of the classifier counted in the parameters (0: no classifier)." default:"100"`
	Input   string   `help:"Input image shape HxWxC used for the feature shapes, e.g. 32x32x3 (CIFAR) or 28x28x1 (Fashion-MNIST)." default:"32x32x3"`
	Names   []string `arg:"" optional:"" help:"Models to list (default: every CNN, and the vit:CONFIG and mixer:CONFIG whose patch divides --input)."`
}

// Run implements the command.
func (c *ModelsCmd) Run(app *App) error {
	backend, err := app.NewBackend()
	if err != nil {
		return err
	}
	defer backend.Finalize()
	return c.write(os.Stdout, backend)
}

// write describes the selected models on backend and prints them to w.
func (c *ModelsCmd) write(w io.Writer, backend backends.Backend) error {
	if c.Classes < 0 {
		return fmt.Errorf("models: --classes %d < 0", c.Classes)
	}
	input, err := cnn.ParseMapShape(c.Input)
	if err != nil {
		return fmt.Errorf("models: --input: %w", err)
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
		info, err := describeModel(backend, name, input, c.Classes)
		if err != nil {
			return fmt.Errorf("models: %w", err)
		}
		infos = append(infos, info)
	}
	if c.Format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(infos)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "NAME\tFAMILY\tPARAMS\tFEATURE\tSTAGES (HxWxC)\tTAPS (HxWxC, forward order)\n")
	for _, in := range infos {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", in.Name, in.Family, groupThousands(in.Params), in.FeatureDim,
			joinShapes(in.Stages), joinShapes(in.Taps))
	}
	return tw.Flush()
}

// joinShapes lists shapes, collapsing runs of equal shapes into "shape ×N".
func joinShapes(shapes []cnn.MapShape) string {
	var parts []string
	for i := 0; i < len(shapes); {
		j := i
		for j < len(shapes) && shapes[j] == shapes[i] {
			j++
		}
		if n := j - i; n > 1 {
			parts = append(parts, fmt.Sprintf("%s ×%d", shapes[i], n))
		} else {
			parts = append(parts, shapes[i].String())
		}
		i = j
	}
	return strings.Join(parts, ", ")
}

// groupThousands formats n with comma separators: 1,233,540.
func groupThousands(n int) string {
	s := strconv.Itoa(n)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// describeModel describes a CNN of the zoo (cnn.Spec.Describe), or a ViT or Mixer as ifa distill
// sees it: its stages and taps are its blocks' token grids.
func describeModel(backend backends.Backend, name string, input cnn.MapShape, classes int) (cnn.Info, error) {
	if spec, err := cnn.Get(name); err == nil {
		return spec.Describe(backend, input, classes)
	}
	rec, err := rundir.ModelNamed(name, classes, rundir.DataSpec{Height: input.H, Width: input.W, Channels: input.C}, "")
	if err != nil {
		return cnn.Info{}, err
	}
	fs, params, err := distill.DescribeEncoder(backend, runner.ViewOf(rec, nil).Wrap(rec.Features), input.H, input.W, input.C)
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
