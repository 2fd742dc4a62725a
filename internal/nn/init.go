package nn

import (
	"math"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"
)

// NormalInit returns an initializer drawing N(0, std²) values for float variables (zeros for
// others) from ctx's random state: for float32 and float64 the values of
// initializers.RandomNormalFn(ctx, std), bit for bit on the cpu backend, from one generator call
// instead of two (NormalDraws); half-precision variables, which RandomNormalFn leaves at zero, are
// drawn too. XLA expands every
// generator call into its own rounds of integer arithmetic, so the initialisation graph compiles
// faster with half the calls.
func NormalInit(ctx *context.Context, std float64) initializers.VariableInitializer {
	return func(g *graph.Graph, shape shapes.Shape) *graph.Node {
		if !shape.DType.IsFloat() {
			return graph.Zeros(g, shape)
		}
		z := NormalDraws(ctx, g, shape.DType, 1, shape.Size())
		return graph.Reshape(graph.MulScalar(z, std), shape.Dimensions...)
	}
}

// DrawWords returns the random words a draw of n uniforms of dtype dt takes from the generator:
// n rounded up to whole 128-bit blocks, of 4 uint32 words (2 uint64 for Float64).
func DrawWords(dt dtypes.DType, n int) int {
	perBlock := 4
	if dt == dtypes.Float64 {
		perBlock = 2
	}
	return (n + perBlock - 1) / perBlock * perBlock
}

// NormalDraws returns [draws, n] standard normal values of dtype dt (a float type) from one call of
// ctx's random generator: uniforms [draws, 2, DrawWords(dt, n)] and Box–Muller on each pair,
// √(−2·ln u₁)·cos(2π·u₂), with u₁ kept above the dtype's smallest positive value. Row k's values
// and the generator's state afterwards are those of draws calls of ctx.RandomNormal(g, [n]) on a
// generator whose counter advances by the blocks it draws (ifa's cpu backend's Philox): each of
// those calls takes its u₁ and then its u₂ from whole blocks, the words past n unused.
func NormalDraws(ctx *context.Context, g *graph.Graph, dt dtypes.DType, draws, n int) *graph.Node {
	m := DrawWords(dt, n)
	u := ctx.RandomUniform(g, shapes.Make(dt, draws, 2, m))
	if m != n {
		u = graph.Slice(u, graph.AxisRange(), graph.AxisRange(), graph.AxisRange(0, n))
	}
	u1 := graph.Max(SelectIndex(u, 1, 0), graph.Const(g, dt.SmallestNonZeroValueForDType()))
	u2 := SelectIndex(u, 1, 1)
	return graph.Mul(graph.Sqrt(graph.MulScalar(graph.Log(u1), -2)), graph.Cos(graph.MulScalar(u2, 2*math.Pi)))
}
