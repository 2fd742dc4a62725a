package distill

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/ifa-toolkit/ifa/backbone"
)

// FeatureSet says which fields of a backbone.Features a method reads, as a bit set.
type FeatureSet uint8

// The bits of a FeatureSet, one per backbone.Features field.
const (
	UsesLogits FeatureSet = 1 << iota
	UsesPooled
	UsesStages
	UsesPreactStages
	UsesTaps
	UsesTapVectors
)

// Has reports whether every bit of o is set in f.
func (f FeatureSet) Has(o FeatureSet) bool { return f&o == o }

// String lists the set bits by field name, e.g. "Pooled|Stages".
func (f FeatureSet) String() string {
	names := []string{"Logits", "Pooled", "Stages", "PreactStages", "Taps", "TapVectors"}
	var parts []string
	for i, n := range names {
		if f&(1<<i) != 0 {
			parts = append(parts, n)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "|")
}

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

// Method is one distiller: the extra loss term L_method of
// L = γ·CE + α·KD + β·L_method, with everything a distillation step needs to compute it.
//
// Teacher features enter Loss as given and are treated as constants (Loss stops their gradient);
// the heads a method creates live under ctx.In(Name()) and are trained with the student.
type Method interface {
	// Name is the registry name (kd, hint, attention, ...).
	Name() string

	// DefaultBeta is β, the weight of the method's term (METHODS.md §4.2; 0 for kd).
	DefaultBeta() float64

	// Features returns which student and teacher features Loss reads.
	Features() (student, teacher FeatureSet)

	// Check reports whether the method can distil between encoders with these feature shapes,
	// with context parameters read from ctx.
	Check(ctx *context.Context, s, t FeatureShapes) error

	// HeadParams counts the method's trainable head parameters for these encoders.
	HeadParams(ctx *context.Context, s, t FeatureShapes) (HeadParams, error)

	// NewHostInputs returns the producer of the method's extra inputs for this training set, or
	// nil when the method needs none.
	NewHostInputs(ctx *context.Context, train TrainSet) (HostInputs, error)

	// Loss builds the method's unweighted loss term, a scalar. s and t are the student and
	// teacher features of the same batch; ctx is the scope under which the method opens its own
	// Name() scope for its heads. It panics (GoMLX style) on shapes Check would reject.
	Loss(ctx *context.Context, s, t backbone.Features, step Step) *graph.Node
}

// Registry maps method names to methods.
type Registry struct {
	byName map[string]Method
	order  []string
}

// NewRegistry returns a registry holding the given methods.
func NewRegistry(methods ...Method) (*Registry, error) {
	r := &Registry{byName: make(map[string]Method)}
	for _, m := range methods {
		if err := r.Register(m); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Register adds m; a name registered twice is an error.
func (r *Registry) Register(m Method) error {
	if m == nil {
		return fmt.Errorf("distill: register: nil method")
	}
	name := m.Name()
	if name == "" {
		return fmt.Errorf("distill: register: method %T has an empty name", m)
	}
	if _, dup := r.byName[name]; dup {
		return fmt.Errorf("distill: register: method %q registered twice", name)
	}
	r.byName[name] = m
	r.order = append(r.order, name)
	return nil
}

// Get returns the method registered under name.
func (r *Registry) Get(name string) (Method, error) {
	m, ok := r.byName[name]
	if !ok {
		return nil, fmt.Errorf("distill: unknown method %q (known: %s)", name, strings.Join(r.Names(), ", "))
	}
	return m, nil
}

// Names returns the registered names, sorted.
func (r *Registry) Names() []string {
	out := slices.Clone(r.order)
	slices.Sort(out)
	return out
}

// builtins lists the methods every Default registry holds. A new method file adds its method here.
func builtins() []Method {
	return []Method{
		KD{}, Hint{}, Attention{}, Similarity{}, Correlation{}, VID{}, RKD{}, PKT{}, NST{}, CRD{}, IFACD{},
	}
}

// Default returns a fresh registry of the built-in methods.
func Default() *Registry {
	r, err := NewRegistry(builtins()...)
	if err != nil {
		panic(err) // A duplicate in builtins is a programming error caught by the tests.
	}
	return r
}

// Get returns the built-in method registered under name.
func Get(name string) (Method, error) { return Default().Get(name) }

// Names returns the names of the built-in methods, sorted.
func Names() []string { return Default().Names() }

// KD is the method with no extra term: plain knowledge distillation, whose KL term
// (KDLoss, Hinton et al. 2015) the training loop adds for every method. Its Loss is zero.
type KD struct{}

// Name implements Method.
func (KD) Name() string { return "kd" }

// DefaultBeta implements Method: KD has no β term.
func (KD) DefaultBeta() float64 { return 0 }

// Features implements Method: KD reads logits (through KDLoss, outside Loss).
func (KD) Features() (student, teacher FeatureSet) { return UsesLogits, UsesLogits }

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

// HeadParams implements Method: KD has no heads.
func (KD) HeadParams(*context.Context, FeatureShapes, FeatureShapes) (HeadParams, error) {
	return HeadParams{}, nil
}

// NewHostInputs implements Method: none.
func (KD) NewHostInputs(*context.Context, TrainSet) (HostInputs, error) { return nil, nil }

// Loss implements Method: a scalar zero of the student logits' dtype.
func (KD) Loss(_ *context.Context, s, _ backbone.Features, _ Step) *graph.Node {
	ref := s.Logits
	if ref == nil {
		ref = s.Pooled
	}
	return graph.ScalarZero(ref.Graph(), ref.DType())
}
