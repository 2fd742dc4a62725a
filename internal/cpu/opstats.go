package cpu

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Op statistics: an opt-in profile of where an executable's time goes, per op kind and shape.
// It costs one atomic load per step when off.

var opStatsOn atomic.Bool

type opStatKey struct {
	op    string
	shape string
}

type opStat struct {
	calls int
	dur   time.Duration
}

var (
	opStatsMu sync.Mutex
	opStats   = map[opStatKey]*opStat{}
)

// EnableOpStats turns the per-op timing on or off and clears what was gathered.
func EnableOpStats(on bool) {
	opStatsMu.Lock()
	opStats = map[opStatKey]*opStat{}
	opStatsMu.Unlock()
	opStatsOn.Store(on)
}

func recordOpStat(st *step, d time.Duration) {
	n := st.n
	op := n.op.String()
	if st.fused != nil {
		op = "Fused(" + op + ")"
	}
	k := opStatKey{op: op, shape: n.shape.String()}
	opStatsMu.Lock()
	s := opStats[k]
	if s == nil {
		s = &opStat{}
		opStats[k] = s
	}
	s.calls++
	s.dur += d
	opStatsMu.Unlock()
}

// OpStatsReport returns the gathered op timings as a table, the costliest first: per op kind, then
// the top entries per (op, output shape). top limits the per-shape rows.
func OpStatsReport(top int) string {
	opStatsMu.Lock()
	defer opStatsMu.Unlock()
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
