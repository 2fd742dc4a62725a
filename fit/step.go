package fit

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/data"
	"github.com/ifa-toolkit/ifa/internal/catch"
	"github.com/ifa-toolkit/ifa/internal/nn"
)

// The train step is one compiled graph: forward, backward, the optimizer update and the post-step
// hooks (EMA targets). Its inputs are the learning rate (a float64 scalar), the images and, when
// the loader gives them, the labels and the dataset indices (stepLayout); its outputs are the
// total loss, the loss terms and the gradient norm, all float64 scalars (StepOutputs).

// stepLayout is the order of the train step's inputs: the learning rate, the images, then the
// labels and the indices when the batches carry them.
type stepLayout struct {
	labels, indices bool
}

// layoutOf is the layout of batches like b.
func layoutOf(b data.Batch) stepLayout {
	return stepLayout{labels: b.Labels != nil, indices: b.Indices != nil}
}

// args lists the step's input tensors for a batch at learning rate lr.
func (l stepLayout) args(lr float64, b data.Batch) []*tensors.Tensor {
	ins := []*tensors.Tensor{tensors.FromScalar(lr), b.Images}
	if l.labels {
		ins = append(ins, b.Labels)
	}
	if l.indices {
		ins = append(ins, b.Indices)
	}
	return ins
}

// nodes names the step's graph inputs: the learning rate and the batch.
func (l stepLayout) nodes(in []*graph.Node) (lr *graph.Node, batch Inputs) {
	batch.Images = in[1]
	next := 2
	if l.labels {
		batch.Labels = in[next]
		next++
	}
	if l.indices {
		batch.Indices = in[next]
	}
	return in[0], batch
}

// stepInputs names the train step's batch inputs.
func (r *runner) stepInputs(in []*graph.Node) Inputs {
	_, batch := r.layout.nodes(in)
	return batch
}

// StepOutputs is what one train step returns.
type StepOutputs struct {
	// Loss is the total loss; Terms the loss terms in the order of the loss function's Terms.
	Loss  float64
	Terms []float64
	// GradNorm is the global L2 norm of the gradients before clipping.
	GradNorm float64
	// Duration is the step's wall time, reading its outputs included.
	Duration time.Duration
}

// packStepOutputs and unpackStepOutputs are the step's output layout: [loss, terms..., gradient
// norm].
func packStepOutputs(loss *graph.Node, terms []*graph.Node, gradNorm *graph.Node) []*graph.Node {
	return append(append([]*graph.Node{loss}, terms...), gradNorm)
}

func unpackStepOutputs(outs []*tensors.Tensor) StepOutputs {
	vals := make([]float64, len(outs))
	for k, o := range outs {
		vals[k] = tensors.ToScalar[float64](o)
	}
	return StepOutputs{Loss: vals[0], Terms: vals[1 : len(vals)-1], GradNorm: vals[len(vals)-1]}
}

// nonFinite names the first of the step's values that is NaN or infinite ("" when all are
// finite): "loss", "loss term ce", "gradient norm", with its value.
func (o StepOutputs) nonFinite(names []string) string {
	switch {
	case !isFinite(o.Loss):
		return fmt.Sprintf("non-finite loss (%v)", o.Loss)
	case !isFinite(o.GradNorm):
		return fmt.Sprintf("non-finite gradient norm (%v; the loss %v is finite)", o.GradNorm, o.Loss)
	}
	for k, x := range o.Terms {
		if !isFinite(x) {
			return fmt.Sprintf("non-finite loss term %s (%v)", names[k], x)
		}
	}
	return ""
}

// describe lists the values by name: loss=… name=… grad_norm=….
func (o StepOutputs) describe(names []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "loss=%v", o.Loss)
	for k, name := range names {
		fmt.Fprintf(&b, " %s=%v", name, o.Terms[k])
	}
	fmt.Fprintf(&b, " grad_norm=%v", o.GradNorm)
	return b.String()
}

// markFrozen marks every variable under a frozen scope non-trainable.
func (r *runner) markFrozen(ctx *context.Context) {
	if len(r.cfg.Frozen) == 0 {
		return
	}
	for v := range ctx.IterVariables() {
		if v.Trainable && inScope(v.Scope(), r.cfg.Frozen...) {
			v.SetTrainable(false)
		}
	}
}

// compile freezes the frozen scopes (evaluation-mode batch norms, no gradients) and prepares the
// train step's executable (compiled on the first step, when the batch shapes are known).
func (r *runner) compile() error {
	ctx := r.job.Context
	for _, s := range r.cfg.Frozen {
		ctx.InAbsPath(absScope(s)).SetParam(nn.FrozenParam, true)
	}
	r.markFrozen(ctx)
	exec, err := context.NewExec(r.job.Backend, ctx.Checked(false), r.stepGraph)
	if err != nil {
		return fmt.Errorf("fit: building the train step: %w", err)
	}
	r.exec = exec
	if dp := r.job.Parallel; dp != nil {
		// The learning rate is replicated; images, labels and indices are split along the batch.
		dp.configure(exec, false, true)
		r.log.Info().Int("devices", dp.NumDevices()).Str("mesh", dp.Mesh().String()).Msg("data parallel training")
	}
	return nil
}

// stepGraph is the train step's graph.
func (r *runner) stepGraph(ctx *context.Context, in []*graph.Node) []*graph.Node {
	lr, batch := r.layout.nodes(in)
	g := lr.Graph()
	ctx.SetTraining(g, true)
	loss := r.job.Loss(ctx, batch)
	if loss.Total == nil {
		panic(errors.New("the loss function returned no Total"))
	}
	r.markFrozen(ctx)
	r.emaMark(ctx)
	vars := TrainableVariables(ctx, g, r.cfg.Frozen...)
	r.trainable = 0
	for _, v := range vars {
		r.trainable += int64(v.Shape().Size())
	}
	norm := r.cfg.Optimizer.Update(ctx, loss.Total, lr, r.cfg.ClipNorm, vars)
	// Post-step hooks: they see the updated variables.
	r.emaUpdate(ctx, g)
	names := make([]string, 0, len(loss.Terms))
	terms := make([]*graph.Node, 0, len(loss.Terms))
	for _, t := range loss.Terms {
		if t.Name == "" || t.Value == nil || t.Value.Shape().Rank() != 0 || !t.Value.DType().IsFloat() {
			panic(fmt.Errorf("loss term %q must be a named float scalar", t.Name))
		}
		if t.Name == "loss" || slices.Contains(names, t.Name) {
			panic(fmt.Errorf("loss term name %q is reserved or repeated", t.Name))
		}
		names = append(names, t.Name)
		terms = append(terms, graph.ConvertDType(t.Value, dtypes.Float64))
	}
	r.termNames = names
	return packStepOutputs(graph.ConvertDType(loss.Total, dtypes.Float64), terms, norm)
}

// step runs one train step on batch at learning rate lr. The first step fixes which inputs the
// batches carry.
func (r *runner) step(lr float64, batch data.Batch) (StepOutputs, error) {
	if r.stepsRun == 0 {
		r.layout = layoutOf(batch)
	} else if r.layout != layoutOf(batch) {
		return StepOutputs{}, errors.New("labels/indices present in some batches and not others")
	}
	t0 := time.Now()
	outs, err := r.execStep(r.layout.args(lr, batch))
	if err != nil {
		return StepOutputs{}, err
	}
	out := unpackStepOutputs(outs) // reading the outputs waits for the step to finish
	out.Duration = time.Since(t0)
	return out, nil
}

// execStep runs the train step on ins (stepLayout.args): on one device, or split over the devices
// of job.Parallel (the batch inputs sharded along axis 0, the learning rate replicated), returning
// the first device's copy of the replicated outputs.
func (r *runner) execStep(ins []*tensors.Tensor) ([]*tensors.Tensor, error) {
	dp := r.job.Parallel
	if dp == nil {
		args := make([]any, len(ins))
		for k, t := range ins {
			args[k] = t
		}
		if err := r.initEMA(args); err != nil {
			return nil, err
		}
		return r.exec.Exec(args...)
	}
	if b, n := ins[1].Shape().Dim(0), dp.NumDevices(); b%n != 0 {
		return nil, fmt.Errorf("a batch of %d images does not split evenly over %d devices: --batch must be a multiple of --devices, and so must the last batch of an epoch unless it is dropped", b, n)
	}
	if err := r.initEMA(nil); err != nil {
		return nil, err
	}
	sharded := make([]bool, len(ins))
	for k := 1; k < len(ins); k++ {
		sharded[k] = true
	}
	args, err := dp.args(ins, sharded)
	if err != nil {
		return nil, err
	}
	outs, err := r.exec.Exec(args...)
	if err != nil {
		return nil, err
	}
	return dp.firstDevice(outs), nil
}

// Stepper is Run's train step outside the epoch loop: the same compiled graph (forward, backward,
// update, hooks) run on batches the caller gives, as benchmarks time it. It writes nothing.
type Stepper struct {
	r *runner
}

// NewStepper prepares job's train step with cfg's optimizer, clipping, frozen scopes and EMA;
// the context's random number generator is seeded from cfg.Seed. job.Train may be nil unless
// cfg.EMA is set; cfg.Epochs, RunDir and the schedule are not used.
func NewStepper(job Job, cfg Config) (*Stepper, error) {
	if job.Backend == nil || job.Context == nil || job.Loss == nil {
		return nil, errors.New("fit: a Stepper needs a Backend, a Context and a Loss")
	}
	if err := cfg.Optimizer.Validate(); err != nil {
		return nil, err
	}
	if cfg.EMA != nil && job.Train == nil && cfg.EMA.TotalSteps == 0 {
		return nil, errors.New("fit: a Stepper with EMA needs EMA.TotalSteps or the Train loader (its schedule counts steps)")
	}
	if err := job.Context.SetRNGStateFromSeed(cfg.Seed); err != nil {
		return nil, fmt.Errorf("fit: seeding the random number generator: %w", err)
	}
	r := &runner{job: job, cfg: cfg, log: job.Log, start: time.Now()}
	if err := r.compile(); err != nil {
		return nil, err
	}
	return &Stepper{r: r}, nil
}

// Step runs one train step on batch at learning rate lr. The first call compiles the step.
func (s *Stepper) Step(lr float64, batch data.Batch) (out StepOutputs, err error) {
	defer catch.Recover(&err, "fit: ")
	out, err = s.r.step(lr, batch)
	if err == nil {
		s.r.stepsRun++
		if bad := out.nonFinite(s.r.termNames); bad != "" {
			err = fmt.Errorf("fit: %s (%w) at step %d: %s", bad, ErrNonFinite, s.r.stepsRun, out.describe(s.r.termNames))
		}
	}
	return out, err
}

// TermNames are the loss terms' names, in the order of StepOutputs.Terms (known after a step).
func (s *Stepper) TermNames() []string { return slices.Clone(s.r.termNames) }

// TrainableParams is the number of parameters the step updates (known after a step).
func (s *Stepper) TrainableParams() int64 { return s.r.trainable }

// Finalize frees the compiled step.
func (s *Stepper) Finalize() { s.r.exec.Finalize() }
