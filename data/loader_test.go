package data

import (
	"runtime"
	"testing"
	"time"

	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// synthDataset is n h×w×c images with pseudo-random pixels and labels i mod classes.
func synthDataset(n, h, w, c, classes int) *Dataset {
	ds := &Dataset{Name: "synth", Split: "train", H: h, W: w, C: c, Images: make([]uint8, n*h*w*c), Labels: make([]int32, n)}
	r := NewRNG(42)
	for i := range ds.Images {
		ds.Images[i] = uint8(r.Uint64())
	}
	for i := range ds.Labels {
		ds.Labels[i] = int32(i % classes)
	}
	for k := range classes {
		ds.Classes = append(ds.Classes, string(rune('a'+k)))
	}
	return ds
}

type flatBatch struct {
	images  []float32
	labels  []int32
	indices []int32
	dims    []int
}

func collect(t *testing.T, l Loader, e int) []flatBatch {
	t.Helper()
	var out []flatBatch
	for b, err := range l.Epoch(e) {
		if err != nil {
			t.Fatal(err)
		}
		fb := flatBatch{
			images:  tensors.MustCopyFlatData[float32](b.Images),
			labels:  tensors.MustCopyFlatData[int32](b.Labels),
			indices: tensors.MustCopyFlatData[int32](b.Indices),
			dims:    b.Images.Shape().Dimensions,
		}
		if b.Size != len(fb.labels) || b.Size != fb.dims[0] {
			t.Fatalf("Size %d, labels %d, dims %v", b.Size, len(fb.labels), fb.dims)
		}
		out = append(out, fb)
	}
	if len(out) != l.StepsPerEpoch() {
		t.Fatalf("%d batches, StepsPerEpoch %d", len(out), l.StepsPerEpoch())
	}
	return out
}

func TestLoaderDeterministicAcrossWorkers(t *testing.T) {
	ds := synthDataset(23, 8, 8, 3, 5)
	simclr := SimCLRTransform(8, CIFARNorm(), SimCLROptions{})
	var ref []flatBatch
	for _, workers := range []int{1, 2, 5} {
		l, err := NewLoader(ds, LoaderConfig{BatchSize: 4, Views: 2, Transforms: []Pipeline{simclr}, Shuffle: true,
			Seed: 9, Workers: workers, Prefetch: 1})
		if err != nil {
			t.Fatal(err)
		}
		got := collect(t, l, 3)
		if ref == nil {
			ref = got
			continue
		}
		for s := range ref {
			if !equalF32(ref[s].images, got[s].images) || ref[s].indices[0] != got[s].indices[0] {
				t.Fatalf("workers %d: batch %d differs", workers, s)
			}
		}
	}
	// Shape [B, V, H, W, C]; the last batch is partial (23 = 5·4 + 3).
	if d := ref[0].dims; len(d) != 5 || d[0] != 4 || d[1] != 2 || d[2] != 8 || d[3] != 8 || d[4] != 3 {
		t.Fatalf("dims %v", d)
	}
	if len(ref) != 6 || ref[5].dims[0] != 3 {
		t.Fatalf("%d batches, last %v", len(ref), ref[len(ref)-1].dims)
	}
	// The two views of an image differ; every image appears once; labels follow indices.
	seen := map[int32]bool{}
	for _, b := range ref {
		for i, idx := range b.indices {
			seen[idx] = true
			if b.labels[i] != ds.Labels[idx] {
				t.Fatalf("index %d: label %d, want %d", idx, b.labels[i], ds.Labels[idx])
			}
		}
		n := 8 * 8 * 3
		if equalF32(b.images[:n], b.images[n:2*n]) {
			t.Fatal("the two views of an image are equal")
		}
	}
	if len(seen) != 23 {
		t.Fatalf("%d distinct images in an epoch", len(seen))
	}
}

func TestLoaderOrderDropLastAndEpochs(t *testing.T) {
	ds := synthDataset(10, 4, 4, 1, 3)
	l, err := NewLoader(ds, LoaderConfig{BatchSize: 4, DropLast: true, Shuffle: true, Seed: 1,
		Transforms: []Pipeline{TestTransform(FashionMNISTNorm())}})
	if err != nil {
		t.Fatal(err)
	}
	if l.StepsPerEpoch() != 2 || l.NumExamples() != 10 {
		t.Fatalf("steps %d", l.StepsPerEpoch())
	}
	e0, e1 := collect(t, l, 0), collect(t, l, 1)
	if d := e0[0].dims; len(d) != 4 || d[0] != 4 || d[3] != 1 {
		t.Fatalf("single-view dims %v", d)
	}
	same := true
	for s := range e0 {
		for i := range e0[s].indices {
			same = same && e0[s].indices[i] == e1[s].indices[i]
		}
	}
	if same {
		t.Fatal("epochs 0 and 1 have the same order")
	}
	again := collect(t, l, 0)
	for s := range e0 {
		if !equalF32(e0[s].images, again[s].images) {
			t.Fatal("epoch 0 not reproducible")
		}
	}
	// Test transform: exactly the normalised pixels of the image.
	fm := FashionMNISTNorm()
	for i, idx := range e0[1].indices {
		for j, p := range ds.Image(int(idx)) {
			want := (float32(p)/255 - fm.Mean[0]) / fm.Std[0]
			if got := e0[1].images[i*16+j]; got-want > 1e-5 || want-got > 1e-5 {
				t.Fatalf("image %d pixel %d: %v, want %v", idx, j, got, want)
			}
		}
	}
	// No shuffle: 0, 1, 2, ...
	l2, _ := NewLoader(ds, LoaderConfig{BatchSize: 3})
	b := collect(t, l2, 5)
	if len(b) != 4 || b[3].dims[0] != 1 || b[1].indices[0] != 3 || b[3].indices[0] != 9 {
		t.Fatalf("unshuffled: %d batches", len(b))
	}
}

func TestLoaderEarlyStopReleasesWorkers(t *testing.T) {
	ds := synthDataset(200, 8, 8, 3, 4)
	before := runtime.NumGoroutine()
	l, err := NewLoader(ds, LoaderConfig{BatchSize: 2, Workers: 4, Prefetch: 2, Transforms: []Pipeline{StandardTransform(8, 2, CIFARNorm())}})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		n := 0
		for _, err := range l.Epoch(0) {
			if err != nil {
				t.Fatal(err)
			}
			if n++; n == 3 {
				break
			}
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before {
		t.Fatalf("%d goroutines after early stops, %d before", g, before)
	}
}

func TestLoaderConfigErrors(t *testing.T) {
	ds := synthDataset(5, 28, 28, 1, 2)
	bad := []LoaderConfig{
		{BatchSize: 0},
		{BatchSize: 2, Views: 3, Transforms: []Pipeline{TestTransform(FashionMNISTNorm()), TestTransform(FashionMNISTNorm())}},
		{BatchSize: 2, Transforms: []Pipeline{TestTransform(CIFARNorm())}},                                                                // 3 means, 1 channel
		{BatchSize: 2, Views: 2, Transforms: []Pipeline{TestTransform(FashionMNISTNorm()), StandardTransform(32, 4, FashionMNISTNorm())}}, // shapes differ
		{BatchSize: 6, DropLast: true},
	}
	for i, cfg := range bad {
		if _, err := NewLoader(ds, cfg); err == nil {
			t.Fatalf("config %d accepted", i)
		}
	}
}
