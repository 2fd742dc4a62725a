package eval

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// KNNSetting is one weighted-kNN configuration: K neighbours, temperature T.
type KNNSetting struct {
	K int
	T float64
}

// String formats the setting as "k=200,T=0.1".
func (s KNNSetting) String() string { return fmt.Sprintf("k=%d,T=%g", s.K, s.T) }

// DefaultKNNSettings are the settings reported by default (METHODS.md §5.1): k=200, T=0.1 (the
// InstDisc/lightly monitor) and k=20, T=0.07 (solo-learn's online kNN, with cosine similarity).
var DefaultKNNSettings = []KNNSetting{{K: 200, T: 0.1}, {K: 20, T: 0.07}}

// DefaultKNNChunk is the default number of queries per similarity graph call.
const DefaultKNNChunk = 256

// KNNOptions configures KNN.
type KNNOptions struct {
	// Settings to evaluate; nil means DefaultKNNSettings. All share one similarity computation.
	Settings []KNNSetting
	// NumClasses; 0 means 1 + the largest label of the bank and the queries.
	NumClasses int
	// Chunk is the number of queries per similarity graph call (DefaultKNNChunk if 0): the graph
	// output is [Chunk, N] float32.
	Chunk int
	// Workers is the number of goroutines selecting neighbours (GOMAXPROCS if 0).
	Workers int
}

// KNNResult is the accuracy of one setting.
type KNNResult struct {
	Setting KNNSetting
	Accuracy
}

// neighbour is one bank entry retrieved for a query.
type neighbour struct {
	sim   float32
	index int32
}

// better orders neighbours: higher similarity first, then lower bank index (deterministic ties).
func (a neighbour) better(b neighbour) bool {
	return a.sim > b.sim || (a.sim == b.sim && a.index < b.index)
}

// KNN evaluates weighted cosine kNN classification (METHODS.md §5.1): bank (the train-set
// features) and queries (the test-set features) are L2-normalised; each query takes its K most
// cosine-similar bank vectors; class c scores Σ_{neighbours j with label c} exp(sim_j / T); the
// prediction is the class ranking by descending score. Classes without a vote score 0 and rank
// after the voted ones; every tie (equal similarity, equal score) goes to the lower index, so the
// result is deterministic. The queries are never part of the bank.
//
// The similarities are computed on backend, Chunk queries at a time, as one [Chunk, D]·[N, D]ᵀ
// product per chunk; the neighbour selection and voting run in Go, in parallel over queries.
func KNN(backend backends.Backend, bank, queries FeatureSet, opts KNNOptions) ([]KNNResult, error) {
	if err := bank.Validate(); err != nil {
		return nil, fmt.Errorf("eval: knn: bank: %w", err)
	}
	if err := queries.Validate(); err != nil {
		return nil, fmt.Errorf("eval: knn: queries: %w", err)
	}
	if bank.D != queries.D {
		return nil, fmt.Errorf("eval: knn: bank width %d != query width %d", bank.D, queries.D)
	}
	if &bank.X[0] == &queries.X[0] {
		return nil, fmt.Errorf("eval: knn: the queries are the bank: every query would find itself (use the train set as the bank)")
	}
	settings := opts.Settings
	if settings == nil {
		settings = DefaultKNNSettings
	}
	kMax := 0
	for _, s := range settings {
		if s.K < 1 || !(s.T > 0) {
			return nil, fmt.Errorf("eval: knn: setting %s: want k >= 1 and T > 0", s)
		}
		kMax = max(kMax, s.K)
	}
	if kMax > bank.N {
		return nil, fmt.Errorf("eval: knn: k=%d exceeds the bank size %d", kMax, bank.N)
	}
	numClasses := opts.NumClasses
	if numClasses == 0 {
		numClasses = max(bank.NumClasses(), queries.NumClasses())
	}
	for i, l := range bank.Labels {
		if int(l) >= numClasses {
			return nil, fmt.Errorf("eval: knn: bank vector %d: label %d >= %d classes", i, l, numClasses)
		}
	}
	chunk := opts.Chunk
	if chunk <= 0 {
		chunk = DefaultKNNChunk
	}
	chunk = min(chunk, queries.N)
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}

	nb := bank.L2Normalized()
	nq := queries.L2Normalized()
	sims, err := newSimilarity(backend, nb, chunk)
	if err != nil {
		return nil, err
	}
	defer sims.close()

	results := make([]KNNResult, len(settings))
	for i, s := range settings {
		results[i].Setting = s
	}
	// A producer goroutine computes the similarities of the next chunk on the backend while the
	// neighbours of the current one are selected here.
	type simChunk struct {
		start, n int
		sim      *tensors.Tensor
		err      error
	}
	chunks := make(chan simChunk, 1)
	stop := make(chan struct{})
	var producer sync.WaitGroup
	producer.Add(1)
	go func() {
		defer producer.Done()
		defer close(chunks)
		for start := 0; start < nq.N; start += chunk {
			n := min(chunk, nq.N-start)
			t, err := sims.compute(nq.X[start*nq.D : (start+n)*nq.D])
			select {
			case chunks <- simChunk{start: start, n: n, sim: t, err: err}:
			case <-stop:
				if t != nil {
					_ = t.FinalizeAll()
				}
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer producer.Wait()
	defer close(stop)

	var mu sync.Mutex
	for c := range chunks {
		if c.err != nil {
			return nil, fmt.Errorf("eval: knn: queries %d..%d: %w", c.start, c.start+c.n-1, c.err)
		}
		err := tensors.ConstFlatData(c.sim, func(sim []float32) {
			parallelFor(c.n, workers, func(lo, hi int) {
				local := make([]Accuracy, len(settings))
				heap := make([]neighbour, 0, kMax)
				scores := make([]float64, numClasses)
				for q := lo; q < hi; q++ {
					heap = selectTopK(sim[q*nb.N:(q+1)*nb.N], kMax, heap[:0])
					label := int(nq.Labels[c.start+q])
					for si, s := range settings {
						voteScores(heap[:s.K], nb.Labels, s.T, scores)
						local[si].accumulate(rankOf(scores, label))
					}
				}
				mu.Lock()
				for si := range local {
					results[si].N += local[si].N
					results[si].Correct1 += local[si].Correct1
					results[si].Correct5 += local[si].Correct5
				}
				mu.Unlock()
			})
		})
		_ = c.sim.FinalizeAll()
		if err != nil {
			return nil, fmt.Errorf("eval: knn: queries %d..%d: %w", c.start, c.start+c.n-1, err)
		}
	}
	for i := range results {
		results[i].finish()
	}
	return results, nil
}

// voteScores fills scores[c] = Σ_{n in neighbours, label c} exp(sim_n / T).
func voteScores(neighbours []neighbour, labels []int32, temperature float64, scores []float64) {
	clear(scores)
	for _, n := range neighbours {
		scores[labels[n.index]] += math.Exp(float64(n.sim) / temperature)
	}
}

// selectTopK returns the k best entries of sim (by neighbour.better), best first, reusing buf.
// It keeps a min-heap of the k best seen so far, its root the worst of them. Entries are scanned in
// index order, so a later entry equal to the root is worse than it: one float comparison against
// the root's similarity rejects most entries.
func selectTopK(sim []float32, k int, buf []neighbour) []neighbour {
	k = min(k, len(sim))
	h := buf[:0]
	for j := range k {
		h = append(h, neighbour{sim: sim[j], index: int32(j)})
	}
	for p := k/2 - 1; p >= 0; p-- {
		siftDown(h, p)
	}
	if k > 0 {
		thr := h[0].sim
		for j := k; j < len(sim); j++ {
			if s := sim[j]; s > thr {
				h[0] = neighbour{sim: s, index: int32(j)}
				siftDown(h, 0)
				thr = h[0].sim
			}
		}
	}
	slices.SortFunc(h, func(a, b neighbour) int {
		if a.better(b) {
			return -1
		}
		if b.better(a) {
			return 1
		}
		return 0
	})
	return h
}

// siftDown restores the heap property (every parent worse than its children) below p.
func siftDown(h []neighbour, p int) {
	for {
		worst, l, r := p, 2*p+1, 2*p+2
		if l < len(h) && h[worst].better(h[l]) {
			worst = l
		}
		if r < len(h) && h[worst].better(h[r]) {
			worst = r
		}
		if worst == p {
			return
		}
		h[p], h[worst] = h[worst], h[p]
		p = worst
	}
}

// parallelFor splits [0, n) into at most workers contiguous ranges and runs fn on each.
func parallelFor(n, workers int, fn func(lo, hi int)) {
	workers = max(1, min(workers, n))
	if workers == 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	per := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += per {
		hi := min(n, lo+per)
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}

// similarity computes query·bankᵀ on a backend for fixed-size chunks of queries.
type similarity struct {
	exec  *graph.Exec
	bank  *tensors.Tensor
	chunk int
	d, n  int
	buf   []float32
}

func newSimilarity(backend backends.Backend, bank FeatureSet, chunk int) (*similarity, error) {
	exec, err := graph.NewExec(backend, func(q, b *graph.Node) *graph.Node {
		// [chunk, D] x [N, D] contracting D -> [chunk, N].
		return graph.DotGeneral(q, []int{1}, nil, b, []int{1}, nil)
	})
	if err != nil {
		return nil, fmt.Errorf("eval: knn: similarity graph: %w", err)
	}
	return &similarity{
		exec:  exec,
		bank:  tensors.FromFlatDataAndDimensions(bank.X, bank.N, bank.D),
		chunk: chunk,
		d:     bank.D,
		n:     bank.N,
		buf:   make([]float32, chunk*bank.D),
	}, nil
}

// compute returns the [chunk, N] similarities of the queries q (at most chunk rows of width D;
// a short final chunk is zero-padded so that a single graph is compiled: only its first len(q)/D
// rows are meaningful). The caller finalizes the tensor.
func (s *similarity) compute(q []float32) (*tensors.Tensor, error) {
	copy(s.buf, q)
	clear(s.buf[len(q):])
	in := tensors.FromFlatDataAndDimensions(s.buf, s.chunk, s.d)
	defer func() { _ = in.FinalizeAll() }()
	return s.exec.Exec1(in, s.bank)
}

func (s *similarity) close() { _ = s.bank.FinalizeAll() }
