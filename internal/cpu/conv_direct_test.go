package cpu

import (
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// TestConvDirectVsBlocks checks the direct-packing float32 convolutions (forward, and the input
// and kernel gradients, which run as convolutions too) against the im2col-block path and the
// float64 naive definition, on random NHWC shapes with odd sizes, strides, dilations and
// asymmetric (also negative) padding, in 1-D and 2-D.
func TestConvDirectVsBlocks(t *testing.T) {
	rng := newRng(61)
	for ci := 0; ci < 24; ci++ {
		sd := 1 + ci%2
		batch := 1 + rng.IntN(3)
		cin, cout := 1+rng.IntN(9), 1+rng.IntN(21)
		if ci%3 == 1 {
			cin = directMinChannels + rng.IntN(9) // the forward direct path
		}
		if ci%6 == 0 {
			cin = 3 // the RGB first layer
		}
		in := []int{batch}
		kernel := []int{}
		strides, kDil := make([]int, sd), make([]int, sd)
		pads := make([][2]int, sd)
		for a := 0; a < sd; a++ {
			k := 1 + rng.IntN(4)
			kDil[a] = 1 + rng.IntN(2)
			strides[a] = 1 + rng.IntN(3)
			span := (k-1)*kDil[a] + 1
			size := span + 1 + rng.IntN(9)
			in = append(in, size)
			kernel = append(kernel, k)
			pads[a] = [2]int{rng.IntN(4) - 1, rng.IntN(3)}
		}
		in = append(in, cin)
		kernel = append(kernel, cin, cout)
		axes := nhwc
		if sd == 1 {
			axes.InputChannels, axes.InputSpatial = 2, []int{1}
			axes.KernelInputChannels, axes.KernelOutputChannels, axes.KernelSpatial = 1, 2, []int{0}
			axes.OutputChannels, axes.OutputSpatial = 2, []int{1}
		}
		c := convCase{in: in, kernel: kernel, axes: axes, strides: strides, kDil: kDil, pads: pads}
		// Forward and both gradients of sum(y * r) for a fixed random r.
		fn := func(xs []*graph.Node) []*graph.Node {
			y := c.build(xs[:2])[0]
			loss := graph.ReduceAllSum(graph.Mul(y, graph.Sin(graph.Iota(y.Graph(), y.Shape(), 0))))
			grads := graph.Gradient(loss, xs[0], xs[1])
			return []*graph.Node{y, grads[0], grads[1]}
		}
		x := randTensor(rng, dtypes.Float32, in...)
		k := randTensor(rng, dtypes.Float32, kernel...)
		want64, _ := runGraph(t, testCPU(), fn, toF64Tensor(t, x), toF64Tensor(t, k))
		var direct, blocks [][]float64
		direct, _ = runGraph(t, testCPUWith("directconv=on"), fn, x, k)
		blocks, _ = runGraph(t, testCPUWith("directconv=off"), fn, x, k)
		for i, name := range []string{"output", "input gradient", "kernel gradient"} {
			assertClose(t, direct[i], want64[i], 2e-5, "case %d %+v: %s direct vs float64", ci, c, name)
			assertClose(t, direct[i], blocks[i], 2e-5, "case %d %+v: %s direct vs blocks", ci, c, name)
		}
	}
}

// toF64Tensor returns a float64 copy of x.
func toF64Tensor(t *testing.T, x *tensors.Tensor) *tensors.Tensor {
	t.Helper()
	return tensors.FromFlatDataAndDimensions(tensorFloats(t, x), x.Shape().Dimensions...)
}

// BenchmarkConvDirect compares the direct-packing and im2col-block paths on resnet8x4 layers
// (batch 64): the forward convolution and the kernel gradient.
func BenchmarkConvDirect(b *testing.B) {
	for _, l := range []struct {
		name          string
		hw, cin, cout int
	}{{"32x32x3to32", 32, 3, 32}, {"32x32x64", 32, 64, 64}, {"16x16x128", 16, 128, 128}, {"8x8x256", 8, 256, 256}} {
		for _, part := range []string{"forward", "kernel_grad"} {
			for _, on := range []bool{true, false} {
				name := l.name + "/" + part + "/blocks"
				if on {
					name = l.name + "/" + part + "/direct"
				}
				b.Run(name, func(b *testing.B) {
					rng := newRng(41)
					x := randTensor(rng, dtypes.Float32, 64, l.hw, l.hw, l.cin)
					k := randTensor(rng, dtypes.Float32, 3, 3, l.cin, l.cout)
					flops := 2 * float64(64*l.hw*l.hw*9*l.cin*l.cout)
					benchExec(b, testCPUWith(onOff("directconv", on)), flops, "GFLOP/s", func(xs []*graph.Node) []*graph.Node {
						y := graph.Convolve(xs[0], xs[1]).PadSame().Done()
						if part == "forward" {
							return []*graph.Node{y}
						}
						return graph.Gradient(graph.ReduceAllSum(y), xs[1])
					}, x, k)
				})
			}
		}
	}
}
