package ssl

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/internal/testutil"
)

// The contrastive methods give, through the registry, the losses the code before the registry gave
// (the constants were printed by that code, commit 26a9855, on the same inputs and initialisation:
// identical bits on the cpu backend; the comparison allows float64 rounding so that a backend
// reordering its float64 sums does not break it).
func TestCLRLossesUnchangedByRegistry(t *testing.T) {
	want := map[Method]uint64{MethodLWCLR: 0x400b9d3296cd0370, MethodSimLWCLR: 0x400eb62715a24dad, MethodSimCLR: 0x400328218fd94c4c, MethodSupCon: 0x40071d4bc6a619f6}
	rng := rand.New(rand.NewPCG(21, 22))
	one := randImages(rng, 6, 2, 2, 1)
	two := randImages(rng, 6, 2, 2, 2, 1)
	labels := tensors.FromFlatDataAndDimensions([]int32{0, 1, 2, 0, 1, 2}, 6)
	for _, m := range []Method{MethodLWCLR, MethodSimLWCLR, MethodSimCLR, MethodSupCon} {
		cfg := DefaultPretrainConfig()
		cfg.Method = m
		cfg.Layers = backbone.LayerSelect{Last: 3}
		cfg.Projector = HeadConfig{Layers: 2, Hidden: 8, Out: 4, Norm: NormBatch, Act: ActReLU}
		ctx := context.New()
		_ = ctx.SetRNGStateFromSeed(5)
		x := two
		if m == MethodLWCLR {
			x = one
		}
		exec, _ := context.NewExec(testutil.Backend(), ctx, func(ctx *context.Context, x, y *graph.Node) *graph.Node {
			ctx.SetTraining(x.Graph(), true)
			return PretrainLoss(ctx, toyEncoder([]int{5, 5, 5, 5}), cfg, x, y).Loss
		})
		out, err := exec.Exec(x, labels)
		if err != nil {
			t.Fatal(err)
		}
		v, w := toF64(out[0])[0], math.Float64frombits(want[m])
		if math.Abs(v-w) > 1e-14*w {
			t.Errorf("%s: loss %.17g (%#x), the pre-registry code gave %.17g (%#x)", m, v, math.Float64bits(v), w, want[m])
		}
	}
}
