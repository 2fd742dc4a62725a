package main

import (
	"io"

	"github.com/gomlx/gomlx/backends"

	"github.com/ifa-toolkit/ifa/data"
	"github.com/ifa-toolkit/ifa/runner"
)

// evalInput holds what both evaluation commands (knn-eval, linear-eval) take: runner.EvalInput's
// flags, and what tests set.
type evalInput struct {
	runner.EvalInput `embed:""`

	stdout  io.Writer        // standard output (tests capture it)
	backend backends.Backend // set by tests: the shared test backend
}

// evalFeatures are runner.EvalFeatures with the backend they were computed on.
type evalFeatures struct {
	*runner.EvalFeatures
	Backend backends.Backend
	release func()
}

// Close releases the backend.
func (f *evalFeatures) Close() { f.release() }

// features opens the command's backend and extracts the features (runner.EvalInput.Features).
// The caller closes the result.
func (in *evalInput) features(app *App, batch int, check func(train *data.Dataset) error) (*evalFeatures, error) {
	backend, release, err := commandBackend(app, in.backend)
	if err != nil {
		return nil, err
	}
	f, err := in.Features(app.env(backend, "", nil), batch, check)
	if err != nil {
		release()
		return nil, err
	}
	return &evalFeatures{EvalFeatures: f, Backend: backend, release: release}, nil
}
