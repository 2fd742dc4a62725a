package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Waking a parked goroutine on an idle core takes tens of µs on the project's machines (45 µs
// median from the go statement to the goroutine running, with both cores free), which is a large
// part of a 256³ product on two cores. parallelFor therefore hands its extra workers' loops to
// helper goroutines that, after each job, poll for the next one for helperSpin before they park,
// as BLAS thread pools do: back-to-back parallel products then start at once.

// helperSpin is how long an idle helper polls for a job before it parks.
const helperSpin = 50 * time.Microsecond

// joinSpin is how long parallelFor's caller polls for its helpers to finish before it parks.
const joinSpin = 200 * time.Microsecond

// Helper states.
const (
	helperPolling = iota // idle, polling for a job
	helperParked         // idle, blocked on wake
	helperBusy           // claimed by a caller, running its job or about to
)

// loop is one parallelFor call's shared state, pooled so that a call allocates nothing of its own:
// a training step makes a few hundred of them.
type loop struct {
	next    atomic.Int64 // the next item to take
	items   int
	body    func(worker, item int)
	pending atomic.Int32 // workers other than the caller still running
	wg      sync.WaitGroup
	jobs    []job
}

var loopPool = sync.Pool{New: func() any { return new(loop) }}

// work takes items in turn until none is left.
func (l *loop) work(worker int) {
	for {
		i := int(l.next.Add(1) - 1)
		if i >= l.items {
			return
		}
		l.body(worker, i)
	}
}

// job is a worker's share of a loop, handed to a helper or a new goroutine: run works, then marks
// the worker done; it is the last access to the loop, which the caller may reuse at once after.
type job struct {
	l      *loop
	worker int
}

func (j *job) run() {
	j.l.work(j.worker)
	j.done()
}

// done marks the worker finished: the last access to the loop.
func (j *job) done() {
	l := j.l
	l.pending.Add(-1)
	l.wg.Done()
}

// helper is a goroutine that runs parallelFor's extra worker loops.
type helper struct {
	state atomic.Int32
	job   atomic.Pointer[job]
	wake  chan struct{} // one token per park, sent by the caller that claims a parked helper
}

// helpers are the started helpers; there are never more than GOMAXPROCS-1 of them (callers that
// find none idle start plain goroutines).
var helpers struct {
	mu   sync.Mutex
	list []*helper
}

// claimHelper returns an idle helper, claimed (busy), starting one if there are fewer than
// GOMAXPROCS-1, or nil.
func claimHelper() *helper {
	helpers.mu.Lock()
	defer helpers.mu.Unlock()
	for _, h := range helpers.list {
		if h.state.CompareAndSwap(helperPolling, helperBusy) {
			return h
		}
		if h.state.CompareAndSwap(helperParked, helperBusy) {
			h.wake <- struct{}{} // the helper wakes to find its job; the channel has room for it
			return h
		}
	}
	if len(helpers.list) >= runtime.GOMAXPROCS(0)-1 {
		return nil
	}
	h := &helper{wake: make(chan struct{}, 1)}
	h.state.Store(helperBusy)
	helpers.list = append(helpers.list, h)
	go h.loop()
	return h
}

// loop runs jobs as they come; between jobs it polls for helperSpin, stopping early when the
// process starts goroutines (they may need this core), then parks until claimed.
func (h *helper) loop() {
	for {
		start, base := time.Now(), runtime.NumGoroutine()
		for i := 0; ; i++ {
			if j := h.job.Swap(nil); j != nil {
				j.l.work(j.worker)
				h.state.Store(helperPolling) // claimable again before the caller can return
				j.done()
				runtime.Gosched() // let a caller woken by Done run here rather than wait for another core
				break
			}
			if i%32 != 31 {
				continue
			}
			if time.Since(start) < helperSpin && runtime.NumGoroutine() <= base {
				continue
			}
			if h.state.CompareAndSwap(helperPolling, helperParked) {
				<-h.wake
			}
			// Claimed (busy): the job is on its way.
		}
	}
}

// parallelFor runs body(worker, item) for every item in [0, items) on up to threads goroutines
// (the calling one included, as worker 0) that take items in turn. The other workers run on
// helpers when idle ones are available, on new goroutines otherwise.
func parallelFor(threads, items int, body func(worker, item int)) {
	threads = min(threads, items)
	if threads <= 1 {
		for i := 0; i < items; i++ {
			body(0, i)
		}
		return
	}
	l := loopPool.Get().(*loop)
	l.next.Store(0)
	l.items, l.body = items, body
	l.pending.Store(int32(threads - 1))
	l.wg.Add(threads - 1)
	if cap(l.jobs) < threads {
		l.jobs = make([]job, threads)
	}
	l.jobs = l.jobs[:threads]
	for t := 1; t < threads; t++ {
		j := &l.jobs[t]
		*j = job{l: l, worker: t}
		if h := claimHelper(); h != nil {
			h.job.Store(j)
			continue
		}
		go j.run()
	}
	l.work(0)
	start := time.Now()
	for i := 0; l.pending.Load() > 0; i++ {
		if i%32 == 31 {
			if time.Since(start) > joinSpin {
				break
			}
			runtime.Gosched() // a helper just started may be queued on this core
		}
	}
	l.wg.Wait()
	l.body = nil // do not keep the caller's data reachable from the pool
	loopPool.Put(l)
}

// ParallelFor runs body(item) for every item in [0, items) on up to Threads() goroutines, the
// calling one included, that take items in turn: parallelFor's helpers, so that the short loops
// of a training step (batch norms, elementwise ops) start on the other core at once instead of
// after a goroutine's wake-up.
func ParallelFor(items int, body func(item int)) {
	parallelFor(Threads(), items, func(_, item int) { body(item) })
}
