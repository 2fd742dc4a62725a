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
func (c *TrainCmd) Run(app *App) error {
	return runWithBackend(app, func(cancel stdctx.Context, backend backends.Backend) error {
		_, err := c.run(cancel, app, backend)
		return err
	})
}

// run trains on backend; cancelling cancel stops it after the current step with a checkpoint.
func (c *TrainCmd) run(cancel stdctx.Context, app *App, backend backends.Backend) (*runner.TrainResult, error) {
	env, err := trainingEnv(app, backend, cancel, "train", c.Check, c.Resume)
	if err != nil {
		return nil, err
	}
	return c.Train.Run(cancel, env)
}

// DistillCmd is the `ifa distill` command: a student learns from a frozen teacher with
// L = γ·CE + α·KD(T) + β·L_method (runner.Distill, whose fields are its flags).
type DistillCmd struct {
	runner.Distill `embed:""`
}

// Run implements the command.
func (c *DistillCmd) Run(app *App) error {
	return runWithBackend(app, func(cancel stdctx.Context, backend backends.Backend) error {
		_, err := c.run(cancel, app, backend)
		return err
	})
}

// run distils on backend; cancelling cancel stops it after the current step with a checkpoint.
func (c *DistillCmd) run(cancel stdctx.Context, app *App, backend backends.Backend) (*runner.DistillResult, error) {
	env, err := trainingEnv(app, backend, cancel, "distill", c.Check, c.Resume)
	if err != nil {
		return nil, err
	}
	return c.Distill.Run(cancel, env)
}

// trainingEnv checks a supervised command's flags (check) and backend and returns the
// runner.Env of its run; errors start with the command's name.
func trainingEnv(app *App, backend backends.Backend, cancel stdctx.Context, command string, check func() error, resume bool) (runner.Env, error) {
	if err := check(); err != nil {
		return runner.Env{}, err
	}
	if err := checkTrainsCNNs(app, backend); err != nil {
		return runner.Env{}, fmt.Errorf("%s: %w", command, err)
	}
	runDir, err := prepareRunDir(app, command, resume)
	if err != nil {
		return runner.Env{}, fmt.Errorf("%s: %w", command, err)
	}
	return app.env(backend, runDir, cancel), nil
}
