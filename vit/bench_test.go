package vit

import (
	"fmt"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/internal/testutil"
)

// BenchmarkTrainStep measures a forward and backward pass (gradients of every variable) of the
// small ViT and MLP-Mixer configs on a batch of 28x28x1 images: the work of one training step
// without the optimizer update.
func BenchmarkTrainStep(b *testing.B) {
	encoder := func(b *testing.B, kind, name string) func(*context.Context, *graph.Node) backbone.Features {
		if kind == "mixer" {
			c, err := GetMixer(name)
			if err != nil {
				b.Fatal(err)
			}
			m, err := NewMixer(c.WithClasses(10))
			if err != nil {
				b.Fatal(err)
			}
			return m.Features
		}
		c, err := Get(name)
		if err != nil {
			b.Fatal(err)
		}
		m, err := New(c.WithClasses(10))
		if err != nil {
			b.Fatal(err)
		}
		return m.Features
	}
	for _, kind := range []string{"vit", "mixer"} {
		for _, name := range []string{"nano", "micro"} {
			for _, batch := range []int{64, 256} {
				b.Run(fmt.Sprintf("%s_%s/B%d", kind, name, batch), func(b *testing.B) {
					features := encoder(b, kind, name)
					ctx := context.New()
					exec := context.MustNewExec(testutil.Backend(), ctx, func(ctx *context.Context, x *graph.Node) []*graph.Node {
						ctx.SetTraining(x.Graph(), true)
						f := features(ctx, x)
						loss := graph.ReduceAllMean(graph.Square(f.Logits))
						return append([]*graph.Node{loss}, ctx.BuildTrainableVariablesGradientsGraph(loss)...)
					})
					images := tensors.FromFlatDataAndDimensions(make([]float32, batch*28*28), batch, 28, 28, 1)
					exec.MustExec(images)
					b.ResetTimer()
					for b.Loop() {
						for _, t := range exec.MustExec(images) {
							_ = t.FinalizeAll()
						}
					}
					b.ReportMetric(float64(batch)*float64(b.N)/b.Elapsed().Seconds(), "images/s")
				})
			}
		}
	}
}
