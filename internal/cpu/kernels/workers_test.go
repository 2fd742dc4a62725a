package kernels

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// TestParallelForRunsEachItemOnce: concurrent and nested calls (which share the helpers and start
// goroutines when none is idle) run every item exactly once, on worker numbers below threads.
func TestParallelForRunsEachItemOnce(t *testing.T) {
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 6 {
		wg.Go(func() {
			for call := range 150 {
				threads, items := 2+(g+call)%3, 1+(g*7+call*13)%40
				counts := make([]atomic.Int32, items)
				parallelFor(threads, items, func(w, i int) {
					if w < 0 || w >= threads {
						errs <- fmt.Errorf("worker %d of %d", w, threads)
					}
					counts[i].Add(1)
					if i%9 == 0 { // nested
						var inner atomic.Int32
						parallelFor(2, 5, func(_, _ int) { inner.Add(1) })
						if inner.Load() != 5 {
							errs <- fmt.Errorf("nested call ran %d of 5 items", inner.Load())
						}
					}
				})
				for i := range counts {
					if n := counts[i].Load(); n != 1 {
						errs <- fmt.Errorf("threads %d, items %d: item %d ran %d times", threads, items, i, n)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
