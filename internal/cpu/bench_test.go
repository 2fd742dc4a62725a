package cpu

import (
	"math"
	"syscall"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// cpuSeconds is the process's user+system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// benchExec times fn on be and reports work/1e9 per second under unit (GFLOP/s, GB/s).
func benchExec(b *testing.B, be backends.Backend, work float64, unit string, fn func(xs []*graph.Node) []*graph.Node, inputs ...*tensors.Tensor) {
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
	cpu0 := cpuSeconds()
	for b.Loop() {
		run()
	}
	cpu := cpuSeconds() - cpu0
	b.ReportMetric(work*float64(b.N)/b.Elapsed().Seconds()/1e9, unit)
	// Per CPU-second of the process (all threads): steadier than wall time on a shared machine.
	b.ReportMetric(work*float64(b.N)/cpu/1e9, unit+"-per-cpu-s")
	b.ReportMetric(1000*cpu/float64(b.N), "cpu-ms/op")
}

func matmulFn(xs []*graph.Node) []*graph.Node { return []*graph.Node{graph.MatMul(xs[0], xs[1])} }

// BenchmarkMatMul1024 measures a 1024³ float32 product on the cpu backend.
func BenchmarkMatMul1024(b *testing.B) {
	rng := newRng(40)
	x := randTensor(rng, dtypes.Float32, 1024, 1024)
	y := randTensor(rng, dtypes.Float32, 1024, 1024)
	benchExec(b, testCPU(), 2*1024*1024*1024, "GFLOP/s", matmulFn, x, y)
}

// BenchmarkMatMul1024SimpleGo is the same product on GoMLX's simplego, for the ratio.
func BenchmarkMatMul1024SimpleGo(b *testing.B) {
	rng := newRng(40)
	x := randTensor(rng, dtypes.Float32, 1024, 1024)
	y := randTensor(rng, dtypes.Float32, 1024, 1024)
	benchExec(b, testSimpleGo(), 2*1024*1024*1024, "GFLOP/s", matmulFn, x, y)
}

// benchConv measures forward + backward (input and kernel gradients) of a 3×3 "same" convolution,
// NHWC/HWIO, counting 3× the forward flops.
func benchConv(b *testing.B, batch, hw, cin, cout int) {
	rng := newRng(41)
	x := randTensor(rng, dtypes.Float32, batch, hw, hw, cin)
	k := randTensor(rng, dtypes.Float32, 3, 3, cin, cout)
	flops := 3 * 2 * float64(batch*hw*hw*9*cin*cout)
	benchExec(b, testCPU(), flops, "GFLOP/s", func(xs []*graph.Node) []*graph.Node {
		y := graph.Convolve(xs[0], xs[1]).PadSame().Done()
		loss := graph.ReduceAllSum(y)
		return graph.Gradient(loss, xs[0], xs[1])
	}, x, k)
}

func BenchmarkConv3x3FwdBwd32x32x64(b *testing.B) { benchConv(b, 64, 32, 64, 64) }
func BenchmarkConv3x3FwdBwd8x8x256(b *testing.B)  { benchConv(b, 64, 8, 256, 256) }

// benchConvForward measures a 3×3 "same" convolution forward pass (NHWC/HWIO) with the given stride.
func benchConvForward(b *testing.B, batch, hw, cin, cout, stride int) {
	rng := newRng(42)
	x := randTensor(rng, dtypes.Float32, batch, hw, hw, cin)
	k := randTensor(rng, dtypes.Float32, 3, 3, cin, cout)
	ohw := (hw + stride - 1) / stride
	flops := 2 * float64(batch*ohw*ohw*9*cin*cout)
	benchExec(b, testCPU(), flops, "GFLOP/s", func(xs []*graph.Node) []*graph.Node {
		return []*graph.Node{graph.Convolve(xs[0], xs[1]).PadSame().Strides(stride).Done()}
	}, x, k)
}

// benchConvInputGrad measures the input gradient of a 3×3 convolution with padding 1 and the given
// stride (for stride 2: the transposed convolution of the downsampling layers).
func benchConvInputGrad(b *testing.B, batch, hw, cin, cout, stride int) {
	rng := newRng(43)
	x := randTensor(rng, dtypes.Float32, batch, hw, hw, cin)
	k := randTensor(rng, dtypes.Float32, 3, 3, cin, cout)
	ohw := (hw + stride - 1) / stride
	flops := 2 * float64(batch*ohw*ohw*9*cin*cout)
	benchExec(b, testCPU(), flops, "GFLOP/s", func(xs []*graph.Node) []*graph.Node {
		y := graph.Convolve(xs[0], xs[1]).PaddingPerDim([][2]int{{1, 1}, {1, 1}}).Strides(stride).Done()
		return graph.Gradient(graph.ReduceAllSum(graph.Mul(y, y)), xs[0])
	}, x, k)
}

func BenchmarkConvForward32x32x64(b *testing.B)           { benchConvForward(b, 64, 32, 64, 64, 1) }
func BenchmarkConvForward16x16x128(b *testing.B)          { benchConvForward(b, 64, 16, 128, 128, 1) }
func BenchmarkConvForward32x32x3(b *testing.B)            { benchConvForward(b, 64, 32, 3, 32, 1) }
func BenchmarkConvInputGradStride2x32x32x64(b *testing.B) { benchConvInputGrad(b, 64, 32, 64, 128, 2) }

// benchElementwise measures one elementwise graph on [64, 32, 32, 64] float32 tensors (a
// resnet8x4 stage-1 activation), reporting GB/s of operand and result traffic (bytesPerElem per
// element).
func benchElementwise(b *testing.B, bytesPerElem float64, fn func(xs []*graph.Node) []*graph.Node) {
	rng := newRng(44)
	x := randTensor(rng, dtypes.Float32, 64, 32, 32, 64)
	y := randTensor(rng, dtypes.Float32, 64, 32, 32, 64)
	benchExec(b, testCPU(), bytesPerElem*float64(x.Shape().Size()), "GB/s", fn, x, y)
}

func BenchmarkEltMul(b *testing.B) {
	benchElementwise(b, 12, func(xs []*graph.Node) []*graph.Node { return []*graph.Node{graph.Mul(xs[0], xs[1])} })
}

func BenchmarkEltReluGrad(b *testing.B) {
	benchElementwise(b, 9, func(xs []*graph.Node) []*graph.Node {
		g := xs[0].Graph()
		return []*graph.Node{graph.Where(graph.GreaterOrEqual(xs[0], graph.ZerosLike(xs[0])), xs[1], graph.ScalarZero(g, dtypes.Float32))}
	})
}

func BenchmarkEltChannelSum(b *testing.B) {
	benchElementwise(b, 4, func(xs []*graph.Node) []*graph.Node { return []*graph.Node{graph.ReduceSum(xs[0], 0, 1, 2)} })
}

// BenchmarkMatMulProjector measures the [128, 2048]·[2048, 2048] product of a wide projector head.
func BenchmarkMatMulProjector(b *testing.B) {
	rng := newRng(45)
	x := randTensor(rng, dtypes.Float32, 128, 2048)
	y := randTensor(rng, dtypes.Float32, 2048, 2048)
	benchExec(b, testCPU(), 2*128*2048*2048, "GFLOP/s", matmulFn, x, y)
}

// BenchmarkEltReLU is ReLU, Max(x, 0), on a resnet8x4 stage-1 activation; GB/s counts a read of x
// and a write of the result.
func BenchmarkEltReLU(b *testing.B) {
	benchElementwise(b, 8, func(xs []*graph.Node) []*graph.Node {
		return []*graph.Node{graph.Max(xs[0], graph.ScalarZero(xs[0].Graph(), dtypes.Float32))}
	})
}

// BenchmarkEltScaleShiftReLU is an inference batch norm followed by ReLU, Max(x·a + b, 0) with a
// and b per channel (a frozen teacher's layers), on a resnet8x4 stage-1 activation; GB/s counts a
// read of x and a write of the result.
func BenchmarkEltScaleShiftReLU(b *testing.B) {
	rng := newRng(45)
	x := randTensor(rng, dtypes.Float32, 64, 32, 32, 64)
	a := randTensor(rng, dtypes.Float32, 64)
	c := randTensor(rng, dtypes.Float32, 64)
	benchExec(b, testCPU(), 8*float64(x.Shape().Size()), "GB/s", func(xs []*graph.Node) []*graph.Node {
		g := xs[0].Graph()
		y := graph.Add(graph.Mul(xs[0], graph.Reshape(xs[1], 1, 1, 1, 64)), graph.Reshape(xs[2], 1, 1, 1, 64))
		return []*graph.Node{graph.Max(y, graph.ScalarZero(g, dtypes.Float32))}
	}, x, a, c)
}
