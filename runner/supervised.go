package runner

import (
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/data"
	"github.com/ifa-toolkit/ifa/fit"
)

// The options and helpers the supervised runs (Train, Distill) share.

// EpochFlags are the length and batch size of a supervised run, shared by Train and
// Distill (RepDistiller's 240 epochs of batch 64).
type EpochFlags struct {
	Epochs int `help:"Number of epochs." default:"240"`
	Batch  int `help:"Training batch size." default:"64"`
}

// RunFlags control evaluation, checkpoints, logging, data loading and resuming of a supervised
// run, shared by Train and Distill.
type RunFlags struct {
	EvalBatch       int  `name:"eval-batch" help:"Evaluation batch size." default:"500"`
	CheckpointEvery int  `name:"checkpoint-every" help:"Write a checkpoint every N epochs (always after the last and on Ctrl-C); 0: only then." default:"10"`
	Keep            int  `name:"keep-checkpoints" help:"Keep only the newest N checkpoints; 0 keeps all." default:"3"`
	LogEvery        int  `name:"log-every" help:"Log a training event every N steps when no progress bar is drawn; 0: per epoch only." default:"100"`
	Workers         int  `help:"Goroutines preparing batches (0: one per CPU)." default:"0"`
	Resume          bool `help:"Continue the run in --out from its newest checkpoint (same flags)."`
}

// epochChecks check --epochs, --batch and --eval-batch.
func epochChecks(e EpochFlags, r RunFlags) []Check {
	return []Check{
		Want(e.Epochs >= 1, "--epochs %d: want >= 1", e.Epochs),
		Want(e.Batch >= 1, "--batch %d: want >= 1", e.Batch),
		Want(r.EvalBatch >= 1, "--eval-batch %d: want >= 1", r.EvalBatch),
	}
}

// dataAndRunChecks check the augmentation padding, the split limits, --eval-every and the
// RunFlags counts.
func dataAndRunChecks(padding, limitTrain, limitTest, evalEvery int, r RunFlags) []Check {
	return []Check{
		Want(padding >= 0, "--padding %d: want >= 0", padding),
		Want(limitTrain >= 0, "--limit-train %d: want >= 0 (0: all)", limitTrain),
		Want(limitTest >= 0, "--limit-test %d: want >= 0 (0: all)", limitTest),
		Want(evalEvery >= 0, "--eval-every %d: want >= 0", evalEvery),
		Want(r.CheckpointEvery >= 0, "--checkpoint-every %d: want >= 0", r.CheckpointEvery),
		Want(r.Keep >= 0, "--keep-checkpoints %d: want >= 0 (0 keeps all)", r.Keep),
		Want(r.LogEvery >= 0, "--log-every %d: want >= 0", r.LogEvery),
		Want(r.Workers >= 0, "--workers %d: want >= 0 (0: one per CPU)", r.Workers),
	}
}

// sgdChecks check the SGD flags of a supervised run.
func sgdChecks(lrFactor, momentum, weightDecay float64) []Check {
	return []Check{
		Want(lrFactor > 0, "--lr-factor %g: want > 0", lrFactor),
		Want(momentum >= 0 && momentum < 1, "--momentum %g: want in [0, 1)", momentum),
		Want(weightDecay >= 0, "--weight-decay %g: want >= 0", weightDecay),
	}
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
