package distill

import (
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/ifa-toolkit/ifa/internal/testutil"
)

// BenchmarkMethodLoss times one training-mode loss-and-gradient evaluation of each method on
// resnet56→resnet20-shaped CIFAR features (B = 64; CRD with N = 50,000 and K = 16,384).
func BenchmarkMethodLoss(b *testing.B) {
	r := testRand()
	feats := func() []host {
		return []host{randHost(r, 64, 32, 32, 16), randHost(r, 64, 32, 32, 16), randHost(r, 64, 16, 16, 32),
			randHost(r, 64, 8, 8, 64), randHost(r, 64, 64), randHost(r, 64, 100)}
	}
	sh, th := feats(), feats()
	const n = 50000
	labels := make([]int, n)
	for i := range labels {
		labels[i] = i % 100
	}
	indices, batchLabels := make([]int, 64), make([]int, 64)
	for i := range indices {
		indices[i], batchLabels[i] = 7*i, (7*i)%100
	}
	for _, name := range Names() {
		b.Run(name, func(b *testing.B) {
			m, _ := Get(name)
			ctx := context.New()
			var extra []*tensors.Tensor
			if hi, err := NewHostInputs(m, ctx, TrainSet{Labels: labels}); err != nil {
				b.Fatal(err)
			} else if hi != nil {
				if extra, err = hi.Make(0, indices, batchLabels); err != nil {
					b.Fatal(err)
				}
			}
			e := context.MustNewExec(testutil.Backend(), ctx, func(ctx *context.Context, xs []*graph.Node) []*graph.Node {
				ctx.SetTraining(xs[0].Graph(), true)
				loss := m.Loss(ctx, featuresOf(xs[:6]), featuresOf(xs[6:12]), Step{Extra: xs[12:], DatasetSize: n})
				loss = graph.Add(loss, graph.ReduceAllSum(graph.MulScalar(xs[4], 0)))
				return append([]*graph.Node{loss}, graph.Gradient(loss, xs[1], xs[2], xs[3], xs[4])...)
			})
			args := anys(append(toTensors(dtypes.Float32, append(append([]host(nil), sh...), th...)), extra...))
			if err := tryExec(func() { e.MustExec(args...) }); err != nil {
				b.Skipf("%s: %v", name, err)
			}
			for b.Loop() {
				e.MustExec(args...)
			}
		})
	}
}
