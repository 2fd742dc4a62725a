package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/backends"

	"github.com/ifa-toolkit/ifa/internal/cpu/kernels"
)

// benchISAs runs f as a sub-benchmark on each vector path this processor supports (avx512, avx2),
// so that with -count the paths alternate (A/B interleaved on a shared machine). f(b) returns the
// bytes one call moves; the metrics are GB per wall second and per CPU-second of the process.
func benchISAs(b *testing.B, f func() (bytes float64, call func())) {
	for _, isa := range kernels.SupportedISAs() {
		if isa < kernels.ISAAVX2 {
			continue
		}
		b.Run(isa.String(), func(b *testing.B) {
			prev, err := kernels.SetISA(isa)
			if err != nil {
				b.Fatal(err)
			}
			defer kernels.SetISA(prev)
			bytes, call := f()
			call()
			b.ResetTimer()
			cpu0 := cpuSeconds()
			for b.Loop() {
				call()
			}
			cpu := cpuSeconds() - cpu0
			b.ReportMetric(bytes*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
			b.ReportMetric(bytes*float64(b.N)/cpu/1e9, "GB-per-cpu-s")
		})
	}
}

// BenchmarkBatchNormLastAxis times the channels-last batch-norm passes (split over the cores) on
// resnet8x4-like activations, a feature count that is a multiple of 16 and one that is not.
// Bytes: the forward pass reads x twice and writes y; the gradient reads x and ∂y twice and
// writes ∂x.
func BenchmarkBatchNormLastAxis(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, sh := range []struct{ rows, c int }{{64 * 32 * 32, 64}, {64 * 16 * 16, 40}} {
		rows, c := sh.rows, sh.c
		x := randFloats[float32](rng, rows*c)
		g := randFloats[float32](rng, rows*c)
		scale, offset := randFloats[float32](rng, c), randFloats[float32](rng, c)
		y, mean, variance := make([]float32, rows*c), make([]float32, c), make([]float32, c)
		gx, gs, gb := make([]float32, rows*c), make([]float32, c), make([]float32, c)
		n := float64(4 * rows * c)
		b.Run(fmt.Sprintf("forward/%dx%d", rows, c), func(b *testing.B) {
			benchISAs(b, func() (float64, func()) {
				return 3 * n, func() { bnTrainLastAxis(bnTrainOut{y: y}, mean, variance, x, scale, offset, 1e-5, rows, c) }
			})
		})
		b.Run(fmt.Sprintf("gradient/%dx%d", rows, c), func(b *testing.B) {
			benchISAs(b, func() (float64, func()) {
				return 5 * n, func() { bnGradLastAxis(gx, gs, gb, x, scale, mean, variance, g, 1e-5, rows, c) }
			})
		})
	}
}

// BenchmarkReduceRows32 times the float32 reductions (split over the cores): sums and maxima of
// rows of 300 and 1000, and sums over the leading axis with 100 columns. Bytes: one read of x.
func BenchmarkReduceRows32(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, tc := range []struct {
		name string
		op   backends.OpType
		dims []int
		red  []bool
	}{
		{"sum/rows4096x300", backends.OpTypeReduceSum, []int{4096, 300}, []bool{false, true}},
		{"max/rows4096x300", backends.OpTypeReduceMax, []int{4096, 300}, []bool{false, true}},
		{"sum/rows512x1000", backends.OpTypeReduceSum, []int{512, 1000}, []bool{false, true}},
		{"sum/leading8192x100", backends.OpTypeReduceSum, []int{8192, 100}, []bool{true, false}},
	} {
		n := tc.dims[0] * tc.dims[1]
		x := randFloats[float32](rng, n)
		gs := reduceGroups(tc.dims, tc.red)
		outN := tc.dims[0]
		if tc.red[0] {
			outN = tc.dims[1]
		}
		out := make([]float32, outN)
		op := tc.op
		b.Run(tc.name, func(b *testing.B) {
			benchISAs(b, func() (float64, func()) {
				return float64(4 * n), func() {
					if !reduceFast32(op, out, x, gs) {
						b.Fatal("not a fast reduction")
					}
				}
			})
		})
	}
}
