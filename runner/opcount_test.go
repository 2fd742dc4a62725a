package runner

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gomlx/gomlx/backends"

	"github.com/ifa-toolkit/ifa/internal/cpu"
	"github.com/ifa-toolkit/ifa/internal/testutil"
)

// opCounter wraps the cpu backend and records the live op counts of every compiled computation.
type opCounter struct {
	backends.Backend
	mu  sync.Mutex
	ops map[string]map[backends.OpType]int // by computation name
}

func (c *opCounter) Builder(name string) backends.Builder {
	return &opCountBuilder{Builder: c.Backend.Builder(name), c: c, name: name}
}

type opCountBuilder struct {
	backends.Builder
	c    *opCounter
	name string
}

func (b *opCountBuilder) Compile(outputs []backends.Op, shardings []*backends.ShardingSpec) (backends.Executable, error) {
	e, err := b.Builder.Compile(outputs, shardings)
	if x, ok := e.(*cpu.Executable); ok && err == nil {
		b.c.mu.Lock()
		b.c.ops[b.name] = x.LiveOps()
		b.c.mu.Unlock()
	}
	return e, err
}

// graphOps runs one bench step of the model and method and returns, by computation ("step": the
// training step, "init": the variables' initialisation), its op count and a histogram of its
// commonest op kinds.
func graphOps(t *testing.T, model, method, input string) (counts map[string]int, hists map[string]string) {
	t.Helper()
	c := &opCounter{Backend: testutil.Backend(), ops: map[string]map[backends.OpType]int{}}
	b := &Bench{Model: model, Method: method, Batch: 4, Steps: 1, Warmup: 0, Input: input, Classes: 10,
		IFACDLayers: 2, Beta: 0.8, Format: "json"}
	if _, err := b.Run(Env{Backend: c, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	counts, hists = map[string]int{}, map[string]string{}
	for name, ops := range c.ops {
		key := name
		switch {
		case strings.Contains(name, "stepGraph"):
			key = "step"
		case name == "VariableInitialization":
			key = "init"
		}
		n := 0
		for _, v := range ops {
			n += v
		}
		kinds := slices.SortedFunc(maps.Keys(ops), func(a, b backends.OpType) int { return ops[b] - ops[a] })
		var hist []string
		for _, k := range kinds[:min(12, len(kinds))] {
			hist = append(hist, fmt.Sprintf("%s %d", k, ops[k]))
		}
		counts[key], hists[key] = n, strings.Join(hist, ", ")
	}
	return counts, hists
}

// TestTrainingGraphOpCounts bounds the size of the training-step graphs whose XLA compile time
// matters most (the ViT nano IFACLR step of `ifa pretrain vit`, the resnet32x4 → resnet8x4 IFACD
// step of `ifa distill`): XLA's compile time grows with the op count, so graph bloat (a subgraph
// built again per layer or per use) fails here before it costs minutes on a GPU. The bounds are the
// counts measured when the test was written (ViT nano lwclr: step 2274, init 4796, 1433 since
// vit.TruncatedNormal draws a weight's 9 normals with one generator call instead of 18; resnet8x4
// ifacd: step 1625, init 1474, 1342 since nn.NormalInit draws a weight with one call instead of
// two) plus about 10%; lower them when a graph shrinks.
func TestTrainingGraphOpCounts(t *testing.T) {
	for _, tc := range []struct {
		model, method, input string
		max                  map[string]int
	}{
		{"vit:nano", "lwclr", "28x28x1", map[string]int{"step": 2500, "init": 1580}},
		{"resnet8x4", "ifacd", "32x32x3", map[string]int{"step": 1800, "init": 1480}},
	} {
		counts, hists := graphOps(t, tc.model, tc.method, tc.input)
		for _, g := range []string{"step", "init"} {
			n, ok := counts[g]
			t.Logf("%s %s %s: %d ops (%s)", tc.model, tc.method, g, n, hists[g])
			if !ok || n > tc.max[g] {
				t.Errorf("%s %s %s graph: %d ops, want <= %d (a duplicated subgraph?): %s", tc.model, tc.method, g, n, tc.max[g], hists[g])
			}
		}
	}
}
