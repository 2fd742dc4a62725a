//go:build amd64 && !purego

package cpu

// hasSmallDot32 reports whether dotSmall32 runs here (AVX2 and FMA).
func hasSmallDot32() bool { return vec8() }

// dotSmall32 computes C [m×n] = op(A)·op(B) for a small product with n ≤ 24 (an attention head's
// scores or values): B is packed once into k rows of n padded to whole 8-lane vectors (pb holds at
// least k·⌈n/8⌉·8 floats), then blocks of rows of C are accumulated in registers, one broadcast
// element of A times one packed row of B per fused multiply-add (vec_amd64.s), and stored once.
// op(A)[i, p] is a[i·lda+p], or a[p·lda+i] when transA; op(B)[p, j] is b[p·ldb+j], or b[j·ldb+p]
// when transB.
func dotSmall32(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, pb []float32) {
	if m == 0 || n == 0 {
		return
	}
	nv := (n + 7) / 8
	np := nv * 8
	if k == 0 {
		for i := 0; i < m; i++ {
			clear(c[i*ldc : i*ldc+n])
		}
		return
	}
	packDotB32(pb[:k*np], np, transB, n, k, b, ldb)
	as, ap := lda, 1 // steps in a between rows of op(A), along k
	if transA {
		as, ap = 1, lda
	}
	// The last element of A a block of rows reads.
	_ = a[(m-1)*as+(k-1)*ap]
	var t [4 * 24]float32
	store := func(i, rows int) {
		for r := 0; r < rows; r++ {
			copy(c[(i+r)*ldc:(i+r)*ldc+n], t[r*24:r*24+n])
		}
	}
	i := 0
	switch nv {
	case 1:
		for ; i+4 <= m; i += 4 {
			dotRows4x1AVX2(k, &a[i*as], as, ap, &pb[0], &t[0])
			store(i, 4)
		}
		for ; i < m; i++ {
			dotRows1x1AVX2(k, &a[i*as], as, ap, &pb[0], &t[0])
			store(i, 1)
		}
	case 2:
		for ; i+4 <= m; i += 4 {
			dotRows4x2AVX2(k, &a[i*as], as, ap, &pb[0], &t[0])
			store(i, 4)
		}
		for ; i < m; i++ {
			dotRows1x2AVX2(k, &a[i*as], as, ap, &pb[0], &t[0])
			store(i, 1)
		}
	default:
		for ; i+3 <= m; i += 3 {
			dotRows3x3AVX2(k, &a[i*as], as, ap, &pb[0], &t[0])
			store(i, 3)
		}
		for ; i < m; i++ {
			dotRows1x3AVX2(k, &a[i*as], as, ap, &pb[0], &t[0])
			store(i, 1)
		}
	}
}

// packDotB32 writes op(B) [k×n] into pb as k rows of np ≥ n floats, zero-padded.
func packDotB32(pb []float32, np int, transB bool, n, k int, b []float32, ldb int) {
	if !transB {
		for p := 0; p < k; p++ {
			row := pb[p*np : (p+1)*np]
			copy(row, b[p*ldb:p*ldb+n])
			clear(row[n:])
		}
		return
	}
	for p := 0; p < k; p++ {
		clear(pb[p*np+n : (p+1)*np])
	}
	for j := 0; j < n; j++ {
		col := pb[j:]
		for p, v := range b[j*ldb : j*ldb+k] {
			col[p*np] = v
		}
	}
}
