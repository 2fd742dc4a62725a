package fit

import (
	"bufio"
	"bytes"
	stdctx "context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/rs/zerolog"

	"github.com/ifa-toolkit/ifa/internal/nn"
	"github.com/ifa-toolkit/ifa/internal/testutil"
)

func baseConfig(dir string) Config {
	return Config{
		Epochs:          4,
		Optimizer:       Optimizer{Kind: OptimizerSGD, Momentum: 0.9, Nesterov: true, WeightDecay: 5e-4},
		Schedule:        Schedule{Kind: ScheduleMultiStep, BaseLR: 0.1, Milestones: []int{2, 3}, Factor: 0.1},
		CheckpointEvery: 1,
		KeepCheckpoints: 0,
		LogEvery:        1,
		RunDir:          dir,
		Seed:            42,
	}
}

func mlpJob(ctx *context.Context, loader *memLoader, log *bytes.Buffer) Job {
	j := Job{Backend: testutil.Backend(), Context: ctx, Train: loader, Loss: mlpLoss, Log: zerolog.Nop()}
	if log != nil {
		j.Log = zerolog.New(log)
	}
	return j
}

func readMetrics(t *testing.T, dir string) []map[string]any {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("metrics line %q: %v", sc.Text(), err)
		}
		recs = append(recs, m)
	}
	return recs
}

// A training run decreases the loss; metrics.jsonl holds one line per epoch whose train_loss is
// the mean of the logged step losses; evaluation metrics and best-metric tracking appear.
func TestRunTrainsAndWritesMetrics(t *testing.T) {
	dir := t.TempDir()
	ctx := context.New()
	loader := newSyntheticLoader(testN, testD, testC, testB, 1)
	var log bytes.Buffer
	job := mlpJob(ctx, loader, &log)
	test := newSyntheticLoader(testN, testD, testC, 16, 1) // Same distribution; partial last batch.
	ev, err := NewEvaluator(testutil.Backend(), ctx, func(ctx *context.Context, x *graph.Node) *graph.Node {
		return mlp(ctx.In("model"), x, true)
	})
	if err != nil {
		t.Fatal(err)
	}
	job.Eval = func(ctx *context.Context, epoch int) (map[string]float64, error) {
		acc, err := ev.Evaluate(test)
		return acc.Metrics("test_"), err
	}
	cfg := baseConfig(dir)
	cfg.Epochs = 6
	cfg.Schedule = Schedule{Kind: ScheduleConstant, BaseLR: 0.05}
	cfg.EvalEvery = 2
	cfg.BestMetric = "test_top1"
	if err := WriteConfig(dir, map[string]any{"model": "mlp", "hidden": testH}, cfg); err != nil {
		t.Fatal(err)
	}
	res, err := Run(stdctx.Background(), job, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Epochs != 6 || res.GlobalStep != 30 {
		t.Errorf("result epochs %d, steps %d; want 6, 30", res.Epochs, res.GlobalStep)
	}

	// Step log events: one per step, with loss, terms, lr and images/s.
	var stepLoss [][]float64
	sc := bufio.NewScanner(&log)
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if ev["message"] != "train" {
			continue
		}
		for _, k := range []string{"step", "loss", "ce", "poison", "lr", "images_per_sec", "grad_norm"} {
			if _, ok := ev[k]; !ok {
				t.Fatalf("step event %v lacks %q", ev, k)
			}
		}
		e := int(ev["epoch"].(float64))
		for len(stepLoss) < e {
			stepLoss = append(stepLoss, nil)
		}
		stepLoss[e-1] = append(stepLoss[e-1], ev["loss"].(float64))
	}
	recs := readMetrics(t, dir)
	if len(recs) != 6 || len(stepLoss) != 6 {
		t.Fatalf("%d metrics lines and %d epochs of step logs, want 6", len(recs), len(stepLoss))
	}
	for e, rec := range recs {
		if int(rec["epoch"].(float64)) != e+1 || int(rec["step"].(float64)) != 5*(e+1) {
			t.Errorf("line %d: epoch %v step %v", e, rec["epoch"], rec["step"])
		}
		sum := 0.0
		for _, l := range stepLoss[e] {
			sum += l
		}
		if len(stepLoss[e]) != 5 || !closeTo(rec["train_loss"].(float64), sum/5, 1e-12) {
			t.Errorf("epoch %d: train_loss %v, mean of %d logged steps %v", e+1, rec["train_loss"], len(stepLoss[e]), sum/5)
		}
		for _, k := range []string{"lr", "train_ce", "train_poison", "images_per_sec", "peak_rss_bytes", "seconds"} {
			if _, ok := rec[k]; !ok {
				t.Errorf("epoch %d: metrics lack %q: %v", e+1, k, rec)
			}
		}
		_, hasTop1 := rec["test_top1"]
		if hasTop1 != ((e+1)%2 == 0) {
			t.Errorf("epoch %d: test_top1 present=%v, eval_every 2", e+1, hasTop1)
		}
		if rec["peak_rss_bytes"].(float64) <= 0 {
			t.Errorf("peak_rss_bytes %v", rec["peak_rss_bytes"])
		}
	}
	first, last := recs[0]["train_loss"].(float64), recs[5]["train_loss"].(float64)
	if !(last < 0.5*first) {
		t.Errorf("train loss went from %v to %v: want it at least halved", first, last)
	}
	if !res.HasBest || res.BestMetric < 50 || res.Metrics["test_top1"] < 50 {
		t.Errorf("best test_top1 %v (epoch %d), last %v: want a trained model", res.BestMetric, res.BestEpoch, res.Metrics["test_top1"])
	}
	cfgData, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil || !bytes.Contains(cfgData, []byte(`"hidden": 8`)) || !bytes.Contains(cfgData, []byte(`"nesterov": true`)) {
		t.Errorf("config.json: %v\n%s", err, cfgData)
	}
}

// trainTo runs cfg on a fresh context and returns it.
func trainTo(t *testing.T, cfg Config, cancelAt int) (*context.Context, error) {
	t.Helper()
	ctx := context.New()
	loader := newSyntheticLoader(testN, testD, testC, testB, 3)
	goctx, cancel := stdctx.WithCancel(stdctx.Background())
	defer cancel()
	if cancelAt > 0 {
		loader.onStep = func(e, i int) {
			if e*5+i+1 == cancelAt {
				cancel()
			}
		}
	}
	_, err := Run(goctx, mlpJob(ctx, loader, nil), cfg)
	return ctx, err
}

func compareSnapshots(t *testing.T, want, got map[string][]byte) {
	t.Helper()
	if len(want) != len(got) {
		t.Errorf("%d variables, want %d", len(got), len(want))
	}
	for k, w := range want {
		if !bytes.Equal(w, got[k]) {
			t.Errorf("variable %s differs from the uninterrupted run", k)
		}
	}
}

func metricsWithoutTiming(t *testing.T, dir string) []map[string]any {
	recs := readMetrics(t, dir)
	for _, r := range recs {
		delete(r, "seconds")
		delete(r, "images_per_sec")
		delete(r, "peak_rss_bytes")
	}
	return recs
}

// Cancelling mid-run, then resuming, gives bit-identical variables (model, batch-norm
// statistics, optimiser state, RNG state) and the same metrics as an uninterrupted run.
func TestResumeIsBitIdentical(t *testing.T) {
	cases := []struct {
		name       string
		opt        Optimizer
		sched      Schedule
		dropNewest bool // simulate a hard kill: resume from the last periodic checkpoint
	}{
		{"sgd_nesterov_interrupt_checkpoint", Optimizer{Kind: OptimizerSGD, Momentum: 0.9, Nesterov: true, WeightDecay: 5e-4},
			Schedule{Kind: ScheduleMultiStep, BaseLR: 0.1, Milestones: []int{1, 2}, Factor: 0.1}, false},
		{"adamw_killed_between_checkpoints", Optimizer{Kind: OptimizerAdamW, WeightDecay: 0.05},
			Schedule{Kind: ScheduleWarmupCosine, BaseLR: 0.01, WarmupSteps: 4}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dirA, dirB := t.TempDir(), t.TempDir()
			cfg := baseConfig(dirA)
			cfg.Epochs, cfg.Optimizer, cfg.Schedule, cfg.ClipNorm = 3, tc.opt, tc.sched, 5
			ctxA, err := trainTo(t, cfg, 0)
			if err != nil {
				t.Fatal(err)
			}
			cfg.RunDir = dirB
			_, err = trainTo(t, cfg, 8) // Cancelled after global step 8: epoch 2, step 3.
			if !errors.Is(err, ErrInterrupted) || !strings.Contains(err.Error(), "--resume") {
				t.Fatalf("want an interruption error telling how to resume, got %v", err)
			}
			paths, _ := ListCheckpoints(dirB)
			if len(paths) != 2 || filepath.Base(paths[1]) != CheckpointName(8) {
				t.Fatalf("checkpoints after interruption: %v", paths)
			}
			if tc.dropNewest {
				if err := os.Remove(paths[1]); err != nil {
					t.Fatal(err)
				}
			}
			cfg.Resume = true
			ctxB, err := trainTo(t, cfg, 0)
			if err != nil {
				t.Fatal(err)
			}
			compareSnapshots(t, snapshot(ctxA), snapshot(ctxB))
			ma, mb := metricsWithoutTiming(t, dirA), metricsWithoutTiming(t, dirB)
			ja, _ := json.Marshal(ma)
			jb, _ := json.Marshal(mb)
			if !bytes.Equal(ja, jb) {
				t.Errorf("metrics differ:\nuninterrupted %s\nresumed       %s", ja, jb)
			}
			if n := len(snapshot(ctxA)); n < 10 {
				t.Errorf("only %d variables: optimiser state missing?", n)
			}
		})
	}
}

// A NaN loss stops the run with an error naming the step and the terms; the last good checkpoint
// is untouched and no newer one is written.
func TestNonFiniteLossStopsRun(t *testing.T) {
	dir := t.TempDir()
	ctx := context.New()
	loader := newSyntheticLoader(testN, testD, testC, testB, 1)
	loader.poison = func(e, i int) bool { return e == 1 && i == 2 } // global step 8
	var saved []byte
	loader.onStep = func(e, i int) {
		if e == 1 && i == 2 {
			saved, _ = os.ReadFile(filepath.Join(dir, checkpointsDir, CheckpointName(5)))
		}
	}
	cfg := baseConfig(dir)
	_, err := Run(stdctx.Background(), mlpJob(ctx, loader, nil), cfg)
	if !errors.Is(err, ErrNonFinite) {
		t.Fatalf("want ErrNonFinite, got %v", err)
	}
	for _, want := range []string{"global step 8", "epoch 2, step 3", "poison=NaN", "ce=", CheckpointName(5)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	paths, _ := ListCheckpoints(dir)
	if len(paths) != 1 || filepath.Base(paths[0]) != CheckpointName(5) {
		t.Fatalf("checkpoints %v, want only the one after epoch 1", paths)
	}
	now, _ := os.ReadFile(paths[0])
	if len(saved) == 0 || !bytes.Equal(saved, now) {
		t.Errorf("the last good checkpoint changed (%d bytes before, %d after)", len(saved), len(now))
	}
	if _, err := LoadCheckpoint(paths[0]); err != nil {
		t.Errorf("last good checkpoint does not load: %v", err)
	}
}

// Only the newest K checkpoints are kept.
func TestKeepLastCheckpoints(t *testing.T) {
	dir := t.TempDir()
	cfg := baseConfig(dir)
	cfg.Epochs, cfg.KeepCheckpoints = 5, 2
	if _, err := trainTo(t, cfg, 0); err != nil {
		t.Fatal(err)
	}
	paths, _ := ListCheckpoints(dir)
	if len(paths) != 2 || filepath.Base(paths[0]) != CheckpointName(20) || filepath.Base(paths[1]) != CheckpointName(25) {
		t.Errorf("checkpoints %v, want steps 20 and 25", paths)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, checkpointsDir))
	if len(entries) != 2 {
		t.Errorf("%d files in checkpoints/ (temporary files left?)", len(entries))
	}
}

// A teacher imported into a frozen scope gets no update, no optimiser state, and its batch norm
// runs in evaluation mode (running statistics unchanged).
func TestFrozenTeacher(t *testing.T) {
	teacherDir := t.TempDir()
	cfg := baseConfig(teacherDir)
	cfg.Epochs = 1
	if _, err := trainTo(t, cfg, 0); err != nil {
		t.Fatal(err)
	}
	for _, viaConfig := range []bool{false, true} {
		ctx := context.New()
		if err := ImportFrozen(ctx, "/teacher", teacherDir, ""); err != nil {
			t.Fatal(err)
		}
		if viaConfig {
			// The same scope listed in Config.Frozen, with the variables made trainable again.
			for v := range ctx.IterVariables() {
				v.SetTrainable(true)
			}
			ctx.InAbsPath("/teacher").SetParam(nn.FrozenParam, false)
		}
		before := snapshot(ctx)
		loader := newSyntheticLoader(testN, testD, testC, testB, 1)
		loader.noIdx = true // Batches without indices: Inputs.Indices is nil.
		loss := func(ctx *context.Context, in Inputs) Loss {
			if in.Indices != nil {
				panic("indices given for a loader without them")
			}
			student := mlp(ctx.In("student"), in.Images, false)
			teacher := mlp(ctx.In("teacher").In("model"), in.Images, false)
			kd := graph.ReduceAllMean(graph.Square(graph.Sub(student, teacher)))
			return Loss{Total: graph.Add(crossEntropy(student, in.Labels), kd), Terms: []Term{{"kd", kd}}}
		}
		job := Job{Backend: testutil.Backend(), Context: ctx, Train: loader, Loss: loss, Log: zerolog.Nop()}
		c := baseConfig(t.TempDir())
		c.Epochs = 2
		if viaConfig {
			c.Frozen = []string{"/teacher"}
		}
		if _, err := Run(stdctx.Background(), job, c); err != nil {
			t.Fatal(err)
		}
		after := snapshot(ctx)
		nTeacher := 0
		for k, b := range before {
			if strings.HasPrefix(k, "/teacher/") {
				nTeacher++
				if !bytes.Equal(b, after[k]) {
					t.Errorf("frozen variable %s changed (via config: %v)", k, viaConfig)
				}
			}
		}
		if nTeacher != 8 {
			t.Errorf("imported %d teacher variables, want 8 (2 dense × 2, BN scale, offset and 2 statistics)", nTeacher)
		}
		for k := range after {
			if strings.HasPrefix(k, OptimizerScope+"/teacher") {
				t.Errorf("optimizer state %s for a frozen variable", k)
			}
		}
		if _, ok := after[OptimizerScope+"/student/dense_0/weights/momentum"]; !ok {
			t.Errorf("no momentum for the student's weights")
		}
		wantStudent := int64(testD*testH + testH + 2*testH + testH*testC + testC)
		if got := CountParams(ctx, "/student"); got != wantStudent {
			t.Errorf("CountParams(/student) = %d, want %d", got, wantStudent)
		}
		if got := CountParams(ctx, "/teacher"); got != 0 {
			t.Errorf("CountParams(/teacher) = %d, want 0 (frozen)", got)
		}
		if got := CountParams(ctx, ""); got != wantStudent {
			t.Errorf("CountParams(all) = %d, want %d", got, wantStudent)
		}
	}
}

// The progress bar is redrawn in place when Terminal is set.
func TestProgressBar(t *testing.T) {
	var bar bytes.Buffer
	ctx := context.New()
	job := mlpJob(ctx, newSyntheticLoader(testN, testD, testC, testB, 1), nil)
	job.Terminal, job.Progress = true, &bar
	cfg := baseConfig(t.TempDir())
	cfg.Epochs = 1
	if _, err := Run(stdctx.Background(), job, cfg); err != nil {
		t.Fatal(err)
	}
	out := bar.String()
	for _, want := range []string{"\r\x1b[K", "epoch 1/1", "5/5", "img/s", "ETA"} {
		if !strings.Contains(out, want) {
			t.Errorf("progress output %q lacks %q", out, want)
		}
	}
}

// BenchmarkTrainEpoch measures one epoch (5 steps of the tiny MLP, checkpoint and metrics
// included): the loop's own overhead per step.
func BenchmarkTrainEpoch(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		ctx := context.New()
		cfg := baseConfig(b.TempDir())
		cfg.Epochs = 1
		job := mlpJob(ctx, newSyntheticLoader(testN, testD, testC, testB, 1), nil)
		b.StartTimer()
		if _, err := Run(stdctx.Background(), job, cfg); err != nil {
			b.Fatal(err)
		}
	}
}
