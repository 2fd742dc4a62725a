package cpu

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Op statistics: an opt-in profile of where a backend's executables spend their time, per op kind
// and shape. It costs one atomic load per execution when off.

// opStatTable is a backend's op timings.
type opStatTable struct {
	on atomic.Bool
	mu sync.Mutex
	m  map[opStatKey]*opStat
}

type opStatKey struct {
	op    string
	shape string
}

type opStat struct {
	calls int
	dur   time.Duration
}

// EnableOpStats turns the backend's per-op timing on or off and clears what was gathered (the
// config option opstats=on turns it on from the start).
func (b *Backend) EnableOpStats(on bool) {
	b.stats.mu.Lock()
	b.stats.m = nil
	b.stats.mu.Unlock()
	b.stats.on.Store(on)
}

func (t *opStatTable) record(st *step, d time.Duration) {
	n := st.n
	op := n.op.String()
	if st.fused != nil {
		op = "Fused(" + op + ")"
	}
	shape := n.shape
	if n.multiShapes != nil { // multi-output ops (batch norms): their first output's shape
		shape = n.multiShapes[0]
	}
	k := opStatKey{op: op, shape: shape.String()}
	t.mu.Lock()
	if t.m == nil {
		t.m = map[opStatKey]*opStat{}
	}
	s := t.m[k]
	if s == nil {
		s = &opStat{}
		t.m[k] = s
	}
	s.calls++
	s.dur += d
	t.mu.Unlock()
}

// OpStatsReport returns the op timings the backend gathered as a table, the costliest first: per op
// kind, then the top entries per (op, output shape). top limits the per-shape rows.
func (b *Backend) OpStatsReport(top int) string {
	b.stats.mu.Lock()
	defer b.stats.mu.Unlock()
	opStats := b.stats.m
	var total time.Duration
	byOp := map[string]*opStat{}
	type row struct {
		k opStatKey
		s opStat
	}
	rows := make([]row, 0, len(opStats))
	for k, s := range opStats {
		total += s.dur
		o := byOp[k.op]
		if o == nil {
			o = &opStat{}
			byOp[k.op] = o
		}
		o.calls += s.calls
		o.dur += s.dur
		rows = append(rows, row{k, *s})
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "op time total %v\n", total)
	ops := make([]string, 0, len(byOp))
	for op := range byOp {
		ops = append(ops, op)
	}
	sort.Slice(ops, func(i, j int) bool { return byOp[ops[i]].dur > byOp[ops[j]].dur })
	for _, op := range ops {
		s := byOp[op]
		fmt.Fprintf(&sb, "  %-28s %6d calls %10v %5.1f%%\n", op, s.calls, s.dur.Round(time.Microsecond),
			100*float64(s.dur)/float64(max(total, 1)))
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].s.dur > rows[j].s.dur })
	if top > len(rows) {
		top = len(rows)
	}
	for _, r := range rows[:top] {
		fmt.Fprintf(&sb, "  %-28s %-30s %6d calls %10v %5.1f%%\n", r.k.op, r.k.shape, r.s.calls,
			r.s.dur.Round(time.Microsecond), 100*float64(r.s.dur)/float64(max(total, 1)))
	}
	return sb.String()
}
