package main

// Helpers shared by the commands: interrupt handling, the run directory, the backend, printing.

import (
	stdctx "context"
	"encoding/json"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/gomlx/gomlx/backends"
	"github.com/rs/zerolog"
)

// interruptContext returns a context cancelled by the first SIGINT (Ctrl-C) or SIGTERM: the
// training loop then finishes its step, writes a checkpoint and returns. The second signal
// cancels the context's abort context (abortOf): a checkpoint being written is abandoned, its
// temporary file removed and the previous checkpoints kept, and the loop returns at once. A third
// signal kills the process. stop releases the signal handler; it cancels nothing that anyone
// could take for an interrupt, so a run that fails on its own never reports one.
func interruptContext(log zerolog.Logger) (ctx stdctx.Context, stop func()) {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	abort, abortFn := stdctx.WithCancel(stdctx.Background())
	ctx, cancel := stdctx.WithCancel(stdctx.WithValue(stdctx.Background(), abortKey{}, abort))
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 1; n <= 2; n++ {
			select {
			case <-done:
				return
			case <-signals:
			}
			if n == 1 {
				log.Warn().Msg("interrupted: finishing the current step and writing a checkpoint (press Ctrl-C again to stop without one)")
				cancel()
				continue
			}
			log.Warn().Msg("interrupted again: stopping without writing a checkpoint; the previous ones are kept (press Ctrl-C once more to kill the process)")
			abortFn()
			signal.Reset(os.Interrupt, syscall.SIGTERM)
		}
	}()
	return ctx, func() {
		signal.Stop(signals)
		close(done)
		wg.Wait()
		cancel()
		abortFn()
	}
}

// abortKey is the context key of interruptContext's abort context.
type abortKey struct{}

// abortOf returns the abort context of an interruptContext (for fit.Job.Abort), or nil.
func abortOf(ctx stdctx.Context) stdctx.Context {
	if ctx == nil {
		return nil
	}
	a, _ := ctx.Value(abortKey{}).(stdctx.Context)
	return a
}

// prepareRunDir returns the run directory of a training command (--out, or
// runs/<command>-<time>): resuming needs an explicit --out. The run checks the directory itself
// (runner.CheckRunDir) and creates it with its first write.
func prepareRunDir(app *App, command string, resume bool) (string, error) {
	if resume && app.Globals.Out == "" {
		return "", usagef("--resume: give the run directory to continue with --out RUN_DIR")
	}
	return app.RunDir(command), nil
}

// commandBackend returns override when it is set (tests inject the shared test backend, which
// must not be finalised) or a new backend from --backend; release frees what was created.
func commandBackend(app *App, override backends.Backend) (backend backends.Backend, release func(), err error) {
	if override != nil {
		return override, func() {}, nil
	}
	backend, err = app.NewBackend()
	if err != nil {
		return nil, nil, err
	}
	return backend, backend.Finalize, nil
}

// printJSON writes v as one line of JSON to w (standard output when nil).
func printJSON(w io.Writer, v any) error {
	return json.NewEncoder(stdout(w)).Encode(v)
}

// stdout returns w, or os.Stdout when w is nil.
func stdout(w io.Writer) io.Writer {
	if w == nil {
		return os.Stdout
	}
	return w
}
