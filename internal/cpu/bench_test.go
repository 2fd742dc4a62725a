package cpu

import (
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

func benchExec(b *testing.B, be backends.Backend, flops float64, fn func(xs []*graph.Node) []*graph.Node, inputs ...*tensors.Tensor) {
	exec, err := graph.NewExec(be, fn)
	if err != nil {
		b.Fatal(err)
	}
	defer exec.Finalize()
	args := make([]any, len(inputs))
	for i, in := range inputs {
		c, err := in.LocalClone()
		if err != nil {
			b.Fatal(err)
		}
		args[i] = c
	}
	run := func() {
		outs, err := exec.Exec(args...)
		if err != nil {
			b.Fatal(err)
		}
		for _, o := range outs {
			o.FinalizeAll()
		}
	}
	run() // compile
	b.ResetTimer()
	for b.Loop() {
		run()
	}
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func matmulFn(xs []*graph.Node) []*graph.Node { return []*graph.Node{graph.MatMul(xs[0], xs[1])} }

// BenchmarkMatMul1024 measures a 1024³ float32 product on the cpu backend.
func BenchmarkMatMul1024(b *testing.B) {
	rng := newRng(40)
	x := randTensor(rng, dtypes.Float32, 1024, 1024)
	y := randTensor(rng, dtypes.Float32, 1024, 1024)
	benchExec(b, testCPU(), 2*1024*1024*1024, matmulFn, x, y)
}

// BenchmarkMatMul1024SimpleGo is the same product on GoMLX's simplego, for the ratio.
func BenchmarkMatMul1024SimpleGo(b *testing.B) {
	rng := newRng(40)
	x := randTensor(rng, dtypes.Float32, 1024, 1024)
	y := randTensor(rng, dtypes.Float32, 1024, 1024)
	benchExec(b, testSimpleGo(), 2*1024*1024*1024, matmulFn, x, y)
}

// benchConv measures forward + backward (input and kernel gradients) of a 3×3 "same" convolution,
// NHWC/HWIO, counting 3× the forward flops.
func benchConv(b *testing.B, batch, hw, cin, cout int) {
	rng := newRng(41)
	x := randTensor(rng, dtypes.Float32, batch, hw, hw, cin)
	k := randTensor(rng, dtypes.Float32, 3, 3, cin, cout)
	flops := 3 * 2 * float64(batch*hw*hw*9*cin*cout)
	benchExec(b, testCPU(), flops, func(xs []*graph.Node) []*graph.Node {
		y := graph.Convolve(xs[0], xs[1]).PadSame().Done()
		loss := graph.ReduceAllSum(y)
		return graph.Gradient(loss, xs[0], xs[1])
	}, x, k)
}

func BenchmarkConv3x3FwdBwd32x32x64(b *testing.B) { benchConv(b, 64, 32, 64, 64) }
func BenchmarkConv3x3FwdBwd8x8x256(b *testing.B)  { benchConv(b, 64, 8, 256, 256) }
