package cnn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/internal/cpu"
	"github.com/ifa-toolkit/ifa/internal/cpu/kernels"
)

// TestResNetFusionSameBits checks that resnet8x4's training-mode logits and the gradients of all
// its trainable variables and of the images are the same bits with the cpu backend's compile-time
// fusions (batch norm with ReLU, residual sum, ReLU mask and shortcut normalisation, elementwise
// programs) as op by op, on every kernel path the processor has.
func TestResNetFusionSameBits(t *testing.T) {
	spec, err := Get("resnet8x4")
	if err != nil {
		t.Fatal(err)
	}
	const batch, classes = 4, 10
	run := func(config string) [][]float32 {
		be, err := cpu.New(config)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(21, 22))
		ctx := context.New()
		ctx.SetParam(context.ParamInitialSeed, int64(3))
		x32, _ := randomInput(rng, batch, 32, 32, 3)
		w32, _ := randomInput(rng, batch, 1, 1, classes)
		outs, err := context.ExecOnceN(be, ctx, func(ctx *context.Context, x, w *graph.Node) []*graph.Node {
			g := x.Graph()
			ctx.SetTraining(g, true)
			f := spec.Build(ctx, x, classes)
			loss := graph.ReduceAllSum(graph.Mul(f.Logits, graph.Reshape(w, batch, classes)))
			var wrt []*graph.Node
			ctx.EnumerateVariables(func(v *context.Variable) {
				if v.Trainable {
					wrt = append(wrt, v.ValueGraph(g))
				}
			})
			return append(graph.Gradient(loss, append(wrt, x)...), f.Logits)
		}, tensors.FromFlatDataAndDimensions(x32, batch, 32, 32, 3),
			tensors.FromFlatDataAndDimensions(w32, batch, 1, 1, classes))
		if err != nil {
			t.Fatal(err)
		}
		vals := make([][]float32, len(outs))
		for i, o := range outs {
			vals[i] = tensors.MustCopyFlatData[float32](o)
		}
		return vals
	}
	for _, isa := range kernels.SupportedISAs() {
		t.Run(isa.String(), func(t *testing.T) {
			prev, err := kernels.SetISA(isa)
			if err != nil {
				t.Fatal(err)
			}
			defer kernels.SetISA(prev)
			fused, plain := run("fusion=on"), run("fusion=off")
			for i := range fused {
				for j := range fused[i] {
					if math.Float32bits(fused[i][j]) != math.Float32bits(plain[i][j]) {
						t.Fatalf("output %d element %d: fused %v, op by op %v", i, j, fused[i][j], plain[i][j])
					}
				}
			}
		})
	}
}
