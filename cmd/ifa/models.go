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
	"github.com/ifa-toolkit/ifa/runner"
)

// ModelsCmd is the `ifa models` command (runner.Models).
type ModelsCmd struct {
	runner.Models `embed:""`
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
	infos, err := c.Models.Run(runner.Env{Backend: backend})
	if err != nil {
		return err
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
