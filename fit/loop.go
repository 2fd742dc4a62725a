package fit

import (
	stdctx "context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/rs/zerolog"

	"github.com/ifa-toolkit/ifa/data"
	"github.com/ifa-toolkit/ifa/internal/catch"
)

// Config is the training loop's configuration. It is saved in config.json (WriteConfig).
type Config struct {
	// Epochs is the total number of epochs of the run (a resumed run continues up to it).
	Epochs int `json:"epochs"`
	// Optimizer is the update rule.
	Optimizer Optimizer `json:"optimizer"`
	// Schedule gives the learning rate of each step.
	Schedule Schedule `json:"schedule"`
	// ClipNorm clips the global L2 norm of the gradients; 0 disables clipping.
	ClipNorm float64 `json:"clip_norm"`
	// Frozen lists absolute scopes (e.g. "/teacher") whose variables get no gradient, no update
	// and no optimiser state, and whose batch norms run in evaluation mode.
	Frozen []string `json:"frozen,omitempty"`
	// CheckpointEvery writes a checkpoint every so many epochs; one is always written after the
	// last epoch and on interruption. 0 means only those.
	CheckpointEvery int `json:"checkpoint_every"`
	// KeepCheckpoints keeps only the newest so many checkpoints; 0 keeps all.
	KeepCheckpoints int `json:"keep_checkpoints"`
	// EvalEvery calls the evaluation callback every so many epochs and after the last one; 0 means
	// after the last epoch only.
	EvalEvery int `json:"eval_every"`
	// LogEvery emits a step log event every so many steps when no progress bar is drawn; 0 means
	// only per-epoch events.
	LogEvery int `json:"log_every"`
	// RunDir receives metrics.jsonl and checkpoints/ (and config.json through WriteConfig).
	RunDir string `json:"run_dir"`
	// Seed seeds the context's random number generator (variable initialisation, dropout, any
	// in-graph randomness) at the start of a fresh run; a resumed run restores the saved state.
	Seed int64 `json:"seed"`
	// Resume continues from the newest checkpoint of RunDir (a fresh start if there is none).
	Resume bool `json:"resume"`
	// BestMetric names the evaluation metric (higher is better, e.g. "test_top1") whose best value
	// and epoch are tracked.
	BestMetric string `json:"best_metric,omitempty"`
	// EMA, when set, keeps momentum copies of some scopes (ema.go).
	EMA *EMA `json:"ema,omitempty"`
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Epochs <= 0 {
		return fmt.Errorf("fit: epochs %d must be > 0", c.Epochs)
	}
	if c.RunDir == "" {
		return errors.New("fit: the run directory is not set")
	}
	if c.ClipNorm < 0 || c.CheckpointEvery < 0 || c.KeepCheckpoints < 0 || c.EvalEvery < 0 || c.LogEvery < 0 {
		return fmt.Errorf("fit: clip_norm %v, checkpoint_every %d, keep_checkpoints %d, eval_every %d and log_every %d must be >= 0",
			c.ClipNorm, c.CheckpointEvery, c.KeepCheckpoints, c.EvalEvery, c.LogEvery)
	}
	for _, s := range c.Frozen {
		if absScope(s) == context.RootScope {
			return errors.New("fit: a frozen scope cannot be the root scope")
		}
	}
	if err := c.Optimizer.Validate(); err != nil {
		return err
	}
	if c.EMA != nil {
		if err := c.EMA.Validate(); err != nil {
			return err
		}
	}
	return c.Schedule.Validate()
}

// EvalFunc evaluates the model at the end of 0-based epoch `epoch` and returns named metrics
// (e.g. "test_top1", "test_top5"), logged and written to metrics.jsonl.
type EvalFunc func(ctx *context.Context, epoch int) (map[string]float64, error)

// Job is what Run trains.
type Job struct {
	// Backend runs the train step.
	Backend backends.Backend
	// Context holds the model's variables and hyper-parameters; optimiser state is added to it.
	Context *context.Context
	// Train yields the training batches; its per-epoch determinism makes resuming exact.
	Train data.Loader
	// Loss builds the loss of one batch.
	Loss LossFn
	// Eval is optional.
	Eval EvalFunc
	// Log receives one event per logging step and per epoch.
	Log zerolog.Logger
	// Terminal draws a progress bar (redrawn in place on Progress) instead of step log events.
	Terminal bool
	// Progress is where the progress bar goes; nil means os.Stderr.
	Progress io.Writer
	// Parallel splits every train step over several devices of Backend (NewDataParallel); every
	// batch must then split evenly over them. nil trains on one device.
	Parallel *DataParallel
	// Models are recorded in every checkpoint's header (ModelRecord). On resume, a checkpoint
	// whose header records another model at one of these scopes is refused before any of its
	// variables is used; one without records (an older checkpoint) loads with a warning.
	Models []ModelRecord
	// Abort, when cancelled (a second Ctrl-C), abandons a checkpoint being written: its temporary
	// file is removed, the previous checkpoints stay intact, and Run returns an error wrapping
	// ErrInterrupted at once. nil never aborts.
	Abort stdctx.Context
}

// Result summarises a run.
type Result struct {
	// Epochs completed and optimiser steps taken, in the whole run (resumes included).
	Epochs     int
	GlobalStep int64
	// TrainLoss and TrainTerms are the last epoch's means.
	TrainLoss  float64
	TrainTerms map[string]float64
	// Metrics are the last evaluation's metrics (nil if none ran).
	Metrics map[string]float64
	// BestMetric/BestEpoch (1-based) track Config.BestMetric; HasBest is false if it never appeared.
	BestMetric float64
	BestEpoch  int
	HasBest    bool
	// Seconds is this process's wall time in Run; ImagesPerSec its training throughput.
	Seconds      float64
	ImagesPerSec float64
	// Checkpoint is the newest checkpoint written; ResumedFrom the one the run started from.
	Checkpoint  string
	ResumedFrom string
}

// ErrInterrupted is wrapped by the error Run returns when its Go context is cancelled.
var ErrInterrupted = errors.New("training interrupted")

// ErrNonFinite is wrapped by the error Run returns when the loss, a loss term or the gradient norm
// becomes NaN or infinite.
var ErrNonFinite = errors.New("non-finite training value")

// Run trains job.Context's model: it compiles one train step (forward, backward, update; the
// learning rate is a scalar input) and runs it over cfg.Epochs epochs of job.Train, evaluating,
// logging, writing metrics.jsonl and checkpoints as cfg says.
//
// Cancelling cancel stops the loop after the current step; a checkpoint is written and the
// returned error wraps ErrInterrupted and says how to resume. A NaN or infinite loss, term or
// gradient norm stops the run with an error wrapping ErrNonFinite that names the step and the
// values; no checkpoint is written for that state.
//
// The train step runs on job.Context.Checked(false): variables loaded before Run (a resumed
// checkpoint, an imported teacher) are reused by the graph code that declares them.
//
// With job.Parallel set, every step is split over its devices (see DataParallel): the loss sees the
// global batch, so the learning rate is that of the global batch and checkpoints are unchanged.
func Run(cancel stdctx.Context, job Job, cfg Config) (res *Result, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if job.Backend == nil || job.Context == nil || job.Train == nil || job.Loss == nil {
		return nil, errors.New("fit: Job needs a Backend, a Context, a Train loader and a Loss")
	}
	r := &runner{job: job, cfg: cfg, log: job.Log, start: time.Now()}
	defer r.bar.clear()
	defer catch.Recover(&err, "fit: ")
	return r.run(cancel)
}

type runner struct {
	job   Job
	cfg   Config
	log   zerolog.Logger
	sched Schedule
	state LoopState
	exec  *context.Exec
	bar   *progressBar
	start time.Time

	layout         stepLayout
	trainable      int64
	termNames      []string
	lastCheckpoint string
	resumedFrom    string
	resumedVars    map[string]bool
	emaReady       bool
	// Throughput of this process.
	imagesRun  int64
	stepsRun   int64
	trainTime  time.Duration
	lastLogAt  time.Time
	lastLogImg int64
}

func (r *runner) ckptDir() string { return filepath.Join(r.cfg.RunDir, checkpointsDir) }

func (r *runner) run(cancel stdctx.Context) (*Result, error) {
	cfg, ctx := r.cfg, r.job.Context
	if err := os.MkdirAll(r.ckptDir(), 0o755); err != nil {
		return nil, fmt.Errorf("fit: run directory %s: %w", cfg.RunDir, err)
	}
	// Unfinished writes of a process that was killed.
	removed, err := RemoveTempCheckpoints(cfg.RunDir)
	for _, p := range removed {
		r.log.Warn().Str("file", p).Msg("removed an unfinished checkpoint write of an earlier, killed process")
	}
	if err != nil {
		return nil, err
	}
	stepsPerEpoch := r.job.Train.StepsPerEpoch()
	if stepsPerEpoch <= 0 {
		return nil, fmt.Errorf("fit: the training loader has %d steps per epoch", stepsPerEpoch)
	}
	r.sched = cfg.Schedule
	if r.sched.Kind == ScheduleWarmupCosine && r.sched.TotalSteps == 0 {
		r.sched.TotalSteps = int64(cfg.Epochs) * int64(stepsPerEpoch)
	}

	// Resume or start fresh.
	var ck *Checkpoint
	if cfg.Resume {
		latest, err := LatestCheckpoint(cfg.RunDir)
		if err != nil {
			return nil, err
		}
		if latest == "" {
			r.log.Warn().Str("run_dir", cfg.RunDir).Msg("resume: no checkpoint found, starting from scratch")
		} else if ck, err = LoadCheckpoint(latest); err != nil {
			return nil, fmt.Errorf("%w (remove it to resume from the previous checkpoint)", err)
		}
	}
	if ck != nil {
		if err := r.checkModels(ck); err != nil {
			return nil, err
		}
		if _, err := ck.Apply(ctx, LoadOptions{IncludeLoopState: true}); err != nil {
			return nil, err
		}
		r.state = ck.State
		r.resumedFrom = ck.Path
		r.resumedVars = make(map[string]bool, len(ck.Variables))
		for _, v := range ck.Variables {
			r.resumedVars[v.ScopeAndName()] = true
		}
		r.lastCheckpoint = ck.Path
		if err := resetMetrics(cfg.RunDir, r.state.Epoch); err != nil {
			return nil, err
		}
		r.log.Info().Str("checkpoint", ck.Path).Int("epoch", r.state.Epoch+1).Int("step_in_epoch", r.state.StepInEpoch).
			Int64("global_step", r.state.GlobalStep).Msg("resuming")
	} else {
		if err := ctx.SetRNGStateFromSeed(cfg.Seed); err != nil {
			return nil, fmt.Errorf("fit: seeding the random number generator: %w", err)
		}
		if err := resetMetrics(cfg.RunDir, 0); err != nil {
			return nil, err
		}
	}
	if cfg.BestMetric != "" {
		r.state.BestMetricName = cfg.BestMetric
	}

	if err := r.compile(); err != nil {
		return nil, err
	}
	defer r.exec.Finalize()

	if r.job.Terminal {
		w := r.job.Progress
		if w == nil {
			w = os.Stderr
		}
		r.bar = &progressBar{w: w, interval: 100 * time.Millisecond}
	}
	r.lastLogAt = time.Now()

	var res Result
	for epoch := r.state.Epoch; epoch < cfg.Epochs; epoch++ {
		if err := r.runEpoch(cancel, epoch, ck != nil && epoch == ck.State.Epoch, &res); err != nil {
			return nil, err
		}
	}
	res.Epochs = r.state.Epoch
	res.GlobalStep = r.state.GlobalStep
	res.BestMetric, res.BestEpoch, res.HasBest = r.state.BestMetric, r.state.BestEpoch, r.state.HasBest
	res.Seconds = time.Since(r.start).Seconds()
	if r.trainTime > 0 {
		res.ImagesPerSec = float64(r.imagesRun) / r.trainTime.Seconds()
	}
	res.Checkpoint = r.lastCheckpoint
	res.ResumedFrom = r.resumedFrom
	return &res, nil
}

// checkModels compares the resumed checkpoint's model records with the job's.
func (r *runner) checkModels(ck *Checkpoint) error {
	if len(r.job.Models) == 0 {
		return nil
	}
	if len(ck.Models) == 0 {
		r.log.Warn().Str("checkpoint", ck.Path).Msg("the checkpoint has no model record (written by an older ifa); the checkpoints of this run will have one")
		return nil
	}
	for _, want := range r.job.Models {
		got, ok := ck.Model(want.Scope)
		if !ok {
			return fmt.Errorf("fit: checkpoint %s holds no model at %s, but this run trains %s there", ck.Path, absScope(want.Scope), want)
		}
		if !got.SameModel(want) {
			return fmt.Errorf("fit: checkpoint %s holds %s at %s, but this run trains %s", ck.Path, got, absScope(want.Scope), want)
		}
	}
	return nil
}

// checkResumedVariables fails when the model declares a variable that the resumed checkpoint
// lacks: it would start from a fresh initialisation and the run would not be a continuation.
func (r *runner) checkResumedVariables() error {
	for v := range r.job.Context.IterVariables() {
		if !r.resumedVars[v.ScopeAndName()] {
			return fmt.Errorf("fit: checkpoint %s has no variable %s that the model declares: the model or its flags changed since it was written",
				r.resumedFrom, v.ScopeAndName())
		}
	}
	return nil
}

// runEpoch trains 0-based epoch `epoch` (resumedEpoch: the one a checkpoint stopped inside, whose
// first steps are skipped) and ends it (endEpoch).
func (r *runner) runEpoch(cancel stdctx.Context, epoch int, resumedEpoch bool, res *Result) error {
	steps := r.job.Train.StepsPerEpoch()
	stats := newEpochStats()
	skip := 0
	if resumedEpoch {
		skip = r.state.StepInEpoch
		stats.restore(r.state)
	}
	lr := r.sched.LR(epoch, r.state.GlobalStep)
	i := 0
	for batch, err := range r.job.Train.Epoch(epoch) {
		if err != nil {
			return fmt.Errorf("fit: epoch %d: batch %d: %w", epoch+1, i+1, err)
		}
		if i < skip {
			i++
			continue
		}
		lr = r.sched.LR(epoch, r.state.GlobalStep)
		out, err := r.step(lr, batch)
		if err != nil {
			if r.stepsRun == 0 && r.resumedFrom != "" {
				// The first step builds the graph: a variable of the checkpoint whose shape differs
				// from the model's declaration fails here.
				r.log.Debug().Err(err).Msg("building the train step on the resumed variables")
				return fmt.Errorf("fit: checkpoint %s does not fit the model this run builds: it was written by another model or with other flags", r.resumedFrom)
			}
			return fmt.Errorf("fit: epoch %d, step %d (global step %d): %w", epoch+1, i+1, r.state.GlobalStep+1, err)
		}
		if r.stepsRun == 0 && r.resumedVars != nil {
			// Every variable the model declares must come from the checkpoint (nothing is written
			// before this check).
			if err := r.checkResumedVariables(); err != nil {
				return err
			}
		}
		if bad := out.nonFinite(r.termNames); bad != "" {
			last := r.lastCheckpoint
			if last == "" {
				last = "none"
			}
			return fmt.Errorf("fit: %s (%w) at global step %d (epoch %d, step %d of %d): %s; no checkpoint was written for this state (last good checkpoint: %s)",
				bad, ErrNonFinite, r.state.GlobalStep+1, epoch+1, i+1, steps, out.describe(r.termNames), last)
		}
		r.state.GlobalStep++
		i++
		r.stepsRun++
		r.imagesRun += int64(batch.Size)
		r.trainTime += out.Duration
		stats.add(out, r.termNames, batch.Size)
		r.reportStep(epoch, i, steps, lr, out)

		if cancel.Err() != nil {
			r.state.Epoch, r.state.StepInEpoch = epoch, i
			r.state.EpochSums, r.state.EpochImages = stats.sums, stats.images
			path, err := r.checkpoint()
			if errors.Is(err, ErrCheckpointAborted) {
				return r.abandoned()
			}
			if err != nil {
				return fmt.Errorf("fit: %w at global step %d, and writing its checkpoint failed: %w", ErrInterrupted, r.state.GlobalStep, err)
			}
			return interrupted(fmt.Sprintf("global step %d (epoch %d, step %d of %d)", r.state.GlobalStep, epoch+1, i, steps), path)
		}
	}
	if i < skip {
		return fmt.Errorf("fit: epoch %d: the loader yielded %d batches, but the checkpoint had consumed %d", epoch+1, i, skip)
	}
	r.bar.clear()
	return r.endEpoch(cancel, epoch, i, lr, stats, res)
}

// interrupted is the error of a run stopped by its Go context after `where`, with the checkpoint
// written at path.
func interrupted(where, path string) error {
	return fmt.Errorf("fit: %w after %s; checkpoint %s written: run the same command with --resume (same run directory) to continue",
		ErrInterrupted, where, path)
}

// due reports whether a task done every `every` epochs (0: only after the last) is due after
// 0-based epoch `epoch`: evaluation, checkpoints.
func (c Config) due(every, epoch int) bool {
	return epoch+1 == c.Epochs || (every > 0 && (epoch+1)%every == 0)
}

// epochStats accumulates one epoch's training statistics. Its sums and image count carry over a
// checkpoint written inside the epoch (LoopState.EpochSums, EpochImages); the throughput counts
// this process's steps only.
type epochStats struct {
	start time.Time
	// sums: per name ("loss" and the terms), the sum over the epoch's steps.
	sums map[string]float64
	// images: the epoch's images so far, resumed steps included.
	images int64
	// imagesRun and train: images and step time of this process.
	imagesRun int64
	train     time.Duration
}

func newEpochStats() *epochStats {
	return &epochStats{start: time.Now(), sums: map[string]float64{}}
}

// restore continues the sums of the epoch a checkpoint stopped inside.
func (s *epochStats) restore(st LoopState) {
	for k, v := range st.EpochSums {
		s.sums[k] = v
	}
	s.images = st.EpochImages
}

// add counts one step of a batch of size images.
func (s *epochStats) add(out StepOutputs, names []string, size int) {
	s.sums["loss"] += out.Loss
	for k, name := range names {
		s.sums[name] += out.Terms[k]
	}
	s.images += int64(size)
	s.imagesRun += int64(size)
	s.train += out.Duration
}

// imagesPerSec is this process's training throughput in the epoch (0 before any step).
func (s *epochStats) imagesPerSec() float64 {
	if s.train <= 0 {
		return 0
	}
	return float64(s.imagesRun) / s.train.Seconds()
}

// endEpoch closes 0-based epoch `epoch` after `steps` steps at learning rate lr: the means of the
// loss and terms, the evaluation, metrics.jsonl, the epoch log event and the checkpoint.
func (r *runner) endEpoch(cancel stdctx.Context, epoch, steps int, lr float64, stats *epochStats, res *Result) error {
	cfg := r.cfg
	r.state.Epoch, r.state.StepInEpoch = epoch+1, 0
	r.state.EpochSums, r.state.EpochImages = nil, 0
	mean := func(k string) float64 { return stats.sums[k] / float64(max(1, steps)) }
	res.TrainLoss = mean("loss")
	res.TrainTerms = map[string]float64{}
	for _, name := range r.termNames {
		res.TrainTerms[name] = mean(name)
	}
	trainSeconds := time.Since(stats.start).Seconds()
	var metrics map[string]float64
	if r.job.Eval != nil && cfg.due(cfg.EvalEvery, epoch) {
		m, err := r.job.Eval(r.job.Context, epoch)
		if err != nil {
			return fmt.Errorf("fit: evaluation after epoch %d: %w", epoch+1, err)
		}
		metrics = m
		res.Metrics = m
		if v, ok := m[cfg.BestMetric]; ok && cfg.BestMetric != "" && isFinite(v) && (!r.state.HasBest || v > r.state.BestMetric) {
			r.state.BestMetric, r.state.BestEpoch, r.state.HasBest = v, epoch+1, true
		}
	}
	ips := stats.imagesPerSec()

	rec := &record{}
	rec.add("epoch", epoch+1)
	rec.add("step", r.state.GlobalStep)
	rec.add("lr", lr)
	rec.add("train_loss", res.TrainLoss)
	for _, name := range r.termNames {
		rec.add("train_"+name, res.TrainTerms[name])
	}
	for _, k := range sortedKeys(metrics) {
		rec.add(k, metrics[k])
	}
	rec.add("images_per_sec", ips)
	rec.add("peak_rss_bytes", PeakRSS())
	rec.add("seconds", time.Since(stats.start).Seconds())
	if err := appendMetrics(cfg.RunDir, rec); err != nil {
		return err
	}

	ev := r.log.Info().Int("epoch", epoch+1).Int("epochs", cfg.Epochs).Int64("step", r.state.GlobalStep).
		Float64("lr", lr).Float64("train_loss", res.TrainLoss)
	for _, name := range r.termNames {
		ev = ev.Float64("train_"+name, res.TrainTerms[name])
	}
	for _, k := range sortedKeys(metrics) {
		ev = ev.Float64(k, metrics[k])
	}
	ev.Float64("images_per_sec", ips).Float64("train_seconds", trainSeconds).Msg("epoch")

	last := epoch+1 == cfg.Epochs
	if cfg.due(cfg.CheckpointEvery, epoch) || cancel.Err() != nil {
		path, err := r.checkpoint()
		if errors.Is(err, ErrCheckpointAborted) {
			return r.abandoned()
		}
		if err != nil {
			return err
		}
		if cancel.Err() != nil && !last {
			return interrupted(fmt.Sprintf("epoch %d (global step %d)", epoch+1, r.state.GlobalStep), path)
		}
	}
	return nil
}

// abandoned is the error of a run whose checkpoint write was abandoned by Job.Abort.
func (r *runner) abandoned() error {
	last := r.lastCheckpoint
	if last == "" {
		last = "none"
	}
	return fmt.Errorf("fit: %w again at global step %d: the checkpoint write was abandoned and its temporary file removed; the last checkpoint (%s) is intact",
		ErrInterrupted, r.state.GlobalStep, last)
}

// reportStep draws the progress bar or emits a step log event.
func (r *runner) reportStep(epoch, step, steps int, lr float64, out StepOutputs) {
	now := time.Now()
	if r.bar != nil {
		ips := 0.0
		if r.trainTime > 0 {
			ips = float64(r.imagesRun) / r.trainTime.Seconds()
		}
		remaining := int64(r.cfg.Epochs)*int64(steps) - r.state.GlobalStep
		eta := time.Duration(float64(remaining) * float64(time.Since(r.start)) / float64(max(1, r.stepsRun)))
		r.bar.draw(progressLine{epoch: epoch + 1, epochs: r.cfg.Epochs, step: step, steps: steps, loss: out.Loss, lr: lr,
			imagesPerSec: ips, eta: eta}, step == steps)
		return
	}
	if r.cfg.LogEvery <= 0 || r.state.GlobalStep%int64(r.cfg.LogEvery) != 0 {
		return
	}
	ips := 0.0
	if dt := now.Sub(r.lastLogAt).Seconds(); dt > 0 {
		ips = float64(r.imagesRun-r.lastLogImg) / dt
	}
	r.lastLogAt, r.lastLogImg = now, r.imagesRun
	ev := r.log.Info().Int("epoch", epoch+1).Int64("step", r.state.GlobalStep).Float64("loss", out.Loss)
	for k, name := range r.termNames {
		ev = ev.Float64(name, out.Terms[k])
	}
	ev.Float64("lr", lr).Float64("grad_norm", out.GradNorm).Float64("images_per_sec", ips).Msg("train")
}

// checkpoint writes the current state and prunes old checkpoints.
func (r *runner) checkpoint() (string, error) {
	path := filepath.Join(r.ckptDir(), CheckpointName(r.state.GlobalStep))
	if err := SaveCheckpointAbortable(r.job.Abort, path, r.job.Context, r.state, r.job.Models...); err != nil {
		return "", err
	}
	r.lastCheckpoint = path
	if err := pruneCheckpoints(r.cfg.RunDir, r.cfg.KeepCheckpoints); err != nil {
		return path, err
	}
	r.bar.clear()
	r.log.Info().Str("checkpoint", path).Int64("step", r.state.GlobalStep).Msg("checkpoint written")
	return path, nil
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
