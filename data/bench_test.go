package data

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
)

// BenchmarkAugment measures augmented images per second of each transform, on one goroutine per
// core (GOMAXPROCS).
func BenchmarkAugment(b *testing.B) {
	for _, tc := range []struct {
		name    string
		h, w, c int
		p       Pipeline
	}{
		{"cifar/32x32x3", 32, 32, 3, StandardTransform(32, 4, CIFARNorm())},
		{"simclr/32x32x3", 32, 32, 3, SimCLRTransform(32, CIFARNorm(), SimCLROptions{})},
		{"cifar/28x28x1", 28, 28, 1, StandardTransform(28, 4, FashionMNISTNorm())},
		{"simclr/28x28x1", 28, 28, 1, SimCLRTransform(28, FashionMNISTNorm(), SimCLROptions{})},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ds := synthDataset(256, tc.h, tc.w, tc.c, 10)
			workers := runtime.GOMAXPROCS(0)
			oh, ow, oc := tc.p.OutputShape(tc.h, tc.w, tc.c)
			const perIter = 256
			for b.Loop() {
				var wg sync.WaitGroup
				for wk := range workers {
					wg.Go(func() {
						var ws Workspace
						var rng RNG
						dst := make([]float32, oh*ow*oc)
						for i := wk; i < perIter; i += workers {
							rng.Seed(1, uint64(i))
							_ = tc.p.Apply(dst, ds.Image(i), tc.h, tc.w, tc.c, &ws, &rng)
						}
					})
				}
				wg.Wait()
			}
			b.ReportMetric(float64(b.N*perIter)/b.Elapsed().Seconds(), "images/s")
		})
	}
}

// BenchmarkLoader measures the loader end to end (shuffle, 2 SimCLR views, batching into tensors).
func BenchmarkLoader(b *testing.B) {
	for _, shape := range [][3]int{{32, 32, 3}, {28, 28, 1}} {
		b.Run(fmt.Sprintf("simclr2views/%dx%dx%d", shape[0], shape[1], shape[2]), func(b *testing.B) {
			ds := synthDataset(2048, shape[0], shape[1], shape[2], 10)
			norm := CIFARNorm()
			if shape[2] == 1 {
				norm = FashionMNISTNorm()
			}
			l, err := NewLoader(ds, LoaderConfig{BatchSize: 256, Views: 2, Shuffle: true,
				Transforms: []Pipeline{SimCLRTransform(shape[0], norm, SimCLROptions{})}})
			if err != nil {
				b.Fatal(err)
			}
			e := 0
			for b.Loop() {
				for _, err := range l.Epoch(e) {
					if err != nil {
						b.Fatal(err)
					}
				}
				e++
			}
			b.ReportMetric(float64(b.N*ds.Len())/b.Elapsed().Seconds(), "images/s")
		})
	}
}

// BenchmarkOps measures each SimCLR step alone on a 32×32×3 image (the time includes refilling the
// image).
func BenchmarkOps(b *testing.B) {
	ops := map[string]Op{
		"rrc":    RandomResizedCrop{H: 32, W: 32, ScaleMin: 0.08, ScaleMax: 1, RatioMin: 0.75, RatioMax: 4.0 / 3},
		"jitter": ColorJitter{Brightness: 0.4, Contrast: 0.4, Saturation: 0.4, Hue: 0.1, P: 1},
		"blur":   GaussianBlur{SigmaMin: 0.1, SigmaMax: 2, P: 1},
		"gray":   RandomGrayscale{P: 1},
		"norm":   CIFARNorm(),
	}
	for name, op := range ops {
		b.Run(name, func(b *testing.B) {
			img := knownImage(32, 32, 3)
			var ws Workspace
			rng := NewRNG(1)
			for b.Loop() {
				op.Apply(img, &ws, rng)
				for i := range img.Pix {
					img.Pix[i] = 0.5
				}
			}
		})
	}
}
