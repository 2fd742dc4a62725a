package fit

import (
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// Inputs are the graph nodes of one mini-batch, as a LossFn receives them.
type Inputs struct {
	// Images: float32, [B, H, W, C] for one view or [B, V, H, W, C] for V views (data.Batch.Images).
	Images *graph.Node
	// Labels: int32 [B] class ids; nil when the loader gives none.
	Labels *graph.Node
	// Indices: int32 [B] dataset indices; nil when the loader gives none.
	Indices *graph.Node
}

// Term is one named component of a loss (e.g. "ce", "kd", "ifacd"), logged separately.
type Term struct {
	// Name is a short snake_case name; it becomes the metrics key "train_<name>".
	Name string
	// Value is a float scalar node.
	Value *graph.Node
}

// Loss is what a LossFn returns: the scalar that is minimised and its named parts.
type Loss struct {
	// Total is the float scalar that gradients are taken of.
	Total *graph.Node
	// Terms are logged (step logs and epoch means) but not differentiated; they need not sum to Total.
	Terms []Term
}

// LossFn builds the training loss of one batch. It runs inside graph building with ctx set to
// training mode (ctx.IsTraining(g) is true); it creates or reuses the model's variables in ctx.
// It may panic with a GoMLX graph-building error; Run turns that into an error.
type LossFn func(ctx *context.Context, in Inputs) Loss
