package cpu

import (
	"fmt"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
)

// BenchmarkConvStrided measures the resnet8x4 convolutions that Winograd does not take (batch 64):
// the downsampling ones (padding 1 for 3×3, none for 1×1, stride 2) — the forward convolution, its
// input gradient and its kernel gradient, each alone — and the 3-channel 3×3 stem (stride 1,
// padding 1; forward and kernel gradient: the input of the network needs no gradient). GFLOP/s
// counts the direct product's 2·outPixels·KH·KW·InC·OutC flops.
func BenchmarkConvStrided(b *testing.B) {
	for _, l := range []struct {
		hw, k, s, cin, cout int
	}{{32, 3, 2, 64, 128}, {16, 3, 2, 128, 256}, {32, 1, 2, 64, 128}, {16, 1, 2, 128, 256}, {32, 3, 1, 3, 32}} {
		for _, part := range []string{"forward", "input_grad", "kernel_grad"} {
			if l.cin == 3 && part == "input_grad" {
				continue
			}
			b.Run(fmt.Sprintf("%dx%dx%dto%d_k%d_s%d/%s", l.hw, l.hw, l.cin, l.cout, l.k, l.s, part), func(b *testing.B) {
				rng := newRng(47)
				ohw := l.hw / l.s
				x := randTensor(rng, dtypes.Float32, 64, l.hw, l.hw, l.cin)
				k := randTensor(rng, dtypes.Float32, l.k, l.k, l.cin, l.cout)
				r := randTensor(rng, dtypes.Float32, 64, ohw, ohw, l.cout)
				pad := l.k / 2
				flops := 2 * float64(64*ohw*ohw*l.k*l.k*l.cin*l.cout)
				benchExec(b, testCPU(), flops, "GFLOP/s", func(xs []*graph.Node) []*graph.Node {
					y := graph.Convolve(xs[0], xs[1]).PaddingPerDim([][2]int{{pad, pad}, {pad, pad}}).Strides(l.s).Done()
					switch part {
					case "forward":
						return []*graph.Node{y}
					case "input_grad":
						return graph.Gradient(graph.ReduceAllSum(graph.Mul(y, xs[2])), xs[0])
					}
					return graph.Gradient(graph.ReduceAllSum(graph.Mul(y, xs[2])), xs[1])
				}, x, k, r)
			})
		}
	}
}
