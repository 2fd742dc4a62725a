package cpu

import (
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/layers"
	"github.com/gomlx/gomlx/pkg/ml/train/losses"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"

	"github.com/ifa-toolkit/ifa/internal/nn"
)

// resBlockLogits is a small ResNet-style network: conv-BN-ReLU-conv-BN plus a 1×1 shortcut, ReLU,
// max-pool, mean-pool and a linear head. x: [B, H, W, C] → logits [B, classes].
func resBlockLogits(ctx *context.Context, x *graph.Node, classes int) *graph.Node {
	h := layers.Convolution(ctx.In("conv1"), x).Filters(8).KernelSize(3).PadSame().UseBias(false).Done()
	h = graph.Max(nn.BatchNorm(ctx.In("bn1"), h), graph.ScalarZero(h.Graph(), h.DType()))
	h = layers.Convolution(ctx.In("conv2"), h).Filters(8).KernelSize(3).PadSame().UseBias(false).Done()
	h = nn.BatchNorm(ctx.In("bn2"), h)
	short := layers.Convolution(ctx.In("shortcut"), x).Filters(8).KernelSize(1).UseBias(false).Done()
	h = graph.Max(graph.Add(h, short), graph.ScalarZero(h.Graph(), h.DType()))
	h = graph.MaxPool(h).Window(2).Done()
	h = graph.MeanPool(h).Window(2).Done()
	h = graph.Reshape(h, h.Shape().Dimensions[0], -1)
	return layers.DenseWithBias(ctx.In("head"), h, classes)
}

// TestTrainResNetBlock is the acceptance test: a ResNet-style block trains with GoMLX's Adam on the
// cpu backend and its loss goes down.
func TestTrainResNetBlock(t *testing.T) {
	rng := newRng(30)
	const batch, classes = 16, 4
	x := randTensor(rng, dtypes.Float32, batch, 8, 8, 3)
	labels := make([]int32, batch)
	for i := range labels {
		labels[i] = int32(i % classes)
	}
	y := tensors.FromFlatDataAndDimensions(labels, batch, 1)
	ctx := context.New()
	ctx.SetParam(optimizers.ParamLearningRate, 0.01)
	opt := optimizers.Adam().Done()
	step, err := context.NewExec(testCPU(), ctx, func(ctx *context.Context, x, y *graph.Node) *graph.Node {
		g := x.Graph()
		ctx.SetTraining(g, true)
		logits := resBlockLogits(ctx, x, classes)
		loss := losses.SparseCategoricalCrossEntropyLogits([]*graph.Node{y}, []*graph.Node{logits})
		loss = graph.ReduceAllMean(loss)
		opt.UpdateGraph(ctx, g, loss)
		return loss
	})
	if err != nil {
		t.Fatal(err)
	}
	var first, last float32
	for i := 0; i < 30; i++ {
		out, err := step.Exec(x, y)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		l := out[0].Value().(float32)
		if i == 0 {
			first = l
		}
		last = l
	}
	t.Logf("loss: first %.4f, last %.4f", first, last)
	if !(last < 0.5*first) {
		t.Fatalf("loss did not decrease enough: first %.4f, last %.4f", first, last)
	}
}
