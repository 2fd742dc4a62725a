package distill

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/internal/param"
)

// FeatureShapes is backbone.Features described by shapes only, so a method can be checked and its
// heads counted before any graph is built. Missing fields have an invalid (zero) shape or are nil.
type FeatureShapes struct {
	Logits, Pooled                         shapes.Shape
	Stages, PreactStages, Taps, TapVectors []shapes.Shape
}

// ShapesOf returns the shapes of f's nodes.
func ShapesOf(f backbone.Features) FeatureShapes {
	one := func(n *graph.Node) shapes.Shape {
		if n == nil {
			return shapes.Shape{}
		}
		return n.Shape()
	}
	many := func(ns []*graph.Node) []shapes.Shape {
		if ns == nil {
			return nil
		}
		out := make([]shapes.Shape, len(ns))
		for i, n := range ns {
			out[i] = one(n)
		}
		return out
	}
	return FeatureShapes{
		Logits: one(f.Logits), Pooled: one(f.Pooled),
		Stages: many(f.Stages), PreactStages: many(f.PreactStages),
		Taps: many(f.Taps), TapVectors: many(f.TapVectors),
	}
}

// Step carries what a method's Loss reads besides the student and teacher features.
type Step struct {
	// Labels: [B] int32 class labels; may be nil for methods that do not read them.
	Labels *graph.Node

	// Extra: the method's host-side inputs, one node per InputSpec of its HostInputs, in order
	// (CRD: the contrast indices, [B, K+1] int32). Nil for methods without host inputs.
	Extra []*graph.Node

	// DatasetSize: N, the number of training samples (CRD's memory banks are [N, FeatDim]).
	DatasetSize int
}

// InputSpec names one extra graph input a method needs fed each step.
type InputSpec struct {
	Name  string
	Shape shapes.Shape
}

// TrainSet describes the training set to the methods that need it on the host (CRD's sampler).
type TrainSet struct {
	// Labels: the class label of every training sample, by dataset index; len(Labels) = N.
	Labels []int
	// Seed makes host-side sampling reproducible.
	Seed uint64
}

// HostInputs produces a method's extra per-step inputs on the host.
type HostInputs interface {
	// Specs lists the extra inputs for a batch of batchSize samples, in the order Step.Extra holds
	// them.
	Specs(batchSize int) []InputSpec
	// Make returns the extra input tensors for training step `step` whose batch holds the dataset
	// samples `indices` with class labels `labels` (both of length B). The result depends only on
	// the sampler's seed, step, indices and labels.
	Make(step int64, indices, labels []int) ([]*tensors.Tensor, error)
}

// HeadParams counts the trainable parameters of a method's heads (connectors, embeddings,
// regressors), for the report's parameter table.
type HeadParams struct {
	// Params: the number of trainable head parameters.
	Params int
	// CountedTwice: the talk's table (METHODS.md §2.1, §9) counts these heads twice, because its
	// script sums both its module list and its criterion list and the heads sit in both (CRD,
	// IFACD). Hint, CC and VID heads sit in one list only and are counted once.
	CountedTwice bool
}

// Reported returns the head count in the talk's convention: Params, doubled when CountedTwice.
func (h HeadParams) Reported() int {
	if h.CountedTwice {
		return 2 * h.Params
	}
	return h.Params
}

// Method is one distiller: the extra loss term L_method of L = γ·CE + α·KD + β·L_method
// (Objective builds the sum).
//
// Teacher features enter Loss as given and are treated as constants (Loss stops their gradient);
// the heads a method creates live under ctx.In(Name()) and are trained with the student. A method
// may also implement the optional interfaces Weighted (its default β), Tunable (its parameter
// table), WithHeads (its trainable head count), WithHostInputs (per-step inputs made on the host)
// and Labeled (its row label in reports).
type Method interface {
	// Name is the registry name (kd, hint, attention, ...).
	Name() string

	// Check reports whether the method can distil between encoders with these feature shapes,
	// with context parameters read from ctx.
	Check(ctx *context.Context, s, t FeatureShapes) error

	// Loss builds the method's unweighted loss term, a scalar. s and t are the student and
	// teacher features of the same batch; ctx is the scope under which the method opens its own
	// Name() scope for its heads. It panics (GoMLX style) on shapes Check would reject.
	Loss(ctx *context.Context, s, t backbone.Features, step Step) *graph.Node
}

// Weighted is a method with a term of its own and its default weight β (METHODS.md §4.2). A
// method without it (kd) has no term: Objective adds only CE and KD.
type Weighted interface {
	DefaultBeta() float64
}

// Tunable is a method with context parameters: its parameter table.
type Tunable interface {
	Params() param.Table
}

// WithHeads is a method with trainable heads (connectors, embeddings, regressors).
type WithHeads interface {
	// HeadParams counts the method's trainable head parameters for these encoders.
	HeadParams(ctx *context.Context, s, t FeatureShapes) (HeadParams, error)
}

// WithHostInputs is a method fed extra inputs made on the host every step (CRD's contrast
// indices, read by Loss from Step.Extra).
type WithHostInputs interface {
	// NewHostInputs returns the producer of the method's extra inputs for this training set.
	NewHostInputs(ctx *context.Context, train TrainSet) (HostInputs, error)
}

// Labeled is a method whose row label in reports depends on its parameters (ifacd2 for IFACD
// with two taps). A method without it is labelled by its name.
type Labeled interface {
	RunLabel(ctx *context.Context) (string, error)
}

// DefaultBeta returns m's default β: its DefaultBeta when Weighted, else 0.
func DefaultBeta(m Method) float64 {
	if w, ok := m.(Weighted); ok {
		return w.DefaultBeta()
	}
	return 0
}

// ParamsOf returns m's parameter table (empty when m is not Tunable).
func ParamsOf(m Method) param.Table {
	if t, ok := m.(Tunable); ok {
		return t.Params()
	}
	return nil
}

// CountHeads counts m's trainable head parameters (none when m has no heads).
func CountHeads(m Method, ctx *context.Context, s, t FeatureShapes) (HeadParams, error) {
	if h, ok := m.(WithHeads); ok {
		return h.HeadParams(ctx, s, t)
	}
	return HeadParams{}, nil
}

// NewHostInputs returns the producer of m's host inputs, or nil when m has none.
func NewHostInputs(m Method, ctx *context.Context, train TrainSet) (HostInputs, error) {
	if h, ok := m.(WithHostInputs); ok {
		return h.NewHostInputs(ctx, train)
	}
	return nil, nil
}

// RunLabel returns m's row label in reports: its RunLabel when Labeled, else its name.
func RunLabel(m Method, ctx *context.Context) (string, error) {
	if l, ok := m.(Labeled); ok {
		return l.RunLabel(ctx)
	}
	return m.Name(), nil
}

// methods is the registry of the built-in distillers, by name. A new method file adds one line.
var methods = map[string]Method{
	"kd":          KD{},
	"hint":        Hint{},
	"attention":   Attention{},
	"similarity":  Similarity{},
	"correlation": Correlation{},
	"vid":         VID{},
	"rkd":         RKD{},
	"pkt":         PKT{},
	"nst":         NST{},
	"crd":         CRD{},
	"fsp":         FSP{},
	"ifacd":       IFACD{},
}

// Get returns the built-in method registered under name.
func Get(name string) (Method, error) {
	m, ok := methods[name]
	if !ok {
		return nil, fmt.Errorf("distill: unknown method %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	return m, nil
}

// Names returns the names of the built-in methods, sorted.
func Names() []string {
	return slices.Sorted(maps.Keys(methods))
}

// Params is the package's parameter table: every method's tunables, methods in name order.
func Params() param.Table {
	var out param.Table
	for _, n := range Names() {
		out = append(out, ParamsOf(methods[n])...)
	}
	return out
}

// KD is the method with no extra term: plain knowledge distillation, whose KL term
// (KDLoss, Hinton et al. 2015) Objective adds for every method. Its Loss is zero and it has no β.
type KD struct{}

// Name implements Method.
func (KD) Name() string { return "kd" }

// Check implements Method.
func (KD) Check(_ *context.Context, s, t FeatureShapes) error {
	if !s.Logits.Ok() || !t.Logits.Ok() {
		return fmt.Errorf("distill: kd: student and teacher need logits")
	}
	if s.Logits.Dim(-1) != t.Logits.Dim(-1) {
		return fmt.Errorf("distill: kd: student has %d classes, teacher %d", s.Logits.Dim(-1), t.Logits.Dim(-1))
	}
	return nil
}

// Loss implements Method: a scalar zero of the student logits' dtype.
func (KD) Loss(_ *context.Context, s, _ backbone.Features, _ Step) *graph.Node {
	ref := s.Logits
	if ref == nil {
		ref = s.Pooled
	}
	return graph.ScalarZero(ref.Graph(), ref.DType())
}
