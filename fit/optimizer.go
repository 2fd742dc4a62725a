package fit

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"
)

// OptimizerScope is the absolute scope under which optimiser state lives: the state of variable
// "/a/b/w" is in scope "/optimizer/a/b/w" (names "momentum", "adam_m", "adam_v"), and the step
// counter is "/optimizer/step". Checkpoints therefore hold it like any other variable.
const OptimizerScope = "/optimizer"

// Optimizer kinds.
const (
	// OptimizerSGD is SGD with optional (Nesterov) momentum and L2 weight decay, with PyTorch's
	// semantics (dampening 0): d = g + wd·p; v ← μ·v + d; p ← p − lr·(d + μ·v) with Nesterov,
	// p ← p − lr·v without; p ← p − lr·d when μ = 0.
	OptimizerSGD = "sgd"
	// OptimizerAdamW is Adam with decoupled weight decay, PyTorch's AdamW: p ← p·(1 − lr·wd);
	// m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²; p ← p − (lr/(1−β1^t))·m/(√v/√(1−β2^t) + ε).
	OptimizerAdamW = "adamw"
)

// Names of the optimiser-state variables.
const (
	stateMomentum = "momentum"
	stateAdamM    = "adam_m"
	stateAdamV    = "adam_v"
	stateStep     = "step"
)

// Optimizer configures the update rule. Gradients are taken only of trainable variables outside
// frozen scopes; the update is built as graph code inside the train step.
type Optimizer struct {
	// Kind is OptimizerSGD or OptimizerAdamW.
	Kind string `json:"kind"`
	// Momentum μ (SGD), e.g. 0.9; 0 disables momentum (and its state).
	Momentum float64 `json:"momentum,omitempty"`
	// Nesterov (SGD) uses the Nesterov form d + μ·v.
	Nesterov bool `json:"nesterov,omitempty"`
	// WeightDecay is the L2 coefficient (SGD: added to the gradient) or the decoupled decay (AdamW).
	WeightDecay float64 `json:"weight_decay,omitempty"`
	// DecayBiasAndNorm applies weight decay to every parameter (RepDistiller). When false, 1-D
	// and scalar parameters — biases and batch/layer-norm scales and offsets — get no decay
	// (timm's filter_bias_and_bn, used by IFARD and IFACLR).
	DecayBiasAndNorm bool `json:"decay_bias_and_norm"`
	// Beta1, Beta2 and Epsilon (AdamW); zero values mean PyTorch's defaults 0.9, 0.999, 1e-8.
	Beta1   float64 `json:"beta1,omitempty"`
	Beta2   float64 `json:"beta2,omitempty"`
	Epsilon float64 `json:"epsilon,omitempty"`
}

// Validate checks the optimiser's fields.
func (o Optimizer) Validate() error {
	switch o.Kind {
	case OptimizerSGD:
		if o.Momentum < 0 || o.Momentum >= 1 {
			return fmt.Errorf("fit: optimizer sgd: momentum %v must be in [0, 1)", o.Momentum)
		}
		if o.Nesterov && o.Momentum == 0 {
			return fmt.Errorf("fit: optimizer sgd: Nesterov needs a momentum > 0")
		}
	case OptimizerAdamW:
		b1, b2, eps := o.adamParams()
		if b1 < 0 || b1 >= 1 || b2 < 0 || b2 >= 1 || eps <= 0 {
			return fmt.Errorf("fit: optimizer adamw: beta1 %v, beta2 %v must be in [0, 1) and epsilon %v > 0", b1, b2, eps)
		}
	default:
		return fmt.Errorf("fit: unknown optimizer kind %q (want %s or %s)", o.Kind, OptimizerSGD, OptimizerAdamW)
	}
	if o.WeightDecay < 0 {
		return fmt.Errorf("fit: optimizer %s: weight decay %v must be >= 0", o.Kind, o.WeightDecay)
	}
	return nil
}

func (o Optimizer) adamParams() (b1, b2, eps float64) {
	b1, b2, eps = o.Beta1, o.Beta2, o.Epsilon
	if b1 == 0 {
		b1 = 0.9
	}
	if b2 == 0 {
		b2 = 0.999
	}
	if eps == 0 {
		eps = 1e-8
	}
	return
}

// Decays reports whether weight decay applies to v under this optimiser's rule.
func (o Optimizer) Decays(v *context.Variable) bool {
	if o.WeightDecay == 0 {
		return false
	}
	return o.DecayBiasAndNorm || v.Shape().Rank() > 1
}

// inScope reports whether a variable scope lies at or below one of the given absolute scopes.
func inScope(varScope string, scopes ...string) bool {
	for _, s := range scopes {
		s = strings.TrimSuffix(s, context.ScopeSeparator)
		if s == "" {
			return true
		}
		if varScope == s || strings.HasPrefix(varScope, s+context.ScopeSeparator) {
			return true
		}
	}
	return false
}

// TrainableVariables returns the variables an optimiser updates in graph g: trainable, float,
// used by g, outside the optimiser's scope and outside every frozen scope, sorted by scope and name
// (so that sums over variables, like the gradient norm, have a fixed order).
func TrainableVariables(ctx *context.Context, g *graph.Graph, frozen ...string) []*context.Variable {
	var vars []*context.Variable
	for v := range ctx.IterVariables() {
		if !v.Trainable || !v.DType().IsFloat() || !v.InUseByGraph(g) {
			continue
		}
		if inScope(v.Scope(), OptimizerScope) || inScope(v.Scope(), frozen...) {
			continue
		}
		vars = append(vars, v)
	}
	slices.SortFunc(vars, func(a, b *context.Variable) int { return strings.Compare(a.ScopeAndName(), b.ScopeAndName()) })
	return vars
}

// stateContext returns the context for the optimiser state of v.
func stateContext(ctx *context.Context, v *context.Variable) *context.Context {
	scope := OptimizerScope
	if v.Scope() != context.RootScope {
		scope += v.Scope()
	}
	return ctx.InAbsPath(scope).In(v.Name()).Checked(false).WithInitializer(initializers.Zero)
}

func stateVar(ctx *context.Context, v *context.Variable, name string) *context.Variable {
	return stateContext(ctx, v).VariableWithShape(name, v.Shape()).SetTrainable(false)
}

// Update builds, in loss's graph, the gradients of loss with respect to vars, clips them to a
// global L2 norm of clipNorm (PyTorch's clip_grad_norm_: g·min(1, clipNorm/(‖g‖+1e-6)); 0 disables
// clipping) and applies the optimiser step with learning rate lr (a float64 scalar node), writing
// the new values of vars and of the optimiser state with SetValueGraph. It returns the global
// gradient norm before clipping (float64 scalar).
//
// Graph-building function: it panics on misuse (e.g. a variable in vars already assigned in the
// graph).
func (o Optimizer) Update(ctx *context.Context, loss, lr *graph.Node, clipNorm float64, vars []*context.Variable) *graph.Node {
	g := loss.Graph()
	if loss.Shape().Rank() != 0 || !loss.DType().IsFloat() {
		panic(fmt.Errorf("fit: the total loss must be a float scalar, got %s", loss.Shape()))
	}
	if err := o.Validate(); err != nil {
		panic(err)
	}
	if len(vars) == 0 {
		panic(errors.New("fit: no trainable variables to optimise (all frozen, or none used by the loss)"))
	}
	lr = graph.ConvertDType(lr, dtypes.Float64)
	params := make([]*graph.Node, len(vars))
	for i, v := range vars {
		if v.ChangedInGraph(g) {
			panic(fmt.Errorf("fit: trainable variable %s was assigned in the loss function: mark it SetTrainable(false)",
				v.ScopeAndName()))
		}
		params[i] = v.ValueGraph(g)
	}
	grads := graph.Gradient(loss, params...)

	// Global L2 norm, accumulated in float64 in the (sorted) order of vars.
	var sumSq *graph.Node
	for _, gr := range grads {
		s := graph.ConvertDType(graph.ReduceAllSum(graph.Square(gr)), dtypes.Float64)
		if sumSq == nil {
			sumSq = s
		} else {
			sumSq = graph.Add(sumSq, s)
		}
	}
	norm := graph.Sqrt(sumSq)
	if clipNorm > 0 {
		coef := graph.MinScalar(graph.Div(graph.Scalar(g, dtypes.Float64, clipNorm), graph.AddScalar(norm, 1e-6)), 1.0)
		for i, gr := range grads {
			grads[i] = graph.Mul(gr, graph.ConvertDType(coef, gr.DType()))
		}
	}

	switch o.Kind {
	case OptimizerSGD:
		o.sgd(ctx, lr, vars, params, grads)
	case OptimizerAdamW:
		o.adamW(ctx, lr, vars, params, grads)
	}
	return norm
}

func (o Optimizer) sgd(ctx *context.Context, lr *graph.Node, vars []*context.Variable, params, grads []*graph.Node) {
	for i, v := range vars {
		p, d := params[i], grads[i]
		dt := p.DType()
		if o.Decays(v) {
			d = graph.Add(d, graph.MulScalar(p, o.WeightDecay))
		}
		if o.Momentum != 0 {
			buf := stateVar(ctx, v, stateMomentum)
			b := graph.Add(graph.MulScalar(buf.ValueGraph(p.Graph()), o.Momentum), d)
			buf.SetValueGraph(b)
			if o.Nesterov {
				d = graph.Add(d, graph.MulScalar(b, o.Momentum))
			} else {
				d = b
			}
		}
		v.SetValueGraph(graph.Sub(p, graph.Mul(graph.ConvertDType(lr, dt), d)))
	}
}

func (o Optimizer) adamW(ctx *context.Context, lr *graph.Node, vars []*context.Variable, params, grads []*graph.Node) {
	g := lr.Graph()
	b1, b2, eps := o.adamParams()
	stepVar := ctx.InAbsPath(OptimizerScope).Checked(false).
		VariableWithValue(stateStep, int64(0)).SetTrainable(false)
	step := graph.AddScalar(stepVar.ValueGraph(g), 1)
	stepVar.SetValueGraph(step)
	t := graph.ConvertDType(step, dtypes.Float64)
	bc1 := graph.OneMinus(graph.Pow(graph.Scalar(g, dtypes.Float64, b1), t))
	bc2 := graph.OneMinus(graph.Pow(graph.Scalar(g, dtypes.Float64, b2), t))
	stepSize := graph.Div(lr, bc1)
	bc2Sqrt := graph.Sqrt(bc2)
	decay := graph.OneMinus(graph.MulScalar(lr, o.WeightDecay))
	for i, v := range vars {
		p, gr := params[i], grads[i]
		dt := p.DType()
		if o.Decays(v) {
			p = graph.Mul(p, graph.ConvertDType(decay, dt))
		}
		mVar := stateVar(ctx, v, stateAdamM)
		vVar := stateVar(ctx, v, stateAdamV)
		m := graph.Add(graph.MulScalar(mVar.ValueGraph(g), b1), graph.MulScalar(gr, 1-b1))
		sq := graph.Add(graph.MulScalar(vVar.ValueGraph(g), b2), graph.MulScalar(graph.Square(gr), 1-b2))
		mVar.SetValueGraph(m)
		vVar.SetValueGraph(sq)
		denom := graph.AddScalar(graph.Div(graph.Sqrt(sq), graph.ConvertDType(bc2Sqrt, dt)), eps)
		v.SetValueGraph(graph.Sub(p, graph.Mul(graph.ConvertDType(stepSize, dt), graph.Div(m, denom))))
	}
}

// isFinite reports whether x is neither NaN nor ±Inf.
func isFinite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
