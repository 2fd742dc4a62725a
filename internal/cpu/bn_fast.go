package cpu

import "math"

// Fast batch norm for float32 operands whose feature axis is the last one (channels-last: rows of
// C features). The training forward pass reads x twice (per-feature sums, then the normalisation),
// the gradient reads x and ∂y twice (Σ∂y and Σ∂y·(x−μ), then ∂x). Sums are taken in float32 over
// blocks of at most bnBlockRows rows and added in float64; rows are cut into fixed chunks whose
// float64 partial sums are merged in chunk order, so results do not depend on how the chunks are
// spread over goroutines. The batch statistics are sums of x − k, with k a per-feature estimate of
// the mean from a few sampled rows, so the variance stays accurate when |μ| ≫ σ.

// bnBlockRows is the number of rows summed in float32 before the sums are added in float64.
const bnBlockRows = 32

// bnChunkElems is about the number of elements of a chunk of rows (the unit of work of a goroutine).
const bnChunkElems = 1 << 14

// bnShiftSamples is the number of rows sampled to estimate the mean used as the shift.
const bnShiftSamples = 32

// bnChunkedSums returns per-feature float64 sums s1, s2 ([c]) over rows [0, rows): block(r0, r1,
// b1, b2) must write into b1, b2 ([c]) the float32 sums of rows [r0, r1) (at most bnBlockRows).
func bnChunkedSums(rows, c int, block func(r0, r1 int, b1, b2 []float32)) (s1, s2 []float64) {
	chunkRows := max(bnBlockRows, bnChunkElems/max(c, 1)/bnBlockRows*bnBlockRows)
	nChunks := (rows + chunkRows - 1) / chunkRows
	part := make([]float64, nChunks*2*c)
	parallelFor(nChunks, 1, func(k0, k1 int) {
		b1 := make([]float32, c)
		b2 := make([]float32, c)
		for k := k0; k < k1; k++ {
			p1 := part[k*2*c : k*2*c+c]
			p2 := part[k*2*c+c : (k+1)*2*c]
			end := min(rows, (k+1)*chunkRows)
			for r := k * chunkRows; r < end; r += bnBlockRows {
				block(r, min(end, r+bnBlockRows), b1, b2)
				for j := range p1 {
					p1[j] += float64(b1[j])
					p2[j] += float64(b2[j])
				}
			}
		}
	})
	s1 = make([]float64, c)
	s2 = make([]float64, c)
	for k := 0; k < nChunks; k++ {
		p1 := part[k*2*c : k*2*c+c]
		p2 := part[k*2*c+c : (k+1)*2*c]
		for j := range s1 {
			s1[j] += p1[j]
			s2[j] += p2[j]
		}
	}
	return s1, s2
}

// bnShift estimates the per-feature mean of x ([rows, c]) from up to bnShiftSamples rows spread
// over it.
func bnShift(x []float32, rows, c int) []float32 {
	n := min(rows, bnShiftSamples)
	acc := make([]float64, c)
	for i := 0; i < n; i++ {
		r := i * rows / n
		for j, v := range x[r*c : (r+1)*c] {
			acc[j] += float64(v)
		}
	}
	k := make([]float32, c)
	for j := range k {
		k[j] = float32(acc[j] / float64(max(n, 1)))
	}
	return k
}

// bnTrainLastAxis is BatchNormForTraining of x ([rows, c], float32): out = (x−μ)·γ/√(σ²+ε) + β
// with μ, σ² the per-feature mean and biased variance, written to meanOut and varOut ([c]).
func bnTrainLastAxis(out, meanOut, varOut, x, scale, offset []float32, eps float64, rows, c int) {
	shift := bnShift(x, rows, c)
	s1, s2 := bnChunkedSums(rows, c, func(r0, r1 int, b1, b2 []float32) {
		bnMomentsBlock(b1, b2, x[r0*c:r1*c], shift)
	})
	n := float64(rows)
	// The normalisation is ((x − μhi) − μlo)·a + β, with μ = μhi + μlo split in two float32s: x − μhi
	// is exact when x is near μ, so the deviation keeps its precision when |μ| ≫ σ.
	hi := make([]float32, c)
	lo := make([]float32, c)
	a := make([]float32, c)
	for j := range c {
		d := s1[j] / n
		mean := float64(shift[j]) + d
		variance := max(0, s2[j]/n-d*d)
		meanOut[j] = float32(mean)
		varOut[j] = float32(variance)
		hi[j] = float32(mean)
		lo[j] = float32(mean - float64(hi[j]))
		a[j] = float32(float64(scale[j]) / math.Sqrt(variance+eps))
	}
	parallelFor(rows, max(1, elemGrain/max(c, 1)), func(r0, r1 int) {
		bnNormalizeRows(out[r0*c:r1*c], x[r0*c:r1*c], hi, lo, a, offset)
	})
}

// bnInferLastAxis is BatchNormForInference of x ([rows, c], float32): out = (x−μ)·γ/√(σ²+ε) + β
// with the given per-feature μ and σ².
func bnInferLastAxis(out, x, scale, offset, mean, variance []float32, eps float64, rows, c int) {
	a := make([]float32, c)
	for j := range c {
		a[j] = float32(float64(scale[j]) / math.Sqrt(float64(variance[j])+eps))
	}
	zero := make([]float32, c)
	parallelFor(rows, max(1, elemGrain/max(c, 1)), func(r0, r1 int) {
		bnNormalizeRows(out[r0*c:r1*c], x[r0*c:r1*c], mean, zero, a, offset)
	})
}

// bnGradLastAxis is BatchNormGradient of x ([rows, c], float32) given the per-feature γ, μ, σ²
// and ∂y: with x̂ = (x−μ)·r, r = 1/√(σ²+ε) and N = rows, ∂β = Σ∂y, ∂γ = Σ∂y·x̂ and
// ∂x = γ·r·(∂y − ∂β/N − x̂·∂γ/N).
func bnGradLastAxis(gx, gScale, gOffset, x, scale, mean, variance, g []float32, eps float64, rows, c int) {
	sg, sgx := bnChunkedSums(rows, c, func(r0, r1 int, b1, b2 []float32) {
		bnGradSumsBlock(b1, b2, g[r0*c:r1*c], x[r0*c:r1*c], mean)
	})
	n := float64(rows)
	ka := make([]float32, c)
	kb := make([]float32, c)
	kd := make([]float32, c)
	for j := range c {
		r := 1 / math.Sqrt(float64(variance[j])+eps)
		s := float64(scale[j])
		gOffset[j] = float32(sg[j])
		gScale[j] = float32(sgx[j] * r)
		// ∂x = s·r·∂y − s·r³·Σ∂y(x−μ)/N·(x−μ) − s·r·Σ∂y/N.
		ka[j] = float32(s * r)
		kb[j] = float32(-s * r * r * r * sgx[j] / n)
		kd[j] = float32(-s * r * sg[j] / n)
	}
	parallelFor(rows, max(1, elemGrain/max(c, 1)), func(r0, r1 int) {
		bnGradRows(gx[r0*c:r1*c], g[r0*c:r1*c], x[r0*c:r1*c], mean, ka, kb, kd)
	})
}

// The row kernels below are the portable versions; bnMomentsBlock, bnNormalizeRows, bnGradSumsBlock
// and bnGradRows dispatch to SIMD ones where they exist. k, hi, lo, a, b, m, ka, kb, kd are [c];
// x, g, out are whole rows of c.

// bnMomentsBlockGo writes s1 = Σ(x−k) and s2 = Σ(x−k)² over the rows of x.
func bnMomentsBlockGo(s1, s2, x, k []float32) {
	c := len(k)
	s1, s2 = s1[:c], s2[:c]
	clear(s1)
	clear(s2)
	for off := 0; off+c <= len(x); off += c {
		row := x[off : off+c]
		for j, kv := range k {
			d := row[j] - kv
			s1[j] += d
			s2[j] += d * d
		}
	}
}

// bnNormalizeRowsGo writes out = ((x − hi) − lo)·a + b.
func bnNormalizeRowsGo(out, x, hi, lo, a, b []float32) {
	c := len(a)
	hi, lo, b = hi[:c], lo[:c], b[:c]
	for off := 0; off+c <= len(x); off += c {
		row := x[off : off+c]
		o := out[off : off+c]
		for j, av := range a {
			o[j] = ((row[j]-hi[j])-lo[j])*av + b[j]
		}
	}
}

// bnGradSumsBlockGo writes s1 = Σg and s2 = Σg·(x−m) over the rows of g and x.
func bnGradSumsBlockGo(s1, s2, g, x, m []float32) {
	c := len(m)
	s1, s2 = s1[:c], s2[:c]
	clear(s1)
	clear(s2)
	for off := 0; off+c <= len(x); off += c {
		row := x[off : off+c]
		gr := g[off : off+c]
		for j, mv := range m {
			gv := gr[j]
			s1[j] += gv
			s2[j] += gv * (row[j] - mv)
		}
	}
}

// bnGradRowsGo writes dx = ka·g + kb·(x−m) + kd.
func bnGradRowsGo(dx, g, x, m, ka, kb, kd []float32) {
	c := len(m)
	ka, kb, kd = ka[:c], kb[:c], kd[:c]
	for off := 0; off+c <= len(x); off += c {
		row := x[off : off+c]
		gr := g[off : off+c]
		o := dx[off : off+c]
		for j, mv := range m {
			o[j] = ka[j]*gr[j] + kb[j]*(row[j]-mv) + kd[j]
		}
	}
}
