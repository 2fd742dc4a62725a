package ssl

import (
	"errors"
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// ContrastMode chooses which contrast points act as anchors in SupCon.
type ContrastMode int

const (
	ContrastAll ContrastMode = iota // every view of every sample is an anchor
	ContrastOne                     // only view 0 of each sample is an anchor
)

// String returns "all" or "one".
func (m ContrastMode) String() string {
	switch m {
	case ContrastAll:
		return "all"
	case ContrastOne:
		return "one"
	}
	return fmt.Sprintf("ContrastMode(%d)", int(m))
}

// ParseContrastMode parses "all" or "one".
func ParseContrastMode(s string) (ContrastMode, error) {
	switch s {
	case "all":
		return ContrastAll, nil
	case "one":
		return ContrastOne, nil
	}
	return 0, fmt.Errorf("ssl: contrast mode %q: want \"all\" or \"one\"", s)
}

// SupConOptions are the plain (non-context) options of the SupCon family of losses.
type SupConOptions struct {
	Temperature     float64 // τ
	BaseTemperature float64 // τ_b; the loss is scaled by τ/τ_b; 0 means τ_b = τ
	Mode            ContrastMode
}

// scale returns τ/τ_b, validating the options (graph-building panic on invalid values).
func (o SupConOptions) scale() float64 {
	if !(o.Temperature > 0) {
		panic(fmt.Errorf("ssl: SupCon temperature must be > 0, got %g", o.Temperature))
	}
	if o.BaseTemperature < 0 {
		panic(fmt.Errorf("ssl: SupCon base temperature must be >= 0 (0 means equal to the temperature), got %g",
			o.BaseTemperature))
	}
	if o.Mode != ContrastAll && o.Mode != ContrastOne {
		panic(fmt.Errorf("ssl: SupCon: unknown contrast mode %d", int(o.Mode)))
	}
	if o.BaseTemperature == 0 {
		return 1
	}
	return o.Temperature / o.BaseTemperature
}

// SupCon is the supervised contrastive loss in the reference "L_out" form.
// features: [B, V, D] (float32 or float64), L2-normalised along D. labels: [B] class ids of any
// integer dtype, or nil, in which case the V views of a sample are its only positives
// (SimCLR / layer-wise views). Returns a scalar.
//
// Khosla et al., "Supervised Contrastive Learning" (NeurIPS 2020), Eq. 2, as computed by the
// reference implementation (METHODS.md §3.1): the N = V·B contrast points are flattened view-major
// (c_k = features[k mod B, ⌊k/B⌋]); the anchors are all of them (ContrastAll) or view 0 of each sample
// (ContrastOne); logits ℓ_ik = ⟨a_i, c_k⟩/τ with the self pair excluded; the positives of anchor i are
// the other contrast points of the same sample (no labels) or of the same class (labels);
//
//	L_i = −(τ/τ_b) · (1/|P(i)|) · Σ_{k∈P(i)} [ℓ_ik − log Σ_{k′≠i} exp(ℓ_ik′)]
//
// and the loss is the mean of L_i over all anchors. An anchor with no positive contributes 0 but is
// counted in the mean. The row maximum subtracted for stability is taken over the non-self logits
// (the reference includes the self term; the loss is the same either way) with its gradient stopped,
// so every log-sum-exp has a term equal to 1 and cannot underflow.
func SupCon(features, labels *graph.Node, opts SupConOptions) *graph.Node {
	return graph.ReduceAllMean(supConPerAnchor(features, labels, opts, formOut))
}

// SupConPerAnchor returns the per-anchor losses L_i of SupCon, [N_A]: N_A = V·B in ContrastAll mode,
// in view-major order (index v·B + b is view v of sample b), or N_A = B in ContrastOne mode.
// SupCon is their mean.
func SupConPerAnchor(features, labels *graph.Node, opts SupConOptions) *graph.Node {
	return supConPerAnchor(features, labels, opts, formOut)
}

// SupConIn is the "L_in" variant of SupCon, with the positives summed inside the log (solo-learn's
// simclr_loss_func and SupCon, METHODS.md §3.2; Khosla et al. Eq. 3):
//
//	L_i = −(τ/τ_b) · log( Σ_{k∈P(i)} exp(ℓ_ik) / Σ_{k′≠i} exp(ℓ_ik′) )
//
// with the same inputs, contrast set, anchors, positives and conventions as SupCon (anchors with no
// positive contribute 0; the mean is over all anchors). It equals SupCon when every anchor has exactly
// one positive. Returns a scalar.
func SupConIn(features, labels *graph.Node, opts SupConOptions) *graph.Node {
	return graph.ReduceAllMean(supConPerAnchor(features, labels, opts, formIn))
}

// SupConInPerAnchor returns the per-anchor losses of SupConIn, [N_A], ordered as in SupConPerAnchor.
func SupConInPerAnchor(features, labels *graph.Node, opts SupConOptions) *graph.Node {
	return supConPerAnchor(features, labels, opts, formIn)
}

// NTXent is SimCLR's normalized-temperature cross-entropy (Chen et al., "A Simple Framework for
// Contrastive Learning of Visual Representations", ICML 2020, Eq. 1) averaged over all 2B anchors:
// SupCon with V = 2, no labels, ContrastAll and τ_b = τ. z1, z2: [B, D], the two views' embeddings,
// L2-normalised along D. Returns a scalar.
func NTXent(z1, z2 *graph.Node, temperature float64) *graph.Node {
	if z1.Rank() != 2 || !z1.Shape().Equal(z2.Shape()) {
		panic(fmt.Errorf("ssl: NTXent wants two [B, D] inputs of the same shape, got %s and %s", z1.Shape(), z2.Shape()))
	}
	features := graph.Stack([]*graph.Node{z1, z2}, 1)
	return SupCon(features, nil, SupConOptions{Temperature: temperature, Mode: ContrastAll})
}

// L2Normalize divides x by its L2 norm along the last axis, max(‖x‖, 1e-12) as PyTorch's
// F.normalize does. x: [..., D]; returns the same shape.
func L2Normalize(x *graph.Node) *graph.Node {
	norm := graph.Sqrt(graph.ReduceAndKeep(graph.Square(x), graph.ReduceSum, -1))
	return graph.Div(x, graph.MaxScalar(norm, 1e-12))
}

type lossForm int

const (
	formOut lossForm = iota // mean of log-probabilities over the positives (SupContrast)
	formIn                  // log of the summed probability of the positives (solo-learn)
)

// SupConWithAnchors is SupCon (the L_out form, every view an anchor as in ContrastAll) with extra
// anchors that are not contrast points: multi-crop's local crops (METHODS.md §10.4), which are only
// ever anchors, never positives, negatives or denominator terms of another anchor. features:
// [B, V, D], the contrast points as in SupCon; extra: [B, M, D], L2-normalised, the extra anchors
// e_{b,m} (sample b); labels: [B] or nil. With the contrast set c_k (k < N = V·B, view-major as in
// SupCon) and the anchors a_i = c_i for i < N, a_{N+m·B+b} = e_{b,m}:
//
//	ℓ_ik = ⟨a_i, c_k⟩/τ   for k < N, k ≠ i (an extra anchor excludes nothing: it is no contrast point)
//	P(i) = {k ≠ i : sample(k) = sample(i)}   (no labels) or {k ≠ i : y(k) = y(i)}   (labels)
//	L_i = −(τ/τ_b) · (1/|P(i)|) · Σ_{k∈P(i)} [ℓ_ik − log Σ_{k′<N, k′≠i} exp(ℓ_ik′)]
//
// and the loss is the mean of L_i over all N + M·B anchors. So a local crop of image b is positive
// with every contrast view of image b (of its class, with labels) and contrasts against all N
// contrast points; the contrast anchors see exactly SupCon's terms. M = 0 is SupCon in ContrastAll
// mode. It needs N ≥ 2. Returns a scalar.
func SupConWithAnchors(features, extra, labels *graph.Node, opts SupConOptions) *graph.Node {
	return graph.ReduceAllMean(SupConWithAnchorsPerAnchor(features, extra, labels, opts))
}

// SupConWithAnchorsPerAnchor returns the per-anchor losses of SupConWithAnchors, [N + M·B]: the N
// contrast anchors in SupCon's view-major order, then the extra anchors, index N + m·B + b for
// extra[b, m].
func SupConWithAnchorsPerAnchor(features, extra, labels *graph.Node, opts SupConOptions) *graph.Node {
	if extra == nil {
		panic(errors.New("ssl: SupConWithAnchors: no extra anchors (use SupCon)"))
	}
	if opts.Mode != ContrastAll {
		panic(fmt.Errorf("ssl: SupConWithAnchors: contrast mode %s, want all", opts.Mode))
	}
	return supConPerAnchorExtra(features, extra, labels, opts, formOut)
}

// supConPerAnchor builds the per-anchor SupCon losses, [N_A].
func supConPerAnchor(features, labels *graph.Node, opts SupConOptions, form lossForm) *graph.Node {
	return supConPerAnchorExtra(features, nil, labels, opts, form)
}

// supConPerAnchorExtra is supConPerAnchor with optional extra anchors [B, M, D] (ContrastAll
// only), appended after the contrast anchors.
func supConPerAnchorExtra(features, extra, labels *graph.Node, opts SupConOptions, form lossForm) *graph.Node {
	scale := opts.scale()
	if features.Rank() != 3 {
		panic(fmt.Errorf("ssl: SupCon features must be [B, V, D], got %s", features.Shape()))
	}
	dtype := features.DType()
	if dtype != dtypes.Float32 && dtype != dtypes.Float64 {
		panic(fmt.Errorf("ssl: SupCon features must be float32 or float64, got %s", dtype))
	}
	b, v, d := features.Shape().Dim(0), features.Shape().Dim(1), features.Shape().Dim(2)
	if b < 1 || v < 1 || d < 1 {
		panic(fmt.Errorf("ssl: SupCon features %s has an empty axis", features.Shape()))
	}
	if labels != nil {
		if labels.Rank() != 1 || labels.Shape().Dim(0) != b {
			panic(fmt.Errorf("ssl: SupCon labels must be [B] = [%d], got %s", b, labels.Shape()))
		}
		if !labels.DType().IsInt() {
			panic(fmt.Errorf("ssl: SupCon labels must have an integer dtype, got %s", labels.DType()))
		}
	}
	g := features.Graph()
	n := v * b
	nA := n
	if opts.Mode == ContrastOne {
		nA = b
	}
	m := 0
	if extra != nil {
		if extra.Rank() != 3 || extra.Shape().Dim(0) != b || extra.Shape().Dim(2) != d || extra.DType() != dtype {
			panic(fmt.Errorf("ssl: SupCon extra anchors must be [B, M, D] = [%d, M, %d] %s, got %s", b, d, dtype, extra.Shape()))
		}
		if n < 2 {
			panic(fmt.Errorf("ssl: SupCon with extra anchors needs at least 2 contrast points, got features %s", features.Shape()))
		}
		m = extra.Shape().Dim(1)
		nA += m * b
	}
	if n == 1 {
		// A single contrast point has neither positives nor negatives: its loss is 0.
		return graph.ReduceSum(graph.MulScalar(features, 0), 1, 2)
	}

	// View-major contrast set: c_k = features[k mod B, ⌊k/B⌋].
	contrast := graph.Reshape(graph.TransposeAllAxes(features, 1, 0, 2), n, d)
	anchors := contrast
	if opts.Mode == ContrastOne {
		// View 0 of each sample, selected by a one-hot weighted sum over V (differentiable without Slice).
		viewIdx := graph.Iota(g, shapes.Make(dtypes.Int32, 1, v, 1), 1)
		first := graph.ConvertDType(graph.Equal(viewIdx, graph.ScalarZero(g, dtypes.Int32)), dtype)
		anchors = graph.ReduceSum(graph.Mul(features, first), 1)
	}
	if m > 0 {
		// The extra anchors, view-major after the contrast anchors: index N + m·B + b, so that
		// index mod B is still the sample.
		anchors = graph.Concatenate([]*graph.Node{anchors, graph.Reshape(graph.TransposeAllAxes(extra, 1, 0, 2), m*b, d)}, 0)
	}
	logits := graph.DivScalar(graph.Einsum("ad,kd->ak", anchors, contrast), opts.Temperature) // [N_A, N]

	// Masks by index arithmetic: anchor i is contrast point i (in both modes); an extra anchor's
	// index (≥ N) equals no contrast point's.
	pairShape := shapes.Make(dtypes.Int32, nA, n)
	rows := graph.Iota(g, pairShape, 0)
	cols := graph.Iota(g, pairShape, 1)
	notSelf := graph.NotEqual(rows, cols)
	var same *graph.Node
	if labels == nil {
		same = graph.Equal(graph.ModScalar(rows, b), graph.ModScalar(cols, b))
	} else {
		// Labels of the contrast points in view-major order, and of the anchors.
		yC := graph.Reshape(graph.BroadcastToDims(graph.Reshape(labels, 1, b), v, b), n)
		yA := yC
		if opts.Mode == ContrastOne {
			yA = labels
		}
		if m > 0 {
			yA = graph.Reshape(graph.BroadcastToDims(graph.Reshape(labels, 1, b), v+m, b), nA)
		}
		same = graph.Equal(
			graph.BroadcastToDims(graph.Reshape(yA, nA, 1), nA, n),
			graph.BroadcastToDims(graph.Reshape(yC, 1, n), nA, n))
	}
	pos := graph.LogicalAnd(same, notSelf)

	zero := graph.ScalarZero(g, dtype)
	rowMax := graph.StopGradient(graph.MaskedReduceMax(logits, notSelf, 1))
	shifted := graph.Sub(logits, graph.Reshape(rowMax, nA, 1))
	// log Σ_{k≠i} exp(ℓ_ik − m_i); the inner Where keeps masked entries finite so no NaN reaches the
	// gradient through the outer Where.
	expAll := graph.Where(notSelf, graph.Exp(graph.Where(notSelf, shifted, zero)), zero)
	logDen := graph.Log(graph.ReduceSum(expAll, 1)) // [N_A], ≥ 0

	posCount := graph.ReduceSum(graph.ConvertDType(pos, dtype), 1)
	hasPos := graph.GreaterThan(posCount, graph.Scalar(g, dtype, 0.5))
	one := graph.ScalarOne(g, dtype)

	var logProbPos *graph.Node
	switch form {
	case formOut:
		sumPos := graph.ReduceSum(graph.Where(pos, shifted, zero), 1)
		safeCount := graph.Where(hasPos, posCount, graph.BroadcastToDims(one, nA))
		logProbPos = graph.Sub(graph.Div(sumPos, safeCount), logDen)
	case formIn:
		posMax := graph.StopGradient(graph.MaskedReduceMax(shifted, pos, 1))
		posMax = graph.Where(hasPos, posMax, graph.BroadcastToDims(zero, nA))
		inner := graph.Where(pos, graph.Sub(shifted, graph.Reshape(posMax, nA, 1)), zero)
		posSum := graph.ReduceSum(graph.Where(pos, graph.Exp(inner), zero), 1)
		posSum = graph.Where(hasPos, posSum, graph.BroadcastToDims(one, nA))
		logProbPos = graph.Sub(graph.Add(graph.Log(posSum), posMax), logDen)
	}
	perAnchor := graph.MulScalar(logProbPos, -scale)
	return graph.Where(hasPos, perAnchor, graph.BroadcastToDims(zero, nA))
}
