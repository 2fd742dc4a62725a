package kernels

// packA copies the mb×kb block of op(A) starting at (i0, p0) into dst as micro-panels of mr
// rows: panel q holds rows i0+q·mr … i0+q·mr+mr-1, stored step-major (dst[q·mr·kb + p·mr + r]).
// Rows past mb are zero-filled. op(A)[i, p] is a[i·lda+p], or a[p·lda+i] when transA.
func packA[T float](dst []T, transA bool, a []T, lda, i0, mb, p0, kb int, mr int) {
	for q := 0; q < mb; q += mr {
		rows := min(mr, mb-q)
		panel := dst[q*kb : q*kb+mr*kb]
		switch {
		case transA && rows == 6 && mr == 6:
			for p := 0; p < kb; p++ {
				*(*[6]T)(panel[p*6:]) = *(*[6]T)(a[(p0+p)*lda+i0+q:])
			}
		case transA && rows == 14 && mr == 14:
			a32, ok := any(a).([]float32)
			if base := p0*lda + i0 + q; ok && copyRuns14(any(panel).([]float32), a32, base, base, lda, 14, kb) {
				continue
			}
			for p := 0; p < kb; p++ {
				*(*[14]T)(panel[p*14:]) = *(*[14]T)(a[(p0+p)*lda+i0+q:])
			}
		case transA:
			for p := 0; p < kb; p++ {
				d := panel[p*mr : p*mr+mr]
				copy(d, a[(p0+p)*lda+i0+q:][:rows])
				clear(d[rows:])
			}
		case rows == 6 && mr == 6:
			base := (i0+q)*lda + p0
			r0 := a[base:][:kb]
			r1 := a[base+lda:][:kb]
			r2 := a[base+2*lda:][:kb]
			r3 := a[base+3*lda:][:kb]
			r4 := a[base+4*lda:][:kb]
			r5 := a[base+5*lda:][:kb]
			for p := range r0 {
				d := (*[6]T)(panel[p*6:])
				d[0], d[1], d[2], d[3], d[4], d[5] = r0[p], r1[p], r2[p], r3[p], r4[p], r5[p]
			}
		case rows == 14 && mr == 14:
			base := (i0+q)*lda + p0
			done := transposeRows(panel, 14, a, base, lda, 14, kb)
			var rs [14][]T
			for r := range rs {
				rs[r] = a[base+r*lda:][:kb]
			}
			for p := done; p < kb; p++ {
				d := (*[14]T)(panel[p*14:])
				for r := range d {
					d[r] = rs[r][p]
				}
			}
		default:
			// A partial tile (or a kernel without a specialised loop): rows transposed 16 steps at a
			// time where the vector loop applies, the padding rows zeroed step by step.
			base := (i0+q)*lda + p0
			done := transposeRows(panel, mr, a, base, lda, rows, kb)
			for p := 0; p < kb; p++ {
				d := panel[p*mr : p*mr+mr]
				if p >= done {
					for r := range rows {
						d[r] = a[base+r*lda+p]
					}
				}
				clear(d[rows:])
			}
		}
	}
}

// packB copies the kb×nb block of alpha·op(B) starting at (p0, j0) into dst as micro-panels of nr
// columns: panel q holds columns j0+q·nr … j0+q·nr+nr-1, stored step-major
// (dst[q·nr·kb + p·nr + c]). Columns past nb are zero-filled. op(B)[p, j] is b[p·ldb+j], or
// b[j·ldb+p] when transB.
func packB[T float](dst []T, transB bool, b []T, ldb, p0, kb, j0, nb int, alpha T, nr int) {
	for q := 0; q < nb; q += nr {
		cols := min(nr, nb-q)
		panel := dst[q*kb : q*kb+nr*kb]
		switch {
		case !transB && alpha == 1 && cols == 32 && nr == 32:
			if copyRows32(panel, b, p0*ldb+j0+q, ldb, kb) {
				continue
			}
			for p := 0; p < kb; p++ {
				*(*[32]T)(panel[p*32:]) = *(*[32]T)(b[(p0+p)*ldb+j0+q:])
			}
		case !transB && alpha == 1 && cols == 16 && nr == 16:
			for p := 0; p < kb; p++ {
				*(*[16]T)(panel[p*16:]) = *(*[16]T)(b[(p0+p)*ldb+j0+q:])
			}
		case !transB && alpha == 1 && cols == 8 && nr == 8:
			for p := 0; p < kb; p++ {
				*(*[8]T)(panel[p*8:]) = *(*[8]T)(b[(p0+p)*ldb+j0+q:])
			}
		case !transB:
			for p := 0; p < kb; p++ {
				d := panel[p*nr : p*nr+nr]
				for c, v := range b[(p0+p)*ldb+j0+q:][:cols] {
					d[c] = alpha * v
				}
				clear(d[cols:])
			}
		case transB && alpha == 1 && cols == nr && nr%16 == 0:
			// Blocks of 16 columns × 16 steps are transposed in registers; the steps past the
			// last full block (or all of them without AVX-512) one by one.
			done := kb
			for h := 0; h < nr; h += 16 {
				done = min(done, transposeRows(panel[h:], nr, b, (j0+q+h)*ldb+p0, ldb, 16, kb))
			}
			for c := 0; c < nr; c++ {
				src := b[(j0+q+c)*ldb+p0:][:kb]
				for p := done; p < kb; p++ {
					panel[p*nr+c] = src[p]
				}
			}
		default:
			for c := 0; c < nr; c++ {
				if c >= cols {
					for p := 0; p < kb; p++ {
						panel[p*nr+c] = 0
					}
					continue
				}
				src := b[(j0+q+c)*ldb+p0:][:kb]
				if alpha == 1 {
					for p, v := range src {
						panel[p*nr+c] = v
					}
				} else {
					for p, v := range src {
						panel[p*nr+c] = alpha * v
					}
				}
			}
		}
	}
}
