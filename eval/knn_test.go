package eval

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/ifa-toolkit/ifa/internal/testutil"
)

// refKNN is the naive float64 weighted kNN: full sort of all similarities.
func refKNN(bank, queries FeatureSet, s KNNSetting, numClasses int) Accuracy {
	norm := func(x []float32) []float64 {
		var n float64
		for _, v := range x {
			n += float64(v) * float64(v)
		}
		out := make([]float64, len(x))
		for i, v := range x {
			if n > 0 {
				out[i] = float64(v) / math.Sqrt(n)
			}
		}
		return out
	}
	var acc Accuracy
	for q := range queries.N {
		qv := norm(queries.Row(q))
		type nb struct {
			sim float64
			i   int
		}
		all := make([]nb, bank.N)
		for i := range bank.N {
			bv := norm(bank.Row(i))
			var dot float64
			for j := range qv {
				dot += qv[j] * bv[j]
			}
			all[i] = nb{dot, i}
		}
		sort.SliceStable(all, func(a, b int) bool { return all[a].sim > all[b].sim })
		scores := make([]float64, numClasses)
		for _, n := range all[:s.K] {
			scores[bank.Labels[n.i]] += math.Exp(n.sim / s.T)
		}
		top := TopK(scores, 5)
		label := int(queries.Labels[q])
		acc.N++
		if top[0] == label {
			acc.Correct1++
		}
		for _, c := range top {
			if c == label {
				acc.Correct5++
			}
		}
	}
	acc.finish()
	return acc
}

// clustered draws n vectors of width d around numClasses random centres.
func clustered(r *rand.Rand, centres [][]float64, n int, noise float64) FeatureSet {
	d := len(centres[0])
	f := FeatureSet{X: make([]float32, n*d), Labels: make([]int32, n), N: n, D: d}
	for i := range n {
		c := r.IntN(len(centres))
		f.Labels[i] = int32(c)
		for j := range d {
			f.X[i*d+j] = float32(centres[c][j] + noise*r.NormFloat64())
		}
	}
	return f
}

func randomCentres(r *rand.Rand, k, d int) [][]float64 {
	out := make([][]float64, k)
	for i := range out {
		out[i] = make([]float64, d)
		for j := range out[i] {
			out[i][j] = r.NormFloat64()
		}
	}
	return out
}

func TestKNNMatchesNaiveReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	centres := randomCentres(r, 8, 6)
	bank := clustered(r, centres, 300, 1.2)
	queries := clustered(r, centres, 53, 1.2)
	settings := []KNNSetting{{K: 10, T: 0.1}, {K: 1, T: 0.5}, {K: 300, T: 0.07}, {K: 37, T: 1}}
	for _, chunk := range []int{16, 53, 1000} {
		got, err := KNN(testutil.Backend(), bank, queries, KNNOptions{Settings: settings, NumClasses: 8, Chunk: chunk, Workers: 3})
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range settings {
			want := refKNN(bank, queries, s, 8)
			if got[i].Setting != s || got[i].Correct1 != want.Correct1 || got[i].Correct5 != want.Correct5 || got[i].N != want.N {
				t.Errorf("chunk %d %s: got %+v, want %+v", chunk, s, got[i], want)
			}
			if got[i].Correct1 == 0 || got[i].Correct5 == got[i].N && got[i].Correct1 == got[i].N {
				t.Errorf("chunk %d %s: degenerate test data: %v", chunk, s, got[i].Accuracy)
			}
		}
	}
}

func one(x []float32, label int32) FeatureSet {
	return FeatureSet{X: x, Labels: []int32{label}, N: 1, D: len(x)}
}

func TestKNNClosedForm(t *testing.T) {
	be := testutil.Backend()
	// Temperature decides between one close neighbour of class 0 and two farther ones of class 1:
	// T=0.1: exp(10) > exp(8)+exp(6); T=10: exp(0.1) < exp(0.08)+exp(0.06).
	bank := FeatureSet{X: []float32{1, 0, 0.8, 0.6, 0.6, 0.8}, Labels: []int32{0, 1, 1}, N: 3, D: 2}
	query := one([]float32{2, 0}, 0) // not unit norm: normalised inside
	for _, tc := range []struct {
		s     KNNSetting
		right bool
	}{{KNNSetting{3, 0.1}, true}, {KNNSetting{3, 10}, false}, {KNNSetting{1, 10}, true}} {
		res, err := KNN(be, bank, query, KNNOptions{Settings: []KNNSetting{tc.s}})
		if err != nil {
			t.Fatal(err)
		}
		if (res[0].Correct1 == 1) != tc.right || res[0].Correct5 != 1 {
			t.Errorf("%s: %+v, want top-1 correct = %v", tc.s, res[0], tc.right)
		}
	}

	// Equal similarities: the lower bank index wins the last neighbour slot; equal class scores:
	// the lower class wins.
	ties := FeatureSet{X: []float32{1, 0, 1, 0, 1, 0}, Labels: []int32{2, 1, 0}, N: 3, D: 2}
	for _, tc := range []struct {
		k     int
		label int32
	}{{1, 2}, {2, 1}, {3, 0}} {
		res, err := KNN(be, ties, one([]float32{3, 0}, tc.label), KNNOptions{Settings: []KNNSetting{{tc.k, 0.1}}})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Correct1 != 1 {
			t.Errorf("k=%d: want class %d predicted", tc.k, tc.label)
		}
	}

	// Top-5 fills with unvoted classes in index order: 7 classes, one neighbour of class 0.
	seven := FeatureSet{X: []float32{1, 0, 0, 1}, Labels: []int32{0, 6}, N: 2, D: 2}
	for _, tc := range []struct {
		label int32
		top5  int
	}{{3, 1}, {4, 1}, {5, 0}, {6, 1}} {
		// Label 6 is the second neighbour's class but k=1 leaves it unvoted: rank 6.
		if tc.label == 6 {
			tc.top5 = 0
		}
		res, err := KNN(be, seven, one([]float32{1, 0}, tc.label), KNNOptions{Settings: []KNNSetting{{1, 0.1}}, NumClasses: 7})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Correct5 != tc.top5 || res[0].Correct1 != 0 {
			t.Errorf("label %d: %+v, want top-5 %d", tc.label, res[0], tc.top5)
		}
	}
}

func TestSelectTopKWithTies(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for trial := range 50 {
		n := 1 + r.IntN(200)
		sim := make([]float32, n)
		for i := range sim {
			sim[i] = float32(r.IntN(7)) / 7 // many ties
		}
		k := 1 + r.IntN(n)
		got := selectTopK(sim, k, nil)
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return sim[idx[a]] > sim[idx[b]] })
		for i := range k {
			if int(got[i].index) != idx[i] || got[i].sim != sim[idx[i]] {
				t.Fatalf("trial %d (n=%d k=%d): position %d got %+v, want index %d", trial, n, k, i, got[i], idx[i])
			}
		}
	}
}

func TestKNNErrors(t *testing.T) {
	be := testutil.Backend()
	bank := FeatureSet{X: []float32{1, 0, 0, 1}, Labels: []int32{0, 1}, N: 2, D: 2}
	for name, tc := range map[string]struct {
		bank, q FeatureSet
		opts    KNNOptions
	}{
		"k too big":    {bank, one([]float32{1, 0}, 0), KNNOptions{Settings: []KNNSetting{{3, 0.1}}}},
		"bad T":        {bank, one([]float32{1, 0}, 0), KNNOptions{Settings: []KNNSetting{{1, 0}}}},
		"width":        {bank, one([]float32{1, 0, 0}, 0), KNNOptions{}},
		"labels":       {FeatureSet{X: []float32{1, 0}, Labels: []int32{0, 1}, N: 1, D: 2}, one([]float32{1, 0}, 0), KNNOptions{}},
		"self bank":    {bank, bank, KNNOptions{Settings: []KNNSetting{{1, 0.1}}}},
		"class range":  {bank, one([]float32{1, 0}, 0), KNNOptions{Settings: []KNNSetting{{1, 0.1}}, NumClasses: 1}},
		"empty bank":   {FeatureSet{}, one([]float32{1, 0}, 0), KNNOptions{}},
		"negative lab": {FeatureSet{X: []float32{1, 0}, Labels: []int32{-1}, N: 1, D: 2}, one([]float32{1, 0}, 0), KNNOptions{}},
	} {
		if _, err := KNN(be, tc.bank, tc.q, tc.opts); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}
