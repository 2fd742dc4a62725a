package distill

import (
	"math"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/internal/testutil"
)

func refVIDLoss(mean, target host, variance []float64) float64 {
	c := len(variance)
	s := 0.0
	for i := range mean.data {
		v := variance[i%c]
		d := mean.data[i] - target.data[i]
		s += 0.5 * (d*d/v + math.Log(v))
	}
	return s / float64(len(mean.data))
}

func vidFn(xs []*graph.Node) *graph.Node { return VIDLoss(xs[0], xs[1], xs[2]) }

func positiveHost(r interface{ NormFloat64() float64 }, n int) host {
	h := newHost(n)
	for i := range h.data {
		h.data[i] = 0.3 + math.Abs(r.NormFloat64())
	}
	return h
}

func TestVIDLossReference(t *testing.T) {
	r := testRand()
	mean, target, variance := randHost(r, 2, 3, 3, 4), randHost(r, 2, 3, 3, 4), positiveHost(r, 4)
	want := refVIDLoss(mean, target, variance.data)
	assertClose(t, "VIDLoss f64", evalScalar(t, dtypes.Float64, vidFn, mean, target, variance), want, 1e-13)
	assertClose(t, "VIDLoss f32", evalScalar(t, dtypes.Float32, vidFn, mean, target, variance), want, 1e-5)
}

func TestVIDLossClosedForms(t *testing.T) {
	r := testRand()
	x := randHost(r, 2, 2, 2, 3)
	one := host{dims: []int{3}, data: []float64{1, 1, 1}}
	assertClose(t, "VIDLoss(x, x, 1)", evalScalar(t, dtypes.Float64, vidFn, x, x, one), 0, 0)
	five := host{dims: []int{3}, data: []float64{5, 5, 5}}
	assertClose(t, "VIDLoss(x, x, 5)", evalScalar(t, dtypes.Float64, vidFn, x, x, five), 0.5*math.Log(5), 1e-15)
}

func TestVIDLossGradient(t *testing.T) {
	r := testRand()
	ins := []host{randHost(r, 2, 2, 2, 3), randHost(r, 2, 2, 2, 3), positiveHost(r, 3)}
	checkGradient(t, "VIDLoss d/dmean", vidFn, ins, 0, 1e-6)
	checkGradient(t, "VIDLoss d/dvariance", vidFn, ins, 2, 1e-6)
}

// TestVIDMethodReference runs the registry's VID (regressors, variance, pooling) and recomputes it
// naively from the variables it created.
func TestVIDMethodReference(t *testing.T) {
	r := testRand()
	// Stages f0..f2: VID uses f1 and f2; f1 pairs a larger student map with a smaller teacher one.
	s1, s2 := randHost(r, 2, 4, 4, 2), randHost(r, 2, 2, 2, 3)
	t1, t2 := randHost(r, 2, 2, 2, 3), randHost(r, 2, 2, 2, 4)
	stem := randHost(r, 2, 4, 4, 1)
	ctx := context.New()
	e := context.MustNewExec(testutil.Backend(), ctx, func(ctx *context.Context, xs []*graph.Node) *graph.Node {
		s := backbone.Features{Stages: []*graph.Node{xs[0], xs[1], xs[2]}}
		te := backbone.Features{Stages: []*graph.Node{xs[0], xs[3], xs[4]}}
		return VID{}.Loss(ctx, s, te, Step{})
	})
	got := floats(e.MustExec(stem.tensor(dtypes.Float64), s1.tensor(dtypes.Float64), s2.tensor(dtypes.Float64),
		t1.tensor(dtypes.Float64), t2.tensor(dtypes.Float64))[0])[0]

	varValue := func(scope, name string) []float64 {
		v := ctx.InspectVariable(scope, name)
		if v == nil {
			t.Fatalf("variable %s/%s missing", scope, name)
		}
		return floats(v.MustValue())
	}
	want := 0.0
	for l, pair := range [][2]host{{s1, t1}, {s2, t2}} {
		s, tt := refMatch(pair[0], pair[1])
		scope := "/vid/layer_" + string(rune('0'+l))
		theta := varValue(scope, "log_scale")
		variance := make([]float64, len(theta))
		for c, th := range theta {
			variance[c] = math.Log1p(math.Exp(th)) + 1e-5
			assertClose(t, "initial variance", variance[c], 5, 1e-12)
		}
		x := s
		for k := 0; k < 3; k++ {
			w := varValue(scope+"/regressor/conv_"+string(rune('0'+k)), "weights") // [cin, cout]
			cin := x.dims[3]
			cout := len(w) / cin
			y := newHost(x.dims[0], x.dims[1], x.dims[2], cout)
			for p := 0; p < len(x.data)/cin; p++ {
				for o := 0; o < cout; o++ {
					acc := 0.0
					for i := 0; i < cin; i++ {
						acc += x.data[p*cin+i] * w[i*cout+o]
					}
					if k < 2 && acc < 0 {
						acc = 0
					}
					y.data[p*cout+o] = acc
				}
			}
			x = y
		}
		want += refVIDLoss(x, tt, variance)
	}
	assertClose(t, "VID method loss", got, want, 1e-12)
	hp, err := VID{}.HeadParams(ctx, FeatureShapes{Stages: shapesOfHosts(stem, s1, s2)}, FeatureShapes{Stages: shapesOfHosts(stem, t1, t2)})
	if err != nil {
		t.Fatal(err)
	}
	if n := trainableParams(ctx, "/vid"); hp.Params != n || hp.CountedTwice {
		t.Errorf("VID HeadParams = %+v, trainable variables hold %d", hp, n)
	}
}
