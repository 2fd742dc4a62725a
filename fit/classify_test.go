package fit

import (
	"math"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/ifa-toolkit/ifa/internal/testutil"
)

// TestCrossEntropyAndTop1 checks the loss terms against a float64 reference.
func TestCrossEntropyAndTop1(t *testing.T) {
	logits := [][]float32{{1, 2, 3}, {0.5, -1, 0.25}, {10, 10, -3}, {0, 0, 0}}
	labels := []int32{2, 1, 1, 0}
	var want, hits float64
	for i, row := range logits {
		var mx, s float64 = math.Inf(-1), 0
		best := 0
		for k, v := range row {
			mx = math.Max(mx, float64(v))
			if v > row[best] {
				best = k
			}
		}
		for _, v := range row {
			s += math.Exp(float64(v) - mx)
		}
		want += -(float64(row[labels[i]]) - mx - math.Log(s))
		if best == int(labels[i]) {
			hits++
		}
	}
	want /= float64(len(logits))
	exec, err := graph.NewExec(testutil.Backend(), func(l, y *graph.Node) (*graph.Node, *graph.Node) {
		return CrossEntropy(l, y), BatchTop1(l, y)
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Exec(tensors.FromValue(logits), tensors.FromValue(labels))
	if err != nil {
		t.Fatal(err)
	}
	if got := float64(tensors.ToScalar[float32](out[0])); math.Abs(got-want) > 1e-5 {
		t.Errorf("cross-entropy %v, want %v", got, want)
	}
	// Rows 0 and 3 are hits (row 3 ties at index 0); row 2 ties between 0 and 1, label 1 misses.
	if got := float64(tensors.ToScalar[float32](out[1])); math.Abs(got-100*hits/4) > 1e-4 || hits != 2 {
		t.Errorf("top-1 %v%%, want %v%% (%v hits)", got, 100*hits/4, hits)
	}
}
