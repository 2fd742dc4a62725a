package fit

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// Momentum (EMA) networks: non-trainable copies ξ of some scopes of the model (BYOL's target
// network, MoCo v3's key encoder), updated after every optimizer step k (0-based) as
//
//	ξ ← τ_k·ξ + (1 − τ_k)·θ,    τ_k = 1 − (1 − τ_base)·(cos(π·k/K) + 1)/2
//
// with θ the online weights just written by the optimizer and K the run's total number of steps
// (Grill et al. 2020, BYOL §3.2 and Eq. 2 of its appendix; METHODS.md §10.1). The schedule rises
// from τ_base at k = 0 to 1 at k = K; EMAConstant keeps τ_k = τ_base. Only the online scope's
// trainable variables are averaged: batch-norm running statistics stay the target's own, and a
// frozen online variable (e.g. MoCo v3's patch projection) keeps its initial copy. At the start of
// a fresh run every target variable is a copy of its online variable (solo-learn, lightly, MoCo
// v3). The target variables and the step counter (EMAScope/step) are context variables, so
// checkpoints hold them and a resumed run continues bit-identically.

// EMAScope holds the EMA's step counter k ("step", int64).
const EMAScope = "/ema"

// EMA schedules.
const (
	EMACosine   = "cosine"   // τ_k rises from τ_base to 1 along a half cosine (BYOL)
	EMAConstant = "constant" // τ_k = τ_base
)

// EMAPair names an online scope and its momentum copy, both absolute ("/encoder",
// "/target_encoder"). Variable "/encoder/a/w" is averaged into "/target_encoder/a/w".
type EMAPair struct {
	Online string `json:"online"`
	Target string `json:"target"`
}

// EMA configures the momentum copies of a run.
type EMA struct {
	Pairs []EMAPair `json:"pairs"`
	// Base is τ_base in [0, 1] (BYOL 0.99 or 0.996, MoCo v3 0.99).
	Base float64 `json:"base"`
	// Schedule is EMACosine (the zero value) or EMAConstant.
	Schedule string `json:"schedule,omitempty"`
	// TotalSteps is K; 0 means the run's epochs × steps per epoch.
	TotalSteps int64 `json:"total_steps,omitempty"`
}

// Validate checks the configuration.
func (e EMA) Validate() error {
	if len(e.Pairs) == 0 {
		return errors.New("fit: ema: no online/target scope pairs")
	}
	for _, p := range e.Pairs {
		on, tg := absScope(p.Online), absScope(p.Target)
		if on == context.RootScope || tg == context.RootScope || inScope(on, tg) || inScope(tg, on) {
			return fmt.Errorf("fit: ema: online scope %q and target scope %q must be distinct, non-nested and not the root", p.Online, p.Target)
		}
	}
	if !(e.Base >= 0 && e.Base <= 1) {
		return fmt.Errorf("fit: ema: momentum %v, want a value in [0, 1]", e.Base)
	}
	if e.Schedule != "" && e.Schedule != EMACosine && e.Schedule != EMAConstant {
		return fmt.Errorf("fit: ema: schedule %q, want %s or %s", e.Schedule, EMACosine, EMAConstant)
	}
	if e.TotalSteps < 0 {
		return fmt.Errorf("fit: ema: total steps %d, want >= 0", e.TotalSteps)
	}
	return nil
}

// Momentum is τ_k for step k (0-based) of a run of total steps (see the package comment of EMA);
// k ≥ total gives 1 with the cosine schedule.
func (e EMA) Momentum(k, total int64) float64 {
	if e.Schedule == EMAConstant || total <= 0 {
		return e.Base
	}
	if k >= total {
		return 1
	}
	return 1 - (1-e.Base)*(math.Cos(math.Pi*float64(k)/float64(total))+1)/2
}

// pairs returns, for every variable under an online scope, its target variable (nil when the
// model has none) in ctx's iteration order.
func (e EMA) pairs(ctx *context.Context) (online, target []*context.Variable) {
	for v := range ctx.IterVariables() {
		for _, p := range e.Pairs {
			on := absScope(p.Online)
			if !inScope(v.Scope(), on) {
				continue
			}
			scope := absScope(p.Target) + strings.TrimPrefix(v.Scope(), on)
			online = append(online, v)
			target = append(target, ctx.InspectVariableIfLoaded(scope, v.Name()))
		}
	}
	return online, target
}

// MarkTargets marks every variable under a target scope non-trainable: the optimizer never
// touches them.
func (e EMA) MarkTargets(ctx *context.Context) {
	for v := range ctx.IterVariables() {
		for _, p := range e.Pairs {
			if v.Trainable && inScope(v.Scope(), absScope(p.Target)) {
				v.SetTrainable(false)
			}
		}
	}
}

// Update builds, in g after the optimizer update, ξ ← τ_k·ξ + (1 − τ_k)·θ for every trainable
// online variable θ and its target ξ, with k read from (and incremented in) EMAScope/step and τ_k
// computed in float64 for a run of total steps (e.TotalSteps when set). Graph-building function:
// it panics when an online variable has no target.
func (e EMA) Update(ctx *context.Context, g *graph.Graph, total int64) {
	if err := e.Validate(); err != nil {
		panic(err)
	}
	if e.TotalSteps > 0 {
		total = e.TotalSteps
	}
	stepVar := ctx.InAbsPath(EMAScope).Checked(false).VariableWithValue("step", int64(0)).SetTrainable(false)
	step := stepVar.ValueGraph(g)
	stepVar.SetValueGraph(graph.AddScalar(step, 1))
	tau := graph.Scalar(g, dtypes.Float64, e.Base)
	if e.Schedule != EMAConstant && total > 0 {
		// τ_k = 1 − (1 − τ_base)·(cos(π·min(k, K)/K) + 1)/2, in float64.
		k := graph.MinScalar(graph.ConvertDType(step, dtypes.Float64), float64(total))
		c := graph.Cos(graph.MulScalar(k, math.Pi/float64(total)))
		tau = graph.OneMinus(graph.MulScalar(graph.AddScalar(c, 1), (1-e.Base)/2))
	}
	online, target := e.pairs(ctx)
	n := 0
	for i, v := range online {
		if !v.Trainable || !v.DType().IsFloat() || !v.InUseByGraph(g) {
			continue
		}
		t := target[i]
		if t == nil {
			panic(fmt.Errorf("fit: ema: online variable %s has no target copy", v.ScopeAndName()))
		}
		if !t.Shape().Equal(v.Shape()) {
			panic(fmt.Errorf("fit: ema: %s is %s but its target %s is %s", v.ScopeAndName(), v.Shape(), t.ScopeAndName(), t.Shape()))
		}
		dt := v.DType()
		a := graph.ConvertDType(tau, dt)
		b := graph.ConvertDType(graph.OneMinus(tau), dt)
		t.SetValueGraph(graph.Add(graph.Mul(a, t.ValueGraph(g)), graph.Mul(b, v.ValueGraph(g))))
		n++
	}
	if n == 0 {
		panic(errors.New("fit: ema: no trainable variable under the online scopes"))
	}
}

// InitTargets copies every online variable's value into its target, except the targets named in
// loaded (by scope and name: those a resumed run read from its checkpoint). The variables must
// exist and hold values (the model's graph has been built and initialised).
func (e EMA) InitTargets(ctx *context.Context, loaded map[string]bool) error {
	online, target := e.pairs(ctx)
	for i, t := range target {
		if t == nil || loaded[t.ScopeAndName()] {
			continue
		}
		val, err := online[i].Value()
		if err != nil {
			return fmt.Errorf("fit: ema: %s: %w", online[i].ScopeAndName(), err)
		}
		c, err := val.LocalClone()
		if err != nil {
			return fmt.Errorf("fit: ema: copying %s: %w", online[i].ScopeAndName(), err)
		}
		if err := t.SetValue(c); err != nil {
			return fmt.Errorf("fit: ema: %s: %w", t.ScopeAndName(), err)
		}
	}
	return nil
}

// initEMA, called before the first step of this process with the step's arguments, copies the
// online weights into the targets that the resumed checkpoint (if any) did not hold. The variables
// are created and initialised by compiling the model's loss in inference mode, a graph that
// assigns no variable (compiling the train step itself would hand the buffers of the variables it
// updates to a step that never runs).
func (r *runner) initEMA(args []any) error {
	e := r.cfg.EMA
	if e == nil || r.emaReady {
		return nil
	}
	r.emaReady = true
	if r.job.Parallel != nil {
		return errors.New("fit: momentum (EMA) networks are not supported with data-parallel training")
	}
	exec, err := context.NewExec(r.job.Backend, r.job.Context.Checked(false), func(ctx *context.Context, in []*graph.Node) *graph.Node {
		ctx.SetTraining(in[0].Graph(), false)
		loss := r.job.Loss(ctx, r.stepInputs(in))
		if loss.Total == nil {
			panic(errors.New("the loss function returned no Total"))
		}
		for v := range ctx.IterVariables() {
			if v.ChangedInGraph(in[0].Graph()) {
				panic(fmt.Errorf("the loss function assigns %s in inference mode", v.ScopeAndName()))
			}
		}
		return loss.Total
	})
	if err != nil {
		return fmt.Errorf("fit: ema: %w", err)
	}
	defer exec.Finalize()
	if err := exec.PreCompile(args...); err != nil {
		return fmt.Errorf("fit: ema: creating the variables: %w", err)
	}
	return e.InitTargets(r.job.Context, r.resumedVars)
}

// emaMark and emaUpdate are the train step's hooks: target variables are not trainable, and are
// averaged after the optimizer update.
func (r *runner) emaMark(ctx *context.Context) {
	if r.cfg.EMA != nil {
		r.cfg.EMA.MarkTargets(ctx)
	}
}

func (r *runner) emaUpdate(ctx *context.Context, g *graph.Graph) {
	if e := r.cfg.EMA; e != nil {
		total := e.TotalSteps
		if total == 0 {
			total = int64(r.cfg.Epochs) * int64(r.job.Train.StepsPerEpoch())
		}
		e.Update(ctx, g, total)
	}
}
