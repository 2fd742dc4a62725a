//go:build !amd64 || purego

package cpu

// hasSmallDot32 reports whether dotSmall32 is the faster path here: not in this build (no 8-lane
// kernels), where the packed GEMM runs instead.
func hasSmallDot32() bool { return false }

// dotSmall32 computes C [m×n] = op(A)·op(B) with plain loops (the contract of the 8-lane version;
// pb is unused).
func dotSmall32(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, pb []float32) {
	as, ap := lda, 1
	if transA {
		as, ap = 1, lda
	}
	bp, bs := ldb, 1
	if transB {
		bp, bs = 1, ldb
	}
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float32
			for p := 0; p < k; p++ {
				s += a[i*as+p*ap] * b[j*bs+p*bp]
			}
			c[i*ldc+j] = s
		}
	}
}
