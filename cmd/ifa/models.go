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

	"github.com/ifa-toolkit/ifa/cnn"
)

// ModelsCmd is the `ifa models` command: it lists the CNN model zoo with trainable parameter counts
// and feature shapes, computed by building each model's graph (nothing is run).
type ModelsCmd struct {
	Format  string   `help:"Output format: table, or json (an array of objects with name, family, params, stages, taps, tap_widths, feature_dim, ...)." enum:"table,json" default:"table"`
	Classes int      `help:"Number of classes of the classifier counted in the parameters (0: no classifier)." default:"100"`
	Input   string   `help:"Input image shape HxWxC used for the feature shapes, e.g. 32x32x3 (CIFAR) or 28x28x1 (Fashion-MNIST)." default:"32x32x3"`
	Names   []string `arg:"" optional:"" help:"Models to list (default: all)."`
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
	input, err := parseInputShape(c.Input)
	if err != nil {
		return fmt.Errorf("models: --input: %w", err)
	}
	names := c.Names
	if len(names) == 0 {
		names = cnn.Names()
	}
	infos := make([]cnn.Info, 0, len(names))
	for _, name := range names {
		spec, err := cnn.Get(name)
		if err != nil {
			return fmt.Errorf("models: %w", err)
		}
		info, err := spec.Describe(backend, input, c.Classes)
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

// parseInputShape parses "HxWxC".
func parseInputShape(s string) (cnn.MapShape, error) {
	parts := strings.Split(strings.ToLower(strings.TrimSpace(s)), "x")
	if len(parts) != 3 {
		return cnn.MapShape{}, fmt.Errorf("%q: want HxWxC, e.g. 32x32x3", s)
	}
	var dims [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 1 {
			return cnn.MapShape{}, fmt.Errorf("%q: %q is not a positive integer", s, p)
		}
		dims[i] = v
	}
	return cnn.MapShape{H: dims[0], W: dims[1], C: dims[2]}, nil
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
