package eval

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/data"
)

// Encoder maps images [B, H, W, C] to one feature vector per image, [B, D]. Extract builds it
// with the graph in evaluation mode (ctx.IsTraining is false: no dropout, batch norms use their
// running statistics).
type Encoder func(ctx *context.Context, images *graph.Node) *graph.Node

// Extract runs encoder over one pass (epoch 0) of loader and returns the features and labels on
// the host, in the loader's order. Use a loader without augmentation or shuffling for evaluation.
// Batches must hold a single view ([B, H, W, C], or [B, 1, H, W, C]).
//
// The encoder's variables are read from ctx (in its current scope). When ctx already holds
// variables they must all exist (the graph is built in reuse mode): a name that does not resolve
// is an error rather than a fresh random layer. With an empty ctx (or nil) the encoder may create
// and initialise its variables, e.g. for a random-initialisation baseline.
func Extract(backend backends.Backend, ctx *context.Context, encoder Encoder, loader data.Loader) (FeatureSet, error) {
	return ExtractWithProgress(backend, ctx, encoder, loader, nil)
}

// ExtractWithProgress is Extract that calls progress (when not nil) after every batch with the
// images done so far and the loader's total.
func ExtractWithProgress(backend backends.Backend, ctx *context.Context, encoder Encoder, loader data.Loader, progress func(done, total int)) (FeatureSet, error) {
	if ctx == nil {
		ctx = context.New()
	}
	if ctx.NumVariables() > 0 {
		ctx = ctx.Reuse()
	}
	exec, err := context.NewExec(backend, ctx, func(ctx *context.Context, images *graph.Node) *graph.Node {
		ctx.SetTraining(images.Graph(), false)
		if images.Rank() == 5 {
			if images.Shape().Dim(1) != 1 {
				panic(fmt.Errorf("batch of %d views per image: feature extraction wants one view", images.Shape().Dim(1)))
			}
			dims := images.Shape().Dimensions
			images = graph.Reshape(images, dims[0], dims[2], dims[3], dims[4])
		}
		out := encoder(ctx, images)
		if out.Rank() != 2 || out.Shape().Dim(0) != images.Shape().Dim(0) {
			panic(fmt.Errorf("encoder returned %s for %d images: want [B, D]", out.Shape(), images.Shape().Dim(0)))
		}
		return graph.ConvertDType(out, dtypes.Float32)
	})
	if err != nil {
		return FeatureSet{}, fmt.Errorf("eval: extract: %w", err)
	}
	var f FeatureSet
	step := 0
	for batch, err := range loader.Epoch(0) {
		if err != nil {
			return FeatureSet{}, fmt.Errorf("eval: extract: batch %d: %w", step, err)
		}
		if batch.Images == nil || batch.Labels == nil {
			return FeatureSet{}, fmt.Errorf("eval: extract: batch %d: missing images or labels", step)
		}
		out, err := exec.Exec1(batch.Images)
		if err != nil {
			return FeatureSet{}, fmt.Errorf("eval: extract: batch %d: %w", step, err)
		}
		b, d := out.Shape().Dim(0), out.Shape().Dim(1)
		feats, err := tensors.CopyFlatData[float32](out)
		_ = out.FinalizeAll()
		if err != nil {
			return FeatureSet{}, fmt.Errorf("eval: extract: batch %d: features: %w", step, err)
		}
		labels, err := tensors.CopyFlatData[int32](batch.Labels)
		if err != nil {
			return FeatureSet{}, fmt.Errorf("eval: extract: batch %d: labels: %w", step, err)
		}
		if len(labels) != b {
			return FeatureSet{}, fmt.Errorf("eval: extract: batch %d: %d labels for %d images", step, len(labels), b)
		}
		if f.D == 0 {
			f.D = d
		}
		f.X = append(f.X, feats...)
		f.Labels = append(f.Labels, labels...)
		f.N += b
		step++
		if progress != nil {
			progress(f.N, loader.NumExamples())
		}
	}
	if f.N == 0 {
		return FeatureSet{}, fmt.Errorf("eval: extract: the loader yielded no images")
	}
	return f, f.Validate()
}
