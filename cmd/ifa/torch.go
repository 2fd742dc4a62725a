package main

// The PyTorch interop commands: ifa import, ifa export and ifa test (runner.Import, runner.Export
// and runner.Test, whose fields are their flags).

import (
	"fmt"
	"io"

	"github.com/ifa-toolkit/ifa/runner"
)

// ImportCmd is the `ifa import` command.
type ImportCmd struct {
	runner.Import `embed:""`
}

// Run implements the command.
func (c *ImportCmd) Run(app *App) error {
	if app.Globals.Out == "" {
		return usagef("import: give the run directory to write with --out RUN")
	}
	backend, err := app.NewBackend()
	if err != nil {
		return err
	}
	defer backend.Finalize()
	rec, err := c.Write(backend, app.Globals.Out)
	if err != nil {
		return err
	}
	app.Log.Info().Str("file", c.File).Str("model", c.Model).Str("run_dir", app.Globals.Out).
		Str("record", rec.String()).Msg("imported")
	return nil
}

// ExportCmd is the `ifa export` command.
type ExportCmd struct {
	runner.Export `embed:""`
}

// Run implements the command.
func (c *ExportCmd) Run(app *App) error {
	c.Output = app.Globals.Out
	if c.Output == "" {
		return usagef("export: give the file to write with --out FILE.safetensors")
	}
	backend, err := app.NewBackend()
	if err != nil {
		return err
	}
	defer backend.Finalize()
	n, err := c.Export.Run(app.env(backend, "", nil))
	if err != nil {
		return err
	}
	app.Log.Info().Str("checkpoint", c.Checkpoint).Str("file", c.Output).Int("tensors", n).Msg("exported")
	return nil
}

// TestCmd is the `ifa test` command.
type TestCmd struct {
	runner.Test `embed:""`

	stdout io.Writer // standard output (tests capture it)
}

// Run implements the command.
func (c *TestCmd) Run(app *App) error {
	backend, err := app.NewBackend()
	if err != nil {
		return err
	}
	defer backend.Finalize()
	res, err := c.Test.Run(app.env(backend, "", nil))
	if err != nil {
		return err
	}
	out := stdout(c.stdout)
	if c.Format == "json" {
		return printJSON(out, res)
	}
	_, err = fmt.Fprintf(out, "checkpoint: %s (%s)\n%s test: %d images\ntop-1: %.2f%%\ntop-5: %.2f%%\nloss: %.4f\n",
		res.Checkpoint, res.Model, res.Dataset, res.Images, res.Top1, res.Top5, res.Loss)
	return err
}
