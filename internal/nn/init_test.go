package nn

import (
	"math"
	"slices"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"

	"github.com/ifa-toolkit/ifa/internal/testutil"
)

var drawShapes = []shapes.Shape{
	shapes.Make(dtypes.Float32, 200, 100), shapes.Make(dtypes.Float32, 3, 5, 7), shapes.Make(dtypes.Float32, 1),
	shapes.Make(dtypes.Float32, 3, 3, 16, 64), shapes.Make(dtypes.Float64, 3, 3), shapes.Make(dtypes.Float64, 4, 6),
}

// TestNormalDrawsSameBitsAsRandomNormal checks NormalDraws' single generator call against the
// separate ctx.RandomNormal calls it stands for on the cpu backend, for sizes that fill the
// generator's 128-bit blocks and sizes that do not: the same values, row by row, and the same next
// draw.
func TestNormalDrawsSameBitsAsRandomNormal(t *testing.T) {
	for _, draws := range []int{1, 3, 9} {
		for _, shape := range drawShapes {
			n := shape.Size()
			got := testutil.DrawBits(t, 7, func(ctx *context.Context, g *graph.Graph) *graph.Node {
				return NormalDraws(ctx, g, shape.DType, draws, n)
			})
			want := testutil.DrawBits(t, 7, func(ctx *context.Context, g *graph.Graph) *graph.Node {
				rows := make([]*graph.Node, draws)
				for k := range rows {
					rows[k] = graph.Reshape(ctx.RandomNormal(g, shapes.Make(shape.DType, n)), 1, n)
				}
				return graph.Concatenate(rows, 0)
			})
			if !slices.Equal(got, want) {
				t.Errorf("%d draws of %s: the bits (or the next draw) differ from %d RandomNormal calls'", draws, shape, draws)
			}
		}
	}
}

// TestNormalInitSameBitsAsRandomNormalFn checks that NormalInit draws what GoMLX's
// initializers.RandomNormalFn draws on the cpu backend (runs initialised before it keep their
// figures), and that it gives non-float variables zeros.
func TestNormalInitSameBitsAsRandomNormalFn(t *testing.T) {
	for _, shape := range drawShapes {
		got := testutil.DrawBits(t, 7, func(ctx *context.Context, g *graph.Graph) *graph.Node { return NormalInit(ctx, 0.3)(g, shape) })
		want := testutil.DrawBits(t, 7, func(ctx *context.Context, g *graph.Graph) *graph.Node {
			return initializers.RandomNormalFn(ctx, 0.3)(g, shape)
		})
		if !slices.Equal(got, want) {
			t.Errorf("%s: NormalInit's bits (or the next draw) differ from RandomNormalFn's", shape)
		}
	}
	ints := testutil.DrawBits(t, 7, func(ctx *context.Context, g *graph.Graph) *graph.Node {
		return NormalInit(ctx, 0.3)(g, shapes.Make(dtypes.Int32, 6))
	})
	if !slices.Equal(ints[:6], make([]uint64, 6)) {
		t.Errorf("NormalInit on an int32 variable gave %v, want zeros", ints[:6])
	}
}

// TestNormalDrawsMoments checks NormalDraws' distribution from the formula's side: 9×20000 values
// with mean 0 and variance 1 within 4 standard errors, and rows that are not copies of each other.
func TestNormalDrawsMoments(t *testing.T) {
	ctx := context.New()
	ctx.SetParam(context.ParamInitialSeed, int64(11))
	const draws, n = 9, 20000
	got, err := context.ExecOnce(testutil.Backend(), ctx, func(ctx *context.Context, g *graph.Graph) *graph.Node {
		return NormalDraws(ctx, g, dtypes.Float32, draws, n)
	})
	if err != nil {
		t.Fatal(err)
	}
	x := linTestValues(got)
	var sum, sq float64
	for _, v := range x {
		sum += v
		sq += v * v
	}
	total := float64(len(x))
	mean, variance := sum/total, sq/total-(sum/total)*(sum/total)
	if math.Abs(mean) > 4/math.Sqrt(total) || math.Abs(variance-1) > 4*math.Sqrt(2/total) {
		t.Errorf("mean %g, variance %g; want 0 and 1", mean, variance)
	}
	if slices.Equal(x[:n], x[n:2*n]) {
		t.Error("rows 0 and 1 are equal")
	}
}
