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
// --format csv); with the global --out DIR it also writes DIR/tables.md, one CSV per table, and PNG plots
// (final_top1.png, curves_<teacher>-<student>.png).
//
// Runs of `ifa pretrain vit` get their own table, side by side: kNN (k=200, T=0.1), kNN (k=20,
// T=0.07), the linear probe on the last layer (and on all layers when saved), the best online kNN
// and the training time, read from the knn.json, linear.json and linear-all.json that the
// evaluation commands' --format json output was saved to in the run directory (scripts/demo.sh
// does so); with --out also DIR/pretrain.md, DIR/pretrain.csv and DIR/online-knn.png, the online
// kNN monitor per epoch.
type ReportCmd struct {
	Runs   []string `arg:"" help:"Run directories of 'ifa distill' (holding summary.json) or of 'ifa pretrain vit' (with knn.json, linear.json, linear-all.json saved from the evaluations' --format json), or folders whose sub-folders are such runs." type:"path"`
	Format string   `help:"Output: text (Markdown tables) or csv." enum:"text,csv" default:"text"`
	CSV    bool     `name:"csv" hidden:"" help:"The earlier spelling of --format csv."`
}

// csv reports whether the tables are printed as CSV.
func (c *ReportCmd) csv() bool { return c.CSV || c.Format == "csv" }

// Run implements the command.
func (c *ReportCmd) Run(app *App) error { return c.run(app, nil) }

// run prints the tables to w (standard output when nil) and writes the files when --out is set.
func (c *ReportCmd) run(app *App, w io.Writer) error {
	pre, rest, err := report.LoadPretrainRuns(c.Runs)
	if err != nil {
		return err
	}
	if len(pre) > 0 {
		if err := c.pretrain(app, stdout(w), pre); err != nil {
			return err
		}
		if len(rest) == 0 {
			return nil
		}
		fmt.Fprintln(stdout(w))
	}
	runs, err := report.LoadRuns(rest)
	if err != nil {
		return err
	}
	tables := report.Build(runs)
	out := stdout(w)
	if c.csv() {
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

// pretrain prints the pretraining runs' table and writes its files when --out is set.
func (c *ReportCmd) pretrain(app *App, out io.Writer, runs []report.PretrainRun) error {
	if c.csv() {
		if err := report.WritePretrainCSV(out, runs); err != nil {
			return fmt.Errorf("report: %w", err)
		}
	} else if _, err := io.WriteString(out, report.PretrainMarkdown(runs)); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if dir := app.Globals.Out; dir != "" {
		files, err := report.WritePretrain(dir, runs)
		if err != nil {
			return err
		}
		app.Log.Info().Int("runs", len(runs)).Strs("files", files).Str("dir", dir).Msg("pretraining report written")
	}
	return nil
}
