package main

import (
	stdctx "context"

	"github.com/gomlx/gomlx/backends"
)

// checkTrainsCNNs refuses, before any work, a backend that cannot train a CNN: GoMLX's simplego
// ("--backend go") lacks the Reverse operation a convolution's gradient needs.
func checkTrainsCNNs(app *App, backend backends.Backend) error {
	ops := backend.Capabilities().Operations
	if !ops[backends.OpTypeReverse] || !ops[backends.OpTypePad] {
		return usagef("--backend %s cannot train CNNs (it lacks the Reverse and Pad operations a convolution's gradient needs): use --backend cpu (the default) or xla:cuda",
			app.Globals.Backend)
	}
	return nil
}

// runWithBackend opens the command's backend and a context cancelled on Ctrl-C, calls run and
// releases both.
func runWithBackend(app *App, run func(cancel stdctx.Context, backend backends.Backend) error) error {
	backend, err := app.NewBackend()
	if err != nil {
		return err
	}
	defer backend.Finalize()
	cancel, release := interruptContext(app.Log)
	defer release()
	return run(cancel, backend)
}
