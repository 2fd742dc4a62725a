package distill

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/gomlx/gomlx/pkg/ml/context/initializers"
	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/internal/nn"
	"github.com/ifa-toolkit/ifa/internal/param"
)

// Contrastive representation distillation (Tian, Krishnan & Isola, "Contrastive Representation
// Distillation", ICLR 2020): the NCE bound of Eq. (10)/(19) with the memory-bank estimate of the
// critic h(T, S) = exp(⟨v_t, v_s⟩/T) / (exp(⟨v_t, v_s⟩/T) + N/M), implemented as RepDistiller does
// (METHODS.md §4.2): two memory banks, K negatives per sample from other classes, Z fixed on the
// first batch.

// crdEpsilon is the ε of CRD's NCE loss.
const crdEpsilon = 1e-7

// CRDEmbed is CRD's embedding head: a linear layer (with bias, variables in ctx's scope) from
// x: [B, D] to [B, dim], then L2 normalisation of each row.
func CRDEmbed(ctx *context.Context, x *graph.Node, dim int) *graph.Node {
	return l2Normalize(nn.Linear(ctx, flatten(x), dim), 1, normalizeEpsilon)
}

// CRDScores returns the unnormalised scores exp(⟨w_ik, v_i⟩/T) of the K+1 memory rows
// w: [B, K+1, D] against the embeddings v: [B, D]; [B, K+1].
func CRDScores(w, v *graph.Node, temperature float64) *graph.Node {
	return graph.Exp(graph.DivScalar(graph.Einsum("bkd,bd->bk", w, v), temperature))
}

// crdScoresViaMatMul picks how crdBankScores computes: scoring every bank row (a [B, N] product)
// needs less memory than gathering the [B, K+1, D] rows whenever N < (K+1)·D — the CIFAR case
// (N = 50,000 against 16,385·128).
func crdScoresViaMatMul(n, k1, dim int) bool { return n < k1*dim }

// crdBankScores returns CRDScores of the bank rows idx: [B, K+1] against v: [B, D]; [B, K+1].
// With viaMatMul it scores v against the whole bank [N, D] and gathers the [B, K+1] entries;
// otherwise it gathers the [B, K+1, D] rows first. Both give the same values.
func crdBankScores(bank, idx, v *graph.Node, temperature float64, viaMatMul bool) *graph.Node {
	if !viaMatMul {
		return CRDScores(graph.Gather(bank, graph.ExpandAxes(idx, -1)), v, temperature)
	}
	g := v.Graph()
	logits := graph.Einsum("bd,nd->bn", v, bank) // [B, N]
	rowsIdx := graph.Iota(g, shapes.Make(idx.DType(), idx.Shape().Dim(0), idx.Shape().Dim(1), 1), 0)
	at := graph.Concatenate([]*graph.Node{rowsIdx, graph.ExpandAxes(idx, -1)}, -1) // [B, K+1, 2]
	return graph.Exp(graph.DivScalar(graph.Gather(logits, at), temperature))
}

// CRDNCELoss is CRD's NCE loss for one side, with noise distribution P_n = 1/n and m = K noise
// samples per positive: −(1/B)·Σ_i [log(p_i0/(p_i0 + m/n + ε)) + Σ_{k≥1} log((m/n)/(p_ik + m/n + ε))],
// ε = 1e−7.
//
// p: [B, K+1], the Z-normalised scores with the positive in column 0; n: the dataset size N.
// Returns a scalar.
func CRDNCELoss(p *graph.Node, n int) *graph.Node {
	if p.Rank() != 2 || p.Shape().Dim(1) < 2 {
		panicf("distill: crd: want [B, K+1] scores with K >= 1, got %s", p.Shape())
	}
	b, k1 := p.Shape().Dim(0), p.Shape().Dim(1)
	mPn := float64(k1-1) / float64(n)
	denom := graph.AddScalar(p, mPn+crdEpsilon)
	logD1 := graph.Log(graph.Div(p, denom))                                           // positives (column 0)
	logD0 := graph.Log(graph.Div(graph.FillScalar(p.Graph(), p.Shape(), mPn), denom)) // noise (columns 1..K)
	isPos := graph.Equal(graph.Iota(p.Graph(), shapes.Make(dtypes.Int32, b, k1), 1), graph.ScalarZero(p.Graph(), dtypes.Int32))
	total := graph.ReduceAllSum(graph.Where(isPos, logD1, logD0))
	return graph.DivScalar(graph.Neg(total), float64(b))
}

// CRDBankUpdate returns the memory bank after the momentum update of the rows idx:
// M[i] ← normalise(momentum·M[i] + (1 − momentum)·v_i); other rows are unchanged.
//
// bank: [N, D]; idx: [B] int32, distinct; v: [B, D] (used as a constant). Returns [N, D].
func CRDBankUpdate(bank, idx, v *graph.Node, momentum float64) *graph.Node {
	bank = graph.StopGradient(bank)
	at := graph.ExpandAxes(idx, -1) // [B, 1]
	rows := graph.Gather(bank, at)  // [B, D]
	upd := graph.Add(graph.MulScalar(rows, momentum), graph.MulScalar(graph.StopGradient(v), 1-momentum))
	upd = l2Normalize(upd, 1, normalizeEpsilon)
	return graph.ScatterUpdate(bank, at, upd, false, true)
}

// CRD is the registry entry for CRD on the pooled features, β = 0.8.
//
// Scopes under crd/: embed_s and embed_t (CRDEmbed, width ParamCRDFeatDim = 128, trainable);
// memory/bank_s and memory/bank_t ([N, 128], not trainable, initialised U(±√(3/128)): the student
// and teacher memory banks); memory/z_s, memory/z_t (the normalisers Z, not trainable) and
// memory/z_set (int32 flag, 0 until the first training batch sets Z = mean(scores)·N).
//
// Step.Extra[0] is the [B, K+1] int32 contrast index matrix from the CRDSampler (NewHostInputs):
// column 0 is each sample's own dataset index (the positive), columns 1..K its negatives. The
// teacher-side scores compare the teacher embedding with the student bank and vice versa; the
// loss is the sum of both sides' CRDNCELoss. In a training graph the banks are updated
// (CRDBankUpdate, momentum ParamCRDMomentum = 0.5) at column 0's indices, and Z is fixed.
type CRD struct{}

// Tunables of CRD.
const (
	// ParamCRDFeatDim: the width of CRD's embeddings and memory banks.
	ParamCRDFeatDim = "crd_feat_dim"
	// ParamCRDNegatives: K, the negatives per sample.
	ParamCRDNegatives = "crd_k"
	// ParamCRDTemperature: CRD's temperature T.
	ParamCRDTemperature = "crd_t"
	// ParamCRDMomentum: the memory-bank momentum m in M[i] ← normalise(m·M[i] + (1−m)·v_i).
	ParamCRDMomentum = "crd_momentum"
)

var crdParams = param.Table{
	{Key: ParamCRDFeatDim, Default: 128, Doc: "CRD: embedding and memory-bank width"},
	{Key: ParamCRDNegatives, Default: 16384, Doc: "CRD: negatives K per sample"},
	{Key: ParamCRDTemperature, Default: 0.07, Doc: "CRD: temperature"},
	{Key: ParamCRDMomentum, Default: 0.5, Doc: "CRD: memory-bank momentum"},
}

// Params implements Tunable.
func (CRD) Params() param.Table { return crdParams }

// Name implements Method.
func (CRD) Name() string { return "crd" }

// DefaultBeta implements Weighted.
func (CRD) DefaultBeta() float64 { return 0.8 }

// Check implements Method.
func (m CRD) Check(_ *context.Context, s, t FeatureShapes) error { return checkPooled(m.Name(), s, t) }

// HeadParams implements WithHeads: the two embeddings, counted twice in the talk's convention
// (METHODS.md §2.1). The memory banks are not trainable and not counted.
func (m CRD) HeadParams(ctx *context.Context, s, t FeatureShapes) (HeadParams, error) {
	if err := m.Check(ctx, s, t); err != nil {
		return HeadParams{}, err
	}
	dim := param.Get[int](ctx.In(m.Name()), crdParams, ParamCRDFeatDim)
	n := nn.LinearParams(s.Pooled.Dim(1), dim, true) + nn.LinearParams(t.Pooled.Dim(1), dim, true)
	return HeadParams{Params: n, CountedTwice: true}, nil
}

// NewHostInputs implements WithHostInputs: a CRDSampler with K = ParamCRDNegatives.
func (m CRD) NewHostInputs(ctx *context.Context, train TrainSet) (HostInputs, error) {
	k := param.Get[int](ctx.In(m.Name()), crdParams, ParamCRDNegatives)
	return NewCRDSampler(train.Labels, k, train.Seed)
}

// Loss implements Method.
func (m CRD) Loss(ctx *context.Context, s, t backbone.Features, step Step) *graph.Node {
	ctx = ctx.In(m.Name())
	g := s.Pooled.Graph()
	dim := param.Get[int](ctx, crdParams, ParamCRDFeatDim)
	temp := param.Get[float64](ctx, crdParams, ParamCRDTemperature)
	momentum := param.Get[float64](ctx, crdParams, ParamCRDMomentum)
	if len(step.Extra) != 1 {
		panicf("distill: crd: want 1 extra input (the [B, K+1] contrast indices), got %d", len(step.Extra))
	}
	idx := step.Extra[0]
	b := s.Pooled.Shape().Dim(0)
	if idx.Rank() != 2 || idx.Shape().Dim(0) != b || idx.Shape().Dim(1) < 2 || !idx.DType().IsInt() {
		panicf("distill: crd: contrast indices must be [B=%d, K+1] integers with K >= 1, got %s", b, idx.Shape())
	}
	n := step.DatasetSize
	if n < 1 {
		panicf("distill: crd: Step.DatasetSize must be the training-set size, got %d", n)
	}

	vs := CRDEmbed(ctx.In("embed_s"), s.Pooled, dim)
	vt := CRDEmbed(ctx.In("embed_t"), graph.StopGradient(t.Pooled), dim)
	dtype := vs.DType()

	mem := ctx.In("memory")
	bound := math.Sqrt(3 / float64(dim))
	bankVar := func(name string) *context.Variable {
		return mem.WithInitializer(uniformInit(mem, bound)).
			VariableWithShape(name, shapes.Make(dtype, n, dim)).SetTrainable(false)
	}
	bankS, bankT := bankVar("bank_s"), bankVar("bank_t")
	scalarVar := func(name string, dt dtypes.DType) *context.Variable {
		return mem.WithInitializer(initializers.Zero).VariableWithShape(name, shapes.Make(dt)).SetTrainable(false)
	}
	zSVar, zTVar, zSetVar := scalarVar("z_s", dtype), scalarVar("z_t", dtype), scalarVar("z_set", dtypes.Int32)

	bs, bt := graph.StopGradient(bankS.ValueGraph(g)), graph.StopGradient(bankT.ValueGraph(g))
	viaMatMul := crdScoresViaMatMul(n, idx.Shape().Dim(1), dim)
	outS := crdBankScores(bt, idx, vs, temp, viaMatMul) // student embedding against the teacher bank
	outT := crdBankScores(bs, idx, vt, temp, viaMatMul) // teacher embedding against the student bank

	isSet := graph.GreaterThan(zSetVar.ValueGraph(g), graph.ScalarZero(g, dtypes.Int32))
	zOf := func(v *context.Variable, out *graph.Node) *graph.Node {
		fresh := graph.StopGradient(graph.MulScalar(graph.ReduceAllMean(out), float64(n)))
		return graph.Where(isSet, v.ValueGraph(g), fresh)
	}
	zS, zT := zOf(zSVar, outS), zOf(zTVar, outT)
	loss := graph.Add(CRDNCELoss(graph.Div(outS, zS), n), CRDNCELoss(graph.Div(outT, zT), n))

	if ctx.IsTraining(g) {
		zSVar.SetValueGraph(zS)
		zTVar.SetValueGraph(zT)
		zSetVar.SetValueGraph(graph.OnesLike(zSetVar.ValueGraph(g)))
		own := nn.SelectIndex(idx, 1, 0)
		bankS.SetValueGraph(CRDBankUpdate(bs, own, vs, momentum))
		bankT.SetValueGraph(CRDBankUpdate(bt, own, vt, momentum))
	}
	return loss
}

// CRDSampler draws CRD's contrast indices on the host in RepDistiller's 'exact' mode: for each
// sample, its own dataset index followed by K negatives drawn uniformly from the training samples
// of other classes — without replacement, or with replacement when a class has fewer than K
// negatives. It is deterministic: a sample's negatives depend only on the seed, the step and the
// sample's dataset index (not on the rest of the batch or on earlier calls), so a resumed run
// draws the same negatives. It is safe for concurrent use.
type CRDSampler struct {
	k      int
	seed   uint64
	labels []int
	order  []int32 // dataset indices grouped by class, ascending within a class
	start  []int   // class c occupies order[start[c]:start[c+1]]
}

// NewCRDSampler returns a sampler of k negatives per sample for a training set whose sample i has
// class labels[i] (non-negative). Every class present must have at least one negative.
func NewCRDSampler(labels []int, k int, seed uint64) (*CRDSampler, error) {
	if k < 1 {
		return nil, fmt.Errorf("distill: crd sampler: K = %d, want >= 1", k)
	}
	if len(labels) == 0 {
		return nil, fmt.Errorf("distill: crd sampler: empty training set")
	}
	if len(labels) > math.MaxInt32 {
		return nil, fmt.Errorf("distill: crd sampler: %d samples exceed int32 indices", len(labels))
	}
	numClasses := 0
	for i, l := range labels {
		if l < 0 {
			return nil, fmt.Errorf("distill: crd sampler: sample %d: label %d < 0", i, l)
		}
		numClasses = max(numClasses, l+1)
	}
	count := make([]int, numClasses)
	for _, l := range labels {
		count[l]++
	}
	start := make([]int, numClasses+1)
	for c := range numClasses {
		start[c+1] = start[c] + count[c]
		if count[c] == len(labels) {
			return nil, fmt.Errorf("distill: crd sampler: every sample has class %d, so there are no negatives", c)
		}
	}
	order := make([]int32, len(labels))
	next := make([]int, numClasses)
	copy(next, start[:numClasses])
	for i, l := range labels {
		order[next[l]] = int32(i)
		next[l]++
	}
	return &CRDSampler{k: k, seed: seed, labels: append([]int(nil), labels...), order: order, start: start}, nil
}

// K returns the number of negatives per sample.
func (s *CRDSampler) K() int { return s.k }

// Specs implements HostInputs: one [B, K+1] int32 input named "crd_contrast_idx".
func (s *CRDSampler) Specs(batchSize int) []InputSpec {
	return []InputSpec{{Name: "crd_contrast_idx", Shape: shapes.Make(dtypes.Int32, batchSize, s.k+1)}}
}

// Make implements HostInputs: the Sample matrix as a [B, K+1] int32 tensor.
func (s *CRDSampler) Make(step int64, indices, labels []int) ([]*tensors.Tensor, error) {
	flat, err := s.Sample(step, indices, labels)
	if err != nil {
		return nil, err
	}
	return []*tensors.Tensor{tensors.FromFlatDataAndDimensions(flat, len(indices), s.k+1)}, nil
}

// splitMix64 is the SplitMix64 finaliser, used to derive independent random streams.
func splitMix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Sample returns the contrast indices of a batch, row-major [B, K+1]: row i is indices[i]
// followed by K negatives of classes other than labels[i]. labels must match the training set's
// labels at indices, and indices must be distinct and in range (the memory-bank update needs
// distinct rows).
func (s *CRDSampler) Sample(step int64, indices, labels []int) ([]int32, error) {
	if len(indices) != len(labels) {
		return nil, fmt.Errorf("distill: crd sampler: step %d: %d indices but %d labels", step, len(indices), len(labels))
	}
	n := len(s.labels)
	seen := make(map[int]int, len(indices))
	for i, idx := range indices {
		if idx < 0 || idx >= n {
			return nil, fmt.Errorf("distill: crd sampler: step %d: batch row %d: index %d out of range [0, %d)", step, i, idx, n)
		}
		if labels[i] != s.labels[idx] {
			return nil, fmt.Errorf("distill: crd sampler: step %d: batch row %d: label %d, but sample %d has label %d", step, i, labels[i], idx, s.labels[idx])
		}
		if j, dup := seen[idx]; dup {
			return nil, fmt.Errorf("distill: crd sampler: step %d: sample %d appears in batch rows %d and %d", step, idx, j, i)
		}
		seen[idx] = i
	}
	width := s.k + 1
	out := make([]int32, len(indices)*width)
	var scratch []int32
	for i, idx := range indices {
		row := out[i*width : (i+1)*width]
		row[0] = int32(idx)
		c := labels[i]
		lo, hi := s.start[c], s.start[c+1]
		m := n - (hi - lo) // negatives of class c
		rng := rand.New(rand.NewPCG(s.seed^splitMix64(uint64(step)), splitMix64(uint64(idx)^0x5bd1e995)))
		neg := row[1:]
		if s.k > m {
			for j := range neg {
				r := rng.IntN(m)
				if r >= lo {
					r += hi - lo
				}
				neg[j] = s.order[r]
			}
			continue
		}
		// Partial Fisher–Yates over the negatives of class c.
		scratch = append(append(scratch[:0], s.order[:lo]...), s.order[hi:]...)
		for j := range neg {
			r := j + rng.IntN(m-j)
			scratch[j], scratch[r] = scratch[r], scratch[j]
			neg[j] = scratch[j]
		}
	}
	return out, nil
}
