package testutil

import (
	"math"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// DrawBits runs draw on a fresh context whose random state starts from seed, on Backend, and
// returns the bits of its values (as float64) followed by those of 5 uniforms drawn after it: two
// ways of drawing compare equal only when they give the same values and leave the generator in the
// same state.
func DrawBits(t testing.TB, seed int64, draw func(ctx *context.Context, g *graph.Graph) *graph.Node) []uint64 {
	t.Helper()
	ctx := context.New()
	ctx.SetParam(context.ParamInitialSeed, seed)
	got, err := context.ExecOnceN(Backend(), ctx, func(ctx *context.Context, g *graph.Graph) []*graph.Node {
		x := graph.ConvertDType(draw(ctx, g), dtypes.Float64)
		return []*graph.Node{x, ctx.RandomUniform(g, shapes.Make(dtypes.Float64, 5))}
	})
	if err != nil {
		t.Fatal(err)
	}
	var bits []uint64
	for _, x := range got {
		for _, v := range tensors.MustCopyFlatData[float64](x) {
			bits = append(bits, math.Float64bits(v))
		}
	}
	return bits
}
