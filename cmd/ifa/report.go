package main

import (
	"fmt"
	"io"

	"github.com/ifa-toolkit/ifa/report"
)

// ReportCmd is the `ifa report` command: the talk's tables (METHODS.md §9) from finished `ifa
// distill` runs — test accuracy, peak memory, parameters and time per epoch, rows = methods,
// columns = teacher → student pairs, with an average column; runs of the same method and pair
// (seeds) are averaged and shown as mean ± std. It prints the tables as Markdown (or CSV with
// --csv); with the global --out DIR it also writes DIR/tables.md, one CSV per table, and PNG plots
// (final_top1.png, curves_<teacher>-<student>.png).
type ReportCmd struct {
	Runs []string `arg:"" help:"Run directories of 'ifa distill' (holding summary.json), or folders whose sub-folders are such runs." type:"path"`
	CSV  bool     `name:"csv" help:"Print the tables as CSV instead of Markdown."`
}

// Run implements the command.
func (c *ReportCmd) Run(app *App) error { return c.run(app, nil) }

// run prints the tables to w (standard output when nil) and writes the files when --out is set.
func (c *ReportCmd) run(app *App, w io.Writer) error {
	runs, err := report.LoadRuns(c.Runs)
	if err != nil {
		return err
	}
	tables := report.Build(runs)
	out := stdout(w)
	if c.CSV {
		for i, t := range tables.All() {
			if i > 0 {
				fmt.Fprintln(out)
			}
			fmt.Fprintf(out, "# %s (%s)\n", t.Title, t.Unit)
			if err := t.WriteCSV(out); err != nil {
				return fmt.Errorf("report: %w", err)
			}
		}
	} else if _, err := io.WriteString(out, tables.Markdown()); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if dir := app.Globals.Out; dir != "" {
		written, err := report.WriteAll(dir, runs, tables)
		if err != nil {
			return err
		}
		app.Log.Info().Int("runs", len(runs)).Strs("files", written.Files).Str("dir", dir).Msg("report written")
	}
	return nil
}
