package main

import (
	stdctx "context"
	"fmt"

	"github.com/gomlx/gomlx/backends"

	"github.com/ifa-toolkit/ifa/runner"
)

// TrainCmd is the `ifa train` command: supervised training of a model of the zoo (runner.Train,
// whose fields are its flags).
type TrainCmd struct {
	runner.Train `embed:""`
}

// Run implements the command.
func (c *TrainCmd) Run(app *App) error { return runTraining(app, c.run) }

// run trains on backend; cancelling cancel stops it after the current step with a checkpoint.
func (c *TrainCmd) run(cancel stdctx.Context, app *App, backend backends.Backend) (*runner.TrainResult, error) {
	return supervised(cancel, app, backend, "train", &c.Train, c.Resume)
}

// DistillCmd is the `ifa distill` command: a student learns from a frozen teacher with
// L = γ·CE + α·KD(T) + β·L_method (runner.Distill, whose fields are its flags).
type DistillCmd struct {
	runner.Distill `embed:""`
}

// Run implements the command.
func (c *DistillCmd) Run(app *App) error { return runTraining(app, c.run) }

// run distils on backend; cancelling cancel stops it after the current step with a checkpoint.
func (c *DistillCmd) run(cancel stdctx.Context, app *App, backend backends.Backend) (*runner.DistillResult, error) {
	return supervised(cancel, app, backend, "distill", &c.Distill, c.Resume)
}

// job is a supervised run of the runner package (runner.Train, runner.Distill).
type job[R any] interface {
	Check() error
	Run(cancel stdctx.Context, env runner.Env) (R, error)
}

// runTraining runs a supervised command's run on the --backend backend, with Ctrl-C handling.
func runTraining[R any](app *App, run func(stdctx.Context, *App, backends.Backend) (R, error)) error {
	return runWithBackend(app, func(cancel stdctx.Context, backend backends.Backend) error {
		_, err := run(cancel, app, backend)
		return err
	})
}

// supervised checks a supervised command's flags and backend and runs it in its run directory;
// errors of the checks start with the command's name.
func supervised[R any](cancel stdctx.Context, app *App, backend backends.Backend, command string, j job[R], resume bool) (R, error) {
	var none R
	if err := j.Check(); err != nil {
		return none, err
	}
	if err := app.checkDevices(); err != nil {
		return none, err
	}
	if err := checkTrainsCNNs(app, backend); err != nil {
		return none, fmt.Errorf("%s: %w", command, err)
	}
	runDir, err := prepareRunDir(app, command, resume)
	if err != nil {
		return none, fmt.Errorf("%s: %w", command, err)
	}
	return j.Run(cancel, app.env(backend, runDir, cancel))
}
