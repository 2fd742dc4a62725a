package eval

import (
	"errors"
	"iter"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"

	"github.com/ifa-toolkit/ifa/data"
	"github.com/ifa-toolkit/ifa/internal/testutil"
)

// memLoader serves fixed images [N, H, W, C] in order, in batches of size batch (the last one
// may be short), optionally with a view axis of 1, and an error after failAfter batches (if > 0).
type memLoader struct {
	images    []float32
	labels    []int32
	n, h, w   int
	c, batch  int
	viewAxis  bool
	failAfter int
}

func (l *memLoader) Epoch(int) iter.Seq2[data.Batch, error] {
	return func(yield func(data.Batch, error) bool) {
		per := l.h * l.w * l.c
		for s, start := 0, 0; start < l.n; s, start = s+1, start+l.batch {
			if l.failAfter > 0 && s == l.failAfter {
				yield(data.Batch{}, errors.New("disk on fire"))
				return
			}
			b := min(l.batch, l.n-start)
			dims := []int{b, l.h, l.w, l.c}
			if l.viewAxis {
				dims = []int{b, 1, l.h, l.w, l.c}
			}
			idx := make([]int32, b)
			for i := range idx {
				idx[i] = int32(start + i)
			}
			batch := data.Batch{
				Images:  tensors.FromFlatDataAndDimensions(l.images[start*per:(start+b)*per], dims...),
				Labels:  tensors.FromFlatDataAndDimensions(l.labels[start:start+b], b),
				Indices: tensors.FromFlatDataAndDimensions(idx, b),
				Size:    b,
			}
			if !yield(batch, nil) {
				return
			}
		}
	}
}

func (l *memLoader) StepsPerEpoch() int { return (l.n + l.batch - 1) / l.batch }
func (l *memLoader) NumExamples() int   { return l.n }

func newMemLoader(n int) *memLoader {
	l := &memLoader{n: n, h: 2, w: 3, c: 2, batch: 4}
	l.images = make([]float32, n*l.h*l.w*l.c)
	for i := range l.images {
		l.images[i] = float32(math.Sin(float64(i)))
	}
	l.labels = make([]int32, n)
	for i := range l.labels {
		l.labels[i] = int32(i % 3)
	}
	return l
}

// channelMeans is a variable-free encoder: the per-channel mean of each image, [B, C].
func channelMeans(_ *context.Context, images *graph.Node) *graph.Node {
	return graph.ReduceMean(images, 1, 2)
}

func TestExtractVariableFree(t *testing.T) {
	for _, viewAxis := range []bool{false, true} {
		l := newMemLoader(10) // batches of 4, 4, 2
		l.viewAxis = viewAxis
		f, err := Extract(testutil.Backend(), nil, channelMeans, l)
		if err != nil {
			t.Fatal(err)
		}
		if f.N != 10 || f.D != 2 {
			t.Fatalf("got %d x %d features", f.N, f.D)
		}
		per := l.h * l.w * l.c
		for i := range f.N {
			if f.Labels[i] != l.labels[i] {
				t.Errorf("label %d = %d, want %d", i, f.Labels[i], l.labels[i])
			}
			for ch := range l.c {
				var want float64
				for p := range l.h * l.w {
					want += float64(l.images[i*per+p*l.c+ch]) / float64(l.h*l.w)
				}
				if math.Abs(float64(f.Row(i)[ch])-want) > 1e-6 {
					t.Errorf("image %d channel %d: %g, want %g", i, ch, f.Row(i)[ch], want)
				}
			}
		}
	}
}

// TestExtractReusesVariablesInEvalMode: a trained scale variable is read (not re-created), and
// the graph is not in training mode.
func TestExtractReusesVariablesInEvalMode(t *testing.T) {
	ctx := context.New()
	v := ctx.In("enc").WithInitializer(initializers.Zero).VariableWithShape("scale", shapes.Make(dtypes.Float32))
	if err := v.SetValue(tensors.FromScalar(float32(3))); err != nil {
		t.Fatal(err)
	}
	sawTraining := false
	enc := func(ctx *context.Context, images *graph.Node) *graph.Node {
		sawTraining = sawTraining || ctx.IsTraining(images.Graph())
		scale := ctx.In("enc").VariableWithShape("scale", shapes.Make(dtypes.Float32)).ValueGraph(images.Graph())
		return graph.Mul(channelMeans(ctx, images), scale)
	}
	l := newMemLoader(5)
	got, err := Extract(testutil.Backend(), ctx, enc, l)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := Extract(testutil.Backend(), nil, channelMeans, l)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got.X {
		if math.Abs(float64(got.X[i]-3*ref.X[i])) > 1e-6 {
			t.Fatalf("feature %d = %g, want 3 x %g", i, got.X[i], ref.X[i])
		}
	}
	if sawTraining {
		t.Error("encoder ran in training mode")
	}
	// A variable missing from a non-empty context is an error, not a fresh random layer.
	bad := func(ctx *context.Context, images *graph.Node) *graph.Node {
		w := ctx.In("typo").VariableWithShape("scale", shapes.Make(dtypes.Float32)).ValueGraph(images.Graph())
		return graph.Mul(channelMeans(ctx, images), w)
	}
	if _, err := Extract(testutil.Backend(), ctx, bad, l); err == nil {
		t.Error("missing variable: want an error")
	}
}

func TestExtractErrors(t *testing.T) {
	l := newMemLoader(10)
	l.failAfter = 2
	if _, err := Extract(testutil.Backend(), nil, channelMeans, l); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("loader error not propagated: %v", err)
	}
	flat := func(_ *context.Context, images *graph.Node) *graph.Node { return images }
	if _, err := Extract(testutil.Backend(), nil, flat, newMemLoader(3)); err == nil {
		t.Error("rank-4 encoder output accepted")
	}
}

// ExtractWithProgress reports the images done after every batch, ending at the loader's total.
func TestExtractProgress(t *testing.T) {
	l := newMemLoader(10) // batches of 4, 4, 2
	var calls [][2]int
	if _, err := ExtractWithProgress(testutil.Backend(), nil, channelMeans, l, func(done, total int) {
		calls = append(calls, [2]int{done, total})
	}); err != nil {
		t.Fatal(err)
	}
	if want := [][2]int{{4, 10}, {8, 10}, {10, 10}}; !slices.Equal(calls, want) {
		t.Errorf("progress calls %v, want %v", calls, want)
	}
}
