package eval

import (
	"fmt"
	"math"
)

// FeatureSet is a set of N feature vectors of width D on the host, with their class labels.
type FeatureSet struct {
	// X holds the features row-major: [N, D].
	X []float32
	// Labels: [N] class ids in [0, NumClasses).
	Labels []int32
	// N is the number of vectors and D their width.
	N, D int
}

// NewFeatureSet checks the sizes and wraps x [n, d] and labels [n] (not copied).
func NewFeatureSet(x []float32, labels []int32, n, d int) (FeatureSet, error) {
	f := FeatureSet{X: x, Labels: labels, N: n, D: d}
	return f, f.Validate()
}

// Validate checks that the sizes agree and that labels are non-negative.
func (f FeatureSet) Validate() error {
	switch {
	case f.N < 1 || f.D < 1:
		return fmt.Errorf("eval: feature set of %d vectors of width %d: want at least one vector of width >= 1", f.N, f.D)
	case len(f.X) != f.N*f.D:
		return fmt.Errorf("eval: feature set: %d values for %d vectors of width %d", len(f.X), f.N, f.D)
	case len(f.Labels) != f.N:
		return fmt.Errorf("eval: feature set: %d labels for %d vectors", len(f.Labels), f.N)
	}
	for i, l := range f.Labels {
		if l < 0 {
			return fmt.Errorf("eval: feature set: vector %d: label %d < 0", i, l)
		}
	}
	return nil
}

// Row returns vector i (a view into X).
func (f FeatureSet) Row(i int) []float32 { return f.X[i*f.D : (i+1)*f.D] }

// NumClasses is 1 + the largest label (0 for an empty set).
func (f FeatureSet) NumClasses() int {
	n := 0
	for _, l := range f.Labels {
		n = max(n, int(l)+1)
	}
	return n
}

// L2Normalized returns a copy whose rows have unit L2 norm (norms accumulated in float64). A zero
// row stays zero (its cosine similarity with everything is then 0).
func (f FeatureSet) L2Normalized() FeatureSet {
	out := f
	out.X = make([]float32, len(f.X))
	for i := range f.N {
		row := f.Row(i)
		var s float64
		for _, v := range row {
			s += float64(v) * float64(v)
		}
		if s == 0 {
			continue
		}
		inv := 1 / math.Sqrt(s)
		dst := out.X[i*f.D : (i+1)*f.D]
		for j, v := range row {
			dst[j] = float32(float64(v) * inv)
		}
	}
	return out
}

// Accuracy is a top-1 / top-5 result over N examples.
type Accuracy struct {
	// Top1 and Top5 are fractions in [0, 1].
	Top1, Top5 float64
	// Correct1 and Correct5 count the examples whose label is the first prediction, or among the
	// first five.
	Correct1, Correct5 int
	// N is the number of examples.
	N int
}

// String formats the accuracy as percentages.
func (a Accuracy) String() string {
	return fmt.Sprintf("top-1 %.2f%%, top-5 %.2f%% (n=%d)", 100*a.Top1, 100*a.Top5, a.N)
}

// accumulate counts one example whose label has rank `rank` (0-based) in the predictions, or
// rank < 0 when it is not ranked.
func (a *Accuracy) accumulate(rank int) {
	a.N++
	if rank == 0 {
		a.Correct1++
	}
	if rank >= 0 && rank < 5 {
		a.Correct5++
	}
}

func (a *Accuracy) finish() {
	if a.N > 0 {
		a.Top1 = float64(a.Correct1) / float64(a.N)
		a.Top5 = float64(a.Correct5) / float64(a.N)
	}
}

// rankOf returns the rank (0-based) of class label among scores, ordered by descending score with
// ties broken by ascending class index: the number of classes that come before it.
func rankOf(scores []float64, label int) int {
	if label < 0 || label >= len(scores) {
		return -1
	}
	s := scores[label]
	rank := 0
	for c, v := range scores {
		if v > s || (v == s && c < label) {
			rank++
		}
	}
	return rank
}

// TopK returns the k best classes of scores, by descending score and then ascending class index.
func TopK(scores []float64, k int) []int {
	k = min(k, len(scores))
	out := make([]int, 0, k)
	used := make([]bool, len(scores))
	for range k {
		best := -1
		for c, v := range scores {
			if !used[c] && (best < 0 || v > scores[best]) {
				best = c
			}
		}
		used[best] = true
		out = append(out, best)
	}
	return out
}
