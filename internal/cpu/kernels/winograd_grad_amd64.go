//go:build amd64 && !purego

package kernels

// wino4GradOutputAVX512 computes the F(3×3, 4×4) weight-gradient output transform of n16 groups
// of 16 channels c: the sums s_ξ = Σ_{q < parts} m[q·ps + ξ·xs + c] over the parts in order, then
// dw[(3k + l)·ks + c] = (Gᵀ·s·G)[k][l] with the operations of wino4FilterOutput (scale is
// wino4Scale; scratch holds 36·16 floats; strides in elements; parts ≥ 1).
//
//go:noescape
func wino4GradOutputAVX512(m *float32, xs, parts, ps int, scale, dw *float32, ks, n16 int, scratch *float32)

// wino4GradOutputVec runs the output transform of channels [0, 16·⌊n/16⌋) of one input channel
// (see winoGradForm.outputVec) on the avx512 path and returns the channels done (0 elsewhere).
func wino4GradOutputVec(m []float32, xs, parts, ps int, dw []float32, ks, n int, scratch *[winoMaxXi * 16]float32) int {
	n16 := n / 16
	if cur().isa < ISAAVX512 || n16 == 0 || parts < 1 {
		return 0
	}
	_ = m[(parts-1)*ps+35*xs+16*n16-1]
	_ = dw[8*ks+16*n16-1]
	wino4GradOutputAVX512(&m[0], xs, parts, ps, &wino4Scale[0], &dw[0], ks, n16, &scratch[0])
	return 16 * n16
}
