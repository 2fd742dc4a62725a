package main

// Helpers shared by the training and evaluation commands: interrupt handling, run directories,
// datasets and loaders, config.json with the record of the encoder a run's checkpoints hold, and
// rebuilding that encoder from a checkpoint.

import (
	stdctx "context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/rs/zerolog"

	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/data"
	"github.com/ifa-toolkit/ifa/eval"
	"github.com/ifa-toolkit/ifa/fit"
	"github.com/ifa-toolkit/ifa/rundir"
	"github.com/ifa-toolkit/ifa/runner"
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

// prepareRunDir returns the run directory of a training command (--out, or runs/<command>-<time>)
// and checks it against resume: a fresh run refuses a directory that already holds checkpoints, and
// resuming needs an explicit --out. It creates nothing: the command's first write (config.json)
// does, once every check has passed.
func prepareRunDir(app *App, command string, resume bool) (string, error) {
	if resume && app.Globals.Out == "" {
		return "", usagef("--resume: give the run directory to continue with --out RUN_DIR")
	}
	dir := app.RunDir(command)
	if !resume {
		ck, err := fit.ListCheckpoints(dir)
		if err != nil {
			return "", err
		}
		if len(ck) > 0 {
			return "", usagef("--out %s already holds checkpoints: add --resume to continue that run, or choose another --out", dir)
		}
	}
	return dir, nil
}

// openTrainTest, openTrainTestCrop and evalLoader are the runs package's.
var (
	openTrainTest     = runner.OpenTrainTest
	openTrainTestCrop = runner.OpenTrainTestCrop
	evalLoader        = runner.EvalLoader
)

// loadEncoder loads the encoder of a checkpoint file or run directory (--checkpoint), checked
// against its run's config.json, and logs the loader's warnings.
func loadEncoder(app *App, backend backends.Backend, path string) (*LoadedEncoder, error) {
	return loadEncoderBranch(app, backend, path, encoderOnline)
}

// Which encoder of a run with a momentum copy the evaluations read (--encoder).
const (
	encoderOnline = "online" // the trained encoder (Model.Scope)
	encoderTarget = "target" // its momentum copy (Model.TargetScope)
)

// loadEncoderBranch is loadEncoder reading the online encoder or its momentum (EMA) copy (which is
// encoderOnline or encoderTarget).
func loadEncoderBranch(app *App, backend backends.Backend, path, which string) (*LoadedEncoder, error) {
	l, err := rundir.Load(backend, path, rundir.Want{Flag: "--checkpoint"})
	if err != nil {
		return nil, err
	}
	for _, w := range l.Warnings {
		app.Log.Warn().Msg(w)
	}
	if which == encoderTarget {
		if l.Model.TargetScope == "" {
			return nil, fmt.Errorf("--encoder target: %s holds no momentum (target) encoder: its method trains only the online one", l.File)
		}
		l.Model.Scope = l.Model.TargetScope
	}
	ctx, err := l.Context()
	if err != nil {
		return nil, fmt.Errorf("--checkpoint: %w", err)
	}
	return &LoadedEncoder{Loaded: l, Context: ctx}, nil
}

// LoadedEncoder is an encoder rebuilt from a checkpoint, ready for feature extraction.
type LoadedEncoder struct {
	*rundir.Loaded
	// Context holds the encoder's variables at its root.
	Context *context.Context
}

// pooledEncoder is the evaluation feature of a record's encoder: Features.Pooled (a ViT's final
// CLS vector after the shared LayerNorm, or its mean token with --pooling mean; a CNN's final
// pooled feature).
func pooledEncoder(rec rundir.Model) eval.Encoder {
	return func(ctx *context.Context, images *graph.Node) *graph.Node {
		return rec.Features(ctx, images).Pooled
	}
}

// featureEncoder is the evaluation feature named by an evaluation command's --layers flag: ""
// means Features.Pooled; otherwise the concatenation, in layer order, of the selected per-layer
// vectors (Features.TapVectors), [B, ΣD_l].
func featureEncoder(rec rundir.Model, layers string) (eval.Encoder, error) {
	if layers == "" {
		return pooledEncoder(rec), nil
	}
	sel, err := backbone.ParseLayerSelect(layers)
	if err != nil {
		return nil, fmt.Errorf("--layers: %w", err)
	}
	return func(ctx *context.Context, images *graph.Node) *graph.Node {
		vecs := rec.Features(ctx, images).TapVectors
		idx, err := sel.Resolve(len(vecs))
		if err != nil {
			panic(fmt.Errorf("--layers %s: %w", layers, err))
		}
		parts := make([]*graph.Node, len(idx))
		for i, l := range idx {
			parts[i] = vecs[l]
		}
		if len(parts) == 1 {
			return parts[0]
		}
		return graph.Concatenate(parts, -1)
	}, nil
}

// evalData opens the train and test splits an evaluation runs on: the record's data unless
// dataset is given, normalised with the record's test transform.
func evalData(rec rundir.Model, dataset, dir string, limitTrain, limitTest int) (train, test *data.Dataset, spec rundir.DataSpec, err error) {
	spec = rec.Data
	if dataset == "" {
		dataset = spec.Dataset
		if dir == "" {
			dir = spec.Dir
		}
	}
	if dataset == "" {
		return nil, nil, spec, errors.New("--dataset: the checkpoint's run does not record its dataset: give --dataset")
	}
	train, test, own, err := openTrainTestCrop(dataset, dir, limitTrain, limitTest, spec.Crop)
	if err != nil {
		return nil, nil, spec, err
	}
	if len(spec.Mean) != train.C {
		spec.Mean, spec.Std = own.Mean, own.Std
	}
	// Smaller images are zero-padded to the encoder's input by evalLoader (--pad-to-32 runs); the
	// folder recipe's are centre-cropped to it.
	if (spec.Crop == 0 && (train.H > spec.Height || train.W > spec.Width)) || train.C != spec.Channels {
		return nil, nil, spec, fmt.Errorf("--dataset %s: images %dx%dx%d, but the encoder takes %dx%dx%d",
			dataset, train.H, train.W, train.C, spec.Height, spec.Width, spec.Channels)
	}
	spec.Dataset, spec.Dir = dataset, dir
	return train, test, spec, nil
}

// extractTrainTest extracts the encoder's features of the train split (the kNN bank / probe
// training set) and of the test split, both under the test transform.
func extractTrainTest(app *App, backend backends.Backend, enc *LoadedEncoder, train, test *data.Dataset, spec rundir.DataSpec, batch int, layers string) (bank, queries eval.FeatureSet, err error) {
	fn, err := featureEncoder(enc.Model, layers)
	if err != nil {
		return bank, queries, err
	}
	for i, ds := range []*data.Dataset{train, test} {
		l, err := evalLoader(ds, spec, batch, 0)
		if err != nil {
			return bank, queries, err
		}
		app.Log.Info().Str("split", ds.Split).Int("images", ds.Len()).Msg("extracting features")
		var progress func(done, total int)
		var bar *fit.Progress
		if app.Terminal {
			bar = fit.NewProgress(os.Stderr, "features "+ds.Split)
			progress = bar.Update
		}
		f, err := eval.ExtractWithProgress(backend, enc.Context, fn, l, progress)
		bar.Done()
		if err != nil {
			return bank, queries, fmt.Errorf("%s %s: %w", ds.Name, ds.Split, err)
		}
		if i == 0 {
			bank = f
		} else {
			queries = f
		}
	}
	return bank, queries, nil
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
