//go:build amd64 && !purego

package cpu

import "math"

// The AVX2/FMA and AVX-512 vector loops of vec_amd64.s (written by vec_amd64_gen.py). They need
// no GOEXPERIMENT, and run only when the active kernel path has AVX2 and FMA (vec8) or AVX-512
// (vec16). Lengths are in
// elements; the Go wrappers (math32_amd64.go, binary_amd64.go, reduce_amd64.go,
// batchnorm_amd64.go, dot_amd64.go) check bounds and handle the tails.

//go:generate python3 vec_amd64_gen.py

// vecTab32 holds the constants of the loops, each replicated over 16 lanes (64 bytes), at the
// indices vec_amd64_gen.py names.
var vecTab32 = func() (t [34][16]float32) {
	set := func(i int, v float32) {
		for l := range t[i] {
			t[i][l] = v
		}
	}
	set(0, log2E32)
	set(1, -ln2Hi32)
	set(2, -ln2Lo32)
	for i := 0; i < 5; i++ {
		set(3+i, expPoly32[4-i]) // c4, c3, c2, c1, c0
	}
	set(8, 1)
	set(9, math.Float32frombits(127))
	set(10, expNormLo32)
	set(11, expNormHi32)
	set(12, math.Float32frombits(0x80000000))
	set(13, erfOne32)
	set(14, erfMid32)
	for i, c := range erfSmallPoly32 {
		set(15+i, c)
	}
	for i, c := range erfLargePoly32 {
		set(21+i, c)
	}
	return t
}()

//go:noescape
func expBlocksAVX2(dst, src *float32, n int, check bool) int

//go:noescape
func erfBlocksAVX2(dst, src *float32, n int)

// expBlocksAVX512 and erfBlocksAVX512 are expBlocksAVX2 and erfBlocksAVX2 on 16 lanes (n a
// multiple of 16), for the avx512 path (vec16).

//go:noescape
func expBlocksAVX512(dst, src *float32, n int, check bool) int

//go:noescape
func erfBlocksAVX512(dst, src *float32, n int)

//go:noescape
func sumBlocksAVX2(x *float32, n int) float64

//go:noescape
func maxBlocksAVX2(x *float32, n int, t *float32)

//go:noescape
func minBlocksAVX2(x *float32, n int, t *float32)

//go:noescape
func addRows4AVX2(acc *float64, x *float32, cols, c4 int)

//go:noescape
func addRow1AVX2(acc *float64, x *float32, c4 int)

//go:noescape
func bnMomentsAVX2(s1, s2, x, k *float32, c, size, c8 int)

//go:noescape
func bnGradSumsAVX2(s1, s2, gr, x, k *float32, c, size, c8 int)

//go:noescape
func bnNormalizeAVX2(out, x, hi, lo, a, b *float32, c, rows, c8 int)

//go:noescape
func bnGradRowsAVX2(dx, gr, x, m, ka, kb, kd *float32, c, rows, c8 int)

// The binary ops: VV reads a[i] and b[i], VS a[i] and the scalar b[0], SV the scalar a[0] and
// b[i], for i < n (a multiple of 8).

//go:noescape
func binAddVVAVX2(out, a, b *float32, n int)

//go:noescape
func binAddVSAVX2(out, a, b *float32, n int)

//go:noescape
func binAddSVAVX2(out, a, b *float32, n int)

//go:noescape
func binSubVVAVX2(out, a, b *float32, n int)

//go:noescape
func binSubVSAVX2(out, a, b *float32, n int)

//go:noescape
func binSubSVAVX2(out, a, b *float32, n int)

//go:noescape
func binMulVVAVX2(out, a, b *float32, n int)

//go:noescape
func binMulVSAVX2(out, a, b *float32, n int)

//go:noescape
func binMulSVAVX2(out, a, b *float32, n int)

//go:noescape
func binDivVVAVX2(out, a, b *float32, n int)

//go:noescape
func binDivVSAVX2(out, a, b *float32, n int)

//go:noescape
func binDivSVAVX2(out, a, b *float32, n int)

//go:noescape
func binMaxVVAVX2(out, a, b *float32, n int)

//go:noescape
func binMaxVSAVX2(out, a, b *float32, n int)

//go:noescape
func binMaxSVAVX2(out, a, b *float32, n int)

//go:noescape
func binMinVVAVX2(out, a, b *float32, n int)

//go:noescape
func binMinVSAVX2(out, a, b *float32, n int)

//go:noescape
func binMinSVAVX2(out, a, b *float32, n int)

// The small-product row kernels (dotSmall32): rows × vectors of 8 columns, into t (rows 24 apart).

//go:noescape
func dotRows4x1AVX2(k int, a *float32, as, ap int, pb, t *float32)

//go:noescape
func dotRows1x1AVX2(k int, a *float32, as, ap int, pb, t *float32)

//go:noescape
func dotRows4x2AVX2(k int, a *float32, as, ap int, pb, t *float32)

//go:noescape
func dotRows1x2AVX2(k int, a *float32, as, ap int, pb, t *float32)

//go:noescape
func dotRows3x3AVX2(k int, a *float32, as, ap int, pb, t *float32)

//go:noescape
func dotRows1x3AVX2(k int, a *float32, as, ap int, pb, t *float32)

//go:noescape
func cmpGEVSAVX2(out, a, b *float32, n int)

//go:noescape
func cmpGTVSAVX2(out, a, b *float32, n int)

//go:noescape
func whereVSAVX2(out, c, t, f *float32, n int)

//go:noescape
func whereVVAVX2(out, c, t, f *float32, n int)

//go:noescape
func mulAddVVAVX2(out, a, b *float32, n int)

// The AVX-512 reductions and batch-norm kernels (the avx512 path, vec16): 16 lanes, with the last
// partial block read and written through the opmask tail (tailMask16), so they take any length.

//go:noescape
func sumBlocksAVX512(x *float32, n int, tail int) float64

//go:noescape
func maxBlocksAVX512(x *float32, n int, t *float32, tail int)

//go:noescape
func minBlocksAVX512(x *float32, n int, t *float32, tail int)

//go:noescape
func addRows4AVX512(acc *float64, x *float32, cols, tail int)

//go:noescape
func addRows1AVX512(acc *float64, x *float32, cols, tail int)

//go:noescape
func bnMomentsAVX512(s1, s2, x, k *float32, c, size, c16, tail int)

//go:noescape
func bnGradSumsAVX512(s1, s2, gr, x, k *float32, c, size, c16, tail int)

//go:noescape
func bnNormalizeAVX512(out, x, hi, lo, a, b *float32, c, rows, c16, tail int)

//go:noescape
func bnGradRowsAVX512(dx, gr, x, m, ka, kb, kd *float32, c, rows, c16, tail int)

// tailMask16 is the opmask of the n mod w lanes of a last partial block of w (16, or 8 for the
// float64 blocks) lanes.
func tailMask16(n, w int) int { return 1<<(n%w) - 1 }

// affineReLUAVX512, affineAddReLUAVX512 and affine2ReLUAVX512 are the row loops of fused.go's
// affineReLU programs on 16 lanes (vec16).

//go:noescape
func affineReLUAVX512(out, x, a, b, z *float32, c, rows, c16, tail int)

//go:noescape
func affineAddReLUAVX512(out, x, a, b, s, z *float32, c, rows, c16, tail int)

//go:noescape
func affine2ReLUAVX512(out, x, a, b, x2, a2, b2, z *float32, c, rows, c16, tail int)

// reluGradAVX512 and reluGradAddAVX512 are the loops of fused.go's reluGrad programs on 16 lanes
// (vec16).

//go:noescape
func reluGradAVX512(out, y, gr, z, f *float32, n, tail int)

//go:noescape
func reluGradAddAVX512(out, y, gr, g2, z, f *float32, n, tail int)

//go:noescape
func bnNormalizeReLUAVX512(out, relu, x, hi, lo, a, b *float32, c, rows, c16, tail int)

//go:noescape
func bnNormalizeAddReLUAVX512(out, relu, x, s, hi, lo, a, b *float32, c, rows, c16, tail int)

// bnNormalizeReLUMaskAVX512 and bnNormalizeAddReLUMaskAVX512 are the normalisation loops of a
// training batch norm that writes its ReLU and the mask of y ≥ 0 instead of y (see
// fuseReLUMask), on rows of a multiple of 16 features (vec16); reluGradMaskAVX512 and
// reluGradAddMaskAVX512 are the ReLU-gradient loops that read that mask.

//go:noescape
func bnNormalizeReLUMaskAVX512(relu *float32, mask *uint32, x, hi, lo, a, b *float32, c, rows int)

//go:noescape
func bnNormalizeAddReLUMaskAVX512(relu *float32, mask *uint32, x, s, hi, lo, a, b *float32, c, rows int)

//go:noescape
func reluGradMaskAVX512(out *float32, mask *uint32, gr, f *float32, n, tail int)

//go:noescape
func reluGradAddMaskAVX512(out *float32, mask *uint32, gr, g2, f *float32, n, tail int)

// bnNormalize2AddReLUMaskAVX512 is bnNormalizeAddReLUMaskAVX512 with the residual normalised in
// the loop from another batch norm's operand (see fuseShortcutNorm).
//
//go:noescape
func bnNormalize2AddReLUMaskAVX512(relu *float32, mask *uint32, x, xs, k *float32, c, rows int)
