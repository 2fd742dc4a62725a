package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/ifa-toolkit/ifa/runner"
)

// DataCmd groups the dataset commands.
type DataCmd struct {
	Fetch DataFetchCmd `cmd:"" help:"Download a dataset (cifar10, cifar100, fashion-mnist, mnist) and verify its checksums."`
	Info  DataInfoCmd  `cmd:"" help:"Counts, classes, image shape and per-channel mean/std of a dataset."`
}

// DataFetchCmd is the `ifa data fetch` command (runner.Fetch).
type DataFetchCmd struct {
	runner.Fetch `embed:""`
}

// Run implements the command.
func (c *DataFetchCmd) Run(app *App) error {
	interrupted, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	_, err := c.Fetch.Run(interrupted, app.env(nil, "", nil))
	return err
}

// DataInfoCmd is the `ifa data info` command (runner.DataInfo).
type DataInfoCmd struct {
	runner.DataInfo `embed:""`
}

// Run implements the command.
func (c *DataInfoCmd) Run(app *App) error { return c.run(app, os.Stdout) }

func (c *DataInfoCmd) run(app *App, out io.Writer) error {
	info, err := c.DataInfo.Run(app.env(nil, "", nil))
	if err != nil {
		return err
	}
	if c.Format == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(info)
	}
	return writeInfoTable(out, *info)
}

func writeInfoTable(w io.Writer, info runner.DatasetInfo) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "dataset\t%s\n", info.Name)
	fmt.Fprintf(tw, "image\t%dx%dx%d (HxWxC)\n", info.Height, info.Width, info.Channels)
	classes := info.Classes
	more := ""
	if len(classes) > 12 {
		classes, more = classes[:12], fmt.Sprintf(", ... (%d more)", len(info.Classes)-12)
	}
	fmt.Fprintf(tw, "classes\t%d: %s%s\n", len(info.Classes), strings.Join(classes, ", "), more)
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "split\timages\tmean\tstd\tper class (min-max)\tsource")
	for _, s := range info.Splits {
		lo, hi := s.Images, 0
		for _, n := range s.ClassCounts {
			lo, hi = min(lo, n), max(hi, n)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d-%d\t%s\n", s.Split, s.Images, fmtFloats(s.Mean), fmtFloats(s.Std), lo, hi, s.Source)
	}
	return tw.Flush()
}

func fmtFloats(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%.4f", x)
	}
	return strings.Join(parts, ",")
}
