package data

import (
	"fmt"
	"iter"
	"runtime"
	"sync"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/ifa-toolkit/ifa/internal/catch"
)

// LoaderConfig configures an ImageLoader.
type LoaderConfig struct {
	// BatchSize is B, the number of images per batch (> 0).
	BatchSize int
	// Views is V, the number of augmented views of each image (default 1).
	Views int
	// Transforms: one pipeline for every view, or one per view (len V). They must give the same output
	// shape. Empty means TestTransform with the dataset's own statistics.
	Transforms []Pipeline
	// Shuffle draws a new order of the images every epoch (from Seed and the epoch number).
	Shuffle bool
	// DropLast drops the last, incomplete batch of an epoch.
	DropLast bool
	// Seed fixes the order and the augmentations: image i's view v in epoch e is augmented with an RNG
	// seeded from (Seed, e, i, v), whatever goroutine prepares it.
	Seed uint64
	// Workers is the number of goroutines preparing batches (default GOMAXPROCS).
	Workers int
	// Prefetch is how many batches may wait ready ahead of the consumer (default 2·Workers).
	Prefetch int
}

// ImageLoader is the Loader of an in-memory Dataset: it shuffles, augments V views per image on worker
// goroutines and batches them into host tensors.
type ImageLoader struct {
	ds         *Dataset
	cfg        LoaderConfig
	transforms []Pipeline // len V
	h, w, c    int        // output image shape
}

var _ Loader = (*ImageLoader)(nil)

// NewLoader returns a Loader over ds with the given configuration, after checking it.
func NewLoader(ds *Dataset, cfg LoaderConfig) (*ImageLoader, error) {
	if err := ds.Validate(); err != nil {
		return nil, err
	}
	if ds.Len() == 0 {
		return nil, fmt.Errorf("data: loader: %s %s has no images", ds.Name, ds.Split)
	}
	if cfg.BatchSize <= 0 {
		return nil, fmt.Errorf("data: loader: batch size %d: want > 0", cfg.BatchSize)
	}
	if cfg.Views == 0 {
		cfg.Views = 1
	}
	if cfg.Views < 0 {
		return nil, fmt.Errorf("data: loader: %d views: want ≥ 1", cfg.Views)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.Prefetch <= 0 {
		cfg.Prefetch = 2 * cfg.Workers
	}
	l := &ImageLoader{ds: ds, cfg: cfg}
	switch len(cfg.Transforms) {
	case 0:
		mean, std := ds.ChannelStats()
		l.transforms = []Pipeline{TestTransform(NormFromStats(mean, std))}
	case 1, cfg.Views:
		l.transforms = cfg.Transforms
	default:
		return nil, fmt.Errorf("data: loader: %d transforms for %d views: want 1 or %d", len(cfg.Transforms), cfg.Views, cfg.Views)
	}
	for len(l.transforms) < cfg.Views {
		l.transforms = append(l.transforms, l.transforms[0])
	}
	for v, t := range l.transforms {
		if err := t.Check(ds.H, ds.W, ds.C); err != nil {
			return nil, fmt.Errorf("data: loader: view %d: %w", v, err)
		}
		h, w, c := t.OutputShape(ds.H, ds.W, ds.C)
		if v == 0 {
			l.h, l.w, l.c = h, w, c
		} else if h != l.h || w != l.w || c != l.c {
			return nil, fmt.Errorf("data: loader: view %d gives %dx%dx%d images, view 0 %dx%dx%d", v, h, w, c, l.h, l.w, l.c)
		}
	}
	if cfg.DropLast && ds.Len() < cfg.BatchSize {
		return nil, fmt.Errorf("data: loader: %d images, fewer than one batch of %d with drop-last", ds.Len(), cfg.BatchSize)
	}
	return l, nil
}

// StepsPerEpoch implements Loader.
func (l *ImageLoader) StepsPerEpoch() int {
	n, b := l.ds.Len(), l.cfg.BatchSize
	if l.cfg.DropLast {
		return n / b
	}
	return (n + b - 1) / b
}

// NumExamples implements Loader.
func (l *ImageLoader) NumExamples() int { return l.ds.Len() }

// ImageShape is the shape of one output view: H, W, C.
func (l *ImageLoader) ImageShape() (h, w, c int) { return l.h, l.w, l.c }

// Views is V, the number of views per image.
func (l *ImageLoader) Views() int { return l.cfg.Views }

// Dataset is the dataset the loader draws from.
func (l *ImageLoader) Dataset() *Dataset { return l.ds }

// Order is the order in which epoch e visits the dataset's images.
func (l *ImageLoader) Order(e int) []int {
	if !l.cfg.Shuffle {
		p := make([]int, l.ds.Len())
		for i := range p {
			p[i] = i
		}
		return p
	}
	return NewRNG(l.cfg.Seed, 0x5bd1e995, uint64(e)).Perm(l.ds.Len())
}

type batchResult struct {
	b   Batch
	err error
}

type batchJob struct {
	step int
	out  chan batchResult
}

// Epoch implements Loader: batches are prepared by Workers goroutines, at most about Prefetch ahead of
// the consumer, and yielded in order.
func (l *ImageLoader) Epoch(e int) iter.Seq2[Batch, error] {
	return func(yield func(Batch, error) bool) {
		steps := l.StepsPerEpoch()
		if steps == 0 {
			return
		}
		order := l.Order(e)
		done := make(chan struct{})
		jobs := make(chan batchJob)
		pending := make(chan chan batchResult, l.cfg.Prefetch)
		var wg sync.WaitGroup
		wg.Go(func() {
			defer close(jobs)
			defer close(pending)
			for s := range steps {
				out := make(chan batchResult, 1)
				select {
				case pending <- out:
				case <-done:
					return
				}
				select {
				case jobs <- batchJob{s, out}:
				case <-done:
					return
				}
			}
		})
		for range min(l.cfg.Workers, steps) {
			wg.Go(func() {
				var ws Workspace
				var rng RNG
				for j := range jobs {
					b, err := l.makeBatch(order, e, j.step, &ws, &rng)
					j.out <- batchResult{b, err}
				}
			})
		}
		defer func() {
			close(done)
			wg.Wait()
		}()
		for out := range pending {
			r := <-out
			if !yield(r.b, r.err) || r.err != nil {
				return
			}
		}
	}
}

// makeBatch prepares batch step of epoch e.
func (l *ImageLoader) makeBatch(order []int, e, step int, ws *Workspace, rng *RNG) (b Batch, err error) {
	defer catch.Recover(&err, fmt.Sprintf("data: loader: epoch %d batch %d: ", e, step))
	bs := l.cfg.BatchSize
	lo := step * bs
	hi := min(lo+bs, len(order))
	n := hi - lo
	V := l.cfg.Views
	dims := []int{n, l.h, l.w, l.c}
	if V > 1 {
		dims = []int{n, V, l.h, l.w, l.c}
	}
	images := tensors.FromShape(shapes.Make(dtypes.Float32, dims...))
	labels := make([]int32, n)
	indices := make([]int32, n)
	size := l.h * l.w * l.c
	ds := l.ds
	var augErr error
	err = tensors.MutableFlatData(images, func(flat []float32) {
		for i := range n {
			idx := order[lo+i]
			labels[i], indices[i] = ds.Labels[idx], int32(idx)
			src := ds.Image(idx)
			for v := range V {
				rng.Seed(l.cfg.Seed, uint64(e), uint64(idx), uint64(v))
				dst := flat[(i*V+v)*size : (i*V+v+1)*size]
				if aerr := l.transforms[v].Apply(dst, src, ds.H, ds.W, ds.C, ws, rng); aerr != nil && augErr == nil {
					augErr = aerr
				}
			}
		}
	})
	if err == nil {
		err = augErr
	}
	if err != nil {
		return Batch{}, fmt.Errorf("data: loader: epoch %d batch %d: %w", e, step, err)
	}
	return Batch{
		Images:  images,
		Labels:  tensors.FromFlatDataAndDimensions(labels, n),
		Indices: tensors.FromFlatDataAndDimensions(indices, n),
		Size:    n,
	}, nil
}
