package kernels

import (
	"fmt"
	"testing"
)

// BenchmarkConvStrided measures the convolutions of resnet8x4 that Winograd does not take, at batch
// 64: the stride-2 3×3 (padding 1) and 1×1 downsampling layers and the 3-channel 3×3 stem —
// forward (SconvIm2col), input gradient (SconvInputGradient) and weight gradient (SconvIm2colT). GFLOP/s counts the direct product's
// 2·Pixels·PatchSize·OutC flops, per second of wall time and per CPU-second of the process (steadier
// on a shared machine).
func BenchmarkConvStrided(b *testing.B) {
	for _, l := range []struct {
		hw, k, s, cin, cout int
	}{{32, 3, 2, 64, 128}, {16, 3, 2, 128, 256}, {32, 1, 2, 64, 128}, {16, 1, 2, 128, 256}, {32, 3, 1, 3, 32}} {
		pad := l.k / 2
		ohw := (l.hw+2*pad-l.k)/l.s + 1
		g := ConvGeometry{Batch: 64, InH: l.hw, InW: l.hw, InC: l.cin, KH: l.k, KW: l.k, OutH: ohw, OutW: ohw,
			StrideH: l.s, StrideW: l.s, PadTop: pad, PadLeft: pad}
		x := make([]float32, g.InputSize())
		for i := range x {
			x[i] = float32(i%13) * 0.1
		}
		w := make([]float32, g.PatchSize()*l.cout)
		for i := range w {
			w[i] = float32(i%7) * 0.1
		}
		y := make([]float32, g.Pixels()*l.cout)
		for i := range y {
			y[i] = float32(i%5) * 0.1
		}
		flops := 2 * float64(g.Pixels()) * float64(g.PatchSize()) * float64(l.cout)
		name := fmt.Sprintf("%dx%dx%dto%d_k%d_s%d", l.hw, l.hw, l.cin, l.cout, l.k, l.s)
		run := func(b *testing.B, f func() error) {
			cpu0 := processCPUSeconds()
			for b.Loop() {
				if err := f(); err != nil {
					b.Fatal(err)
				}
			}
			cpu := processCPUSeconds() - cpu0
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			b.ReportMetric(flops*float64(b.N)/cpu/1e9, "GFLOP/cpu-s")
			b.ReportMetric(1000*cpu/float64(b.N), "cpu-ms/op")
		}
		b.Run(name+"/forward", func(b *testing.B) {
			run(b, func() error { return SconvIm2col(g, l.cout, 1, x, w, l.cout, 0, y, l.cout) })
		})
		if l.cin < 16 { // the path the CPU backend takes for few input channels
			b.Run(name+"/forward_few_channels", func(b *testing.B) {
				run(b, func() error { return SconvFewChannels(g, l.cout, 1, x, w, l.cout, 0, y, l.cout) })
			})
		}
		b.Run(name+"/input_grad", func(b *testing.B) {
			run(b, func() error { return SconvInputGradient(g, l.cout, y, w, x) })
		})
		b.Run(name+"/kernel_grad", func(b *testing.B) {
			run(b, func() error { return SconvIm2colT(g, l.cout, 1, x, y, l.cout, 0, w, l.cout) })
		})
	}
}
