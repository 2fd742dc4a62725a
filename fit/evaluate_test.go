package fit

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/internal/testutil"
)

// Evaluate against a naive float64 reference: logits are the "images" themselves, with ties, a
// partial last batch and more than 5 classes.
func TestEvaluateMatchesReference(t *testing.T) {
	const n, c, b = 23, 7, 5
	rng := rand.New(rand.NewPCG(5, 5))
	l := &memLoader{x: make([]float32, n*c), y: make([]int32, n), n: n, d: c, batch: b, seed: 1}
	for i := range n {
		l.y[i] = int32(rng.IntN(c))
		for j := range c {
			// Few distinct values: many ties, including with the true class.
			l.x[i*c+j] = float32(rng.IntN(4))
		}
	}
	// Reference: rank = #{j: x_j > x_y} + #{j < y: x_j == x_y}; top-k hit when rank < k.
	var top1, top5, ce float64
	for i := range n {
		y := int(l.y[i])
		row := l.x[i*c : (i+1)*c]
		rank := 0
		maxv := math.Inf(-1)
		for j, v := range row {
			if v > row[y] || (v == row[y] && j < y) {
				rank++
			}
			maxv = math.Max(maxv, float64(v))
		}
		if rank < 1 {
			top1++
		}
		if rank < 5 {
			top5++
		}
		sum := 0.0
		for _, v := range row {
			sum += math.Exp(float64(v) - maxv)
		}
		ce += -(float64(row[y]) - maxv - math.Log(sum))
	}
	want := Accuracy{Top1: 100 * top1 / n, Top5: 100 * top5 / n, Loss: ce / n, N: n}
	ctx := context.New()
	got, err := Evaluate(testutil.Backend(), ctx, l, func(ctx *context.Context, x *graph.Node) *graph.Node {
		if ctx.IsTraining(x.Graph()) {
			panic("evaluation must run in evaluation mode")
		}
		return x
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.N != want.N || !closeTo(got.Top1, want.Top1, 1e-12) || !closeTo(got.Top5, want.Top5, 1e-12) || !closeTo(got.Loss, want.Loss, 1e-6) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if want.Top1 == 0 || want.Top1 == 100 || want.Top5 == want.Top1 {
		t.Errorf("test premise: reference %+v should be non-trivial", want)
	}
	m := got.Metrics("test_")
	if m["test_top1"] != got.Top1 || m["test_top5"] != got.Top5 || m["test_loss"] != got.Loss {
		t.Errorf("metrics %v", m)
	}
}

// TestEvaluateRefusesNaNLogits: NaN logits would rank every true class first (100% top-1); the
// evaluation fails instead, naming the cause.
func TestEvaluateRefusesNaNLogits(t *testing.T) {
	l := &memLoader{x: make([]float32, 6*3), y: make([]int32, 6), n: 6, d: 3, batch: 4, seed: 1}
	_, err := Evaluate(testutil.Backend(), context.New(), l, func(ctx *context.Context, x *graph.Node) *graph.Node {
		return graph.Div(x, x) // 0/0
	})
	if err == nil || !strings.Contains(err.Error(), "non-finite logits") {
		t.Errorf("err = %v, want the non-finite logits refused", err)
	}
}
