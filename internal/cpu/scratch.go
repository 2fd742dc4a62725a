package cpu

import "sync"

// Scratch slices of the kernels (partial sums, per-feature coefficients) come from pools by element
// type and length. On the machines the backend runs on, a page of memory the process has not
// touched yet costs 10–20 µs to fault in, and a training step whose scratch was new memory touched
// new pages until the next garbage collection, which, with the activations' buffers live, comes
// only every few dozen steps.

type scratchKey struct {
	kind any // the element type's zero value
	n    int
}

var scratchPools sync.Map // scratchKey → *sync.Pool of *[]T

func scratchPool[T any](n int) *sync.Pool {
	var zero T
	key := scratchKey{zero, n}
	if p, ok := scratchPools.Load(key); ok {
		return p.(*sync.Pool)
	}
	p, _ := scratchPools.LoadOrStore(key, new(sync.Pool))
	return p.(*sync.Pool)
}

// getScratch returns a slice of n elements from the pool (or a new one); its contents are
// unspecified. putScratch gives it back.
func getScratch[T any](n int) *[]T {
	if s, _ := scratchPool[T](n).Get().(*[]T); s != nil {
		return s
	}
	s := make([]T, n)
	return &s
}

// putScratch returns a slice of getScratch to its pool.
func putScratch[T any](s *[]T) {
	scratchPool[T](len(*s)).Put(s)
}
