package data

import (
	"iter"

	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// Batch is one mini-batch on the host, ready to feed a GoMLX graph.
type Batch struct {
	// Images: float32, normalised. [B, H, W, C] for a single view, [B, V, H, W, C] for V > 1 views of
	// each image (view-major within an image: Images[i, v] is view v of image i).
	Images *tensors.Tensor
	// Labels: int32 [B] class ids.
	Labels *tensors.Tensor
	// Indices: int32 [B], the dataset index of each image (CRD's memory banks need it).
	Indices *tensors.Tensor
	// Size is B, the number of images in the batch.
	Size int
}

// Loader yields mini-batches epoch after epoch.
//
// Epoch(e) is deterministic: the same loader configuration and seed give the same batches for the
// same e, whatever the number of worker goroutines, so a resumed run sees exactly the batches the
// uninterrupted run would have seen.
type Loader interface {
	// Epoch iterates over the batches of epoch e (0-based). Stopping the iteration early releases
	// the workers. An error (e.g. a failed read) ends the iteration.
	Epoch(e int) iter.Seq2[Batch, error]
	// StepsPerEpoch is the number of batches Epoch yields.
	StepsPerEpoch() int
	// NumExamples is the number of images the loader draws from.
	NumExamples() int
}
