package cpu

import (
	"sync"

	"github.com/ifa-toolkit/ifa/internal/cpu/kernels"
)

// parallelFor splits [0, n) into contiguous chunks of at least grain items and runs fn on them over
// up to kernels.Threads() goroutines (GOMAXPROCS, capped by the backend's workers option); it
// returns when all are done. Small ranges run inline. Callers must not let a result depend on where
// the chunks are cut: sums over chunks use fixed runs (reduceParts, bnChunkedSums) instead.
func parallelFor(n, grain int, fn func(start, end int)) {
	if n <= 0 {
		return
	}
	if grain < 1 {
		grain = 1
	}
	workers := kernels.Threads()
	chunks := n / grain
	if chunks > workers {
		chunks = workers
	}
	if chunks <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	per := (n + chunks - 1) / chunks
	for start := 0; start < n; start += per {
		end := min(start+per, n)
		if end == n {
			fn(start, end)
			break
		}
		wg.Add(1)
		go func(s, e int) {
			defer wg.Done()
			fn(s, e)
		}(start, end)
	}
	wg.Wait()
}

// elemGrain is the minimum number of elements per goroutine for cheap elementwise loops.
const elemGrain = 1 << 15
