package fit

import (
	"bufio"
	"bytes"
	stdctx "context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/distributed"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/internal/testutil"
)

// shardingRecorder wraps the test backend so that a one-device mesh can go through GoMLX's
// AutoSharding path: ifa's cpu backend does not implement Builder.DistributedAutoSharding (it has
// one device and ignores sharding specs), and partitioning a computation over a one-device mesh is
// the identity, so the wrapper accepts exactly the meshes of one device and delegates everything
// else. It records the sharding specs the graphs hand to the backend.
type shardingRecorder struct {
	backends.Backend
	mu       sync.Mutex
	meshes   []backends.Mesh
	params   map[string]map[string]*backends.ShardingSpec // by computation, then parameter name
	outSpecs [][]*backends.ShardingSpec                   // per compiled graph
}

func newShardingRecorder() *shardingRecorder {
	return &shardingRecorder{Backend: testutil.Backend(), params: map[string]map[string]*backends.ShardingSpec{}}
}

func (r *shardingRecorder) Builder(name string) backends.Builder {
	return &recordingBuilder{Builder: r.Backend.Builder(name), rec: r}
}

type recordingBuilder struct {
	backends.Builder
	rec *shardingRecorder
}

func (b *recordingBuilder) DistributedAutoSharding(meshes ...backends.Mesh) error {
	if err := b.Builder.DistributedAutoSharding(meshes...); err == nil {
		return nil
	}
	for _, m := range meshes {
		n := 1
		for _, s := range m.AxesSizes {
			n *= s
		}
		if n != 1 {
			return fmt.Errorf("test backend: mesh %q has %d devices, only one-device meshes are accepted", m.Name, n)
		}
	}
	b.rec.mu.Lock()
	b.rec.meshes = append(b.rec.meshes, meshes...)
	b.rec.mu.Unlock()
	return nil
}

func (b *recordingBuilder) Parameter(name string, shape shapes.Shape, spec *backends.ShardingSpec) (backends.Op, error) {
	b.rec.mu.Lock()
	if b.rec.params[b.Name()] == nil {
		b.rec.params[b.Name()] = map[string]*backends.ShardingSpec{}
	}
	b.rec.params[b.Name()][name] = spec
	b.rec.mu.Unlock()
	return b.Builder.Parameter(name, shape, spec)
}

func (b *recordingBuilder) Compile(outputs []backends.Op, shardings []*backends.ShardingSpec) (backends.Executable, error) {
	b.rec.mu.Lock()
	b.rec.outSpecs = append(b.rec.outSpecs, shardings)
	b.rec.mu.Unlock()
	return b.Builder.Compile(outputs, shardings)
}

func TestNewDataParallelValidates(t *testing.T) {
	backend := testutil.Backend()
	dp, err := NewDataParallel(backend, 1)
	if err != nil || dp != nil {
		t.Fatalf("one device: got %v, %v; want the plain path (nil, nil)", dp, err)
	}
	if dp.NumDevices() != 1 || dp.Mesh() != nil || dp.CheckBatch(7) != nil {
		t.Errorf("a nil DataParallel is one device without a mesh that takes any batch")
	}
	if _, err := NewDataParallel(backend, 0); err == nil || !strings.Contains(err.Error(), "--devices 0") {
		t.Errorf("0 devices: err = %v, want it to name --devices 0", err)
	}
	_, err = NewDataParallel(backend, 2)
	if err == nil || !strings.Contains(err.Error(), "--devices 2") || !strings.Contains(err.Error(), "has 1 device") {
		t.Errorf("2 devices on the one-device %s backend: err = %v, want it to name --devices 2 and the device count", backend.Name(), err)
	}
}

func TestDataParallelMeshAndSpecs(t *testing.T) {
	dp, err := newDataParallel(4)
	if err != nil {
		t.Fatal(err)
	}
	m := dp.Mesh()
	if dp.NumDevices() != 4 || !slices.Equal(m.AxesNames(), []string{ReplicaAxis}) || !slices.Equal(m.AxesSizes(), []int{4}) {
		t.Errorf("mesh %s, want one axis %q of 4 devices", m, ReplicaAxis)
	}
	if dp.batch.Mesh != m || dp.replicated.Mesh != m {
		t.Error("the sharding specs must be defined over the job's one mesh")
	}
	if got := dp.batch.Axes; len(got) != 1 || !slices.Equal(got[0], []string{ReplicaAxis}) {
		t.Errorf("batch spec axes %v, want axis 0 over %q only", got, ReplicaAxis)
	}
	if !dp.replicated.IsReplicated() || dp.batch.IsReplicated() {
		t.Errorf("specs: replicated %s, batch %s", dp.replicated, dp.batch)
	}
	if err := dp.CheckBatch(8); err != nil {
		t.Errorf("8 over 4 devices: %v", err)
	}
	if err := dp.CheckBatch(6); err == nil || !strings.Contains(err.Error(), "--batch") || !strings.Contains(err.Error(), "--devices") {
		t.Errorf("6 over 4 devices: err = %v, want it to name --batch and --devices", err)
	}
}

// The host-side split: shard k of a batch input holds rows [k·B/n, (k+1)·B/n); a replicated input
// is copied whole to every device.
func TestDataParallelArgsSplitTheBatch(t *testing.T) {
	const n, b, d = 4, 8, 3
	dp, err := newDataParallel(n)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, b*d)
	for i := range x {
		x[i] = float32(i) + 0.5
	}
	labels := []int32{7, 6, 5, 4, 3, 2, 1, 0}
	args, err := dp.args([]*tensors.Tensor{tensors.FromScalar(0.25), tensors.FromFlatDataAndDimensions(x, b, d),
		tensors.FromFlatDataAndDimensions(labels, b)}, []bool{false, true, true})
	if err != nil {
		t.Fatal(err)
	}
	lr := args[0].(*distributed.Tensor).Shards()
	xs := args[1].(*distributed.Tensor).Shards()
	ys := args[2].(*distributed.Tensor).Shards()
	if len(lr) != n || len(xs) != n || len(ys) != n {
		t.Fatalf("%d, %d, %d shards, want %d", len(lr), len(xs), len(ys), n)
	}
	rows := b / n
	for k := range n {
		if got := tensors.ToScalar[float64](lr[k]); got != 0.25 {
			t.Errorf("device %d: lr %v, want 0.25", k, got)
		}
		if !xs[k].Shape().Equal(shapes.Make(dtypes.Float32, rows, d)) {
			t.Fatalf("device %d: images shard %s", k, xs[k].Shape())
		}
		if got, want := tensors.MustCopyFlatData[float32](xs[k]), x[k*rows*d:(k+1)*rows*d]; !slices.Equal(got, want) {
			t.Errorf("device %d: images %v, want rows %d..%d = %v", k, got, k*rows, (k+1)*rows-1, want)
		}
		if got, want := tensors.MustCopyFlatData[int32](ys[k]), labels[k*rows:(k+1)*rows]; !slices.Equal(got, want) {
			t.Errorf("device %d: labels %v, want %v", k, got, want)
		}
	}
	if _, err := dp.args([]*tensors.Tensor{tensors.FromFlatDataAndDimensions(x[:6*d], 6, d)}, []bool{true}); err == nil ||
		!strings.Contains(err.Error(), "(Float32)[6 3]") && !strings.Contains(err.Error(), "[6 3]") {
		t.Errorf("6 rows over 4 devices: err = %v, want it to name the shape", err)
	}
	outs := make([]*tensors.Tensor, 3*n)
	for i := range outs {
		outs[i] = tensors.FromScalar(float64(i))
	}
	if got := dp.firstDevice(outs); len(got) != 3 || tensors.ToScalar[float64](got[2]) != 2 {
		t.Errorf("firstDevice kept %d outputs, want device 0's 3", len(got))
	}
}

func TestPadBatch(t *testing.T) {
	src := tensors.FromFlatDataAndDimensions([]float32{1, 2, 3, 4, 5, 6}, 3, 2)
	got, err := padBatch(src, 5)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Shape().Equal(shapes.Make(dtypes.Float32, 5, 2)) ||
		!slices.Equal(tensors.MustCopyFlatData[float32](got), []float32{1, 2, 3, 4, 5, 6, 0, 0, 0, 0}) {
		t.Errorf("padded %s %v", got.Shape(), tensors.MustCopyFlatData[float32](got))
	}
	if same, err := padBatch(src, 3); err != nil || same != src {
		t.Errorf("padding to the same size should return the tensor itself (%v)", err)
	}
	if _, err := padBatch(src, 2); err == nil {
		t.Error("padding to fewer rows must fail")
	}
	if _, err := padBatch(tensors.FromScalar(float32(1)), 2); err == nil {
		t.Error("padding a scalar must fail")
	}
}

// refCounts is the naive float64 reference of the masked evaluation counts: the rank of the true
// class is the number of classes with a larger logit, or an equal logit and a lower index.
func refCounts(logits [][]float64, labels []int, valid []bool) (top1, top5, ce float64) {
	for i, row := range logits {
		if !valid[i] {
			continue
		}
		y := labels[i]
		rank := 0
		for c, v := range row {
			if v > row[y] || (v == row[y] && c < y) {
				rank++
			}
		}
		if rank < 1 {
			top1++
		}
		if rank < 5 {
			top5++
		}
		m := math.Inf(-1)
		for _, v := range row {
			m = math.Max(m, v)
		}
		s := 0.0
		for _, v := range row {
			s += math.Exp(v - m)
		}
		ce += -(row[y] - m - math.Log(s))
	}
	return top1, top5, ce
}

// The masked counts of a padded evaluation batch equal the reference over the valid rows; a NaN in
// a padded row does not leak; an all-valid mask gives exactly the unmasked counts.
func TestMaskedTopKCounts(t *testing.T) {
	const b, c = 9, 7
	rng := rand.New(rand.NewPCG(3, 4))
	flat := make([]float32, b*c)
	logits := make([][]float64, b)
	labels := make([]int32, b)
	ilabels := make([]int, b)
	for i := range b {
		logits[i] = make([]float64, c)
		for k := range c {
			v := float32(math.Round(rng.NormFloat64()*4) / 2) // half-integers: ties happen
			flat[i*c+k] = v
			logits[i][k] = float64(v)
		}
		labels[i] = int32(rng.IntN(c))
		ilabels[i] = int(labels[i])
	}
	valid := []bool{true, true, false, true, true, true, false, true, false}
	flat[2*c+1] = float32(math.NaN()) // a padded row
	logits[2][1] = math.NaN()
	exec := graph.MustNewExec(testutil.Backend(), func(l, y, v *graph.Node) []*graph.Node {
		t1, t5, ce := topKCounts(l, y, v)
		a1, a5, ace := topKCounts(l, y, nil)
		return []*graph.Node{t1, t5, ce, a1, a5, ace}
	})
	check := func(valid []bool) (masked, plain [3]float64) {
		outs, err := exec.Exec(tensors.FromFlatDataAndDimensions(flat, b, c), tensors.FromFlatDataAndDimensions(labels, b),
			tensors.FromFlatDataAndDimensions(valid, b))
		if err != nil {
			t.Fatal(err)
		}
		for k := range 3 {
			masked[k] = tensors.ToScalar[float64](outs[k])
			plain[k] = tensors.ToScalar[float64](outs[3+k])
		}
		return masked, plain
	}
	got, _ := check(valid)
	r1, r5, rce := refCounts(logits, ilabels, valid)
	if got[0] != r1 || got[1] != r5 || !closeTo(got[2], rce, 1e-6) {
		t.Errorf("masked counts %v, reference %v %v %v", got, r1, r5, rce)
	}
	if r1 == r5 || r1 == 0 {
		t.Logf("weak case: top1 %v top5 %v", r1, r5)
	}
	flat[2*c+1] = 0.5 // all rows finite now
	logits[2][1] = 0.5
	all := slices.Repeat([]bool{true}, b)
	masked, plain := check(all)
	if masked != plain {
		t.Errorf("all-valid mask %v, unmasked %v: want identical", masked, plain)
	}
	r1, r5, rce = refCounts(logits, ilabels, all)
	if masked[0] != r1 || masked[1] != r5 || !closeTo(masked[2], rce, 1e-6) {
		t.Errorf("all-valid counts %v, reference %v %v %v", masked, r1, r5, rce)
	}
}

// stepLosses reads the per-step "loss" values of a JSON log.
func stepLosses(t *testing.T, log *bytes.Buffer) []float64 {
	t.Helper()
	var out []float64
	sc := bufio.NewScanner(log)
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if ev["message"] == "train" {
			out = append(out, ev["loss"].(float64))
		}
	}
	return out
}

// A run whose train and eval steps go through AutoSharding over a one-device mesh gives results
// bit-identical to the plain path: same step losses (batch norm, in-graph noise, labels and
// indices inputs, a partial last batch), same variables, same evaluation. The specs reaching the
// backend are those of data parallelism: learning rate replicated, batch inputs split along axis 0
// over "replica", variables and outputs replicated.
func TestDataParallelOneDeviceMatchesPlain(t *testing.T) {
	type outcome struct {
		res     *Result
		losses  []float64
		vars    map[string][]byte
		metrics map[string]float64
	}
	train := func(backend backends.Backend, dp *DataParallel) outcome {
		dir := t.TempDir()
		ctx := context.New()
		loader := newSyntheticLoader(testN, testD, testC, 16, 1) // 16, 16, 8
		var log bytes.Buffer
		job := mlpJob(ctx, loader, &log)
		job.Backend, job.Parallel = backend, dp
		test := newSyntheticLoader(testN, testD, testC, 12, 2) // 12, 12, 12, 4
		var ev *Evaluator
		job.Eval = func(ctx *context.Context, epoch int) (map[string]float64, error) {
			if ev == nil {
				var err error
				if ev, err = NewParallelEvaluator(backend, ctx, func(ctx *context.Context, x *graph.Node) *graph.Node {
					return mlp(ctx.In("model"), x, true)
				}, dp); err != nil {
					return nil, err
				}
			}
			acc, err := ev.Evaluate(test)
			return acc.Metrics("test_"), err
		}
		cfg := baseConfig(dir)
		cfg.Epochs = 2
		cfg.EvalEvery = 1
		res, err := Run(stdctx.Background(), job, cfg)
		if err != nil {
			t.Fatal(err)
		}
		ev.Finalize()
		return outcome{res: res, losses: stepLosses(t, &log), vars: snapshot(ctx), metrics: res.Metrics}
	}
	plain := train(testutil.Backend(), nil)

	rec := newShardingRecorder()
	dp, err := newDataParallel(1)
	if err != nil {
		t.Fatal(err)
	}
	dist := train(rec, dp)

	if len(plain.losses) != 6 || !slices.Equal(plain.losses, dist.losses) {
		t.Errorf("step losses: plain %v, one-device AutoSharding %v", plain.losses, dist.losses)
	}
	if !reflect.DeepEqual(plain.vars, dist.vars) {
		for k, v := range plain.vars {
			if !bytes.Equal(v, dist.vars[k]) {
				t.Errorf("variable %s differs", k)
			}
		}
		if len(plain.vars) != len(dist.vars) {
			t.Errorf("%d variables on the plain path, %d distributed", len(plain.vars), len(dist.vars))
		}
	}
	// Counts match exactly; the mean loss is summed by a different (masked) graph, so it may
	// differ in its last bits.
	metricsMatch := len(plain.metrics) == len(dist.metrics) && plain.metrics["test_top1"] != 0
	for k, v := range plain.metrics {
		w, ok := dist.metrics[k]
		tol := 0.0
		if strings.HasSuffix(k, "_loss") {
			tol = 1e-6 * math.Abs(v)
		}
		if !ok || math.Abs(v-w) > tol {
			metricsMatch = false
		}
	}
	if !metricsMatch {
		t.Errorf("evaluation: plain %v, distributed %v", plain.metrics, dist.metrics)
	}
	if plain.res.TrainLoss != dist.res.TrainLoss || plain.res.GlobalStep != dist.res.GlobalStep {
		t.Errorf("results: plain %+v, distributed %+v", plain.res, dist.res)
	}

	// What the backend was told.
	if len(rec.meshes) == 0 {
		t.Fatal("no graph was built with AutoSharding")
	}
	for _, m := range rec.meshes {
		if !slices.Equal(m.AxesNames, []string{ReplicaAxis}) || !slices.Equal(m.AxesSizes, []int{1}) {
			t.Errorf("mesh %+v, want one axis %q of 1 device", m, ReplicaAxis)
		}
	}
	sharded := func(s *backends.ShardingSpec) bool {
		return s != nil && len(s.Axes) == 1 && slices.Equal(s.Axes[0], []string{ReplicaAxis})
	}
	replicated := func(s *backends.ShardingSpec) bool {
		if s == nil {
			return false
		}
		for _, a := range s.Axes {
			if len(a) > 0 {
				return false
			}
		}
		return true
	}
	// Train step: arg0 = lr, arg1..3 = images, labels, indices; eval: arg0..2 = images, labels, mask;
	// variable initialisation: no inputs. Every other parameter is a variable, replicated.
	var nTrain, nEval int
	for comp, params := range rec.params {
		var want []bool // sharded, per argN
		_, hasArg2 := params["arg2"]
		_, hasArg3 := params["arg3"]
		switch {
		case hasArg3:
			nTrain++
			want = []bool{false, true, true, true}
		case hasArg2:
			nEval++
			want = []bool{true, true, true}
		}
		for name, s := range params {
			var k int
			if _, err := fmt.Sscanf(name, "arg%d", &k); err == nil && k < len(want) {
				if want[k] && !sharded(s) || !want[k] && !replicated(s) {
					t.Errorf("%s: input %s: spec %+v, want sharded %v (axis 0 over %q)", comp, name, s, want[k], ReplicaAxis)
				}
			} else if !replicated(s) {
				t.Errorf("%s: variable parameter %s: spec %+v, want replicated", comp, name, s)
			}
		}
	}
	if nTrain != 2 || nEval != 2 {
		// Train batches of 16 and 8 and eval batches of 12 and 4 make two graphs each.
		t.Errorf("%d train-step and %d eval graphs built with AutoSharding, want 2 and 2", nTrain, nEval)
	}
	for i, specs := range rec.outSpecs {
		for _, s := range specs {
			if !replicated(s) {
				t.Errorf("graph %d: output spec %+v, want replicated", i, s)
			}
		}
	}
}

// With several devices, a batch that does not split evenly stops the run with an error naming the
// flags, before anything runs.
func TestDataParallelRejectsUnevenBatch(t *testing.T) {
	dp, err := newDataParallel(3)
	if err != nil {
		t.Fatal(err)
	}
	job := mlpJob(context.New(), newSyntheticLoader(testN, testD, testC, testB, 1), nil)
	job.Parallel = dp
	_, err = Run(stdctx.Background(), job, baseConfig(t.TempDir()))
	if err == nil || !strings.Contains(err.Error(), "batch of 8 images") || !strings.Contains(err.Error(), "3 devices") ||
		!strings.Contains(err.Error(), "--batch") || !strings.Contains(err.Error(), "--devices") || !strings.Contains(err.Error(), "step 1") {
		t.Errorf("err = %v, want the batch, the device count, --batch, --devices and the step", err)
	}
}
