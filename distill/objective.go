package distill

import (
	"errors"
	"fmt"
	"iter"
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/data"
	"github.com/ifa-toolkit/ifa/fit"
	"github.com/ifa-toolkit/ifa/internal/catch"
)

// Scopes of a distillation's variables: the student, the frozen teacher, and the method's host
// inputs (CRD's contrast indices, set before every step). A method's heads live under /<name>.
const (
	StudentScope = "/student"
	TeacherScope = "/teacher"
	HostScope    = "/host_inputs"
)

// Encoder builds a model on a batch of images in ctx's current scope and returns its features.
type Encoder func(ctx *context.Context, images *graph.Node) backbone.Features

// Objective is the distillation loss L = γ·CE + α·KD(T) + β·L_method (METHODS.md §2.4, §4.3) of a
// student, built under StudentScope, learning from a teacher under TeacherScope (frozen: import
// it with ImportTeacher). Its Loss is a fit.LossFn with the named terms ce, kd, <method> and top1;
// a method that is not Weighted (kd) has no term of its own and adds none.
type Objective struct {
	Method           Method
	Student, Teacher Encoder
	// Gamma, Alpha and Beta weigh CE, KD and the method's term.
	Gamma, Alpha, Beta float64
	// KDTemperature is KD's softmax temperature T.
	KDTemperature float64

	hostVars    []*context.Variable
	datasetSize int
}

// NewObjective returns the objective with the usual weights: γ = α = 1, the method's default β
// and T = DefaultKDTemperature.
func NewObjective(m Method, student, teacher Encoder) *Objective {
	return &Objective{Method: m, Student: student, Teacher: teacher, Gamma: 1, Alpha: 1, Beta: DefaultBeta(m),
		KDTemperature: DefaultKDTemperature}
}

// ImportTeacher loads the teacher's variables (scope `from` of the checkpoint at path, a file or a
// run directory) under TeacherScope as frozen constants (fit.ImportFrozen).
func ImportTeacher(ctx *context.Context, path, from string) error {
	return fit.ImportFrozen(ctx, TeacherScope, path, from)
}

// Plan is what Check resolves before training.
type Plan struct {
	// Label is the run's row label in reports (RunLabel).
	Label string
	// Heads counts the method's trainable head parameters.
	Heads HeadParams
}

// Check validates the weights and the method's parameters in ctx against the student's and the
// teacher's feature shapes (DescribeEncoder), and returns the run's label and head count.
func (o *Objective) Check(ctx *context.Context, s, t FeatureShapes) (Plan, error) {
	var p Plan
	switch {
	case o.Method == nil || o.Student == nil || o.Teacher == nil:
		return p, errors.New("distill: the objective needs a method, a student and a teacher")
	case o.Gamma < 0 || o.Alpha < 0 || o.Beta < 0:
		return p, fmt.Errorf("distill: weights γ %g, α %g, β %g: want >= 0", o.Gamma, o.Alpha, o.Beta)
	case !(o.KDTemperature > 0):
		return p, fmt.Errorf("distill: KD temperature %g: want > 0", o.KDTemperature)
	case !s.Logits.Ok() || !t.Logits.Ok() || s.Logits.Rank() != 2 || !s.Logits.Equal(t.Logits):
		return p, fmt.Errorf("distill: the student's logits %s and the teacher's %s differ; KD needs the same classes", s.Logits, t.Logits)
	}
	if err := o.Method.Check(ctx, s, t); err != nil {
		return p, err
	}
	var err error
	if p.Heads, err = CountHeads(o.Method, ctx, s, t); err != nil {
		return p, fmt.Errorf("distill: %w", err)
	}
	if p.Label, err = RunLabel(o.Method, ctx); err != nil {
		return p, fmt.Errorf("distill: %w", err)
	}
	return p, nil
}

// FeedHostInputs prepares the method's host inputs (WithHostInputs; CRD's contrast indices) for
// the training set: it creates their variables under HostScope in ctx, with batch size the
// first axis, and returns train wrapped to set them just before each batch reaches the train
// step. A batch's inputs depend only on the global step, its dataset indices and labels, so a
// resumed run feeds the same inputs. A method without host inputs gets train back unchanged.
func (o *Objective) FeedHostInputs(ctx *context.Context, train data.Loader, set TrainSet, batchSize int) (data.Loader, error) {
	o.datasetSize = len(set.Labels)
	hi, err := NewHostInputs(o.Method, ctx, set)
	if err != nil || hi == nil {
		return train, err
	}
	hctx := ctx.InAbsPath(HostScope).Checked(false)
	o.hostVars = nil
	for _, sp := range hi.Specs(batchSize) {
		if sp.Shape.Rank() == 0 || sp.Shape.Dim(0) != batchSize {
			return nil, fmt.Errorf("distill: %s: host input %s has shape %s, want the batch (%d) as its first axis",
				o.Method.Name(), sp.Name, sp.Shape, batchSize)
		}
		o.hostVars = append(o.hostVars, hctx.VariableWithValue(sp.Name, tensors.FromShape(sp.Shape)).SetTrainable(false))
	}
	return &hostInputLoader{Loader: train, hi: hi, vars: o.hostVars}, nil
}

// Loss implements fit.LossFn: the weighted sum and its named terms for one batch.
func (o *Objective) Loss(ctx *context.Context, in fit.Inputs) fit.Loss {
	if in.Labels == nil {
		panic(errors.New("distill: the training batches carry no labels"))
	}
	g := in.Images.Graph()
	sf := o.Student(ctx.InAbsPath(StudentScope), in.Images)
	tf := o.Teacher(ctx.InAbsPath(TeacherScope), in.Images)
	ce := fit.CrossEntropy(sf.Logits, in.Labels)
	kd := KDLoss(sf.Logits, graph.StopGradient(tf.Logits), o.KDTemperature)
	total := graph.Add(graph.MulScalar(ce, o.Gamma), graph.MulScalar(kd, o.Alpha))
	terms := []fit.Term{{Name: "ce", Value: ce}, {Name: "kd", Value: kd}}
	if _, weighted := o.Method.(Weighted); weighted {
		extra := make([]*graph.Node, len(o.hostVars))
		b := in.Images.Shape().Dim(0)
		for i, v := range o.hostVars {
			extra[i] = v.ValueGraph(g)
			if extra[i].Shape().Dim(0) != b { // the last, smaller batch
				extra[i] = graph.Slice(extra[i], graph.AxisRange(0, b))
			}
		}
		lm := o.Method.Loss(ctx, sf, tf, Step{Labels: in.Labels, Extra: extra, DatasetSize: o.datasetSize})
		total = graph.Add(total, graph.MulScalar(lm, o.Beta))
		terms = append(terms, fit.Term{Name: o.Method.Name(), Value: lm})
	}
	terms = append(terms, fit.Term{Name: "top1", Value: fit.BatchTop1(sf.Logits, in.Labels)})
	return fit.Loss{Total: total, Terms: terms}
}

// StudentLogits returns the student's logits function for evaluation (fit.Evaluate).
func (o *Objective) StudentLogits(ctx *context.Context, images *graph.Node) *graph.Node {
	return o.Student(ctx.InAbsPath(StudentScope), images).Logits
}

// TeacherLogits returns the teacher's logits function for evaluation (fit.Evaluate).
func (o *Objective) TeacherLogits(ctx *context.Context, images *graph.Node) *graph.Node {
	return o.Teacher(ctx.InAbsPath(TeacherScope), images).Logits
}

// DescribeEncoder builds enc on a 2-image batch of height×width×channels images (no compilation,
// fresh variables) and returns its feature shapes and trainable parameter count.
func DescribeEncoder(backend backends.Backend, enc Encoder, height, width, channels int) (fs FeatureShapes, params int64, err error) {
	defer catch.Recover(&err, "")
	g := graph.NewGraph(backend, "describe")
	defer g.Finalize()
	images := graph.Parameter(g, "images", shapes.Make(dtypes.Float32, 2, height, width, channels))
	ctx := context.New()
	f := enc(ctx, images)
	return ShapesOf(f), fit.CountParams(ctx, ""), nil
}

// hostInputLoader feeds a method's per-step host inputs into non-trainable variables just before
// each batch reaches the train step: the step reads them like any variable. The variables keep
// the full-batch shape of the specs (batch axis first): a smaller last batch's inputs fill their
// first rows and the step reads only those, so a checkpoint always holds the shape the model
// declares.
type hostInputLoader struct {
	data.Loader
	hi   HostInputs
	vars []*context.Variable
}

// Epoch implements data.Loader.
func (l *hostInputLoader) Epoch(e int) iter.Seq2[data.Batch, error] {
	return func(yield func(data.Batch, error) bool) {
		step := int64(e) * int64(l.StepsPerEpoch())
		for b, err := range l.Loader.Epoch(e) {
			if err == nil {
				err = l.feed(step, b)
			}
			step++
			if !yield(b, err) || err != nil {
				return
			}
		}
	}
}

func (l *hostInputLoader) feed(step int64, b data.Batch) error {
	if b.Indices == nil || b.Labels == nil {
		return errors.New("distill: the method's host inputs need the batches' dataset indices and labels")
	}
	idx := tensors.MustCopyFlatData[int32](b.Indices)
	lab := tensors.MustCopyFlatData[int32](b.Labels)
	indices, labels := make([]int, len(idx)), make([]int, len(lab))
	for i := range idx {
		indices[i], labels[i] = int(idx[i]), int(lab[i])
	}
	ts, err := l.hi.Make(step, indices, labels)
	if err != nil {
		return err
	}
	if len(ts) != len(l.vars) {
		return fmt.Errorf("distill: the method made %d host inputs, its specs list %d", len(ts), len(l.vars))
	}
	for i, t := range ts {
		t, err := padRows(t, l.vars[i].Shape())
		if err != nil {
			return fmt.Errorf("distill: host input %s: %w", l.vars[i].Name(), err)
		}
		if err := l.vars[i].SetValue(t); err != nil {
			return fmt.Errorf("distill: host input %s: %w", l.vars[i].Name(), err)
		}
	}
	return nil
}

// padRows returns t grown along its first axis to shape (zero rows appended); t must have shape's
// dtype and dimensions except a first axis no longer than shape's.
func padRows(t *tensors.Tensor, shape shapes.Shape) (*tensors.Tensor, error) {
	ts := t.Shape()
	if ts.Equal(shape) {
		return t, nil
	}
	if ts.DType != shape.DType || ts.Rank() != shape.Rank() || ts.Rank() == 0 || ts.Dim(0) > shape.Dim(0) ||
		!slices.Equal(ts.Dimensions[1:], shape.Dimensions[1:]) {
		return nil, fmt.Errorf("shape %s does not fit the declared %s", ts, shape)
	}
	out := tensors.FromShape(shape)
	var err error
	if cerr := t.ConstBytes(func(src []byte) {
		err = out.MutableBytes(func(dst []byte) { copy(dst, src) })
	}); cerr != nil {
		return nil, cerr
	}
	return out, err
}
