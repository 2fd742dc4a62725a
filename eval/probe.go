package eval

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// Normalization is how the linear probe preprocesses the frozen features.
type Normalization string

const (
	// NormStandardize subtracts the train-set mean and divides by the train-set standard deviation
	// of every feature (a constant feature is only centred). The default: it makes one learning
	// rate suit features of any scale.
	NormStandardize Normalization = "standardize"
	// NormL2 scales every vector to unit L2 norm.
	NormL2 Normalization = "l2"
	// NormNone uses the features as they are.
	NormNone Normalization = "none"
)

// Linear-probe defaults: lightly's SimCLR linear evaluation (METHODS.md §5.2: SGD, lr 0.1 for a
// batch of 256, momentum 0.9, cosine schedule without warm-up, weight decay 0, 90 epochs).
const (
	DefaultProbeEpochs    = 90
	DefaultProbeBatchSize = 256
	DefaultProbeLR        = 0.1
	DefaultProbeMomentum  = 0.9
)

// ProbeOptions configures LinearProbe. Zero values take the defaults.
type ProbeOptions struct {
	// Epochs over the training features (DefaultProbeEpochs).
	Epochs int
	// BatchSize (DefaultProbeBatchSize). Each epoch visits a fresh random permutation in full
	// batches; the remainder (fewer than BatchSize vectors) is left out of that epoch.
	BatchSize int
	// LR is the initial learning rate (DefaultProbeLR), decayed by a half cosine to 0 over all
	// steps (per step).
	LR float64
	// Momentum of SGD (PyTorch form: v ← μ·v + g; w ← w − lr·v). Nil-like zero means
	// DefaultProbeMomentum; set NoMomentum for plain SGD.
	Momentum float64
	// NoMomentum disables momentum.
	NoMomentum bool
	// WeightDecay adds wd·W to the weight gradient (not to the bias). Default 0.
	WeightDecay float64
	// Normalization of the features (NormStandardize if empty).
	Normalization Normalization
	// NumClasses; 0 means 1 + the largest train or test label.
	NumClasses int
	// Seed of the batch order.
	Seed uint64
}

func (o ProbeOptions) withDefaults() ProbeOptions {
	if o.Epochs == 0 {
		o.Epochs = DefaultProbeEpochs
	}
	if o.BatchSize == 0 {
		o.BatchSize = DefaultProbeBatchSize
	}
	if o.LR == 0 {
		o.LR = DefaultProbeLR
	}
	if o.Momentum == 0 {
		o.Momentum = DefaultProbeMomentum
	}
	if o.NoMomentum {
		o.Momentum = 0
	}
	if o.Normalization == "" {
		o.Normalization = NormStandardize
	}
	return o
}

// ProbeResult is the outcome of a linear probe.
type ProbeResult struct {
	// Train and Test are the accuracies of the final classifier on the two feature sets.
	Train, Test Accuracy
	// EpochLoss is the mean training cross-entropy of each epoch.
	EpochLoss []float64
	// Weights [D, NumClasses] and Bias [NumClasses] of the classifier, applied to normalised
	// features.
	Weights, Bias []float32
	// NumClasses is the number of classes the classifier scores.
	NumClasses int
}

// LinearProbe trains a linear classifier (softmax cross-entropy) on frozen, precomputed train
// features and reports its top-1/top-5 accuracy on the test features (METHODS.md §5.2). The
// features are normalised per opts.Normalization, with statistics from the train set only. The
// training steps run as a GoMLX graph on backend; the weights start at zero.
func LinearProbe(backend backends.Backend, train, test FeatureSet, opts ProbeOptions) (ProbeResult, error) {
	o := opts.withDefaults()
	if err := train.Validate(); err != nil {
		return ProbeResult{}, fmt.Errorf("eval: linear probe: train: %w", err)
	}
	if err := test.Validate(); err != nil {
		return ProbeResult{}, fmt.Errorf("eval: linear probe: test: %w", err)
	}
	if train.D != test.D {
		return ProbeResult{}, fmt.Errorf("eval: linear probe: train width %d != test width %d", train.D, test.D)
	}
	switch {
	case o.Epochs < 1 || o.BatchSize < 1:
		return ProbeResult{}, fmt.Errorf("eval: linear probe: epochs %d and batch size %d must be >= 1", o.Epochs, o.BatchSize)
	case !(o.LR > 0) || o.Momentum < 0 || o.Momentum >= 1 || o.WeightDecay < 0:
		return ProbeResult{}, fmt.Errorf("eval: linear probe: lr %g must be > 0, momentum %g in [0, 1), weight decay %g >= 0", o.LR, o.Momentum, o.WeightDecay)
	}
	numClasses := o.NumClasses
	if numClasses == 0 {
		numClasses = max(train.NumClasses(), test.NumClasses())
	}
	for i, l := range train.Labels {
		if int(l) >= numClasses {
			return ProbeResult{}, fmt.Errorf("eval: linear probe: train vector %d: label %d >= %d classes", i, l, numClasses)
		}
	}
	norm, err := newNormalizer(train, o.Normalization)
	if err != nil {
		return ProbeResult{}, err
	}
	xTrain, xTest := norm.apply(train), norm.apply(test)

	d, c := train.D, numClasses
	batch := min(o.BatchSize, train.N)
	stepsPerEpoch := train.N / batch
	totalSteps := o.Epochs * stepsPerEpoch
	step, err := newProbeStep(backend, o.Momentum, o.WeightDecay)
	if err != nil {
		return ProbeResult{}, err
	}
	state := probeState{
		w:  tensors.FromShape(zeroShape(d, c)),
		b:  tensors.FromShape(zeroShape(c)),
		vw: tensors.FromShape(zeroShape(d, c)),
		vb: tensors.FromShape(zeroShape(c)),
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x9e3779b97f4a7c15))
	perm := make([]int, train.N)
	for i := range perm {
		perm[i] = i
	}
	xb := make([]float32, batch*d)
	yb := make([]int32, batch)
	res := ProbeResult{NumClasses: c}
	t := 0
	for range o.Epochs {
		rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		var sum float64
		for s := range stepsPerEpoch {
			for i, idx := range perm[s*batch : (s+1)*batch] {
				copy(xb[i*d:(i+1)*d], xTrain[idx*d:(idx+1)*d])
				yb[i] = train.Labels[idx]
			}
			lr := o.LR * 0.5 * (1 + math.Cos(math.Pi*float64(t)/float64(totalSteps)))
			loss, err := step.run(&state, xb, yb, batch, d, lr)
			if err != nil {
				return ProbeResult{}, fmt.Errorf("eval: linear probe: step %d: %w", t, err)
			}
			if math.IsNaN(loss) || math.IsInf(loss, 0) {
				return ProbeResult{}, fmt.Errorf("eval: linear probe: step %d: loss %g (lower the learning rate %g)", t, loss, o.LR)
			}
			sum += loss
			t++
		}
		res.EpochLoss = append(res.EpochLoss, sum/float64(stepsPerEpoch))
	}
	if res.Weights, err = tensors.CopyFlatData[float32](state.w); err != nil {
		return ProbeResult{}, fmt.Errorf("eval: linear probe: weights: %w", err)
	}
	if res.Bias, err = tensors.CopyFlatData[float32](state.b); err != nil {
		return ProbeResult{}, fmt.Errorf("eval: linear probe: bias: %w", err)
	}
	state.finalize()
	res.Train = linearAccuracy(xTrain, train.Labels, d, res.Weights, res.Bias, c)
	res.Test = linearAccuracy(xTest, test.Labels, d, res.Weights, res.Bias, c)
	return res, nil
}

// linearAccuracy scores x [N, d] with x·W + b in float64 and ranks the label (ties: lower class).
func linearAccuracy(x []float32, labels []int32, d int, w, b []float32, c int) Accuracy {
	var acc Accuracy
	scores := make([]float64, c)
	for i := range labels {
		row := x[i*d : (i+1)*d]
		for k := range scores {
			scores[k] = float64(b[k])
		}
		for j, v := range row {
			if v == 0 {
				continue
			}
			wr := w[j*c : (j+1)*c]
			for k := range scores {
				scores[k] += float64(v) * float64(wr[k])
			}
		}
		acc.accumulate(rankOf(scores, int(labels[i])))
	}
	acc.finish()
	return acc
}

// normalizer maps raw features to the probe's input.
type normalizer struct {
	kind      Normalization
	mean, inv []float64 // NormStandardize: per-feature mean and 1/std
}

func newNormalizer(train FeatureSet, kind Normalization) (normalizer, error) {
	n := normalizer{kind: kind}
	switch kind {
	case NormNone, NormL2:
	case NormStandardize:
		n.mean = make([]float64, train.D)
		n.inv = make([]float64, train.D)
		for i := range train.N {
			for j, v := range train.Row(i) {
				n.mean[j] += float64(v)
			}
		}
		for j := range n.mean {
			n.mean[j] /= float64(train.N)
		}
		for i := range train.N {
			for j, v := range train.Row(i) {
				dv := float64(v) - n.mean[j]
				n.inv[j] += dv * dv
			}
		}
		for j := range n.inv {
			std := math.Sqrt(n.inv[j] / float64(train.N))
			n.inv[j] = 1
			if std > 1e-12 {
				n.inv[j] = 1 / std
			}
		}
	default:
		return n, fmt.Errorf("eval: linear probe: normalization %q: want %q, %q or %q", kind, NormStandardize, NormL2, NormNone)
	}
	return n, nil
}

// apply returns the normalised copy of f's features [N, D].
func (n normalizer) apply(f FeatureSet) []float32 {
	switch n.kind {
	case NormL2:
		return f.L2Normalized().X
	case NormStandardize:
		out := make([]float32, len(f.X))
		for i := range f.N {
			for j, v := range f.Row(i) {
				out[i*f.D+j] = float32((float64(v) - n.mean[j]) * n.inv[j])
			}
		}
		return out
	}
	return append([]float32(nil), f.X...)
}
