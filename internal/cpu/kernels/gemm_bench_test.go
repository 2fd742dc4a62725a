package kernels

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"
)

// benchShape is one product measured by BenchmarkSgemm; the names say where it occurs in training.
type benchShape struct {
	name           string
	transA, transB bool
	m, n, k        int
}

// benchShapes are square products plus shapes from ResNet-CIFAR (im2col convolutions and their
// gradients, batch 128) and ViT-Tiny (batch 64, 65 tokens, width 192) training steps.
var benchShapes = []benchShape{
	{"square1024", false, false, 1024, 1024, 1024},
	{"square256", false, false, 256, 256, 256},
	{"small128x64x64", false, false, 128, 64, 64},
	{"wide64x3072x256", false, false, 64, 3072, 256},
	{"conv1_fwd_32768x16x27", false, false, 32768, 16, 27},
	{"conv3x3_c64_fwd_8192x64x576", false, false, 8192, 64, 576},
	{"conv3x3_c64_dW_576x64x8192_tA", true, false, 576, 64, 8192},
	{"conv3x3_c64_dX_8192x576x64_tB", false, true, 8192, 576, 64},
	{"vit_qkv_4160x576x192", false, false, 4160, 576, 192},
	{"vit_mlp_dW_192x768x4160_tA", true, false, 192, 768, 4160},
	{"vit_attn_65x65x64_tB", false, true, 65, 65, 64},
	{"proj_fwd_128x2048x2048", false, false, 128, 2048, 2048},
	{"proj_dX_128x2048x2048_tB", false, true, 128, 2048, 2048},
	{"proj_dW_2048x2048x128_tA", true, false, 2048, 2048, 128},
}

func BenchmarkSgemm(b *testing.B) {
	for _, s := range benchShapes {
		b.Run(s.name, func(b *testing.B) {
			ar, ac := s.m, s.k
			if s.transA {
				ar, ac = s.k, s.m
			}
			br, bc := s.k, s.n
			if s.transB {
				br, bc = s.n, s.k
			}
			a := make([]float32, ar*ac)
			bb := make([]float32, br*bc)
			c := make([]float32, s.m*s.n)
			for i := range a {
				a[i] = float32(i%7) * 0.25
			}
			for i := range bb {
				bb[i] = float32(i%5) * 0.5
			}
			best := time.Duration(math.MaxInt64)
			cpu0 := processCPUSeconds()
			for b.Loop() {
				t0 := time.Now()
				Sgemm(s.transA, s.transB, s.m, s.n, s.k, 1, a, ac, bb, bc, 0, c, s.n)
				best = min(best, time.Since(t0))
			}
			flops := 2 * float64(s.m) * float64(s.n) * float64(s.k)
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			// On a shared machine the fastest call is a steadier figure than the mean
			// (bench/peers/sgemm.py --best reports the same for torch.mm).
			b.ReportMetric(flops/best.Seconds()/1e9, "best-GFLOP/s")
			// Work per CPU-second of the process (all goroutines): the efficiency of the packing and
			// the kernels, insensitive to time the other jobs of a shared machine take.
			b.ReportMetric(flops*float64(b.N)/(processCPUSeconds()-cpu0)/1e9, "GFLOP/cpu-s")
		})
	}
}

func BenchmarkDgemm(b *testing.B) {
	for _, size := range []int{64, 256} {
		b.Run(fmt.Sprintf("square%d", size), func(b *testing.B) {
			a := make([]float64, size*size)
			c := make([]float64, size*size)
			for i := range a {
				a[i] = float64(i % 7)
			}
			for b.Loop() {
				Dgemm(false, false, size, size, size, 1, a, size, a, size, 0, c, size)
			}
			b.ReportMetric(2*float64(size*size*size)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkConv measures the fused im2col convolutions on ResNet-CIFAR layers (batch 32, 3×3,
// "same" padding): forward, weight gradient and input gradient.
func BenchmarkConv(b *testing.B) {
	for _, l := range []struct {
		name       string
		hw, c, out int
	}{
		{"c16_32x32", 32, 16, 16},
		{"c32_16x16", 16, 32, 32},
		{"c64_8x8", 8, 64, 64},
		{"b64_c64_32x32", 32, 64, 64},
		{"b64_c128_16x16", 16, 128, 128},
	} {
		batch := 32
		if l.name[0] == 'b' {
			batch = 64
		}
		g := ConvGeometry{Batch: batch, InH: l.hw, InW: l.hw, InC: l.c, KH: 3, KW: 3, OutH: l.hw, OutW: l.hw, PadTop: 1, PadLeft: 1}
		x := make([]float32, g.InputSize())
		for i := range x {
			x[i] = float32(i%13) * 0.1
		}
		w := make([]float32, g.PatchSize()*l.out)
		y := make([]float32, g.Pixels()*l.out)
		flops := 2 * float64(g.Pixels()) * float64(g.PatchSize()) * float64(l.out)
		report := func(b *testing.B) {
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		}
		b.Run(l.name+"/forward", func(b *testing.B) {
			for b.Loop() {
				if err := SconvIm2col(g, l.out, 1, x, w, l.out, 0, y, l.out); err != nil {
					b.Fatal(err)
				}
			}
			report(b)
		})
		b.Run(l.name+"/weight_grad", func(b *testing.B) {
			for b.Loop() {
				if err := SconvIm2colT(g, l.out, 1, x, y, l.out, 0, w, l.out); err != nil {
					b.Fatal(err)
				}
			}
			report(b)
		})
		b.Run(l.name+"/input_grad", func(b *testing.B) {
			gg, err := g.InputGradient(l.out)
			if err != nil {
				b.Fatal(err)
			}
			wf, err := FlipHWIO(3, 3, l.c, l.out, w)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if err := SconvIm2col(gg, l.c, 1, y, wf, l.c, 0, x, l.c); err != nil {
					b.Fatal(err)
				}
			}
			report(b)
		})
	}
}

// BenchmarkMicroKernel runs the float32 micro-kernel alone on L1-resident panels (k = 256).
func BenchmarkMicroKernel(b *testing.B) {
	kernels := testKernelsF32()
	for _, k := range testWinoKernels() {
		if !slices.ContainsFunc(kernels, func(o *kernel[float32]) bool { return o.name == k.name }) {
			kernels = append(kernels, k)
		}
	}
	for _, kern := range kernels {
		b.Run(kern.name, func(b *testing.B) {
			const k = 256
			a := make([]float32, k*kern.mr)
			bb := make([]float32, k*kern.nr)
			c := make([]float32, kern.mr*kern.nr)
			for i := range a {
				a[i] = 1
			}
			for i := range bb {
				bb[i] = 1
			}
			for b.Loop() {
				kern.fn(k, &a[0], 1, kern.mr, &bb[0], &c[0], kern.nr, 0)
			}
			b.ReportMetric(2*float64(k*kern.mr*kern.nr)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
