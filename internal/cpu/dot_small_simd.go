//go:build goexperiment.simd && amd64

package cpu

import "simd/archsimd"

// hasSmallDot32 reports whether dotSmall32 runs here (AVX2 and FMA).
func hasSmallDot32() bool { return vec8() }

// dotSmall32 computes C [m×n] = op(A)·op(B) for a small product with n ≤ 24 (an attention head's
// scores or values): B is packed once into k rows of n padded to whole 8-lane vectors (pb holds at
// least k·⌈n/8⌉·8 floats), then blocks of rows of C are accumulated in registers, one broadcast
// element of A times one packed row of B per fused multiply-add, and stored once. op(A)[i, p] is
// a[i·lda+p], or a[p·lda+i] when transA; op(B)[p, j] is b[p·ldb+j], or b[j·ldb+p] when transB.
func dotSmall32(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, pb []float32) {
	nv := (n + 7) / 8
	np := nv * 8
	packDotB32(pb[:k*np], np, transB, n, k, b, ldb)
	as, ap := lda, 1 // steps in a between rows of op(A), along k
	if transA {
		as, ap = 1, lda
	}
	i := 0
	switch nv {
	case 1:
		for ; i+4 <= m; i += 4 {
			dotRows4x1(k, a, i*as, as, ap, pb, c, i*ldc, ldc, n)
		}
		for ; i < m; i++ {
			dotRows1x1(k, a, i*as, as, ap, pb, c, i*ldc, ldc, n)
		}
	case 2:
		for ; i+4 <= m; i += 4 {
			dotRows4x2(k, a, i*as, as, ap, pb, c, i*ldc, ldc, n)
		}
		for ; i < m; i++ {
			dotRows1x2(k, a, i*as, as, ap, pb, c, i*ldc, ldc, n)
		}
	default:
		for ; i+3 <= m; i += 3 {
			dotRows3x3(k, a, i*as, as, ap, pb, c, i*ldc, ldc, n)
		}
		for ; i < m; i++ {
			dotRows1x3(k, a, i*as, as, ap, pb, c, i*ldc, ldc, n)
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

// dotRows4x1 accumulates 4 row(s) of C from A (starting at a[ai], rows as apart, steps ap
// along k) and the packed B (1 vector(s) per row), and stores them at c[ci], rows ldc apart,
// n columns.
func dotRows4x1(k int, a []float32, ai, as, ap int, pb []float32, c []float32, ci, ldc, n int) {
	var c00, c10, c20, c30 archsimd.Float32x8
	pb = pb[:k*8]
	for p := 0; p < k; p++ {
		bp := pb[p*8:]
		b0 := archsimd.LoadFloat32x8Slice(bp[0:])
		off := ai + p*ap
		x0 := archsimd.BroadcastFloat32x8(a[off])
		c00 = b0.MulAdd(x0, c00)
		x1 := archsimd.BroadcastFloat32x8(a[off+as])
		c10 = b0.MulAdd(x1, c10)
		x2 := archsimd.BroadcastFloat32x8(a[off+2*as])
		c20 = b0.MulAdd(x2, c20)
		x3 := archsimd.BroadcastFloat32x8(a[off+3*as])
		c30 = b0.MulAdd(x3, c30)
	}
	row0 := c[ci : ci+n]
	c00.StoreSlicePart(row0[0:])
	row1 := c[ci+1*ldc : ci+1*ldc+n]
	c10.StoreSlicePart(row1[0:])
	row2 := c[ci+2*ldc : ci+2*ldc+n]
	c20.StoreSlicePart(row2[0:])
	row3 := c[ci+3*ldc : ci+3*ldc+n]
	c30.StoreSlicePart(row3[0:])
}

// dotRows1x1 accumulates 1 row(s) of C from A (starting at a[ai], rows as apart, steps ap
// along k) and the packed B (1 vector(s) per row), and stores them at c[ci], rows ldc apart,
// n columns.
func dotRows1x1(k int, a []float32, ai, as, ap int, pb []float32, c []float32, ci, ldc, n int) {
	var c00 archsimd.Float32x8
	pb = pb[:k*8]
	for p := 0; p < k; p++ {
		bp := pb[p*8:]
		b0 := archsimd.LoadFloat32x8Slice(bp[0:])
		off := ai + p*ap
		x0 := archsimd.BroadcastFloat32x8(a[off])
		c00 = b0.MulAdd(x0, c00)
	}
	row0 := c[ci : ci+n]
	c00.StoreSlicePart(row0[0:])
}

// dotRows4x2 accumulates 4 row(s) of C from A (starting at a[ai], rows as apart, steps ap
// along k) and the packed B (2 vector(s) per row), and stores them at c[ci], rows ldc apart,
// n columns.
func dotRows4x2(k int, a []float32, ai, as, ap int, pb []float32, c []float32, ci, ldc, n int) {
	var c00, c01, c10, c11, c20, c21, c30, c31 archsimd.Float32x8
	pb = pb[:k*16]
	for p := 0; p < k; p++ {
		bp := pb[p*16:]
		b0 := archsimd.LoadFloat32x8Slice(bp[0:])
		b1 := archsimd.LoadFloat32x8Slice(bp[8:])
		off := ai + p*ap
		x0 := archsimd.BroadcastFloat32x8(a[off])
		c00 = b0.MulAdd(x0, c00)
		c01 = b1.MulAdd(x0, c01)
		x1 := archsimd.BroadcastFloat32x8(a[off+as])
		c10 = b0.MulAdd(x1, c10)
		c11 = b1.MulAdd(x1, c11)
		x2 := archsimd.BroadcastFloat32x8(a[off+2*as])
		c20 = b0.MulAdd(x2, c20)
		c21 = b1.MulAdd(x2, c21)
		x3 := archsimd.BroadcastFloat32x8(a[off+3*as])
		c30 = b0.MulAdd(x3, c30)
		c31 = b1.MulAdd(x3, c31)
	}
	row0 := c[ci : ci+n]
	c00.StoreSlice(row0[0:])
	c01.StoreSlicePart(row0[8:])
	row1 := c[ci+1*ldc : ci+1*ldc+n]
	c10.StoreSlice(row1[0:])
	c11.StoreSlicePart(row1[8:])
	row2 := c[ci+2*ldc : ci+2*ldc+n]
	c20.StoreSlice(row2[0:])
	c21.StoreSlicePart(row2[8:])
	row3 := c[ci+3*ldc : ci+3*ldc+n]
	c30.StoreSlice(row3[0:])
	c31.StoreSlicePart(row3[8:])
}

// dotRows1x2 accumulates 1 row(s) of C from A (starting at a[ai], rows as apart, steps ap
// along k) and the packed B (2 vector(s) per row), and stores them at c[ci], rows ldc apart,
// n columns.
func dotRows1x2(k int, a []float32, ai, as, ap int, pb []float32, c []float32, ci, ldc, n int) {
	var c00, c01 archsimd.Float32x8
	pb = pb[:k*16]
	for p := 0; p < k; p++ {
		bp := pb[p*16:]
		b0 := archsimd.LoadFloat32x8Slice(bp[0:])
		b1 := archsimd.LoadFloat32x8Slice(bp[8:])
		off := ai + p*ap
		x0 := archsimd.BroadcastFloat32x8(a[off])
		c00 = b0.MulAdd(x0, c00)
		c01 = b1.MulAdd(x0, c01)
	}
	row0 := c[ci : ci+n]
	c00.StoreSlice(row0[0:])
	c01.StoreSlicePart(row0[8:])
}

// dotRows3x3 accumulates 3 row(s) of C from A (starting at a[ai], rows as apart, steps ap
// along k) and the packed B (3 vector(s) per row), and stores them at c[ci], rows ldc apart,
// n columns.
func dotRows3x3(k int, a []float32, ai, as, ap int, pb []float32, c []float32, ci, ldc, n int) {
	var c00, c01, c02, c10, c11, c12, c20, c21, c22 archsimd.Float32x8
	pb = pb[:k*24]
	for p := 0; p < k; p++ {
		bp := pb[p*24:]
		b0 := archsimd.LoadFloat32x8Slice(bp[0:])
		b1 := archsimd.LoadFloat32x8Slice(bp[8:])
		b2 := archsimd.LoadFloat32x8Slice(bp[16:])
		off := ai + p*ap
		x0 := archsimd.BroadcastFloat32x8(a[off])
		c00 = b0.MulAdd(x0, c00)
		c01 = b1.MulAdd(x0, c01)
		c02 = b2.MulAdd(x0, c02)
		x1 := archsimd.BroadcastFloat32x8(a[off+as])
		c10 = b0.MulAdd(x1, c10)
		c11 = b1.MulAdd(x1, c11)
		c12 = b2.MulAdd(x1, c12)
		x2 := archsimd.BroadcastFloat32x8(a[off+2*as])
		c20 = b0.MulAdd(x2, c20)
		c21 = b1.MulAdd(x2, c21)
		c22 = b2.MulAdd(x2, c22)
	}
	row0 := c[ci : ci+n]
	c00.StoreSlice(row0[0:])
	c01.StoreSlice(row0[8:])
	c02.StoreSlicePart(row0[16:])
	row1 := c[ci+1*ldc : ci+1*ldc+n]
	c10.StoreSlice(row1[0:])
	c11.StoreSlice(row1[8:])
	c12.StoreSlicePart(row1[16:])
	row2 := c[ci+2*ldc : ci+2*ldc+n]
	c20.StoreSlice(row2[0:])
	c21.StoreSlice(row2[8:])
	c22.StoreSlicePart(row2[16:])
}

// dotRows1x3 accumulates 1 row(s) of C from A (starting at a[ai], rows as apart, steps ap
// along k) and the packed B (3 vector(s) per row), and stores them at c[ci], rows ldc apart,
// n columns.
func dotRows1x3(k int, a []float32, ai, as, ap int, pb []float32, c []float32, ci, ldc, n int) {
	var c00, c01, c02 archsimd.Float32x8
	pb = pb[:k*24]
	for p := 0; p < k; p++ {
		bp := pb[p*24:]
		b0 := archsimd.LoadFloat32x8Slice(bp[0:])
		b1 := archsimd.LoadFloat32x8Slice(bp[8:])
		b2 := archsimd.LoadFloat32x8Slice(bp[16:])
		off := ai + p*ap
		x0 := archsimd.BroadcastFloat32x8(a[off])
		c00 = b0.MulAdd(x0, c00)
		c01 = b1.MulAdd(x0, c01)
		c02 = b2.MulAdd(x0, c02)
	}
	row0 := c[ci : ci+n]
	c00.StoreSlice(row0[0:])
	c01.StoreSlice(row0[8:])
	c02.StoreSlicePart(row0[16:])
}
