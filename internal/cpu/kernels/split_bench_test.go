package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkSplitK times products split along k (weight gradients: small outputs, long sums) in
// GFLOP/s of wall time and of the process's CPU time (steadier on a shared machine): a stem
// convolution's and a 1×1 convolution's weight gradient over a batch of 64 32×32 or 16×16 images,
// a ViT MLP's over 64·65 tokens, and a tall-thin case.
func BenchmarkSplitK(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, s := range []struct {
		name    string
		m, n, k int
	}{
		{"stem_dW_32x27x65536", 32, 27, 65536},
		{"conv1x1_dW_128x64x16384", 128, 64, 16384},
		{"conv3x3s2_dW_128x576x16384", 128, 576, 16384},
		{"vit_mlp_dW_192x768x4160", 192, 768, 4160},
		{"thin_4x4x262144", 4, 4, 262144},
	} {
		a := toF32(randSlice(rng, s.k*s.m)) // k×m: transposed A, as weight gradients read it
		bb := toF32(randSlice(rng, s.k*s.n))
		c := make([]float32, s.m*s.n)
		flops := 2 * float64(s.m) * float64(s.n) * float64(s.k)
		b.Run(fmt.Sprintf("%s/parts=%d", s.name, splitKParts(s.m, s.n, s.k)), func(b *testing.B) {
			cpu0 := processCPUSeconds()
			for b.Loop() {
				Sgemm(true, false, s.m, s.n, s.k, 1, a, s.m, bb, s.n, 0, c, s.n)
			}
			cpu := processCPUSeconds() - cpu0
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			b.ReportMetric(flops*float64(b.N)/cpu/1e9, "GFLOP/cpu-s")
		})
	}
}
