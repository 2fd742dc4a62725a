package cpu

import (
	"github.com/ifa-toolkit/ifa/internal/cpu/kernels"
)

// parallelFor splits [0, n) into contiguous chunks of at least grain items and runs fn on them over
// up to kernels.Threads() goroutines (GOMAXPROCS, capped by the backend's workers option), on the
// kernels' helper goroutines (kernels.ParallelFor); it returns when all are done. Small ranges run
// inline. Callers must not let a result depend on where the chunks are cut: sums over chunks use
// fixed runs (reduceParts, bnChunkedSums) instead.
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
	per := (n + chunks - 1) / chunks
	kernels.ParallelFor((n+per-1)/per, func(i int) {
		fn(i*per, min(n, (i+1)*per))
	})
}

// elemGrain is the minimum number of elements per goroutine for cheap elementwise loops.
const elemGrain = 1 << 15
