package main

import (
	stdctx "context"
	"fmt"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/data"
	"github.com/ifa-toolkit/ifa/fit"
)

// EpochFlags are the length and batch size of a supervised run, shared by `ifa train` and
// `ifa distill` (RepDistiller's 240 epochs of batch 64).
type EpochFlags struct {
	Epochs int `help:"Number of epochs." default:"240"`
	Batch  int `help:"Training batch size." default:"64"`
}

// RunFlags control evaluation, checkpoints, logging, data loading and resuming of a supervised
// run, shared by `ifa train` and `ifa distill`.
type RunFlags struct {
	EvalBatch       int  `name:"eval-batch" help:"Evaluation batch size." default:"500"`
	CheckpointEvery int  `name:"checkpoint-every" help:"Write a checkpoint every N epochs (always after the last and on Ctrl-C); 0: only then." default:"10"`
	Keep            int  `name:"keep-checkpoints" help:"Keep only the newest N checkpoints; 0 keeps all." default:"3"`
	LogEvery        int  `name:"log-every" help:"Log a training event every N steps when no progress bar is drawn; 0: per epoch only." default:"100"`
	Workers         int  `help:"Goroutines preparing batches (0: one per CPU)." default:"0"`
	Resume          bool `help:"Continue the run in --out from its newest checkpoint (same flags)."`
}

// validateEpochs checks --epochs, --batch and --eval-batch; errors start with cmd.
func validateEpochs(cmd string, e EpochFlags, r RunFlags) error {
	switch {
	case e.Epochs < 1:
		return fmt.Errorf("%s: --epochs %d: want >= 1", cmd, e.Epochs)
	case e.Batch < 1 || r.EvalBatch < 1:
		return fmt.Errorf("%s: --batch %d and --eval-batch %d: want >= 1", cmd, e.Batch, r.EvalBatch)
	}
	return nil
}

// validateDataAndRun checks the augmentation padding, the split limits, --eval-every and the
// RunFlags counts; errors start with cmd.
func validateDataAndRun(cmd string, padding, trainLimit, testLimit, evalEvery int, r RunFlags) error {
	switch {
	case padding < 0 || trainLimit < 0 || testLimit < 0:
		return fmt.Errorf("%s: --padding %d, --limit-train %d and --limit-test %d: want >= 0", cmd, padding, trainLimit, testLimit)
	case evalEvery < 0 || r.CheckpointEvery < 0 || r.Keep < 0 || r.LogEvery < 0 || r.Workers < 0:
		return fmt.Errorf("%s: --eval-every, --checkpoint-every, --keep-checkpoints, --log-every and --workers must be >= 0", cmd)
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

// augmentOps appends a supervised run's training augmentation of h×w images to ops: a random crop
// with padding pixels of zero padding (padding > 0) and a horizontal flip (unless noFlip), none of
// them with noAugment.
func augmentOps(ops []data.Op, h, w, padding int, noFlip, noAugment bool) []data.Op {
	if noAugment {
		return ops
	}
	if padding > 0 {
		ops = append(ops, data.RandomCrop{H: h, W: w, Padding: padding})
	}
	if !noFlip {
		ops = append(ops, data.HFlip{P: 0.5})
	}
	return ops
}

// loopConfig is the part of the training-loop configuration the RunFlags describe: checkpoints,
// evaluation every evalEvery epochs (the best checkpoint by test top-1), logging and resuming. The
// caller sets the epochs, the optimiser and the schedule.
func (r RunFlags) loopConfig(evalEvery int, runDir string, seed int64) fit.Config {
	return fit.Config{
		CheckpointEvery: r.CheckpointEvery,
		KeepCheckpoints: r.Keep,
		EvalEvery:       evalEvery,
		LogEvery:        r.LogEvery,
		RunDir:          runDir,
		Seed:            seed,
		Resume:          r.Resume,
		BestMetric:      "test_top1",
	}
}

// testEvaluator is the loop's evaluation of logits on the test loader (metrics "test_top1",
// "test_top5", ...). The evaluator is built on the first call, in the loop's context; release frees it.
func testEvaluator(backend backends.Backend, dp *fit.DataParallel, logits fit.LogitsFn, test *data.ImageLoader) (
	eval func(ctx *context.Context, epoch int) (map[string]float64, error), release func()) {
	var evaluator *fit.Evaluator
	release = func() {
		if evaluator != nil {
			evaluator.Finalize()
		}
	}
	eval = func(ctx *context.Context, epoch int) (map[string]float64, error) {
		if evaluator == nil {
			var err error
			if evaluator, err = fit.NewParallelEvaluator(backend, ctx, logits, dp); err != nil {
				return nil, err
			}
		}
		acc, err := evaluator.Evaluate(test)
		if err != nil {
			return nil, err
		}
		return acc.Metrics("test_"), nil
	}
	return eval, release
}
