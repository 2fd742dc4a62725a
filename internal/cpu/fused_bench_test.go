package cpu

import (
	"math"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
)

// geluGraph is the exact GELU, 0.5·x·(1 + erf(x/√2)), as the ViT builds it.
func geluGraph(x *graph.Node) *graph.Node {
	return graph.Mul(graph.MulScalar(x, 0.5), graph.OnePlus(graph.Erf(graph.MulScalar(x, 1/math.Sqrt2))))
}

// benchGELU measures GELU forward (and, with grad, its input gradient for an upstream gradient
// y) on [512, 17, 128] float32 (a ViT MLP activation), reporting nanoseconds of process CPU per
// element.
func benchGELU(b *testing.B, grad, fused bool) {
	rng := newRng(46)
	x := randTensor(rng, dtypes.Float32, 512, 17, 128)
	y := randTensor(rng, dtypes.Float32, 512, 17, 128)
	n := float64(x.Shape().Size())
	benchExec(b, testCPUWith(onOff("fusion", fused)), n, "Gelem/s", func(xs []*graph.Node) []*graph.Node {
		if !grad {
			return []*graph.Node{geluGraph(xs[0])}
		}
		return graph.Gradient(graph.ReduceAllSum(graph.Mul(geluGraph(xs[0]), xs[1])), xs[0])
	}, x, y)
}

func BenchmarkGELUForwardFused(b *testing.B)  { benchGELU(b, false, true) }
func BenchmarkGELUForwardOpByOp(b *testing.B) { benchGELU(b, false, false) }
func BenchmarkGELUGradFused(b *testing.B)     { benchGELU(b, true, true) }
func BenchmarkGELUGradOpByOp(b *testing.B)    { benchGELU(b, true, false) }

// BenchmarkTransposeHeads times the attention head split [512, 17, 4, 16] → [512, 4, 17, 16]
// (GB/s of read and written bytes).
func BenchmarkTransposeHeads(b *testing.B) {
	rng := newRng(47)
	x := randTensor(rng, dtypes.Float32, 512, 17, 4, 16)
	benchExec(b, testCPU(), 8*float64(x.Shape().Size()), "GB/s", func(xs []*graph.Node) []*graph.Node {
		return []*graph.Node{graph.TransposeAllAxes(xs[0], 0, 2, 1, 3)}
	}, x)
}

// BenchmarkAttentionDots times the per-head products of vit:nano's attention at batch 512
// (q·kᵀ [512, 4, 17, 16]·[512, 4, 17, 16] → [512, 4, 17, 17], then the scores times the values),
// in GFLOP/s.
func BenchmarkAttentionDots(b *testing.B) {
	rng := newRng(48)
	q := randTensor(rng, dtypes.Float32, 512, 4, 17, 16)
	k := randTensor(rng, dtypes.Float32, 512, 4, 17, 16)
	benchExec(b, testCPU(), 2*2*512*4*17*17*16, "GFLOP/s", func(xs []*graph.Node) []*graph.Node {
		scores := graph.DotGeneral(xs[0], []int{3}, []int{0, 1}, xs[1], []int{3}, []int{0, 1})
		return []*graph.Node{graph.DotGeneral(scores, []int{3}, []int{0, 1}, xs[1], []int{2}, []int{0, 1})}
	}, q, k)
}

// BenchmarkLayerNormRowSum times the row sums of LayerNorm statistics on [512·17, 64] (GB/s read).
func BenchmarkLayerNormRowSum(b *testing.B) {
	rng := newRng(49)
	x := randTensor(rng, dtypes.Float32, 512, 17, 64)
	benchExec(b, testCPU(), 4*float64(x.Shape().Size()), "GB/s", func(xs []*graph.Node) []*graph.Node {
		return []*graph.Node{graph.ReduceSum(xs[0], 2)}
	}, x)
}

// BenchmarkBiasGradSum times the column sums of a bias gradient on [512·17, 64] (GB/s read).
func BenchmarkBiasGradSum(b *testing.B) {
	rng := newRng(50)
	x := randTensor(rng, dtypes.Float32, 512*17, 64)
	benchExec(b, testCPU(), 4*float64(x.Shape().Size()), "GB/s", func(xs []*graph.Node) []*graph.Node {
		return []*graph.Node{graph.ReduceSum(xs[0], 0)}
	}, x)
}

// BenchmarkChannelShuffle times ShuffleNetV2's channel shuffle on [64, 16, 16, 116] (the two
// halves of the channels interleaved: [.., 2, 58] → [.., 58, 2]) and its gradient (the other way
// round), in GB/s of read and written bytes.
func BenchmarkChannelShuffle(b *testing.B) {
	for _, dir := range []struct {
		name string
		dims []int
	}{{"forward", []int{64, 16, 16, 2, 58}}, {"backward", []int{64, 16, 16, 58, 2}}} {
		b.Run(dir.name, func(b *testing.B) {
			x := randTensor(newRng(50), dtypes.Float32, dir.dims...)
			benchExec(b, testCPU(), 8*float64(x.Shape().Size()), "GB/s", func(xs []*graph.Node) []*graph.Node {
				return []*graph.Node{graph.TransposeAllAxes(xs[0], 0, 1, 2, 4, 3)}
			}, x)
		})
	}
}
