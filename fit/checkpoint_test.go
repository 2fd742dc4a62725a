package fit

import (
	stdctx "context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// smallContext has variables of several dtypes and ranks, trainable or not.
func smallContext(t *testing.T) *context.Context {
	t.Helper()
	ctx := context.New()
	ctx.In("model").In("dense").VariableWithValue("weights", [][]float32{{1, 2, 3}, {4, 5, 6}})
	ctx.In("model").In("dense").VariableWithValue("biases", []float32{0.5, -0.5, 0})
	ctx.In("model").In("bn").VariableWithValue("running_mean", []float32{7, 8}).SetTrainable(false)
	ctx.InAbsPath(OptimizerScope).VariableWithValue("step", int64(42)).SetTrainable(false)
	ctx.In("bank").VariableWithValue("seen", []bool{true, false}).SetTrainable(false)
	ctx.InAbsPath("/").VariableWithValue("scalar", float64(3.25))
	if err := ctx.SetRNGStateFromSeed(9); err != nil {
		t.Fatal(err)
	}
	return ctx
}

func TestCheckpointRoundTrip(t *testing.T) {
	ctx := smallContext(t)
	path := filepath.Join(t.TempDir(), "a.ckpt")
	state := LoopState{Epoch: 3, StepInEpoch: 2, GlobalStep: 17, BestMetric: 71.25, BestMetricName: "test_top1", BestEpoch: 2, HasBest: true,
		EpochSums: map[string]float64{"loss": 1.0 / 3}, EpochImages: 16}
	if err := SaveCheckpoint(path, ctx, state); err != nil {
		t.Fatal(err)
	}
	ck, err := LoadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	if ck.State.GlobalStep != 17 || ck.State.EpochSums["loss"] != 1.0/3 || !ck.State.HasBest || ck.State.BestMetric != 71.25 || ck.State.StepInEpoch != 2 {
		t.Errorf("loop state %+v", ck.State)
	}
	ctx2 := context.New()
	n, err := ck.Apply(ctx2, LoadOptions{IncludeLoopState: true})
	if err != nil || n != 7 {
		t.Fatalf("Apply: %d variables, %v", n, err)
	}
	compareSnapshots(t, snapshot(ctx), snapshot(ctx2))
	for v := range ctx.IterVariables() {
		v2 := ctx2.GetVariableByScopeAndName(v.Scope(), v.Name())
		if v2.Trainable != v.Trainable || !v2.Shape().Equal(v.Shape()) {
			t.Errorf("%s: trainable %v shape %s, want %v %s", v.ScopeAndName(), v2.Trainable, v2.Shape(), v.Trainable, v.Shape())
		}
	}
	// Without the loop state: optimiser and RNG state are skipped.
	ctx3 := context.New()
	if n, err := ck.Apply(ctx3, LoadOptions{}); err != nil || n != 5 {
		t.Errorf("model-only Apply: %d variables, %v; want 5", n, err)
	}
	if ctx3.GetVariableByScopeAndName("/", context.RNGStateVariableName) != nil {
		t.Errorf("RNG state loaded without IncludeLoopState")
	}
	// Re-rooting: From "/model" To "/encoder".
	ctx4 := context.New()
	if n, err := ck.Apply(ctx4, LoadOptions{From: "/model", To: "/encoder", Frozen: true}); err != nil || n != 3 {
		t.Fatalf("re-rooted Apply: %d, %v", n, err)
	}
	w := ctx4.GetVariableByScopeAndName("/encoder/dense", "weights")
	if w == nil || w.Trainable {
		t.Fatalf("re-rooted weights: %v", w)
	}
	if got := tensors.MustCopyFlatData[float32](w.MustValue()); got[5] != 6 {
		t.Errorf("re-rooted weights %v", got)
	}
}

func TestCorruptAndTruncatedCheckpoints(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.ckpt")
	if err := SaveCheckpoint(good, smallContext(t), LoopState{GlobalStep: 1}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flipped := append([]byte(nil), raw...)
	flipped[len(flipped)-40] ^= 0x10 // In the data section.
	hdrFlip := append([]byte(nil), raw...)
	hdrFlip[20] ^= 0x01 // In the JSON header.
	cases := []struct {
		path, want string
	}{
		{write("flipped.ckpt", flipped), "checksum mismatch"},
		{write("header.ckpt", hdrFlip), "corrupt checkpoint"},
		{write("half.ckpt", raw[:len(raw)/2]), "truncated"},
		{write("tiny.ckpt", raw[:5]), "truncated"},
		{write("no-sum.ckpt", raw[:len(raw)-1]), "truncated"},
		{write("empty.ckpt", nil), "truncated"},
		{write("text.ckpt", []byte("this is not a checkpoint at all, just text")), "not an ifa checkpoint"},
	}
	for _, tc := range cases {
		_, err := LoadCheckpoint(tc.path)
		if err == nil {
			t.Errorf("%s: loaded", tc.path)
			continue
		}
		if !strings.Contains(err.Error(), tc.path) || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrCorruptCheckpoint) {
			t.Errorf("%s: error %q should name the file and say %q", filepath.Base(tc.path), err, tc.want)
		}
	}
	if _, err := LoadCheckpoint(filepath.Join(dir, "missing.ckpt")); err == nil || !strings.Contains(err.Error(), "missing.ckpt") {
		t.Errorf("missing file: %v", err)
	}
}

// Resuming from a damaged newest checkpoint is an error naming it, never a panic.
func TestResumeFromCorruptCheckpoint(t *testing.T) {
	dir := t.TempDir()
	cfg := baseConfig(dir)
	cfg.Epochs = 2
	if _, err := trainTo(t, cfg, 0); err != nil {
		t.Fatal(err)
	}
	latest, _ := LatestCheckpoint(dir)
	raw, _ := os.ReadFile(latest)
	if err := os.WriteFile(latest, raw[:len(raw)-100], 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Resume, cfg.Epochs = true, 3
	_, err := trainTo(t, cfg, 0)
	if err == nil || !strings.Contains(err.Error(), latest) || !errors.Is(err, ErrCorruptCheckpoint) {
		t.Errorf("want an error naming %s, got %v", latest, err)
	}
}

// A checkpoint whose shapes do not match the model gives an error naming the file and variable.
func TestMismatchedCheckpoint(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.ckpt")
	if err := SaveCheckpoint(path, smallContext(t), LoopState{}); err != nil {
		t.Fatal(err)
	}
	ctx := context.New()
	ctx.In("model").In("dense").VariableWithValue("weights", [][]float32{{1, 2}, {3, 4}})
	_, err := LoadVariables(ctx, path, LoadOptions{})
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "/model/dense/weights") {
		t.Errorf("want a shape error naming the file and variable, got %v", err)
	}
	// A resumed run whose model declares a variable the checkpoint lacks.
	runDir := t.TempDir()
	cfg := baseConfig(runDir)
	cfg.Epochs = 1
	if _, err := trainTo(t, cfg, 0); err != nil {
		t.Fatal(err)
	}
	ctx2 := context.New()
	job := mlpJob(ctx2, newSyntheticLoader(testN, testD, testC, testB, 3), nil)
	job.Loss = func(ctx *context.Context, in Inputs) Loss {
		l := mlpLoss(ctx, in)
		extra := ctx.In("extra").VariableWithValue("w", float32(1)).ValueGraph(in.Images.Graph())
		l.Total = graph.Add(l.Total, graph.Square(extra))
		return l
	}
	cfg.Resume, cfg.Epochs = true, 2
	_, err = Run(stdctx.Background(), job, cfg)
	if err == nil || !strings.Contains(err.Error(), "/extra/w") || !strings.Contains(err.Error(), runDir) {
		t.Errorf("want an error naming the missing variable and the checkpoint, got %v", err)
	}
	if paths, _ := ListCheckpoints(runDir); len(paths) != 1 {
		t.Errorf("checkpoints after the failed resume: %v", paths)
	}
}
