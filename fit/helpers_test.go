package fit

import (
	"iter"
	"math"
	"math/rand/v2"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"

	"github.com/ifa-toolkit/ifa/data"
	"github.com/ifa-toolkit/ifa/internal/nn"
)

// Test problem sizes: 40 examples of 6 features, 4 classes, batches of 8 (5 steps per epoch).
const (
	testN, testD, testH, testC, testB = 40, 6, 8, 4, 8
)

// memLoader is an in-memory data.Loader with a deterministic shuffle per epoch.
type memLoader struct {
	x      []float32 // [n, d]
	y      []int32
	n, d   int
	batch  int
	seed   uint64
	noIdx  bool
	onStep func(epoch, i int) // called before batch i of epoch is yielded
	poison func(epoch, i int) bool
}

// newSyntheticLoader makes a linearly separable-ish classification problem.
func newSyntheticLoader(n, d, c, batch int, seed uint64) *memLoader {
	rng := rand.New(rand.NewPCG(seed, 7))
	centres := make([]float64, c*d)
	for i := range centres {
		centres[i] = rng.NormFloat64() * 2
	}
	l := &memLoader{x: make([]float32, n*d), y: make([]int32, n), n: n, d: d, batch: batch, seed: seed}
	for i := range n {
		k := i % c
		l.y[i] = int32(k)
		for j := range d {
			l.x[i*d+j] = float32(centres[k*d+j] + 0.5*rng.NormFloat64())
		}
	}
	return l
}

func (l *memLoader) StepsPerEpoch() int { return (l.n + l.batch - 1) / l.batch }
func (l *memLoader) NumExamples() int   { return l.n }

func (l *memLoader) Epoch(e int) iter.Seq2[data.Batch, error] {
	return func(yield func(data.Batch, error) bool) {
		perm := rand.New(rand.NewPCG(l.seed, uint64(e)+1)).Perm(l.n)
		for i := 0; i*l.batch < l.n; i++ {
			lo, hi := i*l.batch, min(l.n, (i+1)*l.batch)
			b := hi - lo
			x := make([]float32, b*l.d)
			y := make([]int32, b)
			idx := make([]int32, b)
			for k, p := range perm[lo:hi] {
				copy(x[k*l.d:(k+1)*l.d], l.x[p*l.d:(p+1)*l.d])
				y[k] = l.y[p]
				idx[k] = int32(p)
			}
			if l.poison != nil && l.poison(e, i) {
				for k := range idx {
					idx[k] = 10000
				}
			}
			batch := data.Batch{Images: tensors.FromFlatDataAndDimensions(x, b, l.d), Labels: tensors.FromFlatDataAndDimensions(y, b), Size: b}
			if !l.noIdx {
				batch.Indices = tensors.FromFlatDataAndDimensions(idx, b)
			}
			if l.onStep != nil {
				l.onStep(e, i)
			}
			if !yield(batch, nil) {
				return
			}
		}
	}
}

func dense(ctx *context.Context, x *graph.Node, out int) *graph.Node {
	in := x.Shape().Dim(-1)
	w := ctx.VariableWithShape("weights", shapes.Make(dtypes.Float32, in, out)).ValueGraph(x.Graph())
	b := ctx.WithInitializer(initializers.Zero).VariableWithShape("biases", shapes.Make(dtypes.Float32, out)).ValueGraph(x.Graph())
	return graph.Add(graph.Dot(x, w), graph.ExpandAxes(b, 0))
}

// mlp is dense → batch norm → ReLU (→ multiplicative Gaussian noise when training and noise) → dense.
func mlp(ctx *context.Context, x *graph.Node, noise bool) *graph.Node {
	g := x.Graph()
	h := dense(ctx.In("dense_0"), x, testH)
	h = nn.BatchNorm(ctx.In("bn_0"), h)
	h = graph.Max(h, graph.ZerosLike(h))
	if noise && ctx.IsTraining(g) {
		h = graph.Mul(h, graph.AddScalar(graph.MulScalar(ctx.RandomNormal(g, h.Shape()), 0.1), 1))
	}
	return dense(ctx.In("dense_1"), h, testC)
}

func crossEntropy(logits, labels *graph.Node) *graph.Node {
	oneHot := graph.OneHot(labels, logits.Shape().Dim(-1), logits.DType())
	return graph.Neg(graph.ReduceAllMean(graph.ReduceSum(graph.Mul(oneHot, graph.LogSoftmax(logits, -1)), -1)))
}

// mlpLoss is CE of the MLP under "/model", with a "ce" term and a "poison" term that is NaN when a
// batch carries an index >= 10000 and 0 otherwise.
func mlpLoss(ctx *context.Context, in Inputs) Loss {
	logits := mlp(ctx.In("model"), in.Images, true)
	ce := crossEntropy(logits, in.Labels)
	maxIdx := graph.ConvertDType(graph.ReduceAllMax(in.Indices), dtypes.Float32)
	poison := graph.MulScalar(graph.Log(graph.Sub(graph.Scalar(maxIdx.Graph(), dtypes.Float32, 5000), maxIdx)), 0)
	return Loss{Total: graph.Add(ce, poison), Terms: []Term{{"ce", ce}, {"poison", poison}}}
}

// snapshot copies every variable's raw bytes by scope and name.
func snapshot(ctx *context.Context) map[string][]byte {
	out := map[string][]byte{}
	for v := range ctx.IterVariables() {
		val, err := v.Value()
		if err != nil {
			panic(err)
		}
		var b []byte
		if val.Size() > 0 {
			_ = val.ConstBytes(func(d []byte) { b = append([]byte(nil), d...) })
		}
		out[v.ScopeAndName()] = b
	}
	return out
}

func closeTo(a, b, tol float64) bool { return math.Abs(a-b) <= tol*(1+math.Abs(b)) }
