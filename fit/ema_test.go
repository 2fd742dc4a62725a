package fit

import (
	"bytes"
	stdctx "context"
	"encoding/json"
	"errors"
	"math"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/internal/testutil"
)

// The cosine schedule at METHODS.md §10.5's worked values: τ_base 0.99, K 100.
func TestEMAMomentumSchedule(t *testing.T) {
	e := EMA{Base: 0.99}
	want := map[int64]float64{0: 0.99, 25: 0.9914644660940672, 50: 0.995, 75: 0.9985355339059327, 100: 1, 120: 1}
	for k, w := range want {
		if got := e.Momentum(k, 100); math.Abs(got-w) > 1e-15 {
			t.Errorf("τ_%d = %.17g, want %.17g", k, got, w)
		}
	}
	c := EMA{Base: 0.99, Schedule: EMAConstant}
	if c.Momentum(50, 100) != 0.99 {
		t.Errorf("constant schedule: %v", c.Momentum(50, 100))
	}
}

// emaVars builds, in one graph, an online variable and its target with the given values, plus a
// non-trainable online variable, and runs EMA.Update once with the step counter at k.
func TestEMAUpdateMatchesHand(t *testing.T) {
	ctx := context.New()
	on := ctx.InAbsPath("/net").VariableWithValue("w", []float64{0, 1})
	tg := ctx.InAbsPath("/target_net").VariableWithValue("w", []float64{1, -2})
	frozenOn := ctx.InAbsPath("/net").VariableWithValue("stat", []float64{5}).SetTrainable(false)
	frozenTg := ctx.InAbsPath("/target_net").VariableWithValue("stat", []float64{7})
	ctx.InAbsPath(EMAScope).VariableWithValue("step", int64(25)).SetTrainable(false)
	e := EMA{Pairs: []EMAPair{{Online: "/net", Target: "/target_net"}}, Base: 0.99}
	e.MarkTargets(ctx)
	if tg.Trainable || frozenTg.Trainable {
		t.Fatal("MarkTargets left a target trainable")
	}
	exec, err := context.NewExec(testutil.Backend(), ctx, func(ctx *context.Context, x *graph.Node) *graph.Node {
		g := x.Graph()
		// The variables take part in the graph, as the model's forward would use them.
		sum := graph.Add(graph.ReduceAllSum(on.ValueGraph(g)), graph.ReduceAllSum(frozenOn.ValueGraph(g)))
		e.Update(ctx, g, 100)
		return graph.Add(x, sum)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.Exec(0.0); err != nil {
		t.Fatal(err)
	}
	got := tensors.MustCopyFlatData[float64](tg.MustValue())
	// ξ = τ·ξ + (1 − τ)·θ with τ_25 = 0.9914644660940672 (METHODS.md §10.5).
	tau := 1 - 0.01*(math.Cos(math.Pi*25/100)+1)/2
	want := []float64{tau*1 + (1-tau)*0, tau*(-2) + (1-tau)*1}
	spec := []float64{0.9914644660940672, -1.9743933982822017}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-15 || math.Abs(got[i]-spec[i]) > 1e-15 {
			t.Errorf("ξ[%d] = %.17g, want %.17g (spec %.17g)", i, got[i], want[i], spec[i])
		}
	}
	if s := tensors.MustCopyFlatData[float64](frozenTg.MustValue()); s[0] != 7 {
		t.Errorf("the target of a non-trainable variable changed: %v", s)
	}
	step := ctx.InspectVariableIfLoaded(EMAScope, "step")
	if k := tensors.ToScalar[int64](step.MustValue()); k != 26 {
		t.Errorf("step counter %d, want 26", k)
	}
}

// InitTargets copies the online initialisation into the targets, and leaves loaded ones alone.
func TestEMAInitTargets(t *testing.T) {
	ctx := context.New()
	if err := ctx.SetRNGStateFromSeed(3); err != nil {
		t.Fatal(err)
	}
	build := func(ctx *context.Context, x *graph.Node) *graph.Node {
		w := ctx.InAbsPath("/net").VariableWithShape("w", shapes.Make(dtypes.Float32, 4, 3)).ValueGraph(x.Graph())
		v := ctx.InAbsPath("/target_net").VariableWithShape("w", shapes.Make(dtypes.Float32, 4, 3)).ValueGraph(x.Graph())
		return graph.Add(graph.ReduceAllSum(w), graph.Add(graph.ReduceAllSum(v), x))
	}
	exec, err := context.NewExec(testutil.Backend(), ctx, build)
	if err != nil {
		t.Fatal(err)
	}
	if err := exec.PreCompile(float32(0)); err != nil {
		t.Fatal(err)
	}
	e := EMA{Pairs: []EMAPair{{Online: "/net", Target: "/target_net"}}, Base: 0.99}
	if err := e.InitTargets(ctx, nil); err != nil {
		t.Fatal(err)
	}
	on := tensors.MustCopyFlatData[float32](ctx.InspectVariableIfLoaded("/net", "w").MustValue())
	tg := tensors.MustCopyFlatData[float32](ctx.InspectVariableIfLoaded("/target_net", "w").MustValue())
	nonzero := false
	for i := range on {
		if on[i] != tg[i] {
			t.Fatalf("target[%d] %v != online %v", i, tg[i], on[i])
		}
		nonzero = nonzero || on[i] != 0
	}
	if !nonzero {
		t.Fatal("online weights are all zero: not initialised")
	}
	// On resume, a target loaded from the checkpoint is left alone.
	ctx.InspectVariableIfLoaded("/target_net", "w").MustSetValue(tensors.FromValue([][]float32{{1, 2, 3}, {4, 5, 6}, {7, 8, 9}, {10, 11, 12}}))
	if err := e.InitTargets(ctx, map[string]bool{"/target_net/w": true}); err != nil {
		t.Fatal(err)
	}
	if got := tensors.MustCopyFlatData[float32](ctx.InspectVariableIfLoaded("/target_net", "w").MustValue()); got[0] != 1 {
		t.Fatalf("InitTargets overwrote a loaded target: %v", got)
	}
}

// emaLoss is the MLP's CE plus the squared distance between its logits and those of a momentum
// copy under /target (stop-gradient), as BYOL's target branch.
func emaLoss(ctx *context.Context, in Inputs) Loss {
	logits := mlp(ctx.In("model"), in.Images, true)
	target := graph.StopGradient(mlp(ctx.In("target"), in.Images, false))
	ce := crossEntropy(logits, in.Labels)
	mse := graph.ReduceAllMean(graph.Square(graph.Sub(logits, target)))
	return Loss{Total: graph.Add(ce, mse), Terms: []Term{{"ce", ce}, {"mse", mse}}}
}

// A run with momentum copies resumes bit-identically (targets and step counter in the checkpoint),
// and the target moves towards the online weights.
func TestEMAResumeIsBitIdentical(t *testing.T) {
	run := func(dir string, cancelAt int, resume bool) (*context.Context, error) {
		cfg := baseConfig(dir)
		cfg.Epochs, cfg.Resume = 3, resume
		cfg.Optimizer = Optimizer{Kind: OptimizerAdamW, WeightDecay: 0.05}
		cfg.Schedule = Schedule{Kind: ScheduleWarmupCosine, BaseLR: 0.01, WarmupSteps: 4}
		cfg.EMA = &EMA{Pairs: []EMAPair{{Online: "/model", Target: "/target"}}, Base: 0.9}
		ctx := context.New()
		loader := newSyntheticLoader(testN, testD, testC, testB, 3)
		goctx, cancel := cancelAtStep(loader, cancelAt)
		defer cancel()
		job := mlpJob(ctx, loader, nil)
		job.Loss = emaLoss
		_, err := Run(goctx, job, cfg)
		return ctx, err
	}
	dirA, dirB := t.TempDir(), t.TempDir()
	ctxA, err := run(dirA, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := run(dirB, 7, false); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("want an interruption, got %v", err)
	}
	ctxB, err := run(dirB, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	a := snapshot(ctxA)
	compareSnapshots(t, a, snapshot(ctxB))
	for _, k := range []string{"/target/dense_0/weights", EMAScope + "/step"} {
		if _, ok := a[k]; !ok {
			t.Fatalf("no variable %s in the run", k)
		}
	}
	if k := tensors.ToScalar[int64](ctxA.InspectVariableIfLoaded(EMAScope, "step").MustValue()); k != 15 {
		t.Errorf("EMA step counter %d after 15 steps", k)
	}
	if bytes.Equal(a["/target/dense_0/weights"], a["/model/dense_0/weights"]) {
		t.Error("target equals the online weights after training with τ = 0.9")
	}
	// The optimiser holds no state for the targets.
	for k := range a {
		if len(k) > len(OptimizerScope+"/target") && k[:len(OptimizerScope+"/target")] == OptimizerScope+"/target" {
			t.Errorf("optimiser state %s for a target variable", k)
		}
	}
}

// cancelAtStep returns a context cancelled once global step cancelAt (1-based) has been yielded
// by loader (never when cancelAt is 0).
func cancelAtStep(loader *memLoader, cancelAt int) (stdctx.Context, stdctx.CancelFunc) {
	goctx, cancel := stdctx.WithCancel(stdctx.Background())
	if cancelAt > 0 {
		loader.onStep = func(e, i int) {
			if e*loader.StepsPerEpoch()+i+1 == cancelAt {
				cancel()
			}
		}
	}
	return goctx, cancel
}

// A fresh run starts its target as a copy of the online network: with identical forwards the
// distance term of the first step is exactly 0, and with τ = 1 the target never moves.
func TestEMAStartsAsCopy(t *testing.T) {
	cfg := baseConfig(t.TempDir())
	cfg.Epochs = 1
	cfg.EMA = &EMA{Pairs: []EMAPair{{Online: "/model", Target: "/target"}}, Base: 1}
	ctx := context.New()
	var log bytes.Buffer
	job := mlpJob(ctx, newSyntheticLoader(testN, testD, testC, testB, 3), &log)
	job.Loss = func(ctx *context.Context, in Inputs) Loss {
		logits := mlp(ctx.In("model"), in.Images, false)
		target := graph.StopGradient(mlp(ctx.In("target"), in.Images, false))
		mse := graph.ReduceAllMean(graph.Square(graph.Sub(logits, target)))
		return Loss{Total: graph.Add(crossEntropy(logits, in.Labels), mse), Terms: []Term{{"mse", mse}}}
	}
	if _, err := Run(stdctx.Background(), job, cfg); err != nil {
		t.Fatal(err)
	}
	var first map[string]any
	for _, line := range bytes.Split(log.Bytes(), []byte("\n")) {
		var ev map[string]any
		if json.Unmarshal(line, &ev) == nil && ev["message"] == "train" {
			first = ev
			break
		}
	}
	if mse, ok := first["mse"].(float64); !ok || mse != 0 {
		t.Fatalf("first step: %v, want the train event with mse exactly 0", first)
	}
	if s := snapshot(ctx); bytes.Equal(s["/target/dense_1/weights"], s["/model/dense_1/weights"]) {
		t.Fatal("the online network did not train away from the target (τ = 1)")
	}
}
