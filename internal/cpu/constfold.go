package cpu

import (
	"fmt"
	"sync"

	"github.com/gomlx/gomlx/backends"
)

// Constant folding: the values of a graph that depend on no parameter (constants, iotas and every
// op whose inputs are all such values, except random-number generation) are the same in every
// Execute. They are computed once, at the first Execute, and the ones the remaining steps read (or
// that are outputs) are kept by the executable as borrowed values: never written in place, never
// recycled nor handed out (an output is copied). Their steps are dropped from the per-Execute list.

// constFoldMaxBytes is the largest value that is folded: a bigger one is recomputed every Execute
// (from folded inputs), so that an executable never holds very large cached tensors.
const constFoldMaxBytes = 64 << 20

// constFold is an executable's plan for, and cache of, its folded values.
type constFold struct {
	// steps compute the kept values (and the folded intermediates they need), in graph order.
	steps []step
	// kept are the folded nodes whose values the per-Execute steps read or return.
	kept []*node

	once sync.Once
	mu   sync.Mutex
	err  error
	// vals[i] is kept[i]'s value once computed; owned ones came from the backend's pool.
	vals []value
}

// nodeBytes is the size of n's output(s) in bytes.
func nodeBytes(n *node) int {
	if n.multiShapes != nil {
		total := 0
		for _, s := range n.multiShapes {
			total += s.Size() * s.DType.Size()
		}
		return total
	}
	return n.shape.Size() * n.shape.DType.Size()
}

// foldableNodes reports, per node id, whether the node's value depends on no parameter and is worth
// keeping: a Constant; an Iota or any op other than Parameter and RNGBitGenerator whose inputs (as
// its step reads them) are all foldable, if its output(s) take at most maxBytes; an output of a
// foldable multi-output node.
func foldableNodes(nodes []*node, inputs [][]*node, maxBytes int) []bool {
	folded := make([]bool, len(nodes))
	for _, n := range nodes {
		switch n.op {
		case backends.OpTypeConstant:
			folded[n.id] = true
			continue
		case backends.OpTypeParameter, backends.OpTypeRNGBitGenerator:
			continue
		case opTupleElement:
			folded[n.id] = folded[n.inputs[0].id]
			continue
		}
		ins := inputs[n.id]
		if len(ins) == 0 && n.op != backends.OpTypeIota {
			continue
		}
		ok := nodeBytes(n) <= maxBytes
		for _, in := range ins {
			ok = ok && folded[in.id]
		}
		folded[n.id] = ok
	}
	return folded
}

// planConstFold returns the plan computing the kept nodes: each kept node and the folded nodes it
// depends on, in graph order.
func planConstFold(nodes []*node, inputs [][]*node, folded, kept []bool) *constFold {
	need := make([]bool, len(nodes))
	for i := len(nodes) - 1; i >= 0; i-- {
		if !kept[i] && !need[i] {
			continue
		}
		need[i] = true
		for _, in := range inputs[i] {
			if folded[in.id] {
				need[in.id] = true
			}
		}
	}
	f := &constFold{}
	var order []*node
	for _, n := range nodes {
		if need[n.id] {
			order = append(order, n)
		}
		if kept[n.id] {
			f.kept = append(f.kept, n)
		}
	}
	f.steps, _ = buildSteps(len(nodes), order, inputs, nil, kept)
	return f
}

// ensure computes the kept values on the first call; later calls return the first call's error.
func (f *constFold) ensure(e *Executable) error {
	if len(f.kept) == 0 {
		return nil
	}
	f.once.Do(func() {
		ex := &execState{b: e.backend, vals: make([]value, e.numNodes)}
		if err := e.run(ex, f.steps, false); err != nil {
			f.err = err
			return
		}
		vals := make([]value, len(f.kept))
		for i, n := range f.kept {
			vals[i] = ex.vals[n.id]
		}
		f.mu.Lock()
		f.vals = vals
		f.mu.Unlock()
	})
	return f.err
}

// load sets the kept values in ex, borrowed.
func (f *constFold) load(ex *execState) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.vals) != len(f.kept) {
		return fmt.Errorf("folded values were released (executable finalized)")
	}
	for i, n := range f.kept {
		ex.vals[n.id] = value{buf: f.vals[i].buf}
	}
	return nil
}

// release returns the kept values' storage to the backend's pool.
func (f *constFold) release(b *Backend) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, v := range f.vals {
		if v.owned && v.buf != nil {
			b.recycle(v.buf)
		}
	}
	f.vals = nil
}
